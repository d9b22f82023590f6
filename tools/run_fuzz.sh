#!/usr/bin/env bash
# Builds the libFuzzer targets (build-fuzz/, clang, ASan + UBSan, see
# tests/fuzz/README.md) and runs each for SECONDS (default 60), two at a
# time, with -timeout=1 (an input taking over 1 s is a finding),
# -rss_limit_mb=2048 and leak detection. Fails when any target reports a
# crash, a leak, a timeout or an out-of-memory; the input that did it is
# left in build-fuzz/fuzz-runs/ (crash-*, leak-*, timeout-*, oom-*) and the
# log beside it. New inputs go to build-fuzz/fuzz-corpus/<target>; the
# git-tracked seeds in tests/fuzz/corpus/<target> are only read.
# Usage: tools/run_fuzz.sh [SECONDS] [TARGET...]     e.g. tools/run_fuzz.sh 1800
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_config fuzz_checkpoint fuzz_image fuzz_keras fuzz_split fuzz_keras_import)
parallel=${TLCL_FUZZ_JOBS:-2}

CC=clang cmake -S . -B build-fuzz -DTLCL_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTLCL_TEST_RUSTICL=OFF \
      -DTLCL_TEST_OCLGRIND=OFF >/dev/null
cmake --build build-fuzz -j2 --target fuzz_all >/dev/null

runs=build-fuzz/fuzz-runs
mkdir -p "$runs"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

run_one() {
  local t=$1 work=build-fuzz/fuzz-corpus/$1
  mkdir -p "$work"
  rm -f "$runs/$t-"*
  # the first directory receives new inputs; the seeds are read only
  timeout $((secs + 120)) "build-fuzz/tests/fuzz/$t" -max_total_time="$secs" -timeout=1 -rss_limit_mb=2048 \
    -detect_leaks=1 -print_final_stats=1 -artifact_prefix="$runs/$t-" "$work" "tests/fuzz/corpus/$t" \
    >"$runs/$t.log" 2>&1
}

summary() {
  local t=$1 rc=$2 log=$runs/$1.log
  local last execs rate
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' || true)
  execs=$(grep -oE 'stat::number_of_executed_units: +[0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$' || echo '?')
  rate=$(grep -oE 'stat::average_exec_per_sec: +[0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$' || echo '?')
  printf '%-18s %s  execs %-9s exec/s %-6s %s\n' "$t" "$([ "$rc" -eq 0 ] && echo ok || echo FAILED)" "$execs" "$rate" "$last"
}

failed=0
declare -A rcs
for ((i = 0; i < ${#targets[@]}; i += parallel)); do
  pids=()
  for t in "${targets[@]:i:parallel}"; do
    run_one "$t" &
    pids+=("$!:$t")
  done
  for p in "${pids[@]}"; do
    rc=0
    wait "${p%%:*}" || rc=$?
    rcs[${p#*:}]=$rc
  done
done
echo "fuzzing, ${secs} s per target:"
for t in "${targets[@]}"; do
  summary "$t" "${rcs[$t]}"
  if [ "${rcs[$t]}" -ne 0 ]; then
    failed=1
    grep -m1 -E 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)|runtime error|SUMMARY' "$runs/$t.log" || true
    ls "$runs/$t-"* 2>/dev/null || true
  fi
done
[ "$failed" -eq 0 ] || { echo "fuzzing found problems: logs in $runs/"; exit 1; }
