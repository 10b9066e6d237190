#!/bin/bash
# Runs INSIDE the VM: exports one nvmet-tcp subsystem (a 256 MiB memory-backed namespace with a
# known NGUID) on 127.0.0.1:4420, then runs the live-layer smoke program with the project's Node 24.
#   live-layers.sh RESULT_JSON
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
. "$REPO/test/e2e/vm/nvmet.sh"
NQN=nqn.2014-08.io.rds-csi.e2e:smoke
t0=${EPOCHREALTIME/./}
nvmet_add_subsystem "$NQN" 256
nvmet_identity "$NQN" 1
echo "[guest] nvmet target ready in $(( (${EPOCHREALTIME/./} - t0) / 1000 )) ms, kernel $(uname -r), multipath=$(cat /sys/module/nvme_core/parameters/multipath 2>/dev/null || echo 'not loaded yet')"
exec "$REPO/node_modules/node/bin/node" "$HERE/live-layers.guest.ts" "$1" "$NQN" "$NVMET_NGUID"
