#!/bin/bash
# Everything CI runs, in order: typecheck, unit + property tests (test layers), integration
# tests (a real kube-apiserver + etcd on loopback), end-to-end tests (a real Linux kernel in a
# throw-away VM). Each vitest run prints its own summary; the last line adds them up, so a run
# that executed no test is visible. Set SKIP_E2E=1 / SKIP_INTEGRATION=1 for a partial run
# (the summary says so).
set -uo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
status=0

run() { # name, vitest args...
  local name=$1; shift
  echo "==== $name"
  local t0=$SECONDS
  npx vitest run "$@" --reporter=default --reporter=json --outputFile="$out/$name.json"
  local rc=$?
  echo "==== $name: exit $rc in $((SECONDS - t0)) s"
  [ "$rc" = 0 ] || status=1
}

echo "==== typecheck"
npm run -s typecheck || status=1
echo "==== build (dist/: what the image ships and the e2e guest runs)"
npm run -s build || status=1

run unit --project unit
if [ "${SKIP_INTEGRATION:-0}" = 1 ]; then echo "==== integration: SKIPPED (SKIP_INTEGRATION=1)"; else run integration --project integration; fi
if [ "${SKIP_E2E:-0}" = 1 ]; then echo "==== e2e: SKIPPED (SKIP_E2E=1)"; else
  bash test/e2e/vm/setup-host.sh || { echo "e2e: host setup failed" >&2; status=1; }
  run e2e --project e2e
fi

node -e '
  const fs = require("fs"); let p = 0, f = 0, s = 0;
  for (const file of fs.readdirSync(process.argv[1])) {
    const r = JSON.parse(fs.readFileSync(process.argv[1] + "/" + file, "utf8"));
    p += r.numPassedTests; f += r.numFailedTests; s += r.numPendingTests + (r.numTodoTests || 0);
    console.log(`${file.replace(".json", "")}: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`);
  }
  if (p + f === 0) { console.log("NO TESTS WERE EXECUTED"); process.exitCode = 1 }
  console.log(`${p} passed, ${f} failed, ${s} skipped`);
' "$out" || status=1
exit $status
