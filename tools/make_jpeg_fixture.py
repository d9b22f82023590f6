#!/usr/bin/env python3
"""Writes the JPEG decoding fixture: a few small JPEGs of every kind tlcl
reads (tests/fixtures/jpeg/*.jpg) and the pixels TensorFlow decodes from
each (tests/fixtures/tf_jpeg_pixels.safetensors, one U8 [h, w, 3] tensor
per file, named by it), decoded with tf.io.decode_image(channels=3,
expand_animations=False), what Keras's image_dataset_from_directory calls.
The script also checks that decode_image and decode_jpeg's default agree
with decode_jpeg(dct_method="INTEGER_FAST") and differ from
"INTEGER_ACCURATE": TensorFlow's default DCT is the fast integer one,
which tlcl's decoder (frontend/data/jpeg_decode.c) uses too.

Baseline 4:2:0 and 4:4:4, progressive and greyscale files are written by
tf.io.encode_jpeg; 4:2:2, restart markers, arithmetic coding and the
four-channel files (Adobe CMYK, plain CMYK, YCCK), which TensorFlow cannot
write, by a throw-away C program on libjpeg (cc -ljpeg). test_host_image_load
decodes each with tlcl and compares every pixel.
Usage: tools/make_jpeg_fixture.py   (from the repository root; needs
tensorflow, numpy, cc and libjpeg62-turbo-dev)"""
import json, os, shutil, struct, subprocess, tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JPEG_DIR = os.path.join(ROOT, "tests", "fixtures", "jpeg")
OUT = os.path.join(ROOT, "tests", "fixtures", "tf_jpeg_pixels.safetensors")
H, W = 29, 37  # odd sizes: partial MCUs on the right and bottom edges

ENCODER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
/* encoder MODE OUT W H RAW: RAW holds W x H x 4 bytes (RGB uses the first 3) */
int main(int argc, char **argv) {
    const char *mode = argv[1];
    int w = atoi(argv[3]), h = atoi(argv[4]);
    unsigned char *px = malloc((size_t)w * h * 4);
    FILE *in = fopen(argv[5], "rb"), *out = fopen(argv[2], "wb");
    if (!px || !in || !out || fread(px, 4, (size_t)w * h, in) != (size_t)w * h) return 1;
    int four = strncmp(mode, "cmyk", 4) == 0 || strcmp(mode, "ycck") == 0;
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, out);
    c.image_width = w, c.image_height = h;
    c.input_components = four ? 4 : 3;
    c.in_color_space = four ? JCS_CMYK : JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 90, TRUE);
    if (strcmp(mode, "ycck") == 0) jpeg_set_colorspace(&c, JCS_YCCK);
    if (strcmp(mode, "cmyk_plain") == 0) c.write_Adobe_marker = FALSE;
    if (strcmp(mode, "h2v1") == 0) c.comp_info[0].h_samp_factor = 2, c.comp_info[0].v_samp_factor = 1;
    if (strcmp(mode, "restart") == 0) c.restart_interval = 1;
    if (strcmp(mode, "arith") == 0) c.arith_code = TRUE;
    jpeg_start_compress(&c, TRUE);
    unsigned char *row = malloc((size_t)w * 4);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++)
            memcpy(row + (size_t)x * c.input_components, px + ((size_t)y * w + x) * 4, (size_t)c.input_components);
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return fclose(out) != 0;
}
"""


def pattern():
    """Smooth gradients (chroma upsampling shows) plus noise (the DCT shows)."""
    y, x = np.mgrid[0:H, 0:W]
    rng = np.random.default_rng(7)
    base = np.stack([(x * 7 + y * 3) % 256, (x * x + y * 5) % 256, (255 - x * 5 + y * y) % 256,
                     (x * 3 + y * 11) % 256], -1)
    return np.clip(base + rng.integers(0, 40, (H, W, 4)), 0, 255).astype(np.uint8)


def tf_files(px):
    rgb = px[..., :3]
    return {"baseline_420.jpg": tf.io.encode_jpeg(rgb, quality=90),
            "baseline_444.jpg": tf.io.encode_jpeg(rgb, quality=90, chroma_downsampling=False),
            "progressive_420.jpg": tf.io.encode_jpeg(rgb, quality=85, progressive=True),
            "grey.jpg": tf.io.encode_jpeg(rgb[..., :1], quality=90, format="grayscale")}


def libjpeg_files(px):
    tmp = tempfile.mkdtemp()
    try:
        src, exe, raw = (os.path.join(tmp, n) for n in ("enc.c", "enc", "px.raw"))
        open(src, "w").write(ENCODER)
        subprocess.check_call(["cc", "-O1", "-o", exe, src, "-ljpeg"])
        px.tofile(raw)
        files = {}
        for mode in ["h2v1", "restart", "arith", "cmyk_adobe", "cmyk_plain", "ycck"]:
            out = os.path.join(tmp, mode + ".jpg")
            subprocess.check_call([exe, mode, out, str(W), str(H), raw])
            files[{"h2v1": "baseline_422.jpg", "restart": "restart_420.jpg", "arith": "arithmetic_420.jpg"}
                  .get(mode, mode + ".jpg")] = open(out, "rb").read()
        return files
    finally:
        shutil.rmtree(tmp)


def decode(data):
    """What Keras decodes, after checking TensorFlow's default DCT is the fast one."""
    image = tf.io.decode_image(data, channels=3, expand_animations=False).numpy()
    fast = tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_FAST").numpy()
    default = tf.io.decode_jpeg(data, channels=3).numpy()
    accurate = tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE").numpy()
    assert (image == fast).all() and (default == fast).all(), "TensorFlow's default is not INTEGER_FAST"
    return image, int(np.abs(accurate.astype(int) - fast).max())


def main():
    px = pattern()
    files = {k: bytes(v.numpy()) for k, v in tf_files(px).items()}
    files.update(libjpeg_files(px))
    os.makedirs(JPEG_DIR, exist_ok=True)
    header, blob = {}, b""
    for name in sorted(files):
        with open(os.path.join(JPEG_DIR, name), "wb") as f:
            f.write(files[name])
        pixels, fast_vs_accurate = decode(files[name])
        header[name] = {"dtype": "U8", "shape": list(pixels.shape), "data_offsets": [len(blob), len(blob) + pixels.size]}
        blob += pixels.tobytes()
        print(f"{name}: {len(files[name])} bytes, {pixels.shape}, INTEGER_ACCURATE differs by up to {fast_vs_accurate}")
    header["__metadata__"] = {"tensorflow": tf.__version__, "decoder": "tf.io.decode_image(channels=3)",
                              "script": "tools/make_jpeg_fixture.py"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = OUT + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + blob)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, OUT)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
