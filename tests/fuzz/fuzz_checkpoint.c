/* fuzz_checkpoint.c — the checkpoint reader: the safetensors length and
 * JSON header, the full header validation (dtypes, shapes, offsets tiling
 * the file, unique names), format_version, then what is rebuilt from the
 * metadata: the model options (architecture, sizes, head, class_names
 * checked against the classes) and the class names. Loading the tensors
 * into a model is not covered: it needs every tensor of a real model
 * (megabytes), which seeds of a few KB cannot hold; its offsets and sizes
 * are the ones validated here. */
#include "fuzz_file.h"
#include "model.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024];
    tlcl_checkpoint *c = NULL;
    const char *path = fuzz_file(data, size, ".safetensors");
    if (tlcl_checkpoint_open(&c, path, err, sizeof err) != TLCL_OK)
        return 0;
    tlcl_model_options o;
    tlcl_checkpoint_options(c, &o, err, sizeof err);
    char **names = NULL;
    int n = tlcl_checkpoint_class_names(c, &names);
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    tlcl_checkpoint_meta(c, "training_state");
    tlcl_checkpoint_close(c);
    return 0;
}
