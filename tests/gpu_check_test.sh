#!/usr/bin/env bash
# gpu_check_pocl: tools/gpu_check.sh's CPU-side parts on this GPU-less
# machine, with the binaries of the build at hand (--no-build):
#  - no GPU (PoCL's CPU only, and an emulated NVIDIA profile in the
#    environment, which must not pass for a GPU): exit status 3, a message
#    naming what was looked for, no report;
#  - an NVIDIA driver library without an ICD file: a private ICD file naming
#    it is written, next to a copy of the system's;
#  - the whole flow as a dry run on PoCL (--allow-cpu --quick): exit 0, a
#    Markdown and a JSON report that agree with the bench runs' own JSON;
#  - a test binary that fails: exit status 1 and the report says FAIL;
#  - a bad option: exit status 2.
# Usage: gpu_check_test.sh BUILD_DIR
set -uo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$1" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export OCL_ICD_VENDORS=/etc/OpenCL/vendors/pocl.icd
fails=0
check() { # check WHAT CONDITION...
  local what=$1; shift
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fails=$((fails + 1)); fi
}
gpu_check() { "$SRC/tools/gpu_check.sh" --no-build "$@"; }
# a cache of its own: the checks' `tlcl tune` must not leave winners for the
# other tests' device in theirs
export TLCL_CACHE_DIR="$WORK/cache"
# its bench runs start from this empty cache: on a CPU each would start a
# compiling helper process (tlcl bench, TLCL_COMPILE_HELPER), a second
# compiler next to the other tests of a -j2 run (this test took 145 s with
# them, against 56 s before); the helper has a test of its own
export TLCL_COMPILE_HELPER=0

# 1. no GPU, with an emulated profile set
TLCL_DEVICE_PROFILE=nvidia gpu_check --build-dir="$BUILD" --out="$WORK/none" --quick > "$WORK/none.out" 2> "$WORK/none.err"
rc=$?
check "no GPU: exit status 3 (got $rc)" test "$rc" = 3
check "no GPU: says so" grep -q "no OpenCL GPU found" "$WORK/none.err"
check "no GPU: names what it looked for" grep -q "Looked for: ICD files in $OCL_ICD_VENDORS.*libnvidia-opencl.so.1.*type GPU" "$WORK/none.err"
check "no GPU: lists the CPU device it found" grep -q "0  cpu  Portable Computing Language" "$WORK/none.err"
check "no GPU: the emulated profile is ignored" grep -q "ignoring TLCL_DEVICE_PROFILE=nvidia" "$WORK/none.out"
# a shell error (an unset variable under set -u, a bad command) in the
# driver search would pass for "no driver found": none may be printed
check "no GPU: no shell error" bash -c "! grep -q 'gpu_check.sh: line' '$WORK/none.err'"
check "no GPU: no report written" test ! -e "$WORK/none/gpu_check.md" -a ! -e "$WORK/none/gpu_check.json"

# 2. NVIDIA's library present (a stand-in), no ICD file naming it
mkdir -p "$WORK/driver" && echo "not a library" > "$WORK/driver/libnvidia-opencl.so.1"
GPU_CHECK_DRIVER_DIRS="$WORK/driver" gpu_check --build-dir="$BUILD" --out="$WORK/nv" --quick > "$WORK/nv.out" 2> "$WORK/nv.err"
rc=$?
check "NVIDIA stand-in: still no GPU, exit status 3 (got $rc)" test "$rc" = 3
check "NVIDIA stand-in: its ICD file names the library" \
  test "$(cat "$WORK/nv/icd/nvidia.icd" 2>/dev/null)" = "$WORK/driver/libnvidia-opencl.so.1"
check "NVIDIA stand-in: the system's ICD file kept next to it" cmp -s "$WORK/nv/icd/pocl.icd" "$OCL_ICD_VENDORS"

# 3. the whole flow on PoCL
gpu_check --build-dir="$BUILD" --out="$WORK/dry" --allow-cpu --quick > "$WORK/dry.out" 2>&1
rc=$?
check "dry run: exit status 0 (got $rc)" test "$rc" = 0 || cat "$WORK/dry.out"
check "dry run: Markdown: 10 passing rows (test_loss, tlcl tune, 8 bench runs)" \
  test "$(grep -c '^| .* | pass |' "$WORK/dry/gpu_check.md")" = 10
check "dry run: tlcl tune ran and stored its winners" grep -q '^| tlcl tune | pass | .* | tuning time: ' \
  "$WORK/dry/gpu_check.md"
tuned=$(tail -1 "$WORK/dry/logs/tune.log" 2>/dev/null)
check "dry run: the bench runs used them ($tuned)" grep -qF "tuning: ${tuned:-(no tune log)}" \
  "$WORK/dry/logs/bench-efficientnet-b0-train-2.log"
check "dry run: Markdown: marked as not a GPU" grep -q "Not a GPU" "$WORK/dry/gpu_check.md"
check "dry run: JSON agrees with the bench runs and the Markdown" python3 - "$WORK/dry" <<'EOF'
import json, re, sys
d = sys.argv[1]
j = json.load(open(d + "/gpu_check.json"))
md = open(d + "/gpu_check.md").read()
assert j["pass"] is True and j["quick"] is True and j["device"]["type"] == "cpu", j
benches = [r for r in j["results"] if r["kind"] == "bench"]
tests = [r for r in j["results"] if r["kind"] == "test"]
assert [t["name"] for t in tests] == ["test_loss"] and tests[0]["pass"], tests
tunes = [r for r in j["results"] if r["kind"] == "tune"]
assert len(tunes) == 1 and tunes[0]["pass"] and tunes[0]["summary"].startswith("tuning time: "), tunes
want = {(a, m, b) for a in ("efficientnet-b0", "efficientnetv2-b0") for m in ("train", "infer") for b in (2, 8)}
assert {(r["arch"], r["mode"], r["batch"]) for r in benches} == want, benches
for r in benches:
    own = json.load(open(f'{d}/bench/{r["arch"]}-{r["mode"]}-{r["batch"]}.json'))
    assert r["result"] == own, r["arch"]
    ips = own["images_per_s"]
    assert ips > 0 and abs(ips - r["batch"] * 1000 / own["ms_per_step"]) < 0.01 * ips, own
    row = f'| bench {r["arch"]} {r["mode"]}, batch {r["batch"]}, 32x32 | pass | {own["ms_per_step"]:.1f} ms/step | {ips:.1f} img/s |'
    assert row in md, row
EOF

# 4. a failing test binary: the tlcl binary alone, no test_loss next to it
mkdir -p "$WORK/broken"
ln -s "$BUILD/tlcl" "$WORK/broken/tlcl"
gpu_check --build-dir="$WORK/broken" --out="$WORK/fail" --allow-cpu --quick > "$WORK/fail.out" 2>&1
rc=$?
check "failing test: exit status 1 (got $rc)" test "$rc" = 1
check "failing test: the report says FAIL" grep -q '^| test_loss | \*\*FAIL\*\* |' "$WORK/fail/gpu_check.md"
check "failing test: JSON pass false" grep -q '"pass": false,$' "$WORK/fail/gpu_check.json"

# 5. a bad option
gpu_check --device=x > /dev/null 2>&1
rc=$?
check "bad option: exit status 2 (got $rc)" test "$rc" = 2

echo "$fails failed"
exit $((fails > 0))
