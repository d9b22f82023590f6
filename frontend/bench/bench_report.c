/* bench_report.c — text and JSON of one `tlcl bench` run (see
 * bench_report.h). The rates of a layer are its work per step over its
 * device time per step, forward and backward together; "% peak" puts them
 * next to the GEMM and copy micro-benchmarks of the same device, so a layer
 * far from both is neither compute- nor bandwidth-bound but waiting on
 * something else (launch overhead, a poor kernel). */
#include "bench_report.h"
#include "bench_roofline.h"
#include "textout.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOP_LAYERS 12

static double layer_ms(const bench_layer *l) { return l->ms[0] + l->ms[1]; }

/* "  12.3" or "     -" when there is nothing to divide */
static void rate_cell(FILE *f, double work, double ms, double scale, int width)
{
    if (work > 0 && ms > 0)
        fprintf(f, " %*.1f", width, work / (ms * 1e-3) * scale);
    else
        fprintf(f, " %*s", width, "-");
}

static void percent_cell(FILE *f, double work, double ms, double peak)
{
    if (work > 0 && ms > 0 && peak > 0)
        fprintf(f, " %5.1f%%", 100.0 * work / (ms * 1e-3) * 1e-9 / peak);
    else
        fprintf(f, " %6s", "-");
}

static void layer_row(FILE *f, const char *name, const double ms[2], double flops, double bytes, const bench_result *r)
{
    double t = ms[0] + ms[1];
    fprintf(f, "%-26.26s %8.2f %8.2f", name, ms[0], ms[1]);
    rate_cell(f, flops, t, 1e-9, 8);
    if (r->has_peaks)
        percent_cell(f, flops, t, r->peaks.gemm_gflops);
    rate_cell(f, bytes, t, 1e-9, 7);
    if (r->has_peaks)
        percent_cell(f, bytes, t, r->peaks.copy_gbps);
    fputc('\n', f);
}

static void bench_layer_row(FILE *f, const bench_layer *l, const bench_result *r)
{
    layer_row(f, l->name, l->ms, l->flops[0] + l->flops[1], l->bytes[0] + l->bytes[1], r);
}

static int by_time(const void *a, const void *b)
{
    double d = layer_ms(*(const bench_layer *const *)b) - layer_ms(*(const bench_layer *const *)a);
    return (d > 0) - (d < 0);
}

/* Network order, or the TOP_LAYERS slowest; then the totals of all. */
static void print_layers(FILE *f, const bench_result *r, int all)
{
    const bench_layer **order = malloc((r->nlayers ? (size_t)r->nlayers : 1) * sizeof *order);
    if (!order)
        return;
    for (int i = 0; i < r->nlayers; i++)
        order[i] = &r->layers[i];
    int shown = r->nlayers;
    if (!all) {
        qsort(order, (size_t)r->nlayers, sizeof *order, by_time);
        shown = shown < TOP_LAYERS ? shown : TOP_LAYERS;
    }
    fprintf(f, "%-26s %8s %8s %8s%s %7s%s\n", all ? "layer (network order)" : "layer (slowest first)", "fwd ms",
            "bwd ms", "GFLOP/s", r->has_peaks ? "  %GEMM" : "", "GB/s", r->has_peaks ? "  %copy" : "");
    double ms[2] = {0, 0}, flops = 0, bytes = 0;
    for (int i = 0; i < r->nlayers; i++) {
        if (i < shown)
            bench_layer_row(f, order[i], r);
        ms[0] += r->layers[i].ms[0], ms[1] += r->layers[i].ms[1];
        flops += r->layers[i].flops[0] + r->layers[i].flops[1];
        bytes += r->layers[i].bytes[0] + r->layers[i].bytes[1];
    }
    char total[48];
    snprintf(total, sizeof total, "all %d layers", r->nlayers);
    layer_row(f, total, ms, flops, bytes, r);
    free(order);
}

static bench_roofline roofline_of(const bench_result *r)
{
    return bench_roofline_of(r->layers, r->nlayers, r->has_peaks ? r->peaks.gemm_gflops : 0,
                             r->has_peaks ? r->peaks.copy_gbps : 0);
}

/* The step against the bounds the device's own peaks set (without peaks: none). */
static void print_roofline(FILE *f, const bench_result *r)
{
    bench_roofline b = roofline_of(r);
    if (!r->has_peaks || !(b.device_ms > 0))
        return;
    fprintf(f, "roofline: the layers' %.1f ms of device time per step reach %.1f%% of the per-layer bound (%.1f ms: "
               "each layer at the GEMM peak or the copy bandwidth, whichever binds) and %.1f%% of the compute-only "
               "bound (%.1f ms: every FLOP at the GEMM peak)\n",
            b.device_ms, b.pct_layer, b.layer_bound_ms, b.pct_compute, b.compute_bound_ms);
}

