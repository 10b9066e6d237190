#!/bin/bash
# npm run demo: the main job on the real-kernel sandbox, shown step by step (SPEC §1): a volume
# staged and published on a real Linux kernel (qemu VM, kernel nvmet-tcp target), data written,
# the storage connection cut for longer than ctrlLossTmo so the kernel deletes the controller
# and renumbers the device, and the plugin bringing the volume back by itself — with the events
# as `kubectl describe pvc` prints them from a real kube-apiserver, the VolumeCondition, the
# metrics, and the data intact. Needs root (apt packages, the VM, mounts); installs what it
# needs on Debian, caching under /var/cache/rds-csi (the first run also builds kube-apiserver:
# about 4 minutes).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ "$(id -u)" != 0 ]; then
  echo "npm run demo needs root: it installs Debian packages (qemu-system-x86, nvme-cli, e2fsprogs," >&2
  echo "etcd-server, golang-1.19 for the test kube-apiserver) and boots a VM. Run it as root." >&2
  exit 1
fi
echo "demo: preparing the host (packages, Debian kernel for the VM; cached after the first run)..."
bash test/e2e/vm/setup-host.sh
npm run -s build
exec node scripts/demo/host.ts
