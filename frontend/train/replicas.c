/* replicas.c — the trainer's side of data parallelism (train.config.devices):
 * the devices and models of the replicas beyond the first (for cmd_train),
 * and the training step, its counters and a phase's start on one run or on
 * the group of runs (run.h's tlcl_group). Validation, test and saving use
 * replica 0, which holds the same parameters as every other. */
#include "replicas.h"
#include "dist.h"
#include "trainer_internal.h"

#include <stdio.h>
#include <string.h>

/* ---- devices and models ------------------------------------------------------- */

tlcl_status tlcl_replicas_open(tlcl_replicas *r, const tlcl_config *c, tlcl_engine *eng0, char *err, size_t len)
{
    memset(r, 0, sizeof *r);
    const int *dev = c->train.config.devices;
    size_t align = tlcl_cl_device(tlcl_engine_cl(eng0))->mem_base_addr_align_bytes;
    for (int i = 1; i < c->train.config.devices_count; i++, r->n++) {
        tlcl_cl_options o = tlcl_cl_options_default();
        o.device_index = dev[i];
        char why[1024];
        if (tlcl_cl_init(&r->cl[r->n], &o, why, sizeof why) != TLCL_OK) {
            snprintf(err, len, "train.config.devices[%d] (device %d): %s", i, dev[i], why);
            return TLCL_ERR_CL;
        }
        if (tlcl_engine_init(&r->eng[r->n], r->cl[r->n]) != TLCL_OK) {
            snprintf(err, len, "train.config.devices[%d] (device %d): %s", i, dev[i], tlcl_cl_error(r->cl[r->n]));
            tlcl_cl_free(r->cl[r->n]);
            return TLCL_ERR_CL;
        }
        size_t a = tlcl_cl_device(r->cl[r->n])->mem_base_addr_align_bytes;
        align = a > align ? a : align;
    }
    /* one parameter layout on every device: the flat gradient buffers add up element by element */
    tlcl_engine_set_param_align(eng0, align / sizeof(float));
    for (int i = 0; i < r->n; i++)
        tlcl_engine_set_param_align(r->eng[i], align / sizeof(float));
    return TLCL_OK;
}

tlcl_status tlcl_replicas_models(tlcl_replicas *r, const tlcl_model_options *o, uint32_t seed, char *err, size_t len)
{
    for (int i = 0; i < r->n; i++) {
        TLCL_TRY(tlcl_model_build(&r->model[i], o, err, len));
        r->models[i] = &r->model[i];
        r->built = i + 1;
        if (tlcl_model_alloc(&r->model[i], r->eng[i], seed) != TLCL_OK) { /* the weights come from replica 0 */
            snprintf(err, len, "replica %d: %s", i + 1, tlcl_engine_error(r->eng[i]));
            return TLCL_ERR_CL;
        }
    }
    return TLCL_OK;
}

void tlcl_replicas_close(tlcl_replicas *r)
{
    for (int i = 0; i < r->n; i++) {
        if (i < r->built)
            tlcl_model_free(&r->model[i]);
        tlcl_engine_free(r->eng[i]);
        tlcl_cl_free(r->cl[i]);
    }
    memset(r, 0, sizeof *r);
}

void tlcl_replicas_describe(const tlcl_replicas *r, tlcl_engine *eng0, FILE *f)
{
    if (!f || r->n == 0)
        return;
    const tlcl_device_info *d = tlcl_cl_device(tlcl_engine_cl(eng0));
    fprintf(f, "replicas: %d; replica 0: %s / %s", r->n + 1, d->platform_name, d->name);
    for (int i = 0; i < r->n; i++) {
        d = tlcl_cl_device(r->cl[i]);
        fprintf(f, "; replica %d: %s / %s", i + 1, d->platform_name, d->name);
    }
    fprintf(f, "\n");
}

/* ---- the trainer's step on one run or a group -------------------------------------- */

