#!/usr/bin/env bash
# `tlcl train`'s training loop against `tlcl bench --mode=train` on the same
# architecture, batch and size (EfficientNet-B0, 16, 224: the settings of
# bench/train_throughput.yaml), in alternating rounds. tlcl train's figure is
# the epoch line's "training N img/s" (loader included, validation
# excluded), with the image cache warm (a first, untimed run fills it);
# tlcl bench's is its img/s over 20 timed steps. Prints each round, then
# best and median of each and the ratio train / bench.
# usage: bench/compare_train_bench.sh [--device=N] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
dev="${1:---device=0}" rounds="${2:-3}"
[ -x build/tlcl ] || { echo "build tlcl first (cmake -S . -B build && cmake --build build)"; exit 1; }
[ -d data/fashion_mnist/train ] || python3 tools/make_fashion_mnist.py data/fashion_mnist 300
cfg=bench/train_throughput.yaml
train_rate() {
    build/tlcl train "$dev" --fresh --no-test "$cfg" 2>/dev/null |
        sed -n 's/.*training \([0-9.]*\) img\/s.*/\1/p' | tail -1
}
bench_rate() {
    build/tlcl bench "$dev" --arch=efficientnet-b0 --batch=16 --size=224 --mode=train --steps=20 --no-peaks 2>/dev/null |
        sed -n 's/.* \([0-9.]*\) img\/s.*/\1/p' | head -1
}
summary() { # NAME VALUES...: best and median
    local name=$1; shift
    printf '%s\n' "$@" | sort -g | awk -v n="$name" '{v[NR]=$1} END {m = NR % 2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2;
        printf "%-12s best %7.2f  median %7.2f img/s\n", n, v[NR], m}'
}
echo "warming the image cache (untimed)"; train_rate >/dev/null
t=() b=()
for r in $(seq "$rounds"); do
    t+=("$(train_rate)"); b+=("$(bench_rate)")
    echo "round $r: tlcl train ${t[-1]} img/s, tlcl bench ${b[-1]} img/s"
done
summary "tlcl train" "${t[@]}"
summary "tlcl bench" "${b[@]}"
best_t=$(printf '%s\n' "${t[@]}" | sort -g | tail -1) best_b=$(printf '%s\n' "${b[@]}" | sort -g | tail -1)
printf 'ratio of bests train / bench: %.3f\n' "$(echo "$best_t / $best_b" | bc -l)"
