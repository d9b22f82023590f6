/* image_load.c — see image_load.h. */
#include "image_load.h"

#include "jpeg_decode.h"
#include "tlcl_cl.h" /* tlcl_read_input */

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* stb_image's declarations; its implementation is stb_image_impl.c, without
 * its JPEG decoder (JPEG goes to jpeg_decode.c). */
#include <stb_image.h>

/* ---- what stb_image 2.27 does not check ----------------------------------- */

/* The PNG chunks stb_image 2.27 trusts: it grows its IDAT buffer to a
 * chunk's declared length before reading the chunk (a 60-byte file asked
 * for 2 GB; found by fuzz_image), and adds an empty first IDAT to its null
 * pointer (undefined behaviour; found by fuzz_image). The chunks are walked
 * first; the problem, or NULL. */
static const char *png_chunk_problem(const unsigned char *d, size_t len)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len < 8 || memcmp(d, sig, 8) != 0)
        return NULL;
    int idat_seen = 0;
    for (size_t pos = 8; pos + 8 <= len;) {
        size_t n = (size_t)d[pos] << 24 | (size_t)d[pos + 1] << 16 | (size_t)d[pos + 2] << 8 | d[pos + 3];
        if (n > len - pos - 8)
            return "a chunk runs past the end of the file";
        if (memcmp(d + pos + 4, "IDAT", 4) == 0 && !idat_seen++ && n == 0)
            return "its first IDAT chunk is empty";
        if (memcmp(d + pos + 4, "IEND", 4) == 0)
            break;
        pos += 12 + n; /* length, type, data, CRC */
    }
    return NULL;
}

/* A binary PNM header (P5 grey, P6 RGB) read before stb_image 2.27 does:
 * its number reader overflows an int on a long run of digits, and its
 * 16-bit conversion writes past its buffer (both found by fuzz_image once
 * PNM was compiled in). Width, height and maxval are 1 to 9 digits, maxval
 * at most 255 (8 bits). NULL when fine or not a PNM, else what is wrong. */
static const char *pnm_header_problem(const unsigned char *d, size_t len)
{
    if (len < 2 || d[0] != 'P' || (d[1] != '5' && d[1] != '6'))
        return NULL;
    size_t pos = 2;
    long v[3];
    for (int k = 0; k < 3; k++) {
        while (pos < len && (strchr(" \t\r\n\v\f", d[pos]) || d[pos] == '#')) {
            if (d[pos] == '#') /* a comment runs to the end of its line */
                while (pos < len && d[pos] != '\n' && d[pos] != '\r')
                    pos++;
            else
                pos++;
        }
        int digits = 0;
        for (v[k] = 0; pos < len && d[pos] >= '0' && d[pos] <= '9'; pos++, digits++)
            if (digits < 9)
                v[k] = v[k] * 10 + (d[pos] - '0');
        if (digits == 0 || digits > 9)
            return "header is damaged (width, height and maximum value must be numbers of 1 to 9 digits)";
    }
    if (v[2] < 1 || v[2] > 255)
        return "has more than 8 bits per channel (maximum value above 255): convert it to 8 bits";
    return NULL;
}

int tlcl_image_size_problem(const char *name, long long w, long long h, long long max_pixels, char *err,
                            size_t err_len)
{
    long long limit = max_pixels > 0 ? max_pixels : TLCL_IMAGE_MAX_PIXELS_DEFAULT;
    if (w * h <= limit)
        return 0;
    snprintf(err, err_len, "%s: image of %lld x %lld = %lld pixels is above the limit of %lld pixels "
             "(train.data_dir.max_image_pixels); shrink the image or raise the limit", name, w, h, w * h, limit);
    return 1;
}

/* Every format but JPEG, through stb_image after tlcl's own checks. */
static int stb_decode(const unsigned char *data, size_t len, const char *name, long long max_pixels,
                      tlcl_image *img, char *err, size_t err_len)
{
    int w, h, channels;
    const char *pnm = pnm_header_problem(data, len);
    if (pnm) {
        snprintf(err, err_len, "%s: PNM image %s", name, pnm);
        return -1;
    }
    const char *png = png_chunk_problem(data, len);
    if (png) {
        snprintf(err, err_len, "%s: damaged PNG (%s)", name, png);
        return -1;
    }
    /* the size from the header first: a small file can declare an image
     * that takes gigabytes to decode (18000 x 18000 PNG: 8.8 MB, 2.1 GB) */
    if (!stbi_info_from_memory(data, (int)len, &w, &h, &channels)) {
        snprintf(err, err_len, "%s: cannot decode image (%s)", name, stbi_failure_reason());
        return -1;
    }
    if (w <= 0 || h <= 0) { /* stb's GIF reader accepts a 13392 x 0 header (found by fuzz_image) */
        snprintf(err, err_len, "%s: image of %d x %d pixels: nothing to decode", name, w, h);
        return -1;
    }
    if (tlcl_image_size_problem(name, w, h, max_pixels, err, err_len))
        return -1;
    /* asking for 3 components makes stb expand grey and drop alpha (as
     * PIL's convert("RGB") and Keras's load_img do) */
    unsigned char *p = stbi_load_from_memory(data, (int)len, &w, &h, &channels, 3);
    if (p && (w <= 0 || h <= 0)) { /* the decoder's own size, should it differ from the header's */
        stbi_image_free(p);
        p = NULL;
    }
    if (!p) {
        snprintf(err, err_len, "%s: cannot decode image (%s)", name, stbi_failure_reason());
        return -1;
    }
    img->w = w, img->h = h, img->rgb = p;
    return 0;
}

