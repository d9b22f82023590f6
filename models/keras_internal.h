/* keras_internal.h — the weights of a Keras file as a flat list of tensors,
 * shared by the file readers (keras_h5.c) and the mapping onto a tlcl model
 * (import_keras.c). */
#ifndef TLCL_KERAS_INTERNAL_H
#define TLCL_KERAS_INTERNAL_H

#include "model.h"

#include <stddef.h>

typedef struct kw_tensor {
    char layer[128];   /* Keras layer name ("block2a_dwconv") */
    char var[64];      /* variable name when the file has one ("kernel"); "" for Keras 3 (positional) */
    int index;         /* position inside the layer: the §3.1 order */
    int ndims;
    int shape[4];
    size_t count;
    float *data;
    int used;          /* set by the mapping */
} kw_tensor;

struct tlcl_keras_weights {
    char path[1024];
    char format[32];   /* "keras3-h5", "keras3-zip", "legacy-h5" */
    kw_tensor *t;
    int n, cap;
};

/* Appends a tensor (data is taken over); -1 when out of memory. */
int kw_add(tlcl_keras_weights *w, const char *layer, const char *var, int index, int ndims, const int *shape,
           float *data, size_t count);

/* Reads an HDF5 file image (in memory) or a file path into w; format set. */
tlcl_status kw_read_h5_path(tlcl_keras_weights *w, const char *path, char *err, size_t err_len);
tlcl_status kw_read_h5_image(tlcl_keras_weights *w, void *image, size_t size, char *err, size_t err_len);
/* Finds model.weights.h5 inside a .keras zip and reads it. */
tlcl_status kw_read_zip(tlcl_keras_weights *w, const char *path, char *err, size_t err_len);

#endif
