#!/bin/bash
# Runs INSIDE the VM: exercises every nvmet.sh command as later e2e scenarios will call them
# (one process per step) and checks the controller states each fault produces. Exit 0 = all good.
#   host: test/e2e/vm/run-in-vm.sh -- bash test/e2e/vm/nvmet-selftest.sh
set -uo pipefail
N=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/nvmet.sh
NQN=nqn.2014-08.io.rds-csi.e2e:selftest
FAILS=0
T0=${EPOCHREALTIME/./}
ok() { echo "[selftest +$(( (${EPOCHREALTIME/./} - T0) / 1000 ))ms] ok: $*"; }
no() { echo "[selftest +$(( (${EPOCHREALTIME/./} - T0) / 1000 ))ms] FAIL: $*"; FAILS=$((FAILS + 1)); }
t() { local what=$1; shift; "$@" && ok "$what" || no "$what"; }

t "up" bash "$N" up
t "add-subsystem with two namespaces" bash "$N" add-subsystem "$NQN" 64 32
t "add-file-namespace" bash "$N" add-file-namespace "$NQN" 3 /run/e2e-ns3.img 16
t "identity" test "$(bash "$N" identity "$NQN" 1 | wc -w)" = 2
t "connect" nvme connect -t tcp -a 127.0.0.1 -s 4420 -n "$NQN" --ctrl-loss-tmo=30 --reconnect-delay=1
C=$(bash "$N" ctrl-of "$NQN")
t "ctrl-of ($C)" test -n "$C"
t "live" bash "$N" wait-state "$C" live 20
t "three namespaces" test "$(ls -d /sys/class/nvme-subsystem/*/nvme*n* | wc -l)" = 3
t "fault A: unlink" bash "$N" unlink "$NQN"
t "  -> connecting" bash "$N" wait-state "$C" connecting 20
t "  link" bash "$N" link "$NQN"
t "  -> live, same controller" bash "$N" wait-state "$C" live 20
t "fault B: port-down" bash "$N" port-down
t "  -> connecting" bash "$N" wait-state "$C" connecting 20
t "  port-up (relinks what was linked)" bash "$N" port-up
t "  -> live" bash "$N" wait-state "$C" live 20
t "set-ctrl-loss-tmo by NQN" bash "$N" set-ctrl-loss-tmo "$NQN" 2
t "  reads back" test "$(cat /sys/class/nvme/$C/ctrl_loss_tmo)" = 2
t "fault C: unlink past ctrl_loss_tmo" bash "$N" unlink "$NQN"
t "  -> gone" bash "$N" wait-state "$C" gone 30
t "  wait-state times out with a message" bash -c "! bash '$N' wait-state nvme99 live 1"
t "down" bash "$N" down
t "  nothing left in configfs" test -z "$(ls /sys/kernel/config/nvmet/subsystems)"
echo "[selftest] failed: $FAILS"
exit "$FAILS"
