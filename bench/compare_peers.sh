#!/usr/bin/env bash
# Same-run comparison of tlcl (PoCL, or --device=N) with PyTorch and Keras on
# the CPU (2 threads each), 224x224, batch 16, inference and a training step
# (forward, cross-entropy, backward, Adam), 10 classes, random weights:
#   efficientnet-b0     PyTorch: torchvision's EfficientNet-B0
#   efficientnetv2-b0   PyTorch: tools/torch_efficientnet_v2.py (torchvision
#                       0.14 has no V2); Keras: keras.applications.EfficientNetV2B0
#   efficientnet-lite0  PyTorch: the model of tools/make_lite0_fixture.py
# The runs alternate (tlcl, PyTorch, Keras, tlcl, ...) and the best of each is
# compared, so a passing load on the machine hurts all alike. One line per
# (arch, mode, peer): img/s of both and the ratio tlcl / peer, then the ratio
# of the medians (a check on one lucky run) and every run.
#
# usage: bench/compare_peers.sh [--device=N] [ROUNDS]        (default: device 0, 2 rounds)
# environment (defaults in brackets):
#   ARCHS          archs to run [efficientnet-b0 efficientnetv2-b0 efficientnet-lite0]
#   MODES          [infer train]
#   PEERS          [pytorch keras]
#   KERAS_ARCHS    archs Keras runs, where also in ARCHS [efficientnetv2-b0]
#   BATCH SIZE STEPS THREADS  [16 224 3 2]
#   TORCH_PYTHON   Debian's python3 with python3-torch, python3-torchvision [/usr/bin/python3]
#   KERAS_PYTHON   a python3 with TensorFlow (pip install tensorflow-cpu) [python3]
#   TORCH_OMP_WAIT_POLICY  OMP_WAIT_POLICY for PyTorch [PASSIVE]; empty: libgomp's
#                  default. With the default, an OpenMP thread spins at every
#                  barrier, and on this 2-core machine shared with other jobs
#                  PyTorch then fell 4-70x (Lite0 inference at batch 2 / 64:
#                  3.10 and 14.24 img/s against 204 and 242 with PASSIVE, same
#                  minutes, load average 3.7-4.1); tlcl (PoCL) and TensorFlow
#                  do not spin like that.
# e.g. a quick run: ARCHS=efficientnetv2-b0 MODES=train bench/compare_peers.sh --device=0 1
set -euo pipefail
cd "$(dirname "$0")/.."
dev="${1:---device=0}"
rounds="${2:-2}"
ARCHS="${ARCHS:-efficientnet-b0 efficientnetv2-b0 efficientnet-lite0}"
MODES="${MODES:-infer train}"
PEERS="${PEERS:-pytorch keras}"
KERAS_ARCHS="${KERAS_ARCHS:-efficientnetv2-b0}"
BATCH="${BATCH:-16}" SIZE="${SIZE:-224}" STEPS="${STEPS:-3}" THREADS="${THREADS:-2}"
TORCH_PYTHON="${TORCH_PYTHON:-/usr/bin/python3}"
KERAS_PYTHON="${KERAS_PYTHON:-python3}"
TORCH_OMP_WAIT_POLICY="${TORCH_OMP_WAIT_POLICY-PASSIVE}"
torch_env=(env); [ -n "$TORCH_OMP_WAIT_POLICY" ] && torch_env=(env OMP_WAIT_POLICY="$TORCH_OMP_WAIT_POLICY")
[ -x build/tlcl ] || { echo "build tlcl first (cmake -S . -B build && cmake --build build)"; exit 1; }

