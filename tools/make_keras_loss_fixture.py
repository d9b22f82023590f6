#!/usr/bin/env python3
"""make_keras_loss_fixture.py — Keras's own loss values and gradients for
tests/test_keras_loss.c.

For fixed logits, labels and sample weights, every case evaluates a Keras
loss object on one-hot labels with from_logits=True:

  xent   keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=ls)
  focal  keras.losses.CategoricalFocalCrossentropy(from_logits=True, alpha=a,
         gamma=g, label_smoothing=ls)   (a: a scalar, or a list per class)

and stores, per case:

  <case>/loss        the loss (reduction sum_over_batch_size: sum_i w_i l_i / N),
                     with the case's sample weights or without
  <case>/per_sample  the unweighted per-sample losses (reduction=None, no
                     sample weights): the validation-loss path
  <case>/dlogits     d loss / d logits (tf.GradientTape), weights included

Two groups of cases share their inputs: N=4 samples of C=5 classes
(group "c5": logits, labels, weights), and N=2 samples of C=1000 classes
(group "c1000"), whose label smoothing targets are ls/1000 = 1e-4: there an
error of ls/(C-1) instead of ls/C moves the target by 1e-7, which the
script reports against the C test's per-element measure.

The losses are evaluated in float64 (the loss objects' dtype), so the
reference carries no float32 rounding of its own; the script prints how far
Keras's float32 evaluation is from it under the same measure.

Writes tests/fixtures/keras_losses.safetensors (F32; labels as class
indices), and tests/fixtures/keras_loss_mixed_bf16.safetensors: the
classifier and its loss under Keras's mixed_bfloat16 policy (see
mixed_case), for model.precision: mixed_bfloat16.

Versions used to produce the committed fixture: tensorflow-cpu 2.21.0,
keras 3.15.1, numpy 2.4.6, Python 3.11.7.
Install: python3 -m pip install tensorflow-cpu numpy
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_io import write_safetensors  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "keras_losses.safetensors")
# the C test's per-element measure |got - want| / max(|want|, floor)
TOL = {"loss": (1e-5, 1e-6), "per_sample": (1e-5, 1e-6), "dlogits": (1e-3, 1e-6)}

GROUPS = {
    "c5": dict(n=4, c=5, labels=[0, 3, 1, 4], weights=[0.5, 1.7, 1.0, 0.2], scale=4.0),
    "c1000": dict(n=2, c=1000, labels=[7, 901], weights=[1.3, 0.4], scale=4.0),
}
ALPHA5 = [0.1, 0.4, 0.25, 0.9, 0.6]
# name, group, kind, label smoothing, weighted, alpha, gamma
CASES = [
    ("xent", "c5", "xent", 0.0, False, None, None),
    ("xent_w", "c5", "xent", 0.0, True, None, None),
    ("xent_ls0.1", "c5", "xent", 0.1, False, None, None),
    ("xent_ls0.1_w", "c5", "xent", 0.1, True, None, None),
    ("xent_ls0.3_w", "c5", "xent", 0.3, True, None, None),
    ("focal", "c5", "focal", 0.0, False, 0.25, 2.0),
    ("focal_ls0.1_w", "c5", "focal", 0.1, True, 0.25, 2.0),
    ("focal_a0.5_g0_ls0.1", "c5", "focal", 0.1, False, 0.5, 0.0),
    ("focal_g1.5_w", "c5", "focal", 0.0, True, 0.25, 1.5),
    ("focal_alpha_per_class_ls0.2_w", "c5", "focal", 0.2, True, ALPHA5, 2.0),
    ("c1000_xent", "c1000", "xent", 0.0, False, None, None),
    ("c1000_xent_ls0.1", "c1000", "xent", 0.1, False, None, None),
    ("c1000_xent_ls0.1_w", "c1000", "xent", 0.1, True, None, None),
    ("c1000_focal_ls0.1_w", "c1000", "focal", 0.1, True, 0.25, 2.0),
]


def loss_object(kind, ls, alpha, gamma, dtype, reduction="sum_over_batch_size", num_classes=None):
    if kind == "xent":
        return keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=ls, reduction=reduction,
                                                    dtype=dtype)
    return keras.losses.CategoricalFocalCrossentropy(from_logits=True, alpha=alpha, gamma=gamma, label_smoothing=ls,
                                                     reduction=reduction, dtype=dtype)


def evaluate(case, inputs, dtype):
    _, group, kind, ls, weighted, alpha, gamma = case
    g = inputs[group]
    z = tf.constant(g["logits"], dtype)
    y = tf.constant(np.eye(GROUPS[group]["c"])[GROUPS[group]["labels"]], dtype)
    w = tf.constant(GROUPS[group]["weights"], dtype) if weighted else None
    with tf.GradientTape() as tape:
        tape.watch(z)
        loss = loss_object(kind, ls, alpha, gamma, dtype)(y, z, sample_weight=w)
    dz = tape.gradient(loss, z)
    per = loss_object(kind, ls, alpha, gamma, dtype, reduction=None)(y, z)
    return {"loss": np.reshape(loss.numpy(), (1,)), "per_sample": per.numpy(), "dlogits": dz.numpy()}


def measure(a, b, floor):
    a, b = np.asarray(a, "float64"), np.asarray(b, "float64")
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), floor)))


def smoothing_mutation(case, inputs, ref):
    """dlogits with the off-label target ls/(C-1) instead of ls/C (numpy,
    cross-entropy only), under the C test's measure."""
    _, group, kind, ls, weighted, _, _ = case
    if kind != "xent" or not ls:
        return None
    gr = GROUPS[group]
    z = inputs[group]["logits"].astype("float64")
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    t = np.full(z.shape, ls / (gr["c"] - 1))
    t[np.arange(gr["n"]), gr["labels"]] = 1.0 - ls + ls / (gr["c"] - 1)
    w = np.array(gr["weights"]) if weighted else np.ones(gr["n"])
    dz = (p - t) * w[:, None] / gr["n"]
    return measure(dz, ref["dlogits"], TOL["dlogits"][1]) / TOL["dlogits"][0]


