/* history.h — the training history, as Keras's History callback keeps it:
 * an ordered map from each log key ("loss", "accuracy", "val_loss", ...,
 * "learning_rate") to its value at every epoch, plus the 0-based epoch
 * indices. Keys keep the order in which they first appeared; a key that is
 * missing at some epoch simply has no value there (Keras's lists are then
 * shorter; the CSV shows NA).
 *
 * history_write picks the format from the file name's extension:
 * - .json  {"loss": [0.5, ...], ...}, as json.dumps(history.history);
 * - .csv   CSVLogger's layout: "epoch" then the keys sorted, \r\n line
 *          endings, NA for a missing value;
 * - .pkl   a Python pickle (protocol 2) of the dict of lists of floats that
 *          pickle.load reads, byte for byte what
 *          pickletools.optimize(pickle.dumps(d, protocol=2)) gives.
 * Floats are written as Python's repr() (shortest round-trip, see
 * textout.h), so the text files equal what Python writes for the same
 * doubles. */
#ifndef TLCL_HISTORY_H
#define TLCL_HISTORY_H

#include <stddef.h>

typedef struct history_key {
    char *name;
    double *values;         /* [epochs], meaningful where present[e] */
    unsigned char *present; /* [epochs] */
} history_key;

typedef struct history {
    int epochs, epoch_cap;
    int *epoch; /* [epochs] 0-based epoch indices, in the order recorded */
    int n_keys, key_cap;
    history_key *keys; /* in order of first appearance */
} history;

void history_init(history *h);
void history_free(history *h);

/* Records one epoch: names[i] -> values[i] for i < n. Returns 0, or -1 when
 * out of memory. */
int history_record(history *h, int epoch, const char *const *names, const double *values, int n);

/* The key named name, or NULL. */
const history_key *history_find(const history *h, const char *name);

/* Copies the values recorded for name into out (at most max) and returns
 * how many there are, in epoch order; 0 when the key is absent. */
int history_values(const history *h, const char *name, double *out, int max);

/* Writes h to path in the format its extension names (.json, .csv, .pkl).
 * Returns 0, or -1 with a message in err (unknown extension, I/O). */
int history_write(const history *h, const char *path, char *err, size_t err_len);

int history_write_json(const history *h, const char *path, char *err, size_t err_len);
int history_write_csv(const history *h, const char *path, char *err, size_t err_len);
int history_write_pickle(const history *h, const char *path, char *err, size_t err_len);

#endif
