#!/usr/bin/env bash
# make test: every test of formq, then the checks of deployments/ (a Go
# module of its own) and a short fuzzing run, stopping at the first part
# that fails. Ends with one line counting the tests that passed, failed
# and were skipped, also when a part failed; the exit status is the
# failing part's.
set -uo pipefail
cd "$(dirname "$0")/../.."
GO=${GO:-go}

log=$(mktemp)
fuzzlog=$(mktemp)
status=0

# tally prints the last line: the counts of go test's verdicts (tests and
# subtests) over both modules, the packages that failed (a failing test, a
# build error, a panic or a timeout) and the fuzzing targets run.
tally() {
  local passed failed skipped pkgs failedpkgs fuzzed names line
  passed=$(grep -cE '^ *--- PASS: ' "$log")
  failed=$(grep -cE '^ *--- FAIL: ' "$log" "$fuzzlog" | awk -F: '{n += $NF} END {print n}')
  skipped=$(grep -cE '^ *--- SKIP: ' "$log")
  pkgs=$(grep -cE '^(ok|FAIL)[[:space:]]+[a-z]' "$log")
  failedpkgs=$(grep -E '^FAIL[[:space:]]+[a-z]' "$log" | awk '{print $2}' | sort -u | paste -sd' ' -)
  fuzzed=$(grep -cE '^fuzz: Fuzz[A-Za-z0-9_]+ \(' "$fuzzlog")
  names=$(cat "$log" "$fuzzlog" | grep -E '^--- FAIL: ' | awk '{print $3}' | sort -u | head -10 | paste -sd' ' -)
  line="$passed passed, $failed failed, $skipped skipped (tests and subtests, $pkgs packages); $fuzzed fuzz targets run"
  if [ "$status" -eq 0 ]; then
    echo "make test: ok: $line"
  else
    echo "make test: FAILED: $line${names:+; failed: $names}${failedpkgs:+; packages failed: $failedpkgs}"
  fi
}
finish() {
  tally
  rm -f "$log" "$fuzzlog"
  exit "$status"
}
trap finish EXIT
trap 'status=130; exit' INT TERM

# run runs one part, its output shown without go test's progress lines
# and kept for the tally.
run() {
  "$@" 2>&1 | tee -a "$log" | grep -vE '^(=== (RUN|PAUSE|CONT|NAME))'
  local rc=$?
  [ "$rc" -eq 0 ] || status=$rc
  return "$rc"
}

run "$GO" test -count=1 -timeout 40m -v ./... || exit
if ! (cd deployments && "$GO" mod tidy -diff >/dev/null); then
  echo "deployments/go.mod lags formq's go.mod: run 'cd deployments && go mod tidy' and commit it"
  status=1
  exit
fi
run "$GO" test -C deployments -count=1 -timeout 10m -v ./... || exit
make --no-print-directory fuzz 2>&1 | tee "$fuzzlog"
rc=$?
[ "$rc" -eq 0 ] || status=$rc
