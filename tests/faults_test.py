#!/usr/bin/env python3
"""faults_test.py — `tlcl train` under kill, full disk and a second process
(issue 13). Standard library only; it drives the tlcl binary, never runs
tlcl code itself.

  kills       SIGKILL at every file publish (TLCL_TEST_KILL_AT_PUBLISH=N,
              before and after the rename) and at random moments (fixed
              seed); after each kill every file in the run folder parses
              (checkpoints, JSON, CSV rows whole, PNG, pickle) and no
              temporary of a live writer is left; the rerun (same command)
              ends with the weights of an uninterrupted run, bit for bit,
              and a rerun of a finished run changes nothing.
  fulldisk    the run folder and the image cache on a tmpfs of several
              sizes (a private mount namespace: root, else unshare -rm;
              neither: exit 77, which ctest reports as skipped): exit 1, a
              message naming a file and "No space left on device", no
              signal, every published file whole.
  concurrent  a second `tlcl train` on a folder in use stops at once
              (exit 1) naming the holder's pid; the first finishes whole.
"""
import argparse
import json
import os
import pickle
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib

SKIP = 77
CLASSES = ("circles", "squares", "stripes")
SIDE = 32


def png_bytes(pixels, side):
    """An 8-bit RGB PNG of rows of (r, g, b) tuples."""
    raw = b"".join(b"\0" + bytes(c for px in row for c in px) for row in pixels)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def shape_image(kind, salt):
    rnd = random.Random(salt)
    cx, cy, r = rnd.randint(10, 20), rnd.randint(10, 20), rnd.randint(5, 9)
    rows = []
    for y in range(SIDE):
        row = []
        for x in range(SIDE):
            if kind == "circles":
                on = (x - cx) ** 2 + (y - cy) ** 2 <= r * r
            elif kind == "squares":
                on = abs(x - cx) <= r and abs(y - cy) <= r
            else:
                on = (x + salt) % 4 < 2
            v = 230 if on else 20 + rnd.randint(0, 20)
            row.append((v, v // 2, 255 - v))
        rows.append(row)
    return png_bytes(rows, SIDE)


def make_data(root, per_class):
    for split, count, base in (("train", per_class, 0), ("test", 2, 1000)):
        for k in CLASSES:
            d = os.path.join(root, split, k)
            os.makedirs(d, exist_ok=True)
            for i in range(count):
                with open(os.path.join(d, "img%02d.png" % i), "wb") as f:
                    f.write(shape_image(k, base + i * 7 + len(k)))


def write_config(path, data, run_dir, epochs=2, double=False, append=False):
    every = "\n    save_freq: epoch" + ("\n    double_checkpoint: true" if double else "")
    with open(path, "w") as f:
        f.write(
            "train:\n"
            "  config:\n"
            "    seed: 7\n"
            "    epochs: %d\n"
            "    batch_size: 4\n"
            "    logs:\n"
            "      file_path: %s/train.log\n"
            "  data_dir: {train: %s/train, test: %s/test, validation_split: 0.25, image_size: [%d, %d],\n"
            "             cache_dir: %s/cache}\n"
            "  artefacts: {base_dir: %s, fit_history: fit_history.pkl, callback_history: callbacks.csv}\n"
            "  metrics: {base_dir: %s/metrics}\n"
            "  records: {base_dir: %s/records}\n"
            "model: {architecture: efficientnet-b0, weights: none, head: {dropout: 0.2}}\n"
            "optimizer: {name: adam, learning_rate: 0.002}\n"
            "augmentation: {enabled: true, flip: horizontal}\n"
            "callbacks:\n"
            "  model_checkpoint: {monitor: val_loss, save_best_only: false}\n"
            "  backup:%s\n"
            "  csv_logger: {enabled: true, append: %s}\n"
            "metrics: [accuracy, f1]\n"
            % (epochs, run_dir, data, data, SIDE, SIDE, run_dir, run_dir, run_dir, run_dir, every,
               "true" if append else "false"))


# ---- what a whole file looks like -------------------------------------------

def check_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        return "shorter than its length field"
    n = struct.unpack("<Q", blob[:8])[0]
    if 8 + n > len(blob):
        return "header runs past the end"
    header = json.loads(blob[8:8 + n])
    end = 0
    for k, v in header.items():
        if k != "__metadata__":
            end = max(end, v["data_offsets"][1])
    if 8 + n + end != len(blob):
        return "data is %d bytes, the tensors need %d" % (len(blob) - 8 - n, end)
    return None


def check_csv(path):
    with open(path, "rb") as f:
        text = f.read().decode()
    if text and not text.endswith("\n"):
        return "the last row is torn (no line end)"
    rows = [r for r in text.split("\n") if r]
    widths = {r.count(",") for r in rows}
    return "rows of %s fields" % sorted(w + 1 for w in widths) if len(widths) > 1 else None


def check_file(path):
    """None when the file is whole, else what is wrong."""
    name = os.path.basename(path)
    try:
        if ".tmp." in name:
            pid = int(name.rsplit(".tmp.", 1)[1])
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return None  # a killed writer's: the next start removes it (asserted after the rerun)
            return None
        if name.endswith(".safetensors") or name.endswith(".safetensors.bkp"):
            return check_safetensors(path)
        if name.endswith(".json"):
            with open(path) as f:
                json.load(f)
        elif name.endswith(".csv"):
            return check_csv(path)
        elif name.endswith(".pkl"):
            with open(path, "rb") as f:
                pickle.load(f)
        elif name.endswith(".png"):
            with open(path, "rb") as f:
                blob = f.read()
            if not blob.startswith(b"\x89PNG") or not blob.endswith(b"IEND\xaeB`\x82"):
                return "not a whole PNG"
        elif name.endswith(".jpg"):
            with open(path, "rb") as f:
                blob = f.read()
            if not blob.startswith(b"\xff\xd8") or not blob.endswith(b"\xff\xd9"):
                return "not a whole JPEG"
    except Exception as e:  # noqa: BLE001 - any parse failure is the finding
        return "does not parse: %s" % e
    return None


def check_tree(root):
    bad = []
    for d, _, files in os.walk(root):
        for n in files:
            why = check_file(os.path.join(d, n))
            if why:
                bad.append("%s: %s" % (os.path.join(d, n), why))
    return bad


def temporaries(root):
    return [os.path.join(d, n) for d, _, files in os.walk(root) for n in files if ".tmp." in n]


def file_set(root):
    """The files of a run folder, relative (the log, which each start appends to, aside)."""
    return sorted(os.path.relpath(os.path.join(d, n), root) for d, _, fs in os.walk(root) for n in fs
                  if n != "train.log")


def tensor_data(path):
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    return blob[8 + n:]


# ---- running tlcl ------------------------------------------------------------

class Suite:
    def __init__(self, tlcl, work):
        self.tlcl, self.work, self.failures = tlcl, work, []

    def expect(self, ok, what):
        print("%s: %s" % ("ok" if ok else "FAIL", what), flush=True)
        if not ok:
            self.failures.append(what)

    def train(self, config, env_extra=None, timeout=300):
        env = dict(os.environ)
        env.update(env_extra or {})
        return subprocess.run([self.tlcl, "train", config], env=env, capture_output=True, text=True,
                              timeout=timeout)


def fresh_run(work, name, data, **kw):
    run_dir = os.path.join(work, name)
    shutil.rmtree(run_dir, ignore_errors=True)
    os.makedirs(run_dir)
    config = os.path.join(work, name + ".yaml")
    write_config(config, data, run_dir, **kw)
    return run_dir, config


def count_publishes(s, data):
    """The publishes of a whole run: the kill hook's N past the last one
    never fires, so the first N that lets the run finish is the count + 1."""
    run_dir, config = fresh_run(s.work, "count", data)
    lo, hi = 1, 400
    while lo < hi:  # the smallest N at which the run is not killed
        mid = (lo + hi) // 2
        shutil.rmtree(run_dir)
        os.makedirs(run_dir)
        r = s.train(config, {"TLCL_TEST_KILL_AT_PUBLISH": str(mid)})
        if r.returncode == -signal.SIGKILL:
            lo = mid + 1
        else:
            hi = mid
    return lo - 1


def damaged_backup(s, data, ref):
    """A backup whose tensor data is damaged (one bit) is refused whole by its
    checksum before any of it is used; the run resumes from the previous one
    (double_checkpoint), says so, and still ends with the reference weights."""
    run_dir, config = fresh_run(s.work, "damaged", data, double=True)
    latest = os.path.join(run_dir, "backup", "latest.safetensors")
    for n in range(1, 60):  # kill right after the second backup is published: both backups are there
        shutil.rmtree(run_dir)
        os.makedirs(run_dir)
        r = s.train(config, {"TLCL_TEST_KILL_AT_PUBLISH": str(-n)})
        if r.returncode != -signal.SIGKILL or os.path.exists(latest + ".bkp"):
            break
    s.expect(os.path.exists(latest) and os.path.exists(latest + ".bkp"), "a kill leaves two backups (publish %d)" % n)
    with open(latest, "r+b") as f:
        hlen = struct.unpack("<Q", f.read(8))[0]
        f.seek(8 + hlen + 4096)
        b = f.read(1)
        f.seek(8 + hlen + 4096)
        f.write(bytes([b[0] ^ 0x01]))
    r = s.train(config)
    s.expect(r.returncode == 0, "the rerun after a damaged backup exits 0")
    s.expect("checksum" in r.stderr and latest in r.stderr, "the damaged backup is named with its checksum: %s" %
             r.stderr.strip()[-400:])
    s.expect("resumed from %s.bkp (the previous backup" % latest in r.stdout, "the console names the backup used: %s" %
             [l for l in r.stdout.split("\n") if "resumed" in l])
    best = os.path.join(run_dir, "best_model.safetensors")
    s.expect(os.path.exists(best) and tensor_data(best) == ref,
             "resumed from the previous backup, the run ends with the uninterrupted run's weights")


EARLIER_CSV = b"epoch,loss\r\n0,9.5\r\n"  # a row an earlier run appended, which append: true keeps


def csv_append(s, data):
    """CSVLogger append: true (issue 14, item 8): after a kill and the rerun,
    the log holds the earlier run's rows once, one header, and each epoch of
    this run once, byte for byte as an uninterrupted run writes it."""
    def run_with_earlier(name, env=None):
        run_dir, config = fresh_run(s.work, name, data, append=True)
        with open(os.path.join(run_dir, "training_log.csv"), "wb") as f:
            f.write(EARLIER_CSV)
        return run_dir, config, s.train(config, env)

    ref_dir, _, r = run_with_earlier("append_ref")
    with open(os.path.join(ref_dir, "training_log.csv"), "rb") as f:
        ref = f.read()
    s.expect(r.returncode == 0 and ref.startswith(EARLIER_CSV) and ref.count(b"epoch") == 1 and
             ref.count(b"\r\n") == 2 + 2, "append: the earlier row, no second header, 2 epochs: %r" % ref[:300])
    for at in (4, 7, -5):
        run_dir, config, r = run_with_earlier("append_killed", {"TLCL_TEST_KILL_AT_PUBLISH": str(at)})
        killed = r.returncode == -signal.SIGKILL
        r = s.train(config)
        with open(os.path.join(run_dir, "training_log.csv"), "rb") as f:
            got = f.read()
        s.expect(killed and r.returncode == 0 and got == ref,
                 "append: killed at publish %d, the rerun's log equals the uninterrupted one%s" %
                 (at, "" if got == ref else ": %r" % got[:400]))


def kills(s, data, seed, count):
    ref_dir, ref_cfg = fresh_run(s.work, "reference", data)
    t0 = time.time()
    r = s.train(ref_cfg)
    duration = time.time() - t0
    s.expect(r.returncode == 0, "the uninterrupted run exits 0 (%.1f s)%s" % (duration, "" if r.returncode == 0
                                                                              else ": " + r.stderr[-2000:]))
    ref = tensor_data(os.path.join(ref_dir, "best_model.safetensors"))
    ref_files = file_set(ref_dir)
    run_dir, config = fresh_run(s.work, "killed", data)
    publishes = count_publishes(s, data)
    s.expect(publishes >= 10, "a run publishes %d files" % publishes)
    rnd = random.Random(seed)
    # every publish point in turn, before and after its rename (hook), then random moments
    points = [("hook", n) for n in range(1, publishes + 1)] + [("hook", -n) for n in range(1, publishes + 1, 4)]
    points = points[:max(count - count // 3, 1)] if len(points) > count else points
    points += [("time", rnd.uniform(0.05, 0.9) * duration) for _ in range(count - len(points))]
    for kind, at in points:
        shutil.rmtree(run_dir)
        os.makedirs(run_dir)
        what = "kill at publish %d%s" % (abs(at), " (after the rename)" if kind == "hook" and at < 0 else "") \
            if kind == "hook" else "kill after %.2f s" % at
        if kind == "hook":
            r = s.train(config, {"TLCL_TEST_KILL_AT_PUBLISH": str(at)})
            killed = r.returncode == -signal.SIGKILL
        else:
            p = subprocess.Popen([s.tlcl, "train", config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(at)
            p.send_signal(signal.SIGKILL)
            killed = p.wait() == -signal.SIGKILL
        bad = check_tree(run_dir)
        s.expect(not bad, "%s: every file in the run folder is whole%s" % (what, "" if not bad else ": " + "; ".join(bad)))
        r = s.train(config)
        s.expect(r.returncode == 0, "%s: the rerun exits 0%s" % (what, "" if r.returncode == 0 else
                                                                 ": " + r.stdout[-800:] + r.stderr[-1500:]))
        best = os.path.join(run_dir, "best_model.safetensors")
        same = os.path.exists(best) and tensor_data(best) == ref
        s.expect(same, "%s%s: the rerun ends with the uninterrupted run's weights" %
                 (what, "" if killed else " (it finished first)"))
        left = temporaries(run_dir)
        s.expect(not left, "%s: no temporary is left after the rerun%s" % (what, "" if not left else ": " + str(left)))
        for name in ("training_log.csv", "callbacks.csv", "fit_history.pkl", "labels.json"):
            with open(os.path.join(ref_dir, name), "rb") as f:
                want = f.read()
            have = open(os.path.join(run_dir, name), "rb").read() if os.path.exists(os.path.join(run_dir, name)) \
                else None
            s.expect(have == want, "%s: the rerun's %s is the uninterrupted run's" % (what, name))
        files = file_set(run_dir)
        s.expect(files == ref_files, "%s: the rerun leaves the files of an uninterrupted run%s" %
                 (what, "" if files == ref_files else ": missing %s, extra %s" % (
                     sorted(set(ref_files) - set(files)), sorted(set(files) - set(ref_files)))))
        kept = [n for n in os.listdir(os.path.join(run_dir, "backup"))] if os.path.isdir(
            os.path.join(run_dir, "backup")) else []
        s.expect(not kept, "%s: no backup file is left after the rerun%s" % (what, "" if not kept else ": " + str(kept)))
    damaged_backup(s, data, ref)
    # a rerun of a finished run changes nothing
    models = {n: (os.stat(os.path.join(run_dir, n)).st_mtime_ns, tensor_data(os.path.join(run_dir, n)))
              for n in os.listdir(run_dir) if n.endswith(".safetensors")}
    before = file_set(run_dir)
    r = s.train(config)
    after = file_set(run_dir)
    s.expect(r.returncode == 0 and "already finished" in r.stdout, "a rerun of the finished run trains nothing")
    s.expect(before == after, "a rerun of the finished run leaves the same files")
    s.expect(all(os.stat(os.path.join(run_dir, n)).st_mtime_ns == m and tensor_data(os.path.join(run_dir, n)) == b
                 for n, (m, b) in models.items()), "a rerun of the finished run leaves the models untouched")


# ---- full disk ----------------------------------------------------------------

def namespace_prefix():
    """The command prefix that gives a private mount namespace where tmpfs
    can be mounted, or None."""
    tries = ([["unshare", "-m"]] if os.geteuid() == 0 else []) + [["unshare", "-rm"]]
    probe = tempfile.mkdtemp(dir=os.environ.get("TMPDIR", "/tmp"))
    try:
        for pre in tries:
            r = subprocess.run(pre + ["sh", "-c", 'mount -t tmpfs -o size=1m tmpfs "$0"', probe],
                               capture_output=True)
            if r.returncode == 0:
                return pre
        return None
    finally:
        os.rmdir(probe)


def full_run(s, pre, data, option):
    """One run on a tmpfs mounted with option; (exit status, stderr, the
    copy of the run folder)."""
    mnt = os.path.join(s.work, "disk")
    out = os.path.join(s.work, "disk-copy")
    for d in (mnt, out):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    run_dir = os.path.join(mnt, "run")
    config = os.path.join(s.work, "disk.yaml")
    write_config(config, data, run_dir)
    # inside the namespace: mount, train, copy what is there out (the tmpfs ends with the namespace)
    script = ('mount -t tmpfs -o "$6" tmpfs "$1" || exit 90; "$3" train "$4" >"$5/stdout" 2>"$5/stderr"; '
              'echo $? >"$5/rc"; cp -a "$2" "$5/run" 2>/dev/null; exit 0')
    subprocess.run(pre + ["sh", "-c", script, "sh", mnt, run_dir, s.tlcl, config, out, option], timeout=300)
    with open(os.path.join(out, "rc")) as f:
        rc = int(f.read())
    with open(os.path.join(out, "stderr")) as f:
        return rc, f.read(), os.path.join(out, "run"), run_dir


def fulldisk(s, data, sizes_kib, max_inodes):
    pre = namespace_prefix()
    if pre is None:
        print("SKIPPED: cannot mount a tmpfs (neither as root nor with unshare -rm): the full-disk test needs one")
        sys.exit(SKIP)
    # bytes run out at the image cache, the first checkpoint, the backup...; inodes run out at each
    # file the run creates in turn, up to one more than a whole run needs (which then finishes)
    options = [("a %d KiB file system" % k, "size=%dk" % k) for k in sizes_kib]
    options += [("a file system of %d inodes" % n, "size=200m,nr_inodes=%d" % n) for n in range(2, max_inodes + 1)]
    finished = False
    for what, option in options:
        rc, err, copy, run_dir = full_run(s, pre, data, option)
        if rc == 0 and "inodes" in what:
            finished = True
            print("ok: %s: the run fits and finishes" % what)
            break
        s.expect(rc < 128, "%s: no signal (status %d)" % (what, rc))
        s.expect(rc == 1, "%s: exit status 1 (got %d)" % (what, rc))
        last = err.strip().split("\n")[-1]
        s.expect("No space left on device" in last and run_dir in last,
                 "%s: the closing message names the file and 'No space left on device': %s" % (what, last))
        bad = check_tree(copy)
        s.expect(not bad, "%s: every published file is whole%s" % (what, "" if not bad else ": " + "; ".join(bad)))
        left = temporaries(copy)
        s.expect(not left, "%s: no temporary is left%s" % (what, "" if not left else ": " + str(left)))
    s.expect(finished, "a file system with enough inodes lets the run finish")


# ---- a second process -----------------------------------------------------------

def concurrent(s, data):
    run_dir, config = fresh_run(s.work, "shared", data, epochs=3)
    first = subprocess.Popen([s.tlcl, "train", config], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = os.path.join(run_dir, ".tlcl.lock")
    for _ in range(500):  # the first run holds the folder once its lock names it
        if os.path.exists(lock) and ("pid %d " % first.pid) in open(lock).read():
            break
        time.sleep(0.01)
    t0 = time.time()
    second = s.train(config)
    took = time.time() - t0
    s.expect(second.returncode == 1, "the second run exits 1 (got %d)" % second.returncode)
    s.expect("pid %d" % first.pid in second.stderr and "in use" in second.stderr,
             "the second run names the holder: %s" % second.stderr.strip())
    s.expect(took < 5, "the second run stops at once (%.2f s)" % took)
    s.expect(first.poll() is None, "the first run was still running when the second stopped")
    out, err = first.communicate(timeout=300)
    s.expect(first.returncode == 0, "the first run finishes (exit %d)%s" % (first.returncode, "" if not
                                                                           first.returncode else ": " + err[-1500:]))
    bad = check_tree(run_dir)
    s.expect(not bad, "the first run's files are whole%s" % ("" if not bad else ": " + "; ".join(bad)))
    with open(os.path.join(run_dir, "callbacks.csv")) as f:
        rows = [r for r in f.read().split("\n") if r]
    s.expect(len(rows) == 1 + 3, "the CSV log has a header and one row per epoch (%d rows)" % len(rows))
    with open(os.path.join(run_dir, "train.log")) as f:
        log = f.read()
    s.expect("in use by another" not in log,
             "the first run's log holds nothing of the second")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("kills", "fulldisk", "concurrent"))
    ap.add_argument("--tlcl", required=True)
    ap.add_argument("--kills", type=int, default=30)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--sizes", default="64,1024,8192,24576,40960,90000", help="tmpfs sizes in KiB")
    ap.add_argument("--max-inodes", type=int, default=60, help="tmpfs inode limits tried: 2 up to this")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="tlcl-faults-")
    s = Suite(os.path.abspath(a.tlcl), work)

    def body():
        data = os.path.join(work, "data")
        make_data(data, 8)
        if a.what == "kills":
            kills(s, data, a.seed, a.kills)
            csv_append(s, data)
        elif a.what == "fulldisk":
            fulldisk(s, data, [int(x) for x in a.sizes.split(",")], a.max_inodes)
        else:
            concurrent(s, data)
    return run_suite(s, a.keep, body)


def run_suite(s, keep, body):
    """Runs body(), then removes (or keeps) s.work and reports: the exit status."""
    try:
        body()
    finally:
        if keep:
            print("work folder kept:", s.work)
        else:
            shutil.rmtree(s.work, ignore_errors=True)
    if s.failures:
        print("%d check(s) failed" % len(s.failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
