/* bench_util.h — what the micro-benchmarks share: a monotonic clock (or,
 * with $TLCL_BENCH_CPU_TIME=1, the process's CPU time), opening the device
 * named by $TLCL_DEVICE (the default one otherwise), a 'same' geometry, and
 * closing down with the error on failure. */
#ifndef TLCL_BENCH_UTIL_H
#define TLCL_BENCH_UTIL_H

#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* CPU seconds of this whole process, a CPU OpenCL driver's worker threads
 * included: on a machine shared with other jobs it counts this job's work
 * only (wall times of one command swung 2x there); it means nothing for a
 * GPU, whose work is not in it. */
static inline double bench_cpu_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Seconds, wall clock; with $TLCL_BENCH_CPU_TIME=1 (read once) the
 * process's CPU time divided by the online cores instead. */
static inline double bench_now(void)
{
    static long cpu_cores = -1; /* 0: wall clock */
    if (cpu_cores < 0) {
        const char *cpu = getenv("TLCL_BENCH_CPU_TIME");
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        cpu_cores = cpu && cpu[0] == '1' ? (cores > 0 ? cores : 1) : 0;
    }
    if (cpu_cores > 0)
        return bench_cpu_seconds() / (double)cpu_cores;
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* secs = the best seconds per call of `call` (a tlcl_status expression) over
 * 5 calls, after one warm-up call; `goto fail` when a call or the finish of
 * the queue cl fails. */
#define BENCH_BEST_OF(secs, call)                                        \
    do {                                                                 \
        if ((call) != TLCL_OK || tlcl_cl_finish(cl) != TLCL_OK)          \
            goto fail;                                                   \
        (secs) = 1e30;                                                   \
        for (int i_ = 0; i_ < 5; i_++) {                                 \
            double t0_ = bench_now();                                    \
            if ((call) != TLCL_OK || tlcl_cl_finish(cl) != TLCL_OK)      \
                goto fail;                                               \
            double t_ = bench_now() - t0_;                               \
            (secs) = t_ < (secs) ? t_ : (secs);                          \
        }                                                                \
    } while (0)

/* Positional integer arguments over the defaults in a[0..n). */
static inline void bench_int_args(int argc, char **argv, int *a, int n)
{
    for (int i = 0; i < n && i + 1 < argc; i++)
        a[i] = atoi(argv[i + 1]);
}

/* 0 on success; otherwise the error is printed, prefixed with the program's name. */
static inline int bench_open_env_device(const char *prog, tlcl_cl **cl, tlcl_engine **e)
{
    char err[4096];
    tlcl_cl_options o = tlcl_cl_options_default();
    if (getenv("TLCL_DEVICE"))
        o.device_index = atoi(getenv("TLCL_DEVICE"));
    if (tlcl_cl_init(cl, &o, err, sizeof err) != TLCL_OK) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return 1;
    }
    if (tlcl_engine_init(e, *cl) != TLCL_OK) {
        fprintf(stderr, "%s: %s\n", prog, tlcl_cl_error(*cl));
        tlcl_cl_free(*cl);
        return 1;
    }
    return 0;
}

/* A k x k, stride s geometry with TensorFlow 'same' padding, and its output size. */
static inline tlcl_conv_geom bench_same_geometry(int H, int W, int k, int s, int *OH, int *OW)
{
    tlcl_conv_geom g = {k, k, s, 0, 0};
    tlcl_conv_same(H, k, s, OH, &g.pad_top);
    tlcl_conv_same(W, k, s, OW, &g.pad_left);
    return g;
}

/* Frees the engine and the context; when failed, prints the engine's error
 * first, prefixed with the program's name. Returns the exit status. */
static inline int bench_close(const char *prog, tlcl_cl *cl, tlcl_engine *e, int failed)
{
    if (failed)
        fprintf(stderr, "%s: %s\n", prog, tlcl_engine_error(e));
    tlcl_engine_free(e);
    tlcl_cl_free(cl);
    return failed;
}

#endif
