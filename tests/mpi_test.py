#!/usr/bin/env python3
"""mpi_test.py — `mpirun --oversubscribe -np 2 tlcl ...` on PoCL against one
process (issue 15, items 4 to 6). Standard library only; it drives the tlcl
binary and Open MPI's mpirun. Data: the generated shapes of faults_test.py.

  train     Lite0 (ImageNet weights, tools/fetch_lite0.sh) fine-tuned in two
            phases where a split of the batch cannot change the maths (a
            frozen-base head phase on cached features, then the top two
            blocks with BatchNorm frozen; SGD; head dropout 0.3 and
            stochastic depth 0.2, whose masks are keyed by the global sample
            index): the 2-rank run's final weights equal the single
            process's within 1e-4 relative (per tensor, L2), its epoch lines
            (within 1e-3) and test accuracy are the same, and every artefact
            is written once (the same files, one log line per epoch, one CSV
            row per epoch).
  bn        the top two blocks trainable with BatchNorm in training mode, no
            dropout
            (each rank normalises its own half batch, the moving statistics
            averaged over the ranks): both runs learn the training set and
            the 2-rank run's test accuracy is the single process's within 1
            point (120 test images). On this tiny task Lite0's moving
            statistics (momentum 0.99) hardly move in 15 steps, so the test
            accuracy stays near 0.6 in one process too: the check is the
            equality, not the level.
  kill      kill -9 of rank 1 in the middle of the run: mpirun stops the
            other rank within 30 s, exits non-zero and says which rank died;
            the same command again resumes from rank 0's backup and ends
            with the uninterrupted 2-rank run's weights; a 2-rank backup
            resumed by ONE process ends within 1e-4 of them too (a backup
            holds the global state, whatever the number of ranks).
  predict   `tlcl predict` under mpirun writes the same CSV as one process;
            `tlcl test` the same report and confusion matrix.
  grid      `tlcl grid` under mpirun runs each run once (run i on rank i mod
            2) and ranks them as one process does.
"""
import argparse
import array
import json
import math
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults_test  # noqa: E402  (the shapes data set and the file checks)

LITE0 = os.path.join(os.environ.get("TLCL_WEIGHTS_DIR") or os.path.expanduser("~/.cache/tlcl/weights"),
                     "efficientnet-lite0-imagenet.safetensors")
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "OMPI_MCA_rmaps_base_oversubscribe": "1"}
SIDE = faults_test.SIDE


def write_config(path, data, run_dir, phases, optimizer, epochs=2, batch=6, extra="", dropout=0.3, drop_connect=0.2,
                 train_extra=""):
    with open(path, "w") as f:
        f.write(
            "train:\n"
            "  config: {seed: 7, epochs: %d, batch_size: %d, logs: {file_path: %s/train.log}%s}\n"
            "  data_dir: {train: %s/train, test: %s/test, validation_split: 0.25, image_size: [%d, %d],\n"
            "             cache_dir: %s/cache, cache_features: true}\n"
            "  artefacts: {base_dir: %s}\n"
            "  metrics: {base_dir: %s/metrics}\n"
            "  records: {base_dir: %s/records}\n"
            "model: {architecture: efficientnet-lite0, weights: imagenet, drop_connect_rate: %g,\n"
            "        head: {dropout: %g}}\n"
            "optimizer: %s\n"
            "phases:\n%s"
            "callbacks:\n"
            "  model_checkpoint: {monitor: val_loss, save_best_only: false}\n"
            "  backup: {save_freq: 2}\n"
            "  csv_logger: {enabled: true}\n"
            "metrics: [accuracy]\n%s"
            % (epochs, batch, run_dir, train_extra, data, data, SIDE, SIDE, run_dir, run_dir, run_dir, run_dir, drop_connect,
               dropout, optimizer, phases, extra))


FROZEN = ("  - {name: head, trainable: none}\n"
          "  - {name: top, epochs: 2, learning_rate: 0.001, trainable: top_blocks, top_blocks: 2, bn_frozen: true}\n")
SGD = "{name: sgd, learning_rate: 0.05, momentum: 0.9}"
TRAINABLE_BN = "  - {name: top, epochs: 5, learning_rate: 0.001, trainable: top_blocks, top_blocks: 2}\n"
ADAM = "{name: adam, learning_rate: 0.001}"


