/* test_host_grid.c — the grid's plan on the host (grid.h): the `grid:`
 * section's keys, values (lists as YAML flow text) and errors (file, line,
 * key and what to write); the full product in odometer order; a seeded
 * sample (distinct runs, the same for the same seed); folder names; the
 * ranking (direction, runs without the metric last, ties by run number);
 * the summary CSV. */
#define _GNU_SOURCE
#include "harness.h"

#include "grid.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/tlcl-host-grid-XXXXXX";

static const char *write_yaml(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f)
        fputs(text, f), fclose(f);
    return path;
}

static tlcl_grid_spec g;

static void test_load(harness *h)
{
    char err[2048] = "";
    const char *p = write_yaml("a.yaml", "train: {data_dir: {train: x}}\n"
                                         "grid:\n"
                                         "  dir: out\n"
                                         "  sample: 3\n"
                                         "  seed: 9\n"
                                         "  params:\n"
                                         "    optimizer.learning_rate: [1e-3, 1e-4]\n"
                                         "    model.head.units: [[], [128, 64]]\n"
                                         "    class_weight: [none, {a: 2, b: 1}]\n");
    harness_expectf(h, tlcl_grid_load(&g, p, err, sizeof err) == 0, "a grid section loads (%s)", err);
    char want_dir[300];
    snprintf(want_dir, sizeof want_dir, "%s/out", dir);
    harness_expect(h, strcmp(g.dir, want_dir) == 0, "grid.dir resolves against the config file's folder");
    harness_expect(h, strcmp(g.metric, "val_balanced_accuracy") == 0 && g.maximize,
                   "the default metric is val_balanced_accuracy, higher is better");
    harness_expect(h, g.nkeys == 3 && g.sample == 3 && g.seed == 9, "keys, sample and seed are read");
    harness_expect(h, strcmp(g.value[1][0], "[]") == 0 && strcmp(g.value[1][1], "[128, 64]") == 0 &&
                          strcmp(g.value[2][1], "{a: 2, b: 1}") == 0,
                   "list and map values become YAML flow text");

    static const struct {
        const char *yaml, *want;
    } bad[] = {
        {"grid: {params: {optimizer.learning_rate: 1e-3}}\n", ":1: grid.params.optimizer.learning_rate: expected a non-empty list"},
        {"grid:\n  metrc: val_loss\n  params: {a: [1]}\n", ":2: unknown key 'grid.metrc'"},
        {"grid: {mode: up, params: {a: [1]}}\n", "grid.mode: 'up' is not one of auto, max, min"},
        {"grid: {sample: -2, params: {a: [1]}}\n", "grid.sample: expected a non-negative integer"},
        {"grid: {metric: val_loss}\n", "grid.params is missing"},
        {"train: {}\n", "no `grid:` section"},
        {"grid: {params: {a: [1], a: [2]}}\n", "grid.params.a: given twice"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        p = write_yaml("bad.yaml", bad[i].yaml);
        int rc = tlcl_grid_load(&g, p, err, sizeof err);
        harness_expectf(h, rc == -1 && strstr(err, bad[i].want) && strstr(err, "bad.yaml"),
                        "'%s' is refused naming the file: %s", bad[i].want, err);
    }
    p = write_yaml("min.yaml", "grid: {metric: val_loss, params: {a: [1]}}\n");
    harness_expect(h, tlcl_grid_load(&g, p, err, sizeof err) == 0 && !g.maximize, "mode auto: a loss is minimized");
}

static void test_runs(harness *h)
{
    char err[1024], p[300];
    static int choice[TLCL_GRID_MAX_RUNS * TLCL_GRID_MAX_KEYS], again[TLCL_GRID_MAX_RUNS * TLCL_GRID_MAX_KEYS],
        third[TLCL_GRID_MAX_RUNS * TLCL_GRID_MAX_KEYS];
    snprintf(p, sizeof p, "%s", write_yaml("r.yaml", "grid: {params: {x.lr: [1, 2, 3], y.gamma: [a, b]}}\n"));
    tlcl_grid_load(&g, p, err, sizeof err);
    int n = tlcl_grid_runs(&g, choice, TLCL_GRID_MAX_RUNS, err, sizeof err);
    int odometer = n == 6;
    for (int r = 0; r < n && odometer; r++)
        odometer = choice[2 * r] == r / 2 && choice[2 * r + 1] == r % 2;
    harness_expect(h, odometer, "the full product: 6 runs, the last key varies fastest");
    char name[200];
    tlcl_grid_run_name(&g, choice + 2 * 5, 5, name, sizeof name);
    harness_expectf(h, strcmp(name, "run-006-lr=3_gamma=b") == 0, "run names: run-NNN-key=value_... (%s)", name);

    g.sample = 4, g.seed = 3;
    n = tlcl_grid_runs(&g, choice, TLCL_GRID_MAX_RUNS, err, sizeof err);
    int m = tlcl_grid_runs(&g, again, TLCL_GRID_MAX_RUNS, err, sizeof err);
    int distinct = n == 4, ordered = 1;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            int ci = choice[2 * i] * 2 + choice[2 * i + 1], cj = choice[2 * j] * 2 + choice[2 * j + 1];
            distinct &= ci != cj;
            ordered &= ci < cj;
        }
    for (unsigned seed = 0; seed < 20; seed++) { /* 5 draws of 6 repeat one 91% of the time */
        g.sample = 5, g.seed = seed;
        int k = tlcl_grid_runs(&g, third, TLCL_GRID_MAX_RUNS, err, sizeof err);
        distinct &= k == 5;
        for (int i = 0; i < k; i++)
            for (int j = i + 1; j < k; j++) {
                int ci = third[2 * i] * 2 + third[2 * i + 1], cj = third[2 * j] * 2 + third[2 * j + 1];
                distinct &= ci != cj;
                ordered &= ci < cj;
            }
    }
    g.sample = 4, g.seed = 3;
    harness_expect(h, distinct && ordered, "samples (4 of 6; 5 of 6 for 20 seeds): distinct runs, in product order");
    harness_expect(h, m == n && memcmp(choice, again, sizeof(int) * 2 * (size_t)n) == 0,
                   "the same seed draws the same sample");
    int differs = 0;
    for (unsigned seed = 4; seed < 12 && !differs; seed++) {
        g.seed = seed;
        tlcl_grid_runs(&g, again, TLCL_GRID_MAX_RUNS, err, sizeof err);
        differs = memcmp(choice, again, sizeof(int) * 2 * (size_t)n) != 0;
    }
    harness_expect(h, differs, "another seed draws another sample");
    g.sample = 0;
    harness_expect(h, tlcl_grid_runs(&g, choice, 5, err, sizeof err) == -1 && strstr(err, "grid.sample"),
                   "too many runs is an error that points to grid.sample");

    snprintf(p, sizeof p, "%s", write_yaml("n.yaml", "grid: {params: {model.head.units: [[], [512, 256]]}}\n"));
    tlcl_grid_load(&g, p, err, sizeof err);
    int c1 = 1;
    tlcl_grid_run_name(&g, &c1, 1, name, sizeof name);
    harness_expectf(h, strcmp(name, "run-002-units=512-256") == 0, "brackets and spaces leave names (%s)", name);
    int c0 = 0;
    tlcl_grid_run_name(&g, &c0, 0, name, sizeof name);
    harness_expectf(h, strcmp(name, "run-001-units=none") == 0, "an empty list is 'none' (%s)", name);
}

