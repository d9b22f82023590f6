/* bench_child.h — one `tlcl bench` run of one device in a child process
 * (this same executable, re-run with --device and --json), optionally with
 * the caches of tlcl and of the OpenCL drivers moved to a directory of the
 * caller's (empty: a cold start; the same again: a warm one). */
#ifndef TLCL_BENCH_CHILD_H
#define TLCL_BENCH_CHILD_H

#include "bench_run.h"

#include <cJSON.h>
#include <stddef.h>

typedef struct bench_child {
    const bench_options *run; /* arch, batch, size, mode, steps, warm-up, peaks */
    int device;
    int start_only;           /* one warm-up and one timed step, no peaks: the start-up figures */
    int profile;              /* --profile */
    int quiet;                /* its standard output goes to /dev/null */
    const char *cache_root;   /* NULL: the user's caches */
    const char *json_path;    /* where it writes its result */
    int timeout_s;            /* 0: none */
} bench_child;

/* The command line of a `tlcl bench` run of o's model on a device
 * (argv[0] "tlcl", NULL-terminated): steps and warm-up as given,
 * --no-peaks unless peaks, --json when json_path is set, --profile when
 * profile is. The child processes here and the compiling helper
 * (bench_run.c) are started with it. */
enum { BENCH_MAX_ARGS = 16 };
typedef struct bench_argv {
    char text[BENCH_MAX_ARGS][1200];
    char *argv[BENCH_MAX_ARGS + 1];
    int n;
} bench_argv;
void bench_argv_build(bench_argv *a, const bench_options *o, int device, int steps, int warmup, int peaks,
                      const char *json_path, int profile);

/* Runs the child and returns its parsed JSON (which holds "error" when the
 * bench itself failed); NULL with the reason in why when it wrote none
 * (exit status, signal, time-out). */
cJSON *bench_child_run(const bench_child *c, char *why, size_t why_len);

#endif
