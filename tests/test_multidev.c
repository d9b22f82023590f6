/* test_multidev.c — several model replicas in one process (run.h's group):
 * two replicas of a tiny EfficientNet-style network, each on its own
 * context (the second on $TLCL_TEST_SECOND_PLATFORM's device, else the same
 * platform's), against one device given the same global batches.
 *
 * - synchronised batch norm: 10 steps (global batches of 16, then 5 and 1:
 *   uneven slices and an idle replica) give the single device's weights and
 *   moving statistics within 1e-4 of each tensor's scale, and the same
 *   summed loss, with equal slices, 3:1 shares (12 + 4) and shares by
 *   measured speed (PoCL next to Rusticl: PoCL takes more); the same steps
 *   with per-replica statistics do not
 *   (the control that shows the comparison can fail). SGD with momentum:
 *   Adam divides each gradient by its own running magnitude, so the
 *   rounding noise of gradients that are zero in exact arithmetic (the beta
 *   of a batch norm whose output reaches the loss only through another
 *   training-mode batch norm, which removes any shift) becomes a full
 *   learning-rate step, on one device as on two (block2a_project_bn/beta:
 *   2% of its scale after 10 steps, while the loss agreed within 2e-8);
 * - per-replica statistics: the task is learnt to the single device's
 *   held-out accuracy, and the replicas hold the same parameters;
 * - the drift check stops on a replica whose weights moved and names both
 *   replicas and the step, and wipes a rounding-sized difference.
 * With dropout and stochastic depth: their masks are keyed by the sample's
 * place in the global batch (tlcl_step_args.first_sample), so they are
 * the single device's (without that offset: 0.30 of a tensor's scale off). */
#include "harness.h"
#include "run.h"
#include "testdata.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SIZE = 32, CLASSES = 4, BATCH = 16, EQ_STEPS = 10, FIT_STEPS = 80, EVAL = 128 };
/* Gradient buckets of at least this many floats: the tiny network's few
 * thousand parameters make several per step (the default, 1 Mi, one). */
enum { BUCKET_FLOATS = 512, MIN_BUCKETS = 4 };

static const tlcl_arch *const TINY = &testdata_tiny_arch; /* SIZE px */

typedef struct replica {
    tlcl_model m;
    tlcl_run *run;
} replica;

static int replica_open(harness *h, replica *r, tlcl_engine *e, uint32_t seed)
{
    tlcl_model_options o = tlcl_model_options_default();
    o.custom = TINY;
    o.classes = CLASSES;
    char err[512];
    tlcl_loss_spec loss = tlcl_loss_spec_default();
    memset(r, 0, sizeof *r);
    if (tlcl_model_build(&r->m, &o, err, sizeof err) != TLCL_OK) {
        harness_fail(h, "build: %s", err);
        return 1;
    }
    if (harness_status(h, tlcl_model_alloc(&r->m, e, seed), "alloc"))
        return 1;
    if (tlcl_run_create(&r->run, &r->m, &loss, err, sizeof err) != TLCL_OK) {
        harness_fail(h, "run: %s", err);
        return 1;
    }
    return 0;
}

static void replica_close(replica *r)
{
    tlcl_run_free(r->run);
    tlcl_model_free(&r->m);
}

static float *values_of(harness *h, replica *r)
{
    size_t n = r->m.params.total;
    float *x = malloc(n * sizeof *x);
    if (harness_status(h, tlcl_cl_read(tlcl_engine_cl(r->m.eng), r->m.params.values, 0, n * sizeof *x, x, "values"),
                       "read the parameters")) {
        free(x);
        return NULL;
    }
    return x;
}

/* The worst difference of any tensor, as a fraction of that tensor's
 * largest magnitude (at least 1e-2); its name in *name. */
