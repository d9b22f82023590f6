/* test_compile_helper_pocl_only.c — the compiling helper process of a cold
 * start (cl/cl_helper.c, tlcl_cl_helper_start), end to end through `tlcl
 * bench` on PoCL (EfficientNet-B0's head-training step at 32x32, batch 2):
 * - cold, with the helper: it did part of the work (helper_jobs > 0), the
 *   run's loss is bit for bit the loss of a run without any helper, no
 *   warning; the tlcl cache it leaves holds one entry per program compiled,
 *   and the next process starts warm from it (every program from the
 *   cache, no helper started) with the same loss;
 * - a helper that exits, or stops (SIGSTOP) with a job claimed, right after
 *   its first claim (TLCL_TEST_HELPER_FAULT), or that cannot be started:
 *   the run still succeeds with the same loss and says why on one
 *   "warning:" line; a helper that exits is noticed at once, a stopped one
 *   is given up after TLCL_HELPER_WAIT_S;
 * - after every run no process is left behind: this test is a child
 *   subreaper, so a helper outliving its parent, or left unreaped, would
 *   become its child.
 * The no-helper reference is the run whose helper cannot start; it uses
 * the PoCL cache of the first run and no tlcl cache, so it compiles every
 * program itself. */
#define _GNU_SOURCE
#include "harness.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

static harness H;
static int device_index;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = calloc(1, 1 << 20);
    if (buf)
        buf[fread(buf, 1, (1 << 20) - 1, f)] = '\0';
    fclose(f);
    return buf;
}

typedef struct run_result {
    int status;        /* tlcl's exit status (-1: it did not exit) */
    double loss;       /* the JSON's "loss" (NaN when absent) */
    int helper, helper_jobs, compiled, from_cache;
    char kind[16];
    double seconds;    /* its wall time */
    char *err;         /* its standard error */
} run_result;

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* No process is left to this subreaper (a helper would be reparented here). */
static int no_leftover(void)
{
    int st;
    pid_t r = waitpid(-1, &st, WNOHANG);
    return r < 0 && errno == ECHILD;
}

/* `tlcl bench` with env (a prefix of VAR=value words) on caches under dir. */
static run_result bench(const char *dir, const char *tlcl_cache, const char *env)
{
    char cmd[4096], json[1200], err[1200];
    snprintf(json, sizeof json, "%s/run.json", dir);
    snprintf(err, sizeof err, "%s/stderr.txt", dir);
    remove(json);
    snprintf(cmd, sizeof cmd,
             "env TLCL_CACHE_DIR=%s POCL_CACHE_DIR=%s/pocl %s %s bench --device=%d --arch=efficientnet-b0 "
             "--size=32 --batch=2 --mode=head --steps=2 --warmup=1 --no-peaks --json=%s >/dev/null 2>%s",
             tlcl_cache, dir, env, TLCL_BINARY, device_index, json, err);
    fflush(stdout);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int st = system(cmd);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    run_result r = {.status = st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1, .loss = NAN};
    r.seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    char *text = slurp(json);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "start");
    r.loss = num(j, "loss");
    r.helper = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "helper"));
    r.helper_jobs = (int)num(s, "helper_jobs");
    r.compiled = (int)num(s, "programs_compiled");
    r.from_cache = (int)num(s, "programs_from_cache");
    const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s, "kind"));
    snprintf(r.kind, sizeof r.kind, "%s", kind ? kind : "");
    cJSON_Delete(j);
    free(text);
    r.err = slurp(err);
    if (!r.err)
        r.err = strdup("");
    return r;
}

static int count_bins(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strstr(e->d_name, ".bin") != NULL;
    if (d)
        closedir(d);
    return n;
}

/* A fresh folder with an empty PoCL cache under it. */
static void fresh(char *dir, size_t len, const char *root, const char *name)
{
    char cmd[1300];
    snprintf(dir, len, "%s/%s", root, name);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s/pocl' '%s/tlcl'", dir, dir, dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot create %s\n", dir);
}

