#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/),
each seed a few KB: configurations from config/ (comments dropped), small
tlcl checkpoints, images of every format stb_image knows (made with
stb_image_write by a throw-away C program, plus hand-made GIF, PNM, PSD
headers), small Keras 3 / legacy HDF5 files with the fixtures' layouts
(h5py) and .keras zips of them (stored and deflated), and the split file
tlcl writes for fuzz_split's fixed dataset (needs build-fuzz).
Usage: tools/make_fuzz_seeds.py   (from the repository root)"""
import json, os, shutil, struct, subprocess, sys, tempfile, zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def configs():
    for name in ["default.yaml"] + ["examples/" + n for n in sorted(os.listdir(os.path.join(ROOT, "config", "examples")))]:
        text = open(os.path.join(ROOT, "config", name)).read()
        lines = [l for l in text.splitlines() if not l.lstrip().startswith("#") and l.strip()]
        put("fuzz_config", os.path.basename(name), ("\n".join(lines) + "\n").encode())
    put("fuzz_config", "flow.yaml", b"train: {data_dir: {train: d, image_size: [64, 64]}}\n"
        b"phases: [{name: a, epochs: 1, trainable: top_blocks, top_blocks: 2}]\n")


def safetensors(meta, tensors):
    header, data, off = {"__metadata__": meta}, b"", 0
    for name, dtype, shape, payload in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(payload)]}
        data += payload
        off += len(payload)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def checkpoints():
    meta = {"format": "tlcl-checkpoint", "format_version": "1", "tlcl_version": "0.1.0",
            "architecture": "efficientnet-b0", "input_size": "32", "include_top": "1", "classes": "2",
            "preprocessing": json.dumps({"input": "RGB float 0..255, NHWC", "scale": [1, 1, 1], "shift": [0, 0, 0]}),
            "head": json.dumps({"units": [8], "activation": "relu", "dropout": 0.2}),
            "class_names": json.dumps(["cat", "dog"])}
    f32 = lambda n: struct.pack("<%df" % n, *[0.5 * i for i in range(n)])
    put("fuzz_checkpoint", "small.safetensors", safetensors(meta, [
        ("predictions/kernel", "F32", [4, 2], f32(8)), ("predictions/bias", "F32", [2], f32(2)),
        ("optimizer/m/predictions/bias", "F32", [2], f32(2))]))
    m2 = dict(meta, include_top="0", classes="0", training_state=json.dumps({"epoch": 3, "phase": 1}))
    del m2["class_names"]
    put("fuzz_checkpoint", "notop.safetensors", safetensors(m2, [
        ("stem_conv/kernel", "F32", [1, 1, 3, 2], f32(6)), ("x/y", "F16", [3], b"\0" * 6)]))
    put("fuzz_checkpoint", "empty.safetensors", safetensors({"format_version": "1"}, []))


STB_PROGRAM = r"""
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
int main(void) {
    unsigned char px[4 * 3 * 4]; float hdr[4 * 3 * 3];
    for (int i = 0; i < 48; i++) px[i] = (unsigned char)(i * 37);
    for (int i = 0; i < 36; i++) hdr[i] = i / 7.0f;
    return !(stbi_write_png("rgb.png", 4, 3, 3, px, 12) && stbi_write_png("ga.png", 4, 3, 2, px, 8) &&
             stbi_write_png("rgba.png", 4, 3, 4, px, 16) && stbi_write_bmp("rgb.bmp", 4, 3, 3, px) &&
             stbi_write_bmp("rgba.bmp", 4, 3, 4, px) && stbi_write_tga("rgb.tga", 4, 3, 3, px) &&
             stbi_write_jpg("rgb.jpg", 4, 3, 3, px, 90) && stbi_write_jpg("grey.jpg", 4, 3, 1, px, 50) &&
             stbi_write_hdr("rgb.hdr", 4, 3, 3, hdr));
}
"""


def images():
    tmp = tempfile.mkdtemp()
    try:
        src = os.path.join(tmp, "w.c")
        open(src, "w").write(STB_PROGRAM)
        subprocess.check_call(["cc", "-O1", "-I/usr/include/stb", "-o", os.path.join(tmp, "w"), src, "-lm"])
        subprocess.check_call([os.path.join(tmp, "w")], cwd=tmp)
        for n in sorted(os.listdir(tmp)):
            if "." in n and not n.endswith(".c"):
                put("fuzz_image", n, open(os.path.join(tmp, n), "rb").read())
    finally:
        shutil.rmtree(tmp)
    put("fuzz_image", "one.gif", bytes.fromhex("474946383961010001008000" "00ffffff000000" "21f90401000000002c00000000010001000002024401003b"))
    put("fuzz_image", "rgb.ppm", b"P6\n2 2\n255\n" + bytes(range(12)))
    put("fuzz_image", "grey.pgm", b"P5\n3 1\n255\n\x00\x80\xff")
    put("fuzz_image", "tiny.psd", b"8BPS\x00\x01" + b"\0" * 6 + struct.pack(">HIIHH", 3, 2, 2, 8, 3) + b"\0" * 12
        + struct.pack(">H", 0) + bytes(12))


PROGRESSIVE_PROGRAM = r"""
#include <stdio.h>
#include <jpeglib.h>
/* an 8 x 8 grey progressive JPEG on stdout */
int main(void) {
    unsigned char row[8];
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, stdout);
    c.image_width = 8, c.image_height = 8, c.input_components = 1, c.in_color_space = JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    for (int y = 0; y < 8; y++) {
        for (int x = 0; x < 8; x++) row[x] = (unsigned char)(x * 30 + y * 5);
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return 0;
}
"""


def many_scans():
    """A progressive JPEG of 501 scans (its smallest scan repeated): one past
    jpeg_decode.c's bound, which libjpeg alone would decode scan by scan."""
    tmp = tempfile.mkdtemp()
    try:
        src = os.path.join(tmp, "p.c")
        open(src, "w").write(PROGRESSIVE_PROGRAM)
        subprocess.check_call(["cc", "-O1", "-o", os.path.join(tmp, "p"), src, "-ljpeg"])
        d = subprocess.check_output([os.path.join(tmp, "p")])
    finally:
        shutil.rmtree(tmp)
    sos = [i for i in range(len(d) - 1) if d[i] == 0xFF and d[i + 1] == 0xDA]
    ends = sos[1:] + [len(d) - 2]
    start, end = min(zip(sos, ends), key=lambda se: se[1] - se[0])
    put("fuzz_image", "jpeg-501-scans.jpg", d[:-2] + d[start:end] * (501 - len(sos)) + d[-2:])