has() { case " $1 " in *" $2 "*) return 0 ;; *) return 1 ;; esac; }
log=$(mktemp); trap 'rm -f "$log"' EXIT
# run PROGRAM ARGS...: the img/s it printed, or "fail" (its last lines go to stderr)
run() {
    if "$@" >"$log" 2>&1 && grep -q ' img/s' "$log"; then
        sed -n 's/.* \([0-9.]*\) img\/s.*/\1/p' "$log" | tail -1
    else
        echo "  failed: $*" >&2; grep -v -E '^(I0000|WARNING: All log)' "$log" | tail -3 | sed 's/^/    /' >&2
        echo fail
    fi
}
best() { grep -v fail | sort -g | tail -1; }
# the median of the runs that did not fail (the mean of the middle two for an even count)
median() { grep -v fail | sort -g | awk '{v[NR] = $1} END {if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }

echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) (a loaded machine moves single runs); PyTorch OMP_WAIT_POLICY=${TORCH_OMP_WAIT_POLICY:-default}"
keras=0
if has "$PEERS" keras; then
    if "$KERAS_PYTHON" -c 'import tensorflow' >/dev/null 2>&1; then
        keras=1
        echo "keras: $("$KERAS_PYTHON" -c 'import os; os.environ["TF_CPP_MIN_LOG_LEVEL"]="3"; import tensorflow as tf, keras; print("tensorflow", tf.__version__, "keras", keras.__version__)' 2>/dev/null) ($KERAS_PYTHON)"
    else
        echo "keras: SKIPPED, TensorFlow is not importable by $KERAS_PYTHON (install it: python3 -m pip install tensorflow-cpu, or set KERAS_PYTHON)"
    fi
fi
for arch in $ARCHS; do
    has "$PEERS" pytorch && "$TORCH_PYTHON" bench/pytorch_peer.py check "$arch" build/tlcl
done
for arch in $ARCHS; do
for mode in $MODES; do
    peers=()
    has "$PEERS" pytorch && peers+=(pytorch)
    [ "$keras" = 1 ] && has "$KERAS_ARCHS" "$arch" && peers+=(keras)
    [ ${#peers[@]} -gt 0 ] || { echo "$arch $mode: no peer"; continue; }
    t=(); p=(); k=()
    for r in $(seq "$rounds"); do
        t+=("$(run build/tlcl bench "$dev" --arch="$arch" --mode="$mode" --batch="$BATCH" --size="$SIZE" --steps="$STEPS" --warmup=1)")
        has "${peers[*]}" pytorch &&
            p+=("$(run "${torch_env[@]}" "$TORCH_PYTHON" bench/pytorch_peer.py "$mode" "$BATCH" "$SIZE" "$STEPS" "$THREADS" "$arch")")
        has "${peers[*]}" keras &&
            k+=("$(run "$KERAS_PYTHON" bench/keras_peer.py "$mode" "$BATCH" "$SIZE" "$STEPS" "$THREADS" "$arch")")
    done
    tb=$(printf '%s\n' "${t[@]}" | best || true)
    for peer in "${peers[@]}"; do
        if [ "$peer" = pytorch ]; then runs=("${p[@]}"); else runs=("${k[@]}"); fi
        pb=$(printf '%s\n' "${runs[@]}" | best || true)
        if [ -z "$tb" ] || [ -z "$pb" ]; then
            printf '%-18s %-5s batch %s size %s: tlcl %s  %s %s  (no ratio: a program failed)\n' \
                "$arch" "$mode" "$BATCH" "$SIZE" "${tb:-failed}" "$peer" "${pb:-failed}"
            continue
        fi
        tm=$(printf '%s\n' "${t[@]}" | median) pm=$(printf '%s\n' "${runs[@]}" | median)
        printf '%-18s %-5s batch %s size %s: tlcl %6.2f img/s  %-7s %6.2f img/s  ratio %.2f  (median ratio %.2f; runs: tlcl %s; %s %s)\n' \
            "$arch" "$mode" "$BATCH" "$SIZE" "$tb" "$peer" "$pb" "$(echo "$tb / $pb" | bc -l)" "$(echo "$tm / $pm" | bc -l)" \
            "${t[*]}" "$peer" "${runs[*]}"
    done
done
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
