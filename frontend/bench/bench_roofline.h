/* bench_roofline.h — how close a step's device time is to what the
 * device's own measured peaks allow (issue 16 item 3): the per-layer
 * roofline bound (each layer's forward and backward at the GEMM peak or at
 * copy bandwidth, whichever takes longer) and the compute-only bound (every
 * FLOP, 2 per multiply-add, at the GEMM peak), and the fraction of each the
 * device time reaches (bound / time: 100% is at the bound). */
#ifndef TLCL_BENCH_ROOFLINE_H
#define TLCL_BENCH_ROOFLINE_H

#include "bench_run.h"

typedef struct bench_roofline {
    double device_ms;        /* per step: the layers' device time, both directions */
    double layer_bound_ms;   /* the per-layer roofline bound */
    double compute_bound_ms; /* the compute-only bound */
    double pct_layer, pct_compute; /* of each bound reached; NaN without peaks or time */
} bench_roofline;

bench_roofline bench_roofline_of(const bench_layer *layers, int n, double gemm_gflops, double copy_gbps);

#endif
