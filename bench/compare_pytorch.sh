#!/usr/bin/env bash
# The old name of bench/compare_peers.sh (PyTorch and, where TensorFlow is
# importable, Keras against tlcl); same arguments and environment.
# usage: bench/compare_pytorch.sh [--device=N] [ROUNDS]
exec "$(dirname "$0")/compare_peers.sh" "$@"