static double worst_tensor(const tlcl_params *p, const float *got, const float *want, const char **name)
{
    double worst = 0;
    *name = "";
    for (int i = 0; i < p->count; i++) {
        const tlcl_param_entry *e = &p->entries[i];
        double scale = 1e-2, diff = 0;
        for (size_t k = 0; k < e->count; k++) {
            scale = fmax(scale, fabs(want[e->offset + k]));
            diff = fmax(diff, fabs((double)got[e->offset + k] - want[e->offset + k]));
        }
        if (!(diff / scale <= worst))
            worst = diff / scale, *name = e->name;
    }
    return worst;
}

/* The batch sizes of the equality run: uneven slices (5 = 3 + 2) and a
 * batch of one (replica 1 idle). */
static int eq_batch(int step) { return step < EQ_STEPS - 2 ? BATCH : step == EQ_STEPS - 2 ? 5 : 1; }

typedef struct trained {
    float *values;
    double loss_sum;
    float accuracy;
    long buckets, overlapped; /* gradient buckets summed across replicas; started while backward ran */
} trained;

/* Held-out accuracy of replica 0's run. */
static float evaluate(harness *h, tlcl_run *run)
{
    static float imgs[EVAL * SIZE * SIZE * 3];
    int labels[EVAL];
    testdata_stripes(h, imgs, labels, EVAL, SIZE, CLASSES);
    tlcl_run_input in = {.images = imgs, .labels = labels, .count = EVAL};
    tlcl_run_batch *b;
    tlcl_run_stats st;
    if (harness_status(h, tlcl_run_reset(run), "reset") || harness_status(h, tlcl_run_load(run, &in, NULL, &b), "load") ||
        harness_status(h, tlcl_run_predict(run, b, NULL), "predict") || harness_status(h, tlcl_run_sync(run, &st), "sync"))
        return 0;
    return (float)(st.hits / st.weight);
}

/* Trains `steps` steps on one device (g NULL: r[0]) or through the group;
 * the same data seed gives the same global batches either way. */
static trained train(harness *h, replica *r, tlcl_group *g, int steps, int (*size_of)(int), tlcl_opt_type type,
                     int processes)
{
    trained t = {0};
    static float imgs[BATCH * SIZE * SIZE * 3];
    int labels[BATCH];
    tlcl_optimizer opt = tlcl_optimizer_default(type);
    opt.momentum = 0.9f; /* SGD */
    tlcl_run_stats st;
    h->rng = 1234;
    for (int step = 0; step < steps; step++) {
        int n = size_of ? size_of(step) : BATCH;
        testdata_stripes(h, imgs, labels, n, SIZE, CLASSES);
        tlcl_run_input in = {.images = imgs, .labels = labels, .count = n};
        /* processes > 1: the global batch spans that many identical processes */
        tlcl_step_args a = {.lr = 0.01f, .seed = (uint32_t)step + 1, .step = step, .global_count = n * processes};
        tlcl_run_batch *b;
        if (g ? harness_status(h, tlcl_group_step(g, &in, NULL, &opt, &a), tlcl_group_error(g))
              : harness_status(h, tlcl_run_load(r->run, &in, NULL, &b), "load") ||
                    harness_status(h, tlcl_run_step(r->run, b, &opt, &a), "step"))
            return t;
    }
    if (g ? harness_status(h, tlcl_group_sync(g, &st), tlcl_group_error(g))
          : harness_status(h, tlcl_run_sync(r->run, &st), "sync"))
        return t;
    t.loss_sum = st.loss_sum;
    t.buckets = st.grad_buckets, t.overlapped = st.buckets_overlapped;
    t.accuracy = evaluate(h, r->run);
    t.values = values_of(h, r);
    return t;
}

typedef struct devices {
    tlcl_engine *e[2];
    int second_is_slower; /* Rusticl/llvmpipe next to PoCL (a several times slower device) */
} devices;

/* Two fresh replicas (replica 1 with other initial weights: the group
 * copies replica 0's) in a group. */
typedef struct split {
    const char *name;
    double shares[2];  /* {0, 0}: equal */
    int balance_steps; /* measured */
} split;

