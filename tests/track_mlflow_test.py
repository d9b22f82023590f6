#!/usr/bin/env python3
"""track_mlflow_test.py — `tlcl train` with MLflow tracking against a real
MLflow server (from PyPI, in build/venv-mlflow: tools/mlflow_venv.sh), read
back through MLflow's own client (mlflow.tracking.MlflowClient).

The test starts `mlflow server` on 127.0.0.1 on a free port with a SQLite
backend store in a temporary folder and stops it at the end. Then:
  1. a live run (two phases of one epoch: steps 0 and 1) is read back:
     status, parameters (the effective configuration flattened), the
     per-epoch metric history with steps and timestamps, the tags, the
     artefacts;
  2. a run pointed at a closed port completes, prints the offline warning
     once and keeps every record in its journal; `tlcl track sync` uploads
     it to the live server, and a second sync sends nothing (one run, each
     metric step once);
  3. a run whose server drops mid-run (a proxy in front of it that stops
     answering after the first epoch's metrics) goes on, warns once, and
     `tlcl track sync` sends only the rest: one run, each step once.
  4. `tlcl grid` of two runs (two learning rates, one epoch): one parent
     run named after the grid folder, FINISHED, with the varied key as a
     parameter, and two FINISHED children whose mlflow.parentRunId tag is
     the parent's run id; then the same grid against a closed port, synced
     afterwards child first (the child's sync sends the parent before it):
     the same nesting.
It never installs anything: a missing venv FAILS, naming the script.

usage: track_mlflow_test.py --tlcl BIN --venv DIR
"""
import argparse
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def parse():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tlcl", required=True)
    ap.add_argument("--venv", required=True)
    return ap.parse_args()


args = parse()
args.venv = os.path.abspath(args.venv)
venv_python = os.path.join(args.venv, "bin", "python")
venv_mlflow = os.path.join(args.venv, "bin", "mlflow")
if not (os.access(venv_python, os.X_OK) and os.access(venv_mlflow, os.X_OK)):
    fail(f"the MLflow virtual environment {args.venv} is missing: create it with tools/mlflow_venv.sh "
         f"(tools/run_tests.sh does before ctest); this test never downloads anything")
if os.path.realpath(sys.prefix) != os.path.realpath(args.venv):
    # rerun under the venv's python, where mlflow imports
    os.execv(venv_python, [venv_python] + sys.argv)

try:
    from mlflow.tracking import MlflowClient
except ImportError as e:
    fail(f"mlflow does not import in {args.venv} ({e}): rerun tools/mlflow_venv.sh")

CLASSES = ["circles", "stripes", "squares"]
SIDE = 24


