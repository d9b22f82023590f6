#!/usr/bin/env python3
"""make_keras_run_fixtures.py — whole-run Keras references for tests/test_keras_run.c.

Five optimizer steps of real Keras on small EfficientNet V1 and V2 models,
so tlcl is compared with Keras over a run (optimizer state, BatchNorm moving
statistics, the weights each step starts from) and not over one step only.

The models come from Keras's own builders, scaled down so the fixture stays
small (about 31,000 parameters together):

  v1  keras.applications EfficientNet, width 0.05, depth 0.5, the first five
      stages of the B0 block table (10 blocks of 3x3 and 5x5 MBConv with SE,
      residual blocks 1a, 4b, 5a, 5b), 32x32 input, 3 classes
  v2  EfficientNetV2, width 0.05, depth 1.0, the first four stages of the
      V2-B0 table (Fused-MBConv with and without expansion, residual fused
      blocks 1a, 2b, 3b, then MBConv with SE, residual 4b, 4c)

both with dropout 0 and drop_connect 0 (deterministic runs). Keras's random
initial weights are moved off their defaults (BatchNorm gamma, beta and
moving statistics, SE biases, V1's Normalization mean and variance) and
rounded to float16 values, so they are stored exactly as F16. From these
same initial weights, two runs of five steps on one fixed batch of four
images, with model.train_on_batch and CategoricalCrossentropy(from_logits=True):

  adam  keras.optimizers.Adam(learning_rate=1e-3, epsilon=1e-3)
  sgd   keras.optimizers.SGD(learning_rate=0.003, momentum=0.9)

The learning rates are small enough that five steps do not amplify float32
rounding beyond what the test's 1e-4 allows: with SGD at 0.01 the float32
run already differs from a float64 one by 2e-5 (measured as the test
measures) and tlcl on Rusticl by 9e-5; at 0.003 by 5e-6 and 1e-5.

Adam's epsilon is 1e-3 rather than the default 1e-7: the beta of a
BatchNorm whose output reaches the next training-mode BatchNorm only through
linear layers (most project_bn layers) has a gradient that is zero in exact
arithmetic and rounding noise in any implementation, and with epsilon 1e-7
Adam turns that noise into full +-lr steps of arbitrary sign. With 1e-3 the
noise moves those betas by less than 1e-6, and the run also checks where
Keras adds epsilon (to sqrt(v), with the bias corrections folded into the
learning rate), which 1e-7 would not show.

The images are four distinct 32x32 pictures (colour ramps in different
directions, a disc, stripes), not noise, so the inference logits differ
clearly between images and a preprocessing error (x/256 instead of x/255)
changes them far beyond the tolerance; the script prints how far.

Writes tests/fixtures/keras_run_<v1|v2>.safetensors:

  input                 U8  [4, 32, 32, 3] raw RGB
  labels                F32 [4] class indices
  logits_infer          F32 [4, 3] inference logits of the initial model
  init/<layer>/<var>    F16 every variable (in the order of layer.weights,
                        i.e. Keras's save order), the Normalization layer too
  <opt>/<layer>/<var>   F32 every variable after the five steps, BatchNorm
                        moving mean and variance included (opt: adam, sgd)
  <opt>/loss            F32 [5] the loss train_on_batch returned at each step
  <opt>/logits_infer    F32 [4, 3] inference logits after the five steps
  <opt>/val_loss_focal  F32 [1] what Keras's evaluate reports as the loss of
                        the model after the steps compiled with a focal loss
                        (VAL_FOCAL): the val_loss path, no class weights

and the metadata (strings) lists the hyper-parameters the C test reads.

The script also repeats each run in float64 Keras from the same weights and
prints the largest per-element difference of the float32 run against it
under the C test's measure (|a - b| / max(|b|, floor)), which shows how
much of the test's 1e-4 tolerance float32 rounding itself uses.

Re-running the script rewrites the same files (fixed seeds; the TensorFlow
CPU kernels may differ in the last bits between versions).

Versions used to produce the committed fixtures: tensorflow-cpu 2.21.0,
keras 3.15.1, numpy 2.4.6, Python 3.11.7.
Install: python3 -m pip install tensorflow-cpu numpy
"""
import copy
import os
import re
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # deterministic CPU kernels

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_io import write_safetensors  # noqa: E402
from keras.src.applications import efficientnet, efficientnet_v2  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
SIZE, CLASSES, BATCH, STEPS = 32, 3, 4, 5
LABELS = [0, 1, 2, 1]
FAMILIES = {
    # width, depth, stages of the default table, seed
    "v1": dict(width=0.05, depth=0.5, stages=5, seed=4321),
    "v2": dict(width=0.05, depth=1.0, stages=4, seed=8765),
}
OPTIMIZERS = {
    "adam": dict(lr=1e-3, epsilon=1e-3),
    "sgd": dict(lr=0.003, momentum=0.9),
}
# the C test's measure: |got - want| <= TOL * max(|want|, FLOOR), per element
TOL, FLOOR = 1e-4, 0.1


