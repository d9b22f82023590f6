/* bench_compare.c — `tlcl bench --all` / `--cold` (see bench_compare.h):
 * per device a measuring run and a start-only run in child processes, then
 * the Markdown table, the JSON of every run and the PNG bar chart. The JSON
 * keeps each run's own JSON whole (the per-layer profile included) and adds
 * the warm start and any error, so nothing measured is lost. */
#define _XOPEN_SOURCE 700 /* nftw, to remove the temporary caches */
#include "bench_compare.h"
#include "bench_child.h"
#include "bench_report.h"
#include "bench_types.h"
#include "config.h"
#include "plot.h"
#include "textout.h"

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct device_run {
    tlcl_device_info dev;
    cJSON *run;          /* the measuring run's JSON, NULL when it wrote none */
    cJSON *warm;         /* the start-only run's */
    char error[1024];    /* why the device has no result; "" when it has */
    char warm_error[512];
} device_run;

/* ---- reading the runs' JSON ------------------------------------------------- */

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *str(const cJSON *o, const char *key)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
    return s ? s : "";
}

static const cJSON *item(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

/* The failure of a run: its own "error", else why the process failed. */
static void run_error(const cJSON *j, const char *why, char *dst, size_t len)
{
    snprintf(dst, len, "%s", j ? str(j, "error") : why);
}

/* ---- the runs ------------------------------------------------------------------ */

static void bench_device(const bench_compare_options *c, const char *tmp, device_run *d)
{
    char root[1100], run_json[1200], warm_json[1200], why[512];
    snprintf(root, sizeof root, "%s/device%d", tmp, d->dev.index);
    snprintf(run_json, sizeof run_json, "%s/run.json", root);
    snprintf(warm_json, sizeof warm_json, "%s/warm.json", root);
    mkdir(root, 0700);
    printf("== device %d: %s / %s%s ==\n", d->dev.index, d->dev.platform_name, d->dev.name,
           c->cold ? " (from empty caches)" : "");
    bench_child child = {&c->run, d->dev.index, 0, c->profile, 0, c->cold ? root : NULL, run_json, c->timeout_s};
    d->run = bench_child_run(&child, why, sizeof why);
    run_error(d->run, why, d->error, sizeof d->error);
    if (d->error[0]) {
        printf("failed: %s\n\n", d->error);
        return;
    }
    /* the warm start: a new process on the caches the first run filled */
    child = (bench_child){&c->run, d->dev.index, 1, 0, 1, c->cold ? root : NULL, warm_json, c->timeout_s};
    d->warm = bench_child_run(&child, why, sizeof why);
    run_error(d->warm, why, d->warm_error, sizeof d->warm_error);
    const cJSON *s = item(d->warm, "start");
    if (d->warm_error[0])
        printf("warm start run failed: %s\n\n", d->warm_error);
    else
        printf("next process: %s start %.2f s (set-up %.2f s + first step %.2f s)\n\n", str(s, "kind"),
               num(s, "total_s"), num(s, "setup_s"), num(s, "first_step_s"));
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

/* ---- the comparison ------------------------------------------------------------ */

static void set(cJSON *o, const char *key, cJSON *v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    cJSON_AddItemToObject(o, key, v);
}

/* The run's layers by type against the device's own peaks (bench_types.h);
 * NaN (nothing to divide) becomes null. */
static cJSON *types_json(const cJSON *run)
{
    bench_type_share s[BENCH_NTYPES];
    cJSON *a = cJSON_CreateArray();
    bench_type_shares(run, s);
    for (int t = 0; t < BENCH_NTYPES; t++) {
        if (!s[t].layers)
            continue;
        const double v[] = {s[t].ms, s[t].pct_time, s[t].gflops, s[t].pct_gemm, s[t].gbps, s[t].pct_copy};
        const char *keys[] = {"ms", "pct_of_layer_time", "gflops", "pct_of_gemm_peak", "gbps", "pct_of_copy_peak"};
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "type", bench_layer_type_name((bench_layer_type)t));
        cJSON_AddNumberToObject(o, "layers", s[t].layers);
        for (size_t k = 0; k < sizeof v / sizeof *v; k++)
            cJSON_AddItemToObject(o, keys[k], isfinite(v[k]) ? cJSON_CreateNumber(v[k]) : cJSON_CreateNull());
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

static cJSON *device_json(const device_run *d)
{
    cJSON *j = d->run ? cJSON_Duplicate(d->run, 1) : cJSON_CreateObject();
    set(j, "index", cJSON_CreateNumber(d->dev.index));
    set(j, "device", cJSON_CreateString(d->dev.name));
    set(j, "platform", cJSON_CreateString(d->dev.platform_name));
    set(j, "type", cJSON_CreateString(d->dev.type));
    if (d->error[0])
        set(j, "error", cJSON_CreateString(d->error));
    const cJSON *ws = item(d->warm, "start");
    set(j, "warm_start", ws && !d->warm_error[0] ? cJSON_Duplicate(ws, 1) : cJSON_CreateNull());
    if (d->warm_error[0])
        set(j, "warm_error", cJSON_CreateString(d->warm_error));
    if (d->run && !d->error[0])
        set(j, "layer_types", types_json(d->run));
    return j;
}

static cJSON *comparison_json(const bench_compare_options *c, const device_run *d, int n)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "arch", c->run.arch);
    cJSON_AddStringToObject(j, "mode", bench_mode_name(c->run.mode));
    cJSON_AddNumberToObject(j, "batch", c->run.batch);
    cJSON_AddNumberToObject(j, "size", c->run.size);
    cJSON_AddNumberToObject(j, "steps", c->run.steps);
    cJSON_AddNumberToObject(j, "warmup", c->run.warmup);
    cJSON_AddBoolToObject(j, "cold", c->cold);
    cJSON *a = cJSON_AddArrayToObject(j, "devices");
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(a, device_json(&d[i]));
    return j;
}

/* Text in a table cell: no line breaks, pipes escaped. */
static void md_text(FILE *f, const char *s)
{
    for (; *s; s++)
        if (*s == '|')
            fputs("\\|", f);
        else
            fputc(*s == '\n' || *s == '\r' ? ' ' : *s, f);
}

static void md_num(FILE *f, double v, const char *fmt)
{
    fputc(' ', f);
    if (isfinite(v))
        fprintf(f, fmt, v);
    else
        fputs("–", f);
    fputs(" |", f);
}

/* The start-up of a run when it was of the wanted kind ("cold" or "warm");
 * a partly cached start says so. */
static void md_start(FILE *f, const cJSON *start, const char *want)
{
    const char *kind = str(start, "kind");
    if (strcmp(kind, want) == 0)
        md_num(f, num(start, "total_s"), "%.2f");
    else if (strcmp(kind, "partly cached") == 0)
        fprintf(f, " %.2f (partly cached) |", num(start, "total_s"));
    else
        fputs(" – |", f);
}

static void md_row(FILE *f, const device_run *d)
{
    fputs("| ", f);
    md_text(f, d->dev.name);
    fputs(" | ", f);
    md_text(f, d->dev.platform_name);
    fputs(" |", f);
    const cJSON *r = d->error[0] ? NULL : d->run, *peaks = item(r, "peaks");
    md_num(f, num(r, "images_per_s"), "%.2f");
    md_num(f, num(r, "ms_per_step"), "%.1f");
    if (r)
        md_start(f, item(r, "start"), "cold");
    else
        fputs(" – |", f);
    md_start(f, d->warm ? item(d->warm, "start") : item(r, "start"), "warm");
    md_num(f, num(peaks, "gemm_gflops"), "%.1f");
    md_num(f, num(peaks, "copy_gbps"), "%.1f");
    md_num(f, num(r, "peak_rss_mib"), "%.0f");
    fputc(' ', f);
    if (d->error[0])
        fputs("failed: ", f), md_text(f, d->error);
    else if (d->warm_error[0])
        fputs("warm-start run failed: ", f), md_text(f, d->warm_error);
    fputs(" |\n", f);
}

/* Each device's layers by type: where its time goes and how near it comes
 * to its own GEMM and copy peaks there. */
static void md_types(FILE *f, const device_run *d, int n)
{
    fputs("\nBy layer type (forward + backward per step), against each device's own peaks:\n\n"
          "| device | layer type | layers | ms/step | % of layer time | GFLOP/s | % GEMM peak | GB/s "
          "| % copy peak |\n|---|---|--:|--:|--:|--:|--:|--:|--:|\n",
          f);
    for (int i = 0; i < n; i++) {
        bench_type_share s[BENCH_NTYPES];
        if (d[i].error[0] || !bench_type_shares(d[i].run, s))
            continue;
        for (int t = 0; t < BENCH_NTYPES; t++) {
            if (!s[t].layers)
                continue;
            fputs("| ", f);
            md_text(f, d[i].dev.name);
            fprintf(f, " | %s | %d |", bench_layer_type_name((bench_layer_type)t), s[t].layers);
            md_num(f, s[t].ms, "%.2f");
            md_num(f, s[t].pct_time, "%.1f");
            md_num(f, s[t].gflops, "%.1f");
            md_num(f, s[t].pct_gemm, "%.1f");
            md_num(f, s[t].gbps, "%.1f");
            md_num(f, s[t].pct_copy, "%.1f");
            fputc('\n', f);
        }
    }
}

/* The whole Markdown document (malloc'd). */
static char *markdown(const bench_compare_options *c, const device_run *d, int n)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    const bench_options *o = &c->run;
    fprintf(f, "`tlcl bench`: %s %s, batch %d, size %d; %d timed step%s after %d warm-up step%s\n\n", o->arch,
            bench_mode_words(o->mode), o->batch, o->size, o->steps, o->steps == 1 ? "" : "s", o->warmup,
            o->warmup == 1 ? "" : "s");
    fputs("| device | platform | img/s | ms/step | cold start s | warm start s | GEMM GFLOP/s | copy GB/s "
          "| peak RSS MiB | note |\n|---|---|--:|--:|--:|--:|--:|--:|--:|---|\n",
          f);
    for (int i = 0; i < n; i++)
        md_row(f, &d[i]);
    fprintf(f, "\nStart = set-up (context, model, parameters) + the first step, programs built or loaded on "
               "the way. Cold: every program compiled%s; warm: a new process with every program from the "
               "cache. Peak RSS: the process's host memory (a CPU device's buffers are in it).\n",
            c->cold ? " (tlcl's and the drivers' caches emptied first)"
                    : " (– when the caches were already warm: --cold empties them first)");
    md_types(f, d, n);
    fclose(f);
    return text;
}