/* A run that must succeed, with the reference's loss, no process left. */
static void check_run(const char *what, const run_result *r, double ref)
{
    char msg[200];
    snprintf(msg, sizeof msg, "%s: tlcl bench exits 0", what);
    harness_expect(&H, r->status == 0, msg);
    snprintf(msg, sizeof msg, "%s: the loss %.17g is the no-helper run's %.17g", what, r->loss, ref);
    harness_expect(&H, isfinite(r->loss) && r->loss == ref, msg);
    snprintf(msg, sizeof msg, "%s: no helper process is left behind", what);
    harness_expect(&H, no_leftover(), msg);
}

static void check_warning(const char *what, const run_result *r, const char *want)
{
    char msg[700];
    snprintf(msg, sizeof msg, "%s: one warning naming the helper and '%s' (stderr: %.300s)", what, want, r->err);
    const char *w = strstr(r->err, "warning: the compiling helper process");
    harness_expect(&H, w && strstr(w, want) && !strstr(w + 1, "warning:"), msg);
}

int main(void)
{
    harness_init(&H, 1); /* fails when PoCL is missing */
    device_index = tlcl_cl_device(H.cl)->index;
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    char root[] = "/tmp/tlcl_helper_XXXXXX", dir[600], tlcl_cache[700];
    if (!mkdtemp(root))
        return harness_fail(&H, "mkdtemp"), harness_finish(&H);

    /* cold, with the helper (a cache the next process starts from) */
    fresh(dir, sizeof dir, root, "helper");
    snprintf(tlcl_cache, sizeof tlcl_cache, "%s/tlcl", dir);
    run_result cold = bench(dir, tlcl_cache, "");
    harness_expect(&H, cold.status == 0 && cold.helper, "cold: tlcl bench exits 0, with a helper process");
    harness_expect(&H, cold.helper_jobs > 0, "cold: the helper did some of the builds, first launches or cache entries");
    harness_expect(&H, !strstr(cold.err, "warning"), "cold: no warning");
    harness_expect(&H, cold.compiled > 0 && count_bins(tlcl_cache) == cold.compiled,
              "cold: tlcl's cache holds one entry per program compiled");
    harness_expect(&H, no_leftover(), "cold: no helper process is left behind");

    /* the reference: no helper (it cannot start), every program compiled
     * here (no tlcl cache; PoCL's cache of the run above) */
    run_result ref = bench(dir, "/proc/none", "TLCL_TEST_HELPER_FAULT=exec");
    harness_expect(&H, ref.status == 0 && !ref.helper && isfinite(ref.loss), "no helper: tlcl bench exits 0 with a loss");
    check_warning("helper not started", &ref, "/nonexistent/tlcl");
    check_run("cold with the helper", &cold, ref.loss);

    run_result warm = bench(dir, tlcl_cache, "");
    check_run("warm", &warm, ref.loss);
    harness_expect(&H, strcmp(warm.kind, "warm") == 0 && warm.from_cache == cold.compiled && !warm.helper,
              "warm: every program from the helper run's cache, no helper started");

    /* helpers that fail after their first claim, each on cold caches */
    fresh(dir, sizeof dir, root, "exit");
    run_result ex = bench(dir, "/proc/none", "TLCL_TEST_HELPER_FAULT=exit TLCL_HELPER_WAIT_S=150");
    check_run("helper exits", &ex, ref.loss);
    check_warning("helper exits", &ex, "exited with status 3");
    harness_expectf(&H, ex.seconds < 120, "helper exits: noticed at once, not after the %d s wait limit (the run "
                    "took %.1f s)", 150, ex.seconds);

    fresh(dir, sizeof dir, root, "stall");
    run_result stall = bench(dir, "/proc/none", "TLCL_TEST_HELPER_FAULT=stall TLCL_HELPER_WAIT_S=1");
    check_run("helper stalls", &stall, ref.loss);
    check_warning("helper stalls", &stall, "finished nothing for 1 s");

    /* off by the setting */
    run_result off = bench(dir, "/proc/none", "TLCL_COMPILE_HELPER=0");
    check_run("TLCL_COMPILE_HELPER=0", &off, ref.loss);
    harness_expect(&H, !off.helper && !strstr(off.err, "warning"), "TLCL_COMPILE_HELPER=0: no helper, no warning");

    run_result *all[] = {&cold, &ref, &warm, &ex, &stall, &off};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        free(all[i]->err);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
    return harness_finish(&H);
}
