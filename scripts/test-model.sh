#!/bin/bash
# npm run test:model -- [RUNS] [SEED] [node|controller]: the model-based property tests with any
# number of random sequences (CI runs 1,000 of the node's, 300 of the controller's) and a seed
# (random when omitted); each prints sequences, steps and the seed that replays the run.
#   node:       test/node/NodeVolumes.model.test.ts (the node plugin on the in-memory kernel)
#   controller: test/controller/Volumes.model.test.ts (the controller on the emulator, SSH faults)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export MODEL_RUNS=${1:-10000} MODEL_SEED=${2:-}
case "${3:-both}" in
  node) files=(test/node/NodeVolumes.model.test.ts) ;;
  controller) files=(test/controller/Volumes.model.test.ts) ;;
  both) files=(test/node/NodeVolumes.model.test.ts test/controller/Volumes.model.test.ts) ;;
  *) echo "test:model: the third argument is node, controller or both (got '$3')" >&2; exit 2 ;;
esac
exec npx vitest run --project unit "${files[@]}" --reporter=default
