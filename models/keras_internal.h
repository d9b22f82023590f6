/* keras_internal.h — the weights of a Keras file as a flat list of tensors,
 * shared by the file readers (keras_h5.c) and the mapping onto a tlcl model
 * (import_keras.c). */
#ifndef TLCL_KERAS_INTERNAL_H
#define TLCL_KERAS_INTERNAL_H

#include "model.h"

#include <stddef.h>
#include <stdint.h>

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

/* The largest Keras file read (EfficientNet-B7's weights are 260 MB). */
#define KW_MAX_FILE_BYTES ((size_t)8 << 30)

/* Reads an HDF5 file image (in memory) or a file path into w with libhdf5,
 * in this process: only the child of kw_read_guarded calls these. */
tlcl_status kw_read_h5_path(tlcl_keras_weights *w, const char *path, char *err, size_t err_len);
tlcl_status kw_read_h5_image(tlcl_keras_weights *w, const void *image, size_t size, char *err, size_t err_len);

/* What tlcl checks itself before libhdf5 sees a file (keras_guard.c): the
 * superblock found in head (the first head_len bytes of a file of
 * file_size bytes). 0, or -1 with the reason in why. */
int kw_check_superblock(const unsigned char *head, size_t head_len, uint64_t file_size, char *why, size_t len);
/* A file path or an image in memory to read with libhdf5. */
typedef struct kw_h5_source {
    const char *path;
    const void *image;
    size_t size;
} kw_h5_source;
/* Reads src in a child process and takes its weights over the pipe; a
 * child that crashes makes "FILE is corrupt (the HDF5 library failed
 * reading it)" (TLCL_ERR_FORMAT). */
tlcl_status kw_read_guarded(tlcl_keras_weights *w, const kw_h5_source *src, char *err, size_t len);
/* Superblock check, then kw_read_guarded: what tlcl_keras_open uses. */
tlcl_status kw_open_h5_path(tlcl_keras_weights *w, const char *path, char *err, size_t len);
tlcl_status kw_open_h5_image(tlcl_keras_weights *w, const void *image, size_t size, char *err, size_t len);

/* The model.weights.h5 member of the .keras zip z[0..n): *image points into
 * z (stored) or into *owned (deflated; the caller frees it). */
tlcl_status kw_zip_member(const unsigned char *z, size_t n, const char *path, const unsigned char **image,
                          size_t *size, unsigned char **owned, char *err, size_t err_len);
/* Finds model.weights.h5 inside a .keras zip and reads it (guarded). */
tlcl_status kw_read_zip(tlcl_keras_weights *w, const char *path, char *err, size_t err_len);

/* A .keras archive (zip, stored) of model.weights.h5 and metadata.json, for
 * model.load_weights (keras_archive.c); NULL when out of memory or over 4 GB. */
unsigned char *kw_keras_archive(const void *weights, size_t weights_size, const char *metadata, size_t *out_size);

#endif
