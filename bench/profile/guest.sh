#!/bin/bash
# Runs INSIDE the VM for bench/profile: exports three namespaces (cold, warm, traced: each first NodeStage formats) on the kernel nvmet-tcp target,
# and VOLUMES small ones (the warm run stages them as raw block and profiles the plugin at rest),
# then runs guest.ts with the project's Node 24.   guest.sh OUT_DIR [VOLUMES]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
. "$REPO/test/e2e/vm/nvmet.sh"
M=nqn.2014-08.io.rds-csi.e2e:managed:   # the plugin's --managed-nqn-prefix (harness.ts PREFIX)
nvmet_up
for v in prof-1 prof-2 prof-3; do nvmet_add_subsystem "${M}$v" 64; done
for i in $(seq 1 "${2:-100}"); do nvmet_add_subsystem "${M}many-$i" 8; done
modprobe nvme-tcp
exec "$REPO/node_modules/node/bin/node" "$HERE/guest.ts" "$@"
