/* test_host_image_load.c — frontend/image_load on the host: decoding (grey
 * and alpha to RGB, PNG and BMP written here with stb_image_write; JPEG
 * against TensorFlow's pixels, damaged and hostile JPEGs), the
 * TensorFlow half-pixel bilinear resize against hand-computed values and a
 * double-precision reference in PyTorch's formulation (clamp the source
 * position, then interpolate), and the extensions a directory walk takes. */
#include "fixture.h"
#include "harness.h"
#include "image_load.h"
#include "jpeg_decode.h"
#include "tlcl_cl.h" /* tlcl_read_input */

#include <cJSON.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#include <stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

static void ok_or_fail(harness *h, int ok, const char *what)
{
    if (ok) {
        h->passed++;
        printf("ok   %s\n", what);
    } else {
        harness_fail(h, "%s", what);
    }
}

static void check_names(harness *h)
{
    const char *yes[] = {"a.jpg", "dir/B.JPEG", "c.Png", "x.gif", "y.BMP"};
    const char *no[] = {"notes.txt", "jpg", ".png", "a.png.txt", "a.jpgx"};
    int ok = 1;
    for (int i = 0; i < 5; i++)
        ok &= tlcl_image_name_supported(yes[i]) && !tlcl_image_name_supported(no[i]);
    ok_or_fail(h, ok, "image file names: .jpg .jpeg .png .bmp .gif in any case, nothing else");
}

/* PyTorch's align_corners=False bilinear, in double (clamp, then lerp). */
static double ref_axis(int o, int in, int out, int *lo, int *hi)
{
    double s = (o + 0.5) * in / out - 0.5;
    if (s < 0)
        s = 0;
    *lo = (int)floor(s);
    if (*lo > in - 1)
        *lo = in - 1;
    *hi = *lo + 1 < in ? *lo + 1 : in - 1;
    return s - *lo;
}

static double ref_pixel(const tlcl_image *img, int oy, int ox, int oh, int ow, int c)
{
    int y0, y1, x0, x1;
    double fy = ref_axis(oy, img->h, oh, &y0, &y1), fx = ref_axis(ox, img->w, ow, &x0, &x1);
#define P(y, x) (double)img->rgb[((size_t)(y) * img->w + (x)) * 3 + c]
    double top = P(y0, x0) * (1 - fx) + P(y0, x1) * fx, bottom = P(y1, x0) * (1 - fx) + P(y1, x1) * fx;
#undef P
    return top * (1 - fy) + bottom * fy;
}

static void check_resize_ref(harness *h, const tlcl_image *img, int oh, int ow)
{
    float *got = malloc((size_t)oh * ow * 3 * sizeof *got);
    double *want = malloc((size_t)oh * ow * 3 * sizeof *want);
    tlcl_image_resize(img, oh, ow, got);
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++)
            for (int c = 0; c < 3; c++)
                want[((size_t)y * ow + x) * 3 + c] = ref_pixel(img, y, x, oh, ow, c);
    char what[96];
    snprintf(what, sizeof what, "resize %dx%d -> %dx%d", img->h, img->w, oh, ow);
    harness_check(h, what, got, want, (size_t)oh * ow * 3, 1e-5, 255.0);
    free(got);
    free(want);
}

static void check_resize(harness *h)
{
    enum { H = 37, W = 53 };
    static unsigned char px[H * W * 3];
    for (int i = 0; i < H * W * 3; i++)
        px[i] = (unsigned char)((i * 7919u + (unsigned)(i / 3) * 31u) % 256u);
    tlcl_image img = {W, H, px};
    float *same = malloc(sizeof(float) * H * W * 3);
    tlcl_image_resize(&img, H, W, same);
    int exact = 1;
    for (int i = 0; i < H * W * 3; i++)
        exact &= same[i] == px[i];
    free(same);
    ok_or_fail(h, exact, "resize to the same size copies the pixels exactly");
    check_resize_ref(h, &img, 16, 16);   /* downscale, non-integer factors */
    check_resize_ref(h, &img, 224, 224); /* upscale, width and height differently */
    check_resize_ref(h, &img, 11, 90);
    /* TensorFlow on a 1x2 row of (0, 100) resized to 1x4: 0, 25, 75, 100 */
    unsigned char row[6] = {0, 0, 0, 100, 100, 100};
    tlcl_image two = {2, 1, row};
    float up[12];
    tlcl_image_resize(&two, 1, 4, up);
    ok_or_fail(h, up[0] == 0 && up[3] == 25 && up[6] == 75 && up[9] == 100,
               "half-pixel centres: (0, 100) -> (0, 25, 75, 100) as tf.image.resize");
}

