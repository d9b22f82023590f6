#!/usr/bin/env python3
"""Writes Fashion-MNIST (Debian's dataset-fashion-mnist) as class folders of
PNG images, the layout `tlcl train` reads: OUT/train/<class>/*.png and
OUT/test/<class>/*.png, PER_CLASS training and PER_CLASS//4 test images per
class (the first ones of each class, in file order). Standard library only.

usage: make_fashion_mnist.py OUT [PER_CLASS] [SOURCE_DIR]
"""
import gzip
import os
import struct
import sys
import zlib

CLASSES = ["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle_boot"]


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    dims = magic & 0xFF
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return shape, data[4 + 4 * dims:]


def png_grey(w, h, pixels):
    """A minimal 8-bit greyscale PNG."""
    def chunk(kind, body):
        c = struct.pack(">I", len(body)) + kind + body
        return c + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + pixels[y * w:(y + 1) * w] for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def write_split(out, images, labels, per_class):
    (n, h, w), pix = images
    _, lab = labels
    counts = [0] * len(CLASSES)
    for c in CLASSES:
        os.makedirs(os.path.join(out, c), exist_ok=True)
    for i in range(n):
        k = lab[i]
        if counts[k] >= per_class:
            continue
        path = os.path.join(out, CLASSES[k], "%05d.png" % i)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(png_grey(w, h, pix[i * h * w:(i + 1) * h * w]))
        os.replace(tmp, path)
        counts[k] += 1
    return sum(counts)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    per_class = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    src = sys.argv[3] if len(sys.argv) > 3 else "/usr/share/datasets/fashion-mnist"
    done = os.path.join(out, ".complete-%d" % per_class)
    if os.path.exists(done):
        print("make_fashion_mnist: %s already written" % out)
        return
    for split, stem, n in (("train", "train", per_class), ("test", "t10k", max(1, per_class // 4))):
        images = read_idx(os.path.join(src, stem + "-images-idx3-ubyte.gz"))
        labels = read_idx(os.path.join(src, stem + "-labels-idx1-ubyte.gz"))
        count = write_split(os.path.join(out, split), images, labels, n)
        print("make_fashion_mnist: %d %s images in %s" % (count, split, os.path.join(out, split)))
    open(done, "w").close()


if __name__ == "__main__":
    main()