static void test_rank(harness *h)
{
    char err[1024], p[300];
    snprintf(p, sizeof p, "%s", write_yaml("k.yaml", "grid: {metric: val_f1, params: {a.lr: [1, 2, 3, 4]}}\n"));
    tlcl_grid_load(&g, p, err, sizeof err);
    tlcl_grid_result r[4];
    memset(r, 0, sizeof r);
    const double best[4] = {0.5, 0.9, 0.0, 0.9};
    const int state[4] = {TLCL_GRID_OK, TLCL_GRID_OK, TLCL_GRID_NO_METRIC, TLCL_GRID_OK};
    for (int i = 0; i < 4; i++) {
        r[i].run = i, r[i].choice[0] = i, r[i].state = state[i], r[i].best = best[i];
        r[i].best_epoch = state[i] == TLCL_GRID_OK ? 1 + i : 0, r[i].epochs = 5;
        tlcl_grid_run_name(&g, r[i].choice, i, r[i].name, sizeof r[i].name);
    }
    tlcl_grid_sort(&g, r, 4);
    harness_expect(h, r[0].run == 1 && r[1].run == 3 && r[2].run == 0 && r[3].run == 2,
                   "max: best first, ties by run number, the run without the metric last");
    char csv[300], md[300];
    snprintf(csv, sizeof csv, "%s/s.csv", dir), snprintf(md, sizeof md, "%s/s.md", dir);
    harness_expect(h, tlcl_grid_write_summary(&g, r, 4, csv, md, err, sizeof err) == 0, "the summary is written");
    FILE *f = fopen(csv, "r");
    char text[1024] = "";
    if (f)
        text[fread(text, 1, sizeof text - 1, f)] = '\0', fclose(f);
    harness_expectf(h, strcmp(text, "rank,run,a.lr,val_f1,best_epoch,epochs,state\n"
                                    "1,run-002-lr=2,2,0.9,2,5,ok\n"
                                    "2,run-004-lr=4,4,0.9,4,5,ok\n"
                                    "3,run-001-lr=1,1,0.5,1,5,ok\n"
                                    "4,run-003-lr=3,3,,0,5,no metric\n") == 0,
                    "summary.csv: one column per key, best first:\n%s", text);
    g.maximize = 0;
    tlcl_grid_sort(&g, r, 4);
    harness_expect(h, r[0].run == 0 && r[1].run == 1 && r[2].run == 3 && r[3].run == 2,
                   "min: lowest first, the run without the metric still last");
}

int main(void)
{
    harness h;
    harness_init(&h, 0);
    if (!mkdtemp(dir))
        return harness_fail(&h, "mkdtemp"), harness_finish(&h);
    test_load(&h);
    test_runs(&h);
    test_rank(&h);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("     could not remove %s\n", dir);
    return harness_finish(&h);
}
