/* predict_loader.c — a loader's batches as the run layer's inputs, and the
 * inference pass over a whole loader (trainer.h). */
#include "trainer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tlcl_run_input tlcl_batch_input(const tlcl_batch *b, int with_weights)
{
    return (tlcl_run_input){.images = b->images, .items = b->items, .labels = b->labels,
                            .weights = with_weights ? b->weights : NULL, .count = b->count};
}

tlcl_status tlcl_predict_loader(tlcl_run *r, tlcl_loader *l, const tlcl_tensor *features, float **probs,
                                int **labels, int *n, tlcl_run_stats *stats, char *err, size_t err_len)
{
    int rows = tlcl_loader_size(l), classes = tlcl_run_model(r)->classes, used = 0;
    tlcl_run_stats st;
    tlcl_status s = tlcl_run_reset(r);
    float *P = malloc((size_t)(rows ? rows : 1) * classes * sizeof *P);
    int *L = malloc((size_t)(rows ? rows : 1) * sizeof *L);
    if (!P || !L)
        s = TLCL_ERR_OOM;
    tlcl_loader_start(l, 0, 0);
    for (const tlcl_batch *b; s == TLCL_OK && (b = tlcl_loader_next(l));) {
        tlcl_run_input in = tlcl_batch_input(b, 0);
        tlcl_run_batch *rb;
        if ((s = tlcl_run_load(r, &in, features, &rb)) == TLCL_OK)
            s = tlcl_run_predict(r, rb, P + (size_t)used * classes);
        memcpy(L + used, b->labels, (size_t)b->count * sizeof *L);
        used += b->count;
    }
    if (s == TLCL_OK) /* the probabilities arrive with the counters */
        s = tlcl_run_sync(r, &st);
    if (s != TLCL_OK) {
        snprintf(err, err_len, "inference failed: %s", s == TLCL_ERR_OOM ? "out of host memory" : tlcl_run_error(r));
        free(P), free(L);
        return s;
    }
    if (stats)
        *stats = st;
    *probs = P, *labels = L, *n = used;
    return TLCL_OK;
}

