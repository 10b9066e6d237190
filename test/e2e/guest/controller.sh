#!/bin/bash
# Runs INSIDE the VM: the whole driver on the real kernel. The RDS emulator (nvmet backend)
# creates every subsystem itself, so no target is prepared here; only the initiator module and
# the compile cache. Then the controller scenarios (test/e2e/guest/controller.guest.ts).
#   controller.sh OUT_DIR SCENARIO...
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
modprobe nvme-tcp
mkdir -p /run/sshd
echo "[guest] kernel $(uname -r), multipath=$(cat /sys/module/nvme_core/parameters/multipath), sshd $(/usr/sbin/sshd -V 2>&1 | head -1)"
if [ -d "$1/node-compile-cache" ]; then cp -r "$1/node-compile-cache" /tmp/; export NODE_COMPILE_CACHE=/tmp/node-compile-cache; fi
exec "$REPO/node_modules/node/bin/node" "$HERE/controller.guest.ts" "$@"
