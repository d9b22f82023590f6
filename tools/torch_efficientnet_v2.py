#!/usr/bin/python3
"""torch_efficientnet_v2.py — an independent PyTorch EfficientNetV2-B0.

Debian's torchvision 0.14 has no EfficientNetV2, so this is written from the
Keras architecture (keras/src/applications/efficientnet_v2.py, as described
in shared/reference/keras_reference.md §1), not from tlcl's code:

  preprocessing  x/255, then (x - ImageNet mean) / ImageNet std (no variables)
  stem           3x3/2 conv to 32, BN, swish
  stages         fused-MBConv and MBConv per the Keras B0 block table below;
                 SE (MBConv only) squeezes to max(1, int(block input filters
                 * 0.25)) channels (reduce with bias + swish, expand with bias
                 + sigmoid); residual when stride 1 and in == out, with
                 stochastic depth (whole samples) at 0.2 * b / 21 in training
  top            1x1 conv to 1280, BN, swish, global average pool,
                 dropout 0.2, dense
  BN             eps 1e-3, Keras momentum 0.9 (PyTorch momentum 0.1)
  padding        TensorFlow "same": stride 1 pads k//2 on each side, stride 2
                 pads the smaller half before (top/left), as Keras does

Parameter count as Keras counts it (weights + BN moving mean and variance):
7,200,312 with the 1000-class top, 5,919,312 without it.

Run directly to print the counts (and, given tlcl's, compare them):
  /usr/bin/python3 tools/torch_efficientnet_v2.py [--classes N] [--tlcl build/tlcl]
"""
import argparse
import math
import re
import subprocess
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

# conv_type (1 fused, 0 MBConv), kernel, stride, expand, in, out, repeats, se ratio
V2_B0_BLOCKS = [
    (1, 3, 1, 1, 32, 16, 1, 0.0),
    (1, 3, 2, 4, 16, 32, 2, 0.0),
    (1, 3, 2, 4, 32, 48, 2, 0.0),
    (0, 3, 2, 4, 48, 96, 3, 0.25),
    (0, 3, 1, 6, 96, 112, 5, 0.25),
    (0, 3, 2, 6, 112, 192, 8, 0.25),
]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def bn(c):
    # Keras BatchNormalization(momentum=0.9, epsilon=1e-3)
    return nn.BatchNorm2d(c, eps=1e-3, momentum=0.1)


