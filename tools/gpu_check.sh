#!/usr/bin/env bash
# tools/gpu_check.sh — the one command for the day an OpenCL GPU is at hand
# (issue 17): finds the vendor's OpenCL driver, builds tlcl, picks the GPU,
# runs the kernel tests and the tiny training test on it, tunes the kernels'
# launch parameters for it (`tlcl tune`), times `tlcl bench`
# (B0 and V2-B0, training and inference, batch 16 and 64) and writes
# gpu_check.md and gpu_check.json. Under 10 minutes on a GPU.
#
# It needs a C compiler and nothing else of tlcl's installed: run
# `tools/gpu_check.sh --fetch-debs` on a Debian 12 machine first, and the
# .deb files of every build dependency land in tools/gpu_debs/ (ignored by
# git), which the check unpacks with `dpkg -x` next to them (no root, no
# package installs) when it finds them.
#
# Exit status: 0 every check passed; 1 a test or a bench run failed (the
# report says which); 2 bad options; 3 no OpenCL GPU found (the message says
# what was looked for); 4 set-up or build failed.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD

usage() {
  cat <<'EOF'
Usage: tools/gpu_check.sh [--out=DIR] [--build-dir=DIR] [--no-build] [--device=N]
                          [--allow-cpu] [--quick] [--debs=DIR] [--fetch-debs]
  --out=DIR        where gpu_check.md, gpu_check.json and the logs go (default gpu-check-results/)
  --build-dir=DIR  where tlcl is built (default build-gpu/)
  --no-build       use the tlcl and test binaries already in --build-dir
  --device=N       the device by `tlcl devices` index (default: the first GPU)
  --allow-cpu      take a CPU device when there is no GPU: a dry run of the whole flow, not a GPU check
  --quick          tiny settings (quick test subsets, 32x32 images, batch 2, one step): checks the flow
  --debs=DIR       the carried .deb files (default tools/gpu_debs/)
  --fetch-debs     download tlcl's build dependencies' .deb files into --debs with apt-get and exit
EOF
}

OUT=gpu-check-results BUILD=build-gpu DEBS=tools/gpu_debs DEVICE="" ALLOW_CPU=0 QUICK=0 NO_BUILD=0 FETCH=0
for arg in "$@"; do
  case "$arg" in
    --out=?*) OUT=${arg#*=} ;;
    --build-dir=?*) BUILD=${arg#*=} ;;
    --debs=?*) DEBS=${arg#*=} ;;
    --device=*) DEVICE=${arg#*=}
      [[ "$DEVICE" =~ ^[0-9]+$ ]] || { echo "gpu_check: --device expects an index as \`tlcl devices\` prints, got '$DEVICE'" >&2; exit 2; } ;;
    --allow-cpu) ALLOW_CPU=1 ;;
    --quick) QUICK=1 ;;
    --no-build) NO_BUILD=1 ;;
    --fetch-debs) FETCH=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu_check: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
  esac
done

die() { echo "gpu_check: $2" >&2; exit "$1"; }

# ---- the carried build dependencies -----------------------------------------
# tlcl's build needs (tools/setup.sh's list, less the test-only tools) and
# what they pull in, less what every Debian system has (priority required or
# important).
DEB_PACKAGES=(cmake pkg-config ocl-icd-opencl-dev opencl-c-headers ocl-icd-libopencl1 libclblast-dev libyaml-dev
              libcjson-dev libstb-dev libhdf5-dev zlib1g-dev libplplot-dev plplot-driver-cairo libcurl4-openssl-dev)
TOOLCHAIN='^(gcc|g\+\+|cpp|gfortran|binutils|libc6|libc-dev|libgcc|libstdc\+\+|linux-libc-dev|libgfortran|libquadmath|libasan|libubsan|libtsan|liblsan|libitm|libatomic|libgomp|libcc1|libisl|libmpc|libmpfr|libgmp|libctf|libbinutils|libgprofng|libjansson)'

