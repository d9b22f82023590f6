/* cmd_bench.c — `tlcl bench`: times EfficientNet steps on a device.
 * Cold start (kernels built or loaded, first step), then warm-up, then timed
 * steps; prints img/s and ms/step, and with --json FILE writes them. */
#include "commands.h"
#include "model.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum bench_mode { BENCH_INFER, BENCH_TRAIN, BENCH_HEAD } bench_mode;

typedef struct bench_opts {
    const char *arch, *json;
    int batch, size, steps, warmup, device, profile;
    bench_mode mode;
} bench_opts;

typedef struct bench_state {
    tlcl_cl *cl;
    tlcl_engine *eng;
    tlcl_model model;
    tlcl_tensor x, labels, loss, dlogits;
    tlcl_optimizer opt;
} bench_state;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int parse_args(int argc, char **argv, bench_opts *o)
{
    *o = (bench_opts){"efficientnet-b0", NULL, 16, 224, 5, 2, -1, 0, BENCH_TRAIN};
    o->device = cli_device_index(argc, argv);
    if (o->device == -2)
        return -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = strchr(a, '=');
        v = v ? v + 1 : "";
        if (strncmp(a, "--device=", 9) == 0)
            continue;
        else if (strncmp(a, "--arch=", 7) == 0)
            o->arch = v;
        else if (strncmp(a, "--batch=", 8) == 0)
            o->batch = atoi(v);
        else if (strncmp(a, "--size=", 7) == 0)
            o->size = atoi(v);
        else if (strncmp(a, "--steps=", 8) == 0)
            o->steps = atoi(v);
        else if (strncmp(a, "--warmup=", 9) == 0)
            o->warmup = atoi(v);
        else if (strncmp(a, "--json=", 7) == 0)
            o->json = v;
        else if (strcmp(a, "--profile") == 0)
            o->profile = 1;
        else if (strcmp(a, "--mode=infer") == 0)
            o->mode = BENCH_INFER;
        else if (strcmp(a, "--mode=train") == 0)
            o->mode = BENCH_TRAIN;
        else if (strcmp(a, "--mode=head") == 0)
            o->mode = BENCH_HEAD;
        else {
            fprintf(stderr, "tlcl bench: unknown option '%s'\nusage: tlcl bench [--device=N] [--arch=A] [--batch=B] "
                            "[--size=S] [--mode=train|infer|head] [--steps=N] [--warmup=N] [--json=FILE] [--profile]\n", a);
            return -1;
        }
    }
    if (o->batch < 1 || o->steps < 1 || o->warmup < 0) {
        fprintf(stderr, "tlcl bench: --batch and --steps must be at least 1, --warmup at least 0\n");
        return -1;
    }
    return 0;
}

static tlcl_status bench_setup(bench_state *b, const bench_opts *o, char *err, size_t len)
{
    tlcl_cl_options co = tlcl_cl_options_default();
    co.device_index = o->device;
    co.profiling = o->profile;
    tlcl_status s = tlcl_cl_init(&b->cl, &co, err, len);
    if (s != TLCL_OK)
        return s;
    s = tlcl_engine_init(&b->eng, b->cl);
    tlcl_model_options mo = tlcl_model_options_default();
    mo.arch = o->arch;
    mo.size = o->size;
    mo.classes = 10;
    if (s == TLCL_OK)
        s = tlcl_model_build(&b->model, &mo, err, len);
    if (s != TLCL_OK)
        return s;
    if (tlcl_model_alloc(&b->model, b->eng, 1) != TLCL_OK ||
        tlcl_tensor_alloc(b->eng, &b->x, "images", o->batch, o->size, o->size, 3) != TLCL_OK ||
        tlcl_tensor_alloc(b->eng, &b->labels, "labels", o->batch, 1, 1, 1) != TLCL_OK ||
        tlcl_tensor_alloc(b->eng, &b->loss, "loss", 1, 1, 1, 1) != TLCL_OK ||
        tlcl_tensor_alloc(b->eng, &b->dlogits, "dlogits", o->batch, 1, 1, 10) != TLCL_OK ||
        tlcl_tensor_fill(b->eng, &b->x, 127.0f) != TLCL_OK || tlcl_tensor_fill(b->eng, &b->labels, 0.0f) != TLCL_OK) {
        snprintf(err, len, "%s", tlcl_cl_error(b->cl));
        return TLCL_ERR_CL;
    }
    if (o->mode == BENCH_HEAD)
        tlcl_model_set_trainable(&b->model, b->model.nblocks + 1, 1);
    b->opt = tlcl_optimizer_default(TLCL_OPT_ADAM);
    return TLCL_OK;
}

