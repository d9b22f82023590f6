/* run_group.c — several model replicas in one process (run.h): the
 * in-process reducer, the split of a global batch, one thread per replica,
 * the moving statistics' average and the parameter comparison.
 *
 * The reducer: each replica's thread hands its buffer in and waits; the
 * last to arrive adds the buffers in replica order 0..N-1 (the same bits
 * whichever thread that is), calls the outer reducer once, and copies the
 * result into every buffer. A replica whose step fails aborts the reducer,
 * so the others return an error instead of waiting for it. */
#include "run.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct group_reducer {
    pthread_mutex_t mu;
    pthread_cond_t done;
    int active;                      /* replicas taking part in this step's sums */
    int arrived;
    unsigned long generation;        /* sums completed */
    float *bufs[TLCL_GROUP_MAX];     /* the current sum's buffers */
    size_t n;                        /* floats in the current sum */
    float *acc;                      /* [cap] */
    size_t cap;
    tlcl_reducer outer;              /* .sum NULL: none */
    int failed;
    char why[1024];
    double waited[TLCL_GROUP_MAX];   /* seconds each replica spent waiting for the others this step */
    double last_start[TLCL_GROUP_MAX]; /* when each replica last started a gradient bucket (0: not yet) */
    double waited_then[TLCL_GROUP_MAX]; /* its waited[] at that moment */
    struct group_bucket *buckets;    /* this step's gradient buckets (start/poll), by number */
    int nbuckets;
} group_reducer;

/* One gradient bucket of a step: summed by the last replica to start it,
 * then (with an outer reducer) across processes without waiting. */
typedef struct group_bucket {
    int arrived;
    int state;                       /* 0 waiting for the replicas, 1 outer sum under way, 2 done */
    float *bufs[TLCL_GROUP_MAX];
    size_t n;
    float *acc;                      /* [cap]: the sum (kept between steps) */
    size_t cap;
} group_bucket;

struct tlcl_group {
    int n;
    tlcl_run *runs[TLCL_GROUP_MAX];
    tlcl_group_options o;
    group_reducer red;
    long steps, last_step;           /* steps taken; the caller's number of the last one */
    double share[TLCL_GROUP_MAX];    /* relative shares of a global batch (sum 1) */
    double speed[TLCL_GROUP_MAX];    /* measured samples per second of each replica's own work (0: none yet) */
    int shares_changed;              /* since the last tlcl_group_describe */
    float *host[2];                  /* [params.total]: replica 0's and another's values */
    double *confusion;               /* [classes^2]: the summed counters */
    tlcl_tensor mirror[TLCL_GROUP_MAX]; /* replica r's copy of replica 0's feature table */
    cl_mem mirror_src;               /* the table mirrored (NULL: none) */
    size_t mirror_count;
    char err[2048];
};

/* ---- the in-process reducer ------------------------------------------------- */

