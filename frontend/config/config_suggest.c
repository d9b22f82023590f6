/* config_suggest.c — "did you mean": the known key closest to an unknown
 * one, by edit distance. Siblings in the same section come first; failing
 * that, a key of the same name elsewhere (a key put in the wrong section,
 * e.g. `learning_rate` at the top instead of under `optimizer`). The same
 * distance serves enum values and the command line's options
 * (tlcl_closest_name). */
#include "config_schema.h"

#include <string.h>

static size_t edit_distance(const char *a, size_t na, const char *b, size_t nb)
{
    size_t row[TLCL_CFG_NAME_MAX + 1];
    if (na > TLCL_CFG_NAME_MAX || nb > TLCL_CFG_NAME_MAX)
        return (size_t)-1;
    for (size_t j = 0; j <= nb; j++)
        row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}

/* The largest distance still worth suggesting for a word of len bytes. */
static size_t close_enough(size_t len)
{
    return len / 3 > 2 ? len / 3 : 2;
}

const char *tlcl_closest_name(const char *word, const char *const *names, size_t n)
{
    size_t len = strlen(word), best = close_enough(len) + 1;
    const char *found = NULL;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(word, len, names[i], strlen(names[i]));
        if (d < best)
            best = d, found = names[i];
    }
    return found;
}

/* The child segment of `key` right under `parent` (length in *len), or NULL
 * when key is not below parent. */
static const char *child_of(const char *key, const char *parent, size_t plen, size_t *len)
{
    const char *s = key;
    if (plen) {
        if (strncmp(key, parent, plen) != 0 || key[plen] != '.')
            return NULL;
        s = key + plen + 1;
    }
    const char *dot = strchr(s, '.');
    *len = dot ? (size_t)(dot - s) : strlen(s);
    return s;
}

const char *cfg_suggest(const cfg_key *table, size_t n, const char *full, int *moved)
{
    static char out[TLCL_CFG_PATH_MAX]; /* only used to format one message */
    const char *dot = strrchr(full, '.');
    const char *name = dot ? dot + 1 : full;
    size_t plen = dot ? (size_t)(dot - full) : 0, nlen = strlen(name);
    size_t best = close_enough(nlen) + 1;
    *moved = 0;
    out[0] = 0;
    for (size_t i = 0; i < n; i++) {
        size_t clen;
        const char *child = child_of(table[i].key, full, plen, &clen);
        if (!child)
            continue;
        size_t d = edit_distance(name, nlen, child, clen);
        if (d < best && clen < sizeof out) {
            best = d;
            memcpy(out, child, clen);
            out[clen] = 0;
        }
    }
    if (out[0])
        return out;
    for (size_t i = 0; i < n; i++) { /* same name, another section */
        const char *last = strrchr(table[i].key, '.');
        last = last ? last + 1 : table[i].key;
        if (edit_distance(name, nlen, last, strlen(last)) <= 1 && strlen(table[i].key) < sizeof out) {
            strcpy(out, table[i].key);
            *moved = 1;
            return out;
        }
    }
    return NULL;
}