/* Writes a grey+alpha PNG and an RGBA BMP; both must load as RGB. */
static void check_decode(harness *h)
{
    enum { W = 5, H = 3 };
    unsigned char ga[W * H * 2], rgba[W * H * 4];
    for (int i = 0; i < W * H; i++) {
        ga[2 * i] = (unsigned char)(i * 17), ga[2 * i + 1] = (unsigned char)(255 - i);
        for (int c = 0; c < 4; c++)
            rgba[4 * i + c] = (unsigned char)(i * 13 + c * 60);
    }
    char png[64], bmp[64];
    snprintf(png, sizeof png, "/tmp/tlcl_image_test_%ld.png", (long)getpid());
    snprintf(bmp, sizeof bmp, "/tmp/tlcl_image_test_%ld.bmp", (long)getpid());
    int written = stbi_write_png(png, W, H, 2, ga, W * 2) && stbi_write_bmp(bmp, W, H, 4, rgba);
    tlcl_image a = {0}, b = {0};
    char err[256];
    int ok = written && tlcl_image_load(png, &a, err, sizeof err) == 0 && tlcl_image_load(bmp, &b, err, sizeof err) == 0 &&
             a.w == W && a.h == H && b.w == W && b.h == H;
    for (int i = 0; ok && i < W * H; i++)
        for (int c = 0; c < 3; c++)
            ok &= a.rgb[3 * i + c] == ga[2 * i] && b.rgb[3 * i + c] == rgba[4 * i + c];
    ok_or_fail(h, ok, "grey+alpha PNG and RGBA BMP decode to RGB (grey replicated, alpha dropped)");
    tlcl_image_free(&a);
    tlcl_image_free(&b);
    remove(png);
    remove(bmp);
    tlcl_image c;
    err[0] = '\0';
    ok = tlcl_image_load(bmp, &c, err, sizeof err) != 0 && strstr(err, bmp) != NULL;
    ok_or_fail(h, ok, "a missing file fails with a message naming it");
}

/* Hostile files (issue 13, defects 8 and 15): an image whose header
 * declares 18000 x 18000 pixels is refused from the header alone (it took
 * 2.1 GB to decode), the limit counts width x height, and a FIFO named
 * x.png is refused without blocking. */