fetch_debs() {
  command -v apt-get >/dev/null || die 4 "--fetch-debs needs apt-get (a Debian 12 machine)"
  mkdir -p "$DEBS"
  # what apt would install on an empty system (alternatives resolved as apt
  # does), less the base system and the compiler toolchain the GPU machine has
  local closure want=()
  closure=$(apt-get -s -o Dir::State::status=/dev/null install --no-install-recommends "${DEB_PACKAGES[@]}" 2>/dev/null |
            awk '/^Inst / {print $2}' | grep -Ev "$TOOLCHAIN") || die 4 "apt-get cannot resolve ${DEB_PACKAGES[*]}"
  # one apt-cache call for all: its records' Package and Priority fields
  # shellcheck disable=SC2086
  mapfile -t want < <(apt-cache show --no-all-versions $closure 2>/dev/null |
    awk '/^Package:/ {p=$2} /^Priority:/ && $2 != "required" && $2 != "important" {print p}' | sort -u)
  echo "gpu_check: downloading ${#want[@]} packages into $DEBS"
  (cd "$DEBS" && apt-get download -qq "${want[@]}" 2>&1 | grep -v "^W: Download is performed unsandboxed" || true)
  du -sh "$DEBS"
}

# dpkg -x where dpkg is, else ar and tar (binutils comes with the compiler):
# the GPU machine need not run Debian.
extract_deb() {
  if command -v dpkg >/dev/null; then dpkg -x "$1" "$2"; return; fi
  local member zip
  member=$(ar t "$1" | grep '^data\.tar') || die 4 "$1: no data.tar member (not a .deb file?)"
  case "$member" in *.xz) zip=-J ;; *.zst) zip=--zstd ;; *.gz) zip=-z ;; *.bz2) zip=-j ;; *) zip= ;; esac
  ar p "$1" "$member" | tar -x $zip -C "$2" -f -
}

