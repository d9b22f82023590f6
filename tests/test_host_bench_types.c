/* test_host_bench_types.c — `tlcl bench --all`'s share of each device's own
 * peak per layer type (frontend/bench/bench_types.c) on a run whose layers,
 * times, work and peaks are made up here, checked against the sums and
 * ratios worked out by hand in the comments; then the names of every layer
 * B0 and V2-B0 have, and a run without peaks; then `tlcl bench`'s roofline
 * bounds (bench_roofline.c) on made-up layers. Host only. */
#include "bench_roofline.h"
#include "bench_types.h"
#include "harness.h"

#include <math.h>
#include <stdio.h>

/* one layer: forward and backward ms, FLOPs, bytes */
static void add_layer(cJSON *layers, const char *name, double fms, double fflops, double fbytes, double bms,
                      double bflops, double bbytes)
{
    cJSON *l = cJSON_CreateObject();
    cJSON_AddStringToObject(l, "name", name);
    cJSON_AddNumberToObject(l, "fwd_ms", fms);
    cJSON_AddNumberToObject(l, "fwd_flops", fflops);
    cJSON_AddNumberToObject(l, "fwd_bytes", fbytes);
    cJSON_AddNumberToObject(l, "bwd_ms", bms);
    cJSON_AddNumberToObject(l, "bwd_flops", bflops);
    cJSON_AddNumberToObject(l, "bwd_bytes", bbytes);
    cJSON_AddItemToArray(layers, l);
}

/* NaN expected means "nothing to divide" */
static void expect_value(harness *h, const char *what, double got, double want)
{
    int ok = isnan(want) ? isnan(got) : fabs(got - want) <= 1e-9 * fmax(1.0, fabs(want));
    harness_expectf(h, ok, "%-40s %.6g (want %.6g)", what, got, want);
}

static cJSON *made_up_run(int with_peaks)
{
    cJSON *run = cJSON_CreateObject();
    if (with_peaks) { /* GEMM 100 GFLOP/s, copy 50 GB/s */
        cJSON *p = cJSON_AddObjectToObject(run, "peaks");
        cJSON_AddNumberToObject(p, "gemm_gflops", 100);
        cJSON_AddNumberToObject(p, "copy_gbps", 50);
    }
    cJSON *l = cJSON_AddArrayToObject(run, "layers");
    add_layer(l, "stem_conv", 1, 2e7, 1e7, 1, 2e7, 1e7);          /* 2 ms, 4e7 FLOP, 2e7 B */
    add_layer(l, "block1a_dwconv", 3, 3e6, 6e7, 0, 0, 0);         /* depthwise: 4 ms, 4e6 FLOP, 8e7 B */
    add_layer(l, "block4a_dwconv2", 1, 1e6, 2e7, 0, 0, 0);        /*   (V2's name) */
    add_layer(l, "block2a_expand_conv", 2, 1e8, 0, 0, 0, 0);      /* conv: 4 ms, 2e8 FLOP, no bytes */
    add_layer(l, "top_conv", 0, 0, 0, 2, 1e8, 0);
    add_layer(l, "block2b_se", 1, 0, 0, 0, 0, 0);                 /* SE: 1 ms */
    add_layer(l, "block2b_add", 0.5, 0, 0, 0.5, 0, 0);            /* add: 1 ms */
    add_layer(l, "avg_pool", 0.5, 0, 0, 0, 0, 0);                 /* head: 1 ms */
    add_layer(l, "predictions", 0.25, 0, 0, 0.25, 0, 0);
    add_layer(l, "loss", 0.5, 0, 0, 0, 0, 0);                     /* loss, optimizer: 1 ms */
    add_layer(l, "optimizer", 0.5, 0, 0, 0, 0, 0);
    add_layer(l, "preprocess", 1, 0, 0, 0, 0, 0);                 /* other: 1 ms; all: 15 ms */
    return run;
}

