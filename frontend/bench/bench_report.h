/* bench_report.h — what one `tlcl bench` run prints and the JSON it writes:
 * speed, start-up, peak RSS, the device's peaks, and the per-layer table
 * (device time forward and backward, GFLOP/s and GB/s next to the peaks). */
#ifndef TLCL_BENCH_REPORT_H
#define TLCL_BENCH_REPORT_H

#include "bench_run.h"

#include <cJSON.h>
#include <stdio.h>

/* all_layers: every layer in network order (and the per-kernel table when
 * the result has one); otherwise the layers that take the most time. */
void bench_report_print(FILE *f, const bench_options *o, const bench_result *r, int all_layers);

/* The run as JSON (times in ms or s as named, work per step); a failed run
 * is the options, the device (when it was opened) and "error". */
cJSON *bench_report_json(const bench_options *o, const bench_result *r);
cJSON *bench_report_error_json(const bench_options *o, const bench_result *r, const char *error);

/* cJSON_Print(j) to path through a temporary file; 0 or -1 with err. */
int bench_report_write_json(const char *path, const cJSON *j, char *err, size_t err_len);

#endif