static tlcl_group *group_open(harness *h, const devices *d, replica *r, int sync_bn, int check_every, const split *sp,
                              const tlcl_reducer *outer)
{
    char err[512];
    tlcl_group *g = NULL;
    if (replica_open(h, &r[0], d->e[0], 42) || replica_open(h, &r[1], d->e[1], 7))
        return NULL;
    tlcl_run *runs[2] = {r[0].run, r[1].run};
    tlcl_group_options o = {.sync_batchnorm = sync_bn, .check_every = check_every, .outer = outer,
                            .bucket_floats = BUCKET_FLOATS};
    if (sp && sp->shares[0] > 0)
        o.shares = sp->shares;
    if (sp)
        o.balance_steps = sp->balance_steps;
    if (tlcl_group_create(&g, runs, 2, &o, err, sizeof err) != TLCL_OK)
        harness_fail(h, "group: %s", err);
    return g;
}

static void group_close(tlcl_group *g, replica *r)
{
    tlcl_group_free(g);
    replica_close(&r[0]);
    replica_close(&r[1]);
}

static void expect_same_replicas(harness *h, replica *r, const char *what)
{
    float *a = values_of(h, &r[0]), *b = values_of(h, &r[1]);
    const char *name;
    double w = a && b ? worst_tensor(&r[0].m.params, b, a, &name) : INFINITY;
    harness_expectf(h, w <= 1e-6, "%s: replica 1 holds replica 0's parameters (worst tensor %.2g)", what, w);
    free(a), free(b);
}

/* Synchronised batch norm: the single device's result whatever the split
 * (equal, 3:1, measured); per-replica statistics: not. */
static void test_equality(harness *h, const devices *d)
{
    static const split splits[] = {{"equal", {0, 0}, 0}, {"3:1", {3, 1}, 0}, {"measured", {0, 0}, EQ_STEPS}};
    replica one, r[2];
    if (replica_open(h, &one, d->e[0], 42))
        return;
    trained ref = train(h, &one, NULL, EQ_STEPS, eq_batch, TLCL_OPT_SGD, 1);
    for (int k = 0; k <= 3 && ref.values; k++) {
        int sync = k < 3;
        const split *sp = sync ? &splits[k] : NULL;
        tlcl_group *g = group_open(h, d, r, sync, 3, sp, NULL);
        trained got = g ? train(h, &r[0], g, EQ_STEPS, eq_batch, TLCL_OPT_SGD, 1) : (trained){0};
        if (got.values) {
            const char *name;
            char line[512];
            double w = worst_tensor(&one.m.params, got.values, ref.values, &name);
            double dl = fabs(got.loss_sum - ref.loss_sum) / fabs(ref.loss_sum);
            tlcl_group_describe(g, BATCH, line, sizeof line);
            printf("     %s batch norm%s%s: worst tensor %s off by %.3g of its scale, summed loss off by %.3g\n"
                   "     %s\n", sync ? "synchronised" : "per-replica", sp ? ", split " : "", sp ? sp->name : "",
                   name, w, dl, line);
            printf("     %ld gradient buckets in %d steps, %ld started while the backward pass ran\n", got.buckets,
                   EQ_STEPS, got.overlapped);
            /* every step has 2 active replicas but the last (a batch of one) */
            harness_expectf(h, got.buckets >= (2L * EQ_STEPS - 1) * MIN_BUCKETS, "the gradients are summed in "
                            "buckets (%ld over %d steps, at least %d per replica and step)", got.buckets, EQ_STEPS,
                            MIN_BUCKETS);
            if (sync) {
                harness_expectf(h, w <= 1e-4, "sync BN, %s split: 2 replicas = 1 device after %d steps (weights and "
                                "moving statistics within 1e-4: %.3g, '%s')", sp->name, EQ_STEPS, w, name);
                harness_expectf(h, dl <= 1e-4, "sync BN, %s split: summed training loss of the replicas = 1 device's "
                                "(%.3g)", sp->name, dl);
                if (sp->shares[0] > 0)
                    harness_expectf(h, strstr(line, ": 12 of 16 samples, device 1 (") && strstr(line, "): 4") != NULL,
                                    "3:1 shares split 16 samples 12 + 4 (%s)", line);
                if (sp->balance_steps && d->second_is_slower) {
                    int counts[2];
                    tlcl_group_split(g, BATCH, counts);
                    harness_expectf(h, counts[0] > counts[1], "measured split: PoCL takes more than Rusticl/llvmpipe "
                                    "(%d of %d)", counts[0], BATCH);
                }
            } else {
                harness_expectf(h, w > 1e-3, "per-replica BN differs from 1 device (%.3g): the comparison can fail", w);
            }
            expect_same_replicas(h, r, sync ? "sync BN" : "per-replica BN");
        }
        free(got.values);
        group_close(g, r);
    }
    free(ref.values);
    replica_close(&one);
}

