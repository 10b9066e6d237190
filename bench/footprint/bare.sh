#!/bin/bash
# The bare kernel commands a node RPC needs, timed from one small shell (not from Node: a fork
# of a 90 MB process costs ~70 ms under TCG, a fork of bash ~25 ms). Prints `step ms` lines and
# `total ms`, the sum of the steps.   bare.sh stage-new|stage-existing NQN MOUNTPOINT | bind SRC DST | umount DST | unstage NQN MOUNTPOINT
#
# Each step times its command and nothing else, as one would at a prompt: the clock is bash's own
# $EPOCHREALTIME read in this shell (a `$(…)` would fork a subshell per reading), the mount points
# are made before the clock starts, and the device is found right after `nvme connect` returns by
# globbing sysfs and reading subsysnqn with the `read` builtin (no `cat`, no subshell), waiting
# with `read -t` on a pipe nothing writes to (no `sleep` process). Until round 9 each step also
# counted one subshell, `mkdir -p` and a device lookup that forked per subsystem: under TCG
# ~25 + ~70 + ~200 ms, which made every overhead in bench/footprint that much smaller.
set -euo pipefail
exec {NAPFD}<> <(:)
nap() { read -r -t "$1" -u "$NAPFD" _ 2>/dev/null || true; }
TOTAL=0
mark() { T0=${EPOCHREALTIME/./}; }
step() { local t=${EPOCHREALTIME/./}; echo "$1 $(( (t - T0) / 1000 ))"; TOTAL=$(( TOTAL + t - T0 )); }
device_of() {   # DEV=/dev/<the namespace block device of subsystem NQN>, once there is one
  local d n q
  for d in /sys/class/nvme-subsystem/nvme-subsys*; do
    [ -r "$d/subsysnqn" ] || continue
    read -r q < "$d/subsysnqn" || continue
    [ "$q" = "$1" ] || continue
    for n in "$d"/nvme*n*; do
      if [ -e "$n/dev" ]; then DEV=/dev/${n##*/}; return 0; fi
    done
  done
  return 1
}
connect() {
  mark
  nvme connect -t tcp -a 127.0.0.1 -s 4420 -n "$1" --ctrl-loss-tmo=-1 --reconnect-delay=5 >/dev/null
  step connect
  mark
  DEV=""
  for (( i = 0; i < 3000; i++ )); do device_of "$1" && break; nap 0.005; done
  [ -n "$DEV" ] || { echo "no device for $1" >&2; exit 1; }
  step device
}
case "$1" in
  stage-new|stage-existing)
    mkdir -p "$3"
    connect "$2"
    mark; rc=0; blkid -p -o export "$DEV" >/dev/null || rc=$?; step blkid
    if [ "$1" = stage-new ]; then mark; mkfs.ext4 -F -q "$DEV"; step mkfs; fi
    mark; mount -t ext4 "$DEV" "$3"; step mount ;;
  bind) mkdir -p "$3"; mark; mount --bind "$2" "$3"; step bind ;;
  umount) mark; umount "$2"; step umount ;;
  unstage) mark; umount "$3"; step umount; mark; nvme disconnect -n "$2" >/dev/null; step disconnect ;;
  *) echo "unknown: $1" >&2; exit 2 ;;
esac
echo "total $(( TOTAL / 1000 ))"
