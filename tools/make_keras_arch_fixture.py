#!/usr/bin/env python3
"""make_keras_arch_fixture.py — BatchNorm settings and stochastic-depth rates
of real Keras models, for tests/test_keras_run.c.

Builds keras.applications EfficientNetB0, EfficientNetB3, EfficientNetV2B0,
EfficientNetV2B3 and EfficientNetV2S with their default arguments (headless,
weights=None, a 64x64 input: neither changes the configs read here) and
dumps from each layer's own config:

  bn      every BatchNormalization layer: [momentum, epsilon]
  blocks  every block in order (named by its project_bn layer): whether it
          has the residual "add" layer, and the rate of its "drop" Dropout
          layer (stochastic depth, noise_shape (None, 1, 1, 1)); 0 when
          Keras created none (rate 0 or no residual)

What this shows of the Keras source (keras/src/applications/efficientnet*.py):
V1 passes no momentum, so every BatchNormalization has the layer default
0.99; V2 passes bn_momentum=0.9 to every one; both use epsilon 1e-3; the
drop rate of block b (counted from 0 over all blocks, repeats rounded) is
drop_connect_rate * b / total_blocks.

Keras has no EfficientNet-Lite (keras.applications has none; KerasCV, a
separate and now archived package, had an EfficientNetLiteBackbone). The
Lite entries ("source": "tf-reference") are therefore computed here from
the TensorFlow reference the Lite models come from, tensorflow/tpu
models/official/efficientnet/lite/efficientnet_lite_builder.py and
efficientnet_model.py: batch_norm_momentum=0.99, batch_norm_epsilon=1e-3,
survival_prob=0.8 (drop_connect 0.2), drop rate (1 - survival_prob) * idx /
len(blocks) applied to blocks with id_skip, stride 1 and equal input and
output filters; stem and head not scaled and the first and last stage's
repeats fixed (fix_head_stem). These are the values models/arch.c documents
for Lite (momentum 0.99, epsilon 1e-3, drop_connect 0.2).

Writes tests/fixtures/keras_arch_config.json.

Versions used to produce the committed fixture: tensorflow-cpu 2.21.0,
keras 3.15.1, numpy 2.4.6, Python 3.11.7.
Install: python3 -m pip install tensorflow-cpu numpy
"""
import json
import math
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "keras_arch_config.json")

KERAS_MODELS = [
    ("efficientnet-b0", keras.applications.EfficientNetB0),
    ("efficientnet-b3", keras.applications.EfficientNetB3),
    ("efficientnetv2-b0", keras.applications.EfficientNetV2B0),
    ("efficientnetv2-b3", keras.applications.EfficientNetV2B3),
    ("efficientnetv2-s", keras.applications.EfficientNetV2S),
]

# TF reference (efficientnet_lite_builder.py): width, depth per model
LITE = {"efficientnet-lite0": (1.0, 1.0), "efficientnet-lite2": (1.1, 1.2), "efficientnet-lite4": (1.4, 1.8)}
# kernel, repeats, stride, expand, in, out (_DEFAULT_BLOCKS_ARGS; SE dropped by use_se=False)
LITE_BLOCKS = [(3, 1, 1, 1, 32, 16), (3, 2, 2, 6, 16, 24), (5, 2, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
               (5, 3, 1, 6, 80, 112), (5, 4, 2, 6, 112, 192), (3, 1, 1, 6, 192, 320)]


def keras_entry(name, ctor):
    model = ctor(weights=None, include_top=False, input_shape=(64, 64, 3))
    layers = {layer.name: layer for layer in model.layers}
    bn = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            cfg = layer.get_config()
            bn[layer.name] = [cfg["momentum"], cfg["epsilon"]]
    blocks = []
    for layer in model.layers:
        if layer.name.startswith("block") and layer.name.endswith("_project_bn"):
            block = layer.name[: -len("_project_bn")]
            drop = layers.get(block + "_drop")
            if drop is not None:
                assert list(drop.get_config()["noise_shape"]) == [None, 1, 1, 1], drop.get_config()
            blocks.append({"name": block, "residual": block + "_add" in layers,
                           "drop_rate": drop.get_config()["rate"] if drop is not None else 0.0})
    rates = [b["drop_rate"] for b in blocks if b["drop_rate"]]
    print(f"{name}: {len(bn)} BatchNorm layers, momentum {sorted({v[0] for v in bn.values()})}, "
          f"{len(blocks)} blocks, drop rates {min(rates):.6f} .. {max(rates):.6f}")
    return {"name": name, "source": f"keras.applications.{ctor.__name__}", "bn": bn, "blocks": blocks}


def round_filters(filters, width, divisor=8):
    filters *= width
    new = max(divisor, int(filters + divisor / 2) // divisor * divisor)
    if new < 0.9 * filters:
        new += divisor
    return int(new)


def lite_entry(name):
    """The TF reference's Lite: BN momentum 0.99 / epsilon 1e-3 everywhere,
    drop rate 0.2 * idx / len(blocks) on the identity-skip blocks."""
    width, depth = LITE[name]
    specs = []
    for s, (k, repeats, stride, expand, fin, fout) in enumerate(LITE_BLOCKS):
        fin, fout = round_filters(fin, width), round_filters(fout, width)
        if s == 0:
            fin = 32  # fix_head_stem: the stem keeps 32 filters
        if s not in (0, len(LITE_BLOCKS) - 1):
            repeats = int(math.ceil(depth * repeats))
        for j in range(repeats):
            specs.append((f"block{s + 1}{chr(97 + j)}", expand, fin if j == 0 else fout, fout,
                          stride if j == 0 else 1))
    bn = {"stem_bn": [0.99, 0.001], "top_bn": [0.99, 0.001]}
    blocks = []
    for idx, (block, expand, fin, fout, stride) in enumerate(specs):
        residual = stride == 1 and fin == fout
        for part in (["expand_bn"] if expand != 1 else []) + ["bn", "project_bn"]:
            bn[f"{block}_{part}"] = [0.99, 0.001]
        blocks.append({"name": block, "residual": residual,
                       "drop_rate": (1.0 - 0.8) * idx / len(specs) if residual else 0.0})
    return {"name": name, "source": "tf-reference", "bn": bn, "blocks": blocks}


def main():
    out = {"keras_version": keras.__version__, "tensorflow_version": tf.__version__, "archs": []}
    for name, ctor in KERAS_MODELS:
        out["archs"].append(keras_entry(name, ctor))
        keras.backend.clear_session()
    for name in LITE:
        out["archs"].append(lite_entry(name))
    with open(OUT, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(f"{OUT}: {os.path.getsize(OUT)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
