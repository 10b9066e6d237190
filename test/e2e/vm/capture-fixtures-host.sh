#!/bin/bash
# Boots the VM twice (native NVMe multipath on, then nvme_core.multipath=N), runs
# capture-fixtures.sh in each and copies the real outputs into test/fixtures/:
#   nvme/   nvme-cli stdout, stderr, exit code, duration (connect, disconnect, list-subsys, version)
#   blkid/  blkid -p -o export on empty, ext4, xfs, MBR, missing and non-device paths
#   mkfs/   mkfs.ext4 / mkfs.xfs
#   mount/  mount, bind, umount outcomes and /proc/self/mountinfo with staged, bound, raw-block and stale mounts
#   sysfs/  JSON trees of /sys (sysfs-snapshot.mjs) in each controller situation, mp-on.* and mp-off.*
# Review the git diff afterwards: the fixtures are what the unit tests hold the live layers to.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
FIX=$REPO/test/fixtures
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rds-csi-capture.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

"$HERE/setup-host.sh"
cd "$REPO"
for mode in mp-on mp-off; do
  append=; [ "$mode" = mp-off ] && append=nvme_core.multipath=N
  E2E_APPEND=$append "$HERE/run-in-vm.sh" -q -t 300 -m 768 -o "$WORK/$mode" -- \
    bash "$HERE/capture-fixtures.sh" "$WORK/$mode/out" "$mode" || { tail -40 "$WORK/$mode/console.log"; exit 1; }
  grep '\[capture' "$WORK/$mode/console.log" | sed 's/^\[host [^]]*\] //'
done
mkdir -p "$FIX"
rm -rf "$FIX"/{nvme,blkid,mkfs,mount,sysfs}
cp -r "$WORK/mp-on/out"/{nvme,blkid,mkfs,mount} "$FIX/"
mkdir -p "$FIX/sysfs" "$FIX/nvme/mp-off"
cp "$WORK"/mp-on/out/sysfs/*.json "$WORK"/mp-off/out/sysfs/*.json "$FIX/sysfs/"
cp "$WORK"/mp-off/out/nvme/list-subsys* "$FIX/nvme/mp-off/"
{ echo "# devices seen (mp-on then mp-off): SUB1 then SUB2's"; cat "$WORK/mp-on/out/devices.mp-on" "$WORK/mp-off/out/devices.mp-off"; } > "$FIX/devices.txt"
echo "fixtures written to $FIX"
