#!/bin/bash
# Runs INSIDE the VM for bench/footprint (run-in-vm.sh -f has brought up the forwards to the
# host's API server): exports the namespaces the measurements need on the kernel nvmet-tcp
# target, then runs guest.ts with the project's Node 24.
#   guest.sh OUT_DIR TRIALS VOLUMES [PLUGIN_NODE_OPTIONS]  (the plugin's NODE_OPTIONS instead of
#   the DaemonSet's, e.g. the image's bare --max-semi-space-size=1; the harness's Node keeps its own)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
. "$REPO/test/e2e/vm/nvmet.sh"
M=nqn.2014-08.io.rds-csi.e2e:managed:   # the plugin's --managed-nqn-prefix (harness.ts PREFIX)
F=nqn.2014-08.io.rds-csi.e2e:foreign-   # outside it: the orphan reconciler leaves these alone
TRIALS=${2:-5} VOLUMES=${3:-100}
nvmet_up
for i in $(seq 1 "$TRIALS"); do
  nvmet_add_subsystem "${F}bare-$i" 64    # the bare kernel commands, by hand (outside the prefix)
  nvmet_add_subsystem "${M}stage-$i" 64   # the same work through the plugin's RPCs
  nvmet_add_subsystem "${M}lean-$i" 64    # and again through the bare HTTP/2 client (lean.ts)
done
for i in $(seq 1 "$VOLUMES"); do nvmet_add_subsystem "${M}many-$i" 8; done
modprobe nvme-tcp
# The harness's own Node: a 1 MiB young generation, as the image. The plugin gets the DaemonSet's
# options (test/e2e/guest/harness.ts) or PLUGIN_NODE_OPTIONS. No compile cache is given here:
# guest.ts chooses one per start (empty for a cold start).
export NODE_OPTIONS=--max-semi-space-size=1
unset NODE_COMPILE_CACHE
export PLUGIN_NODE_OPTIONS=${4:-}
exec "$REPO/node_modules/node/bin/node" "$HERE/guest.ts" "$@"