tlcl_status trainer_group_open(trainer *t)
{
    tlcl_train_plan *p = t->p;
    t->replica_runs[0] = t->run;
    if (p->nreplicas < 1)
        return TLCL_OK;
    if (p->nreplicas + 1 > TLCL_GROUP_MAX)
        return trainer_fail(t, TLCL_ERR_ARG, "%s", "train.config.devices: at most 16 devices");
    for (int i = 0; i < p->nreplicas; i++)
        TLCL_TRY(tlcl_run_create(&t->replica_runs[i + 1], p->replicas[i], &p->loss, t->err, t->err_len));
    /* shares by measured speed: timed from the first step, refined over the first epoch */
    long first_epoch = tlcl_loader_batches(p->train);
    tlcl_reducer ranks = tlcl_dist_reducer(); /* the sums across MPI ranks, after the local one */
    tlcl_group_options o = {.sync_batchnorm = p->sync_batchnorm, .balance_steps = (int)(first_epoch > 1 ? first_epoch : 1),
                            .outer = tlcl_dist_size() > 1 ? &ranks : NULL, .bucket_floats = p->bucket_floats};
    t->balance_steps = o.balance_steps;
    return tlcl_group_create(&t->group, t->replica_runs, p->nreplicas + 1, &o, t->err, t->err_len);
}

void trainer_group_close(trainer *t)
{
    tlcl_group_free(t->group);
    t->group = NULL;
    for (int i = 1; i < TLCL_GROUP_MAX; i++) {
        tlcl_run_free(t->replica_runs[i]);
        t->replica_runs[i] = NULL;
    }
}

/* The split of the global batch: after the first step's timing and once
 * the first epoch refined it (when it changed). */
static void say_split(trainer *t, int count)
{
    char line[2048];
    t->group_steps++;
    if (t->group_steps != 1 && t->group_steps != t->balance_steps)
        return;
    if (tlcl_group_describe(t->group, count, line, sizeof line)) {
        if (t->p->progress)
            fprintf(stderr, "\r\033[K");
        trainer_say(t, stdout, "%s", line);
    }
}

tlcl_status trainer_step(trainer *t, const tlcl_run_input *in, const tlcl_tensor *features, const tlcl_step_args *a)
{
    tlcl_run_batch *rb;
    tlcl_status s;
    if (t->group) {
        if ((s = tlcl_group_step(t->group, in, features, &t->p->optimizer, a)) != TLCL_OK)
            snprintf(t->err, t->err_len, "%s", tlcl_group_error(t->group));
        else
            say_split(t, in->count);
        return s;
    }
    s = tlcl_run_load(t->run, in, features, &rb);
    if (s == TLCL_OK)
        s = tlcl_run_step(t->run, rb, &t->p->optimizer, a);
    if (s != TLCL_OK)
        snprintf(t->err, t->err_len, "%s", tlcl_run_error(t->run));
    return s;
}

/* Once a run, after its first counted steps: how many gradient buckets the
 * replicas summed and how many of them overlapped the backward pass. */
static void say_buckets(trainer *t, const tlcl_run_stats *st)
{
    if (t->buckets_said || st->grad_buckets < 1)
        return;
    t->buckets_said = 1;
    trainer_say(t, stdout, "gradient sums across replicas (first counted steps): %ld buckets, %ld (%.0f%%) started "
                "while the backward pass still ran", st->grad_buckets, st->buckets_overlapped,
                100.0 * (double)st->buckets_overlapped / (double)st->grad_buckets);
}

tlcl_status trainer_counters(trainer *t, tlcl_run_stats *st)
{
    tlcl_status s = t->group ? tlcl_group_sync(t->group, st) : tlcl_run_sync(t->run, st);
    if (s != TLCL_OK)
        snprintf(t->err, t->err_len, "%s", t->group ? tlcl_group_error(t->group) : tlcl_run_error(t->run));
    else
        say_buckets(t, st);
    return s;
}

tlcl_status trainer_counters_reset(trainer *t)
{
    tlcl_status s = t->group ? tlcl_group_reset(t->group) : tlcl_run_reset(t->run);
    if (s != TLCL_OK)
        snprintf(t->err, t->err_len, "%s", t->group ? tlcl_group_error(t->group) : tlcl_run_error(t->run));
    return s;
}

tlcl_status trainer_group_phase(trainer *t)
{
    if (!t->group)
        return TLCL_OK;
    const tlcl_fit_phase *ph = &t->p->phases[t->st.phase];
    for (int i = 0; i < t->p->nreplicas; i++)
        tlcl_model_set_trainable(t->p->replicas[i], ph->first_trainable_block, ph->bn_frozen);
    tlcl_status s = tlcl_group_broadcast(t->group);
    if (s != TLCL_OK)
        snprintf(t->err, t->err_len, "%s", tlcl_group_error(t->group));
    return s;
}