def build(family, floatx="float32"):
    keras.config.set_dtype_policy(floatx)
    f = FAMILIES[family]
    common = dict(width_coefficient=f["width"], depth_coefficient=f["depth"], default_size=SIZE, dropout_rate=0.0,
                  drop_connect_rate=0.0, weights=None, include_top=True, classes=CLASSES,
                  input_shape=(SIZE, SIZE, 3), classifier_activation=None)
    if family == "v1":
        blocks = copy.deepcopy(efficientnet.DEFAULT_BLOCKS_ARGS[:f["stages"]])
        model = efficientnet.EfficientNet(name="efficientnet-b0", blocks_args=blocks, **common)
    else:
        blocks = copy.deepcopy(efficientnet_v2.DEFAULT_BLOCKS_ARGS["efficientnetv2-b0"][:f["stages"]])
        model = efficientnet_v2.EfficientNetV2(name="efficientnetv2-b0", blocks_args=blocks, **common)
    keras.config.set_dtype_policy("float32")
    return model


def f16(a):
    """The nearest float16 value, as float32 (stored exactly as F16)."""
    return np.asarray(a, "float32").astype("float16").astype("float32")


def randomise(model, rng, x):
    """Moves every default-initialised value off its default and rounds every
    variable to a float16 value. The BatchNorm moving statistics are set,
    layer after layer, near the statistics of the layer's input on x (mean
    off by up to 0.2 standard deviations, variance scaled by 0.7..1.4): with
    arbitrary ones the inference-mode signal shrinks block after block and
    the logits hardly depend on the image."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.6, 1.4, c))
            layer.beta.assign(rng.uniform(-0.2, 0.2, c))
            inp = keras.Model(model.inputs, layer.input)(x, training=False).numpy().reshape(-1, c)
            mean, std = inp.mean(axis=0), inp.std(axis=0) + 1e-3
            layer.moving_mean.assign(mean + 0.2 * std * rng.uniform(-1, 1, c))
            layer.moving_variance.assign(std * std * rng.uniform(0.7, 1.4, c))
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)) and layer.use_bias:
            layer.bias.assign(rng.uniform(-0.1, 0.1, layer.bias.shape))
        elif isinstance(layer, keras.layers.Normalization) and layer.input_mean is None:
            layer.adapt_mean.assign(f16([0.49, 0.45, 0.41]))
            layer.adapt_variance.assign(f16([0.061, 0.052, 0.070]))
            layer.finalize_state()
    for w in model.weights:
        if w.dtype.startswith("float"):
            w.assign(f16(w.numpy()))
    finalize(model)


def finalize(model):
    """The Normalization layer computes its mean and variance from its
    variables only in finalize_state()."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.Normalization) and layer.input_mean is None:
            layer.finalize_state()


