#!/bin/bash
# npm run test:e2e: prepares the host (scripts/prepare-host.sh e2e: packages, the cached kernel
# and initramfs, the test kube-apiserver), builds dist/ (the plugin in the guest runs what ships), and runs the vitest
# project "e2e", whose tests boot throw-away VMs one at a time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bash scripts/prepare-host.sh e2e
npm run -s build
exec npx vitest run --project e2e "$@"