static int write_chart(const bench_compare_options *c, const device_run *d, int n, const char *path, char *err,
                       size_t err_len)
{
    plot_bar *bars = calloc((size_t)n, sizeof *bars);
    if (!bars) {
        snprintf(err, err_len, "out of host memory drawing %s", path);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const cJSON *r = d[i].error[0] ? NULL : d[i].run;
        bars[i] = (plot_bar){d[i].dev.name, d[i].dev.platform_name, num(r, "images_per_s")};
    }
    char title[200];
    snprintf(title, sizeof title, "%s %s, batch %d, size %d", c->run.arch, bench_mode_words(c->run.mode), c->run.batch,
             c->run.size);
    int rc = plot_bars(path, title, "images per second", bars, n, err, err_len);
    free(bars);
    return rc;
}

static int write_dir(const bench_compare_options *c, const device_run *d, int n, const char *md, const cJSON *j,
                     char *err, size_t err_len)
{
    char path[4096];
    if (tlcl_mkdir_p(c->out_dir, err, err_len))
        return -1;
    snprintf(path, sizeof path, "%s/bench.md", c->out_dir);
    if (textout_write_all(path, md, err, err_len))
        return -1;
    snprintf(path, sizeof path, "%s/bench.json", c->out_dir);
    if (bench_report_write_json(path, j, err, err_len))
        return -1;
    snprintf(path, sizeof path, "%s/bench.png", c->out_dir);
    return write_chart(c, d, n, path, err, err_len);
}