static void print_start(FILE *f, const bench_result *r)
{
    const bench_start *s = &r->start;
    fprintf(f,
            "%s start %.2f s: set-up %.2f s + first step %.2f s (programs: %d compiled, %d from cache, %.2f s in "
            "build/load calls; %d kernel/local-size pairs launched; first step minus a steady step: %.2f s; "
            "after the run, %.2f s writing them to the cache)\n",
            bench_start_kind(s), s->setup_s + s->first_step_s, s->setup_s, s->first_step_s, s->compiled,
            s->from_cache, s->programs_s, s->launch_shapes, s->first_step_s - r->ms_per_step * 1e-3, s->save_s);
    if (s->helper)
        fprintf(f, "a compiling helper process shared the cold start: %d of the builds, first launches and cache "
                   "entries were its work\n", s->helper_jobs);
}

void bench_report_print(FILE *f, const bench_options *o, const bench_result *r, int all_layers)
{
    fprintf(f, "device: %s / %s\n%s %s batch %d size %d%s: %.1f ms/step, %.2f img/s\n", r->dev.platform_name,
            r->dev.name, r->arch, bench_mode_words(o->mode), o->batch, o->size,
            o->activations == TLCL_BF16 ? " (mixed_bfloat16: bfloat16 feature maps)" : "", r->ms_per_step,
            r->images_per_s);
    if (r->ranks > 1)
        fprintf(f, "%d MPI ranks share each step (this rank's device above); all-reduce of the %.1f MiB gradient "
                   "buffer: %.2f ms (median of 7); per step %.1f gradient buckets summed, %.1f of them started "
                   "while the backward pass still ran\n", r->ranks, r->gradient_mib, r->allreduce_ms,
                r->buckets_per_step, r->overlapped_per_step);
    if (r->tuning[0])
        fprintf(f, "%s\n", r->tuning);
    print_start(f, r);
    fprintf(f, "peak RSS %.0f MiB (host memory of the process; a CPU device's buffers are in it)\n", r->peak_rss_mib);
    if (r->has_peaks)
        fprintf(f, "device peaks: GEMM %d^3 %.1f GFLOP/s (%s), copy %.1f GB/s (%.0f MiB buffer, read + write)\n",
                r->peaks.gemm_n, r->peaks.gemm_gflops, r->peaks.gemm_backend, r->peaks.copy_gbps, r->peaks.copy_mib);
    if (r->host_timed)
        fprintf(f, "this driver's profiling events carry no time: layers timed on the host in a pass of their own, "
                   "waiting at each layer boundary (%.1f ms per step):\n",
                r->device_ms_per_step);
    else
        fprintf(f, "device time %.1f ms per step (%.0f%% of the step's wall time), from profiling events:\n",
                r->device_ms_per_step, r->ms_per_step > 0 ? 100.0 * r->device_ms_per_step / r->ms_per_step : 0.0);
    print_layers(f, r, all_layers);
    print_roofline(f, r);
    if (all_layers && r->kernel_table && !r->host_timed)
        fputs(r->kernel_table, f);
}

/* ---- JSON ------------------------------------------------------------------ */

static cJSON *options_json(const bench_options *o)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "arch", o->arch);
    cJSON_AddStringToObject(j, "mode", bench_mode_name(o->mode));
    cJSON_AddStringToObject(j, "precision", o->activations == TLCL_BF16 ? "mixed_bfloat16" : "float32");
    cJSON_AddNumberToObject(j, "batch", o->batch);
    cJSON_AddNumberToObject(j, "size", o->size);
    cJSON_AddNumberToObject(j, "steps", o->steps);
    cJSON_AddNumberToObject(j, "warmup", o->warmup);
    return j;
}

static cJSON *start_json(const bench_result *r)
{
    const bench_start *s = &r->start;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "kind", bench_start_kind(s));
    cJSON_AddNumberToObject(j, "total_s", s->setup_s + s->first_step_s);
    cJSON_AddNumberToObject(j, "setup_s", s->setup_s);
    cJSON_AddNumberToObject(j, "first_step_s", s->first_step_s);
    cJSON_AddNumberToObject(j, "first_step_minus_steady_s", s->first_step_s - r->ms_per_step * 1e-3);
    cJSON_AddNumberToObject(j, "programs_s", s->programs_s);
    cJSON_AddNumberToObject(j, "programs_compiled", s->compiled);
    cJSON_AddNumberToObject(j, "programs_from_cache", s->from_cache);
    cJSON_AddNumberToObject(j, "launch_shapes", s->launch_shapes);
    cJSON_AddNumberToObject(j, "cache_save_s", s->save_s);
    cJSON_AddBoolToObject(j, "helper", s->helper);
    cJSON_AddNumberToObject(j, "helper_jobs", s->helper_jobs);
    return j;
}

