/* cmd_grid.c — `tlcl grid [--device=N] [--dry-run] [--set key.path=value]...
 * CONFIG.yaml` (options in any order, cli_options.h): the runs of the configuration's `grid:` section (grid.h),
 * each one `tlcl train` in its own folder <grid.dir>/run-NNN-<key=value...>,
 * then the summary (summary.csv, summary.md, ranked by grid.metric at each
 * run's best epoch), the comparison plot (comparison.png) and the best run's
 * model copied to <grid.dir>/best_model.safetensors.
 *
 * Every run is checked up front (the base configuration, the --set
 * overrides, the run's values, finalize), so a bad value stops the grid
 * before anything trains. Each run is a child process: `tlcl train --set
 * ...` on the same file, so it writes every artefact `tlcl train` writes,
 * resumes from its backup when interrupted, and a crash of one run leaves
 * the others. A run whose run_state.json records that it finished is
 * skipped; rerunning a killed grid finishes the interrupted run and the rest.
 *
 * Shared work: every run uses one decoded image cache (train.data_dir
 * .cache_dir, <grid.dir>/cache when the configuration names none) and, unless
 * the grid varies the split (train.config.seed or a train.data_dir key), one
 * split: the first run's split.json (and test_split.json) is copied into the
 * later runs' folders before they start.
 *
 * With tracking.enabled the runs nest under the grid's MLflow run
 * (grid_track.h), ended when the grid ends. */
#define _GNU_SOURCE
#include "commands.h"
#include "config.h"
#include "dist.h"
#include "grid.h"
#include "grid_track.h"
#include "run_plan.h"
#include "run_status.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_SETS 32
#define RUN_SETS 8

typedef struct grid_cli {
    const char *config;
    int device, dry_run;
    const char *sets[MAX_SETS];
    int nsets;
    const cli_args *args; /* --set and --device, applied to each run's configuration */
} grid_cli;

/* One run's --set arguments: the CLI's, the grid values, the output paths. */
typedef struct run_args {
    char value[TLCL_GRID_MAX_KEYS][TLCL_GRID_VALUE_MAX + 140];
    char out[RUN_SETS][TLCL_CFG_PATH_MAX + 64];
    int nout;
    char dir[TLCL_CFG_PATH_MAX];
} run_args;

CLI_COMMAND(cli_grid, "grid", "CONFIG.yaml", 1, 1,
    "Train every run of a configuration's `grid:` section, rank them, keep the best model.\n"
    "Each run trains in <grid.dir>/run-NNN-<key=value...> (README.md, \"Grid search\"); then summary.csv,\n"
    "summary.md and comparison.png are written there and the best run's model is copied to\n"
    "best_model.safetensors. Rerunning skips the finished runs and resumes an interrupted one.\n"
    "--set applies to every run, before the grid's values.",
    CLI_DEVICE_OPTION_FOR("train.config.device"),
    CLI_FLAG_OPT("dry-run", "check every run and list them; train nothing"),
    CLI_SET_OPTION);

/* 0 to go on; 1 to stop with a->status (--help, a usage error). */
static int parse_cli(int argc, char **argv, grid_cli *o, cli_args *a)
{
    memset(o, 0, sizeof *o);
    if (cli_parse(&cli_grid, argc, argv, a))
        return 1;
    o->config = a->operands[0];
    o->args = a;
    o->dry_run = cli_flag(a, "dry-run");
    const char *sets[CLI_MAX_GIVEN];
    o->nsets = cli_values(a, "set", sets, CLI_MAX_GIVEN);
    memcpy(o->sets, sets, (o->nsets < MAX_SETS ? (size_t)o->nsets : MAX_SETS) * sizeof *sets);
    o->device = cli_device(a);
    if (o->nsets > MAX_SETS)
        a->status = cli_usage_error(a, "at most %d --set options", MAX_SETS);
    else if (o->device == -2) /* a malformed $TLCL_DEVICE (reported) */
        a->status = 2;
    return a->status != 0;
}

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && strcmp(s + n - m, tail) == 0;
}

/* The split is shared unless the grid varies what it depends on. */
static int shares_split(const tlcl_grid_spec *g)
{
    for (int k = 0; k < g->nkeys; k++)
        if (strcmp(g->key[k], "train.config.seed") == 0 || strncmp(g->key[k], "train.data_dir.", 15) == 0)
            return 0;
    return 1;
}

