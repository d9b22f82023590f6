#!/usr/bin/env bash
# Peak memory of one training step (forward, cross-entropy, backward, Adam):
# tlcl (PoCL, whose device buffers live in host RAM, or --device=N) against
# PyTorch on the CPU (2 threads), EfficientNet-B0, batch 32, 224x224, each
# under /usr/bin/time (peak resident set size of the whole process, kB).
# Both include their start-up; PyTorch runs two warm-up steps and one timed
# step, tlcl one warm-up step and one timed step.
# usage: bench/compare_memory.sh [--device=N] [ARCH] [BATCH] [SIZE]
set -euo pipefail
cd "$(dirname "$0")/.."
dev="${1:---device=0}" arch="${2:-efficientnet-b0}" batch="${3:-32}" size="${4:-224}"
[ -x build/tlcl ] || { echo "build tlcl first (cmake -S . -B build && cmake --build build)"; exit 1; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (Debian package time)"; exit 1; }
out=$(mktemp); trap 'rm -f "$out"' EXIT
peak() { # PROGRAM ARGS...: prints its peak RSS in kB (its own output goes to stderr)
    /usr/bin/time -o "$out" -f %M "$@" >&2 || { echo "failed: $*" >&2; exit 1; }
    tail -1 "$out"
}
t=$(peak build/tlcl bench "$dev" --arch="$arch" --batch="$batch" --size="$size" --mode=train --steps=1 --warmup=1)
p=$(peak /usr/bin/python3 bench/pytorch_peer.py train "$batch" "$size" 1 2 "$arch")
printf '%s training step batch %s size %s, peak RSS: tlcl %d MiB (%s kB)  pytorch %d MiB (%s kB)  ratio %.2f\n' \
    "$arch" "$batch" "$size" $((t / 1024)) "$t" $((p / 1024)) "$p" "$(echo "$t / $p" | bc -l)"
