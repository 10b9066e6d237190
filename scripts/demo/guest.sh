#!/bin/bash
# npm run demo, inside the VM: the RDS emulator (started by the guest program) makes the target;
# here only the initiator module, sshd's run dir and the compile cache, then the guest program
# with the project's Node 24.   guest.sh OUT_DIR VOLUME_ID
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
modprobe nvme-tcp
mkdir -p /run/sshd
export NODE_OPTIONS=--max-semi-space-size=1
# V8's code cache, prewarmed on the host (test/e2e/apiServerVm.ts), copied to guest RAM.
if [ -d "$1/node-compile-cache" ]; then cp -r "$1/node-compile-cache" /tmp/; export NODE_COMPILE_CACHE=/tmp/node-compile-cache; fi
exec "$REPO/node_modules/node/bin/node" "$HERE/guest.ts" "$@"
