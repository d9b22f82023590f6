/* fuzz_keras.c — the part of the Keras weights reader that tlcl owns and
 * runs in process: the .keras zip reader (end-of-central-directory search,
 * central directory walk, local header, stored and deflated members through
 * zlib's inflate with the 1032:1 size bound) and tlcl's own HDF5 superblock
 * check, on the input as a raw HDF5 file and on the zip member.
 * libhdf5 is not called here: it is not hardened against hostile files, and
 * tlcl runs it in a child process (keras_guard.c) whose crash the parent
 * reports; fuzz_keras_import covers that whole path. */
#include "keras_internal.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[256], err[1024];
    kw_check_superblock(data, size, size, why, sizeof why);
    const unsigned char *image = NULL;
    unsigned char *owned = NULL;
    size_t n = 0;
    if (kw_zip_member(data, size, "fuzz.keras", &image, &n, &owned, err, sizeof err) == TLCL_OK)
        kw_check_superblock(image, n, n, why, sizeof why);
    free(owned);
    return 0;
}