/* With red->mu held. */
static void reducer_fail(group_reducer *red, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reducer_fail(group_reducer *red, const char *fmt, ...)
{
    if (!red->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(red->why, sizeof red->why, fmt, ap);
        va_end(ap);
        red->failed = 1;
    }
    pthread_cond_broadcast(&red->done);
}

/* *acc = the sum of the active replicas' bufs, in replica order (the same
 * bits whichever thread adds them). 0, or -1 out of memory (failed). With
 * red->mu held. */
static int add_in_order(group_reducer *red, float **acc, size_t *cap, float *const *bufs, size_t n)
{
    if (n > *cap) {
        float *a = realloc(*acc, n * sizeof *a);
        if (!a) {
            reducer_fail(red, "out of host memory for a sum across replicas (%zu floats)", n);
            return -1;
        }
        *acc = a, *cap = n;
    }
    memcpy(*acc, bufs[0], n * sizeof **acc);
    for (int r = 1; r < red->active; r++)
        for (size_t i = 0; i < n; i++)
            (*acc)[i] += bufs[r][i];
    return 0;
}

static void copy_to_all(const group_reducer *red, float *const *bufs, const float *acc, size_t n)
{
    for (int r = 0; r < red->active; r++)
        memcpy(bufs[r], acc, n * sizeof *acc);
}

static void outer_failed(group_reducer *red, const char *err)
{
    reducer_fail(red, "the sum across processes failed: %s", err[0] ? err : "(no message)");
}

/* The last replica to arrive: the sum in replica order, the outer sum, the
 * result to every replica. With red->mu held. */
static void reducer_combine(group_reducer *red)
{
    size_t n = red->n;
    if (add_in_order(red, &red->acc, &red->cap, red->bufs, n) != 0)
        return;
    if (red->outer.sum) {
        char err[512] = "";
        if (red->outer.sum(red->outer.ctx, red->outer.replica, red->acc, n, err, sizeof err) != TLCL_OK) {
            outer_failed(red, err);
            return;
        }
    }
    copy_to_all(red, red->bufs, red->acc, n);
}

static tlcl_status reducer_sum(void *ctx, int replica, float *buf, size_t n, char *err, size_t err_len)
{
    group_reducer *red = ctx;
    pthread_mutex_lock(&red->mu);
    unsigned long gen = red->generation;
    if (!red->failed && red->arrived > 0 && n != red->n)
        reducer_fail(red, "replica %d sums %zu floats where the others sum %zu: the replicas' models differ",
                     replica, n, red->n);
    if (!red->failed) {
        red->n = n;
        red->bufs[replica] = buf;
        if (++red->arrived == red->active) {
            reducer_combine(red);
            red->arrived = 0;
            red->generation++;
            pthread_cond_broadcast(&red->done);
        }
        double t0 = now_s();
        while (red->generation == gen && !red->failed)
            pthread_cond_wait(&red->done, &red->mu);
        red->waited[replica] += now_s() - t0;
    }
    tlcl_status s = red->failed ? TLCL_ERR_CL : TLCL_OK;
    if (s != TLCL_OK)
        snprintf(err, err_len, "%s", red->why);
    pthread_mutex_unlock(&red->mu);
    return s;
}

/* ---- the gradient buckets (the reducer's start and poll) ---- */

static tlcl_status bucket_error(group_reducer *red, char *err, size_t err_len)
{
    snprintf(err, err_len, "%s", red->why);
    pthread_mutex_unlock(&red->mu);
    return TLCL_ERR_CL;
}

static group_bucket *bucket_at(group_reducer *red, int k)
{
    if (k >= red->nbuckets) {
        int cap = k + 16;
        group_bucket *grown = realloc(red->buckets, (size_t)cap * sizeof *grown);
        if (!grown)
            return NULL;
        memset(grown + red->nbuckets, 0, (size_t)(cap - red->nbuckets) * sizeof *grown);
        red->buckets = grown, red->nbuckets = cap;
    }
    return &red->buckets[k];
}

/* The last replica to start bucket b: the local sum, then the outer one
 * started (or, for an outer reducer without start, done) here. With
 * red->mu held. */
static void bucket_combine(group_reducer *red, group_bucket *b, int k)
{
    if (add_in_order(red, &b->acc, &b->cap, b->bufs, b->n) != 0)
        return;
    char err[512] = "";
    tlcl_reducer *o = &red->outer;
    tlcl_status s = !o->sum     ? TLCL_OK
                    : o->start ? o->start(o->ctx, o->replica, k, b->acc, b->n, err, sizeof err)
                               : o->sum(o->ctx, o->replica, b->acc, b->n, err, sizeof err);
    if (s != TLCL_OK) {
        outer_failed(red, err);
        return;
    }
    b->state = o->sum && o->start ? 1 : 2;
    if (b->state == 2)
        copy_to_all(red, b->bufs, b->acc, b->n);
}

static tlcl_status reducer_start(void *ctx, int replica, int k, float *buf, size_t n, char *err, size_t err_len)
{
    group_reducer *red = ctx;
    pthread_mutex_lock(&red->mu);
    group_bucket *b = red->failed ? NULL : bucket_at(red, k);
    if (!b && !red->failed)
        reducer_fail(red, "out of host memory for the gradient buckets");
    if (b && b->arrived > 0 && n != b->n)
        reducer_fail(red, "replica %d sums %zu floats in gradient bucket %d where the others sum %zu: the "
                     "replicas' models differ", replica, n, k, b->n);
    if (red->failed)
        return bucket_error(red, err, err_len);
    b->bufs[replica] = buf, b->n = n;
    red->last_start[replica] = now_s(), red->waited_then[replica] = red->waited[replica];
    if (++b->arrived == red->active)
        bucket_combine(red, b, k);
    if (red->failed)
        return bucket_error(red, err, err_len);
    pthread_mutex_unlock(&red->mu);
    return TLCL_OK;
}

static tlcl_status reducer_poll(void *ctx, int replica, int k, int *done, char *err, size_t err_len)
{
    group_reducer *red = ctx;
    (void)replica;
    pthread_mutex_lock(&red->mu);
    group_bucket *b = k < red->nbuckets ? &red->buckets[k] : NULL;
    if (!red->failed && b && b->state == 1) {
        char why[512] = "";
        int outer_done = 0;
        if (red->outer.poll(red->outer.ctx, red->outer.replica, k, &outer_done, why, sizeof why) != TLCL_OK)
            outer_failed(red, why);
        else if (outer_done)
            copy_to_all(red, b->bufs, b->acc, b->n), b->state = 2;
    }
    if (red->failed)
        return bucket_error(red, err, err_len);
    *done = b && b->state == 2;
    pthread_mutex_unlock(&red->mu);
    return TLCL_OK;
}

/* A new step: every bucket waits for the replicas again. */
static void buckets_reset(group_reducer *red)
{
    for (int k = 0; k < red->nbuckets; k++)
        red->buckets[k].arrived = 0, red->buckets[k].state = 0;
}

/* A replica whose step failed: the others stop waiting for it. */
static void reducer_abort(group_reducer *red, int replica, const char *device, const char *msg)
{
    pthread_mutex_lock(&red->mu);
    reducer_fail(red, "replica %d (%s) stopped: %s", replica, device, msg);
    pthread_mutex_unlock(&red->mu);
}

/* ---- create and free -------------------------------------------------------- */

static tlcl_model *model_of(const tlcl_group *g, int r) { return (tlcl_model *)tlcl_run_model(g->runs[r]); }
static tlcl_engine *engine_of(const tlcl_group *g, int r) { return model_of(g, r)->eng; }
static tlcl_cl *cl_of(const tlcl_group *g, int r) { return tlcl_engine_cl(engine_of(g, r)); }
static const char *device_of(const tlcl_group *g, int r) { return tlcl_cl_device(cl_of(g, r))->name; }

static tlcl_status group_fail(tlcl_group *g, tlcl_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static tlcl_status group_fail(tlcl_group *g, tlcl_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->err, sizeof g->err, fmt, ap);
    va_end(ap);
    return s;
}

/* A run-layer failure of replica r, named. */
static tlcl_status replica_fail(tlcl_group *g, tlcl_status s, int r)
{
    return group_fail(g, s, "replica %d (%s): %s", r, device_of(g, r), tlcl_run_error(g->runs[r]));
}

/* The same parameter table: names, offsets and counts. */
static int same_layout(const tlcl_params *a, const tlcl_params *b)
{
    if (a->count != b->count || a->total != b->total)
        return 0;
    for (int i = 0; i < a->count; i++)
        if (strcmp(a->entries[i].name, b->entries[i].name) || a->entries[i].offset != b->entries[i].offset ||
            a->entries[i].count != b->entries[i].count)
            return 0;
    return 1;
}

static void group_connect(tlcl_group *g, int on)
{
    for (int r = 0; r < g->n; r++) {
        tlcl_reducer red = {.sum = reducer_sum, .start = reducer_start, .poll = reducer_poll, .ctx = &g->red,
                            .replica = r};
        tlcl_run_set_reducer(g->runs[r], on ? &red : NULL);
        tlcl_run_set_bucket_floats(g->runs[r], g->o.bucket_floats);
        tlcl_engine_set_reducer(engine_of(g, r), on && g->o.sync_batchnorm ? &red : NULL);
    }
}

tlcl_status tlcl_group_create(tlcl_group **out, tlcl_run *const *runs, int n, const tlcl_group_options *o,
                              char *err, size_t err_len)
{
    *out = NULL;
    if (n < 1 || n > TLCL_GROUP_MAX) {
        snprintf(err, err_len, "replicas: %d devices given; between 1 and %d are supported", n, TLCL_GROUP_MAX);
        return TLCL_ERR_ARG;
    }
    for (int r = 1; r < n; r++)
        if (!same_layout(&tlcl_run_model(runs[0])->params, &tlcl_run_model(runs[r])->params)) {
            snprintf(err, err_len, "replicas: replica %d's model has another parameter table than replica 0's "
                     "(the same architecture and classes, allocated after tlcl_engine_set_param_align with the "
                     "largest alignment of the devices?)", r);
            return TLCL_ERR_ARG;
        }
    tlcl_group *g = calloc(1, sizeof *g);
    size_t total = tlcl_run_model(runs[0])->params.total, classes = (size_t)tlcl_run_model(runs[0])->classes;
    if (g) {
        g->host[0] = malloc(total * sizeof(float));
        g->host[1] = malloc(total * sizeof(float));
        g->confusion = calloc(classes * classes, sizeof *g->confusion);
    }
    if (!g || !g->host[0] || !g->host[1] || !g->confusion) {
        if (g)
            free(g->host[0]), free(g->host[1]), free(g->confusion);
        free(g);
        snprintf(err, err_len, "replicas: out of host memory");
        return TLCL_ERR_OOM;
    }
    g->n = n;
    memcpy(g->runs, runs, (size_t)n * sizeof *runs);
    g->o = o ? *o : (tlcl_group_options){0};
    g->o.outer = NULL; /* copied into the reducer */
    if (!g->o.check_every)
        g->o.check_every = TLCL_GROUP_CHECK_EVERY;
    pthread_mutex_init(&g->red.mu, NULL);
    pthread_cond_init(&g->red.done, NULL);
    if (o && o->outer)
        g->red.outer = *o->outer;
    double sum = 0;
    for (int r = 0; r < n; r++)
        sum += g->o.shares && g->o.shares[r] > 0 ? g->o.shares[r] : 1.0;
    for (int r = 0; r < n; r++)
        g->share[r] = (g->o.shares && g->o.shares[r] > 0 ? g->o.shares[r] : 1.0) / sum;
    g->o.shares = NULL;
    g->shares_changed = 1;
    group_connect(g, 1);
    tlcl_status s = tlcl_group_broadcast(g);
    if (s != TLCL_OK) {
        snprintf(err, err_len, "%s", g->err);
        tlcl_group_free(g);
        return s;
    }
    *out = g;
    return TLCL_OK;
}

void tlcl_group_free(tlcl_group *g)
{
    if (!g)
        return;
    group_connect(g, 0);
    for (int r = 1; r < g->n; r++)
        if (g->mirror[r].buf)
            tlcl_tensor_release(engine_of(g, r), &g->mirror[r]);
    pthread_mutex_destroy(&g->red.mu);
    pthread_cond_destroy(&g->red.done);
    free(g->red.acc);
    for (int k = 0; k < g->red.nbuckets; k++)
        free(g->red.buckets[k].acc);
    free(g->red.buckets);
    free(g->host[0]), free(g->host[1]), free(g->confusion);
    free(g);
}

int tlcl_group_size(const tlcl_group *g) { return g->n; }

const char *tlcl_group_error(const tlcl_group *g) { return g->err; }

/* ---- copies between replicas -------------------------------------------------- */

/* A flat buffer of replica 0 (values, m or v) into replicas [from, n). */
static tlcl_status copy_flat(tlcl_group *g, int from, cl_mem (*pick)(tlcl_model *), const char *what)
{
    size_t bytes = model_of(g, 0)->params.total * sizeof(float);
    tlcl_status s = tlcl_cl_read(cl_of(g, 0), pick(model_of(g, 0)), 0, bytes, g->host[0], what);
    if (s != TLCL_OK)
        return replica_fail(g, s, 0);
    for (int r = from; r < g->n; r++)
        if ((s = tlcl_cl_write(cl_of(g, r), pick(model_of(g, r)), 0, bytes, g->host[0], what)) != TLCL_OK)
            return replica_fail(g, s, r);
    return TLCL_OK;
}

static cl_mem values_of(tlcl_model *m) { return m->params.values; }
static cl_mem moment1_of(tlcl_model *m) { return m->params.m; }
static cl_mem moment2_of(tlcl_model *m) { return m->params.v; }

/* Parameters and optimizer moments of replica 0 into replicas [from, n). */
static tlcl_status copy_state(tlcl_group *g, int from)
{
    if (from >= g->n)
        return TLCL_OK;
    TLCL_TRY(copy_flat(g, from, values_of, "parameters"));
    TLCL_TRY(copy_flat(g, from, moment1_of, "optimizer moments"));
    return copy_flat(g, from, moment2_of, "optimizer moments");
}

tlcl_status tlcl_group_broadcast(tlcl_group *g)
{
    g->mirror_src = NULL; /* a new phase may bring a new feature table */
    return copy_state(g, 1);
}

/* Replica 0's feature table on every other device (a frozen base's
 * features: computed once on replica 0). */
static tlcl_status mirror_features(tlcl_group *g, const tlcl_tensor *f)
{
    size_t count = tlcl_tensor_count(f);
    if (g->mirror_src == f->buf && g->mirror_count == count)
        return TLCL_OK;
    float *host = malloc(count * sizeof *host);
    if (!host)
        return group_fail(g, TLCL_ERR_OOM, "replicas: out of host memory copying the feature table");
    tlcl_status s = tlcl_tensor_download(engine_of(g, 0), f, host);
    if (s != TLCL_OK)
        s = replica_fail(g, s, 0);
    for (int r = 1; r < g->n && s == TLCL_OK; r++) {
        tlcl_tensor *t = &g->mirror[r];
        if (t->buf)
            tlcl_tensor_release(engine_of(g, r), t);
        s = tlcl_tensor_alloc(engine_of(g, r), t, "feature table", f->n, f->h, f->w, f->c);
        if (s == TLCL_OK)
            s = tlcl_tensor_upload(engine_of(g, r), t, host);
        if (s != TLCL_OK)
            s = replica_fail(g, s, r);
    }
    free(host);
    if (s == TLCL_OK)
        g->mirror_src = f->buf, g->mirror_count = count;
    return s;
}

/* ---- the step ------------------------------------------------------------------ */

void tlcl_group_split(const tlcl_group *g, int count, int *counts)
{
    double frac[TLCL_GROUP_MAX];
    int given = 0, n = g->n;
    if (count < n) { /* one each to the first `count` */
        for (int r = 0; r < n; r++)
            counts[r] = r < count;
        return;
    }
    for (int r = 0; r < n; r++) { /* one each, the rest by share */
        double want = g->share[r] * (count - n);
        counts[r] = 1 + (int)floor(want);
        frac[r] = want - floor(want);
        given += counts[r];
    }
    for (; given < count; given++) { /* largest remainders, the lower replica first on a tie */
        int best = 0;
        for (int r = 1; r < n; r++)
            if (frac[r] > frac[best])
                best = r;
        counts[best]++, frac[best] = -1;
    }
}

int tlcl_group_describe(tlcl_group *g, int count, char *buf, size_t len)
{
    int counts[TLCL_GROUP_MAX], off = 0;
    tlcl_group_split(g, count, counts);
    for (int r = 0; r < g->n && off >= 0 && (size_t)off < len; r++) {
        const tlcl_device_info *d = tlcl_cl_device(cl_of(g, r));
        off += snprintf(buf + off, len - (size_t)off, r ? ", device %d (%s / %s): %d" : "device %d (%s / %s): %d of %d samples",
                        r, d->platform_name, d->name, counts[r], count);
    }
    int changed = g->shares_changed;
    g->shares_changed = 0;
    return changed;
}

/* Balancing: each replica's speed from this step (its own work: the step's
 * time less its waits for the others), averaged over the steps so far,
 * and the shares in proportion. */
static void balance(tlcl_group *g, const int *counts, const double *busy, int active)
{
    if (g->o.balance_steps <= 0 || g->steps >= g->o.balance_steps || active < g->n)
        return;
    double total = 0;
    for (int r = 0; r < g->n; r++) {
        double v = busy[r] > 0 ? counts[r] / busy[r] : 0;
        g->speed[r] = g->speed[r] > 0 ? g->speed[r] + (v - g->speed[r]) / (double)(g->steps + 1) : v;
        total += g->speed[r];
    }
    if (!(total > 0))
        return;
    int before[TLCL_GROUP_MAX], after[TLCL_GROUP_MAX], sum = 0;
    for (int r = 0; r < g->n; r++)
        sum += counts[r];
    tlcl_group_split(g, sum, before);
    for (int r = 0; r < g->n; r++)
        g->share[r] = g->speed[r] / total;
    tlcl_group_split(g, sum, after);
    if (memcmp(before, after, (size_t)g->n * sizeof *before) != 0)
        g->shares_changed = 1;
}

typedef struct replica_job {
    tlcl_group *g;
    int r;
    double t0, busy;                 /* its start; seconds of its step, waits for the others included */
    tlcl_run_input in;
    const tlcl_tensor *features;
    tlcl_optimizer opt;
    tlcl_step_args a;
    tlcl_status s;
} replica_job;

/* The is_state entries of the parameters, one after another, from the
 * device into h (or back with to_device). */
static tlcl_status state_copy(tlcl_cl *cl, const tlcl_params *p, float *h, int to_device)
{
    size_t at = 0;
    for (int i = 0; i < p->count; i++) {
        const tlcl_param_entry *e = &p->entries[i];
        if (!e->is_state)
            continue;
        size_t off = e->offset * sizeof(float), bytes = e->count * sizeof(float);
        TLCL_TRY(to_device ? tlcl_cl_write(cl, p->values, off, bytes, h + at, "moving statistics")
                           : tlcl_cl_read(cl, p->values, off, bytes, h + at, "moving statistics"));
        at += e->count;
    }
    return TLCL_OK;
}

/* The moving statistics (the is_state entries) averaged across the
 * replicas, through the reducer: their sum and the count of replicas. */
static tlcl_status average_state(tlcl_group *g, int r)
{
    tlcl_model *m = model_of(g, r);
    tlcl_cl *cl = cl_of(g, r);
    size_t n = 0;
    for (int i = 0; i < m->params.count; i++)
        n += m->params.entries[i].is_state ? m->params.entries[i].count : 0;
    if (n == 0)
        return TLCL_OK;
    float *h = malloc((n + 1) * sizeof *h);
    if (!h)
        return tlcl_cl_fail(cl, TLCL_ERR_OOM, "out of host memory averaging the moving statistics");
    tlcl_status s = state_copy(cl, &m->params, h, 0);
    h[n] = 1.0f; /* the sum counts the replicas, the other processes' too */
    char err[1024] = "";
    if (s == TLCL_OK && (s = reducer_sum(&g->red, r, h, n + 1, err, sizeof err)) != TLCL_OK)
        s = tlcl_cl_fail(cl, s, "%s", err);
    for (size_t i = 0; i < n && s == TLCL_OK; i++)
        h[i] /= h[n];
    if (s == TLCL_OK)
        s = state_copy(cl, &m->params, h, 1);
    free(h);
    return s;
}

static void *replica_step(void *arg)
{
    replica_job *j = arg;
    tlcl_group *g = j->g;
    tlcl_run *run = g->runs[j->r];
    tlcl_run_batch *b;
    double t0 = j->t0 = now_s();
    j->s = tlcl_run_load(run, &j->in, j->features, &b);
    if (j->s == TLCL_OK)
        j->s = tlcl_run_step(run, b, &j->opt, &j->a);
    if (j->s == TLCL_OK && !g->o.sync_batchnorm)
        j->s = average_state(g, j->r);
    if (j->s != TLCL_OK)
        reducer_abort(&g->red, j->r, device_of(g, j->r), tlcl_run_error(run));
    j->busy = now_s() - t0; /* its waits are subtracted once every replica is done */
    return NULL;
}

/* Replica r's slice [off, off + count) of the global batch. */
static tlcl_run_input slice(const tlcl_run_input *in, int off, int count, size_t pixels)
{
    tlcl_run_input s = {.count = count};
    s.images = in->images ? in->images + (size_t)off * pixels : NULL;
    s.items = in->items ? in->items + off : NULL;
    s.labels = in->labels ? in->labels + off : NULL;
    s.weights = in->weights ? in->weights + off : NULL;
    return s;
}

/* A replica's own work in its step, for the balancing: until its last
 * gradient bucket started (its backward was done then; what follows is
 * waiting for the others' buckets and the update, the same for all),
 * less its waits for the others in the blocking sums (sync BN's) before. */
static double own_work(const group_reducer *red, const replica_job *j)
{
    if (red->last_start[j->r] > 0)
        return red->last_start[j->r] - j->t0 - red->waited_then[j->r];
    return j->busy - red->waited[j->r];
}

/* Runs the active replicas' jobs, replica 0 on this thread; the first
 * failure's message (the replica that stopped, not those it stopped). */
static tlcl_status run_jobs(tlcl_group *g, replica_job *jobs, int active)
{
    pthread_t th[TLCL_GROUP_MAX];
    int started[TLCL_GROUP_MAX] = {0};
    g->red.active = active, g->red.failed = 0, g->red.arrived = 0;
    buckets_reset(&g->red);
    memset(g->red.waited, 0, sizeof g->red.waited);
    memset(g->red.last_start, 0, sizeof g->red.last_start);
    for (int r = 1; r < active; r++)
        if (pthread_create(&th[r], NULL, replica_step, &jobs[r]) == 0)
            started[r] = 1;
        else
            jobs[r].s = TLCL_ERR_OOM, reducer_abort(&g->red, r, device_of(g, r), "cannot start its thread");
    replica_step(&jobs[0]);
    for (int r = 1; r < active; r++)
        if (started[r])
            pthread_join(th[r], NULL);
    for (int r = 0; r < active; r++)
        if (jobs[r].s != TLCL_OK)
            return group_fail(g, jobs[r].s, "%s", g->red.failed ? g->red.why : tlcl_run_error(g->runs[r]));
    return TLCL_OK;
}

tlcl_status tlcl_group_step(tlcl_group *g, const tlcl_run_input *in, const tlcl_tensor *features,
                            tlcl_optimizer *opt, const tlcl_step_args *a)
{
    int counts[TLCL_GROUP_MAX], active = 0, off = 0;
    const tlcl_model *m = model_of(g, 0);
    size_t pixels = (size_t)m->image_h * m->image_w * 3;
    replica_job jobs[TLCL_GROUP_MAX];
    if (in->count < 1)
        return group_fail(g, TLCL_ERR_ARG, "replicas: a step needs at least one sample");
    if (features)
        TLCL_TRY(mirror_features(g, features));
    tlcl_group_split(g, in->count, counts);
    for (int r = 0; r < g->n && counts[r] > 0; r++, active++) {
        jobs[r] = (replica_job){.g = g, .r = r, .in = slice(in, off, counts[r], pixels), .opt = *opt, .a = *a};
        jobs[r].features = !features ? NULL : r == 0 ? features : &g->mirror[r];
        if (!a->global_count)
            jobs[r].a.global_count = in->count;
        jobs[r].a.first_sample = a->first_sample + off;
        off += counts[r];
    }
    TLCL_TRY(run_jobs(g, jobs, active));
    opt->iterations = jobs[0].opt.iterations;
    double busy[TLCL_GROUP_MAX] = {0};
    for (int r = 0; r < active; r++)
        busy[r] = own_work(&g->red, &jobs[r]);
    balance(g, counts, busy, active);
    /* a batch smaller than the group: the idle replicas take replica 0's state */
    TLCL_TRY(copy_state(g, active));
    g->last_step = a->step;
    if (g->o.check_every > 0 && ++g->steps % g->o.check_every == 0)
        return tlcl_group_check(g);
    return TLCL_OK;
}

/* ---- counters --------------------------------------------------------------------- */

tlcl_status tlcl_group_sync(tlcl_group *g, tlcl_run_stats *out)
{
    int C = model_of(g, 0)->classes;
    tlcl_run_stats sum = {.nonfinite_step = -1, .classes = C, .confusion = g->confusion};
    memset(g->confusion, 0, (size_t)C * C * sizeof *g->confusion);
    for (int r = 0; r < g->n; r++) {
        tlcl_run_stats st;
        tlcl_status s = tlcl_run_sync(g->runs[r], &st);
        if (s != TLCL_OK)
            return replica_fail(g, s, r);
        sum.loss_sum += st.loss_sum, sum.samples += st.samples, sum.hits += st.hits, sum.weight += st.weight;
        sum.grad_buckets += st.grad_buckets, sum.buckets_overlapped += st.buckets_overlapped;
        for (size_t i = 0; i < (size_t)C * C; i++)
            g->confusion[i] += st.confusion[i];
        if (st.nonfinite_step >= 0 && (sum.nonfinite_step < 0 || st.nonfinite_step < sum.nonfinite_step))
            sum.nonfinite_step = st.nonfinite_step;
    }
    *out = sum;
    return TLCL_OK;
}

tlcl_status tlcl_group_reset(tlcl_group *g)
{
    for (int r = 0; r < g->n; r++) {
        tlcl_status s = tlcl_run_reset(g->runs[r]);
        if (s != TLCL_OK)
            return replica_fail(g, s, r);
    }
    return TLCL_OK;
}

/* ---- the parameter comparison ------------------------------------------------------ */

/* Two values agree when they differ by at most this fraction of the
 * larger magnitude in their tensor (at least 1e-2: a tensor of tiny
 * values compares on that scale). A missed gradient sum or a replica that
 * skipped an update differs by a learning rate's step, far above it;
 * devices of two vendors differ by rounding, far below. */
#define GROUP_CHECK_TOLERANCE 1e-4

static double checksum(const float *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    return s;
}

/* The worst entry of b against a: its index in the table, the element. */
static double worst_difference(const tlcl_params *p, const float *a, const float *b, int *entry, size_t *at)
{
    double worst = 0;
    for (int i = 0; i < p->count; i++) {
        const tlcl_param_entry *e = &p->entries[i];
        double scale = 1e-2, diff = 0;
        size_t where = 0;
        for (size_t k = 0; k < e->count; k++) {
            scale = fmax(scale, fabs(a[e->offset + k]));
            double d = fabs((double)a[e->offset + k] - b[e->offset + k]);
            if (d > diff || isnan(d))
                diff = isnan(d) ? INFINITY : d, where = k;
        }
        if (diff / scale > worst)
            worst = diff / scale, *entry = i, *at = where;
    }
    return worst;
}

tlcl_status tlcl_group_check(tlcl_group *g)
{
    const tlcl_params *p = &model_of(g, 0)->params;
    size_t bytes = p->total * sizeof(float);
    tlcl_status s = tlcl_cl_read(cl_of(g, 0), p->values, 0, bytes, g->host[0], "parameters");
    if (s != TLCL_OK)
        return replica_fail(g, s, 0);
    for (int r = 1; r < g->n; r++) {
        if ((s = tlcl_cl_read(cl_of(g, r), model_of(g, r)->params.values, 0, bytes, g->host[1], "parameters")))
            return replica_fail(g, s, r);
        if (!memcmp(g->host[0], g->host[1], bytes))
            continue;
        int entry = 0;
        size_t at = 0;
        if (worst_difference(p, g->host[0], g->host[1], &entry, &at) > GROUP_CHECK_TOLERANCE) {
            const tlcl_param_entry *e = &p->entries[entry];
            return group_fail(g, TLCL_ERR_CL,
                              "replicas 0 (%s) and %d (%s) drifted apart by step %ld: parameter checksums %.9g "
                              "and %.9g (worst: '%s'[%zu] %.9g vs %.9g); every replica must apply the same "
                              "update (is the gradient sum across replicas working?)",
                              device_of(g, 0), r, device_of(g, r), g->last_step + 1, checksum(g->host[0], p->total),
                              checksum(g->host[1], p->total), e->name, at, g->host[0][e->offset + at],
                              g->host[1][e->offset + at]);
        }
        /* rounding only (two vendors' arithmetic): replica 0's values, so it never adds up */
        if ((s = tlcl_cl_write(cl_of(g, r), model_of(g, r)->params.values, 0, bytes, g->host[0], "parameters")))
            return replica_fail(g, s, r);
    }
    return TLCL_OK;
}
