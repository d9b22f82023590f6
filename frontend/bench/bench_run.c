/* bench_run.c — one measurement on one device (see bench_run.h). Profiling
 * is always on: the per-layer times come from the same timed steps as the
 * img/s figure (an event per launch costs little next to the launch).
 * Under mpirun each rank runs its share of the --batch images per step and
 * the gradients are summed over the ranks, as `tlcl train` does; img/s is
 * the global batch's. */
#include "bench_run.h"
#include "bench_child.h"
#include "dist.h"
#include "run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

typedef struct bench_state {
    tlcl_cl *cl;
    tlcl_engine *eng;
    tlcl_model model;
    tlcl_run *run;
    float *images, *probs;  /* one host batch, uploaded every step as `tlcl train` does */
    int *labels;
    int batch;              /* this rank's share of global_batch, from its sample first */
    int global_batch, first;
    tlcl_optimizer opt;
    int helper;             /* a compiling helper process was started */
} bench_state;

enum { CLASSES = 10 };

const char *bench_mode_name(bench_mode m)
{
    static const char *names[] = {"infer", "train", "head"};
    return names[m];
}

const char *bench_mode_words(bench_mode m)
{
    static const char *words[] = {"inference", "training step", "head training step"};
    return words[m];
}

const char *bench_start_kind(const bench_start *s)
{
    return s->compiled == 0 ? "warm" : s->from_cache == 0 ? "cold" : "partly cached";
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static tlcl_status bench_batch_alloc(bench_state *b, const bench_options *o)
{
    size_t pixels = (size_t)o->batch * o->size * o->size * 3;
    b->images = malloc(pixels * sizeof *b->images);
    b->labels = calloc((size_t)o->batch, sizeof *b->labels);
    b->probs = malloc((size_t)o->batch * CLASSES * sizeof *b->probs);
    if (!b->images || !b->labels || !b->probs)
        return tlcl_cl_fail(b->cl, TLCL_ERR_OOM, "out of host memory for the batch");
    for (size_t i = 0; i < pixels; i++)
        b->images[i] = 127.0f;
    int lo, hi;
    tlcl_dist_slice(o->batch, &lo, &hi);
    b->batch = hi - lo, b->global_batch = o->batch, b->first = lo;
    if (b->batch < 1)
        return tlcl_cl_fail(b->cl, TLCL_ERR_ARG, "--batch %d is smaller than the %d MPI ranks: each needs an image",
                            o->batch, tlcl_dist_size());
    return TLCL_OK;
}

/* On a cold start, a second process compiling part of the same first step
 * (tlcl_cl_helper_start): this command again, on this device, one step. */
static void start_helper(bench_state *b, const bench_options *o)
{
    bench_argv a;
    bench_argv_build(&a, o, tlcl_cl_device(b->cl)->index, 1, 1, 0, NULL, 0);
    if (tlcl_dist_size() == 1) /* under mpirun the ranks' shapes differ */
        b->helper = tlcl_cl_helper_start(b->cl, a.argv);
}

static tlcl_status bench_setup(bench_state *b, const bench_options *o, char *err, size_t len)
{
    tlcl_cl_options co = tlcl_cl_options_default();
    co.device_index = o->device;
    co.profiling = 1;
    tlcl_status s = tlcl_cl_init(&b->cl, &co, err, len);
    if (s != TLCL_OK)
        return s;
    start_helper(b, o);
    s = tlcl_engine_init(&b->eng, b->cl);
    if (s == TLCL_OK && tlcl_engine_tuning_warning(b->eng)[0])
        fprintf(stderr, "warning: %s\n", tlcl_engine_tuning_warning(b->eng));
    tlcl_model_options mo = tlcl_model_options_default();
    mo.arch = o->arch;
    mo.size = o->size;
    mo.classes = CLASSES;
    mo.activations = o->activations;
    if (s == TLCL_OK)
        s = tlcl_model_build(&b->model, &mo, err, len);
    if (s == TLCL_OK)
        s = tlcl_model_alloc(&b->model, b->eng, 1);
    tlcl_loss_spec loss = tlcl_loss_spec_default();
    if (s == TLCL_OK)
        s = tlcl_run_create(&b->run, &b->model, &loss, err, len);
    if (s == TLCL_OK)
        s = bench_batch_alloc(b, o);
    if (s != TLCL_OK)
        return s;
    if (o->mode == BENCH_HEAD)
        tlcl_model_set_trainable(&b->model, b->model.nblocks + 1, 1);
    b->opt = tlcl_optimizer_default(TLCL_OPT_ADAM);
    if (tlcl_dist_size() > 1) {
        tlcl_reducer ranks = tlcl_dist_reducer();
        tlcl_run_set_reducer(b->run, &ranks);
        tlcl_run_set_bucket_floats(b->run, o->bucket_floats);
    }
    return TLCL_OK;
}

/* One step of `tlcl train` (or one batch of `tlcl predict`): the batch's
 * upload, then the run layer's step or inference pass. */
static tlcl_status bench_step(bench_state *b, bench_mode mode, int step)
{
    tlcl_run_input in = {.images = b->images, .labels = mode == BENCH_INFER ? NULL : b->labels,
                         .count = b->batch};
    tlcl_run_batch *batch;
    tlcl_status s = tlcl_run_load(b->run, &in, NULL, &batch);
    if (s != TLCL_OK)
        return s;
    if (mode == BENCH_INFER)
        return tlcl_run_predict(b->run, batch, b->probs);
    tlcl_step_args a = {.lr = 1e-4f, .seed = (uint32_t)step, .step = step, .global_count = b->global_batch,
                         .first_sample = b->first};
    return tlcl_run_step(b->run, batch, &b->opt, &a);
}

static void bench_free(bench_state *b)
{
    if (b->eng) {
        tlcl_run_free(b->run);
        tlcl_model_free(&b->model);
        tlcl_engine_free(b->eng);
    }
    free(b->images), free(b->labels), free(b->probs);
    tlcl_cl_free(b->cl);
}

/* Steps [first, first + count), waiting for the device at the end. */
static tlcl_status run_steps(bench_state *b, bench_mode mode, int first, int count)
{
    tlcl_status s = TLCL_OK;
    for (int i = first; s == TLCL_OK && i < first + count; i++)
        s = bench_step(b, mode, i);
    return s == TLCL_OK ? tlcl_cl_finish(b->cl) : s;
}

/* The profile of the timed steps, per step. */
static int take_layers(bench_state *b, bench_result *r, int steps)
{
    const tlcl_cl_layer_profile *p;
    int n = tlcl_cl_profile_layers(b->cl, &p);
    free(r->layers);
    r->device_ms_per_step = 0;
    r->layers = calloc(n ? (size_t)n : 1, sizeof *r->layers);
    if (!r->layers)
        return -1;
    for (int i = 0; i < n; i++) {
        bench_layer *l = &r->layers[i];
        snprintf(l->name, sizeof l->name, "%s", p[i].name);
        for (int ph = 0; ph < 2; ph++) {
            l->ms[ph] = p[i].ms[ph] / steps;
            l->flops[ph] = p[i].flops[ph] / steps;
            l->bytes[ph] = p[i].bytes[ph] / steps;
            r->device_ms_per_step += l->ms[ph];
        }
    }
    r->nlayers = n;
    return 0;
}

/* Events that add up to under 1% of the wall time measure nothing (Mesa's
 * Rusticl reports 0, 1, 2, 3 for every launch): then as many steps again,
 * with a wait at each layer boundary, timed on the host. */
static tlcl_status profile_layers(bench_state *b, const bench_options *o, bench_result *r)
{
    tlcl_status s = tlcl_cl_profile_collect(b->cl);
    if (s == TLCL_OK && take_layers(b, r, o->steps))
        return tlcl_cl_fail(b->cl, TLCL_ERR_OOM, "out of host memory for the profile");
    if (s != TLCL_OK || r->device_ms_per_step >= 0.01 * r->ms_per_step)
        return s;
    tlcl_cl_profile_reset(b->cl);
    tlcl_cl_profile_host_timing(b->cl, 1);
    s = run_steps(b, o->mode, o->warmup + o->steps, o->steps);
    if (s == TLCL_OK)
        s = tlcl_cl_profile_collect(b->cl);
    tlcl_cl_profile_host_timing(b->cl, 0);
    if (s == TLCL_OK && take_layers(b, r, o->steps))
        return tlcl_cl_fail(b->cl, TLCL_ERR_OOM, "out of host memory for the profile");
    r->host_timed = 1;
    return s;
}

static double peak_rss_mib(void)
{
    struct rusage u;
    return getrusage(RUSAGE_SELF, &u) == 0 ? u.ru_maxrss / 1024.0 : 0.0; /* ru_maxrss is in KiB on Linux */
}

/* The per-kernel table as tlcl_cl_profile_report prints it, in a string. */
static char *kernel_table(bench_state *b, int steps)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    tlcl_cl_profile_report(b->cl, f, 1.0 / steps);
    fclose(f);
    return text;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of 7 all-reduces of a buffer the size of the gradients, each
 * after a barrier (the time of the sum, not of waiting for a late rank). */
static tlcl_status time_allreduce(bench_state *b, bench_result *r)
{
    enum { REPEATS = 7 };
    size_t n = b->model.params.total;
    float *buf = calloc(n, sizeof *buf);
    double t[REPEATS];
    char err[600];
    r->ranks = tlcl_dist_size();
    r->gradient_mib = (double)n * sizeof(float) / 1048576.0;
    if (r->ranks == 1)
        return free(buf), TLCL_OK;
    if (!buf)
        return tlcl_cl_fail(b->cl, TLCL_ERR_OOM, "out of host memory for the all-reduce timing");
    for (int i = 0; i < REPEATS; i++) {
        tlcl_dist_barrier();
        double t0 = now_s();
        if (tlcl_dist_sum_floats(buf, n, err, sizeof err) != TLCL_OK) {
            free(buf);
            return tlcl_cl_fail(b->cl, TLCL_ERR_IO, "%s", err);
        }
        t[i] = (now_s() - t0) * 1000.0;
    }
    free(buf);
    qsort(t, REPEATS, sizeof t[0], by_value);
    r->allreduce_ms = t[REPEATS / 2];
    return TLCL_OK;
}

/* The gradient buckets of the timed steps (the counters were reset before
 * them): how many, and how many overlapped the backward pass. */
static tlcl_status count_buckets(bench_state *b, const bench_options *o, bench_result *r)
{
    tlcl_run_stats st;
    TLCL_TRY(tlcl_run_sync(b->run, &st));
    r->loss = st.samples > 0 ? st.loss_sum / st.samples : NAN;
    r->buckets_per_step = (double)st.grad_buckets / o->steps;
    r->overlapped_per_step = (double)st.buckets_overlapped / o->steps;
    return TLCL_OK;
}

/* Everything after set-up; errors leave their message in the context. */
static tlcl_status measure(bench_state *b, const bench_options *o, bench_result *r, int kernels, double t_setup)
{
    double t0 = now_s();
    tlcl_status s = run_steps(b, o->mode, 0, 1);
    double first = now_s() - t0;
    if (tlcl_cl_is_helper(b->cl))
        return TLCL_OK; /* a helper's first step (on values that do not matter) is all it is for */
    tlcl_cl_stats st = tlcl_cl_stats_get(b->cl);
    r->start = (bench_start){.setup_s = t_setup,
                             .first_step_s = first,
                             .programs_s = st.program_seconds,
                             .compiled = st.programs_compiled,
                             .from_cache = st.programs_from_cache,
                             .launch_shapes = st.launch_shapes};
    if (s == TLCL_OK && o->warmup > 1)
        s = run_steps(b, o->mode, 1, o->warmup - 1);
    if (s != TLCL_OK || (s = tlcl_run_reset(b->run)) != TLCL_OK) /* count_buckets counts the timed steps */
        return s;
    tlcl_cl_profile_reset(b->cl);
    t0 = now_s();
    if ((s = run_steps(b, o->mode, o->warmup, o->steps)) != TLCL_OK)
        return s;
    r->ms_per_step = (now_s() - t0) * 1000.0 / o->steps;
    r->images_per_s = o->batch * 1000.0 / r->ms_per_step;
    if (o->mode != BENCH_INFER && (s = count_buckets(b, o, r)) != TLCL_OK)
        return s;
    if (kernels && (s = tlcl_cl_profile_collect(b->cl)) == TLCL_OK)
        r->kernel_table = kernel_table(b, o->steps); /* before a host-timed pass replaces the profile */
    if (s != TLCL_OK || (s = profile_layers(b, o, r)) != TLCL_OK)
        return s;
    r->peak_rss_mib = peak_rss_mib(); /* before the micro-benchmarks' buffers */
    tlcl_cl_profile_scope(b->cl, NULL, TLCL_PHASE_FWD, 0, 0); /* the peaks belong to no layer */
    if (o->peaks && (s = bench_peaks_measure(b->eng, &r->peaks)) != TLCL_OK)
        return s;
    r->has_peaks = o->peaks;
    double t_save = now_s(); /* (with a helper: its entries and the waits for them included) */
    tlcl_cl_save_programs(b->cl);
    r->start.save_s = now_s() - t_save;
    r->start.helper = b->helper;
    r->start.helper_jobs = tlcl_cl_stats_get(b->cl).helper_jobs;
    return time_allreduce(b, r);
}

tlcl_status bench_run(const bench_options *o, bench_result *r, int kernel_table, char *err, size_t err_len)
{
    memset(r, 0, sizeof *r);
    r->loss = NAN;
    bench_state b;
    memset(&b, 0, sizeof b);
    err[0] = '\0';
    double t0 = now_s();
    tlcl_status s = bench_setup(&b, o, err, err_len);
    if (s == TLCL_OK)
        s = measure(&b, o, r, kernel_table, now_s() - t0);
    if (s != TLCL_OK && !err[0] && b.cl)
        snprintf(err, err_len, "%s", tlcl_cl_error(b.cl));
    if (b.cl)
        r->dev = *tlcl_cl_device(b.cl);
    if (b.eng)
        snprintf(r->tuning, sizeof r->tuning, "%s", tlcl_engine_tuning_note(b.eng));
    snprintf(r->arch, sizeof r->arch, "%s", b.model.arch.name[0] ? b.model.arch.name : o->arch);
    if (b.cl) {
        tlcl_cl_helper_stop(b.cl);
        if (tlcl_cl_helper_warning(b.cl)[0]) /* the run itself is whole: only its start-up lost the help */
            fprintf(stderr, "warning: %s\n", tlcl_cl_helper_warning(b.cl));
    }
    bench_free(&b);
    return s;
}

void bench_result_free(bench_result *r)
{
    free(r->layers);
    free(r->kernel_table);
    r->layers = NULL;
    r->kernel_table = NULL;
    r->nlayers = 0;
}