class SameConv(nn.Conv2d):
    """Conv2d with TensorFlow 'same' padding, no bias unless asked."""

    def __init__(self, cin, cout, k, stride=1, groups=1, bias=False):
        super().__init__(cin, cout, k, stride=stride, padding=k // 2 if stride == 1 else 0,
                         groups=groups, bias=bias)
        self.k, self.s = k, stride

    def forward(self, x):
        if self.s != 1:
            def split(n):
                total = max((-(-n // self.s) - 1) * self.s + self.k - n, 0)
                return total // 2, total - total // 2
            top, bottom = split(x.shape[2])
            left, right = split(x.shape[3])
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


def drop_path(x, rate, training):
    """Keras Dropout(rate, noise_shape=(None,1,1,1)): whole samples."""
    if not training or rate <= 0:
        return x
    keep = 1.0 - rate
    mask = torch.empty((x.shape[0], 1, 1, 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
    return x * mask / keep


class SE(nn.Module):
    def __init__(self, c, squeezed):
        super().__init__()
        self.reduce = nn.Conv2d(c, squeezed, 1, bias=True)
        self.expand = nn.Conv2d(squeezed, c, 1, bias=True)

    def forward(self, x):
        s = x.mean(dim=(2, 3), keepdim=True)
        s = torch.sigmoid(self.expand(F.silu(self.reduce(s))))
        return x * s


class FusedMBConv(nn.Module):
    def __init__(self, k, stride, expand, cin, cout, se, drop):
        super().__init__()
        assert se == 0  # no fused stage of B0 has SE
        f = cin * expand
        self.expand = expand
        self.residual = stride == 1 and cin == cout
        self.drop = drop
        if expand != 1:
            self.expand_conv = SameConv(cin, f, k, stride)
            self.expand_bn = bn(f)
            self.project_conv = SameConv(f, cout, 1)
        else:
            self.project_conv = SameConv(cin, cout, k, stride)
        self.project_bn = bn(cout)

    def forward(self, x):
        h = x
        if self.expand != 1:
            h = F.silu(self.expand_bn(self.expand_conv(h)))
        h = self.project_bn(self.project_conv(h))
        if self.expand == 1:
            h = F.silu(h)
        if self.residual:
            h = drop_path(h, self.drop, self.training) + x
        return h


class MBConv(nn.Module):
    def __init__(self, k, stride, expand, cin, cout, se, drop):
        super().__init__()
        f = cin * expand
        self.expand = expand
        self.residual = stride == 1 and cin == cout
        self.drop = drop
        if expand != 1:
            self.expand_conv = SameConv(cin, f, 1)
            self.expand_bn = bn(f)
        self.dwconv = SameConv(f, f, k, stride, groups=f)
        self.bn = bn(f)
        self.se = SE(f, max(1, int(cin * se))) if 0 < se <= 1 else None
        self.project_conv = SameConv(f, cout, 1)
        self.project_bn = bn(cout)

    def forward(self, x):
        h = x
        if self.expand != 1:
            h = F.silu(self.expand_bn(self.expand_conv(h)))
        h = F.silu(self.bn(self.dwconv(h)))
        if self.se is not None:
            h = self.se(h)
        h = self.project_bn(self.project_conv(h))
        if self.residual:
            h = drop_path(h, self.drop, self.training) + x
        return h


class EfficientNetV2B0(nn.Module):
    """Input: raw RGB pixels 0..255, NCHW float (Keras include_preprocessing)."""

    def __init__(self, classes=1000, include_top=True, dropout=0.2, drop_connect=0.2):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255, persistent=False)
        self.stem_conv = SameConv(3, V2_B0_BLOCKS[0][4], 3, 2)
        self.stem_bn = bn(V2_B0_BLOCKS[0][4])
        total = float(sum(b[6] for b in V2_B0_BLOCKS))
        blocks, b = [], 0
        for fused, k, s, e, cin, cout, reps, se in V2_B0_BLOCKS:
            for j in range(reps):
                cls = FusedMBConv if fused else MBConv
                blocks.append(cls(k, s if j == 0 else 1, e, cin if j == 0 else cout, cout, se,
                                  drop_connect * b / total))
                b += 1
        self.blocks = nn.Sequential(*blocks)
        self.top_conv = SameConv(V2_B0_BLOCKS[-1][5], 1280, 1)
        self.top_bn = bn(1280)
        self.include_top = include_top
        if include_top:
            self.top_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
            self.predictions = nn.Linear(1280, classes)
        self._keras_init()

    def _keras_init(self):
        """Keras initialisers: convs VarianceScaling(2, fan_out, truncated
        normal); dense VarianceScaling(1/3, fan_out, uniform), zero biases."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                # Keras fans of a (k, k, in, out) kernel: fan_out = k*k*out;
                # a depthwise kernel is (k, k, C, 1), so its fan_out is k*k
                fan_out = m.kernel_size[0] * m.kernel_size[1] * (m.out_channels // m.groups)
                std = math.sqrt(2.0 / fan_out) / 0.87962566103423978
                nn.init.trunc_normal_(m.weight, 0.0, std, -2 * std, 2 * std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                limit = math.sqrt(3.0 * (1.0 / 3.0) / m.out_features)
                nn.init.uniform_(m.weight, -limit, limit)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = (x - self.mean) / self.std
        x = F.silu(self.stem_bn(self.stem_conv(x)))
        x = self.blocks(x)
        x = F.silu(self.top_bn(self.top_conv(x)))
        if not self.include_top:
            return x
        x = self.top_dropout(x.mean(dim=(2, 3)))
        return self.predictions(x)  # logits (Keras adds softmax)


def keras_param_count(model):
    """Weights plus BN moving mean and variance, as Keras counts them."""
    n = sum(p.numel() for p in model.parameters())
    n += sum(m.running_mean.numel() + m.running_var.numel()
             for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    return n


def tlcl_param_count(tlcl, classes, top):
    args = [tlcl, "summary", "efficientnetv2-b0"] + (["--classes", str(classes)] if top else ["--no-top"])
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return int(re.search(r"Total params: ([0-9,]+)", out).group(1).replace(",", ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--classes", type=int, default=None, help="only this class count (default: 1000, 10 and no top)")
    ap.add_argument("--tlcl", help="path to build/tlcl: compare with `tlcl summary efficientnetv2-b0`")
    args = ap.parse_args()
    cases = [(args.classes, True)] if args.classes else [(1000, True), (10, True), (0, False)]
    ok = True
    for classes, top in cases:
        m = EfficientNetV2B0(classes=classes or 1000, include_top=top)
        n = keras_param_count(m)
        what = "classes %d" % classes if top else "no top"
        line = "torch EfficientNetV2-B0 %-11s params %9s" % (what, format(n, ","))
        if args.tlcl:
            t = tlcl_param_count(args.tlcl, classes, top)
            line += "  tlcl %9s  %s" % (format(t, ","), "equal" if t == n else "DIFFERENT")
            ok &= t == n
        print(line)
        if classes == 1000 and top and n != 7200312:
            print("  expected 7,200,312 (Keras EfficientNetV2B0, include_top=True)")
            ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
