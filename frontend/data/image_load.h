/* image_load.h — image files to model input on the host: decoding (stb_image:
 * JPEG, PNG, BMP, GIF and more), grey and alpha to RGB, and TensorFlow's
 * bilinear resize (half-pixel centres, no antialias) to float RGB 0..255,
 * the raw input every tlcl model takes. Shared by `tlcl predict` and the
 * dataset loader. */
#ifndef TLCL_IMAGE_LOAD_H
#define TLCL_IMAGE_LOAD_H

#include <stddef.h>

/* 8-bit RGB, rows top to bottom, interleaved (h * w * 3 bytes). */
typedef struct tlcl_image {
    int w, h;
    unsigned char *rgb;
} tlcl_image;

/* Decodes a file; grey becomes three equal channels and alpha is dropped.
 * Returns 0, or -1 with the reason in err. */
int tlcl_image_load(const char *path, tlcl_image *img, char *err, size_t err_len);
void tlcl_image_free(tlcl_image *img);

/* dst [out_h][out_w][3] floats 0..255 = bilinear resize of img with
 * TensorFlow's half-pixel centres (tf.image.resize, antialias off); the
 * same size copies the pixels exactly. */
void tlcl_image_resize(const tlcl_image *img, int out_h, int out_w, float *dst);

/* Load + resize in one call; returns 0, or -1 with the reason in err. */
int tlcl_image_load_resized(const char *path, int out_h, int out_w, float *dst, char *err, size_t err_len);

/* 1 when the file name ends in .jpg, .jpeg, .png, .bmp or .gif (any case):
 * what a directory walk picks up. */
int tlcl_image_name_supported(const char *name);

#endif