static void check_limits(harness *h)
{
    enum { W = 4, H = 4 };
    unsigned char rgb[W * H * 3] = {0};
    int len = 0;
    unsigned char *png = stbi_write_png_to_mem(rgb, W * 3, W, H, 3, &len);
    tlcl_image img = {0};
    char err[512] = "";
    int ok = png && tlcl_image_decode(png, (size_t)len, "small.png", 16, &img, err, sizeof err) == 0 && img.w == W;
    tlcl_image_free(&img);
    ok_or_fail(h, ok, "a 4 x 4 image decodes under a limit of 16 pixels");
    ok = png && tlcl_image_decode(png, (size_t)len, "small.png", 15, &img, err, sizeof err) != 0 && !img.rgb &&
         strstr(err, "small.png: image of 4 x 4 = 16 pixels is above the limit of 15 pixels");
    ok_or_fail(h, ok, err);
    /* IHDR: width and height, big-endian, at bytes 16 and 20 (stb reads no CRC) */
    static const unsigned char side[4] = {0x00, 0x00, 0x46, 0x50}; /* 18000 */
    memcpy(png + 16, side, 4);
    memcpy(png + 20, side, 4);
    err[0] = 0;
    ok = png && tlcl_image_decode(png, (size_t)len, "huge.png", 0, &img, err, sizeof err) != 0 && !img.rgb &&
         strstr(err, "huge.png: image of 18000 x 18000 = 324000000 pixels is above the limit of 178956970 pixels");
    ok_or_fail(h, ok, err);
    free(png);

    /* a JPEG whose Huffman table claims 16 x 32 = 512 codes (stb_image
     * 2.27 wrote past its table: fuzz_image's finding 2). SOI, then DHT:
     * length 19, class/id 0, the 16 counts (no values follow). libjpeg
     * refuses it; with fill bytes before SOI (FF FF FF D8, finding 6) it
     * is no JPEG at all, and stb, built without its JPEG decoder, refuses
     * it as an unknown type. */
    unsigned char jpeg[3 + 4 + 2 + 17 + 2] = {0xFF, 0xFF, 0xFF, 0xFF, 0xD8, 0xFF, 0xC4, 0x00, 19, 0x00};
    memset(jpeg + 10, 32, 16);
    jpeg[26] = 0xFF, jpeg[27] = 0xD9;
    err[0] = 0;
    ok = tlcl_image_decode(jpeg + 3, sizeof jpeg - 3, "dht.jpg", 0, &img, err, sizeof err) != 0 && !img.rgb &&
         strstr(err, "dht.jpg: cannot decode JPEG (Bogus Huffman table definition)");
    ok_or_fail(h, ok, err);
    err[0] = 0;
    ok = tlcl_image_decode(jpeg, sizeof jpeg, "fill.jpg", 0, &img, err, sizeof err) != 0 && !img.rgb &&
         strstr(err, "fill.jpg: cannot decode image (Image not of any known type, or corrupt)");
    ok_or_fail(h, ok, err);

    /* a PNG whose first IDAT chunk is empty: stb_image adds 0 to a null
     * pointer (UBSan, found by fuzz_image). CRCs are not checked by stb. */
    static const unsigned char png0[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
                                         0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0, 4, 0, 0, 0, 3, 8, 2, 0, 0, 0, 0, 0, 0, 0,
                                         0, 0, 0, 0, 'I', 'D', 'A', 'T', 0, 0, 0, 0,
                                         0, 0, 0, 0, 'I', 'E', 'N', 'D', 0, 0, 0, 0};
    err[0] = 0;
    ok = tlcl_image_decode(png0, sizeof png0, "idat.png", 0, &img, err, sizeof err) != 0 && !img.rgb &&
         strstr(err, "idat.png: damaged PNG (its first IDAT chunk is empty)");
    ok_or_fail(h, ok, err);
    /* the same with an IDAT declaring 2 GB: stb allocated it before
     * reading (fuzz_image, out of memory) */
    unsigned char big[sizeof png0];
    memcpy(big, png0, sizeof png0);
    big[33] = 0x7f, big[34] = 0xff;
    err[0] = 0;
    ok = tlcl_image_decode(big, sizeof big, "big.png", 0, &img, err, sizeof err) != 0 && !img.rgb &&
         strstr(err, "big.png: damaged PNG (a chunk runs past the end of the file)");
    ok_or_fail(h, ok, err);

    /* a GIF of 13392 x 0 pixels, which stb accepts (found by fuzz_image: the
     * resize then read before the pixels) */
    static const unsigned char gif[] = {'G', 'I', 'F', '8', '9', 'a', 0x50, 0x34, 0, 0, 0xe0, 0x60, 0, 0,
                                        0xff, 0xff, 0, 0, 0, 0x2c, 0x3b};
    err[0] = 0;
    ok = tlcl_image_decode(gif, sizeof gif, "flat.gif", 0, &img, err, sizeof err) != 0 && !img.rgb &&
         strstr(err, "flat.gif: image of 13392 x 0 pixels: nothing to decode");
    ok_or_fail(h, ok, err);

    char fifo[64];
    snprintf(fifo, sizeof fifo, "/tmp/tlcl_image_test_%ld.png", (long)getpid());
    alarm(20); /* a regression would block in open() forever */
    ok = mkfifo(fifo, 0600) == 0 && tlcl_image_load(fifo, &img, err, sizeof err) != 0 && strstr(err, fifo) &&
         strstr(err, "FIFO");
    alarm(0);
    remove(fifo);
    ok_or_fail(h, ok, err);
}

