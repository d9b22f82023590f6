#!/usr/bin/python3
"""The PyTorch peer of `tlcl bench`: EfficientNet-B0 (torchvision) or
EfficientNet-Lite0 (the independent PyTorch model of
tools/make_lite0_fixture.py) on the CPU
with a fixed number of threads, inference or one training step (forward,
cross-entropy, backward, Adam), random weights, random input. Prints one
line `pytorch <mode> <arch> batch B size S: X ms/step, Y img/s`.
Run with Debian's python3 (python3-torch, python3-torchvision).

usage: pytorch_peer.py MODE(train|infer) BATCH SIZE STEPS [THREADS] [ARCH]"""
import os
import sys
import time

import torch
import torchvision


def main():
    mode, batch, size, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    threads = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    arch = sys.argv[6] if len(sys.argv) > 6 else "efficientnet-b0"
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if arch == "efficientnet-lite0":
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
        from make_lite0_fixture import Lite0
        model = Lite0()
        x = torch.rand(batch, size, size, 3) * 255  # it takes raw NHWC pixels
    else:
        model = torchvision.models.efficientnet_b0(num_classes=10)
        x = torch.rand(batch, 3, size, size) * 255
    y = torch.zeros(batch, dtype=torch.long)
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

    model.train(mode == "train")
    for _ in range(2):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    ms = (time.perf_counter() - t0) * 1000 / steps
    print("pytorch %s %s batch %d size %d: %.1f ms/step, %.2f img/s (torch %s, %d threads)"
          % (mode, arch, batch, size, ms, batch * 1000 / ms, torch.__version__, threads))


if __name__ == "__main__":
    main()