# The .deb files unpacked once into $DEBS/root; the build and the runs find
# their headers, CMake packages, pkg-config files and libraries there first.
use_debs() {
  local root="$DEBS/root" arch
  if [ ! -f "$root/.unpacked" ]; then
    command -v dpkg >/dev/null || command -v ar >/dev/null ||
      die 4 "unpacking $DEBS needs dpkg or ar (binutils), or tlcl's build dependencies installed"
    echo "gpu_check: unpacking $(ls "$DEBS"/*.deb | wc -l) .deb files into $root"
    mkdir -p "$root"
    for d in "$DEBS"/*.deb; do extract_deb "$d" "$root"; done
    # pkg-config files name /usr (in prefix=, libdir=, -I, -L): point them at the unpacked tree
    find "$root" -name '*.pc' -exec sed -i -E "s#(^[a-z_]+=|-I|-L|-L\"|[ \"])/usr(/| |\"|\$)#\1$root/usr\2#g" {} +
    touch "$root/.unpacked"
  fi
  root=$(cd "$root" && pwd)
  arch=$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
  export PATH="$root/usr/bin:$PATH"
  export CMAKE_PREFIX_PATH="$root/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  export PKG_CONFIG_PATH="$root/usr/lib/$arch/pkgconfig:$root/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  export CPATH="$root/usr/include:$root/usr/include/hdf5/serial${CPATH:+:$CPATH}"
  export LIBRARY_PATH="$root/usr/lib/$arch:$root/usr/lib/$arch/hdf5/serial${LIBRARY_PATH:+:$LIBRARY_PATH}"
  export LD_LIBRARY_PATH="$root/usr/lib/$arch:$root/usr/lib/$arch/hdf5/serial${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # HDF5's compiler wrapper (h5cc) answers with the /usr paths it was built
  # with: CMake finds the unpacked library by its paths instead
  local hdf5="$root/usr/lib/$arch/hdf5/serial"
  HDF5_ARGS=(-DHDF5_C_COMPILER_EXECUTABLE="$root/no-h5cc" -DHDF5_C_INCLUDE_DIR="$root/usr/include/hdf5/serial"
             -DHDF5_C_LIBRARY_hdf5="$hdf5/libhdf5.so" -DHDF5_C_LIBRARY_hdf5_hl="$hdf5/libhdf5_hl.so"
             -DHDF5_HL_INCLUDE_DIR="$root/usr/include/hdf5/serial")
}
HDF5_ARGS=()

# ---- the vendor's OpenCL driver ---------------------------------------------
ICD_LOOKED=""
# NVIDIA's driver ships libnvidia-opencl.so.1 but, in containers and
# driver-only installs, often no /etc/OpenCL/vendors/nvidia.icd: then a
# private vendors folder holds one naming the library, next to the system's
# own ICD files. GPU_CHECK_DRIVER_DIRS (colon-separated) is searched first.
find_nvidia_opencl() {
  local d
  for d in ${GPU_CHECK_DRIVER_DIRS:+${GPU_CHECK_DRIVER_DIRS//:/ }} $(ldconfig -p 2>/dev/null | sed -n 's|.*libnvidia-opencl\.so\.1 .*=> \(.*\)/[^/]*$|\1|p') \
           /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/wsl/lib; do
    [ -e "$d/libnvidia-opencl.so.1" ] && { echo "$d/libnvidia-opencl.so.1"; return 0; }
  done
  return 1
}

setup_icds() {
  local sys=${OCL_ICD_VENDORS:-/etc/OpenCL/vendors} nv
  ICD_LOOKED="ICD files in $sys"
  if nv=$(find_nvidia_opencl); then
    ICD_LOOKED="$ICD_LOOKED; NVIDIA's $nv"
    # OCL_ICD_VENDORS may name one ICD file or a folder of them
    local icds=("$sys") f
    [ -d "$sys" ] && icds=("$sys"/*.icd)
    if ! grep -qs nvidia "${icds[@]}"; then
      local own="$OUT/icd"
      mkdir -p "$own"
      for f in "${icds[@]}"; do [ -f "$f" ] && cp "$f" "$own/"; done
      echo "$nv" > "$own/nvidia.icd"
      OCL_ICD_VENDORS=$own
      export OCL_ICD_VENDORS
      echo "gpu_check: no ICD file names NVIDIA's driver: wrote $OCL_ICD_VENDORS/nvidia.icd -> $nv"
    fi
  else
    ICD_LOOKED="$ICD_LOOKED; libnvidia-opencl.so.1 (ldconfig, /usr/lib*, /usr/local/nvidia, WSL): none"
  fi
  echo "gpu_check: OpenCL ICD files: $(ls "${OCL_ICD_VENDORS:-/etc/OpenCL/vendors}" 2>/dev/null | tr '\n' ' ')"
}

# ---- build ------------------------------------------------------------------
TESTS=(gemm conv norm loss stochastic run train_tiny)
[ "$QUICK" = 1 ] && TESTS=(loss)

build_tlcl() {
  command -v cc >/dev/null || command -v gcc >/dev/null || die 4 "no C compiler (cc or gcc) on PATH"
  command -v cmake >/dev/null || die 4 "no cmake on PATH: run tools/gpu_check.sh --fetch-debs on a Debian 12 machine and carry $DEBS"
  local targets=(--target tlcl) t
  for t in "${TESTS[@]}"; do targets+=(--target "test_$t"); done
  echo "gpu_check: building tlcl in $BUILD"
  { cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTLCL_TEST_RUSTICL=OFF -DTLCL_TEST_OCLGRIND=OFF \
          "${HDF5_ARGS[@]}" &&
    cmake --build "$BUILD" -j"$(nproc 2>/dev/null || echo 2)" "${targets[@]}"; } > "$OUT/logs/build.log" 2>&1 ||
    { tail -20 "$OUT/logs/build.log" >&2; die 4 "the build failed: $OUT/logs/build.log"; }
}

# ---- the device -------------------------------------------------------------
# Sets DEV (index), DEV_TYPE, DEV_NAME, DEV_PLATFORM from `tlcl devices --json`.
pick_device() {
  local list
  if ! "$TLCL" devices --json > "$OUT/devices.json" 2> "$OUT/logs/devices.log"; then
    echo '[]' > "$OUT/devices.json"
  fi
  # one line per device: index, type, platform, name (cJSON prints a key a line)
  list=$(awk -F'\t' '/"index":/ {i=$NF; gsub(/[^0-9]/, "", i)}
                     /"platform":/ {p=$NF} /"name":/ {n=$NF}
                     /"type":/ {t=$NF; gsub(/[",]/, "", t); gsub(/[",]/, "", p); gsub(/[",]/, "", n);
                                print i "\t" t "\t" p "\t" n}' "$OUT/devices.json")
  local pick
  if [ -n "$DEVICE" ]; then
    pick=$(awk -F'\t' -v d="$DEVICE" '$1 == d' <<<"$list")
    [ -n "$pick" ] || die 3 "no device $DEVICE: \`tlcl devices\` lists $(wc -l <<<"$list" | tr -d ' ') device(s)"
  else
    pick=$(awk -F'\t' '$2 == "gpu"' <<<"$list" | head -1)
    [ -z "$pick" ] && [ "$ALLOW_CPU" = 1 ] && pick=$(head -1 <<<"$list")
  fi
  if [ -z "$pick" ] || { [ "$(cut -f2 <<<"$pick")" != gpu ] && [ "$ALLOW_CPU" = 0 ]; }; then
    echo "gpu_check: no OpenCL GPU found. Looked for: $ICD_LOOKED; a device of type GPU in \`tlcl devices\`." >&2
    if [ -n "$list" ]; then
      echo "gpu_check: the devices found:" >&2
      awk -F'\t' '{print "  " $1 "  " $2 "  " $3 " / " $4}' <<<"$list" >&2
    else
      echo "gpu_check: no OpenCL device at all: $(tail -1 "$OUT/logs/devices.log" 2>/dev/null)" >&2
    fi
    echo "gpu_check: install the GPU vendor's OpenCL driver, or pass --allow-cpu for a dry run on a CPU device." >&2
    exit 3
  fi
  IFS=$'\t' read -r DEV DEV_TYPE DEV_PLATFORM DEV_NAME <<<"$pick"
  echo "gpu_check: device $DEV ($DEV_TYPE): $DEV_PLATFORM / $DEV_NAME"
}

# ---- the checks -------------------------------------------------------------
RESULTS_JSON=()  # one JSON object per test or bench run
RESULTS_MD=()    # one Markdown table row each
FAILED=0

json_str() { printf '"%s"' "$(sed 's/\\/\\\\/g; s/"/\\"/g' <<<"$1" | tr -d '\n\t')"; }

run_tests() {
  local t start end rc summary
  for t in "${TESTS[@]}"; do
    start=$(date +%s.%N)
    rc=0
    TLCL_TEST_DEVICE=$DEV TLCL_TEST_QUICK=$QUICK timeout 300 "$BUILD/tests/test_$t" > "$OUT/logs/test_$t.log" 2>&1 || rc=$?
    end=$(date +%s.%N)
    summary=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$OUT/logs/test_$t.log" | tail -1 || true)
    [ "$rc" = 0 ] || { FAILED=1; summary="${summary:-no summary} (exit status $rc)"; }
    local secs
    secs=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", b - a}')
    echo "gpu_check: test_$t: $([ "$rc" = 0 ] && echo pass || echo FAIL) in ${secs} s: $summary"
    RESULTS_JSON+=("{\"kind\": \"test\", \"name\": \"test_$t\", \"pass\": $([ "$rc" = 0 ] && echo true || echo false), \"seconds\": $secs, \"summary\": $(json_str "$summary"), \"log\": \"logs/test_$t.log\"}")
    RESULTS_MD+=("| test_$t | $([ "$rc" = 0 ] && echo pass || echo '**FAIL**') | $secs s | $summary |")
  done
}

# `tlcl tune` on the GPU before the bench runs, which then use its winners
# (the same cache directory); the log holds every call's default and tuned time.
run_tune() {
  local args=(--device="$DEV" --budget=150) rc=0 start end secs summary
  [ "$QUICK" = 1 ] && args+=(--size=32 --batch=2 --budget=30)
  start=$(date +%s.%N)
  timeout 240 "$TLCL" tune "${args[@]}" > "$OUT/logs/tune.log" 2>&1 || rc=$?
  end=$(date +%s.%N)
  secs=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", b - a}')
  summary=$(grep -E '^tuning time:' "$OUT/logs/tune.log" | tail -1 || true)
  [ "$rc" = 0 ] || { FAILED=1; summary="${summary:-no summary} (exit status $rc)"; }
  echo "gpu_check: tlcl tune: $([ "$rc" = 0 ] && echo pass || echo FAIL) in ${secs} s: $summary"
  RESULTS_JSON+=("{\"kind\": \"tune\", \"pass\": $([ "$rc" = 0 ] && echo true || echo false), \"seconds\": $secs, \"summary\": $(json_str "$summary"), \"log\": \"logs/tune.log\"}")
  RESULTS_MD+=("| tlcl tune | $([ "$rc" = 0 ] && echo pass || echo '**FAIL**') | $secs s | $summary |")
}

json_number() { sed -n "s/^[[:space:]]*\"$1\":[[:space:]]*\([-0-9.e+]*\).*/\1/p" "$2" | head -1; }

run_bench() {
  local arch mode batch size=224 steps=5 warmup=2 peaks="" f rc
  [ "$QUICK" = 1 ] && { size=32 steps=1 warmup=0; }
  for arch in efficientnet-b0 efficientnetv2-b0; do
    for mode in train infer; do
      for batch in 16 64; do
        [ "$QUICK" = 1 ] && batch=$((batch / 8))
        f="$OUT/bench/$arch-$mode-$batch.json"
        rc=0
        # the GEMM and copy peaks once (the first run), not in every row
        timeout 180 "$TLCL" bench --device="$DEV" --arch="$arch" --mode="$mode" --batch="$batch" --size="$size" \
          --steps="$steps" --warmup="$warmup" $peaks --json="$f" > "$OUT/logs/bench-$arch-$mode-$batch.log" 2>&1 || rc=$?
        peaks=--no-peaks
        local ips="" ms="" ok=false
        if [ "$rc" = 0 ] && [ -s "$f" ]; then
          ok=true
          ips=$(printf '%.1f' "$(json_number images_per_s "$f")") ms=$(printf '%.1f' "$(json_number ms_per_step "$f")")
          RESULTS_JSON+=("{\"kind\": \"bench\", \"arch\": \"$arch\", \"mode\": \"$mode\", \"batch\": $batch, \"size\": $size, \"pass\": true, \"result\": $(cat "$f")}")
        else
          FAILED=1
          RESULTS_JSON+=("{\"kind\": \"bench\", \"arch\": \"$arch\", \"mode\": \"$mode\", \"batch\": $batch, \"size\": $size, \"pass\": false, \"error\": $(json_str "exit status $rc: $(tail -1 "$OUT/logs/bench-$arch-$mode-$batch.log")")}")
        fi
        echo "gpu_check: bench $arch $mode batch $batch: $([ $ok = true ] && echo "$ips img/s, $ms ms/step" || echo "FAILED (exit status $rc)")"
        RESULTS_MD+=("| bench $arch $mode, batch $batch, ${size}x$size | $([ $ok = true ] && echo pass || echo '**FAIL**') | ${ms:--} ms/step | ${ips:--} img/s |")
      done
    done
  done
}

# Published by temporary file, sync, rename: a reader never sees half a report.
publish() {
  local tmp="$1.tmp.$$"
  cat > "$tmp"
  sync "$tmp" 2>/dev/null || sync
  mv -f "$tmp" "$1"
}

write_reports() {
  local when commit i
  when=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  commit=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)
  {
    printf '{\n  "when": "%s",\n  "commit": "%s",\n  "host": %s,\n  "quick": %s,\n  "pass": %s,\n' \
      "$when" "$commit" "$(json_str "$(uname -n)")" "$([ "$QUICK" = 1 ] && echo true || echo false)" \
      "$([ "$FAILED" = 0 ] && echo true || echo false)"
    printf '  "device": {"index": %s, "type": "%s", "platform": %s, "name": %s},\n' "$DEV" "$DEV_TYPE" \
      "$(json_str "$DEV_PLATFORM")" "$(json_str "$DEV_NAME")"
    printf '  "devices": %s,\n  "results": [\n' "$(cat "$OUT/devices.json")"
    for i in "${!RESULTS_JSON[@]}"; do
      printf '    %s%s\n' "${RESULTS_JSON[$i]}" "$([ "$i" -lt $((${#RESULTS_JSON[@]} - 1)) ] && echo ,)"
    done
    printf '  ]\n}\n'
  } | publish "$OUT/gpu_check.json"
  {
    echo "# tlcl GPU check, $when"
    echo
    echo "Commit $commit on $(uname -n); device $DEV ($DEV_TYPE): $DEV_PLATFORM / $DEV_NAME."
    [ "$DEV_TYPE" = gpu ] || echo "**Not a GPU: a dry run of the flow (--allow-cpu).**"
    [ "$QUICK" = 1 ] && echo "**Quick settings (--quick): tiny shapes, figures not comparable.**"
    echo
    echo "Overall: $([ "$FAILED" = 0 ] && echo 'every check passed' || echo '**some checks failed**')."
    echo
    echo "| check | result | time | detail |"
    echo "| --- | --- | --- | --- |"
    printf '%s\n' "${RESULTS_MD[@]}"
    echo
    echo "Logs: \`logs/\`; each bench run's full result (per-layer times, peaks): \`bench/\`; the devices: \`devices.json\`."
  } | publish "$OUT/gpu_check.md"
}

