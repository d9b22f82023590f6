#!/usr/bin/env python3
"""make_keras_fixtures.py — Keras reference fixtures for tlcl's Keras import test.

Builds scaled-down EfficientNet V1 and V2 models (width 0.5, depth 0.5,
input 64, 5 classes, no dropout, no stochastic depth) through Keras's generic
builders with seeded random weights, randomises the BatchNorm statistics, the
gammas/betas, the biases and (V1) the Normalization layer's mean/variance so
inference mode and the preprocessing import are exercised, and writes to
tests/fixtures/:

  keras_<v1|v2>.weights.h5     Keras 3 format (model.save_weights)
  keras_<v1|v2>_legacy.h5      legacy H5 layout: V1 written by hand in the
                               TF-Keras 2 style of the pretrained files
                               (root layer_names, "<layer>/<var>:0" names,
                               "depthwise_kernel"); V2 by Keras's own legacy
                               writer (model.save("x.h5"), under /model_weights)
  keras_<v1|v2>.safetensors    input (N=2, raw RGB 0..255), labels (one-hot,
                               F32), logits_infer, logits_train, loss, dinput,
                               grad/<layer>/<variable> for every trainable weight

The training values come from one training-mode step (BatchNorm on batch
statistics) with CategoricalCrossentropy(from_logits=True); nothing is
updated. Re-running the script rewrites the same files (fixed seeds; the
TensorFlow CPU kernels may differ in the last bits between versions).

Versions used to produce the committed fixtures: tensorflow-cpu 2.21.0,
keras 3.15.1, h5py 3.14.0, numpy 2.4.6, Python 3.11.7.
Install: python3 -m pip install tensorflow-cpu h5py numpy
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # deterministic CPU kernels

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_io import write_safetensors  # noqa: E402
from keras.src.applications import efficientnet, efficientnet_v2  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
SIZE, CLASSES, BATCH = 64, 5, 2
LABELS = [1, 3]


def build(family):
    common = dict(width_coefficient=0.5, depth_coefficient=0.5, default_size=SIZE, dropout_rate=0.0,
                  drop_connect_rate=0.0, weights=None, include_top=True, classes=CLASSES,
                  input_shape=(SIZE, SIZE, 3), classifier_activation=None)
    if family == "v1":
        return efficientnet.EfficientNet(name="efficientnet-b0", **common)
    return efficientnet_v2.EfficientNetV2(name="efficientnetv2-b0", **common)


def randomise(model, rng):
    """Moves every non-default-initialised value away from its default, so a
    swapped gamma/beta, mean/variance or a missing bias shows in the logits."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.6, 1.4, c).astype("float32"))
            layer.beta.assign(rng.uniform(-0.2, 0.2, c).astype("float32"))
            layer.moving_mean.assign(rng.uniform(-0.2, 0.2, c).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, c).astype("float32"))
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)) and layer.use_bias:
            b = layer.bias
            b.assign(rng.uniform(-0.1, 0.1, b.shape).astype("float32"))
        elif isinstance(layer, keras.layers.Normalization) and layer.input_mean is None:
            # V1's adaptable layer: a plausible dataset mean and variance
            layer.adapt_mean.assign(np.array([0.49, 0.45, 0.41], "float32"))
            layer.adapt_variance.assign(np.array([0.061, 0.052, 0.070], "float32"))
            layer.finalize_state()


def write_legacy_tf2(model, path):
    """The layout of TF-Keras 2's pretrained .h5 files, written by hand:
    root attributes layer_names/backend/keras_version, one group per layer
    with attribute weight_names ("<layer>/<var>:0", depthwise kernels named
    depthwise_kernel), datasets at <layer>/<weight_name>."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([l.name.encode() for l in model.layers])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.15.0"
        for layer in model.layers:
            g = f.create_group(layer.name)
            names = []
            for w in layer.weights:  # trainable first, then non-trainable (the §3.1 order)
                var = w.path.split("/")[-1]
                if isinstance(layer, keras.layers.DepthwiseConv2D) and var == "kernel":
                    var = "depthwise_kernel"
                name = f"{layer.name}/{var}:0"
                names.append(name.encode())
                g.create_dataset(name, data=np.asarray(w.numpy()))
            g.attrs["weight_names"] = np.array(names, dtype="S") if names else np.zeros((0,), "S1")


def safetensors_write(path, tensors):
    write_safetensors(path, tensors, {"format": "tlcl-keras-fixture", "keras_version": keras.__version__,
                                      "tensorflow_version": tf.__version__})


def make(family, seed):
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model = build(family)
    randomise(model, rng)
    base = os.path.join(OUT, f"keras_{family}")
    model.save_weights(base + ".weights.h5")
    if family == "v1":
        write_legacy_tf2(model, base + "_legacy.h5")
    else:
        model.save(base + "_legacy.h5")  # Keras's legacy writer: /model_weights

    x = rng.uniform(0.0, 255.0, (BATCH, SIZE, SIZE, 3)).astype("float32")
    y = np.eye(CLASSES, dtype="float32")[LABELS]
    xt = tf.constant(x)
    logits_infer = model(xt, training=False).numpy()
    loss_fn = keras.losses.CategoricalCrossentropy(from_logits=True)
    weights = model.trainable_weights
    with tf.GradientTape() as tape:
        tape.watch(xt)
        logits = model(xt, training=True)  # batch statistics; moving stats update, weights files already written
        loss = loss_fn(tf.constant(y), logits)
    grads = tape.gradient(loss, [xt] + weights)

    t = {"input": x, "labels": y, "logits_infer": logits_infer, "logits_train": logits.numpy(),
         "loss": np.reshape(loss.numpy(), (1,)), "dinput": grads[0].numpy()}
    for w, g in zip(weights, grads[1:]):
        t["grad/" + w.path] = g.numpy()
    safetensors_write(base + ".safetensors", t)
    print(f"{family}: {model.count_params()} parameters, {len(weights)} trainable tensors, "
          f"loss {float(loss):.6f}, logits_infer[0] {logits_infer[0]}")


def main():
    os.makedirs(OUT, exist_ok=True)
    make("v1", 1234)
    make("v2", 5678)
    for name in sorted(os.listdir(OUT)):
        if name.startswith("keras_"):
            print(f"  {name}: {os.path.getsize(os.path.join(OUT, name))} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
