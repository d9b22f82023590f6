/* fuzz_keras_import.c — the whole Keras import as `tlcl import` runs it
 * (tlcl_keras_open on a file: magic, zip or HDF5, superblock check, then
 * libhdf5 in a child process streaming the tensors back). The property
 * checked is the parent's: whatever libhdf5 does in the child (crash, hang,
 * garbage), tlcl_keras_open returns a status and a message. Leaks and
 * crashes inside the child are libhdf5's and are not reported (the child
 * ends with _exit). Each execution forks, so this target runs at hundreds,
 * not thousands, of executions a second. */
#include "fuzz_file.h"
#include "keras_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[2048];
    tlcl_keras_weights *w = NULL;
    const char *path = fuzz_file(data, size, ".weights.h5");
    if (tlcl_keras_open(&w, path, err, sizeof err) == TLCL_OK)
        tlcl_keras_classes(w);
    tlcl_keras_close(w);
    return 0;
}
