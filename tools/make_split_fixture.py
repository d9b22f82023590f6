#!/usr/bin/env python3
"""Writes tests/fixtures/split_*.json: what Keras's
image_dataset_from_directory would do with a small synthetic directory tree,
for tests/test_host_dataset.c.

No TensorFlow: the script builds the tree (empty files) in a temporary
directory and indexes it with Keras's algorithm as
shared/reference/keras_reference.md §4 describes it (sorted class
sub-directories without dot-names, sorted os.walk roots, sorted file names,
the five extensions lower-cased; np.random.RandomState(seed).shuffle of the
path list; validation = the last int(split * N)), and computes the class
weights with scikit-learn's compute_class_weight("balanced",
classes=np.unique(y), y=y) when scikit-learn is installed, else with its
formula (the fixture records which).

Usage: python3 tools/make_split_fixture.py [OUT_DIR]   (default tests/fixtures)
Needs numpy (python3 -m pip install numpy; scikit-learn optional).
"""
import json
import os
import sys
import tempfile

import numpy as np

try:
    import sklearn
    from sklearn.utils.class_weight import compute_class_weight
except ImportError:  # the formula below is sklearn's, written out
    sklearn = None

KERAS_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
TLCL_FORMATS = KERAS_FORMATS + (".tga", ".pnm", ".ppm", ".pgm")

# Mixed-case class names: byte order puts upper case first.
CLASSES = {"Bacteria": 20, "NORMAL": 12, "Virus": 9, "alpha": 5, "beta_2": 3, "zeta_empty": 0}
# Sub-folders inside a class: "a-b" sorts before "a/b" ('-' < '/'),
# "A" before "a", and Keras walks ".cache" (only class-level dot-dirs are skipped).
SUBDIRS = ["", "a", "a-b", "a/b", "A", ".cache", "a/b/c"]
EXTS = [".jpg", ".JPG", ".png", ".Png", ".jpeg", ".JPEG", ".gif", ".bmp", ".BMP"]

def tree_files():
    """Relative paths of every file to create (images and others)."""
    files, k = [], 0
    for cls, n in CLASSES.items():
        for i in range(n):
            sub = SUBDIRS[(i * 3 + len(cls)) % len(SUBDIRS)]
            group = "S%02d" % ((k * 7) % 11)  # groups span classes, like samples of a cruise
            name = "%s_%04d%s" % (group, k, EXTS[k % len(EXTS)])
            files.append("/".join(p for p in (cls, sub, name) if p))
            k += 1
    files += [
        "Bacteria/notes.txt", "Bacteria/Thumbs.db", "Bacteria/x.jpg.txt", "Bacteria/jpg",
        "Bacteria/.hidden.png",          # a dot-file with an image extension: Keras keeps it
        "NORMAL/img10.jpg", "NORMAL/img9.jpg", "NORMAL/Img1.jpg", "NORMAL/_x.jpg",
        "NORMAL/a/S20_9000.tga", "Virus/S21_9001.ppm", "Virus/S21_9002.PGM", "alpha/S22_9003.pnm",
        "zeta_empty/readme.md",
        ".hidden_class/S01_0001.jpg",   # dot class: ignored
        "root.jpg", "README.txt",       # files in the root: ignored
    ]
    return files

def make_tree(root, files):
    for rel in files:
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "wb").close()

def keras_index(directory, formats, class_names=None):
    """keras.utils.dataset_utils.index_directory with labels='inferred', no shuffle."""
    subdirs = [d for d in sorted(os.listdir(directory))
               if os.path.isdir(os.path.join(directory, d)) and not d.startswith(".")]
    if class_names is not None:
        assert set(class_names).issubset(subdirs)
        subdirs = list(class_names)
    paths, labels = [], []
    for label, cls in enumerate(subdirs):
        top = os.path.join(directory, cls)
        for root, _, files in sorted(os.walk(top), key=lambda x: x[0]):
            for fname in sorted(files):
                if fname.lower().endswith(formats):
                    paths.append(os.path.join(cls, os.path.relpath(os.path.join(root, fname), top)))
                    labels.append(label)
    return subdirs, paths, labels

