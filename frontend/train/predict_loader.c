/* predict_loader.c — a loader's batches as the run layer's inputs, and the
 * inference pass over a whole loader (trainer.h). Under MPI each rank runs
 * its share of every batch into its rows of the probabilities (the others
 * stay 0); the sums over the ranks then give every rank every row (x + 0
 * is exact) and the counters of the whole loader. */
#include "dist.h"
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
    const tlcl_model *m = tlcl_run_model(r);
    int rows = tlcl_loader_size(l), classes = m->classes, used = 0, first;
    size_t sample_floats = (size_t)m->image_h * (size_t)m->image_w * 3;
    tlcl_run_stats st;
    tlcl_status s = tlcl_run_reset(r);
    float *P = calloc((size_t)(rows ? rows : 1) * classes, sizeof *P);
    int *L = malloc((size_t)(rows ? rows : 1) * sizeof *L);
    double *confusion = calloc((size_t)classes * classes, sizeof *confusion);
    if (!P || !L || !confusion)
        s = TLCL_ERR_OOM;
    tlcl_loader_start(l, 0, 0);
    for (const tlcl_batch *b; s == TLCL_OK && (b = tlcl_loader_next(l));) {
        tlcl_run_input in = tlcl_batch_share(b, 0, sample_floats, &first);
        tlcl_run_batch *rb;
        if (in.count > 0 && (s = tlcl_run_load(r, &in, features, &rb)) == TLCL_OK)
            s = tlcl_run_predict(r, rb, P + (size_t)(used + first) * classes);
        memcpy(L + used, b->labels, (size_t)b->count * sizeof *L);
        used += b->count;
    }
    if (s == TLCL_OK) /* the probabilities arrive with the counters */
        s = tlcl_run_sync(r, &st);
    if (s != TLCL_OK)
        snprintf(err, err_len, "inference failed: %s", s == TLCL_ERR_OOM ? "out of host memory" : tlcl_run_error(r));
    if (s == TLCL_OK) /* the sums over the ranks name their own failure in err */
        s = tlcl_run_stats_sum(&st, confusion, err, err_len);
    if (s == TLCL_OK)
        s = tlcl_dist_sum_floats(P, (size_t)used * classes, err, err_len);
    if (s != TLCL_OK) {
        free(P), free(L), free(confusion);
        return s;
    }
    free(confusion);
    st.confusion = NULL; /* the callers count them from the probabilities */
    if (stats)
        *stats = st;
    *probs = P, *labels = L, *n = used;
    return TLCL_OK;
}