/* bench.md, bench.json, bench.png in the output directory; --json too. */
static int write_outputs(const bench_compare_options *c, const device_run *d, int n, const char *md)
{
    cJSON *j = comparison_json(c, d, n);
    char err[8192];
    int rc = 0;
    if (c->json && bench_report_write_json(c->json, j, err, sizeof err))
        rc = -1, fprintf(stderr, "tlcl bench: %s\n", err);
    if (c->out_dir && write_dir(c, d, n, md, j, err, sizeof err))
        rc = -1, fprintf(stderr, "tlcl bench: %s\n", err);
    else if (c->out_dir)
        printf("wrote %s/bench.md, bench.json and bench.png\n", c->out_dir);
    cJSON_Delete(j);
    return rc;
}

/* The devices to run: all of them, or the one asked for (the default one). */
static device_run *pick_devices(const bench_compare_options *c, int *n, int *status)
{
    tlcl_device_info *devs = NULL;
    int count = 0;
    char err[4096];
    *status = 1;
    if (tlcl_devices_list(&devs, &count, err, sizeof err) != TLCL_OK) {
        fprintf(stderr, "tlcl bench: %s\n", err);
        return NULL;
    }
    int one = c->run.device >= 0 ? c->run.device : tlcl_devices_default(devs, count);
    if (!c->all && one >= count) {
        fprintf(stderr, "tlcl bench: device index %d is out of range: `tlcl devices` lists %d device%s\n", one, count,
                count == 1 ? "" : "s");
        free(devs);
        *status = 2;
        return NULL;
    }
    *n = c->all ? count : 1;
    device_run *d = calloc((size_t)*n, sizeof *d);
    for (int i = 0; d && i < *n; i++)
        d[i].dev = devs[c->all ? i : one];
    free(devs);
    *status = d ? 0 : 1;
    return d;
}

int bench_compare(const bench_compare_options *c)
{
    int n = 0, status = 0;
    device_run *d = pick_devices(c, &n, &status);
    if (!d)
        return status;
    char tmp[] = "/tmp/tlcl-bench-XXXXXX";
    if (!mkdtemp(tmp)) {
        fprintf(stderr, "tlcl bench: cannot create a temporary directory in /tmp\n");
        free(d);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        bench_device(c, tmp, &d[i]);
        status |= d[i].error[0] || d[i].warm_error[0];
    }
    nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    char *md = markdown(c, d, n);
    if (md)
        fputs(md, stdout);
    if (!md || write_outputs(c, d, n, md))
        status = 1;
    free(md);
    for (int i = 0; i < n; i++)
        cJSON_Delete(d[i].run), cJSON_Delete(d[i].warm);
    free(d);
    return status;
}