MIXED_OUT = os.path.join(os.path.dirname(OUT), "keras_loss_mixed_bf16.safetensors")
MIXED = dict(n=4, f=32, c=5, labels=[2, 0, 4, 1])


def mixed_case(rng):
    """The classifier on pooled features under Keras's mixed_bfloat16 policy:
    Dense(C) computes in bfloat16 (its input and kernel cast to bfloat16, the
    logits bfloat16) and CategoricalCrossentropy(from_logits=True), a loss
    object of dtype float32 whatever the policy, casts the logits to float32.
    Stores the features, weights and labels, the bfloat16 logits (as float32:
    exact), the loss and d loss / d logits (bfloat16, as float32), and the same
    model's logits and loss under the float32 policy."""
    m = MIXED
    x = rng.uniform(-2, 2, (m["n"], m["f"])).astype("float32")
    w = rng.uniform(-0.5, 0.5, (m["f"], m["c"])).astype("float32")
    b = rng.uniform(-0.5, 0.5, (m["c"],)).astype("float32")
    y = np.eye(m["c"])[m["labels"]].astype("float32")
    out = {"x": x, "kernel": w, "bias": b, "labels": np.array(m["labels"], "float32")}
    for policy in ("mixed_bfloat16", "float32"):
        keras.config.set_dtype_policy(policy)
        dense = keras.layers.Dense(m["c"])
        dense.build((None, m["f"]))
        dense.set_weights([w, b])
        loss_object = keras.losses.CategoricalCrossentropy(from_logits=True)
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            z = dense(xt)
            tape.watch(z)
            loss = loss_object(tf.constant(y), z)
        dz = tape.gradient(loss, z)
        tag = "mixed" if policy != "float32" else "f32"
        out[f"{tag}/logits_dtype_is_bf16"] = np.array([float(z.dtype == tf.bfloat16)], "float32")
        out[f"{tag}/logits"] = tf.cast(z, tf.float32).numpy()
        out[f"{tag}/loss"] = np.reshape(loss.numpy().astype("float32"), (1,))
        out[f"{tag}/dlogits"] = tf.cast(dz, tf.float32).numpy()
        print(f"policy {policy}: logits {z.dtype.name}, loss {float(loss):.7f} ({loss.dtype.name})")
    keras.config.set_dtype_policy("float32")
    return out


def main():
    rng = np.random.default_rng(2024)
    inputs = {}
    tensors = {}
    for name, g in GROUPS.items():
        logits = rng.uniform(-g["scale"], g["scale"], (g["n"], g["c"])).astype("float32")
        inputs[name] = {"logits": logits}
        tensors[f"{name}/logits"] = logits
        tensors[f"{name}/labels"] = np.array(g["labels"], "float32")
        tensors[f"{name}/weights"] = np.array(g["weights"], "float32")
    tensors["alpha_per_class"] = np.array(ALPHA5, "float32")
    index = []
    for case in CASES:
        name, group, kind, ls, weighted, alpha, gamma = case
        ref = evaluate(case, inputs, "float64")
        f32 = evaluate(case, inputs, "float32")
        for key, value in ref.items():
            tensors[f"{name}/{key}"] = value.astype("float32")
        index.append({"name": name, "group": group, "kind": kind, "label_smoothing": ls, "weighted": weighted,
                      "alpha": alpha if alpha is not None else 0.0, "gamma": gamma if gamma is not None else 0.0})
        worst = max(measure(f32[k], ref[k], TOL[k][1]) / TOL[k][0] for k in ref)
        mut = smoothing_mutation(case, inputs, ref)
        print(f"{name:32s} loss {float(ref['loss'][0]):.6f}; Keras float32 uses {worst:.2e} of the tolerance"
              + (f"; ls/(C-1) would be {mut:.1f}x the tolerance" if mut is not None else ""))

    versions = {"keras_version": keras.__version__, "tensorflow_version": tf.__version__}
    write_safetensors(OUT, tensors, {"format": "tlcl-keras-loss-fixture", "cases": json.dumps(index), **versions})
    write_safetensors(MIXED_OUT, mixed_case(np.random.default_rng(2025)),
                      {"format": "tlcl-keras-mixed-bfloat16-loss-fixture", **versions})
    return 0


if __name__ == "__main__":
    sys.exit(main())
