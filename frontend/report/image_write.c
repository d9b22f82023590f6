/* image_write.c — JPEG/PNG files from an RGB buffer through stb_image_write. */
#include "image_write.h"
#include "textout.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO /* bytes go to textout's temporary file */
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

typedef struct write_ctx {
    FILE *f;
    int ok;
} write_ctx;

static void write_bytes(void *ctx, void *data, int size)
{
    write_ctx *c = ctx;
    c->ok = c->ok && fwrite(data, 1, (size_t)size, c->f) == (size_t)size;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

int image_write_rgb(const char *path, int w, int h, const unsigned char *rgb, char *err, size_t err_len)
{
    int jpeg = has_suffix(path, ".jpg") || has_suffix(path, ".jpeg"), png = has_suffix(path, ".png");
    if (!jpeg && !png) {
        snprintf(err, err_len, "%s: unknown picture format (use .jpg or .png)", path);
        return -1;
    }
    textout_file t;
    if (textout_open(&t, path, err, err_len))
        return -1;
    write_ctx ctx = {t.f, 1};
    int enc = jpeg ? stbi_write_jpg_to_func(write_bytes, &ctx, w, h, 3, rgb, 90)
                   : stbi_write_png_to_func(write_bytes, &ctx, w, h, 3, rgb, w * 3);
    return textout_commit(&t, enc && ctx.ok, err, err_len);
}
