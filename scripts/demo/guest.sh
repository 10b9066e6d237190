#!/bin/bash
# npm run demo, inside the VM: an nvmet-tcp target on 127.0.0.1:4420 with the demo volume, then
# the guest program with the project's Node 24.   guest.sh OUT_DIR VOLUME_ID
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
. "$REPO/test/e2e/vm/nvmet.sh"
nvmet_up
nvmet_add_subsystem "nqn.2014-08.io.rds-csi.e2e:managed:$2" 128
modprobe nvme-tcp
export NODE_OPTIONS=--max-semi-space-size=1
# V8's code cache, prewarmed on the host (test/e2e/apiServerVm.ts), copied to guest RAM.
if [ -d "$1/node-compile-cache" ]; then cp -r "$1/node-compile-cache" /tmp/; export NODE_COMPILE_CACHE=/tmp/node-compile-cache; fi
exec "$REPO/node_modules/node/bin/node" "$HERE/guest.ts" "$@"