/* Loads the base configuration with the CLI's sets and the run's values and
 * output paths, and finalizes it; fills a with the run's --set texts. */
static tlcl_status run_config(const grid_cli *o, const tlcl_grid_spec *g, const int *choice, const char *name,
                              tlcl_config *c, run_args *a, char *err, size_t len)
{
    char why[4096];
    tlcl_status s = tlcl_config_load(c, o->config, why, sizeof why);
    if (s == TLCL_OK) /* checked as the keys in the file; each run passes them on to tlcl train */
        s = cli_apply_config(o->args, c, why, sizeof why);
    if (s != TLCL_OK) {
        snprintf(err, len, "%s", why);
        return s;
    }
    for (int k = 0; k < g->nkeys; k++) {
        snprintf(a->value[k], sizeof a->value[k], "%s=%s", g->key[k], g->value[k][choice[k]]);
        if ((s = tlcl_config_set_arg(c, a->value[k], why, sizeof why)) != TLCL_OK) {
            snprintf(err, len, "%s: grid.params.%s, value '%s' (%s): %s. Fix the value in the grid section", g->source,
                     g->key[k], g->value[k][choice[k]], name, why);
            return s;
        }
    }
    if (strchr(c->train.artefacts.best_model, '{')) { /* one file a run, which the grid copies and ranks */
        snprintf(err, len, "%s: train.artefacts.best_model '%s' names a file per save ({...} fields); a grid keeps "
                 "one best model a run: give a plain file name", g->source, c->train.artefacts.best_model);
        return TLCL_ERR_ARG;
    }
    if (snprintf(a->dir, sizeof a->dir, "%s/%s", g->dir, name) >= (int)sizeof a->dir) {
        snprintf(err, len, "%s: grid.dir %s is too long a path", g->source, g->dir);
        return TLCL_ERR_ARG;
    }
    a->nout = 0;
    snprintf(a->out[a->nout++], sizeof a->out[0], "train.artefacts.base_dir=%s", a->dir);
    snprintf(a->out[a->nout++], sizeof a->out[0], "train.metrics.base_dir=%s/metrics", a->dir);
    snprintf(a->out[a->nout++], sizeof a->out[0], "train.records.base_dir=%s/records", a->dir);
    snprintf(a->out[a->nout++], sizeof a->out[0], "train.config.logs.file_path=%s/train.log", a->dir);
    if (!c->train.data_dir.cache_dir[0])
        snprintf(a->out[a->nout++], sizeof a->out[0], "train.data_dir.cache_dir=%s/cache", g->dir);
    /* the summary reads the histories as JSON */
    if (!ends_with(c->train.artefacts.fit_history, ".json"))
        snprintf(a->out[a->nout++], sizeof a->out[0], "train.artefacts.fit_history=fit_history.json");
    if (!ends_with(c->train.artefacts.callback_history, ".json"))
        snprintf(a->out[a->nout++], sizeof a->out[0], "train.artefacts.callback_history=callback_history.json");
    for (int i = 0; s == TLCL_OK && i < a->nout; i++)
        s = tlcl_config_set_arg(c, a->out[i], why, sizeof why);
    if (s == TLCL_OK)
        s = tlcl_config_finalize(c, why, sizeof why);
    if (s != TLCL_OK) {
        snprintf(err, len, "%s (grid run %s)", why, name);
        return s;
    }
    const char *own[] = {c->train.artefacts.best_model, c->train.artefacts.backup_dir,
                         c->train.artefacts.fit_history, c->train.artefacts.callback_history};
    const char *keys[] = {"best_model", "backup_dir", "fit_history", "callback_history"};
    for (int i = 0; i < 4; i++)
        if (own[i][0] && strncmp(own[i], a->dir, strlen(a->dir)) != 0) {
            snprintf(err, len,
                     "%s: train.artefacts.%s is the absolute path %s, which every grid run would share: give a "
                     "name relative to train.artefacts.base_dir (each run gets its own folder)",
                     g->source, keys[i], own[i]);
            return TLCL_ERR_ARG;
        }
    return TLCL_OK;
}

