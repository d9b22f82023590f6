/* train_dist.c — the trainer across MPI ranks (frontend/dist): each rank
 * trains on its contiguous share of every global batch, the gradients are
 * summed by the run layer's reducer, and what the ranks count (losses,
 * hits, confusion counts, BatchNorm moving statistics, frozen-base
 * features) is summed here at the points every rank reaches, so that the
 * metrics and the weights are those of one process. With one rank every
 * function is the single-process path. */
#include "dist.h"
#include "trainer_internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

tlcl_run_input tlcl_batch_share(const tlcl_batch *b, int with_weights, size_t sample_floats, int *first)
{
    int lo, hi;
    tlcl_dist_slice(b->count, &lo, &hi);
    tlcl_run_input in = tlcl_batch_input(b, with_weights);
    in.images = in.images ? in.images + (size_t)lo * sample_floats : NULL;
    in.items = in.items ? in.items + lo : NULL;
    in.labels = in.labels ? in.labels + lo : NULL;
    in.weights = in.weights ? in.weights + lo : NULL;
    in.count = hi - lo;
    if (first)
        *first = lo;
    return in;
}

tlcl_status tlcl_run_stats_sum(tlcl_run_stats *st, double *confusion, char *err, size_t err_len)
{
    size_t cc = (size_t)st->classes * (size_t)st->classes;
    if (confusion != st->confusion)
        memcpy(confusion, st->confusion, cc * sizeof *confusion);
    st->confusion = confusion;
    if (tlcl_dist_size() == 1)
        return TLCL_OK;
    double sums[4] = {st->loss_sum, st->samples, st->hits, st->weight};
    TLCL_TRY(tlcl_dist_sum_doubles(sums, 4, err, err_len));
    TLCL_TRY(tlcl_dist_sum_doubles(confusion, cc, err, err_len));
    st->loss_sum = sums[0], st->samples = sums[1], st->hits = sums[2], st->weight = sums[3];
    long bad = tlcl_dist_min(st->nonfinite_step < 0 ? LONG_MAX : st->nonfinite_step); /* the first, on any rank */
    st->nonfinite_step = bad == LONG_MAX ? -1 : bad;
    return TLCL_OK;
}

/* One device per rank (no local group): the run sums its gradients over the
 * ranks and, with sync_batchnorm, the engine its batch-norm sums. With local
 * replicas the group does both, the ranks' reducer as its outer one. */
void trainer_dist_single_device(trainer *t)
{
    tlcl_reducer ranks = tlcl_dist_reducer();
    tlcl_run_set_reducer(t->run, &ranks);
    tlcl_run_set_bucket_floats(t->run, t->p->bucket_floats);
    if (t->p->sync_batchnorm)
        tlcl_engine_set_reducer(t->p->eng, &ranks);
}

/* A rank whose share of a batch would be empty could not take part in its
 * step: such runs are refused before the first one, naming the batch. */
tlcl_status trainer_dist_check(trainer *t)
{
    int ranks = tlcl_dist_size();
    const tlcl_loader *l = t->p->train;
    if (ranks == 1 || !l)
        return TLCL_OK;
    int last = tlcl_loader_batches(l) - 1, n = tlcl_loader_batch_count(l, last);
    if (n >= ranks)
        return TLCL_OK;
    snprintf(t->err, t->err_len,
             "the last training batch of an epoch has %d sample(s) (%d images, batch_size %d), fewer than the %d MPI "
             "ranks: every rank needs a share of every batch; choose a train.config.batch_size whose remainder is 0 "
             "or at least %d, or run with fewer ranks",
             n, tlcl_loader_size(l), tlcl_loader_batch_count(l, 0), ranks, ranks);
    return TLCL_ERR_ARG;
}

/* The moving statistics (params entries with is_state) averaged over the
 * ranks, as MirroredStrategy aggregates moving variables by MEAN. Their
 * update is linear in the batch statistics, so averaging at the points
 * where they are read (validation, checkpoints, backups) gives the values
 * averaging after every step would. Summed in double, so values that are
 * already equal stay exactly equal. */
