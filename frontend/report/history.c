/* history.c — the per-epoch history and its JSON, CSV and pickle files. */
#include "history.h"
#include "textout.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void history_init(history *h) { memset(h, 0, sizeof *h); }

void history_free(history *h)
{
    for (int k = 0; k < h->n_keys; k++)
        free(h->keys[k].name), free(h->keys[k].values), free(h->keys[k].present);
    free(h->keys), free(h->epoch);
    history_init(h);
}

const history_key *history_find(const history *h, const char *name)
{
    for (int k = 0; k < h->n_keys; k++)
        if (strcmp(h->keys[k].name, name) == 0)
            return &h->keys[k];
    return NULL;
}

/* Grows every per-epoch array to cap entries. */
static int grow_epochs(history *h, int cap)
{
    int *e = realloc(h->epoch, (size_t)cap * sizeof *e);
    if (!e)
        return -1;
    h->epoch = e;
    for (int k = 0; k < h->n_keys; k++) {
        double *v = realloc(h->keys[k].values, (size_t)cap * sizeof *v);
        if (v)
            h->keys[k].values = v;
        unsigned char *p = realloc(h->keys[k].present, (size_t)cap);
        if (p)
            h->keys[k].present = p;
        if (!v || !p)
            return -1;
    }
    h->epoch_cap = cap;
    return 0;
}

/* The key named name, added (absent at every earlier epoch) if new. */
static history_key *key_get(history *h, const char *name)
{
    history_key *k = (history_key *)history_find(h, name);
    if (k)
        return k;
    if (h->n_keys == h->key_cap) {
        int cap = h->key_cap ? 2 * h->key_cap : 8;
        history_key *keys = realloc(h->keys, (size_t)cap * sizeof *keys);
        if (!keys)
            return NULL;
        h->keys = keys, h->key_cap = cap;
    }
    k = &h->keys[h->n_keys];
    k->name = strdup(name);
    k->values = calloc((size_t)(h->epoch_cap ? h->epoch_cap : 1), sizeof *k->values);
    k->present = calloc((size_t)(h->epoch_cap ? h->epoch_cap : 1), 1);
    if (!k->name || !k->values || !k->present) {
        free(k->name), free(k->values), free(k->present);
        return NULL;
    }
    h->n_keys++;
    return k;
}

int history_record(history *h, int epoch, const char *const *names, const double *values, int n)
{
    if (h->epochs == h->epoch_cap && grow_epochs(h, h->epoch_cap ? 2 * h->epoch_cap : 16))
        return -1;
    int e = h->epochs;
    h->epoch[e] = epoch;
    for (int k = 0; k < h->n_keys; k++)
        h->keys[k].present[e] = 0;
    for (int i = 0; i < n; i++) {
        history_key *k = key_get(h, names[i]);
        if (!k)
            return -1;
        k->values[e] = values[i];
        k->present[e] = 1;
    }
    h->epochs++;
    return 0;
}

int history_values(const history *h, const char *name, double *out, int max)
{
    const history_key *k = history_find(h, name);
    int n = 0;
    for (int e = 0; k && e < h->epochs; e++)
        if (k->present[e]) {
            if (n < max)
                out[n] = k->values[e];
            n++;
        }
    return n;
}

/* ---- JSON --------------------------------------------------------------- */

int history_write_json(const history *h, const char *path, char *err, size_t err_len)
{
    textout_file t;
    if (textout_open(&t, path, err, err_len))
        return -1;
    char b[TEXTOUT_FLOAT_MAX];
    fputc('{', t.f);
    for (int k = 0; k < h->n_keys; k++) {
        const history_key *key = &h->keys[k];
        if (k)
            fputs(", ", t.f);
        textout_json_string(t.f, key->name);
        fputs(": [", t.f);
        for (int e = 0, first = 1; e < h->epochs; e++)
            if (key->present[e]) {
                fprintf(t.f, "%s%s", first ? "" : ", ", textout_jsonfloat(key->values[e], b));
                first = 0;
            }
        fputc(']', t.f);
    }
    fputc('}', t.f);
    return textout_commit(&t, 1, err, err_len);
}

