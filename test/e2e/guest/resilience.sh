#!/bin/bash
# Runs INSIDE the VM (run-in-vm.sh -f ... has brought up 10.0.2.15 and the forwards to the host):
# exports the resilience scenarios' subsystems on the kernel nvmet-tcp target (127.0.0.1:4420,
# memory-backed null_blk namespaces), then runs the scenarios with the project's Node 24.
#   resilience.sh OUT_DIR NAMESPACE SCENARIO...
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
. "$REPO/test/e2e/vm/nvmet.sh"
M=nqn.2014-08.io.rds-csi.e2e:managed:    # the plugin's --managed-nqn-prefix (harness.ts PREFIX)
F=nqn.2014-08.io.rds-csi.e2e:foreign-    # outside it (harness.ts FOREIGN)
t0=${EPOCHREALTIME/./}
nvmet_up
for s in res-a res-b res-c res-r res-rc res-n res-p res-orphan res-bench-a res-bench-c; do nvmet_add_subsystem "$M$s" 64; done
nvmet_add_subsystem "${F}res" 64
modprobe nvme-tcp
echo "[guest] nvmet target ready in $(( (${EPOCHREALTIME/./} - t0) / 1000 )) ms: $(ls /sys/kernel/config/nvmet/subsystems | wc -l) subsystems, kernel $(uname -r), multipath=$(cat /sys/module/nvme_core/parameters/multipath), guest clock $(date -u +%FT%T.%3NZ)"
# Node's compile cache, prewarmed on the host (apiServerVm.ts), copied to guest RAM: faster plugin starts.
if [ -d "$1/node-compile-cache" ]; then cp -r "$1/node-compile-cache" /tmp/; fi
export NODE_COMPILE_CACHE=/tmp/node-compile-cache
# GUEST_MAIN: another guest program with the same set-up (bench/detection/guest.ts).
exec "$REPO/node_modules/node/bin/node" "${GUEST_MAIN:-$HERE/resilience.guest.ts}" "$@"
