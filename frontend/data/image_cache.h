/* image_cache.h — decoded, resized images kept in one memory-mapped file per
 * (file list, image size) so later epochs and later runs skip decoding.
 * Pixels are stored as 8-bit RGB after the bilinear resize (TensorFlow's
 * float resize rounded to the nearest level: at most 0.5/255 away from
 * Keras's float pipeline). Worker threads fill it once; images that cannot
 * be decoded are marked and reported. */
#ifndef TLCL_IMAGE_CACHE_H
#define TLCL_IMAGE_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct tlcl_image_cache {
    int n, h, w;
    int crop_to_aspect;
    long long max_pixels;      /* larger images are refused (0: TLCL_IMAGE_MAX_PIXELS_DEFAULT); set after open */
    unsigned char *map;        /* header, status bytes, pixels */
    size_t map_len;
    unsigned char *status;     /* per image: 0 not decoded, 1 ok, 2 unreadable */
    unsigned char *pixels;     /* n * h * w * 3 */
    const char *const *files;  /* borrowed */
    char path[1024];
} tlcl_image_cache;

/* Opens (or creates) the cache for files[0..n) at size h x w inside dir.
 * The key covers the paths, their sizes and modification times, the image
 * size and the crop flag, so a changed file gets a new cache. */
int tlcl_image_cache_open(tlcl_image_cache *c, const char *dir, const char *const *files, int n, int h, int w,
                          int crop_to_aspect, char *err, size_t err_len);
/* Decodes every image not yet cached with `threads` workers; prints
 * progress to stderr when progress != 0. Returns the number of unreadable
 * images (their status is 2); messages for them go to warn(ctx, msg). */
int tlcl_image_cache_fill(tlcl_image_cache *c, int threads, int progress,
                          void (*warn)(void *ctx, const char *msg), void *ctx);
/* Image i as floats 0..255 into dst (h * w * 3). */
void tlcl_image_cache_get(const tlcl_image_cache *c, int i, float *dst);
void tlcl_image_cache_close(tlcl_image_cache *c);

#endif