/* The outer reducer (MPI's place): a twin process holding the same
 * replicas and data, so its sum doubles every buffer. Its gradient buckets
 * (start/poll, when given) complete at their second poll, as a
 * non-blocking MPI sum completes some polls later. */
enum { TWIN_BUCKETS = 256 };
typedef struct twin {
    atomic_int inside;
    int calls, overlapped, deferred;
    float *bucket[TWIN_BUCKETS];
    size_t n[TWIN_BUCKETS];
    int polls[TWIN_BUCKETS];
} twin;

static void twin_enter(twin *t)
{
    if (atomic_fetch_add(&t->inside, 1) != 0)
        t->overlapped = 1;
    t->calls++;
}

static void twin_double(float *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] *= 2.0f;
}

static tlcl_status twin_sum(void *ctx, int replica, float *buf, size_t n, char *err, size_t err_len)
{
    twin *t = ctx;
    (void)replica, (void)err, (void)err_len;
    twin_enter(t);
    twin_double(buf, n);
    atomic_fetch_sub(&t->inside, 1);
    return TLCL_OK;
}

static tlcl_status twin_start(void *ctx, int replica, int k, float *buf, size_t n, char *err, size_t err_len)
{
    twin *t = ctx;
    (void)replica;
    twin_enter(t);
    tlcl_status s = k < TWIN_BUCKETS && !t->bucket[k] ? TLCL_OK : TLCL_ERR_ARG;
    if (s == TLCL_OK)
        t->bucket[k] = buf, t->n[k] = n, t->polls[k] = 0;
    else
        snprintf(err, err_len, "twin: bucket %d started twice or out of range", k);
    atomic_fetch_sub(&t->inside, 1);
    return s;
}

static tlcl_status twin_poll(void *ctx, int replica, int k, int *done, char *err, size_t err_len)
{
    twin *t = ctx;
    (void)replica, (void)err, (void)err_len;
    twin_enter(t);
    *done = 0;
    if (k < TWIN_BUCKETS && t->bucket[k] && ++t->polls[k] == 2) {
        twin_double(t->bucket[k], t->n[k]);
        t->bucket[k] = NULL, *done = 1;
    } else {
        t->deferred = 1;
    }
    atomic_fetch_sub(&t->inside, 1);
    return TLCL_OK;
}

/* Two replicas here and two in the twin: a global batch twice this one's,
 * of the same samples, gives the single device's weights on this one (its
 * gradient and batch-norm statistics are those of the duplicated batch)
 * when the outer sum runs once per local sum, on one thread. */