static void copy_if_missing(const char *from_dir, const char *to_dir, const char *file)
{
    char src[TLCL_CFG_PATH_MAX + 64], dst[TLCL_CFG_PATH_MAX + 64], err[1024];
    snprintf(src, sizeof src, "%s/%s", from_dir, file);
    snprintf(dst, sizeof dst, "%s/%s", to_dir, file);
    if (access(src, F_OK) == 0 && access(dst, F_OK) != 0 && tlcl_grid_copy_file(src, dst, err, sizeof err) != 0)
        fprintf(stderr, "warning: %s\n", err);
}

/* `tlcl train` for one run, as a child process; its exit status, or -1
 * when it was killed by a signal. */
static int spawn_train(const grid_cli *o, const tlcl_grid_spec *g, const run_args *a, const char *parent)
{
    const char *argv[9 + 2 * (MAX_SETS + TLCL_GRID_MAX_KEYS + RUN_SETS)];
    int n = 0;
    char dev[32];
    argv[n++] = "tlcl";
    argv[n++] = "train";
    if (o->device >= 0) {
        snprintf(dev, sizeof dev, "--device=%d", o->device);
        argv[n++] = dev;
    }
    if (parent[0])
        argv[n++] = parent;
    for (int i = 0; i < o->nsets; i++)
        argv[n++] = "--set", argv[n++] = o->sets[i];
    for (int k = 0; k < g->nkeys; k++)
        argv[n++] = "--set", argv[n++] = a->value[k];
    for (int i = 0; i < a->nout; i++)
        argv[n++] = "--set", argv[n++] = a->out[i];
    argv[n++] = o->config;
    argv[n] = NULL;
    fflush(stdout), fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        tlcl_dist_forget_launcher(); /* under mpirun: the run is a process of its own, not an MPI rank */
        execv("/proc/self/exe", (char *const *)argv);
        fprintf(stderr, "tlcl grid: cannot start tlcl train: %s\n", strerror(errno));
        _exit(127);
    }
    if (pid < 0)
        return 1;
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Summary, plot and best model from the runs' folders. */
static int finish_grid(const tlcl_grid_spec *g, tlcl_grid_result *res, int n, const char *fit_name,
                       const char *cb_name, const char *best_name)
{
    char seen[2048] = "", a[4096], b[4096], err[4096];
    int with_metric = 0;
    for (int i = 0; i < n; i++) {
        char dir[1400];
        snprintf(dir, sizeof dir, "%s/%s", g->dir, res[i].name);
        snprintf(a, sizeof a, "%s/%s", dir, fit_name);
        snprintf(b, sizeof b, "%s/%s", dir, cb_name);
        tlcl_grid_collect(g, &res[i], a, b, seen, sizeof seen);
        with_metric += res[i].state == TLCL_GRID_OK;
    }
    if (!with_metric) {
        fprintf(stderr,
                "tlcl grid: %s: grid.metric '%s' is logged by no run (their histories hold: %s). Add the metric "
                "to the configuration's `metrics:` (e.g. balanced_accuracy for val_balanced_accuracy; val_ keys "
                "need validation data), or set grid.metric to one of the keys above\n",
                g->source, g->metric, seen[0] ? seen : "nothing");
        return 1;
    }
    tlcl_grid_sort(g, res, n);
    snprintf(a, sizeof a, "%s/summary.csv", g->dir);
    snprintf(b, sizeof b, "%s/summary.md", g->dir);
    if (tlcl_grid_write_summary(g, res, n, a, b, err, sizeof err) != 0) {
        fprintf(stderr, "tlcl grid: %s\n", err);
        return 1;
    }
    printf("grid: summary in %s and %s\n", a, b);
    snprintf(a, sizeof a, "%s/comparison.png", g->dir);
    if (tlcl_grid_plot(g, res, n, a, err, sizeof err) != 0)
        fprintf(stderr, "warning: the comparison plot: %s\n", err);
    printf("grid: best run %s: %s = %.6g at epoch %d\n", res[0].name, g->metric, res[0].best, res[0].best_epoch);
    snprintf(a, sizeof a, "%s/%s/%s", g->dir, res[0].name, best_name);
    snprintf(b, sizeof b, "%s/best_model.safetensors", g->dir);
    if (access(a, F_OK) != 0) {
        fprintf(stderr,
                "warning: the best run kept no model (%s is missing: callbacks.model_checkpoint.enabled is off?); "
                "%s is not written\n",
                a, b);
        return 0;
    }
    if (tlcl_grid_copy_file(a, b, err, sizeof err) != 0) {
        fprintf(stderr, "tlcl grid: %s\n", err);
        return 1;
    }
    printf("grid: the best model is copied to %s\n", b);
    return 0;
}

