#!/bin/bash
# Runs INSIDE the VM: drives the real kernel target/initiator, nvme-cli, blkid, mount and
# umount through the situations the live layers must understand, and writes what they
# printed (stdout, stderr, exit code, duration) and sysfs trees under DEST.
#
#   capture-fixtures.sh DEST [mp-on|mp-off]
#
# Host side: test/e2e/vm/capture-fixtures-host.sh boots the VM(s) and copies the result into
# test/fixtures/. Re-run it after a kernel or nvme-cli change and review the diff.
set -uo pipefail
DEST=$1 MODE=${2:-mp-on}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NODE=$HERE/../../../node_modules/node/bin/node
. "$HERE/nvmet.sh"
export LC_ALL=C
mkdir -p "$DEST"/{nvme,sysfs,blkid,mkfs,mount}

T0=${EPOCHREALTIME/./}
log() { local t=${EPOCHREALTIME/./}; echo "[capture +$(( (t - T0) / 1000 ))ms] $*"; }

# cap NAME cmd...: DEST/NAME.{stdout,stderr,exit} + duration in DEST/NAME.ms
cap() {
  local name=$1; shift
  local s=${EPOCHREALTIME/./}
  "$@" > "$DEST/$name.stdout" 2> "$DEST/$name.stderr"
  local rc=$? e=${EPOCHREALTIME/./}
  echo "$rc" > "$DEST/$name.exit"
  echo $(( (e - s) / 1000 )) > "$DEST/$name.ms"
  log "$name: rc=$rc $(( (e - s) / 1000 ))ms: $(head -c 300 "$DEST/$name.stderr" | tr '\n' ' ')"
  return $rc
}
snap() { "$NODE" "$HERE/sysfs-snapshot.mjs" /sys > "$DEST/sysfs/$1.json"; log "sysfs snapshot $1"; }

P=nqn.2014-08.io.rds-csi.e2e
SUB1=$P:vol1 SUB2=$P:vol2
CONNECT=(nvme connect -t tcp -a 127.0.0.1 -s 4420)

log "kernel $(uname -r), multipath=$(cat /sys/module/nvme_core/parameters/multipath 2>/dev/null || echo '?')"
cap nvme/version nvme version
cap nvme/list-subsys-json.no-fabrics nvme list-subsys -o json

nvmet_add_subsystem "$SUB1" 256 || exit 1
nvmet_add_subsystem "$SUB2" 512 64 || exit 1   # xfs needs > 300 MB
modprobe nvme-fabrics
cap nvme/list-subsys-json.none-connected nvme list-subsys -o json
snap "$MODE.none-connected"

cap nvme/connect.ok "${CONNECT[@]}" -n "$SUB1" --ctrl-loss-tmo=30 --reconnect-delay=1
cap nvme/connect.already-connected "${CONNECT[@]}" -n "$SUB1" --ctrl-loss-tmo=30 --reconnect-delay=1
cap nvme/connect.ok-hostnqn-kato "${CONNECT[@]}" -n "$SUB2" --ctrl-loss-tmo=-1 --reconnect-delay=2 --keep-alive-tmo=7 \
  --hostnqn="$(cat /etc/nvme/hostnqn)" --hostid="$(cat /etc/nvme/hostid)"
cap nvme/connect.refused nvme connect -t tcp -a 127.0.0.1 -s 4421 -n "$SUB1" --ctrl-loss-tmo=30 --reconnect-delay=1
cap nvme/connect.no-route nvme connect -t tcp -a 192.0.2.1 -s 4420 -n "$SUB1" --ctrl-loss-tmo=30 --reconnect-delay=1
cap nvme/connect.unknown-nqn "${CONNECT[@]}" -n "$P:no-such-volume" --ctrl-loss-tmo=30 --reconnect-delay=1
cap nvme/connect.bad-option "${CONNECT[@]}" -n "$SUB1" --ctrl-loss-tmo=abc
for c in $(nvmet_ctrl_of "$SUB1") $(nvmet_ctrl_of "$SUB2"); do nvmet_wait_state "$c" live 20; done
cap nvme/list-subsys-json.two-connected nvme list-subsys -o json
cap nvme/list-subsys.two-connected nvme list-subsys
snap "$MODE.live"

