#!/bin/bash
# Guest-side NVMe/TCP target (kernel nvmet + nvmet-tcp) and fault helpers for the e2e
# scenarios. Runs INSIDE the VM (as root, configfs mounted by the guest init).
#
# Use it as a command (from Node, one spawn per step):
#   nvmet.sh up                              modules + port 1 on tcp 127.0.0.1:4420 + keepalive subsystem
#   nvmet.sh add-subsystem NQN [SIZE_MB...]  subsystem with one namespace per size (nsid 1, 2, ...),
#                                            each a memory-backed null_blk (data survives reconnects),
#                                            linked to the port; identity: nguid/uuid derived from NQN+nsid
#   nvmet.sh add-file-namespace NQN NSID PATH SIZE_MB   file-backed namespace (sparse file)
#   nvmet.sh link NQN | unlink NQN           (un)export a subsystem on the port (fault A: the
#                                            host's reconnects reach nvmet and are rejected)
#   nvmet.sh port-down | port-up             delete / recreate the port with every subsystem that was
#                                            linked (fault B: reconnects get ECONNREFUSED)
#   nvmet.sh set-ctrl-loss-tmo CTRL|NQN SECONDS   host side: /sys/class/nvme/<ctrl>/ctrl_loss_tmo
#                                            (for an NQN: every controller of it)
#   nvmet.sh ctrl-of NQN                     prints the controller names of NQN (not deleting)
#   nvmet.sh wait-state CTRL STATE [TIMEOUT_S]    polls sysfs every 20 ms; STATE "gone" = removed
#   nvmet.sh identity NQN NSID               prints "nguid uuid" the target gives that namespace
#   nvmet.sh down                            unexport and delete everything (not needed in a VM)
# Or source it (`. nvmet.sh`) and call the nvmet_* functions: no fork per step, which matters
# under TCG where every process costs 50-200 ms. The functions are safe under `set -euo pipefail`.
#
# The keepalive subsystem stays linked so that unlinking the last real subsystem does not
# close the listener (which would turn fault A into fault B).
NVMET_CFG=${NVMET_CFG:-/sys/kernel/config/nvmet}
NVMET_PORT=$NVMET_CFG/ports/1
NVMET_ADDR=${NVMET_ADDR:-127.0.0.1}
NVMET_SVC=${NVMET_SVC:-4420}
NVMET_KEEP=nqn.2014-08.io.rds-csi.e2e:keepalive
NVMET_STATE=${NVMET_STATE:-/run/nvmet-e2e}   # remembers which subsystems were linked

_nvmet_err() { echo "nvmet.sh: $*" >&2; return 1; }
if exec {_NVMET_SLEEPFD}<> <(:) 2>/dev/null; then _nvmet_nap() { read -r -t "$1" -u "$_NVMET_SLEEPFD" _ 2>/dev/null; true; }
else _nvmet_nap() { sleep "$1"; }; fi
_nvmet_now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# A stable identity per (NQN, nsid): tests can predict what sysfs will show.
nvmet_identity() {
  local h; h=$(printf '%s/%s' "$1" "$2" | md5sum | cut -c1-32)
  NVMET_NGUID=$h
  NVMET_UUID=${h:0:8}-${h:8:4}-4${h:13:3}-8${h:17:3}-${h:20:12}
}

nvmet_up() {
  [ -d "$NVMET_PORT" ] && return 0
  modprobe null_blk nr_devices=0 2>/dev/null || modprobe null_blk || _nvmet_err "modprobe null_blk" || return
  modprobe -a nvmet nvmet-tcp nvme-fabrics || _nvmet_err "modprobe nvmet" || return
  mkdir -p "$NVMET_STATE"
  _nvmet_make_subsys "$NVMET_KEEP" || return
  nvmet_port_up
}

nvmet_port_up() {
  [ -d "$NVMET_PORT" ] || {
    mkdir "$NVMET_PORT" &&
    echo tcp > "$NVMET_PORT/addr_trtype" && echo ipv4 > "$NVMET_PORT/addr_adrfam" &&
    echo "$NVMET_ADDR" > "$NVMET_PORT/addr_traddr" && echo "$NVMET_SVC" > "$NVMET_PORT/addr_trsvcid"
  } || _nvmet_err "create port" || return
  local f
  [ -e "$NVMET_PORT/subsystems/$NVMET_KEEP" ] || ln -s "$NVMET_CFG/subsystems/$NVMET_KEEP" "$NVMET_PORT/subsystems/$NVMET_KEEP"
  for f in "$NVMET_STATE"/linked.*; do
    [ -e "$f" ] || continue
    nvmet_link "$(cat "$f")" || return
  done
}

