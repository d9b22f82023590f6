#!/usr/bin/env python3
"""keras_export_check.py — does a .weights.h5 written by tlcl load in Keras 3
and give tlcl's logits?

For each case (a model without hidden head layers, and one with them, as
seed 001 builds it) the script:

  1. writes a small labelled image set (PNG, at the model's input size, so
     neither side resizes);
  2. trains a tlcl model on it for four epochs (`tlcl train`, random
     weights, Adam at 0.002 so the logits move away from zero);
  3. exports the best model (`tlcl export --to keras CKPT -o FILE`, as
     .weights.h5 and as a .keras archive) and asks
     tlcl for its logits (`tlcl predict --logits`);
  4. builds the Keras model the file is meant for from the checkpoint's
     metadata (keras.applications.EfficientNet<X>(weights=None, ...) with
     its top, or keras.Sequential([base, GlobalAveragePooling2D, Dropout,
     Dense, ...]) for hidden layers), calls model.load_weights(FILE) and
     compares its inference logits with tlcl's.

It passes when every logit agrees within 1e-4 (absolute). tlcl itself is
only run as a program; Python is the reference side.

Usage (pyenv python3 with tensorflow-cpu and keras 3):
  python3 tools/keras_export_check.py [--tlcl build/tlcl] [--device N]
      [--arch efficientnet-b0 --arch efficientnetv2-b0] [--size 64] [--keep DIR]
"""
import argparse
import csv
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402

TOLERANCE = 1e-4
CLASSES = ["disc", "ramp", "stripes"]


def picture(kind, size, rng):
    """A distinct, slightly noisy picture per class (uint8 HxWx3)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if kind == "disc":
        r = np.hypot(x - rng.uniform(0.3, 0.7), y - rng.uniform(0.3, 0.7))
        base = np.where(r < rng.uniform(0.15, 0.35), 220.0, 40.0)
        img = np.stack([base, base * 0.5, 255 - base], -1)
    elif kind == "ramp":
        a = rng.uniform(0, np.pi)
        t = np.cos(a) * x + np.sin(a) * y
        img = np.stack([t * 255, (1 - t) * 255, np.full_like(t, 128)], -1)
    else:
        f = rng.uniform(3, 8)
        s = (np.sin(2 * np.pi * f * x) > 0) * 200.0 + 30
        img = np.stack([s, s, s * 0.3], -1)
    img = img + rng.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_png(path, img):
    """An 8-bit RGB PNG (zlib from the standard library)."""
    h, w, _ = img.shape
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def make_images(root, size, per_class, seed):
    """The pictures, written as PNG files; returns {path: uint8 array}."""
    rng = np.random.default_rng(seed)
    images = {}
    for c in CLASSES:
        os.makedirs(os.path.join(root, c), exist_ok=True)
        for i in range(per_class):
            path = os.path.join(root, c, "%s_%02d.png" % (c, i))
            images[path] = picture(c, size, rng)
            write_png(path, images[path])
    return images


def write_config(path, data, arch, size, units):
    head = "{units: [%s], dropout: 0.2}" % ", ".join(str(u) for u in units)
    with open(path, "w") as f:
        f.write(
            "train:\n"
            "  config: {seed: 3, epochs: 4, batch_size: 4, verbose: 2}\n"
            "  data_dir: {train: %s, validation_split: 0.25, split: stratified, image_size: [%d, %d]}\n"
            "  artefacts: {base_dir: artefacts}\n"
            "  metrics: {base_dir: metrics}\n"
            "  records: {base_dir: records}\n"
            "model: {architecture: %s, weights: none, head: %s}\n"
            "optimizer: {name: adam, learning_rate: 0.002}\n" % (data, size, size, arch, head)
        )


def run(cmd, cwd):
    print("   $ " + " ".join(cmd), flush=True)
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("command failed (%d):\n%s\n%s" % (p.returncode, p.stdout[-3000:], p.stderr[-3000:]))
    return p.stdout


def checkpoint_metadata(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    return header["__metadata__"]


def keras_builder(keras, arch):
    """tlcl's architecture name -> the keras.applications function."""
    if arch.startswith("efficientnetv2-"):
        return getattr(keras.applications, "EfficientNetV2" + arch.split("-")[1].upper())
    if arch.startswith("efficientnet-b"):
        return getattr(keras.applications, "EfficientNetB" + arch[len("efficientnet-b"):])
    sys.exit("no Keras builder for %s" % arch)


