#!/bin/bash
# Runs INSIDE the VM: exports every subsystem the node-plugin scenarios use on the kernel
# nvmet-tcp target (127.0.0.1:4420, memory-backed null_blk namespaces), then runs the scenarios
# against the real plugin with the project's Node 24.
#   node-plugin.sh OUT_DIR SCENARIO...
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
. "$REPO/test/e2e/vm/nvmet.sh"
M=nqn.2014-08.io.rds-csi.e2e:managed:    # the plugin's --managed-nqn-prefix (harness.ts PREFIX)
F=nqn.2014-08.io.rds-csi.e2e:foreign-    # outside it (harness.ts FOREIGN)
t0=${EPOCHREALTIME/./}
nvmet_up
# xfs needs more than 300 MB; null_blk allocates memory only for what is written
nvmet_add_subsystem "${M}s1-xfs" 320
for s in s1-ext4 s1-block s2-idem s3-a s3-b s4-data s5-vol s5-orphan s6-real r-restart; do nvmet_add_subsystem "$M$s" 64; done
for s in mounted idle; do nvmet_add_subsystem "$F$s" 64; done
nvmet_add_subsystem "${M}h-shared" 64 64   # two namespaces of one subsystem (nsid 1, 2)
for s in h-blk-x h-blk-y h-reboot; do nvmet_add_subsystem "$M$s" 64; done
modprobe nvme-tcp
echo "[guest] nvmet target ready in $(( (${EPOCHREALTIME/./} - t0) / 1000 )) ms: $(ls /sys/kernel/config/nvmet/subsystems | wc -l) subsystems, kernel $(uname -r), multipath=$(cat /sys/module/nvme_core/parameters/multipath)"
# Node's compile cache, filled on the host (nodePluginScenarios.ts), copied to guest RAM: the
# plugin and this runner start faster (the plugin processes inherit NODE_COMPILE_CACHE).
if [ -d "$1/node-compile-cache" ]; then cp -r "$1/node-compile-cache" /tmp/; export NODE_COMPILE_CACHE=/tmp/node-compile-cache; fi
exec "$REPO/node_modules/node/bin/node" "$HERE/node-plugin.guest.ts" "$@"