static cJSON *peaks_json(const bench_result *r)
{
    if (!r->has_peaks)
        return cJSON_CreateNull();
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "gemm_n", r->peaks.gemm_n);
    cJSON_AddStringToObject(j, "gemm_backend", r->peaks.gemm_backend);
    cJSON_AddNumberToObject(j, "gemm_gflops", r->peaks.gemm_gflops);
    cJSON_AddNumberToObject(j, "copy_mib", r->peaks.copy_mib);
    cJSON_AddNumberToObject(j, "copy_gbps", r->peaks.copy_gbps);
    return j;
}

static cJSON *layers_json(const bench_result *r)
{
    static const char *keys[2][3] = {{"fwd_ms", "fwd_flops", "fwd_bytes"}, {"bwd_ms", "bwd_flops", "bwd_bytes"}};
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < r->nlayers; i++) {
        const bench_layer *l = &r->layers[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "name", l->name);
        for (int ph = 0; ph < 2; ph++) {
            cJSON_AddNumberToObject(j, keys[ph][0], l->ms[ph]);
            cJSON_AddNumberToObject(j, keys[ph][1], l->flops[ph]);
            cJSON_AddNumberToObject(j, keys[ph][2], l->bytes[ph]);
        }
        cJSON_AddItemToArray(a, j);
    }
    return a;
}

/* null without peaks */
static cJSON *roofline_json(const bench_result *r)
{
    bench_roofline b = roofline_of(r);
    if (!r->has_peaks || !(b.device_ms > 0))
        return cJSON_CreateNull();
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "device_ms", b.device_ms);
    cJSON_AddNumberToObject(j, "layer_bound_ms", b.layer_bound_ms);
    cJSON_AddNumberToObject(j, "compute_bound_ms", b.compute_bound_ms);
    cJSON_AddNumberToObject(j, "pct_layer_bound", b.pct_layer);
    cJSON_AddNumberToObject(j, "pct_compute_bound", b.pct_compute);
    return j;
}

cJSON *bench_report_json(const bench_options *o, const bench_result *r)
{
    cJSON *j = options_json(o);
    cJSON_AddNumberToObject(j, "index", r->dev.index);
    cJSON_AddStringToObject(j, "device", r->dev.name);
    cJSON_AddStringToObject(j, "platform", r->dev.platform_name);
    cJSON_AddStringToObject(j, "type", r->dev.type);
    cJSON_AddStringToObject(j, "tuning", r->tuning);
    cJSON_AddNumberToObject(j, "ms_per_step", r->ms_per_step);
    cJSON_AddNumberToObject(j, "images_per_s", r->images_per_s);
    cJSON_AddNumberToObject(j, "ranks", r->ranks);
    if (isfinite(r->loss)) /* the training modes' mean loss of the timed steps */
        cJSON_AddNumberToObject(j, "loss", r->loss);
    cJSON_AddNumberToObject(j, "allreduce_ms", r->allreduce_ms);
    cJSON_AddNumberToObject(j, "buckets_per_step", r->buckets_per_step);
    cJSON_AddNumberToObject(j, "buckets_overlapped_per_step", r->overlapped_per_step);
    cJSON_AddNumberToObject(j, "gradient_mib", r->gradient_mib);
    cJSON_AddNumberToObject(j, "device_ms_per_step", r->device_ms_per_step);
    cJSON_AddStringToObject(j, "layer_timing", r->host_timed ? "host" : "events");
    cJSON_AddItemToObject(j, "start", start_json(r));
    cJSON_AddNumberToObject(j, "peak_rss_mib", r->peak_rss_mib);
    cJSON_AddItemToObject(j, "peaks", peaks_json(r));
    cJSON_AddItemToObject(j, "roofline", roofline_json(r));
    cJSON_AddItemToObject(j, "layers", layers_json(r));
    return j;
}

cJSON *bench_report_error_json(const bench_options *o, const bench_result *r, const char *error)
{
    cJSON *j = options_json(o);
    cJSON_AddNumberToObject(j, "index", r->dev.name[0] ? r->dev.index : o->device);
    if (r->dev.name[0]) {
        cJSON_AddStringToObject(j, "device", r->dev.name);
        cJSON_AddStringToObject(j, "platform", r->dev.platform_name);
    }
    cJSON_AddStringToObject(j, "error", error);
    return j;
}

int bench_report_write_json(const char *path, const cJSON *j, char *err, size_t err_len)
{
    char *text = cJSON_Print(j);
    textout_file t;
    int rc = -1;
    if (!text)
        snprintf(err, err_len, "out of host memory writing %s", path);
    else if (textout_open(&t, path, err, err_len) == 0)
        rc = textout_commit(&t, fputs(text, t.f) >= 0 && fputc('\n', t.f) != EOF, err, err_len);
    cJSON_free(text);
    return rc;
}
