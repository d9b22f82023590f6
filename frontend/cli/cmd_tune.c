/* cmd_tune.c — `tlcl tune`: records the distinct GEMM, implicit
 * convolution and depthwise calls of one training step and one inference
 * pass of a model (the calls `tlcl train`, `test`, `predict` and `bench`
 * make), searches each kernel group's launch and tile parameters on them
 * (engine/tune_search.c) and stores the winners in the cache directory,
 * where every later engine on this device and driver finds them. */
#include "commands.h"
#include "model.h"
#include "run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

CLI_COMMAND(cli_tune, "tune", "", 0, 0,
    "Search this device's GEMM, convolution and depthwise launch parameters.\n"
    "Timed on the calls of a model's training step and inference pass; the winners go to the cache\n"
    "directory, where train, test, predict and bench find them.",
    CLI_DEVICE_OPTION,
    CLI_TEXT_OPT("model", "NAME", "architecture, as `tlcl summary` names it (default efficientnet-b0)"),
    CLI_INT_OPT("size", "S", 32, 4096, "input size (default 224)"),
    CLI_INT_OPT("batch", "B", 1, 4096, "images per step (default 16)"),
    CLI_INT_OPT("budget", "SECONDS", 1, 86400, "seconds for the whole command (default 240): what was found so far is kept"));

enum { TUNE_CLASSES = 10 };

typedef struct tune_state {
    tlcl_cl *cl;
    tlcl_engine *eng;
    tlcl_model model;
    tlcl_run *run;
    float *images, *probs;
    int *labels;
    char err[4096];
} tune_state;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static tlcl_status open_model(tune_state *t, int device, const char *arch, int size, int batch)
{
    tlcl_cl_options co = tlcl_cl_options_default();
    co.device_index = device;
    tlcl_status s = tlcl_cl_init(&t->cl, &co, t->err, sizeof t->err);
    if (s != TLCL_OK)
        return s;
    if ((s = tlcl_engine_init(&t->eng, t->cl)) != TLCL_OK) {
        snprintf(t->err, sizeof t->err, "%s", tlcl_cl_error(t->cl));
        return s;
    }
    tlcl_model_options mo = tlcl_model_options_default();
    mo.arch = arch, mo.size = size, mo.classes = TUNE_CLASSES;
    tlcl_loss_spec loss = tlcl_loss_spec_default();
    if ((s = tlcl_model_build(&t->model, &mo, t->err, sizeof t->err)) != TLCL_OK)
        return s;
    if ((s = tlcl_model_alloc(&t->model, t->eng, 1)) != TLCL_OK) {
        snprintf(t->err, sizeof t->err, "%s", tlcl_engine_error(t->eng));
        return s;
    }
    if ((s = tlcl_run_create(&t->run, &t->model, &loss, t->err, sizeof t->err)) != TLCL_OK)
        return s;
    size_t pixels = (size_t)batch * size * size * 3;
    t->images = malloc(pixels * sizeof *t->images);
    t->labels = calloc((size_t)batch, sizeof *t->labels);
    t->probs = malloc((size_t)batch * TUNE_CLASSES * sizeof *t->probs);
    if (!t->images || !t->labels || !t->probs) {
        snprintf(t->err, sizeof t->err, "out of host memory for a batch of %d images of %dx%d", batch, size, size);
        return TLCL_ERR_OOM;
    }
    for (size_t i = 0; i < pixels; i++)
        t->images[i] = 127.0f;
    return TLCL_OK;
}

/* One training step and one inference pass with the recorder on. */
static tlcl_status record_calls(tune_state *t, int batch)
{
    tlcl_run_input in = {.images = t->images, .labels = t->labels, .count = batch};
    tlcl_optimizer opt = tlcl_optimizer_default(TLCL_OPT_ADAM);
    tlcl_step_args a = {.lr = 1e-4f, .seed = 1, .step = 0, .global_count = batch, .first_sample = 0};
    tlcl_run_batch *b;
    tlcl_gemm_get_backend(t->eng); /* a first choice times a product of its own: not one of the model's */
    tlcl_status s = tlcl_tune_record(t->eng, 1);
    if (s == TLCL_OK && (s = tlcl_run_load(t->run, &in, NULL, &b)) == TLCL_OK)
        s = tlcl_run_step(t->run, b, &opt, &a);
    in.labels = NULL;
    if (s == TLCL_OK && (s = tlcl_run_load(t->run, &in, NULL, &b)) == TLCL_OK)
        s = tlcl_run_predict(t->run, b, t->probs);
    if (s == TLCL_OK)
        s = tlcl_cl_finish(t->cl);
    if (s == TLCL_OK)
        s = tlcl_tune_record(t->eng, 0);
    if (s != TLCL_OK)
        snprintf(t->err, sizeof t->err, "%s", tlcl_run_error(t->run));
    return s;
}

static void tune_free(tune_state *t)
{
    if (t->run)
        tlcl_run_free(t->run);
    if (t->eng) {
        tlcl_model_free(&t->model);
        tlcl_engine_free(t->eng);
    }
    free(t->images), free(t->labels), free(t->probs);
    tlcl_cl_free(t->cl);
}

static void print_tiles(const char *name, const tlcl_gemm_tiles *x, const tlcl_gemm_tiles *d)
{
    printf("  %-9s tm=%d vw=%d nv=%d vwn=%d lx=%d ly=%d   (default tm=%d vw=%d nv=%d vwn=%d lx=%d ly=%d)\n", name,
           x->tm, x->vw, x->nv, x->vwn, x->lx, x->ly, d->tm, d->vw, d->nv, d->vwn, d->lx, d->ly);
}