def write_png(path, w, h, rgb):
    raw = b"".join(b"\x00" + bytes(rgb[y * w * 3:(y + 1) * w * 3]) for y in range(h))

    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def write_dataset(root, split, count, salt):
    for k, name in enumerate(CLASSES):
        d = os.path.join(root, split, name)
        os.makedirs(d, exist_ok=True)
        for i in range(count):
            px = []
            for y in range(SIDE):
                for x in range(SIDE):
                    dx, dy = x - SIDE // 2, y - SIDE // 2
                    if k == 0:
                        v = 230 if (dx * dx + dy * dy) % (40 + i + salt) < 20 else 30
                    elif k == 1:
                        v = 220 if ((x + i + salt) // 3) % 2 else 40
                    else:
                        v = 200 if abs(dx) < 6 + i % 4 and abs(dy) < 6 + salt % 3 else 50
                    px += [min(255, v + 7 * c + i) for c in range(3)]
            write_png(os.path.join(d, f"img{i:02d}.png"), SIDE, SIDE, px)


def write_config(path, data, uri, experiment, run_name):
    with open(path, "w") as f:
        f.write(f"""train:
  config: {{seed: 7, epochs: 1, batch_size: 4}}
  data_dir: {{train: {data}/train, test: {data}/test, validation_split: 0.25, image_size: [32, 32],
             cache_dir: {data}/cache}}
  artefacts: {{base_dir: run}}
  metrics: {{base_dir: run/metrics}}
  records: {{base_dir: run/records}}
model: {{architecture: efficientnet-b0, weights: none}}
optimizer: {{name: adam, learning_rate: 0.002}}
phases:
  - {{name: head, epochs: 1, trainable: none}}
  - {{name: all, epochs: 1, trainable: all}}
callbacks:
  model_checkpoint: {{monitor: val_loss}}
metrics: [accuracy, f1]
metric_groups: {{round: [circles], edgy: [stripes, squares]}}
class_weight: {{circles: 1.0, stripes: 2.0}}
tracking:
  enabled: true
  uri: {uri}
  experiment: {experiment}
  run_name: "{run_name}"
  tags: "team=plankton,purpose=test"
  timeout: 5
""")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pocl_device(tlcl):
    out = subprocess.run([tlcl, "devices"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "Portable Computing Language" in line:
            return line.split()[0]
    fail(f"no PoCL device in `tlcl devices`:\n{out}")


def train(tlcl, device, workdir, tag):
    t0 = time.time()
    p = subprocess.run([tlcl, "train", f"--device={device}", "run.yaml"], cwd=workdir, capture_output=True,
                       text=True, timeout=600)
    print(f"{tag}: tlcl train exit {p.returncode} in {time.time() - t0:.1f} s", flush=True)
    if p.returncode != 0:
        fail(f"{tag}: tlcl train failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


checks = 0


def expect(cond, msg):
    global checks
    checks += 1
    if not cond:
        fail(msg)


def check_run(client, run, params_expected, label):
    expect(run.info.status == "FINISHED", f"{label}: status {run.info.status}, expected FINISHED")
    p = run.data.params
    for k, v in params_expected.items():
        expect(p.get(k) == v, f"{label}: param {k} = {p.get(k)!r}, expected {v!r}")
    expect(len(p) > 100, f"{label}: only {len(p)} params: the effective configuration should be all there")
    t = run.data.tags
    expect(t.get("tlcl.version") == "0.1.0", f"{label}: tag tlcl.version {t.get('tlcl.version')!r}")
    expect("Portable Computing Language" in t.get("tlcl.device", ""), f"{label}: tag tlcl.device {t.get('tlcl.device')!r}")
    expect(t.get("tlcl.architecture") == "efficientnet-b0", f"{label}: tag tlcl.architecture {t.get('tlcl.architecture')!r}")
    expect(t.get("team") == "plankton" and t.get("purpose") == "test", f"{label}: tracking.tags missing: {t}")
    expect(p.get("class_weight.stripes", "").startswith("2"), f"{label}: param class_weight.stripes {p.get('class_weight.stripes')!r}")
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "val_f1", "learning_rate", "val_group_round_f1"):
        h = client.get_metric_history(run.info.run_id, key)
        steps = sorted(m.step for m in h)
        expect(steps == [0, 1], f"{label}: metric {key} steps {steps}, expected [0, 1] (one per epoch, over phases)")
        expect(all(m.timestamp > 1.6e12 for m in h), f"{label}: metric {key} timestamps {[m.timestamp for m in h]}")
    arts = sorted(a.path for a in client.list_artifacts(run.info.run_id))
    expect("best_model.safetensors" in arts and "test_report.json" in arts,
           f"{label}: artefacts {arts}, expected best_model.safetensors and test_report.json")


class DroppingProxy:
    """Forwards requests to the MLflow server up to and including the first
    one that logs metrics (the first epoch's), then closes every connection
    without an answer (a server gone mid-run)."""

    def __init__(self, target):
        import http.server
        import threading
        proxy = self
        self.dropping = False

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def forward(self):
                if proxy.dropping:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                if body and b'"step"' in body:
                    proxy.dropping = True
                req = urllib.request.Request(target + self.path, data=body, method=self.command)
                for k in ("Content-Type",):
                    if self.headers.get(k):
                        req.add_header(k, self.headers[k])
                try:
                    with urllib.request.urlopen(req, timeout=30) as r:
                        code, data = r.status, r.read()
                except urllib.error.HTTPError as e:
                    code, data = e.code, e.read()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def check_grid(tlcl, device, tmp, data, live_uri, client, mode):
    """A grid of two runs nests under one parent run (mode live: the server
    is up; offline: it is not until `tlcl track sync`, child first)."""
    label, experiment = f"grid {mode}", f"tlcl-grid-{mode}"
    uri = live_uri if mode == "live" else f"http://127.0.0.1:{free_port()}"
    work = os.path.join(tmp, f"grid-{mode}")
    os.makedirs(work)
    write_config(os.path.join(work, "run.yaml"), data, uri, experiment, "grid_{ARCH}")
    with open(os.path.join(work, "run.yaml"), "a") as f:
        f.write("grid:\n  dir: grid\n  metric: val_loss\n  params:\n    optimizer.learning_rate: [0.002, 0.001]\n")
    t0 = time.time()
    p = subprocess.run([tlcl, "grid", f"--device={device}", "--set", "phases=[{name: head, epochs: 1, trainable: none}]",
                        "run.yaml"], cwd=work, capture_output=True, text=True, timeout=600)
    print(f"{label}: tlcl grid exit {p.returncode} in {time.time() - t0:.1f} s", flush=True)
    expect(p.returncode == 0, f"{label}: tlcl grid failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    grid = os.path.join(work, "grid")
    children = sorted(os.path.join(grid, d) for d in os.listdir(grid) if d.startswith("run-"))
    expect(len(children) == 2, f"{label}: run folders {children}, expected 2")
    if mode == "offline":
        expect(client.get_experiment_by_name(experiment) is None, f"{label}: experiment exists before the sync")
        for d in children + [grid]:  # a child first: its sync sends the parent's records before its own
            s = subprocess.run([tlcl, "track", "sync", f"--uri={live_uri}", d], capture_output=True, text=True,
                               timeout=300)
            print(f"{label}: sync {os.path.basename(d)}: exit {s.returncode}: {s.stdout.strip()}", flush=True)
            expect(s.returncode == 0 and "0 rejected" in s.stdout, f"{label}: sync {d} failed:\n{s.stdout}\n{s.stderr}")
            if d == grid:
                expect("0 records sent" in s.stdout, f"{label}: the children's syncs left the parent's records:\n{s.stdout}")
    exp = client.get_experiment_by_name(experiment)
    expect(exp is not None, f"{label}: experiment {experiment} was not created")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    kids = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    expect(len(parents) == 1 and len(kids) == 2,
           f"{label}: {len(parents)} runs without a parent and {len(kids)} with one, expected 1 and 2")
    parent = parents[0]
    expect(parent.info.run_name == "grid", f"{label}: parent run name {parent.info.run_name!r}, expected 'grid'")
    expect(parent.info.status == "FINISHED", f"{label}: parent status {parent.info.status}")
    lr = parent.data.params.get("grid.params.optimizer.learning_rate")
    expect(lr == "[0.002, 0.001]", f"{label}: parent param grid.params.optimizer.learning_rate {lr!r}")
    expect(parent.data.tags.get("tlcl.grid.keys") == "optimizer.learning_rate",
           f"{label}: parent tag tlcl.grid.keys {parent.data.tags.get('tlcl.grid.keys')!r}")
    for k in kids:
        expect(k.data.tags["mlflow.parentRunId"] == parent.info.run_id,
               f"{label}: child {k.info.run_name} has mlflow.parentRunId {k.data.tags['mlflow.parentRunId']}, "
               f"the parent is {parent.info.run_id}")
        expect(k.info.status == "FINISHED", f"{label}: child {k.info.run_name} status {k.info.status}")
    rates = sorted(k.data.params.get("optimizer.learning_rate") for k in kids)
    expect(rates == ["0.001", "0.002"], f"{label}: children's learning rates {rates}")


def main():
    tlcl = os.path.abspath(args.tlcl)
    tmp = tempfile.mkdtemp(prefix="tlcl_track_")
    os.chdir(tmp)
    server = None
    try:
        data = os.path.join(tmp, "data")
        write_dataset(data, "train", 8, 0)
        write_dataset(data, "test", 3, 5)
        port = free_port()
        uri = f"http://127.0.0.1:{port}"
        log = open(os.path.join(tmp, "server.log"), "w")
        t0 = time.time()
        server = subprocess.Popen(
            [venv_mlflow, "server", "--backend-store-uri", f"sqlite:///{tmp}/mlflow.db",
             "--artifacts-destination", f"{tmp}/artifacts", "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1"], cwd=tmp, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        while True:
            try:
                if urllib.request.urlopen(uri + "/health", timeout=2).read().strip() == b"OK":
                    break
            except OSError:
                pass
            if server.poll() is not None or time.time() - t0 > 120:
                log.close()
                fail(f"mlflow server did not start on {uri}:\n" + open(os.path.join(tmp, "server.log")).read())
            time.sleep(0.5)
        print(f"mlflow server up on {uri} in {time.time() - t0:.1f} s", flush=True)
        device = pocl_device(tlcl)
        import mlflow
        mlflow.set_tracking_uri(uri)  # the artefact repository resolves mlflow-artifacts: against it
        client = MlflowClient(tracking_uri=uri)
        expected = {"train.config.seed": "7", "model.architecture": "efficientnet-b0", "optimizer.learning_rate": "0.002",
                    "phases.0.name": "head", "phases.1.trainable": "all", "tracking.enabled": "true",
                    "metrics": "[accuracy, f1]"}

        # 1. live
        live = os.path.join(tmp, "live")
        os.makedirs(live)
        write_config(os.path.join(live, "run.yaml"), data, uri, "tlcl-live", "live_{ARCH}")
        p = train(tlcl, device, live, "live")
        expect("offline" not in p.stderr, f"live: an offline warning with the server up:\n{p.stderr}")
        exp = client.get_experiment_by_name("tlcl-live")
        expect(exp is not None, "live: experiment tlcl-live was not created")
        runs = client.search_runs([exp.experiment_id])
        expect(len(runs) == 1, f"live: {len(runs)} runs, expected 1")
        expect(runs[0].info.run_name == "live_efficientnet-b0", f"live: run name {runs[0].info.run_name!r}")
        check_run(client, runs[0], expected, "live")
        live_params = len(runs[0].data.params)

        # 2. offline, then tlcl track sync (twice)
        off = os.path.join(tmp, "offline")
        os.makedirs(off)
        write_config(os.path.join(off, "run.yaml"), data, f"http://127.0.0.1:{free_port()}", "tlcl-offline",
                     "offline_{ARCH}")
        p = train(tlcl, device, off, "offline")
        n_warn = p.stderr.count("warning: MLflow tracking is offline")
        expect(n_warn == 1, f"offline: the offline warning printed {n_warn} times, expected once:\n{p.stderr}")
        expect("tlcl track sync" in p.stderr, f"offline: the warning does not say how to upload:\n{p.stderr}")
        journal = os.path.join(off, "run", "tracking", "journal.jsonl")
        expect(os.path.exists(journal), f"offline: no journal {journal}")
        import json
        recs = [json.loads(line) for line in open(journal)]
        types = [r["type"] for r in recs]
        expect(types[0] == "start" and types[-1] == "end" and types.count("metrics") == 2,
               f"offline: journal record types {types}")
        expect([r["seq"] for r in recs] == list(range(1, len(recs) + 1)), "offline: journal seq not 1..n")
        expect(len({r["run"] for r in recs}) == 1, "offline: journal records of more than one run")
        expect(client.get_experiment_by_name("tlcl-offline") is None, "offline: experiment exists before the sync")
        run_dir = os.path.join(off, "run")
        for i in range(2):
            t0 = time.time()
            s = subprocess.run([tlcl, "track", "sync", f"--uri={uri}", run_dir], capture_output=True, text=True,
                               timeout=300)
            print(f"sync {i + 1}: exit {s.returncode} in {time.time() - t0:.1f} s: {s.stdout.strip()}", flush=True)
            expect(s.returncode == 0, f"sync {i + 1} failed:\n{s.stdout}\n{s.stderr}")
            want = f"{len(recs)} records sent" if i == 0 else "0 records sent"
            expect(want in s.stdout and "0 rejected" in s.stdout, f"sync {i + 1}: expected '{want}':\n{s.stdout}")
        exp = client.get_experiment_by_name("tlcl-offline")
        expect(exp is not None, "offline: experiment tlcl-offline missing after the sync")
        runs = client.search_runs([exp.experiment_id])
        expect(len(runs) == 1, f"offline: {len(runs)} runs after two syncs, expected 1")
        check_run(client, runs[0], expected, "offline+sync")
        expect(len(runs[0].data.params) == live_params,
               f"offline+sync: {len(runs[0].data.params)} params, the live run has {live_params}")

        # 3. the server drops mid-run: the start, parameters, tags and the first epoch's metrics go through,
        # the second epoch's metrics and the rest do not
        proxy = DroppingProxy(uri)
        mid = os.path.join(tmp, "midrun")
        os.makedirs(mid)
        write_config(os.path.join(mid, "run.yaml"), data, proxy.uri, "tlcl-midrun", "midrun_{ARCH}")
        p = train(tlcl, device, mid, "mid-run drop")
        proxy.close()
        n_warn = p.stderr.count("warning: MLflow tracking is offline")
        expect(n_warn == 1, f"mid-run drop: the offline warning printed {n_warn} times, expected once:\n{p.stderr}")
        exp = client.get_experiment_by_name("tlcl-midrun")
        expect(exp is not None, "mid-run drop: the experiment was not created before the drop")
        runs = client.search_runs([exp.experiment_id])
        expect(len(runs) == 1 and runs[0].info.status == "RUNNING",
               f"mid-run drop: expected one RUNNING run before the sync, got {[r.info.status for r in runs]}")
        before = sorted(m.step for m in client.get_metric_history(runs[0].info.run_id, "loss"))
        expect(before == [0], f"mid-run drop: loss steps {before} before the sync, expected [0]")
        s = subprocess.run([tlcl, "track", "sync", f"--uri={uri}", os.path.join(mid, "run")], capture_output=True,
                           text=True, timeout=300)
        print(f"mid-run sync: exit {s.returncode}: {s.stdout.strip()}", flush=True)
        expect(s.returncode == 0, f"mid-run sync failed:\n{s.stdout}\n{s.stderr}")
        runs = client.search_runs([exp.experiment_id])
        expect(len(runs) == 1, f"mid-run drop: {len(runs)} runs after the sync, expected 1")
        check_run(client, runs[0], expected, "mid-run drop+sync")
        check_grid(tlcl, device, tmp, data, uri, client, "live")
        check_grid(tlcl, device, tmp, data, uri, client, "offline")
        print(f"PASS: {checks} checks", flush=True)
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, 15)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, 9)
                server.wait()
        if os.environ.get("TLCL_KEEP_TMP"):
            print("kept " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


main()