# ---- block devices: blkid on an empty, ext4, xfs and partitioned namespace
# Namespace block devices of an NQN (heads with multipath, controller namespaces without):
# the real directory of /sys/block/X sits in the nvme-subsystem or the controller directory,
# and both have a subsysnqn attribute.
devs_of() {
  local b d n; for b in /sys/block/nvme*; do
    case ${b##*/} in *c*) continue;; esac
    d=$(readlink -f "$b"); IFS= read -r n < "${d%/*}/subsysnqn" || continue
    [ "$n" = "$1" ] && echo "/dev/${b##*/}"
  done
}
mapfile -t DEVS2 < <(devs_of "$SUB2")
DEV1=$(devs_of "$SUB1" | head -1); log "SUB1 device $DEV1, SUB2 devices ${DEVS2[*]}"
echo "$DEV1" > "$DEST/devices.$MODE"; echo "${DEVS2[*]}" >> "$DEST/devices.$MODE"
if [ "$MODE" = mp-on ]; then
  cap blkid/empty blkid -p -o export "$DEV1"
  cap blkid/missing-device blkid -p -o export /dev/nvme99n1
  cap blkid/not-a-device blkid -p -o export /tmp
  cap mkfs/ext4 mkfs.ext4 -F -q "$DEV1"
  cap blkid/ext4 blkid -p -o export "$DEV1"
  cap mkfs/xfs mkfs.xfs -f -q "${DEVS2[0]}"
  cap blkid/xfs blkid -p -o export "${DEVS2[0]}"
  # an MBR with one Linux partition (no sfdisk on the host: write the 512-byte sector by hand)
  printf '\x00\x00\x00\x00\x83\x00\x00\x00\x00\x08\x00\x00\x00\xf8\x00\x00' | dd of="${DEVS2[1]}" bs=1 seek=446 conv=notrunc status=none
  printf '\x55\xaa' | dd of="${DEVS2[1]}" bs=1 seek=510 conv=notrunc status=none
  sync; echo 1 > /proc/sys/vm/drop_caches
  cap blkid/mbr blkid -p -o export "${DEVS2[1]}"
  # ext4 over a stale MBR signature: what blkid says about ambivalent content
  cap mkfs/ext4-over-mbr mkfs.ext4 -F -q "${DEVS2[1]}"
  cap blkid/ext4-after-mbr blkid -p -o export "${DEVS2[1]}"

  # ---- mounts: a staged volume, a bind publish (rw and ro), a raw block bind
  K=/var/lib/kubelet
  STG=$K/plugins/kubernetes.io/csi/rds.csi.srvlab.io/abc123/globalmount
  PUB=$K/pods/0f0e-pod/volumes/kubernetes.io~csi/pvc-1/mount
  PUBRO=$K/pods/0f0e-pod/volumes/kubernetes.io~csi/pvc-1\ ro/mount
  BLK=$K/plugins/kubernetes.io/csi/volumeDevices/publish/pvc-2/pod-uid
  mkdir -p "$STG" "$PUB" "$PUBRO" "$(dirname "$BLK")" && : > "$BLK"
  cap mount/mount-ext4 mount -t ext4 -o noatime "$DEV1" "$STG"
  cap mount/bind mount --bind "$STG" "$PUB"
  cap mount/bind-ro-single mount -o bind,ro "$STG" "$PUBRO"
  cap mount/bind-block mount --bind "${DEVS2[1]}" "$BLK"
  cap mount/mount-already-mounted mount -t ext4 -o noatime "$DEV1" "$STG"
  cap mount/mount-wrong-fs mount -t xfs "${DEVS2[1]}" /mnt
  mkdir -p /mnt/xfs && cap mount/mount-xfs mount -t xfs "${DEVS2[0]}" /mnt/xfs
  cap mount/xfs_growfs xfs_growfs /mnt/xfs
  cap mount/umount-xfs umount /mnt/xfs
  cp /proc/self/mountinfo "$DEST/mount/mountinfo.staged"
  echo hello > "$STG/hello" && sync
  # a process holding the mount: cwd inside, then umount
  ( cd "$PUB" && exec sleep 30 ) &
  HOLDER=$!
  _nvmet_nap 0.3
  cap mount/umount-busy umount "$PUB"
  ls -l /proc/$HOLDER/cwd > "$DEST/mount/holder-cwd.txt" 2>&1
  kill $HOLDER; wait $HOLDER 2>/dev/null
  cap mount/umount-ok umount "$PUB"
  cap mount/umount-not-mounted umount "$PUB"
  cap mount/umount-missing umount /var/lib/kubelet/does-not-exist
  cap mount/umount-lazy-not-mounted umount -l "$PUB"
  cap mount/umount-ro umount "$PUBRO"
  cap mount/umount-block umount "$BLK"
  cap mount/resize2fs resize2fs "$DEV1"
  cap mount/umount-staging umount "$STG"
fi

# ---- controller states: connecting (fault A), deleted and renumbered (ctrl loss)
C1=$(nvmet_ctrl_of "$SUB1")
log "SUB1 controller $C1"
if [ "$MODE" = mp-on ]; then mount "$DEV1" /mnt; fi   # a mount holds the old head, as in production
nvmet_unlink "$SUB1"
nvmet_wait_state "$C1" connecting 20 && snap "$MODE.connecting"
cap nvme/list-subsys-json.connecting nvme list-subsys -o json
echo 3 > "/sys/class/nvme/$C1/ctrl_loss_tmo"
cap nvme/connect.while-connecting "${CONNECT[@]}" -n "$SUB1" --ctrl-loss-tmo=30 --reconnect-delay=1
nvmet_wait_state "$C1" gone 30 && log "$C1 deleted"
snap "$MODE.deleted"
nvmet_link "$SUB1"
cap nvme/connect.after-loss "${CONNECT[@]}" -n "$SUB1" --ctrl-loss-tmo=30 --reconnect-delay=1
for c in $(nvmet_ctrl_of "$SUB1"); do nvmet_wait_state "$c" live 20; done
snap "$MODE.renumbered"
cap nvme/list-subsys-json.renumbered nvme list-subsys -o json
if [ "$MODE" = mp-on ]; then
  cp /proc/self/mountinfo "$DEST/mount/mountinfo.stale"
  cap mount/umount-stale umount /mnt
fi

# ---- disconnect
cap nvme/disconnect.nqn nvme disconnect -n "$SUB1"
cap nvme/disconnect.nqn-not-connected nvme disconnect -n "$SUB1"
cap nvme/disconnect.ctrl-missing nvme disconnect -d nvme42
C2=$(nvmet_ctrl_of "$SUB2")
cap nvme/disconnect.ctrl nvme disconnect -d "$C2"
cap nvme/list-subsys-json.after-disconnect nvme list-subsys -o json
snap "$MODE.disconnected"
log "done"
