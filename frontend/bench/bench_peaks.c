/* bench_peaks.c — GEMM and copy peaks (see bench_peaks.h). Each is timed on
 * the host clock around a finished queue: one untimed call first (it builds
 * the kernels and settles the back-end choice), then repetitions until
 * about PEAK_BUDGET_S has passed, keeping the best, so a slow device still
 * finishes in a few calls and a fast one is not measured from one launch. */
#include "bench_peaks.h"

#include <time.h>

#define GEMM_N 1024
#define COPY_MIB 64
#define PEAK_BUDGET_S 0.25
#define PEAK_MAX_REPS 50

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef tlcl_status (*peak_op)(tlcl_engine *e, tlcl_tensor *a, tlcl_tensor *b, tlcl_tensor *c);

/* Seconds of the fastest call of op; < 0 on failure. */
static double best_time(tlcl_engine *e, peak_op op, tlcl_tensor *a, tlcl_tensor *b, tlcl_tensor *c)
{
    tlcl_cl *cl = tlcl_engine_cl(e);
    if (op(e, a, b, c) != TLCL_OK || tlcl_cl_finish(cl) != TLCL_OK)
        return -1;
    double best = 1e30, start = now_s();
    for (int r = 0; r < PEAK_MAX_REPS && (r < 2 || now_s() - start < PEAK_BUDGET_S); r++) {
        double t0 = now_s();
        if (op(e, a, b, c) != TLCL_OK || tlcl_cl_finish(cl) != TLCL_OK)
            return -1;
        double t = now_s() - t0;
        best = t < best ? t : best;
    }
    return best;
}

static tlcl_status gemm_op(tlcl_engine *e, tlcl_tensor *a, tlcl_tensor *b, tlcl_tensor *c)
{
    return tlcl_gemm(e, 0, 0, GEMM_N, GEMM_N, GEMM_N, 1.0f, a->buf, 0, GEMM_N, b->buf, 0, GEMM_N, 0.0f, c->buf, 0,
                     GEMM_N);
}

static tlcl_status copy_op(tlcl_engine *e, tlcl_tensor *a, tlcl_tensor *b, tlcl_tensor *c)
{
    (void)c;
    return tlcl_tensor_copy(e, b, a);
}

/* The best time of op on operands of rows x cols floats (a third one only
 * when need_c), filled so that no denormal or NaN slows the arithmetic. */
static double time_on(tlcl_engine *e, peak_op op, int rows, int cols, int need_c)
{
    tlcl_tensor a = {0}, b = {0}, c = {0};
    double t = -1;
    if (tlcl_tensor_alloc(e, &a, "peak A", rows, 1, 1, cols) == TLCL_OK &&
        tlcl_tensor_alloc(e, &b, "peak B", rows, 1, 1, cols) == TLCL_OK &&
        (!need_c || tlcl_tensor_alloc(e, &c, "peak C", rows, 1, 1, cols) == TLCL_OK) &&
        tlcl_tensor_fill(e, &a, 0.5f) == TLCL_OK && tlcl_tensor_fill(e, &b, 0.25f) == TLCL_OK)
        t = best_time(e, op, &a, &b, &c);
    tlcl_tensor_release(e, &a);
    tlcl_tensor_release(e, &b);
    tlcl_tensor_release(e, &c);
    return t;
}

tlcl_status bench_peaks_measure(tlcl_engine *e, bench_peaks *out)
{
    *out = (bench_peaks){.gemm_n = GEMM_N, .copy_mib = COPY_MIB};
    double t = time_on(e, gemm_op, GEMM_N, GEMM_N, 1);
    if (t <= 0)
        return TLCL_ERR_CL;
    out->gemm_gflops = 2.0 * GEMM_N * GEMM_N * (double)GEMM_N / t * 1e-9;
    out->gemm_backend = tlcl_gemm_backend_name(tlcl_gemm_get_backend(e));
    int floats = COPY_MIB * (1 << 20) / 4;
    t = time_on(e, copy_op, floats / 1024, 1024, 0);
    if (t <= 0)
        return TLCL_ERR_CL;
    out->copy_gbps = 2.0 * COPY_MIB * (1 << 20) / t * 1e-9;
    return TLCL_OK;
}
