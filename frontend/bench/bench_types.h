/* bench_types.h — a run's layers summed by layer type (conv, depthwise, SE,
 * ...) and set against the same device's own GEMM and copy peaks, so that
 * `tlcl bench --all` shows where each device loses time: two cards compared
 * on their share of their own peak per layer type, not only on img/s. */
#ifndef TLCL_BENCH_TYPES_H
#define TLCL_BENCH_TYPES_H

#include <cJSON.h>

typedef enum bench_layer_type {
    BENCH_TYPE_STEM = 0,  /* stem_conv: the 3x3 stride-2 convolution, BN, activation */
    BENCH_TYPE_CONV,      /* expand, project and top convolutions (1x1; 3x3 in V2's fused blocks), BN, act. */
    BENCH_TYPE_DEPTHWISE, /* depthwise convolutions, BN, activation */
    BENCH_TYPE_SE,        /* squeeze-and-excitation */
    BENCH_TYPE_ADD,       /* residual additions (drop-path) */
    BENCH_TYPE_HEAD,      /* pooling, dropout, classifier */
    BENCH_TYPE_LOSS,      /* loss and optimizer */
    BENCH_TYPE_OTHER,     /* preprocessing and anything unnamed above */
    BENCH_NTYPES
} bench_layer_type;

/* One layer type's sums over a run, forward and backward together. The
 * rates and shares are NaN where there is nothing to divide (no time, no
 * work, no peak measured). */
typedef struct bench_type_share {
    int layers;
    double ms, flops, bytes;  /* per step */
    double gflops, gbps;      /* work over device time */
    double pct_gemm, pct_copy; /* of the device's GEMM and copy peaks */
    double pct_time;          /* of the device time of every layer */
} bench_type_share;

bench_layer_type bench_layer_type_of(const char *layer_name);
const char *bench_layer_type_name(bench_layer_type t);

/* From a run's JSON ("layers" and "peaks", as bench_report writes them).
 * Returns the number of layers counted (0: the run has none). */
int bench_type_shares(const cJSON *run, bench_type_share out[BENCH_NTYPES]);

#endif
