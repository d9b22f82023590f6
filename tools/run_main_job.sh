#!/usr/bin/env bash
# The main job, from a fresh Debian machine: installs what is missing, builds
# tlcl, fetches and converts the EfficientNet-Lite0 ImageNet weights once,
# writes Fashion-MNIST (Debian's dataset-fashion-mnist) as class folders of
# PNG images once, and fine-tunes Lite0 on it on the default OpenCL device
# with config/fashion_mnist.yaml (frozen base and cached features, then the
# top two blocks). Artefacts land in runs/fashion_mnist/.
# Extra arguments go to `tlcl train` (e.g. --device=1).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
if ! dpkg-query -W -f='${Status}' dataset-fashion-mnist 2>/dev/null | grep -q "install ok installed"; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends dataset-fashion-mnist </dev/null
fi
tools/fetch_lite0.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)"
build/tlcl devices
python3 tools/make_fashion_mnist.py data/fashion_mnist 300
time build/tlcl train "$@" config/fashion_mnist.yaml
