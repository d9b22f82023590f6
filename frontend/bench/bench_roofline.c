/* bench_roofline.c — a step against its roofline bounds (bench_roofline.h). */
#include "bench_roofline.h"

#include <math.h>

/* ms to do `work` at `rate_g` G per second (0 without work; NaN without a rate) */
static double ms_at(double work, double rate_g)
{
    if (!(work > 0))
        return 0.0;
    return rate_g > 0 ? work / (rate_g * 1e9) * 1e3 : NAN;
}

static double percent_of(double bound, double time) { return bound >= 0 && time > 0 ? 100.0 * bound / time : NAN; }

bench_roofline bench_roofline_of(const bench_layer *layers, int n, double gemm_gflops, double copy_gbps)
{
    bench_roofline r = {0};
    double flops = 0;
    for (int i = 0; i < n; i++)
        for (int d = 0; d < 2; d++) {
            r.device_ms += layers[i].ms[d];
            r.layer_bound_ms += fmax(ms_at(layers[i].flops[d], gemm_gflops), ms_at(layers[i].bytes[d], copy_gbps));
            flops += layers[i].flops[d];
        }
    r.compute_bound_ms = ms_at(flops, gemm_gflops);
    if (!(gemm_gflops > 0 && copy_gbps > 0))
        r.layer_bound_ms = r.compute_bound_ms = NAN;
    r.pct_layer = percent_of(r.layer_bound_ms, r.device_ms);
    r.pct_compute = percent_of(r.compute_bound_ms, r.device_ms);
    return r;
}
