#!/bin/bash
# npm run test:model -- [RUNS] [SEED]: the model-based property test of the node plugin
# (test/node/NodeVolumes.model.test.ts) with any number of random sequences (CI runs 1,000) and
# a seed (random when omitted); it prints sequences, steps and the seed that replays the run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export MODEL_RUNS=${1:-10000} MODEL_SEED=${2:-}
exec npx vitest run --project unit test/node/NodeVolumes.model.test.ts --reporter=default