/* Run r of the grid: skipped when it finished already, else trained by a
 * child `tlcl train`. 0 done or skipped, 1 failed (reported), -1 killed
 * by a signal (reported: the grid stops). */
static int one_run(const grid_cli *o, const tlcl_grid_spec *g, tlcl_grid_result *res, int r, int n, int share,
                   const char *parent, tlcl_config *c, run_args *a)
{
    char err[8192];
    run_config(o, g, res[r].choice, res[r].name, c, a, err, sizeof err);
    char state[TLCL_CFG_PATH_MAX + 64];
    tlcl_run_status st;
    tlcl_plan_state_path(c, state, sizeof state);
    int done = tlcl_run_status_read(state, &st, err, sizeof err);
    if (done > 0) {
        printf("grid: [%d/%d] %s finished already on %s (%s): skipped\n", r + 1, n, res[r].name, st.finished_at,
               state);
        return 0;
    }
    if (done < 0) {
        fprintf(stderr, "tlcl grid: %s\n", err);
        return 1;
    }
    if (tlcl_mkdir_p(a->dir, err, sizeof err) != 0) {
        fprintf(stderr, "tlcl grid: %s\n", err);
        return 1;
    }
    if (share) {
        copy_if_missing(g->dir, a->dir, "split.json");
        copy_if_missing(g->dir, a->dir, "test_split.json");
    }
    FILE *f = fopen(c->train.artefacts.effective_config, "w");
    if (f)
        tlcl_config_dump(c, f), fclose(f);
    printf("grid: [%d/%d] %s\n", r + 1, n, res[r].name);
    double t = now_s();
    int rc = spawn_train(o, g, a, parent);
    if (rc < 0) {
        fprintf(stderr, "tlcl grid: %s was killed by a signal: the grid stops (rerun it to resume)\n", res[r].name);
        return -1;
    }
    if (rc != 0) {
        fprintf(stderr, "tlcl grid: %s failed (exit status %d; its log is %s/train.log): the grid goes on\n",
                res[r].name, rc, a->dir);
        return 1;
    }
    printf("grid: [%d/%d] %s done in %.1f s\n", r + 1, n, res[r].name, now_s() - t);
    if (share) {
        copy_if_missing(a->dir, g->dir, "split.json");
        copy_if_missing(a->dir, g->dir, "test_split.json");
    }
    return 0;
}

