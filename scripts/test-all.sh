#!/bin/bash
# Everything CI runs, in order: typecheck, build, unit + property tests (test layers, no host
# tool), then the host preparation (scripts/prepare-host.sh: apt packages, the kube-apiserver
# build, the VM kernel; once, saying what and why), then the host suite (real host binaries),
# integration (a real kube-apiserver + etcd on loopback) and end-to-end (a real Linux kernel in a
# throw-away VM). Each vitest run prints its own summary; the last line adds them up, so a run
# that executed no test is visible. SKIP_HOST=1 / SKIP_INTEGRATION=1 / SKIP_E2E=1 for a partial
# run (the summary says so). A suite whose preparation failed is reported as NOT RUN and fails.
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

suites=()
for s in host integration e2e; do
  var="SKIP_$(echo "$s" | tr a-z A-Z)"
  if [ "${!var:-0}" = 1 ]; then echo "==== $s: SKIPPED ($var=1)"; else suites+=("$s"); fi
done
if ((${#suites[@]})); then
  echo "==== prepare the host for: ${suites[*]}"
  if ! bash scripts/prepare-host.sh "${suites[@]}"; then
    echo "==== ${suites[*]}: NOT RUN (the host preparation above says what is missing)"
    status=1
    suites=()
  fi
fi
for s in ${suites[@]+"${suites[@]}"}; do run "$s" --project "$s"; done

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
