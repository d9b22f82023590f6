#!/usr/bin/env python3
"""Writes tests/fixtures/metrics_*.json: fixed predictions and what
scikit-learn computes from them, for tests/test_host_metrics.c.

    python3 -m pip install numpy scikit-learn
    python3 tools/make_metrics_fixture.py

Probabilities are multiples of 1/20 stored as float32 (then written as the
exact float64 of that float32), so there are ties within rows (argmax picks
the first) and across samples (ROC thresholds with several points).  The
Keras quantities (micro AUC with 200 thresholds, Precision/Recall at 0.5)
are computed here by the formulas of keras_reference.md section 7.1 in
float32, since TensorFlow is not installed; everything else is sklearn's own
output.  Python is only needed to regenerate the fixtures, never at test time.
"""
import csv
import io
import json
import pickle
import pickletools
import sys
from pathlib import Path

import numpy as np
import sklearn
from sklearn import metrics as skm

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures"


def quantised_probs(rng, y, c, never_pred=None, bias=6):
    """Rows of integer counts summing to 20, biased towards the true class."""
    rows = []
    for t in y:
        while True:
            w = rng.integers(0, 8, size=c).astype(np.int64)
            if rng.random() < 0.7:
                w[t] += bias
            if w.sum() == 0:
                continue
            k = np.floor(w * 20 / w.sum()).astype(np.int64)
            k[np.argmax(w)] += 20 - k.sum()
            if never_pred is not None and k[never_pred] >= k.max() and k.max() > 0:
                # the never-predicted class must stay strictly below the max
                continue
            rows.append(k)
            break
    rows = np.array(rows)
    return (rows.astype(np.float32) / np.float32(20)).astype(np.float32)


def add_ties(p, rng, n_ties):
    """Makes some rows tie on their two largest entries (argmax = first)."""
    c = p.shape[1]
    for i in rng.choice(len(p), size=n_ties, replace=False):
        if c == 2:
            p[i] = [0.5, 0.5]
        else:
            a, b = sorted(rng.choice(c - 1, size=2, replace=False))
            row = np.zeros(c, np.float32)
            row[a] = row[b] = np.float32(0.4)
            rest = [j for j in range(c) if j not in (a, b)]
            row[rest] = np.float32(0.2) / np.float32(len(rest))
            p[i] = row
    return p