static void print_report(const tlcl_tune_report *r, const tlcl_tuning *def, double record_s, int budget)
{
    printf("%-10s %-36s %11s %11s %6s\n", "kernel", "call", "default ms", "tuned ms", "ratio");
    for (int i = 0; i < r->nresults; i++) {
        const tlcl_tune_result *x = &r->results[i];
        printf("%-10s %-36s %11.3f %11.3f %6.3f\n", x->kernel, x->shape, x->default_ms, x->tuned_ms,
               x->default_ms > 0 ? x->tuned_ms / x->default_ms : 0.0);
    }
    for (int g = 0; g < TLCL_TUNE_GROUPS; g++) {
        const tlcl_tune_group_report *x = &r->group[g];
        printf("%s: %d calls, %d of %d candidates timed in %.1f s, %s; total %.3f -> %.3f ms (%.3f)\n",
               tlcl_tune_group_name(g), x->shapes, x->tried, x->space, x->seconds,
               x->chosen ? "a candidate beat the default" : "the default stays",
               x->default_ms, x->tuned_ms, x->default_ms > 0 ? x->tuned_ms / x->default_ms : 1.0);
    }
    for (int g = 0; g < TLCL_TUNE_GROUPS; g++) { /* why a default stays, or what came closest */
        const tlcl_tune_group_report *x = &r->group[g];
        if (x->fastest < 0 || x->fastest == x->chosen)
            continue;
        const tlcl_tuning *f = &x->fastest_tuning;
        const tlcl_gemm_tiles *t = g < TLCL_GEMM_CLASSES ? &f->gemm[g] : &f->conv;
        char what[96];
        if (g == TLCL_TUNE_GROUPS - 1)
            snprintf(what, sizeof what, "strip=%d wgrad_items=%d", f->dw_strip, f->dw_wgrad_items);
        else
            snprintf(what, sizeof what, "tm=%d vw=%d nv=%d vwn=%d lx=%d ly=%d", t->tm, t->vw, t->nv, t->vwn, t->lx,
                     t->ly);
        printf("%s: the fastest other candidate, %s, took %.3f ms (%.3f of the default's) and was slower on %d of "
               "%d calls\n", tlcl_tune_group_name(g), what, x->fastest_ms,
               x->default_ms > 0 ? x->fastest_ms / x->default_ms : 0.0,
               x->fastest_slower, x->shapes);
    }
    printf("stored:\n");
    for (int k = 0; k < TLCL_GEMM_CLASSES; k++)
        print_tiles(tlcl_tune_group_name(k), &r->tuning.gemm[k], &def->gemm[k]);
    print_tiles("conv", &r->tuning.conv, &def->conv);
    printf("  %-9s strip=%d wgrad_items=%d   (default strip=%d wgrad_items=%d)\n", "depthwise", r->tuning.dw_strip,
           r->tuning.dw_wgrad_items, def->dw_strip, def->dw_wgrad_items);
    printf("tuning time: %.1f s (recording the calls %.1f s, search %.1f s)\n", record_s + r->seconds, record_s,
           r->seconds);
    if (r->budget_hit)
        printf("the --budget of %d s stopped the search early: the best found so far is kept\n", budget);
    printf("%s\n", r->path[0] ? r->path : "not stored: there is no cache directory (set TLCL_CACHE_DIR)");
}

void cli_report_tuning(const tlcl_engine *e)
{
    if (tlcl_engine_tuning_warning(e)[0])
        fprintf(stderr, "warning: %s\n", tlcl_engine_tuning_warning(e));
    fprintf(stderr, "%s\n", tlcl_engine_tuning_note(e));
}

int cmd_tune(int argc, char **argv)
{
    cli_args a;
    if (cli_parse(&cli_tune, argc, argv, &a))
        return a.status;
    const char *arch = cli_value(&a, "model") ? cli_value(&a, "model") : "efficientnet-b0";
    int size = (int)cli_number(&a, "size", 224), batch = (int)cli_number(&a, "batch", 16);
    int budget = (int)cli_number(&a, "budget", 240), device = cli_device(&a);
    if (device == -2)
        return 2;
    if (!tlcl_arch_find(arch)) {
        char names[1024];
        tlcl_arch_list(names, sizeof names);
        return cli_usage_error(&a, "unknown model '%s'; known: %s", arch, names);
    }
    tune_state t;
    memset(&t, 0, sizeof t);
    double t0 = now_s();
    tlcl_status s = open_model(&t, device, arch, size, batch);
    if (s == TLCL_OK) {
        const tlcl_device_info *d = tlcl_cl_device(t.cl);
        if (tlcl_engine_tuning_warning(t.eng)[0]) /* about to be replaced */
            fprintf(stderr, "warning: %s\n", tlcl_engine_tuning_warning(t.eng));
        printf("tlcl tune: %s at %d, batch %d, on %s / %s (%s)\n", arch, size, batch, d->platform_name, d->name,
               tlcl_device_family_name(tlcl_device_family_of(d)));
        fflush(stdout);
        s = record_calls(&t, batch);
    }
    double record_s = now_s() - t0;
    tlcl_tune_report r = {0};
    /* the budget bounds the whole command: the recording's time comes off the search's */
    if (s == TLCL_OK && (s = tlcl_tune_search(t.eng, budget - record_s, &r)) != TLCL_OK)
        snprintf(t.err, sizeof t.err, "%s", tlcl_engine_error(t.eng));
    if (s == TLCL_OK) {
        tlcl_tuning def = tlcl_tuning_default(tlcl_cl_device(t.cl));
        print_report(&r, &def, record_s, budget);
    } else {
        fprintf(stderr, "tlcl tune: %s\n", t.err);
    }
    tlcl_tune_report_free(&r);
    tune_free(&t);
    return s == TLCL_OK ? 0 : 1;
}