def make_data(root, train, test):
    """faults_test's shapes: train and test images per class."""
    for split, count, base in (("train", train, 0), ("test", test, 1000)):
        for k in faults_test.CLASSES:
            d = os.path.join(root, split, k)
            os.makedirs(d, exist_ok=True)
            for i in range(count):
                with open(os.path.join(d, "img%02d.png" % i), "wb") as f:
                    f.write(faults_test.shape_image(k, base + i * 7 + len(k)))


def tensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    out = {}
    for k, v in header.items():
        if k != "__metadata__":
            a = array.array("f")
            a.frombytes(blob[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
            out[k] = a
    return out


def worst_difference(a_path, b_path):
    """The largest per-tensor relative L2 difference and its tensor."""
    a, b = tensors(a_path), tensors(b_path)
    if sorted(a) != sorted(b):
        return float("inf"), "the tensor names differ"
    worst, name = 0.0, ""
    for k in a:
        d = math.sqrt(sum((x - y) ** 2 for x, y in zip(a[k], b[k])))
        n = math.sqrt(sum(x * x for x in a[k]))
        r = d / n if n > 0 else d
        if r > worst:
            worst, name = r, k
    return worst, name


def mpi_env(ranks):
    """The environment of a run; under mpirun in the sanitizer build, without
    LeakSanitizer: Open MPI's components (PMIx, hwloc and MCA plugins) leak
    from modules they unload at exit, which LSan cannot name, so no
    suppression can single them out. AddressSanitizer's memory checks and
    UBSan stay on; the one-process runs keep the leak check."""
    env = dict(os.environ)
    env.update(MPI_ENV)
    if ranks and "ASAN_OPTIONS" in env:
        env["ASAN_OPTIONS"] += ":detect_leaks=0"
    return env


class Suite(faults_test.Suite):
    def run(self, args, ranks=0, env_extra=None, timeout=600):
        env = mpi_env(ranks)
        env.update(env_extra or {})
        cmd = ([self.mpirun, "--oversubscribe", "-np", str(ranks)] if ranks else []) + [self.tlcl] + args
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)

    def ok_run(self, what, args, ranks=0):
        r = self.run(args, ranks)
        self.expect(r.returncode == 0, "%s exits 0 (got %d)%s" % (what, r.returncode,
                                                                  "" if r.returncode == 0 else ": " + r.stderr[-2000:]))
        return r


def fresh(work, name, data, *config_args, **kw):
    run_dir = os.path.join(work, name)
    shutil.rmtree(run_dir, ignore_errors=True)
    os.makedirs(run_dir)
    config = os.path.join(work, name + ".yaml")
    write_config(config, data, run_dir, *config_args, **kw)
    return run_dir, config


def epoch_lines(text):
    return [l for l in text.split("\n") if l.startswith("phase ") and " epoch " in l]


def epoch_values(line):
    """An epoch line's name (phase and epoch) and its values (key -> number), without the times."""
    head, _, rest = line.partition(" (")
    words = rest.split("):", 1)[1].split()
    return head, {k: float(v) for k, v in zip(words[::2], words[1::2])}


def same_epochs(a, b, rel=1e-3):
    """The same epochs with the same values within rel (the printed 4 digits move with float rounding)."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        (hx, vx), (hy, vy) = epoch_values(x), epoch_values(y)
        if hx != hy or sorted(vx) != sorted(vy):
            return False
        if any(abs(vx[k] - vy[k]) > rel * max(abs(vx[k]), 1e-3) for k in vx):
            return False
    return True


def test_accuracy(run_dir):
    with open(os.path.join(run_dir, "metrics", "test_report.json")) as f:
        return json.load(f)["accuracy"]


def check_train(s, data):
    one, c1 = fresh(s.work, "one", data, FROZEN, SGD)
    two, c2 = fresh(s.work, "two", data, FROZEN, SGD)
    r1 = s.ok_run("one process", ["train", c1])
    r2 = s.ok_run("mpirun -np 2", ["train", c2], ranks=2)
    worst, name = worst_difference(os.path.join(one, "best_model.safetensors"), os.path.join(two, "best_model.safetensors"))
    s.expect(worst <= 1e-4, "2 ranks end with the weights of one process: worst tensor %s at %.3g relative" % (name, worst))
    e1, e2 = epoch_lines(r1.stdout), epoch_lines(r2.stdout)
    s.expect(len(e1) == 4 and same_epochs(e1, e2),
             "the same epoch lines within 1e-3 (loss, accuracy, validation):\n  %s\n  %s" %
             ("\n  ".join(e1), "\n  ".join(e2)))
    s.expect(test_accuracy(one) == test_accuracy(two),
             "the same test accuracy (%.4f, %.4f)" % (test_accuracy(one), test_accuracy(two)))
    f1 = [p for p in faults_test.file_set(one) if not p.startswith("cache/")]
    f2 = [p for p in faults_test.file_set(two) if not p.startswith("cache/")]
    s.expect(f1 == f2, "the same files (%d): %s" % (len(f1), sorted(set(f1) ^ set(f2))))
    with open(os.path.join(two, "train.log")) as f:
        log = f.read()
    s.expect(len(epoch_lines(log)) == 4, "one log line per epoch (%d)" % len(epoch_lines(log)))
    with open(os.path.join(two, "training_log.csv")) as f:
        rows = [r for r in f.read().split("\n") if r]
    s.expect(len(rows) == 1 + 4, "one CSV row per epoch and a header (%d rows)" % len(rows))
    bad = faults_test.check_tree(two)
    s.expect(not bad, "every file whole%s" % ("" if not bad else ": " + "; ".join(bad)))
    s.expect(r2.stdout.count("test: ") == 1, "the test result printed once")


def final_training_accuracy(stdout):
    last = epoch_lines(stdout)[-1]
    return float(last.split(" accuracy ")[1].split()[0])


def check_bn(s, data):
    data = os.path.join(s.work, "data-bn")  # more test images: 1 point is less than one of them
    make_data(data, 16, 40)
    # without dropout: on this tiny task a trainable BatchNorm's result is chaotic enough that the
    # per-rank batch statistics plus dropout move the test accuracy by many points either way
    one, c1 = fresh(s.work, "bn1", data, TRAINABLE_BN, ADAM, batch=12, dropout=0, drop_connect=0)
    two, c2 = fresh(s.work, "bn2", data, TRAINABLE_BN, ADAM, batch=12, dropout=0, drop_connect=0)
    r1 = s.ok_run("one process, trainable BatchNorm", ["train", c1])
    r2 = s.ok_run("2 ranks, trainable BatchNorm", ["train", c2], ranks=2)
    t1, t2 = final_training_accuracy(r1.stdout), final_training_accuracy(r2.stdout)
    s.expect(t1 >= 0.85 and t2 >= 0.85, "both learn the training set (accuracy %.4f, %.4f)" % (t1, t2))
    a1, a2 = test_accuracy(one), test_accuracy(two)
    s.expect(abs(a1 - a2) <= 0.01, "the same test accuracy within 1 point (%.4f, %.4f of 120 images)" % (a1, a2))


def rank_pid(mpirun_pid, rank):
    """The pid of the tlcl process of `rank` under mpirun (from its environment)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != mpirun_pid:
                continue
            with open("/proc/%s/environ" % pid, "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if ("OMPI_COMM_WORLD_RANK=%d" % rank).encode() in env:
            return int(pid)
    return None


def check_kill(s, data):
    ref, cref = fresh(s.work, "ref", data, FROZEN, SGD)
    s.ok_run("the uninterrupted 2-rank run", ["train", cref], ranks=2)
    run_dir, config = fresh(s.work, "killed", data, FROZEN, SGD)
    env = mpi_env(2)
    p = subprocess.Popen([s.mpirun, "--oversubscribe", "-np", "2", s.tlcl, "train", config], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    backup = os.path.join(run_dir, "backup", "latest.safetensors")
    deadline = time.time() + 300
    while time.time() < deadline and p.poll() is None:  # mid-run: once phase 2 has backed up
        if os.path.exists(backup) and "phase 2" in open(os.path.join(run_dir, "train.log")).read():
            break
        time.sleep(0.05)
    victim = rank_pid(p.pid, 1)
    s.expect(victim is not None and p.poll() is None, "rank 1 found running mid-run (pid %s)" % victim)
    if victim is None:
        p.kill()
        return
    os.kill(victim, signal.SIGKILL)
    t0 = time.time()
    try:
        out, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    took = time.time() - t0
    s.expect(took < 30, "the other rank stops within 30 s (%.1f s)" % took)
    s.expect(p.returncode != 0, "mpirun exits non-zero (%d)" % p.returncode)
    s.expect("rank 1" in err and ("signal 9" in err or "Killed" in err),
             "the message names rank 1 and its signal: %s" % " | ".join(l for l in err.split("\n") if l.strip())[-600:])
    resumed_one, _ = run_dir + "-n1", None
    shutil.copytree(run_dir, resumed_one)
    r = s.ok_run("the rerun with 2 ranks", ["train", config], ranks=2)
    s.expect("resumed from" in r.stdout, "the rerun resumes from the backup")
    worst, name = worst_difference(os.path.join(ref, "best_model.safetensors"),
                                   os.path.join(run_dir, "best_model.safetensors"))
    s.expect(worst == 0, "the resumed 2-rank run ends with the uninterrupted run's weights (worst %s %.3g)" % (name, worst))
    # the same backup resumed by one process (a copy of the folder, its config pointing there)
    config_one = os.path.join(s.work, "killed-n1.yaml")
    with open(config) as f:
        text = f.read().replace(run_dir + "/", resumed_one + "/").replace(run_dir + "}", resumed_one + "}")
    with open(config_one, "w") as f:
        f.write(text)
    r = s.ok_run("the 2-rank backup resumed by one process", ["train", config_one])
    s.expect("resumed from" in r.stdout, "one process resumes the 2-rank backup")
    worst, name = worst_difference(os.path.join(ref, "best_model.safetensors"),
                                   os.path.join(resumed_one, "best_model.safetensors"))
    s.expect(worst <= 1e-4, "and ends within 1e-4 of the uninterrupted 2-rank run (worst %s %.3g)" % (name, worst))


def csv_rows(path):
    with open(path) as f:
        return f.read()


def check_predict(s, data):
    one, c1 = fresh(s.work, "model", data, FROZEN, SGD)
    s.ok_run("training the model to predict with", ["train", c1])
    model = os.path.join(one, "best_model.safetensors")
    out = os.path.join(s.work, "predict")
    args = ["predict", "--model", model, "--top", "2", "--logits", "--batch-size", "4", data]
    s.ok_run("predict, one process", args + ["--out", out + "-1.csv"])
    s.ok_run("predict, 2 ranks", args + ["--out", out + "-2.csv"], ranks=2)
    r3 = s.ok_run("predict, 3 ranks, to stdout", args, ranks=3)
    want = csv_rows(out + "-1.csv")
    rows = want.count("\n") - 1
    s.expect(rows == 42, "one process: a row per image (%d)" % rows)
    s.expect(csv_rows(out + "-2.csv") == want, "2 ranks write the same CSV (%d rows)" % (csv_rows(out + "-2.csv").count("\n") - 1))
    s.expect(r3.stdout == want, "3 ranks write the same CSV to stdout (%d rows)" % (r3.stdout.count("\n") - 1))
    s.expect(not os.path.exists(out + "-2.csv.partial"), "no partial file left")
    # tlcl test: the shards' counts summed, rank 0 writes the outputs
    for ranks, name in ((0, "test-1"), (2, "test-2")):
        s.ok_run("tlcl test with %s" % ("2 ranks" if ranks else "one process"),
                 ["test", "--model", model, "--data", os.path.join(data, "train"), "--batch-size", "4",
                  "--out", os.path.join(s.work, name)], ranks=ranks)
    for f in ("test_report.json", "test_confusion_matrix.csv"):
        a, b = (csv_rows(os.path.join(s.work, d, f)) for d in ("test-1", "test-2"))
        s.expect(a == b and len(a) > 0, "tlcl test: the same %s" % f)
    s.expect(sorted(os.listdir(os.path.join(s.work, "test-1"))) == sorted(os.listdir(os.path.join(s.work, "test-2"))),
             "tlcl test: the same files")


GRID = """grid:
  dir: %s
  metric: val_loss
  params:
    optimizer.learning_rate: [0.05, 0.02, 0.01]
"""


def check_grid(s, data):
    results = []
    for ranks, name in ((0, "grid1"), (2, "grid2")):
        grid_dir = os.path.join(s.work, name)
        _, config = fresh(s.work, name + "-base", data, "  - {name: head, trainable: none}\n", SGD,
                          extra=GRID % grid_dir)
        r = s.ok_run("grid with %s" % ("2 ranks" if ranks else "one process"), ["grid", config], ranks=ranks)
        results.append((grid_dir, r))
    (g1, r1), (g2, r2) = results
    s1, s2 = csv_rows(os.path.join(g1, "summary.csv")), csv_rows(os.path.join(g2, "summary.csv"))
    s.expect(s1 == s2 and s1.count("\n") == 4, "the same ranking (summary.csv):\n%s\n%s" % (s1, s2))
    runs = sorted(d for d in os.listdir(g2) if d.startswith("run-"))
    for d in runs:
        with open(os.path.join(g2, d, "train.log")) as f:
            log = f.read()
        s.expect(len(epoch_lines(log)) == 2, "%s trained once (%d epoch lines)" % (d, len(epoch_lines(log))))
    s.expect("grid: [1/3]" in r2.stdout and "grid: [3/3]" in r2.stdout and "grid: [2/3]" not in r2.stdout,
             "rank 0 trains runs 1 and 3, rank 1 run 2:\n%s" % r2.stdout)
    s.expect(len(runs) == 3 and os.path.exists(os.path.join(g2, "best_model.safetensors")),
             "3 runs and the best model copied (%s)" % runs)


SHORT_BN = "  - {name: top, epochs: 1, learning_rate: 0.001, trainable: top_blocks, top_blocks: 2}\n"


def check_syncbn(s, data):
    """sync_batchnorm with trainable BatchNorm (dropout and stochastic depth on): 2 ranks of one device, and 2
    ranks of 2 local replicas each (--devices=0,0: the group's outer reducer is MPI), end with the weights of
    one process."""
    sync = ", sync_batchnorm: true"
    one, c1 = fresh(s.work, "sb1", data, SHORT_BN, SGD, train_extra=sync)
    s.ok_run("one process, sync BN", ["train", c1])
    for name, ranks, extra in (("sbg", 0, ["--devices=0,0"]), ("sb2", 2, []), ("sb4", 2, ["--devices=0,0"])):
        run_dir, cfg = fresh(s.work, name, data, SHORT_BN, SGD, train_extra=sync)
        s.ok_run("mpirun -np %d %s" % (ranks, " ".join(extra)), ["train", cfg] + extra, ranks=ranks)
        worst, tensor = worst_difference(os.path.join(one, "best_model.safetensors"),
                                         os.path.join(run_dir, "best_model.safetensors"))
        s.expect(worst <= 1e-4, "%d rank(s)%s with sync BN end with one device's weights: worst tensor %s at %.3g "
                 "relative" % (max(ranks, 1), " of 2 replicas" if extra else "", tensor, worst))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("train", "bn", "syncbn", "kill", "predict", "grid"))
    ap.add_argument("--tlcl", required=True)
    ap.add_argument("--mpirun", default=shutil.which("mpirun") or "mpirun")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    a = ap.parse_args()
    if not os.path.exists(LITE0):
        print("FAIL: %s is missing: run tools/fetch_lite0.sh" % LITE0)
        return 1
    work = tempfile.mkdtemp(prefix="tlcl-mpi-")
    s = Suite(os.path.abspath(a.tlcl), work)
    s.mpirun = a.mpirun
    checks = {"train": check_train, "bn": check_bn, "kill": check_kill, "predict": check_predict, "grid": check_grid,
              "syncbn": check_syncbn}

    def body():
        data = os.path.join(work, "data")
        faults_test.make_data(data, 12)
        checks[a.what](s, data)
    return faults_test.run_suite(s, a.keep, body)


if __name__ == "__main__":
    sys.exit(main())
