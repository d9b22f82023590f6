#!/usr/bin/env python3
"""check_torch_v2_keras.py — checks tools/torch_efficientnet_v2.py against
Keras's own EfficientNetV2B0: Keras (TensorFlow) builds the model with random
weights and random BN moving statistics, writes every weight, an input and
its inference-mode logits to an .npz; the PyTorch model loads those weights
by Keras layer name and must give the same logits.

  python3 tools/check_torch_v2_keras.py dump /tmp/v2.npz          # TF python
  /usr/bin/python3 tools/check_torch_v2_keras.py compare /tmp/v2.npz  # torch

2026-11-22 (Keras 3.15.1, TF 2.21, torch 1.13): no unused Keras array, max
|difference| 1.8e-6 on logits up to 1.5.
"""
import os
import sys

import numpy as np


def dump(path):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(2)
    m = keras.applications.EfficientNetV2B0(weights=None, classes=10, input_shape=(224, 224, 3),
                                            classifier_activation=None)
    rng = np.random.default_rng(0)
    arrays = {}
    for layer in m.layers:
        ws = layer.get_weights()
        if isinstance(layer, keras.layers.BatchNormalization):
            ws = [(1 + 0.1 * rng.standard_normal(ws[0].shape)).astype("f4"),
                  (0.1 * rng.standard_normal(ws[1].shape)).astype("f4"),
                  (0.1 * rng.standard_normal(ws[2].shape)).astype("f4"),
                  (1 + 0.2 * rng.random(ws[3].shape)).astype("f4")]
            layer.set_weights(ws)
        for i, w in enumerate(ws):
            arrays["%s/%d" % (layer.name, i)] = w
    x = (rng.random((2, 224, 224, 3)) * 255).astype("f4")
    y = m(x, training=False).numpy()
    np.savez(path, x=x, y=y, **arrays)
    print("keras %s: %d params, logits written to %s" % (keras.__version__, m.count_params(), path))


def compare(path):
    import torch
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from torch_efficientnet_v2 import V2_B0_BLOCKS, EfficientNetV2B0
    z = np.load(path)
    m = EfficientNetV2B0(classes=10).eval()
    used = set()

    def take(key):
        used.add(key)
        return torch.from_numpy(np.ascontiguousarray(z[key]))

    def conv(mod, name, depthwise=False):
        w = z[name + "/0"]
        used.add(name + "/0")
        w = w.transpose(2, 3, 0, 1) if depthwise else w.transpose(3, 2, 0, 1)  # HWIO -> OIHW
        assert tuple(mod.weight.shape) == w.shape, (name, mod.weight.shape, w.shape)
        mod.weight.data[:] = torch.from_numpy(np.ascontiguousarray(w))
        if mod.bias is not None:
            mod.bias.data[:] = take(name + "/1")

    def bn(mod, name):
        for i, a in enumerate(["weight", "bias", "running_mean", "running_var"]):
            getattr(mod, a).data[:] = take("%s/%d" % (name, i))

    conv(m.stem_conv, "stem_conv")
    bn(m.stem_bn, "stem_bn")
    names = ["block%d%s_" % (s + 1, chr(97 + j)) for s, b in enumerate(V2_B0_BLOCKS) for j in range(b[6])]
    for blk, n in zip(m.blocks, names):
        if hasattr(blk, "expand_conv"):
            conv(blk.expand_conv, n + "expand_conv")
            bn(blk.expand_bn, n + "expand_bn")
        if hasattr(blk, "dwconv"):
            conv(blk.dwconv, n + "dwconv2", depthwise=True)
            bn(blk.bn, n + "bn")
        if getattr(blk, "se", None) is not None:
            conv(blk.se.reduce, n + "se_reduce")
            conv(blk.se.expand, n + "se_expand")
        conv(blk.project_conv, n + "project_conv")
        bn(blk.project_bn, n + "project_bn")
    conv(m.top_conv, "top_conv")
    bn(m.top_bn, "top_bn")
    m.predictions.weight.data[:] = take("predictions/0").T
    m.predictions.bias.data[:] = take("predictions/1")
    unused = sorted(set(z.files) - used - {"x", "y"})
    with torch.no_grad():
        y = m(torch.from_numpy(z["x"]).permute(0, 3, 1, 2)).numpy()
    diff = float(np.abs(y - z["y"]).max())
    print("unused Keras arrays: %s; max |torch - keras| %.3g (logits up to %.3g)"
          % (unused or "none", diff, float(np.abs(z["y"]).max())))
    return 0 if not unused and diff < 1e-4 else 1


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("dump", "compare"):
        sys.exit(__doc__)
    sys.exit(dump(sys.argv[2]) if sys.argv[1] == "dump" else compare(sys.argv[2]))
