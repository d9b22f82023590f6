/* bench_compare.h — `tlcl bench --all` and `tlcl bench --cold`: the bench of
 * every device (or of one, from empty caches), each run in a child process
 * of its own — a true fresh start, its own peak RSS, and a device whose
 * driver fails, hangs or crashes cannot take the others down — followed by
 * a second, short run that measures the warm start from the caches the first
 * one filled. Then the comparison: a Markdown table (printed, and written
 * with the JSON of every run and a PNG bar chart of img/s per device). */
#ifndef TLCL_BENCH_COMPARE_H
#define TLCL_BENCH_COMPARE_H

#include "bench_run.h"

typedef struct bench_compare_options {
    bench_options run;   /* what each device runs (run.device: the one device without all) */
    int all;             /* every device of every platform */
    int cold;            /* the first run of each device starts from empty caches */
    int profile;         /* each run prints every layer and kernel */
    const char *out_dir; /* bench.md, bench.json, bench.png go there; NULL: not written */
    const char *json;    /* the comparison JSON also goes here; NULL: not written */
    int timeout_s;       /* per run, then it is killed and reported; 0: none */
} bench_compare_options;

/* Returns the exit status: 0 when every device ran, 1 when one failed (its
 * row says why; the others still ran and the files are written), 2 for a
 * device index out of range. */
int bench_compare(const bench_compare_options *c);

#endif
