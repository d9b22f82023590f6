/* bench_run.h — one `tlcl bench` measurement on one device, in this
 * process: set-up and first step (the start-up), warm-up, timed steps with
 * every launch profiled and attributed to its layer, peak RSS, and the
 * device's GEMM and copy peaks. Printing and JSON are in bench_report.h. */
#ifndef TLCL_BENCH_RUN_H
#define TLCL_BENCH_RUN_H

#include "bench_peaks.h"
#include "engine.h"

typedef enum bench_mode { BENCH_INFER = 0, BENCH_TRAIN, BENCH_HEAD } bench_mode;
/* "infer", "train", "head" (the --mode values) */
const char *bench_mode_name(bench_mode m);
/* "inference", "training step", "head training step" */
const char *bench_mode_words(bench_mode m);

typedef struct bench_options {
    const char *arch;
    int batch, size, steps, warmup; /* warmup counts the first step (0 or 1: it alone) */
    int device;                     /* -1: the default device */
    bench_mode mode;
    int peaks;                      /* run the GEMM and copy micro-benchmarks */
    size_t bucket_floats;           /* under mpirun: tlcl_run_set_bucket_floats (0: the default) */
    tlcl_dtype activations;         /* the model's feature-map storage (--precision) */
} bench_options;

/* From the process's first OpenCL call to the end of the first step. */
typedef struct bench_start {
    double setup_s;       /* context, model description, parameters on the device */
    double first_step_s;  /* the first step, programs built or loaded on the way */
    double programs_s;    /* of setup + first step: inside program build/load calls */
    int compiled, from_cache;
    double save_s;        /* after the run: writing the compiled programs to the cache */
    int launch_shapes;    /* distinct (kernel, local size) pairs of set-up + first step:
                             about the work-group functions a CPU driver compiled */
    int helper;           /* a compiling helper process ran (tlcl_cl_helper_start) */
    int helper_jobs;      /* programs, work-group functions and cache entries it did for this run */
} bench_start;

/* "cold" (every program compiled), "warm" (every program from the cache) or
 * "partly cached". */
const char *bench_start_kind(const bench_start *s);

/* One layer's device time and work per step, [0] forward, [1] backward. */
typedef struct bench_layer {
    char name[80];
    double ms[2], flops[2], bytes[2];
} bench_layer;

typedef struct bench_result {
    tlcl_device_info dev;
    char arch[40];
    char tuning[1200];          /* tlcl_engine_tuning_note: the tuning file in use or the family's defaults */
    double ms_per_step, images_per_s;
    double device_ms_per_step;  /* the sum of every profiled launch */
    bench_start start;
    double peak_rss_mib;        /* the process's high-water mark after the timed steps */
    int has_peaks;
    bench_peaks peaks;
    bench_layer *layers;        /* in the order the network first ran them */
    int host_timed;             /* the driver's events carry no time: the layers were timed
                                   on the host in a pass of their own (no kernel table) */
    int nlayers;
    char *kernel_table;         /* per-kernel table of the timed steps, when asked for */
    int ranks;                  /* MPI ranks that shared each step (1: this process alone) */
    double allreduce_ms;        /* with ranks > 1: the median MPI_Allreduce of the gradient buffer */
    double gradient_mib;        /* the gradient buffer's size */
    double buckets_per_step;    /* with ranks > 1: gradient buckets summed per timed step */
    double overlapped_per_step; /* of those, started while the device still ran the backward pass */
    double loss;                /* training modes: the mean loss of the timed steps (NaN: not measured) */
} bench_result;

/* Runs the measurement; kernel_table asks for the per-kernel table too. On
 * failure returns the status with the message in err; TLCL_ERR_NO_DEVICE
 * means the index was out of range. */
tlcl_status bench_run(const bench_options *o, bench_result *r, int kernel_table, char *err, size_t err_len);
void bench_result_free(bench_result *r);

#endif
