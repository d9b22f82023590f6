/* dataset_split.h — training / validation splits of a dataset, and
 * subsampling, all deterministic from one seed.
 *
 * Every method orders the files the same way first: when shuffle is on, the
 * discovery order permuted by NumPy's RandomState(seed).shuffle (mt19937.h),
 * as keras.utils.image_dataset_from_directory does; otherwise the discovery
 * order. Both sets keep that order. With n_val = int(validation_split * N)
 * (floor, Python's int() of a double product):
 *
 *   keras       training = the first N - n_val files, validation = the last
 *               n_val: Keras's get_training_or_validation_split, bit-exact.
 *   stratified  per class c with n_c files, the last int(validation_split *
 *               n_c) files of that class (floor, in the order above) go to
 *               validation, so every class keeps the same proportion and the
 *               validation set holds at most n_val files.
 *   group       each file maps to a group key (group_pattern, or by default
 *               the file name up to its last '_', the name without its
 *               extension when it has no '_': "S12_0003.jpg" -> "S12").
 *               Keys are compared over the whole data set, every class
 *               together: a sample whose images sit in several class
 *               folders is one group, so it lands on one side only.
 *               Groups are listed by first appearance in discovery order,
 *               permuted by a fresh RandomState(seed).shuffle when shuffle is
 *               on; whole groups are taken from the end of that list into
 *               validation until it holds at least n_val files, never the
 *               last remaining group. No group is ever on both sides.
 *
 * group_pattern is a POSIX extended regular expression; its first capture
 * group is the key. group_on says what it is matched against:
 *   name        the file name alone ("S12_0003.jpg"; the default),
 *   path        the path below the class folder ("sub/S12_0003.jpg"), for
 *               samples kept in sub-directories of each class,
 *   class_path  the whole relative path ("copepod/sub/S12_0003.jpg"): the
 *               class folder is part of what the pattern sees, so a pattern
 *               may put it into the key, and then the images of one sample
 *               in two classes are two groups (asked for, never implied).
 * Without a pattern the key is the default one above (file name only).
 * A file the pattern does not match is an error naming the file.
 *
 * Subsampling (train_fraction, val_fraction) then keeps int(fraction * n)
 * files of a set: the first ones after a fresh RandomState(seed).shuffle of
 * that set, which is what take(int(fraction * n)) on a seeded, shuffled
 * dataset gives. A fraction of 1 keeps the set as it is. */
#ifndef TLCL_DATASET_SPLIT_H
#define TLCL_DATASET_SPLIT_H

#include "dataset_dir.h"

#include <regex.h>
#include <stdint.h>

typedef enum tlcl_split_method { TLCL_SPLIT_KERAS = 0, TLCL_SPLIT_STRATIFIED, TLCL_SPLIT_GROUP } tlcl_split_method;
/* What group_pattern is matched against (see above). */
typedef enum tlcl_group_on { TLCL_GROUP_ON_NAME = 0, TLCL_GROUP_ON_PATH, TLCL_GROUP_ON_CLASS_PATH } tlcl_group_on;

typedef struct tlcl_split_options {
    tlcl_split_method method;
    double validation_split;   /* [0, 1); 0 puts every file in training */
    int64_t seed;              /* 0 .. 2^32-1, or -1: drawn as Keras does (refused with shuffle and a split) */
    int shuffle;               /* default 1 */
    const char *group_pattern; /* group method only; NULL: the default key */
    tlcl_group_on group_on;    /* what group_pattern sees; default TLCL_GROUP_ON_NAME */
    double train_fraction;     /* (0, 1], default 1 */
    double val_fraction;       /* (0, 1], default 1 */
} tlcl_split_options;

typedef struct tlcl_split {
    size_t *train, *val; /* indices into the dataset's samples, in set order */
    size_t n_train, n_val;
    uint32_t seed;       /* the seed used (the drawn one when options said -1) */
} tlcl_split;

tlcl_split_options tlcl_split_options_default(void);

/* "keras", "stratified", "group"; -1 when unknown. */
int tlcl_split_method_parse(const char *name, tlcl_split_method *m);
const char *tlcl_split_method_name(tlcl_split_method m);
/* "name", "path", "class_path"; -1 when unknown. */
int tlcl_group_on_parse(const char *name, tlcl_group_on *g);
const char *tlcl_group_on_name(tlcl_group_on g);

/* Checks the options (ranges, seed rule, a pattern that compiles and has a
 * capture group); TLCL_ERR_ARG with a message otherwise. */
tlcl_status tlcl_split_options_check(const tlcl_split_options *o, char *err, size_t len);

tlcl_status tlcl_split_compute(const tlcl_dataset *ds, const tlcl_split_options *o, tlcl_split *s, char *err,
                               size_t len);
void tlcl_split_free(tlcl_split *s);

/* int(fraction * n): how many files subsampling keeps. */
size_t tlcl_subsample_count(size_t n, double fraction);
/* Subsamples idx[0..*n) in place (see above); fraction >= 1 leaves it as is. */
void tlcl_subsample(size_t *idx, size_t *n, double fraction, uint32_t seed);

/* The group key of a relative path ("class/sub/name.jpg") into dst (see
 * above). re: a compiled pattern matched against the part of path that on
 * selects, or NULL for the default key. -1 when the pattern does not match
 * or the key does not fit. */
int tlcl_group_key(const char *path, tlcl_group_on on, const regex_t *re, char *dst, size_t len);

/* glibc's regcomp copies the operand of '+' once and of {m,n} n times, so
 * stacked or nested repetitions ("[^_]+++...", "((a{50}){50}){50}") take
 * exponential time and memory to compile (found by fuzz_config: 130 '+'
 * hung it). The product of those copy counts over the pattern (outside
 * bracket expressions) must stay within TLCL_REGEX_MAX_COST; ordinary
 * patterns cost a few. Returns 1 when pattern is within it. */
#define TLCL_REGEX_MAX_COST 4096
int tlcl_regex_cost_ok(const char *pattern);

#endif
