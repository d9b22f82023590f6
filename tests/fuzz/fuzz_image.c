/* fuzz_image.c — the image loader from memory (tlcl_image_decode, what
 * tlcl_image_load calls after reading the file): JPEG through libjpeg-turbo
 * (jpeg_decode.c: the pixel limit from the header, the scan limit, errors
 * through longjmp), the other formats through tlcl's PNG and PNM checks,
 * the header probe and the pixel limit, then stb_image's decoders (PNG,
 * BMP, GIF, TGA, PNM; image_load.c compiles the others out, so PSD, HDR...
 * are refused as unknown, which is what the target checks for them),
 * grey/alpha to RGB, then the bilinear resize and the aspect crop path of
 * the cache (tlcl_image_resize at two sizes). The pixel limit is 1 M pixels
 * here instead of 179 M: a decode stays far within libFuzzer's memory limit,
 * and the big allocations do not slow the search (861 exec/s at 4 M, 2,273
 * at 1 M); the limit's logic is the same at any value. libjpeg-turbo is
 * Debian's shared library, not instrumented: libFuzzer does not see its
 * branches and ASan does not check its own accesses (OSS-Fuzz fuzzes it);
 * what is fuzzed here is tlcl's use of it. */
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