static tlcl_status bench_step(bench_state *b, bench_mode mode, int step)
{
    tlcl_tensor *logits;
    tlcl_status s = TLCL_OK;
    if (mode == BENCH_INFER)
        return tlcl_model_forward(&b->model, &b->x, 0, 0, &logits);
    if ((s = tlcl_params_zero_grads(b->eng, &b->model.params)) != TLCL_OK ||
        (s = tlcl_model_forward(&b->model, &b->x, 1, (uint32_t)step, &logits)) != TLCL_OK ||
        (s = tlcl_softmax_xent(b->eng, &b->loss, NULL, &b->dlogits, logits, b->labels.buf, NULL, 0)) != TLCL_OK ||
        (s = tlcl_model_backward(&b->model, &b->dlogits)) != TLCL_OK)
        return s;
    return tlcl_optimizer_step(b->eng, &b->opt, &b->model.params, 1e-4f, &b->loss);
}

static void bench_free(bench_state *b)
{
    tlcl_tensor *all[] = {&b->x, &b->labels, &b->loss, &b->dlogits};
    if (b->eng) {
        for (int i = 0; i < 4; i++)
            tlcl_tensor_release(b->eng, all[i]);
        tlcl_model_free(&b->model);
        tlcl_engine_free(b->eng);
    }
    tlcl_cl_free(b->cl);
}

static void write_json(const bench_opts *o, const bench_state *b, double cold, double ms, double ips)
{
    static const char *modes[] = {"infer", "train", "head"};
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "device", tlcl_cl_device(b->cl)->name);
    cJSON_AddStringToObject(r, "platform", tlcl_cl_device(b->cl)->platform_name);
    cJSON_AddStringToObject(r, "arch", b->model.arch.name);
    cJSON_AddStringToObject(r, "mode", modes[o->mode]);
    cJSON_AddNumberToObject(r, "batch", o->batch);
    cJSON_AddNumberToObject(r, "size", o->size);
    cJSON_AddNumberToObject(r, "first_step_s", cold);
    cJSON_AddNumberToObject(r, "ms_per_step", ms);
    cJSON_AddNumberToObject(r, "images_per_s", ips);
    cJSON_AddNumberToObject(r, "programs_compiled", tlcl_cl_stats_get(b->cl).programs_compiled);
    cJSON_AddNumberToObject(r, "programs_from_cache", tlcl_cl_stats_get(b->cl).programs_from_cache);
    char *text = cJSON_Print(r);
    FILE *f = fopen(o->json, "w");
    if (f) {
        fprintf(f, "%s\n", text);
        fclose(f);
    } else {
        fprintf(stderr, "tlcl bench: cannot write %s\n", o->json);
    }
    free(text);
    cJSON_Delete(r);
}

int cmd_bench(int argc, char **argv)
{
    bench_opts o;
    if (parse_args(argc, argv, &o))
        return 2;
    bench_state b;
    memset(&b, 0, sizeof b);
    char err[4096];
    double t0 = now_s();
    tlcl_status s = bench_setup(&b, &o, err, sizeof err);
    if (s == TLCL_OK && ((s = bench_step(&b, o.mode, 0)) != TLCL_OK || (s = tlcl_cl_finish(b.cl)) != TLCL_OK))
        snprintf(err, sizeof err, "%s", tlcl_cl_error(b.cl));
    double cold = now_s() - t0;
    for (int i = 1; s == TLCL_OK && i < o.warmup; i++)
        if ((s = bench_step(&b, o.mode, i)) != TLCL_OK || (s = tlcl_cl_finish(b.cl)) != TLCL_OK)
            snprintf(err, sizeof err, "%s", tlcl_cl_error(b.cl));
    if (s == TLCL_OK) /* b.cl is NULL when no device opened */
        tlcl_cl_profile_reset(b.cl);
    double t1 = now_s();
    for (int i = 0; s == TLCL_OK && i < o.steps; i++)
        if ((s = bench_step(&b, o.mode, o.warmup + i)) != TLCL_OK)
            snprintf(err, sizeof err, "%s", tlcl_cl_error(b.cl));
    if (s == TLCL_OK && (s = tlcl_cl_finish(b.cl)) != TLCL_OK)
        snprintf(err, sizeof err, "%s", tlcl_cl_error(b.cl));
    if (s != TLCL_OK) {
        fprintf(stderr, "tlcl bench: %s\n", err);
        bench_free(&b);
        return 1;
    }
    double ms = (now_s() - t1) * 1000.0 / o.steps, ips = o.batch * 1000.0 / ms;
    tlcl_cl_stats st = tlcl_cl_stats_get(b.cl);
    printf("device: %s / %s\n%s %s batch %d size %d: %.1f ms/step, %.2f img/s\n"
           "first step %.2f s (programs compiled %d, from cache %d)\n",
           tlcl_cl_device(b.cl)->platform_name, tlcl_cl_device(b.cl)->name, b.model.arch.name,
           o.mode == BENCH_INFER ? "inference" : o.mode == BENCH_TRAIN ? "training step" : "head training step",
           o.batch, o.size, ms, ips, cold, st.programs_compiled, st.programs_from_cache);
    if (o.json)
        write_json(&o, &b, cold, ms, ips);
    if (o.profile) {
        tlcl_cl_profile_collect(b.cl);
        tlcl_cl_profile_report(b.cl, stdout, 1.0 / o.steps);
    }
    bench_free(&b);
    return 0;
}