# ---- main -------------------------------------------------------------------
if [ "$FETCH" = 1 ]; then
  fetch_debs
  exit 0
fi
mkdir -p "$OUT/logs" "$OUT/bench"
OUT=$(cd "$OUT" && pwd)
if [ -n "${TLCL_DEVICE_PROFILE:-}" ]; then
  # an emulated profile makes a CPU device look like a GPU: not what this checks
  echo "gpu_check: ignoring TLCL_DEVICE_PROFILE=$TLCL_DEVICE_PROFILE (it emulates a GPU; this checks a real one)"
  unset TLCL_DEVICE_PROFILE
fi
unset TLCL_DEVICE TLCL_TEST_PLATFORM
export TLCL_CACHE_DIR="${TLCL_CACHE_DIR:-$OUT/cache}"
if compgen -G "$DEBS/*.deb" >/dev/null; then use_debs; fi
setup_icds
[ "$NO_BUILD" = 1 ] || build_tlcl
TLCL="$BUILD/tlcl"
[ -x "$TLCL" ] || die 4 "no tlcl binary at $TLCL (build it, or drop --no-build)"
pick_device
run_tests
run_tune
run_bench
write_reports
echo "gpu_check: $([ "$FAILED" = 0 ] && echo 'every check passed' || echo 'some checks FAILED'): $OUT/gpu_check.md, $OUT/gpu_check.json"
exit "$FAILED"