static int run_grid(const grid_cli *o, const tlcl_grid_spec *g, const int *choice, int n)
{
    static tlcl_config c;
    static run_args args;
    char err[8192], fit_name[256] = "", cb_name[256] = "", best_name[256] = "";
    tlcl_grid_result *res = calloc((size_t)n, sizeof *res);
    if (!res)
        return fprintf(stderr, "tlcl grid: out of memory\n"), 1;
    /* every run checked before anything trains */
    for (int r = 0; r < n; r++) {
        res[r].run = r;
        memcpy(res[r].choice, choice + r * g->nkeys, (size_t)g->nkeys * sizeof(int));
        tlcl_grid_run_name(g, res[r].choice, r, res[r].name, sizeof res[r].name);
        if (run_config(o, g, res[r].choice, res[r].name, &c, &args, err, sizeof err) != TLCL_OK) {
            fprintf(stderr, "tlcl grid: %s\n", err);
            free(res);
            return 2;
        }
        size_t dl = strlen(args.dir) + 1;
        snprintf(fit_name, sizeof fit_name, "%s", c.train.artefacts.fit_history + dl);
        snprintf(cb_name, sizeof cb_name, "%s", c.train.artefacts.callback_history + dl);
        const char *bm = c.train.artefacts.best_model;
        snprintf(best_name, sizeof best_name, "%s", bm[0] ? bm + dl : "");
    }
    printf("grid: %d run%s in %s, ranked by %s (%s)\n", n, n == 1 ? "" : "s", g->dir, g->metric,
           g->maximize ? "max" : "min");
    if (o->dry_run) {
        for (int r = 0; r < n; r++)
            printf("  %s\n", res[r].name);
        free(res);
        return 0;
    }
    if (tlcl_mkdir_p(g->dir, err, sizeof err) != 0) {
        fprintf(stderr, "tlcl grid: %s (grid.dir in %s)\n", err, g->source);
        free(res);
        return 1;
    }
    /* one grid at a time in a folder: two would train the same runs */
    char lock[TLCL_CFG_PATH_MAX + 16];
    snprintf(lock, sizeof lock, "%s/grid.lock", g->dir);
    int lock_fd = tlcl_dist_is_root() ? open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644) : -2; /* rank 0 holds it */
    if (lock_fd == -1 || (lock_fd >= 0 && flock(lock_fd, LOCK_EX | LOCK_NB) != 0)) {
        fprintf(stderr, "tlcl grid: %s: %s (grid.dir in %s). Wait for the other grid to end, or give this one "
                        "another grid.dir\n",
                lock, lock_fd < 0 ? strerror(errno) : "another tlcl grid is running in this folder", g->source);
        if (lock_fd >= 0)
            close(lock_fd);
        free(res);
        return 1;
    }
    int failed = 0, share = shares_split(g), root = tlcl_dist_is_root(), waited = 0;
    tlcl_tracker *tracker = root ? grid_track_open(g, n, &c) : NULL; /* c: the last run's; tracking is the same in all */
    char parent[TLCL_CFG_PATH_MAX + 80];
    grid_track_child_arg(tracker, g, parent, sizeof parent);
    tlcl_dist_bcast_bytes(parent, sizeof parent); /* every rank's runs nest under rank 0's grid run */
    double t0 = now_s();
    /* under mpirun run r trains on rank r mod N; rank 0's first run fills the image cache and the split
     * before the others start (two processes must not create one cache file at once) */
    for (int r = 0; r < n; r++) {
        if (r % tlcl_dist_size() != tlcl_dist_rank())
            continue;
        if (!root && !waited)
            tlcl_dist_barrier(), waited = 1;
        int rc = one_run(o, g, res, r, n, share, parent, &c, &args);
        if (root && !waited)
            tlcl_dist_barrier(), waited = 1;
        if (rc < 0) {
            tlcl_tracker_close(tracker, NULL); /* the rerun continues it */
            if (lock_fd >= 0)
                close(lock_fd);
            free(res);
            return 1;
        }
        failed += rc;
    }
    if (!waited) /* a rank without runs */
        tlcl_dist_barrier();
    double failed_all = failed; /* the sum waits for every rank's runs: rank 0 then ranks them all */
    if (tlcl_dist_sum_doubles(&failed_all, 1, err, sizeof err) != TLCL_OK) {
        fprintf(stderr, "tlcl grid: %s\n", err);
        free(res);
        return 1;
    }
    failed = (int)failed_all;
    if (!root) { /* rank 0 writes the summary and gives the exit status */
        free(res);
        return tlcl_dist_bcast_int(0);
    }
    printf("grid: training took %.1f s\n", now_s() - t0);
    int rc = finish_grid(g, res, n, fit_name, cb_name, best_name);
    tlcl_tracker_close(tracker, rc || failed ? "FAILED" : "FINISHED");
    close(lock_fd); /* the lock goes with it; the file stays */
    for (int r = 0; r < n; r++)
        free(res[r].curve);
    free(res);
    if (failed)
        fprintf(stderr, "tlcl grid: %d run%s failed (see above); rerun the grid to retry them\n", failed,
                failed == 1 ? "" : "s");
    return tlcl_dist_bcast_int(rc ? rc : failed ? 1 : 0);
}

int cmd_grid(int argc, char **argv)
{
    grid_cli o;
    cli_args a;
    if (parse_cli(argc, argv, &o, &a))
        return a.status;
    static tlcl_grid_spec g;
    char err[4096];
    if (tlcl_grid_load(&g, o.config, err, sizeof err) != 0) {
        fprintf(stderr, "tlcl grid: %s\n", err);
        return 2;
    }
    static int choice[TLCL_GRID_MAX_RUNS * TLCL_GRID_MAX_KEYS];
    int n = tlcl_grid_runs(&g, choice, TLCL_GRID_MAX_RUNS, err, sizeof err);
    if (n < 0) {
        fprintf(stderr, "tlcl grid: %s\n", err);
        return 2;
    }
    return run_grid(&o, &g, choice, n);
}
