#!/bin/bash
# The bare kernel commands a node RPC needs, timed from one small shell (not from Node: a fork
# of a 90 MB process costs ~70 ms under TCG, a fork of bash ~25 ms). Prints `step ms` lines and
# `total ms`.   bare.sh stage-new|stage-existing NQN MOUNTPOINT | bind SRC DST | umount DST | unstage NQN MOUNTPOINT
set -euo pipefail
now() { local t=${EPOCHREALTIME/./}; echo "${t}"; }
start=$(now); last=$start
step() { local t; t=$(now); echo "$1 $(( (t - last) / 1000 ))"; last=$t; }
device_of() {   # the namespace block device of subsystem NQN, once there is one
  local d
  for d in /sys/class/nvme-subsystem/nvme-subsys*; do
    [ -e "$d/subsysnqn" ] && [ "$(cat "$d/subsysnqn")" = "$1" ] || continue
    for n in "$d"/nvme*n*; do [ -e "$n/dev" ] && { basename "$n"; return 0; }; done
  done
  return 1
}
connect() {
  nvme connect -t tcp -a 127.0.0.1 -s 4420 -n "$1" --ctrl-loss-tmo=-1 --reconnect-delay=5 >/dev/null
  step connect
  local dev=""
  for _ in $(seq 1 3000); do dev=$(device_of "$1") && break; sleep 0.005; done
  [ -n "$dev" ] || { echo "no device for $1" >&2; exit 1; }
  step device
  DEV=/dev/$dev
}
case "$1" in
  stage-new|stage-existing)
    connect "$2"
    rc=0; blkid -p -o export "$DEV" >/dev/null || rc=$?
    step blkid
    if [ "$1" = stage-new ]; then mkfs.ext4 -F -q "$DEV"; step mkfs; fi
    mkdir -p "$3"; mount -t ext4 "$DEV" "$3"; step mount ;;
  bind) mkdir -p "$3"; mount --bind "$2" "$3"; step bind ;;
  umount) umount "$2"; step umount ;;
  unstage) umount "$3"; step umount; nvme disconnect -n "$2" >/dev/null; step disconnect ;;
  *) echo "unknown: $1" >&2; exit 2 ;;
esac
echo "total $(( ($(now) - start) / 1000 ))"