/* ---- CSV ---------------------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
    return strcmp((*(const history_key *const *)a)->name, (*(const history_key *const *)b)->name);
}

int history_write_csv(const history *h, const char *path, char *err, size_t err_len)
{
    const history_key **sorted = malloc((size_t)(h->n_keys ? h->n_keys : 1) * sizeof *sorted);
    if (!sorted) {
        snprintf(err, err_len, "out of memory writing %s", path);
        return -1;
    }
    for (int k = 0; k < h->n_keys; k++)
        sorted[k] = &h->keys[k];
    qsort(sorted, (size_t)h->n_keys, sizeof *sorted, by_name); /* byte order, as Python's sorted() */
    textout_file t;
    if (textout_open(&t, path, err, err_len)) {
        free(sorted);
        return -1;
    }
    fputs("epoch", t.f);
    for (int k = 0; k < h->n_keys; k++) {
        fputc(',', t.f);
        textout_csv_field(t.f, sorted[k]->name, ',');
    }
    fputs("\r\n", t.f);
    char b[TEXTOUT_FLOAT_MAX];
    for (int e = 0; e < h->epochs; e++) {
        fprintf(t.f, "%d", h->epoch[e]);
        for (int k = 0; k < h->n_keys; k++)
            fprintf(t.f, ",%s", sorted[k]->present[e] ? textout_pyfloat(sorted[k]->values[e], b) : "NA");
        fputs("\r\n", t.f);
    }
    free(sorted);
    return textout_commit(&t, 1, err, err_len);
}

/* ---- pickle ------------------------------------------------------------- */

/* Protocol 2 opcodes (Python's Lib/pickle.py names). */
enum {
    PK_PROTO = 0x80, PK_EMPTY_DICT = '}', PK_EMPTY_LIST = ']', PK_MARK = '(', PK_BINUNICODE = 'X',
    PK_BINFLOAT = 'G', PK_APPEND = 'a', PK_APPENDS = 'e', PK_SETITEM = 's', PK_SETITEMS = 'u', PK_STOP = '.',
};
/* Python's pickler groups container items in batches of this size. */
#define PK_BATCH 1000

static void pk_unicode(FILE *f, const char *s)
{
    uint32_t n = (uint32_t)strlen(s);
    unsigned char len[4] = {(unsigned char)n, (unsigned char)(n >> 8), (unsigned char)(n >> 16),
                            (unsigned char)(n >> 24)};
    fputc(PK_BINUNICODE, f);
    fwrite(len, 1, 4, f);
    fwrite(s, 1, n, f);
}

static void pk_float(FILE *f, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    fputc(PK_BINFLOAT, f);
    for (int i = 7; i >= 0; i--) /* big-endian IEEE 754 */
        fputc((int)((bits >> (8 * i)) & 0xff), f);
}

/* The list of key's values, appended as Python's _batch_appends does:
 * MARK items APPENDS per batch of several, item APPEND for a batch of one. */
static void pk_list(FILE *f, const history *h, const history_key *key)
{
    fputc(PK_EMPTY_LIST, f);
    int e = 0;
    for (;;) {
        int idx[PK_BATCH], n = 0;
        for (; e < h->epochs && n < PK_BATCH; e++)
            if (key->present[e])
                idx[n++] = e;
        if (n > 1)
            fputc(PK_MARK, f);
        for (int i = 0; i < n; i++)
            pk_float(f, key->values[idx[i]]);
        if (n)
            fputc(n > 1 ? PK_APPENDS : PK_APPEND, f);
        if (n < PK_BATCH)
            return;
    }
}

int history_write_pickle(const history *h, const char *path, char *err, size_t err_len)
{
    textout_file t;
    if (textout_open(&t, path, err, err_len))
        return -1;
    fputc(PK_PROTO, t.f);
    fputc(2, t.f);
    fputc(PK_EMPTY_DICT, t.f);
    for (int start = 0; start < h->n_keys; start += PK_BATCH) { /* _batch_setitems */
        int n = h->n_keys - start < PK_BATCH ? h->n_keys - start : PK_BATCH;
        if (n > 1)
            fputc(PK_MARK, t.f);
        for (int k = start; k < start + n; k++) {
            pk_unicode(t.f, h->keys[k].name);
            pk_list(t.f, h, &h->keys[k]);
        }
        fputc(n > 1 ? PK_SETITEMS : PK_SETITEM, t.f);
    }
    fputc(PK_STOP, t.f);
    return textout_commit(&t, 1, err, err_len);
}

/* ---- by extension ------------------------------------------------------- */

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int history_write(const history *h, const char *path, char *err, size_t err_len)
{
    if (ends_with(path, ".json"))
        return history_write_json(h, path, err, err_len);
    if (ends_with(path, ".csv"))
        return history_write_csv(h, path, err, err_len);
    if (ends_with(path, ".pkl") || ends_with(path, ".pickle"))
        return history_write_pickle(h, path, err, err_len);
    snprintf(err, err_len, "%s: unknown history format (use .json, .csv or .pkl)", path);
    return -1;
}
