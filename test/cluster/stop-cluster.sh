#!/bin/bash
# stop-cluster.sh DIR: stops the kube-apiserver and etcd that start-cluster.sh started in DIR
# (by their pid files only), TERM first, KILL after 5 s.
set -uo pipefail
D=${1:?state dir}
for name in apiserver etcd; do
  f=$D/$name.pid; [ -f "$f" ] || continue
  pid=$(cat "$f"); kill -TERM "$pid" 2>/dev/null || continue
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$f"
done
