#!/bin/bash
# npm run demo: the main job on the real-kernel sandbox, shown step by step (SPEC §1): the RDS
# emulator on the VM's kernel NVMe/TCP target, `rds-csi controller` creating the volume over SSH
# and fencing it to the node, the volume staged and published on a real Linux kernel, data written,
# the storage connection cut for longer than ctrlLossTmo so the kernel deletes the controller
# and renumbers the device, and the plugin bringing the volume back by itself — with the events
# as `kubectl describe pvc` prints them from a real kube-apiserver, the VolumeCondition, the
# metrics, and the data intact; then unpublished and deleted. Needs root (apt packages, the VM, mounts); installs what it
# needs on Debian, caching under /var/cache/rds-csi (the first run also builds kube-apiserver:
# about 4 minutes).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ "$(id -u)" != 0 ]; then
  echo "npm run demo needs root: it boots a VM whose kernel target and initiator it drives, and on a" >&2
  echo "new machine installs Debian packages (qemu-system-x86, nvme-cli, e2fsprogs, etcd-server, and" >&2
  echo "golang-1.19-go to build the test kube-apiserver once). Run it as root." >&2
  exit 1
fi
echo "demo: preparing the host (packages, the test kube-apiserver, the VM's Debian kernel; cached after the first run)..."
bash scripts/prepare-host.sh demo
[ -d node_modules/effect ] || { echo "demo: run 'npm ci' first" >&2; exit 1; }
npm run -s build
exec node scripts/demo/host.ts
