/* dataset_dir.h — an image dataset found in a directory tree, exactly as
 * keras.utils.image_dataset_from_directory indexes one (labels="inferred"):
 *
 *   - classes are the sub-directories of the root not starting with '.',
 *     sorted by byte value (case-sensitive: "B" < "a"), or an explicit
 *     subset of them in the caller's order; label = position in that list;
 *   - each class directory is walked recursively; the directories found are
 *     visited in the byte order of their full paths (so "a-b" comes before
 *     "a/b", as Python's sorted() over os.walk's roots does) and the file
 *     names within one directory in byte order; dot-directories below the
 *     class level are walked, as Keras does;
 *   - a file is kept when its lower-cased name ends with one of Keras's
 *     extensions (.bmp .gif .jpeg .jpg .png) or, unless keras_only, one of
 *     tlcl's (.tga .pnm .ppm .pgm, formats tlcl's decoder reads);
 *   - files directly in the root are ignored; symbolic links to directories
 *     are not followed (Keras's follow_links=False) unless follow_links
 *     (a link back to one of its own parent directories is then an error,
 *     where os.walk would go round until the path fails to resolve).
 *
 * Nothing is decoded here: a dataset is a list of relative paths and labels. */
#ifndef TLCL_DATASET_DIR_H
#define TLCL_DATASET_DIR_H

#include "tlcl_cl.h" /* tlcl_status */

#include <stddef.h>

typedef struct tlcl_sample {
    char *path; /* relative to the root, '/'-separated: "class/sub/name.jpg" */
    int label;  /* index into class_names */
} tlcl_sample;

typedef struct tlcl_dataset {
    char *root;          /* the directory as given */
    int num_classes;
    char **class_names;  /* num_classes names, label order */
    size_t count;
    tlcl_sample *samples; /* discovery order: class by class, walk order within */
} tlcl_dataset;

typedef struct tlcl_dataset_options {
    const char *const *class_names; /* NULL: every sub-directory; else a subset, order kept */
    int num_class_names;
    int keras_only;   /* accept only Keras's five extensions */
    int follow_links; /* descend into symbolic links to directories */
} tlcl_dataset_options;

tlcl_dataset_options tlcl_dataset_options_default(void);

/* Indexes root. Errors (TLCL_ERR_IO / TLCL_ERR_ARG, message in err): the
 * directory is missing or unreadable, fewer than two classes, an explicit
 * class name that is not a sub-directory (or given twice), no image files. */
tlcl_status tlcl_dataset_open(tlcl_dataset *ds, const char *root, const tlcl_dataset_options *o, char *err,
                              size_t len);
void tlcl_dataset_free(tlcl_dataset *ds);

/* 1 when name (a file name or path) has an accepted image extension. */
int tlcl_dataset_is_image(const char *name, int keras_only);

/* Joins root and a sample's relative path into dst; -1 when it does not fit. */
int tlcl_dataset_full_path(const tlcl_dataset *ds, const tlcl_sample *s, char *dst, size_t len);

/* Checks that two datasets (say training and test directories) have the same
 * class names in the same order, since a label is a position in that list.
 * On a difference returns TLCL_ERR_ARG with a message naming the classes
 * found only in one of them, or the order of both when only the order
 * differs. a_what / b_what name the datasets in the message. */
tlcl_status tlcl_dataset_check_same_classes(const tlcl_dataset *a, const char *a_what, const tlcl_dataset *b,
                                            const char *b_what, char *err, size_t len);

#endif