def layer_name(name):
    """Keras auto-names the Normalization layer per session ("normalization_2")."""
    return re.sub(r"^normalization_\d+$", "normalization", name)


def variables(model):
    """[(layer/var, variable)] in layer order and, within a layer, Keras's
    save order (trainable first)."""
    out = []
    for layer in model.layers:
        for w in layer.weights:
            out.append((f"{layer_name(layer.name)}/{w.path.split('/')[-1]}", w))
    return out


def make_images(rng):
    """Four distinct pictures with integer pixels: ramps in different
    directions and colours, a disc, stripes, a little noise."""
    y, x = np.meshgrid(np.arange(SIZE), np.arange(SIZE), indexing="ij")
    u, v = x / (SIZE - 1.0), y / (SIZE - 1.0)
    imgs = np.zeros((BATCH, SIZE, SIZE, 3))
    for c in range(3):
        imgs[0, ..., c] = 255 * (0.2 + 0.6 * u) * (1.0 - 0.3 * c) + 20 * c                # left-right ramp
        imgs[1, ..., c] = 255 * (1.0 - v) * [0.9, 0.5, 0.2][c]                              # top-down ramp
        d = np.hypot(x - 12.0, y - 18.0)
        imgs[2, ..., c] = np.where(d < 9, [230, 40, 60][c], [30, 90, 200][c])               # a disc
        imgs[3, ..., c] = 128 + 100 * np.sin((x + 2 * y) / 3.0 + c) * (0.4 + 0.6 * u)       # diagonal stripes
    imgs += rng.normal(0, 6, imgs.shape)
    return np.clip(np.rint(imgs), 0, 255).astype("uint8")


def safetensors_write(path, tensors, meta):
    write_safetensors(path, tensors, dict(meta, format="tlcl-keras-run-fixture", keras_version=keras.__version__,
                                          tensorflow_version=tf.__version__))


def optimizer(name):
    o = OPTIMIZERS[name]
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=o["lr"], epsilon=o["epsilon"])
    return keras.optimizers.SGD(learning_rate=o["lr"], momentum=o["momentum"])


def run(model, init, opt_name, x, y):
    """Five train_on_batch steps from init; returns the losses."""
    for (_, w), value in zip(variables(model), init):
        w.assign(value.astype(w.dtype))
    finalize(model)
    model.compile(optimizer=optimizer(opt_name), loss=keras.losses.CategoricalCrossentropy(from_logits=True),
                  jit_compile=False)
    return [float(model.train_on_batch(x, y)) for _ in range(STEPS)]


def floors(b_vars):
    """The C test's floor per element: FLOOR, and for a BatchNorm moving mean
    the channel's standard deviation sqrt(moving_variance) (the mean of a
    layer input of scale s is only as exact as float32 sums of it, ~1e-7 s,
    however close to 0 it is)."""
    d = dict(b_vars)
    out = []
    for name, b in b_vars:
        f = np.full(np.shape(b), FLOOR)
        if name.endswith("/moving_mean"):
            f = np.maximum(f, np.sqrt(np.abs(np.asarray(d[name[:-len("mean")] + "variance"], "float64"))))
        out.append(f)
    return out


def worst(a_vars, b_vars):
    """The C test's per-element measure of a against b: (value, tensor)."""
    out = (0.0, "")
    for (name, a), (_, b), f in zip(a_vars, b_vars, floors(b_vars)):
        a, b = np.asarray(a, "float64"), np.asarray(b, "float64")
        e = float(np.max(np.abs(a - b) / np.maximum(np.abs(b), f))) if a.size else 0.0
        out = max(out, (e, name))
    return out