static void test_outer(harness *h, const devices *d, int nonblocking)
{
    replica one, r[2];
    static twin tw;
    memset(&tw, 0, sizeof tw);
    tlcl_reducer outer = {.sum = twin_sum, .ctx = &tw};
    if (nonblocking)
        outer.start = twin_start, outer.poll = twin_poll;
    if (replica_open(h, &one, d->e[0], 42))
        return;
    trained ref = train(h, &one, NULL, EQ_STEPS, eq_batch, TLCL_OPT_SGD, 1);
    tlcl_group *g = ref.values ? group_open(h, d, r, 1, 3, NULL, &outer) : NULL;
    trained got = g ? train(h, &r[0], g, EQ_STEPS, eq_batch, TLCL_OPT_SGD, 2) : (trained){0};
    if (got.values) {
        const char *name;
        double w = worst_tensor(&one.m.params, got.values, ref.values, &name);
        harness_expectf(h, w <= 1e-4 && tw.calls >= EQ_STEPS && !tw.overlapped && tw.deferred == nonblocking,
                        "outer reducer (%s gradient buckets): 2 x 2 replicas on a duplicated batch = 1 device (%.3g, "
                        "'%s'); %d outer calls, never two at once", nonblocking ? "non-blocking" : "blocking", w,
                        name, tw.calls);
    }
    free(ref.values), free(got.values);
    if (g)
        group_close(g, r);
    replica_close(&one);
}

/* Every entry but the moving statistics bit for bit the same. */
static int same_weights(const tlcl_params *p, const float *a, const float *b)
{
    for (int i = 0; i < p->count; i++)
        if (!p->entries[i].is_state &&
            memcmp(a + p->entries[i].offset, b + p->entries[i].offset, p->entries[i].count * sizeof *a))
            return 0;
    return 1;
}

/* A NaN loss on replica 1 alone: every replica skips the update (as one
 * device does), and the counters name the step. */
static void test_nan_replica(harness *h, const devices *d)
{
    replica r[2];
    tlcl_group *g = group_open(h, d, r, 0, 0, NULL, NULL);
    trained t = g ? train(h, &r[0], g, 1, NULL, TLCL_OPT_ADAM, 1) : (trained){0};
    float *before[2] = {values_of(h, &r[0]), values_of(h, &r[1])};
    static float imgs[BATCH * SIZE * SIZE * 3];
    int labels[BATCH];
    testdata_stripes(h, imgs, labels, BATCH, SIZE, CLASSES);
    imgs[(size_t)(BATCH - 1) * SIZE * SIZE * 3] = NAN; /* the last sample: replica 1's slice */
    tlcl_run_input in = {.images = imgs, .labels = labels, .count = BATCH};
    tlcl_optimizer opt = tlcl_optimizer_default(TLCL_OPT_ADAM);
    tlcl_step_args a = {.lr = 0.01f, .seed = 5, .step = 7};
    tlcl_run_stats st;
    if (t.values && before[0] && before[1] && !harness_status(h, tlcl_group_step(g, &in, NULL, &opt, &a), "step") &&
        !harness_status(h, tlcl_group_sync(g, &st), "sync")) {
        float *after[2] = {values_of(h, &r[0]), values_of(h, &r[1])};
        harness_expectf(h, st.nonfinite_step == 7 && after[0] && after[1] &&
                               same_weights(&r[0].m.params, after[0], before[0]) &&
                               same_weights(&r[0].m.params, after[1], before[1]),
                        "a NaN loss on replica 1 only: both replicas keep their weights (the moving statistics "
                        "take the NaN batch's, as on one device), step %ld named", st.nonfinite_step);
        free(after[0]), free(after[1]);
    }
    free(before[0]), free(before[1]), free(t.values);
    if (g)
        group_close(g, r);
}

/* Per-replica statistics learn the task as well as one device. */
static void test_accuracy(harness *h, const devices *d)
{
    replica one, r[2];
    if (replica_open(h, &one, d->e[0], 42))
        return;
    trained ref = train(h, &one, NULL, FIT_STEPS, NULL, TLCL_OPT_ADAM, 1);
    replica_close(&one);
    tlcl_group *g = group_open(h, d, r, 0, 0, NULL, NULL);
    trained got = g ? train(h, &r[0], g, FIT_STEPS, NULL, TLCL_OPT_ADAM, 1) : (trained){0};
    printf("     held-out accuracy after %d steps: 1 device %.3f, 2 replicas %.3f\n", FIT_STEPS, ref.accuracy,
           got.accuracy);
    harness_expectf(h, ref.accuracy >= 0.9f && got.accuracy >= 0.9f && fabsf(ref.accuracy - got.accuracy) <= 0.05f,
                    "per-replica BN: 2 replicas reach 1 device's accuracy (%.3f vs %.3f, both >= 0.9)", got.accuracy,
                    ref.accuracy);
    expect_same_replicas(h, r, "per-replica BN, moving statistics averaged");
    free(ref.values), free(got.values);
    group_close(g, r);
}

