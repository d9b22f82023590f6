/* grid.h — `tlcl grid`'s plan and results: the `grid:` section of a
 * training configuration (lists of values for configuration key paths),
 * the runs it makes (the full product, or a seeded random sample), their
 * folder names, and the ranking and summary of finished runs.
 *
 *     grid:
 *       dir: grid                      # relative to the config file
 *       metric: val_balanced_accuracy  # the key to rank by (best epoch)
 *       mode: auto                     # max, min; auto: min for *loss*
 *       sample: 0                      # 0: every combination; N: N drawn
 *       seed: 0                        # the draw's seed
 *       params:                        # key path -> list of values
 *         optimizer.learning_rate: [1e-3, 1e-4]
 *         loss.gamma: [1.0, 2.0]
 *         model.head.units: [[64], [128, 64]]
 *
 * Each value becomes `--set KEY=VALUE` (a list or map value as YAML flow
 * text), so every key `tlcl train --set` knows can vary. The configuration
 * loader skips the `grid:` section: `tlcl train` on the same file trains the
 * base configuration. */
#ifndef TLCL_GRID_H
#define TLCL_GRID_H

#include "config.h"

#include <stddef.h>

#define TLCL_GRID_MAX_KEYS 16
#define TLCL_GRID_MAX_VALUES 64
#define TLCL_GRID_MAX_RUNS 4096
#define TLCL_GRID_VALUE_MAX 256

typedef struct tlcl_grid_spec {
    tlcl_cfg_path source; /* the configuration file */
    tlcl_cfg_path dir;    /* absolute */
    char metric[TLCL_CFG_NAME_MAX];
    int maximize; /* 1: higher is better */
    int sample;   /* 0: the full product */
    unsigned seed;
    int nkeys;
    char key[TLCL_GRID_MAX_KEYS][128];
    int nvalues[TLCL_GRID_MAX_KEYS];
    char value[TLCL_GRID_MAX_KEYS][TLCL_GRID_MAX_VALUES][TLCL_GRID_VALUE_MAX];
} tlcl_grid_spec;

/* Reads the `grid:` section of the configuration file. Errors read
 * "FILE:LINE: grid.KEY: ..." and say what to write. 0, or -1. */
int tlcl_grid_load(tlcl_grid_spec *g, const char *config_path, char *err, size_t len);

/* The runs: choice[r * nkeys + k] is the value index of key k in run r, in
 * odometer order (the last key varies fastest); a sample keeps the drawn
 * runs in that order. Returns the number of runs, or -1 (err: too many). */
int tlcl_grid_runs(const tlcl_grid_spec *g, int *choice, int max_runs, char *err, size_t len);

/* run-NNN-<key=value_...>: the last part of each key path; in values,
 * brackets, braces and spaces are dropped and characters other than
 * [A-Za-z0-9.+-] become '-' ("none" for an empty list); each value cut at
 * 24 bytes, the whole at 80. */
void tlcl_grid_run_name(const tlcl_grid_spec *g, const int *choice, int run, char *dst, size_t len);

typedef struct tlcl_grid_result {
    int run;       /* 0-based run number */
    char name[160];
    int choice[TLCL_GRID_MAX_KEYS];
    int state;     /* TLCL_GRID_OK, TLCL_GRID_NO_METRIC, TLCL_GRID_FAILED */
    double best;   /* the metric at the best epoch */
    int best_epoch; /* 1-based */
    int epochs;
    double *curve; /* the metric per epoch (malloc'd), or NULL */
} tlcl_grid_result;

enum { TLCL_GRID_OK = 0, TLCL_GRID_NO_METRIC = 1, TLCL_GRID_FAILED = 2 };

/* Fills best, best_epoch, epochs and curve from the run's history files
 * (JSON, as history_write_json writes them); state NO_METRIC when neither
 * holds the metric, FAILED when neither can be read. keys_seen gathers the
 * keys found (comma-separated) for the error that no run logs the metric. */
void tlcl_grid_collect(const tlcl_grid_spec *g, tlcl_grid_result *r, const char *fit_history,
                       const char *callback_history, char *keys_seen, size_t keys_len);

/* Best first (by the metric and direction), runs without the metric last,
 * ties by run number. */
void tlcl_grid_sort(const tlcl_grid_spec *g, tlcl_grid_result *r, int n);

/* summary.csv and summary.md: rank, run, one column per key, the metric at
 * the best epoch, the best epoch, the epochs trained. Written atomically. */
int tlcl_grid_write_summary(const tlcl_grid_spec *g, const tlcl_grid_result *r, int n, const char *csv_path,
                            const char *md_path, char *err, size_t len);

/* The metric per epoch of every run on one plot (.png or .jpg). */
int tlcl_grid_plot(const tlcl_grid_spec *g, const tlcl_grid_result *r, int n, const char *path, char *err,
                   size_t len);

/* Copies src to dst atomically (dst.tmp.<pid>, fsync, rename, fsync of the
 * directory). 0, or -1 with err naming the file. */
int tlcl_grid_copy_file(const char *src, const char *dst, char *err, size_t len);

#endif
