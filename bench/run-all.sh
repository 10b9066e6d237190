#!/bin/bash
# Runs every benchmark (bench/<name>/run.ts), one after the other (they share the machine's two
# cores: never two at once). `npm run bench -- events` runs only the named ones.
set -uo pipefail
cd "$(dirname "$0")/.."
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for d in bench/*/; do [ -f "$d/run.ts" ] && names+=("$(basename "$d")"); done
fi
status=0
for name in "${names[@]}"; do
  echo "==== bench/$name"
  node "bench/$name/run.ts" || { echo "bench/$name failed" >&2; status=1; }
done
exit $status
