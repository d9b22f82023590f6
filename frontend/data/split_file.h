/* split_file.h — a split kept on disk, so that a rerun trains and validates
 * on the same files (and a hand-edited list can be used as is).
 *
 * The file is JSON:
 *   {"format": "tlcl-split", "version": 1, "method": "keras", "seed": 42,
 *    "validation_split": 0.2, "shuffle": true, "group_pattern": null,
 *    "group_on": "name", "train_fraction": 1, "val_fraction": 1, "class_names": [...],
 *    "num_files": N, "fingerprint": "<FNV-1a 64 of the class names and every
 *    discovered path and label>",
 *    "training": [{"path": "cat/a.jpg", "label": 0}, ...], "validation": [...]}
 * written to a temporary file and renamed, so a reader never sees half of it.
 *
 * tlcl_split_resolve reuses the file when its parameters and fingerprint
 * match the current run; a seed of -1 in the options (none given) matches
 * any stored seed, so the first drawn seed sticks. Otherwise:
 *   - parameters differ: recompute and rewrite (the note says which);
 *   - the directory changed (files added, removed or relabelled): recompute
 *     and rewrite, the note says so; with strict, refuse (TLCL_ERR_ARG), since
 *     a silently different validation set makes runs incomparable;
 *   - the file is not a tlcl split, or lists a file the directory lacks: a
 *     TLCL_ERR_FORMAT error; tlcl never overwrites what it cannot read. */
#ifndef TLCL_SPLIT_FILE_H
#define TLCL_SPLIT_FILE_H

#include "dataset_split.h"

typedef enum tlcl_split_outcome {
    TLCL_SPLIT_CREATED = 0,    /* no file: computed and written */
    TLCL_SPLIT_REUSED,         /* read from the file */
    TLCL_SPLIT_PARAMS_CHANGED, /* recomputed and rewritten: other parameters */
    TLCL_SPLIT_DIR_CHANGED,    /* recomputed and rewritten: the directory changed */
} tlcl_split_outcome;

/* FNV-1a 64 over the class names and each sample's path and label. */
uint64_t tlcl_dataset_fingerprint(const tlcl_dataset *ds);

tlcl_status tlcl_split_file_write(const char *path, const tlcl_dataset *ds, const tlcl_split_options *o,
                                  const tlcl_split *s, char *err, size_t len);

/* Reads path into s when it matches ds and o; *outcome says REUSED, or
 * PARAMS_CHANGED / DIR_CHANGED (s left empty, the reason in err, status OK). */
tlcl_status tlcl_split_file_read(const char *path, const tlcl_dataset *ds, const tlcl_split_options *o,
                                 tlcl_split *s, tlcl_split_outcome *outcome, char *err, size_t len);

/* Reuses or (re)computes and writes the split at path (see above); note gets
 * one line for the user about what happened. */
tlcl_status tlcl_split_resolve(const char *path, const tlcl_dataset *ds, const tlcl_split_options *o, int strict,
                               tlcl_split *s, tlcl_split_outcome *outcome, char *note, size_t note_len, char *err,
                               size_t len);

#endif