nvmet_port_down() {
  [ -d "$NVMET_PORT" ] || return 0
  local l
  for l in "$NVMET_PORT"/subsystems/*; do [ -L "$l" ] && rm -f "$l"; done
  rmdir "$NVMET_PORT"
}

_nvmet_make_subsys() {
  local s=$NVMET_CFG/subsystems/$1
  [ -d "$s" ] && return 0
  mkdir "$s" && echo 1 > "$s/attr_allow_any_host" || _nvmet_err "create subsystem $1"
}

# nvmet_add_namespace NQN NSID DEVICE_OR_FILE
nvmet_add_namespace() {
  local ns=$NVMET_CFG/subsystems/$1/namespaces/$2
  nvmet_identity "$1" "$2"
  mkdir "$ns" && echo "$3" > "$ns/device_path" || _nvmet_err "namespace $2 of $1 on $3" || return
  # a file on tmpfs cannot be opened O_DIRECT (nvmet's default for files): use the page cache
  if [ -f "$3" ]; then echo 1 > "$ns/buffered_io" || _nvmet_err "buffered_io for $3" || return; fi
  echo "$NVMET_NGUID" > "$ns/device_nguid" && echo "$NVMET_UUID" > "$ns/device_uuid" &&
  echo 1 > "$ns/enable" || _nvmet_err "enable namespace $2 of $1 on $3"
}

# A memory-backed null_blk through its configfs interface; prints nothing, sets NVMET_DEV.
_nvmet_nullb() {
  local name=$1 mb=$2 d=/sys/kernel/config/nullb/$1
  [ -d /sys/kernel/config/nullb ] || _nvmet_err "null_blk configfs missing" || return
  mkdir "$d" && echo "$mb" > "$d/size" && echo 4096 > "$d/blocksize" &&
  echo 1 > "$d/memory_backed" && echo 1 > "$d/power" || _nvmet_err "null_blk $name" || return
  NVMET_DEV=/dev/$name
  local i; for i in $(seq 100); do [ -b "$NVMET_DEV" ] && return 0; _nvmet_nap 0.02; done
  _nvmet_err "$NVMET_DEV did not appear"
}

nvmet_add_subsystem() {
  local nqn=$1; shift
  nvmet_up || return
  _nvmet_make_subsys "$nqn" || return
  local nsid=0 mb n
  for mb in "${@:-64}"; do
    nsid=$((nsid + 1))
    n=0; while [ -e "/sys/kernel/config/nullb/e2e$n" ]; do n=$((n + 1)); done
    _nvmet_nullb "e2e$n" "$mb" || return
    nvmet_add_namespace "$nqn" "$nsid" "$NVMET_DEV" || return
  done
  nvmet_link "$nqn"
}

nvmet_add_file_namespace() {
  mkdir -p "$(dirname "$3")" && truncate -s "${4}M" "$3" && nvmet_add_namespace "$1" "$2" "$3"
}

_nvmet_key() { printf '%s' "$1" | md5sum | cut -c1-12; }
nvmet_link() {
  [ -e "$NVMET_PORT/subsystems/$1" ] || ln -s "$NVMET_CFG/subsystems/$1" "$NVMET_PORT/subsystems/$1" || _nvmet_err "link $1" || return
  mkdir -p "$NVMET_STATE" && echo "$1" > "$NVMET_STATE/linked.$(_nvmet_key "$1")"
}
nvmet_unlink() {
  rm -f "$NVMET_PORT/subsystems/$1" "$NVMET_STATE/linked.$(_nvmet_key "$1")"
}

# Controllers of NQN that are not being deleted, space separated.
nvmet_ctrl_of() {
  local d n s out=
  for d in /sys/class/nvme/nvme*; do
    IFS= read -r n < "$d/subsysnqn" 2>/dev/null || continue
    IFS= read -r s < "$d/state" 2>/dev/null || continue
    [ "$n" = "$1" ] && [ "${s#deleting}" = "$s" ] && out="$out ${d##*/}"
  done
  echo "${out# }"
}

nvmet_set_ctrl_loss_tmo() {
  local c ctrls=$1
  case $1 in nqn.*) ctrls=$(nvmet_ctrl_of "$1");; esac
  [ -n "$ctrls" ] || _nvmet_err "no controller for $1" || return
  for c in $ctrls; do echo "$2" > "/sys/class/nvme/$c/ctrl_loss_tmo" || return; done
}

# nvmet_wait_state CTRL STATE [TIMEOUT_S]: STATE "gone" waits for the controller to vanish.
nvmet_wait_state() {
  local limit=$(( $(_nvmet_now_ms) + ${3:-30} * 1000 )) s
  while :; do
    if [ "$2" = gone ]; then [ -e "/sys/class/nvme/$1" ] || return 0
    else IFS= read -r s < "/sys/class/nvme/$1/state" 2>/dev/null && [ "$s" = "$2" ] && return 0; fi
    [ "$(_nvmet_now_ms)" -ge "$limit" ] && { _nvmet_err "$1 not $2 after ${3:-30}s (state ${s:-gone})"; return 1; }
    _nvmet_nap 0.02
  done
}

nvmet_down() {
  local s n
  nvmet_port_down
  for s in "$NVMET_CFG"/subsystems/*; do
    [ -d "$s" ] || continue
    for n in "$s"/namespaces/*; do [ -d "$n" ] && { echo 0 > "$n/enable"; rmdir "$n"; }; done
    rmdir "$s"
  done
  for n in /sys/kernel/config/nullb/e2e*; do [ -d "$n" ] && { echo 0 > "$n/power"; rmdir "$n"; }; done
  rm -rf "$NVMET_STATE"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -uo pipefail
  cmd=${1:-}; shift || true
  case $cmd in
    up) nvmet_up ;;
    down) nvmet_down ;;
    add-subsystem) nvmet_add_subsystem "$@" ;;
    add-file-namespace) nvmet_add_file_namespace "$@" ;;
    link) nvmet_link "$1" ;;
    unlink) nvmet_unlink "$1" ;;
    port-up) nvmet_port_up ;;
    port-down) nvmet_port_down ;;
    set-ctrl-loss-tmo) nvmet_set_ctrl_loss_tmo "$1" "$2" ;;
    ctrl-of) nvmet_ctrl_of "$1" ;;
    wait-state) nvmet_wait_state "$@" ;;
    identity) nvmet_identity "$1" "$2"; echo "$NVMET_NGUID $NVMET_UUID" ;;
    *) sed -n '5,22p' "$0" >&2; exit 2 ;;
  esac
fi
