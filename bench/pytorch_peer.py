#!/usr/bin/python3
"""The PyTorch peer of `tlcl bench`: EfficientNet-B0 (torchvision),
EfficientNetV2-B0 (the independent PyTorch model of
tools/torch_efficientnet_v2.py; torchvision 0.14 has none) or
EfficientNet-Lite0 (the independent PyTorch model of
tools/make_lite0_fixture.py), 10 classes as `tlcl bench` builds them, on the
CPU with a fixed number of threads, inference or one training step (forward,
cross-entropy, backward, Adam), random weights, random input. Prints one
line `pytorch <mode> <arch> batch B size S: X ms/step, Y img/s`.
Runs with Debian's python3 (python3-torch 1.13, python3-torchvision) and with
a current PyTorch from PyPI (bench/compare_peers.sh installs one into
build/venv-peers).

VARIANT (the ways PyTorch's performance tuning guide documents for a CPU):
  plain          NCHW (contiguous) model and input, eager (the default)
  channels_last  model and input in torch.channels_last memory format, eager
  compile        channels_last and torch.compile (inductor, default mode); the
                 first step, which compiles, is timed apart and printed as
                 "compile X s"; the img/s counts only warm steps. A model that
                 fails to compile prints "compile FAILED: reason" and exits 4.

usage: pytorch_peer.py MODE(train|infer) BATCH SIZE STEPS [THREADS] [ARCH] [VARIANT]
       pytorch_peer.py check [ARCH|all] [TLCL]
check prints the model's parameter count and, given the tlcl binary, compares
it with `tlcl summary ARCH --classes 10` (trainable parameters, and the total
Keras counts, which adds the BN moving statistics)."""
import os
import re
import subprocess
import sys
import time

import torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_timing import ms_per_step  # noqa: E402

ARCHS = ("efficientnet-b0", "efficientnetv2-b0", "efficientnet-lite0")
VARIANTS = ("plain", "channels_last", "compile")
COMPILE_FAILED = 4
TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools")


def build(arch, classes=10):
    """(model, NCHW?) with random weights; every model takes raw 0..255 pixels."""
    if arch == "efficientnet-lite0":
        sys.path.insert(0, TOOLS)
        from make_lite0_fixture import Lite0
        model = Lite0()
        model._fc = torch.nn.Linear(1280, classes)
        return model, False  # it takes raw NHWC pixels
    if arch == "efficientnetv2-b0":
        sys.path.insert(0, TOOLS)
        from torch_efficientnet_v2 import EfficientNetV2B0
        return EfficientNetV2B0(classes=classes), True
    if arch == "efficientnet-b0":
        import torchvision
        return torchvision.models.efficientnet_b0(num_classes=classes), True
    sys.exit("pytorch_peer.py: unknown arch %s (one of %s)" % (arch, ", ".join(ARCHS)))


def counts(model):
    trainable = sum(p.numel() for p in model.parameters())
    stats = sum(m.running_mean.numel() + m.running_var.numel()
                for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    return trainable, trainable + stats


def check(arch, tlcl):
    ok = True
    for a in ARCHS if arch == "all" else (arch,):
        trainable, total = counts(build(a)[0])
        line = "pytorch check %-18s classes 10: %9s trainable, %9s with BN statistics" % (
            a, format(trainable, ","), format(total, ","))
        if tlcl:
            out = subprocess.run([tlcl, "summary", a, "--classes", "10"], capture_output=True, text=True,
                                 check=True).stdout
            tt = int(re.search(r"Trainable params: ([0-9,]+)", out).group(1).replace(",", ""))
            tn = int(re.search(r"Total params: ([0-9,]+)", out).group(1).replace(",", ""))
            line += "; tlcl %s trainable (%s), %s total" % (
                format(tt, ","), "equal" if tt == trainable else "DIFFERENT", format(tn, ","))
            ok &= tt == trainable
            if a == "efficientnetv2-b0":
                ok &= tn == total
                line += " (%s)" % ("equal" if tn == total else "DIFFERENT")
        print(line)
    return 0 if ok else 1


def make_step(mode, model, x, y):
    """One inference or training step (forward, cross-entropy, backward, Adam)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        if mode == "infer":
            with torch.no_grad():
                model(x)
            return
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
    return step


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "check":
        return check(sys.argv[2] if len(sys.argv) > 2 else "all", sys.argv[3] if len(sys.argv) > 3 else None)
    if len(sys.argv) < 5 or sys.argv[1] not in ("train", "infer"):
        sys.exit(__doc__)
    mode, batch, size, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    threads = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    arch = sys.argv[6] if len(sys.argv) > 6 else "efficientnet-b0"
    variant = sys.argv[7] if len(sys.argv) > 7 else "plain"
    if variant not in VARIANTS:
        sys.exit("pytorch_peer.py: unknown variant %s (one of %s)" % (variant, ", ".join(VARIANTS)))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model, nchw = build(arch)
    x = torch.rand(batch, 3, size, size) * 255 if nchw else torch.rand(batch, size, size, 3) * 255
    y = torch.zeros(batch, dtype=torch.long)
    model.train(mode == "train")
    if variant != "plain":
        # Lite0 takes NHWC pixels and permutes them: its NCHW view is then
        # already channels_last, so only the model needs converting
        model = model.to(memory_format=torch.channels_last)
        if nchw:
            x = x.contiguous(memory_format=torch.channels_last)
    note = ""
    if variant == "compile":
        model = torch.compile(model)
    step = make_step(mode, model, x, y)
    if variant == "compile":
        t0 = time.perf_counter()
        try:
            step()
        except Exception as e:  # inductor raises many kinds; report, never crash
            print("pytorch %s %s: compile FAILED: %s" % (mode, arch, str(e).splitlines()[0][:300]), file=sys.stderr)
            return COMPILE_FAILED
        note = ", compile %.1f s" % (time.perf_counter() - t0)
    ms = ms_per_step(step, steps)
    print("pytorch %s %s batch %d size %d: %.1f ms/step, %.2f img/s (torch %s, %s, %d threads%s)"
          % (mode, arch, batch, size, ms, batch * 1000 / ms, torch.__version__, variant, threads, note))
    return 0


if __name__ == "__main__":
    sys.exit(main())
