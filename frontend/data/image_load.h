/* image_load.h — image files to model input on the host: decoding (JPEG with
 * libjpeg-turbo as TensorFlow decodes it, jpeg_decode.h; PNG, BMP, GIF, TGA
 * and PNM with stb_image), grey and alpha to RGB, and TensorFlow's
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

/* The largest image decoded by default, in pixels (width x height): Pillow's
 * MAX_IMAGE_PIXELS. An RGB image of that size takes 512 MiB per decoding
 * worker; train.data_dir.max_image_pixels changes it. */
#define TLCL_IMAGE_MAX_PIXELS_DEFAULT 178956970LL
/* The largest image file read (its bytes are held in memory while decoding). */
#define TLCL_IMAGE_MAX_FILE_BYTES ((size_t)1 << 30)

/* Decodes an image held in memory (name: for errors). The dimensions are
 * read from the header first, and an image of more than max_pixels pixels
 * (0: TLCL_IMAGE_MAX_PIXELS_DEFAULT) is refused before decoding. Grey
 * becomes three equal channels and alpha is dropped. Returns 0, or -1 with
 * the reason in err. */
int tlcl_image_decode(const unsigned char *data, size_t len, const char *name, long long max_pixels,
                      tlcl_image *img, char *err, size_t err_len);
/* 0 when a w x h image is within max_pixels (0: the default), else 1 with
 * the message naming the file and the setting to change in err. */
int tlcl_image_size_problem(const char *name, long long w, long long h, long long max_pixels, char *err,
                            size_t err_len);
/* Decodes a file (a regular file only: a FIFO or directory is refused
 * without blocking) with the pixel limit above. */
int tlcl_image_load_limited(const char *path, long long max_pixels, tlcl_image *img, char *err, size_t err_len);
/* tlcl_image_load_limited with the default limit. */
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