def keras():
    import h5py, numpy as np
    tmp = tempfile.mkdtemp()
    try:
        k3 = os.path.join(tmp, "model.weights.h5")
        with h5py.File(k3, "w") as f:
            for layer, shapes in [("stem_conv", [(3, 3, 3, 2)]), ("predictions", [(2, 2), (2,)])]:
                g = f.create_group("layers/" + layer + "/vars")
                g.attrs["name"] = layer
                for i, s in enumerate(shapes):
                    g.create_dataset(str(i), data=np.arange(np.prod(s), dtype=np.float32).reshape(s))
        put("fuzz_keras", "keras3.weights.h5", open(k3, "rb").read())
        leg = os.path.join(tmp, "legacy.h5")
        with h5py.File(leg, "w") as f:
            f.attrs["layer_names"] = np.array([b"stem_conv", b"predictions"])
            for layer, names in [("stem_conv", ["kernel:0"]), ("predictions", ["kernel:0", "bias:0"])]:
                g = f.create_group(layer)
                g.attrs["weight_names"] = np.array([(layer + "/" + n).encode() for n in names])
                for n in names:
                    g.create_dataset(layer + "/" + n, data=np.ones((2, 2) if "kernel" in n else (2,), np.float32))
        put("fuzz_keras", "legacy.h5", open(leg, "rb").read())
        for method, name in [(zipfile.ZIP_STORED, "stored.keras"), (zipfile.ZIP_DEFLATED, "deflated.keras")]:
            z = os.path.join(tmp, name)
            with zipfile.ZipFile(z, "w", method) as zf:
                zf.writestr("metadata.json", '{"keras_version": "3.6.0"}')
                zf.write(k3, "model.weights.h5")
            put("fuzz_keras", name, open(z, "rb").read())
    finally:
        shutil.rmtree(tmp)
    # the whole-import target starts from the same files
    d = os.path.join(CORPUS, "fuzz_keras")
    for n in os.listdir(d):
        put("fuzz_keras_import", n, open(os.path.join(d, n), "rb").read())


def split():
    exe = os.path.join(ROOT, "build-fuzz", "tests", "fuzz", "fuzz_split")
    d = os.path.join(CORPUS, "fuzz_split")
    os.makedirs(d, exist_ok=True)
    env = dict(os.environ, TLCL_FUZZ_WRITE_SEED=os.path.join(d, "split.json"))
    subprocess.check_call([exe], env=env)


if __name__ == "__main__":
    configs(); checkpoints(); images(); many_scans(); keras(); split()
    for t in sorted(os.listdir(CORPUS)):
        files = os.listdir(os.path.join(CORPUS, t))
        print(t, len(files), "seeds,", max(os.path.getsize(os.path.join(CORPUS, t, f)) for f in files), "bytes max")
