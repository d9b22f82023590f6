/* bench_peaks.h — what the device reaches at best, measured on the engine
 * `tlcl bench` runs on, so the per-layer rates have a yardstick: the
 * engine's GEMM on a square product, and a device-to-device buffer copy. */
#ifndef TLCL_BENCH_PEAKS_H
#define TLCL_BENCH_PEAKS_H

#include "engine.h"

typedef struct bench_peaks {
    int gemm_n;               /* n x n x n product */
    const char *gemm_backend; /* the back-end tlcl_gemm chose ("own", "clblast") */
    double gemm_gflops;       /* best of the timed repetitions */
    double copy_mib;          /* size of each buffer */
    double copy_gbps;         /* bytes read + bytes written per second, best repetition */
} bench_peaks;

/* Runs both micro-benchmarks (a few hundred milliseconds on a CPU device).
 * Returns TLCL_OK, or the engine's status (message in tlcl_cl_error()). */
tlcl_status bench_peaks_measure(tlcl_engine *e, bench_peaks *out);

#endif
