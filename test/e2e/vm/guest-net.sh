#!/bin/bash
# Runs INSIDE the VM, first thing of the guest command, when run-in-vm.sh was given -f: brings up
# the virtio NIC of qemu's user-mode network with the static address 10.0.2.15/24 (no DHCP).
# The host is then 10.0.2.100 (only the forwarded ports answer there; restrict=on drops
# everything else the guest sends, so nothing reaches any host address but loopback).
set -euo pipefail
modprobe virtio_net
dev=
for _ in $(seq 200); do
  for d in /sys/class/net/*; do
    n=${d##*/}
    [ "$n" = lo ] && continue
    [ "$(cat "$d/type" 2>/dev/null)" = 1 ] && { dev=$n; break 2; }
  done
  sleep 0.01
done
[ -n "$dev" ] || { echo "guest-net: no ethernet interface after modprobe virtio_net" >&2; exit 1; }
ip link set "$dev" up
ip addr add 10.0.2.15/24 dev "$dev"
echo "guest-net: $dev 10.0.2.15/24 up; host forwards on 10.0.2.100:${E2E_FORWARDS:-?}"