int tlcl_image_decode(const unsigned char *data, size_t len, const char *name, long long max_pixels,
                      tlcl_image *img, char *err, size_t err_len)
{
    memset(img, 0, sizeof *img);
    if (len > INT_MAX) {
        snprintf(err, err_len, "%s: image file larger than 2 GiB", name);
        return -1;
    }
    if (tlcl_jpeg_signature(data, len))
        return tlcl_jpeg_decode(data, len, name, max_pixels, img, err, err_len);
    return stb_decode(data, len, name, max_pixels, img, err, err_len);
}

int tlcl_image_load_limited(const char *path, long long max_pixels, tlcl_image *img, char *err, size_t err_len)
{
    size_t len = 0;
    memset(img, 0, sizeof *img);
    unsigned char *data = tlcl_read_input(path, "image", TLCL_IMAGE_MAX_FILE_BYTES, &len, err, err_len);
    if (!data)
        return -1;
    int rc = tlcl_image_decode(data, len, path, max_pixels, img, err, err_len);
    free(data);
    return rc;
}

int tlcl_image_load(const char *path, tlcl_image *img, char *err, size_t err_len)
{
    return tlcl_image_load_limited(path, 0, img, err, err_len);
}

void tlcl_image_free(tlcl_image *img)
{
    free(img->rgb); /* stb_image allocates with malloc (STBI_MALLOC's default), as jpeg_decode.c does */
    memset(img, 0, sizeof *img);
}

/* Source position of output o, as TensorFlow computes it in float:
 * s = (o + 0.5) * in/out - 0.5; the two neighbours are clamped to the
 * image, the weight taken from the unclamped floor. */
typedef struct lerp { int lo, hi; float frac; } lerp;

static lerp source(int o, float scale, int in)
{
    float s = ((float)o + 0.5f) * scale - 0.5f, f = floorf(s);
    lerp l;
    l.lo = f < 0 ? 0 : (int)f;
    l.hi = (int)ceilf(s) > in - 1 ? in - 1 : (int)ceilf(s);
    l.frac = s - f;
    return l;
}

void tlcl_image_resize(const tlcl_image *img, int out_h, int out_w, float *dst)
{
    float sy = (float)img->h / (float)out_h, sx = (float)img->w / (float)out_w;
    const unsigned char *p = img->rgb;
    size_t stride = (size_t)img->w * 3;
    for (int oy = 0; oy < out_h; oy++) {
        lerp y = source(oy, sy, img->h);
        const unsigned char *r0 = p + (size_t)y.lo * stride, *r1 = p + (size_t)y.hi * stride;
        for (int ox = 0; ox < out_w; ox++) {
            lerp x = source(ox, sx, img->w);
            for (int c = 0; c < 3; c++) {
                /* along x on both rows, then along y, as TensorFlow */
                float top = r0[x.lo * 3 + c] + (r0[x.hi * 3 + c] - r0[x.lo * 3 + c]) * x.frac;
                float bottom = r1[x.lo * 3 + c] + (r1[x.hi * 3 + c] - r1[x.lo * 3 + c]) * x.frac;
                dst[((size_t)oy * out_w + ox) * 3 + c] = top + (bottom - top) * y.frac;
            }
        }
    }
}

int tlcl_image_load_resized(const char *path, int out_h, int out_w, float *dst, char *err, size_t err_len)
{
    tlcl_image img;
    if (tlcl_image_load(path, &img, err, err_len) != 0)
        return -1;
    tlcl_image_resize(&img, out_h, out_w, dst);
    tlcl_image_free(&img);
    return 0;
}

int tlcl_image_name_supported(const char *name)
{
    static const char *ext[] = {".jpg", ".jpeg", ".png", ".bmp", ".gif"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++) {
        size_t k = strlen(ext[i]);
        if (n > k && strcasecmp(name + n - k, ext[i]) == 0)
            return 1;
    }
    return 0;
}