static void check_made_up_run(harness *h)
{
    cJSON *run = made_up_run(1);
    bench_type_share s[BENCH_NTYPES];
    harness_expectf(h, bench_type_shares(run, s) == 12, "12 layers counted");
    const bench_type_share *stem = &s[BENCH_TYPE_STEM], *dw = &s[BENCH_TYPE_DEPTHWISE], *conv = &s[BENCH_TYPE_CONV];
    /* stem: 4e7 FLOP in 2 ms = 20 GFLOP/s = 20% of 100; 2e7 B in 2 ms = 10 GB/s = 20% of 50; 2/15 of the time */
    expect_value(h, "stem ms", stem->ms, 2);
    expect_value(h, "stem GFLOP/s", stem->gflops, 20);
    expect_value(h, "stem % GEMM peak", stem->pct_gemm, 20);
    expect_value(h, "stem GB/s", stem->gbps, 10);
    expect_value(h, "stem % copy peak", stem->pct_copy, 20);
    expect_value(h, "stem % of layer time", stem->pct_time, 100.0 * 2 / 15);
    /* depthwise: both names, 4 ms; 4e6 FLOP -> 1 GFLOP/s = 1%; 8e7 B -> 20 GB/s = 40% */
    harness_expectf(h, dw->layers == 2, "depthwise: 2 layers (got %d)", dw->layers);
    expect_value(h, "depthwise GFLOP/s", dw->gflops, 1);
    expect_value(h, "depthwise % GEMM peak", dw->pct_gemm, 1);
    expect_value(h, "depthwise % copy peak", dw->pct_copy, 40);
    expect_value(h, "depthwise % of layer time", dw->pct_time, 100.0 * 4 / 15);
    /* conv: expand and top, 2e8 FLOP in 4 ms = 50 GFLOP/s = 50%; no bytes counted: no rate */
    harness_expectf(h, conv->layers == 2, "conv 1x1: 2 layers (got %d)", conv->layers);
    expect_value(h, "conv % GEMM peak", conv->pct_gemm, 50);
    expect_value(h, "conv GB/s (no bytes)", conv->gbps, NAN);
    expect_value(h, "conv % copy peak (no bytes)", conv->pct_copy, NAN);
    const int one_ms[] = {BENCH_TYPE_SE, BENCH_TYPE_ADD, BENCH_TYPE_HEAD, BENCH_TYPE_LOSS, BENCH_TYPE_OTHER};
    for (size_t i = 0; i < sizeof one_ms / sizeof *one_ms; i++) {
        char what[80];
        snprintf(what, sizeof what, "%s ms", bench_layer_type_name((bench_layer_type)one_ms[i]));
        expect_value(h, what, s[one_ms[i]].ms, 1);
    }
    cJSON_Delete(run);
    /* without peaks: the rates stay, the shares of peak are NaN */
    run = made_up_run(0);
    bench_type_shares(run, s);
    expect_value(h, "no peaks: stem GFLOP/s", s[BENCH_TYPE_STEM].gflops, 20);
    expect_value(h, "no peaks: stem % GEMM peak", s[BENCH_TYPE_STEM].pct_gemm, NAN);
    cJSON_Delete(run);
}

/* Every layer name of B0 and V2-B0 (tlcl bench's JSON) falls in its type. */
static void check_names(harness *h)
{
    static const struct {
        const char *name;
        bench_layer_type type;
    } names[] = {
        {"stem_conv", BENCH_TYPE_STEM},           {"block1a_project_conv", BENCH_TYPE_CONV},
        {"block6d_expand_conv", BENCH_TYPE_CONV}, {"top_conv", BENCH_TYPE_CONV},
        {"block7a_dwconv", BENCH_TYPE_DEPTHWISE}, {"block6g_dwconv2", BENCH_TYPE_DEPTHWISE},
        {"block5c_se", BENCH_TYPE_SE},            {"block6g_add", BENCH_TYPE_ADD},
        {"avg_pool", BENCH_TYPE_HEAD},            {"top_dropout", BENCH_TYPE_HEAD},
        {"predictions", BENCH_TYPE_HEAD},         {"loss", BENCH_TYPE_LOSS},
        {"optimizer", BENCH_TYPE_LOSS},           {"preprocess", BENCH_TYPE_OTHER},
        {"block1a_conv_unknown", BENCH_TYPE_OTHER},
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        bench_layer_type got = bench_layer_type_of(names[i].name);
        harness_expectf(h, got == names[i].type, "%-22s -> %s (want %s)", names[i].name, bench_layer_type_name(got),
                        bench_layer_type_name(names[i].type));
    }
}

/* Peaks: GEMM 100 GFLOP/s (1e8 FLOPs = 1 ms), copy 50 GB/s (5e7 bytes = 1 ms).
 * conv fwd: 1e8 FLOPs (1 ms) vs 1e6 B (0.02 ms) -> 1 ms; bwd 2e8 (2 ms) vs
 * 4e6 B (0.08) -> 2 ms; bn fwd: no FLOPs, 2.5e7 B -> 0.5 ms; bwd 5e7 B -> 1
 * ms. Per-layer bound 4.5 ms, compute-only 3e8 FLOPs = 3 ms; device time
 * 2 + 4 + 1 + 3 = 10 ms: 45% and 30%. */
static void check_roofline(harness *h)
{
    bench_layer l[2] = {{"conv", {2, 4}, {1e8, 2e8}, {1e6, 4e6}}, {"bn", {1, 3}, {0, 0}, {2.5e7, 5e7}}};
    bench_roofline r = bench_roofline_of(l, 2, 100, 50);
    expect_value(h, "roofline: device ms", r.device_ms, 10);
    expect_value(h, "roofline: per-layer bound ms", r.layer_bound_ms, 4.5);
    expect_value(h, "roofline: compute-only bound ms", r.compute_bound_ms, 3);
    expect_value(h, "roofline: % of the per-layer bound", r.pct_layer, 45);
    expect_value(h, "roofline: % of the compute-only bound", r.pct_compute, 30);
    r = bench_roofline_of(l, 2, 0, 0);
    expect_value(h, "roofline without peaks: per-layer bound", r.layer_bound_ms, NAN);
    expect_value(h, "roofline without peaks: % of the compute bound", r.pct_compute, NAN);
    r = bench_roofline_of(l, 0, 100, 50);
    expect_value(h, "roofline without layers: %", r.pct_layer, NAN);
}

int main(void)
{
    harness h;
    harness_init(&h, 0);
    check_made_up_run(&h);
    check_names(&h);
    check_roofline(&h);
    return harness_finish(&h);
}