def make(family):
    seed = FAMILIES[family]["seed"]
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model = build(family)
    x8 = make_images(np.random.default_rng(99))
    x = x8.astype("float32")
    randomise(model, rng, x)
    names = [n for n, _ in variables(model)]
    init = [w.numpy().copy() for _, w in variables(model)]
    y = np.eye(CLASSES, dtype="float32")[LABELS]
    logits = model(x, training=False).numpy()
    shifted = model(x * np.float32(255.0 / 256.0), training=False).numpy()  # what x/256 preprocessing gives
    spread = logits.std(axis=0).min()
    print(f"{family}: {model.count_params()} parameters; inference logits {np.round(logits, 4).tolist()}")
    print(f"    spread between images (smallest per-class std) {spread:.4f}; x/256 preprocessing changes the "
          f"logits by up to {np.max(np.abs(shifted - logits)) / np.max(np.abs(logits)):.2e} of their largest")

    t = {"input": ("U8", x8), "labels": ("F32", np.array(LABELS, "float32")), "logits_infer": ("F32", logits)}
    for n, v in zip(names, init):
        t["init/" + n] = ("F16", v)
    model64 = build(family, "float64")
    for opt_name in OPTIMIZERS:
        losses = run(model, init, opt_name, x, y)
        final = [w.numpy().copy() for _, w in variables(model)]
        for n, v in zip(names, final):
            t[f"{opt_name}/{n}"] = ("F32", v)
        t[f"{opt_name}/loss"] = ("F32", np.array(losses, "float32"))
        t[f"{opt_name}/logits_infer"] = ("F32", model(x, training=False).numpy())
        t[f"{opt_name}/val_loss_focal"] = ("F32", np.array([val_loss_focal(model, x, y)], "float32"))
        run(model64, init, opt_name, x.astype("float64"), y.astype("float64"))
        final64 = [w.numpy() for _, w in variables(model64)]
        moved = worst([(n, b) for n, b in zip(names, init)], list(zip(names, final)))
        e, where = worst(list(zip(names, final)), list(zip(names, final64)))
        z32, z64 = t[f"{opt_name}/logits_infer"][1], model64(x.astype("float64"), training=False).numpy()
        print(f"    {opt_name}: losses {np.round(losses, 5).tolist()}; float32 vs float64 Keras: {e:.2e} "
              f"({where}), inference logits after the run {np.max(np.abs(z32 - z64)) / np.max(np.abs(z64)):.2e} "
              f"of the largest; largest move from the initial weights {moved[0]:.2e} ({moved[1]})")

    meta = {"family": family, "width": str(FAMILIES[family]["width"]), "depth": str(FAMILIES[family]["depth"]),
            "stages": str(FAMILIES[family]["stages"]), "size": str(SIZE), "classes": str(CLASSES),
            "batch": str(BATCH), "steps": str(STEPS),
            "adam_lr": str(OPTIMIZERS["adam"]["lr"]), "adam_epsilon": str(OPTIMIZERS["adam"]["epsilon"]),
            "sgd_lr": str(OPTIMIZERS["sgd"]["lr"]), "sgd_momentum": str(OPTIMIZERS["sgd"]["momentum"]),
            "val_focal_alpha": str(VAL_FOCAL["alpha"]), "val_focal_gamma": str(VAL_FOCAL["gamma"]),
            "val_focal_label_smoothing": str(VAL_FOCAL["label_smoothing"])}
    path = os.path.join(OUT, f"keras_run_{family}.safetensors")
    safetensors_write(path, t, meta)
    print(f"    {path}: {os.path.getsize(path)} bytes")


# The loss Keras reports as val_loss for a model compiled with a focal loss
# (evaluate: inference mode, no class weights): the C test computes it with
# tlcl_run_predict from the same weights.
VAL_FOCAL = {"alpha": 0.4, "gamma": 1.5, "label_smoothing": 0.1}


def val_loss_focal(model, x, y):
    model.compile(optimizer="sgd", loss=keras.losses.CategoricalFocalCrossentropy(from_logits=True, **VAL_FOCAL))
    return float(model.evaluate(x, y, batch_size=BATCH, verbose=0))


def main():
    os.makedirs(OUT, exist_ok=True)
    for family in FAMILIES:
        make(family)
    return 0


if __name__ == "__main__":
    sys.exit(main())
