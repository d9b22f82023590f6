/* bench_types.c — a run's layers by layer type against the device's own
 * peaks (see bench_types.h). The type comes from the layer's name as the
 * model names it (Keras's names: block2a_expand_conv, block4a_dwconv2, ...). */
#include "bench_types.h"

#include <math.h>
#include <string.h>

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && strcmp(s + n - t, tail) == 0;
}

bench_layer_type bench_layer_type_of(const char *name)
{
    static const struct {
        const char *tail;
        bench_layer_type type;
    } by_tail[] = {
        {"stem_conv", BENCH_TYPE_STEM},     {"_expand_conv", BENCH_TYPE_CONV}, {"_project_conv", BENCH_TYPE_CONV},
        {"top_conv", BENCH_TYPE_CONV},      {"_dwconv", BENCH_TYPE_DEPTHWISE}, {"_dwconv2", BENCH_TYPE_DEPTHWISE},
        {"_se", BENCH_TYPE_SE},             {"_add", BENCH_TYPE_ADD},          {"avg_pool", BENCH_TYPE_HEAD},
        {"top_dropout", BENCH_TYPE_HEAD},   {"predictions", BENCH_TYPE_HEAD},  {"loss", BENCH_TYPE_LOSS},
        {"optimizer", BENCH_TYPE_LOSS},
    };
    for (size_t i = 0; i < sizeof by_tail / sizeof *by_tail; i++)
        if (ends_with(name, by_tail[i].tail))
            return by_tail[i].type;
    return BENCH_TYPE_OTHER;
}

const char *bench_layer_type_name(bench_layer_type t)
{
    static const char *names[BENCH_NTYPES] = {
        "stem conv",    "conv 1x1 / fused", "depthwise", "SE", "residual add", "head (pool, dense)",
        "loss, optimizer", "other",
    };
    return t >= 0 && t < BENCH_NTYPES ? names[t] : "other";
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0.0;
}

/* part / whole in percent, NaN when either is missing */
static double percent(double part, double whole) { return part > 0 && whole > 0 ? 100.0 * part / whole : NAN; }

/* work per ms of device time, in G per second; NaN without both */
static double rate(double work, double ms) { return work > 0 && ms > 0 ? work / (ms * 1e-3) * 1e-9 : NAN; }

int bench_type_shares(const cJSON *run, bench_type_share out[BENCH_NTYPES])
{
    memset(out, 0, BENCH_NTYPES * sizeof *out);
    int counted = 0;
    double all_ms = 0;
    const cJSON *l;
    cJSON_ArrayForEach(l, cJSON_GetObjectItemCaseSensitive(run, "layers"))
    {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(l, "name"));
        bench_type_share *s = &out[bench_layer_type_of(name ? name : "")];
        double ms = num(l, "fwd_ms") + num(l, "bwd_ms");
        s->layers++;
        s->ms += ms;
        s->flops += num(l, "fwd_flops") + num(l, "bwd_flops");
        s->bytes += num(l, "fwd_bytes") + num(l, "bwd_bytes");
        all_ms += ms;
        counted++;
    }
    const cJSON *peaks = cJSON_GetObjectItemCaseSensitive(run, "peaks");
    for (int t = 0; t < BENCH_NTYPES; t++) {
        bench_type_share *s = &out[t];
        s->gflops = rate(s->flops, s->ms);
        s->gbps = rate(s->bytes, s->ms);
        s->pct_gemm = percent(s->gflops, num(peaks, "gemm_gflops"));
        s->pct_copy = percent(s->gbps, num(peaks, "copy_gbps"));
        s->pct_time = percent(s->ms, all_ms);
    }
    return counted;
}
