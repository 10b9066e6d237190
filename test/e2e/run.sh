#!/bin/bash
# npm run test:e2e: prepares the host (test/e2e/vm/setup-host.sh: packages, the cached kernel
# and initramfs), builds dist/ (the plugin in the guest runs what ships), and runs the vitest
# project "e2e", whose tests boot throw-away VMs one at a time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bash test/e2e/vm/setup-host.sh
npm run -s build
exec npx vitest run --project e2e "$@"
