#!/usr/bin/env bash
# Runs one kernel test under the oclgrind simulator with out-of-bounds,
# uninitialised-value, race and API checks; fails when the test fails or
# oclgrind reports anything (kernel problems go to its log file, API misuse
# to the output).
# Usage: tools/oclgrind_check.sh <test-binary> [args...]
set -uo pipefail
log=$(mktemp /tmp/tlcl-oclgrind-XXXXXX.log)
out=$(mktemp /tmp/tlcl-oclgrind-XXXXXX.out)
TLCL_TEST_PLATFORM=oclgrind oclgrind --build-options "-cl-opt-disable" --log "$log" --check-api --data-races --uninitialized "$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
if [ -s "$log" ] || grep -q "Oclgrind - " "$out"; then
  echo "oclgrind reported problems:"
  head -c 20000 "$log"
  rc=1
fi
rm -f "$log" "$out"
exit "$rc"