/* One float of replica 1's parameters moved by `delta` times its tensor's scale. */
static int nudge(harness *h, replica *r, float delta)
{
    const tlcl_param_entry *e = &r->m.params.entries[0];
    float *x = values_of(h, r);
    if (!x)
        return 1;
    float v = x[e->offset] + delta * fmaxf(fabsf(x[e->offset]), 1e-2f);
    tlcl_status s = tlcl_cl_write(tlcl_engine_cl(r->m.eng), r->m.params.values, e->offset * sizeof(float),
                                  sizeof v, &v, "nudge");
    free(x);
    return harness_status(h, s, "nudge");
}

static void test_drift_check(harness *h, const devices *d)
{
    replica r[2];
    tlcl_group *g = group_open(h, d, r, 0, 2, NULL, NULL);
    if (!g)
        return;
    trained t = train(h, &r[0], g, 1, NULL, TLCL_OPT_ADAM, 1);
    free(t.values);
    if (nudge(h, &r[1], 1e-6f))
        return;
    harness_expect(h, tlcl_group_check(g) == TLCL_OK, "a rounding-sized difference passes the drift check");
    expect_same_replicas(h, r, "after the check");
    if (nudge(h, &r[1], 1e-2f))
        return;
    static float imgs[BATCH * SIZE * SIZE * 3];
    int labels[BATCH];
    testdata_stripes(h, imgs, labels, BATCH, SIZE, CLASSES);
    tlcl_run_input in = {.images = imgs, .labels = labels, .count = BATCH};
    tlcl_optimizer opt = tlcl_optimizer_default(TLCL_OPT_ADAM);
    tlcl_step_args a = {.lr = 0.01f, .seed = 9, .step = 1};
    tlcl_status s = tlcl_group_step(g, &in, NULL, &opt, &a); /* step 2: checked */
    const char *msg = tlcl_group_error(g);
    printf("     %s\n", msg);
    harness_expect(h, s != TLCL_OK && strstr(msg, "replicas 0 (") && strstr(msg, ") and 1 (") &&
                          strstr(msg, "step 2") && strstr(msg, "checksums"),
                   "a replica whose weights moved stops the run, naming both replicas, the step and the checksums");
    group_close(g, r);
}

int main(void)
{
    harness h;
    harness_init(&h, 1);
    devices d = {.e = {h.eng, NULL}};
    tlcl_cl *cl2;
    const char *second = getenv("TLCL_TEST_SECOND_PLATFORM");
    harness_open_more(second && second[0] ? second : NULL, &cl2, &d.e[1]);
    d.second_is_slower = second && strstr(second, "rusticl") && !strstr(tlcl_cl_device(h.cl)->platform_name, "rusticl");
    /* one parameter layout on both devices (their alignments may differ) */
    size_t a0 = tlcl_cl_device(h.cl)->mem_base_addr_align_bytes, a1 = tlcl_cl_device(cl2)->mem_base_addr_align_bytes;
    for (int r = 0; r < 2; r++)
        tlcl_engine_set_param_align(d.e[r], (a0 > a1 ? a0 : a1) / sizeof(float));
    test_equality(&h, &d);
    test_outer(&h, &d, 0);
    test_outer(&h, &d, 1);
    test_nan_replica(&h, &d);
    test_accuracy(&h, &d);
    test_drift_check(&h, &d);
    tlcl_engine_free(d.e[1]);
    tlcl_cl_free(cl2);
    return harness_finish(&h);
}
