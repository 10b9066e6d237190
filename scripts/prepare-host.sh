#!/bin/bash
# prepare-host.sh SUITE...: makes this machine ready for the named test suites (or the demo),
# once, before the first suite that needs it; quick when everything is already there.
#
#   host         real host binaries: kubectl (kustomize), nvme-cli, mkfs/resize tools, nix
#   integration  a real kube-apiserver 1.20.2 + etcd on loopback (built from Debian's source
#                package the first time: ~4 min on 2 cores, cached under /var/cache/rds-csi)
#   e2e          a real Linux kernel in qemu (the Debian kernel, unpacked into the cache) and the
#                API server above (the resilience scenarios post events to it)
#   demo         = e2e
#
# As root on Debian it installs what is missing with apt, saying what and why. Without root it
# installs nothing: it lists the missing packages and the exact command, and exits 1.
# Every folder it writes to is created first. The unit suite needs none of this.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CACHE=/var/cache/rds-csi
say() { echo "prepare: $*" >&2; }
is_root() { [ "$(id -u)" = 0 ]; }

want_host=0 want_int=0 want_e2e=0
for s in "$@"; do
  case $s in
    host) want_host=1 ;;
    integration) want_int=1 ;;
    e2e|demo) want_e2e=1 want_int=1 ;;
    *) say "unknown suite '$s' (host, integration, e2e, demo)"; exit 2 ;;
  esac
done

# package:binary-or-path:why. The binary is what the suites really run.
NEEDS=()
if ((want_host)); then NEEDS+=(
  "kubernetes-client:kubectl:the deploy tests render deploy/ with kubectl kustomize"
  "nvme-cli:nvme:the live nvme-cli layer runs the real binary"
  "e2fsprogs:mkfs.ext4:the mount layer's tools" "e2fsprogs:resize2fs:the mount layer's tools"
  "xfsprogs:mkfs.xfs:the mount layer's tools" "xfsprogs:xfs_growfs:the mount layer's tools"
  "util-linux:unshare:the read-only-root install test"
  "nix-bin:nix-instantiate:the flake.nix parse check"
  "openssh-server:/usr/sbin/sshd:the RDS emulator's real SSH server (the emulator starts its own on 127.0.0.1)"
); fi
if ((want_int)); then NEEDS+=(
  "kubernetes-client:kubectl:the test cluster is set up and described with kubectl"
  "etcd-server:etcd:the test kube-apiserver's store"
  "curl:curl:start-cluster.sh waits for /readyz"
  "openssl:openssl:the test cluster's throw-away PKI"
  "openssh-server:/usr/sbin/sshd:the controller talks to the RDS emulator through a real sshd"
); fi
if ((want_e2e)); then NEEDS+=(
  "qemu-system-x86:qemu-system-x86_64:the throw-away VM" "busybox-static:/bin/busybox:PID 1 of the VM's initramfs"
  "nvme-cli:nvme:the guest runs the host's nvme-cli" "e2fsprogs:mkfs.ext4:the guest formats volumes"
  "e2fsprogs:resize2fs:NodeExpandVolume in the guest" "xfsprogs:mkfs.xfs:xfs volumes in the guest"
  "xfsprogs:xfs_growfs:NodeExpandVolume in the guest" "kmod:modprobe:the guest loads nvmet/nvme-tcp"
  "kmod:depmod:indexing the VM kernel's modules" "iproute2:ip:the guest's network" "util-linux:blkid:the guest probes devices"
  "util-linux:mount:the guest mounts" "xz-utils:xz:unpacking the VM kernel" "gzip:gzip:packing the initramfs"
  "file:file:checking busybox is static" "kubernetes-client:kubectl:the host checks events with kubectl describe"
  "openssh-server:/usr/sbin/sshd:the RDS emulator's sshd in the guest (controller e2e, csi-sanity)"
); fi

missing=() why=()
for entry in ${NEEDS[@]+"${NEEDS[@]}"}; do
  IFS=: read -r pkg bin reason <<<"$entry"
  if [[ $bin == /* ]]; then [ -x "$bin" ] && continue; else command -v "$bin" >/dev/null 2>&1 && continue; fi
  [[ " ${missing[*]-} " == *" $pkg "* ]] && continue
  missing+=("$pkg") why+=("$pkg ($bin: $reason)")
done

if ((${#missing[@]})); then
  if is_root && command -v apt-get >/dev/null; then
    say "installing ${#missing[@]} Debian package(s), once:"
    for w in "${why[@]}"; do say "  $w"; done
    apt-get update -qq
    # openssh-server's scripts would start (and enable) a system sshd on port 22; the tests only
    # run their own on 127.0.0.1 with their own config. A policy-rc.d of ours forbids the start
    # during this install (only when none exists) and goes away after it.
    policy=
    if [[ " ${missing[*]} " == *" openssh-server "* ]] && [ ! -e /usr/sbin/policy-rc.d ]; then
      policy=/usr/sbin/policy-rc.d
      printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
      say "  (the system sshd service is not started: the tests run their own sshd on 127.0.0.1)"
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    [ -z "$policy" ] || rm -f "$policy"
  else
    say "missing on this machine (and not root, so nothing was installed):"
    for w in "${why[@]}"; do say "  $w"; done
    say "install them: sudo apt-get install --no-install-recommends ${missing[*]}"
    say "or run only the unit suite: npm run test:unit"
    exit 1
  fi
fi

if ((want_int || want_e2e)); then
  if ! mkdir -p "$CACHE" 2>/dev/null || [ ! -w "$CACHE" ]; then
    if [ -z "${KUBE_APISERVER_BIN:-}" ] || ((want_e2e)); then
      say "cannot write $CACHE (the kube-apiserver build and the VM kernel are cached there)"
      say "run once as root (later runs only read it), or set KUBE_APISERVER_BIN and RDS_CSI_KERNEL_LAB"
      exit 1
    fi
  fi
fi

if ((want_int)) && [ -z "${KUBE_APISERVER_BIN:-}" ]; then
  W=$CACHE/kube-apiserver-1.20.2
  if [ ! -x "$W/kubernetes-1.20.2/_output/local/bin/linux/amd64/kube-apiserver" ]; then
    is_root || { say "no kube-apiserver in $W: run 'bash test/cluster/build-kube-apiserver.sh' as root once, or set KUBE_APISERVER_BIN"; exit 1; }
    say "building kube-apiserver v1.20.2 from Debian's source package into $W, once"
    say "  (installs golang-1.19-go, make, rsync; about 4 min on 2 cores; log: $CACHE/kube-apiserver-build.log)"
    t0=$SECONDS
    bash test/cluster/build-kube-apiserver.sh "$W" >/dev/null 2>"$CACHE/kube-apiserver-build.log" || {
      say "the kube-apiserver build failed; last lines of $CACHE/kube-apiserver-build.log:"
      tail -n 30 "$CACHE/kube-apiserver-build.log" >&2
      exit 1
    }
    say "kube-apiserver built in $((SECONDS - t0)) s"
  fi
fi

if ((want_e2e)); then
  [ -x node_modules/node/bin/node ] || { say "run 'npm ci' first (the VM runs the project's Node 24)"; exit 1; }
  bash test/e2e/vm/setup-host.sh
fi
say "ready for: $*"