tlcl_status trainer_dist_average_state(trainer *t)
{
    int ranks = tlcl_dist_size();
    tlcl_params *pp = &t->p->model->params;
    if (ranks == 1)
        return TLCL_OK;
    size_t n = 0, at = 0;
    for (int i = 0; i < pp->count; i++)
        n += pp->entries[i].is_state ? pp->entries[i].count : 0;
    if (n == 0)
        return TLCL_OK;
    float *f = malloc(n * sizeof *f);
    double *d = malloc(n * sizeof *d);
    tlcl_cl *cl = tlcl_engine_cl(t->p->eng);
    tlcl_status s = f && d ? TLCL_OK : TLCL_ERR_OOM;
    for (int i = 0; s == TLCL_OK && i < pp->count; at += pp->entries[i].is_state ? pp->entries[i].count : 0, i++)
        if (pp->entries[i].is_state)
            s = tlcl_cl_read(cl, pp->values, pp->entries[i].offset * sizeof(float),
                             pp->entries[i].count * sizeof(float), f + at, "moving statistics");
    for (size_t k = 0; s == TLCL_OK && k < n; k++)
        d[k] = f[k];
    if (s == TLCL_OK)
        s = tlcl_dist_sum_doubles(d, n, t->err, t->err_len);
    for (size_t k = 0; s == TLCL_OK && k < n; k++)
        f[k] = (float)(d[k] / ranks);
    at = 0;
    for (int i = 0; s == TLCL_OK && i < pp->count; at += pp->entries[i].is_state ? pp->entries[i].count : 0, i++)
        if (pp->entries[i].is_state)
            s = tlcl_cl_write(cl, pp->values, pp->entries[i].offset * sizeof(float),
                              pp->entries[i].count * sizeof(float), f + at, "moving statistics");
    free(f), free(d);
    if (s == TLCL_ERR_OOM)
        snprintf(t->err, t->err_len, "out of host memory averaging the moving statistics over the ranks");
    return s;
}

/* The epoch's totals carried by a backup are global (summed over the
 * ranks): rank 0 alone keeps them, so the next sum counts them once. */
void trainer_dist_carry_on_root(trainer *t)
{
    if (tlcl_dist_is_root())
        return;
    t->st.loss_sum = t->st.seen = t->st.acc_hit = t->st.acc_w = 0;
    memset(t->confusion_carry, 0, (size_t)t->p->classes * (size_t)t->p->classes * sizeof *t->confusion_carry);
}

/* Rank 0 resumes first (it may move an unusable backup aside, or record
 * the run's start); the others then read the same backup. A backup holds
 * the global state (weights, moments, the position in the global batch
 * order, the summed totals), which does not depend on the number of ranks:
 * a backup of N ranks resumes with any other number. */
tlcl_status trainer_dist_resume(trainer *t)
{
    tlcl_dist_root_first_begin();
    tlcl_status s = trainer_resume(t);
    if (s != TLCL_OK)
        return s; /* the failing rank ends the job (tlcl_dist_finish) */
    tlcl_dist_root_first_end();
    long where[4] = {t->st.phase, t->st.epoch, t->st.batch, t->st.step};
    int same = 1;
    for (int i = 0; i < 4; i++)
        same &= tlcl_dist_same(where[i]);
    if (!same) {
        snprintf(t->err, t->err_len,
                 "rank %d resumed at phase %d, epoch %d, batch %d, but another rank elsewhere: the ranks do not "
                 "see the same backup folder (%s); give every rank the same file system",
                 tlcl_dist_rank(), t->st.phase + 1, t->st.epoch + 1, t->st.batch, t->p->cb.backup_dir);
        return TLCL_ERR_FORMAT;
    }
    trainer_dist_carry_on_root(t);
    return TLCL_OK;
}

/* A device table each rank filled at its own rows (the others zero):
 * summed over the ranks, every rank holds every row (x + 0 is exact). */
tlcl_status trainer_dist_sum_table(trainer *t, tlcl_tensor *table)
{
    if (tlcl_dist_size() == 1)
        return TLCL_OK;
    size_t n = tlcl_tensor_count(table);
    float *host = malloc(n * sizeof *host);
    tlcl_status s = host ? tlcl_tensor_download(t->p->eng, table, host) : TLCL_ERR_OOM;
    if (s == TLCL_OK)
        s = tlcl_dist_sum_floats(host, n, t->err, t->err_len);
    if (s == TLCL_OK)
        s = tlcl_tensor_upload(t->p->eng, table, host);
    free(host);
    if (s == TLCL_ERR_OOM)
        snprintf(t->err, t->err_len, "out of host memory gathering the base features of the ranks");
    return s;
}
