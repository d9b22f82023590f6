#!/usr/bin/env bash
# The main job, from a fresh Debian machine: installs what is missing,
# builds tlcl, lists the OpenCL devices and trains on the default device.
# At this stage of the project (engine core) the training run is the
# engine's own demonstration: a small EfficientNet-style network (stem,
# MBConv block with squeeze-and-excitation, head) learning a generated
# task; the fine-tuning of EfficientNet-Lite0 on Fashion-MNIST replaces it
# with the workflow issue.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)"
build/tlcl devices
build/tlcl summary efficientnet-lite0 --classes 10 | tail -3
build/tests/test_train_tiny