/* The formats tlcl adds to Keras's (.tga .pnm .ppm .pgm) decode, exactly;
 * the PNM headers stb_image 2.27 mishandles are refused first. */
static void check_tga_pnm(harness *h)
{
    static const unsigned char ppm[] = "P6\n# two pixels\n2 1\n255\n\x0a\x14\x1e\x28\x32\x3c";
    static const unsigned char pgm[] = "P5 2 1 255 \x07\xfe";
    /* uncompressed true-colour TGA, 2 x 1, bottom-up, BGR */
    static const unsigned char tga[] = {0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1, 0, 24, 0, 30, 20, 10, 60, 50, 40};
    tlcl_image img;
    char err[512] = "";
    int ok = tlcl_image_decode(ppm, sizeof ppm - 1, "a.ppm", 0, &img, err, sizeof err) == 0 && img.w == 2 &&
             img.h == 1 && memcmp(img.rgb, "\x0a\x14\x1e\x28\x32\x3c", 6) == 0;
    tlcl_image_free(&img);
    harness_expectf(h, ok, "a P6 PPM with a comment decodes to its pixels %s", err);
    ok = tlcl_image_decode(pgm, sizeof pgm - 1, "a.pgm", 0, &img, err, sizeof err) == 0 && img.w == 2 &&
         memcmp(img.rgb, "\x07\x07\x07\xfe\xfe\xfe", 6) == 0;
    tlcl_image_free(&img);
    harness_expectf(h, ok, "a P5 PGM decodes, grey as three equal channels %s", err);
    ok = tlcl_image_decode(tga, sizeof tga, "a.tga", 0, &img, err, sizeof err) == 0 && img.w == 2 &&
         memcmp(img.rgb, "\x0a\x14\x1e\x28\x32\x3c", 6) == 0;
    tlcl_image_free(&img);
    harness_expectf(h, ok, "a true-colour TGA decodes, BGR to RGB %s", err);
    static const unsigned char deep[] = "P5 1 1 65535 \x01\x02", digits[] = "P6 4467440730 1 255 \x00";
    ok = tlcl_image_decode(deep, sizeof deep - 1, "deep.pgm", 0, &img, err, sizeof err) != 0 &&
         strstr(err, "deep.pgm: PNM image has more than 8 bits per channel");
    harness_expectf(h, ok, "a 16-bit PNM is refused (stb 2.27 writes past its buffer): %s", err);
    ok = tlcl_image_decode(digits, sizeof digits - 1, "long.ppm", 0, &img, err, sizeof err) != 0 &&
         strstr(err, "long.ppm: PNM image header is damaged");
    harness_expectf(h, ok, "a 10-digit PNM width is refused (stb 2.27 overflows an int): %s", err);
}

/* Every JPEG of tests/fixtures/jpeg (baseline 4:2:0, 4:2:2, 4:4:4,
 * progressive, restart markers, arithmetic coding, grey, Adobe CMYK, plain
 * CMYK, YCCK) decodes to exactly the pixels TensorFlow's
 * tf.io.decode_image(channels=3) gives (tools/make_jpeg_fixture.py). */
static void check_tf_jpeg(harness *h)
{
    fixture fx;
    if (fixture_open(h, &fx, "tf_jpeg_pixels.safetensors", "tools/make_jpeg_fixture.py") != 0)
        return;
    int files = 0;
    for (cJSON *e = fixture_first(&fx); e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0)
            continue;
        int shape[4], nd;
        size_t n = 0;
        double *want = fixture_get(&fx, e->string, &n);
        char path[1024], err[512] = "";
        snprintf(path, sizeof path, "%s/jpeg/%s", fixture_dir(), e->string);
        tlcl_image img = {0};
        int ok = want && fixture_shape(&fx, e->string, shape, &nd) == 0 && nd == 3 &&
                 tlcl_image_load(path, &img, err, sizeof err) == 0 && img.h == shape[0] && img.w == shape[1];
        int worst = ok ? 0 : 256;
        for (size_t i = 0; ok && i < n; i++) {
            int d = abs(img.rgb[i] - (int)want[i]);
            worst = d > worst ? d : worst;
        }
        harness_expectf(h, ok && worst == 0, "%s decodes to TensorFlow %s's pixels exactly (largest difference %d) %s",
                        e->string, fixture_meta(&fx, "tensorflow"), worst, err);
        tlcl_image_free(&img);
        free(want);
        files++;
    }
    harness_expectf(h, files == 10, "the fixture holds the 10 JPEG kinds (%d)", files);
    fixture_close(&fx);
}