def keras_split(paths, labels, seed, split, shuffle=True):
    paths, labels = list(paths), list(labels)
    if shuffle:  # two fresh generators, one permutation (Keras shuffles paths, then labels)
        np.random.RandomState(seed).shuffle(paths)
        np.random.RandomState(seed).shuffle(labels)
    n_val = int(split * len(paths))
    assert n_val > 0
    pairs = [{"path": p, "label": l} for p, l in zip(paths, labels)]
    return pairs[:-n_val], pairs[-n_val:]

def subsample(items, seed, fraction):
    items = list(items)
    np.random.RandomState(seed).shuffle(items)
    return items[: int(fraction * len(items))]

def balanced(labels, num_classes):
    """{class: weight} as the Keras recipe builds it, 1.0 for absent classes."""
    y = np.asarray(labels)
    present = np.unique(y)
    if sklearn is not None:
        w = compute_class_weight("balanced", classes=present, y=y)
    else:
        w = len(y) / (len(present) * np.bincount(np.searchsorted(present, y)).astype(np.float64))
    out = [1.0] * num_classes
    for c, wc in zip(present, w):
        out[int(c)] = float(wc)
    return out

def mt_streams():
    out = []
    for seed in (42, 0, 1, 5489, 4294967295):
        rs = np.random.RandomState(seed)
        raw = rs.randint(0, 2**32, size=700, dtype=np.uint32)  # full range: raw outputs; 700 > 624 crosses a regeneration
        out.append({"seed": seed, "uint32": [int(v) for v in raw]})
    return out

def shuffles():
    out = []
    for seed in (42, 7, 2024):
        for n in (1, 2, 3, 10, 1000):
            perm = list(range(n))
            np.random.RandomState(seed).shuffle(perm)
            out.append({"seed": seed, "n": n, "perm": perm})
    return out

def write(out_dir, name, obj):
    path = os.path.join(out_dir, name)
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
    print("wrote", path)

def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")
    os.makedirs(out_dir, exist_ok=True)
    files = tree_files()
    versions = {"numpy": np.__version__, "sklearn": sklearn.__version__ if sklearn else None,
                "class_weight_source": "sklearn.compute_class_weight" if sklearn else "formula"}
    with tempfile.TemporaryDirectory() as tmp:
        make_tree(tmp, files)
        classes, kpaths, klabels = keras_index(tmp, KERAS_FORMATS)
        _, tpaths, tlabels = keras_index(tmp, TLCL_FORMATS)
        subset = ["alpha", "NORMAL"]
        _, spaths, slabels = keras_index(tmp, KERAS_FORMATS, subset)
    pairs = lambda ps, ls: [{"path": p, "label": l} for p, l in zip(ps, ls)]
    write(out_dir, "split_tree.json", {
        "generator": "tools/make_split_fixture.py", **versions, "files": files, "class_names": classes,
        "keras_only": pairs(kpaths, klabels), "tlcl": pairs(tpaths, tlabels),
        "subset": {"class_names": subset, "samples": pairs(spaths, slabels)}})

    splits = []
    cases = [(s, f, True) for s in (42, 0, 1, 123456, 4294967295) for f in (0.2, 0.25, 0.5, 0.1, 0.7, 0.33)]
    cases.append((42, 0.3, False))
    for seed, frac, shuffle in cases:
        train, val = keras_split(kpaths, klabels, seed, frac, shuffle)
        splits.append({"seed": seed, "validation_split": frac, "shuffle": shuffle, "training": train,
                       "validation": val})
    subs = []
    for seed, frac, sub in ((42, 0.2, 0.2), (42, 0.2, 0.5), (7, 0.25, 0.15), (123456, 0.5, 0.9)):
        train, val = keras_split(kpaths, klabels, seed, frac)
        subs.append({"seed": seed, "validation_split": frac, "fraction": sub,
                     "training": subsample(train, seed, sub), "validation": subsample(val, seed, sub)})
    write(out_dir, "split_keras.json", {
        "generator": "tools/make_split_fixture.py", **versions, "mt19937": mt_streams(),
        "shuffles": shuffles(), "splits": splits, "subsamples": subs})

    weights = []
    for s in splits:
        labels = [p["label"] for p in s["training"]]
        weights.append({"seed": s["seed"], "validation_split": s["validation_split"], "shuffle": s["shuffle"],
                        "balanced": balanced(labels, len(classes))})
    write(out_dir, "split_class_weight.json", {
        "generator": "tools/make_split_fixture.py", **versions, "class_names": classes, "cases": weights})

if __name__ == "__main__":
    main()