def keras_model(meta):
    """The Keras model tlcl's export describes (models/keras_export.c)."""
    import keras

    size, classes = int(meta["input_size"]), int(meta["classes"])
    head = json.loads(meta["head"])
    build = keras_builder(keras, meta["architecture"])
    if not head["units"]:
        return build(weights=None, include_top=True, classes=classes, input_shape=(size, size, 3),
                     classifier_activation=None)  # its top dropout is inactive in inference
    base = build(weights=None, include_top=False, input_shape=(size, size, 3))
    layers = [keras.Input((size, size, 3)), base, keras.layers.GlobalAveragePooling2D(name="avg_pool")]
    for i, u in enumerate(head["units"]):
        layers += [keras.layers.Dropout(head["dropout"]),
                   keras.layers.Dense(u, activation=head["activation"], name="head_dense_%d" % (i + 1))]
    layers += [keras.layers.Dropout(head["dropout"]), keras.layers.Dense(classes, name="predictions")]
    return keras.Sequential(layers)


def tlcl_logits(csv_path, classes):
    rows = {}
    with open(csv_path, newline="") as f:
        for r in csv.DictReader(f):
            rows[r["file"]] = np.array([float(r["logit_%d" % c]) for c in range(classes)])
    return rows


def check_case(args, work, arch, units):
    name = "%s-%s" % (arch, "hidden" if units else "plain")
    case = os.path.join(work, name)
    data = os.path.join(case, "data")
    os.makedirs(case)
    images = make_images(data, args.size, 8, seed=11)
    write_config(os.path.join(case, "run.yaml"), data, arch, args.size, units)
    tlcl = os.path.abspath(args.tlcl)
    dev = ["--device=%d" % args.device] if args.device is not None else []
    run([tlcl, "train", *dev, "--no-test", "run.yaml"], case)
    ckpt = os.path.join(case, "artefacts", "best_model.safetensors")
    exported = os.path.join(case, "model.weights.h5")
    archive = os.path.join(case, "model.keras")
    run([tlcl, "export", "--to", "keras", ckpt, "-o", exported], case)
    run([tlcl, "export", "--to", "keras", ckpt, "-o", archive], case)
    preds = os.path.join(case, "logits.csv")
    run([tlcl, "predict", *dev, "--model", ckpt, "--logits", "--out", preds, data], case)

    meta = checkpoint_metadata(ckpt)
    model = keras_model(meta)
    model.load_weights(exported)
    got = tlcl_logits(preds, int(meta["classes"]))
    paths = sorted(got)
    x = np.stack([images[p].astype(np.float32) for p in paths])
    want = np.asarray(model(x, training=False))
    from_archive = keras_model(meta)
    from_archive.load_weights(archive)  # the .keras zip: its model.weights.h5 member
    same_archive = np.array_equal(np.asarray(from_archive(x, training=False)), want)
    diff = np.abs(want - np.stack([got[p] for p in paths]))
    worst = float(diff.max())
    print("   %s, head %s: %d images x %d logits, max |keras - tlcl| = %.3g (logits up to %.3g, std %.3g)"
          % (name, units or "[]", len(paths), want.shape[1], worst, float(np.abs(want).max()), float(want.std())),
          flush=True)
    print("   %s: model.load_weights of the .keras archive gives the same logits: %s" % (name, same_archive), flush=True)
    return worst <= TOLERANCE and same_archive


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tlcl", default="build/tlcl")
    ap.add_argument("--device", type=int)
    ap.add_argument("--arch", action="append", help="architectures to check (default efficientnet-b0 and "
                    "efficientnetv2-b0)")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--keep", help="work in this folder and keep it")
    args = ap.parse_args()
    work = args.keep or tempfile.mkdtemp(prefix="tlcl_keras_export_")
    os.makedirs(work, exist_ok=True)
    try:
        ok = [check_case(args, work, arch, units) for arch in args.arch or ["efficientnet-b0", "efficientnetv2-b0"]
              for units in ([], [16])]
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("keras_export_check: %s (tolerance %g)" % ("PASS" if all(ok) else "FAIL", TOLERANCE))
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