def keras_auc(p, y, w, nt=200):
    c = p.shape[1]
    lab = np.eye(c, dtype=np.float32)[y].reshape(-1)
    ww = np.repeat(w, c).astype(np.float64)
    pp = np.clip(p.reshape(-1), np.float32(0), np.float32(1)).astype(np.float32)
    b = np.ceil(pp * np.float32(nt - 1)).astype(np.int64) - 1
    b = np.maximum(b, 0)
    tpb = np.bincount(b, weights=lab * ww, minlength=nt)
    fpb = np.bincount(b, weights=(1 - lab) * ww, minlength=nt)
    tp = np.cumsum(tpb[::-1])[::-1]
    fp = np.cumsum(fpb[::-1])[::-1]
    pos, neg = tp[0], fp[0]
    tpr = tp / pos
    fpr = fp / neg
    return float(np.sum((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2))


def keras_pr(p, y, w):
    c = p.shape[1]
    lab = np.eye(c, dtype=bool)[y]
    pos = p > np.float32(0.5)
    ww = np.repeat(w[:, None], c, axis=1)
    tp = float(np.sum(ww * (lab & pos)))
    fp = float(np.sum(ww * (~lab & pos)))
    fn = float(np.sum(ww * (lab & ~pos)))
    return (tp / (tp + fp) if tp + fp else 0.0), (tp / (tp + fn) if tp + fn else 0.0)


def results(p, y, w, c):
    """Everything tlcl computes, from sklearn (and section 7.1 for Keras)."""
    labels = list(range(c))
    pred = np.argmax(p, axis=1)
    prec, rec, f1, sup = skm.precision_recall_fscore_support(
        y, pred, labels=labels, sample_weight=w, zero_division=0)
    avg = {}
    for a in ("macro", "weighted"):
        ap, ar, af, _ = skm.precision_recall_fscore_support(
            y, pred, labels=labels, sample_weight=w, average=a, zero_division=0)
        avg[a] = [float(ap), float(ar), float(af)]
    if c == 2:
        auc_cls = [float(skm.roc_auc_score(y == k, p[:, k], sample_weight=w)) for k in range(c)]
        auc_macro = float(skm.roc_auc_score(y, p[:, 1], sample_weight=w))
    else:
        auc_cls = [float(skm.roc_auc_score(y == k, p[:, k], sample_weight=w)) for k in range(c)]
        auc_macro = float(skm.roc_auc_score(y, p, multi_class="ovr", average="macro", sample_weight=w))
    kp, kr = keras_pr(p, y, w if w is not None else np.ones(len(y)))
    r = {
        "pred": pred.tolist(),
        "confusion": skm.confusion_matrix(y, pred, labels=labels, sample_weight=w).astype(float).tolist(),
        "accuracy": float(skm.accuracy_score(y, pred, sample_weight=w)),
        "precision": prec.tolist(), "recall": rec.tolist(), "f1": f1.tolist(),
        "support": np.asarray(sup, dtype=float).tolist(),
        "macro": avg["macro"], "weighted": avg["weighted"],
        "balanced_accuracy": float(skm.balanced_accuracy_score(y, pred, sample_weight=w)),
        "kappa": {k: float(skm.cohen_kappa_score(y, pred, weights=None if k == "none" else k, sample_weight=w))
                  for k in ("none", "linear", "quadratic")},
        "auc_ovr": auc_cls, "auc_macro": auc_macro,
        "keras_auc": keras_auc(p, y, w if w is not None else np.ones(len(y))),
        "keras_precision": kp, "keras_recall": kr,
    }
    if c > 2:
        r["top2"] = float(skm.top_k_accuracy_score(y, p, k=2, labels=labels, sample_weight=w))
    return r


def case(name, p, y, w, names):
    c = p.shape[1]
    report = skm.classification_report(y, np.argmax(p, axis=1), labels=list(range(c)),
                                       target_names=names, output_dict=True, zero_division=0)
    return {
        "name": name, "classes": c, "class_names": names,
        "probs": [[float(v) for v in row] for row in p],
        "y_true": y.tolist(), "weights": w.tolist(),
        "unweighted": results(p, y, None, c),
        "weighted": results(p, y, w, c),
        "report": report,
    }


def history_fixture():
    """A Keras-like history, with what json, csv (CSVLogger) and pickle
    make of it, byte for byte."""
    f32 = lambda v: float(np.float32(v))
    hist = {
        "accuracy": [f32(0.5), f32(0.71875), f32(0.8125)],
        "loss": [f32(1.2345678), f32(0.6), f32(1e-5)],
        "val_accuracy": [0.25, 1.0, f32(2.0 / 3.0)],
        "val_loss": [1e16, 123456789.0, 1.5e-7],
    }
    buf = io.StringIO(newline="")
    keys = sorted(hist)
    wr = csv.DictWriter(buf, fieldnames=["epoch"] + keys, lineterminator="\r\n")
    wr.writeheader()
    for e in range(3):
        wr.writerow({"epoch": e, **{k: hist[k][e] for k in keys}})
    raw = pickle.dumps(hist, protocol=2)
    return {
        "history": hist, "keys_in_order": list(hist),
        "json": json.dumps(hist),
        "csv": buf.getvalue(),
        # Python memoises every object (BINPUT); optimize() drops the
        # unused memo entries, leaving the opcodes tlcl writes.
        "pickle_hex": pickletools.optimize(raw).hex(),
        "pickle_raw_hex": raw.hex(),
    }


def main():
    rng = np.random.default_rng(20261122)
    n, c = 200, 4
    y = rng.integers(0, c, size=n)
    y[:4] = [0, 1, 2, 3]
    p = add_ties(quantised_probs(rng, y, c, never_pred=3), rng, 12)
    w = rng.choice([0.5, 1.0, 1.5, 3.0], size=n)
    names = ["bacteria", "normal", "virus", "covid"]
    multi = case("multi", p, y, w, names)
    assert 3 not in multi["unweighted"]["pred"]

    n2 = 60
    y2 = rng.integers(0, 2, size=n2)
    p2 = add_ties(quantised_probs(rng, y2, 2, bias=4), rng, 6)
    w2 = rng.choice([0.5, 1.0, 2.0], size=n2)
    binary = case("binary", p2, y2, w2, ["neg", "pos"])

    meta = {"sklearn": sklearn.__version__, "numpy": np.__version__, "python": sys.version.split()[0]}
    for nm, d in (("multi", multi), ("binary", binary), ("history", history_fixture())):
        d["generated_by"] = meta
        (OUT / f"metrics_{nm}.json").write_text(json.dumps(d, indent=1) + "\n")
        print("wrote", OUT / f"metrics_{nm}.json")


if __name__ == "__main__":
    main()
