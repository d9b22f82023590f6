#!/usr/bin/env bash
# One process on every core against N MPI ranks of one core each (issue 15,
# item 7): `tlcl bench --mode=train` at the same global batch and size, in
# alternating rounds. The single process's PoCL uses every core; each rank's
# PoCL one thread (POCL_MAX_PTHREAD_COUNT=1) on its own core (--bind-to
# core), its share of the batch, and the gradient all-reduce every step.
# Prints each round, best and median of each, the ratio of the bests, and the
# ranks' median all-reduce of the gradient buffer. A third series runs the
# ranks with one gradient bucket summed after the backward pass
# (--bucket-kib=1048576) instead of 4 MiB buckets overlapping it.
# usage: [BIND=core|none] bench/compare_mpi.sh [ARCH] [BATCH] [SIZE] [ROUNDS] [RANKS]
set -euo pipefail
cd "$(dirname "$0")/.."
arch="${1:-efficientnet-b0}" batch="${2:-16}" size="${3:-224}" rounds="${4:-3}" ranks="${5:-$(nproc)}"
[ -x build/tlcl ] || { echo "build tlcl first (cmake -S . -B build && cmake --build build)"; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
args=(bench --arch="$arch" --batch="$batch" --size="$size" --mode=train --steps=5 --warmup=1 --no-peaks)
one() { build/tlcl "${args[@]}" 2>/dev/null; }
many() { mpirun -np "$ranks" --bind-to "${BIND:-core}" -x POCL_MAX_PTHREAD_COUNT=1 build/tlcl "${args[@]}" "$@" 2>/dev/null; }
rate() { sed -n 's/.* \([0-9.]*\) img\/s.*/\1/p' | head -1; }
summary() { # NAME VALUES...: best and median
    local name=$1; shift
    printf '%s\n' "$@" | sort -g | awk -v n="$name" '{v[NR]=$1} END {m = NR % 2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2;
        printf "%-22s best %7.2f  median %7.2f img/s\n", n, v[NR], m}'
}
o=() m=() ar=() u=()
for r in $(seq "$rounds"); do
    o+=("$(one | rate)")
    out=$(many)
    m+=("$(echo "$out" | rate)")
    ar+=("$(echo "$out" | sed -n 's/.*gradient buffer: \([0-9.]*\) ms.*/\1/p')")
    u+=("$(many --bucket-kib=1048576 | rate)")
    echo "round $r: one process ${o[-1]} img/s, $ranks ranks ${m[-1]} img/s (all-reduce ${ar[-1]} ms)," \
         "one bucket after backward ${u[-1]} img/s"
done
echo "$arch, global batch $batch, size $size, $(date -u '+%Y-%m-%d %H:%M UTC')"
summary "one process" "${o[@]}"
summary "$ranks ranks x 1 core" "${m[@]}"
summary "same, one bucket" "${u[@]}"
best_o=$(printf '%s\n' "${o[@]}" | sort -g | tail -1) best_m=$(printf '%s\n' "${m[@]}" | sort -g | tail -1)
printf 'ratio of bests ranks / one process: %.3f\n' "$(echo "$best_m / $best_o" | bc -l)"
printf 'all-reduce of the gradient buffer (median per run): %s ms\n' "${ar[*]}"
