/* logs.c — Keras's logs dict of one epoch and the history of a run (trainer.h). */
#include "trainer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tlcl_logs_set(tlcl_logs *l, const char *key, double value)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->key[i], key) == 0) {
            l->value[i] = value;
            return;
        }
    if (l->n < TLCL_LOGS_MAX) {
        snprintf(l->key[l->n], sizeof l->key[0], "%s", key);
        l->value[l->n++] = value;
    }
}

int tlcl_logs_get(const tlcl_logs *l, const char *key, double *value)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->key[i], key) == 0) {
            *value = l->value[i];
            return 1;
        }
    return 0;
}

int tlcl_history_add(tlcl_history *h, const tlcl_logs *l, int epoch)
{
    if (h->n == h->cap) {
        int cap = h->cap ? 2 * h->cap : 16;
        tlcl_logs *e = realloc(h->epochs, (size_t)cap * sizeof *e);
        int *i = e ? realloc(h->epoch_index, (size_t)cap * sizeof *i) : NULL;
        if (e)
            h->epochs = e;
        if (!e || !i)
            return -1;
        h->epoch_index = i;
        h->cap = cap;
    }
    h->epochs[h->n] = *l;
    h->epoch_index[h->n++] = epoch;
    return 0;
}

void tlcl_history_free(tlcl_history *h)
{
    free(h->epochs);
    free(h->epoch_index);
    memset(h, 0, sizeof *h);
}

