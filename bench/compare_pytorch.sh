#!/usr/bin/env bash
# Same-run comparison of tlcl (PoCL, or --device=N) with PyTorch on the CPU
# (2 threads): EfficientNet-B0 (torchvision) and EfficientNet-Lite0 (the
# PyTorch model of tools/make_lite0_fixture.py), 224x224, batch 16,
# inference and a training step (forward, backward, Adam). (torchvision 0.14
# has no EfficientNetV2-B0, so V2-B0 has no PyTorch peer here.) The runs alternate (tlcl, PyTorch, tlcl,
# PyTorch) and the best of each is compared, so a passing load on the machine
# hurts both alike. Needs Debian's python3-torch and python3-torchvision.
# usage: bench/compare_pytorch.sh [--device=N] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
dev="${1:---device=0}"
rounds="${2:-2}"
[ -x build/tlcl ] || { echo "build tlcl first (cmake -S . -B build && cmake --build build)"; exit 1; }
best() { sort -g | tail -1; }
for arch in efficientnet-b0 efficientnet-lite0; do
for mode in infer train; do
  t=(); p=()
  for r in $(seq "$rounds"); do
    t+=("$(build/tlcl bench "$dev" --arch=$arch --mode=$mode --batch=16 --size=224 --steps=3 --warmup=1 |
            sed -n 's/.* \([0-9.]*\) img\/s.*/\1/p')")
    p+=("$(/usr/bin/python3 bench/pytorch_peer.py $mode 16 224 3 2 $arch | sed -n 's/.* \([0-9.]*\) img\/s.*/\1/p')")
  done
  tb=$(printf '%s\n' "${t[@]}" | best); pb=$(printf '%s\n' "${p[@]}" | best)
  printf '%-18s %-5s batch 16 size 224: tlcl %6.2f img/s  pytorch %6.2f img/s  ratio %.2f  (runs: tlcl %s; pytorch %s)\n' \
    "$arch" "$mode" "$tb" "$pb" "$(echo "$tb / $pb" | bc -l)" "${t[*]}" "${p[*]}"
done
done