/* The JPEG fixture's bytes (tests/fixtures/jpeg/NAME), malloc'd. */
static unsigned char *jpeg_fixture(const char *name, size_t *len)
{
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/jpeg/%s", fixture_dir(), name);
    return tlcl_read_input(path, "image", 1 << 20, len, err, sizeof err);
}

/* Damaged and hostile JPEGs: a truncated file fails (as in TensorFlow)
 * naming the file, the pixel limit is checked from the header before
 * decoding, and a progressive file is refused past TLCL_JPEG_MAX_SCANS
 * scans (its last scan repeated: libjpeg would decode every copy). */
static void check_jpeg_damage(harness *h)
{
    size_t len = 0;
    unsigned char *d = jpeg_fixture("baseline_420.jpg", &len);
    tlcl_image img = {0};
    char err[512] = "";
    int ok = d && tlcl_image_decode(d, len / 2, "half.jpg", 0, &img, err, sizeof err) != 0 && !img.rgb &&
             strstr(err, "half.jpg: cannot decode JPEG (Premature end of JPEG file)");
    harness_expectf(h, ok, "a JPEG cut in half is an error: %s", err);
    err[0] = 0;
    ok = d && tlcl_image_decode(d, len, "b.jpg", 37 * 29 - 1, &img, err, sizeof err) != 0 && !img.rgb &&
         strstr(err, "b.jpg: image of 37 x 29 = 1073 pixels is above the limit of 1072 pixels");
    harness_expectf(h, ok, "a JPEG over the pixel limit is refused: %s", err);
    free(d);

    unsigned char *p = jpeg_fixture("progressive_420.jpg", &len);
    size_t last = 0, scans = 0; /* the last SOS: FF DA never occurs in entropy-coded data (FF is stuffed) */
    for (size_t i = 0; p && i + 1 < len; i++)
        if (p[i] == 0xFF && p[i + 1] == 0xDA)
            last = i, scans++;
    size_t seg = len - 2 - last; /* the last scan, up to EOI */
    unsigned char *many = p && scans ? malloc(len + seg * TLCL_JPEG_MAX_SCANS) : NULL;
    for (size_t total = TLCL_JPEG_MAX_SCANS; many && total <= TLCL_JPEG_MAX_SCANS + 1; total++) {
        size_t at = len - 2;
        memcpy(many, p, at);
        for (size_t k = scans; k < total; k++, at += seg)
            memcpy(many + at, p + last, seg);
        memcpy(many + at, p + len - 2, 2);
        err[0] = 0;
        int rc = tlcl_image_decode(many, at + 2, "scans.jpg", 0, &img, err, sizeof err);
        tlcl_image_free(&img);
        if (total == TLCL_JPEG_MAX_SCANS)
            ok = rc == 0;
        else
            ok &= rc != 0 && strstr(err, "scans.jpg: cannot decode JPEG (more than 500 scans");
    }
    harness_expectf(h, many && ok, "a progressive JPEG of %d scans decodes, of %d is refused: %s",
                    TLCL_JPEG_MAX_SCANS, TLCL_JPEG_MAX_SCANS + 1, err);
    free(many);
    free(p);
}

int main(void)
{
    harness h;
    harness_init(&h, 0);
    check_tga_pnm(&h);
    check_names(&h);
    check_resize(&h);
    check_decode(&h);
    check_limits(&h);
    check_tf_jpeg(&h);
    check_jpeg_damage(&h);
    return harness_finish(&h);
}
