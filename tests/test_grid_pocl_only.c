/* test_grid_pocl_only.c — `tlcl grid` end to end on a tiny generated
 * dataset: a grid of 2 learning rates x 2 focal gammas (1 epoch each,
 * EfficientNet-B0 on 32x32 images, head only on cached features) trains four
 * runs, each in its own folder with its effective configuration and every
 * artefact of `tlcl train`; summary.csv lists every run sorted by the
 * metric; the best run's model is copied to best_model.safetensors; the
 * comparison plot is written; the first run computes the frozen base's
 * features and the others load them from the shared cache. The grid ranks by val_loss (lowest first):
 * one epoch from random weights leaves every balanced accuracy at 1/3. Then one run's finished record is deleted (an
 * interrupted run) and the grid rerun: the three finished runs are skipped
 * (the console says so), the fourth trains again, and the summary is the
 * same. A ranking metric that no run logs is an error naming it. A grid
 * killed (with its run) during its second run and started again skips the
 * first run and ends with the same summary. A second grid in a folder
 * whose lock is held stops. A grid naming an unknown key
 * fails before training, naming the key.
 * (PoCL only: it runs the whole program.) */
#define _GNU_SOURCE
#include "harness.h"
#include "testdata.h"

#include "image_write.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { PER_CLASS = 12, NRUNS = 4 };

static const char *const expect_dirs[NRUNS] = {
    "run-001-learning_rate=0.01_gamma=1.0", "run-002-learning_rate=0.01_gamma=2.0",
    "run-003-learning_rate=0.001_gamma=1.0", "run-004-learning_rate=0.001_gamma=2.0"};

static void write_config(const char *dir, const char *data, const char *out, const char *metric, const char *params)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/run.yaml", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fprintf(f,
            "train:\n"
            "  config: {seed: 7, epochs: 1, batch_size: 4}\n"
            "  data_dir: {train: %s/train, validation_split: 0.25, image_size: [32, 32], cache_features: true}\n"
            "model: {architecture: efficientnet-b0, weights: none, head: {dropout: 0.0}}\n"
            "optimizer: {name: adam, learning_rate: 0.01}\n"
            "loss: {name: focal}\n"
            "phases: [{name: head, trainable: none}]\n"
            "callbacks:\n"
            "  model_checkpoint: {monitor: val_balanced_accuracy, mode: max}\n"
            "metrics: [accuracy, balanced_accuracy]\n"
            "grid:\n"
            "  dir: %s\n"
            "  metric: %s\n"
            "  params:\n"
            "%s",
            data, out, metric, params);
    fclose(f);
}

/* `tlcl grid --device=N run.yaml` in dir, in a process group of its own
 * (it and its `tlcl train` children can be killed together); stdout and
 * stderr to dir/<tag>.out. */
static pid_t start_grid(const char *dir, int device, const char *tag)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        char dev[32], out[64];
        snprintf(dev, sizeof dev, "--device=%d", device);
        snprintf(out, sizeof out, "%s.out", tag);
        if (chdir(dir) != 0 || !freopen(out, "w", stdout) || dup2(fileno(stdout), 2) < 0)
            _exit(127);
        execl(TLCL_BINARY, "tlcl", "grid", dev, "run.yaml", (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    return pid;
}

static int run_grid(const char *dir, int device, const char *tag)
{
    pid_t pid = start_grid(dir, device, tag);
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    *n = 0;
    if (!f)
        return calloc(1, 1);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)(len > 0 ? len : 0) + 1);
    *n = fread(b, 1, (size_t)(len > 0 ? len : 0), f);
    b[*n] = '\0';
    fclose(f);
    return b;
}

static char *text_at(const char *dir, const char *rel)
{
    char path[3000];
    size_t n;
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    return slurp(path, &n);
}

static int exists(const char *dir, const char *rel)
{
    char path[3000];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    return stat(path, &st) == 0 && (S_ISDIR(st.st_mode) || st.st_size > 0);
}

static int count_of(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static int same_files(const char *a, const char *b)
{
    size_t na, nb;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    int same = na > 0 && na == nb && memcmp(x, y, na) == 0;
    free(x), free(y);
    return same;
}

/* summary.csv: the run names in order and the metric column; 1 when the
 * header is as expected and the metric (val_loss: lower is better) never
 * decreases down the rows. */
static int read_summary(const char *csv, char names[][160], int *rows)
{
    *rows = 0;
    const char *line = strchr(csv, '\n');
    static const char head[] = "rank,run,optimizer.learning_rate,loss.gamma,val_loss,best_epoch,epochs,state\n";
    if (strncmp(csv, head, strlen(head)) != 0 || !line)
        return 0;
    double prev = -1e30;
    int sorted = 1;
    for (line++; *line && *rows < 16; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : line + strlen(line)) {
        int rank;
        char name[160], lr[64], gamma[64];
        double v;
        if (sscanf(line, "%d,%159[^,],%63[^,],%63[^,],%lf", &rank, name, lr, gamma, &v) != 5)
            return 0;
        sorted &= rank == *rows + 1 && v >= prev;
        prev = v;
        snprintf(names[(*rows)++], 160, "%s", name);
    }
    return sorted;
}

int main(void)
{
    harness h;
    harness_init(&h, 1);
    int device = tlcl_cl_device(h.cl)->index;
    char root[] = "/tmp/tlcl-grid-XXXXXX";
    if (!mkdtemp(root))
        return harness_fail(&h, "mkdtemp"), harness_finish(&h);
    printf("     runs in %s\n", root);
    char data[600], out[700], path[1400], best[1400], names[16][160];
    snprintf(data, sizeof data, "%s/data", root), snprintf(out, sizeof out, "%s/out", root);
    mkdir(data, 0755);
    snprintf(path, sizeof path, "%s/train", data);
    testdata_shapes(path, PER_CLASS, 0);
    write_config(root, data, "out", "val_loss", "    optimizer.learning_rate: [0.01, 0.001]\n    loss.gamma: [1.0, 2.0]\n");

    time_t t0 = time(NULL);
    harness_expect(&h, run_grid(root, device, "first") == 0, "the grid of 4 runs succeeds");
    printf("     first grid: %ld s\n", (long)(time(NULL) - t0));
    char *console = text_at(root, "first.out");
    harness_expectf(&h, count_of(console, " done in ") == NRUNS, "the console reports %d runs done", NRUNS);
    harness_expect(&h, count_of(console, "wrote a new split") == 1 && count_of(console, "reusing the split") == 3,
                   "the first run draws the split and the three others reuse it");
    int computed = 0, loaded = 0;
    for (int r = 0; r < NRUNS; r++) {
        snprintf(path, sizeof path, "%s/train.log", expect_dirs[r]);
        char *log = text_at(out, path);
        computed += strstr(log, "base features computed once") != NULL;
        loaded += strstr(log, "base features loaded from") != NULL;
        free(log);
    }
    harness_expectf(&h, computed == 1 && loaded == NRUNS - 1,
                    "the first run computes the frozen base's features, the others load them from the cache "
                    "(computed %d, loaded %d)", computed, loaded);
    harness_expect(&h, exists(out, "split.json") && exists(out, "cache") &&
                           !exists(out, "run-002-learning_rate=0.01_gamma=2.0/image_cache"),
                   "the grid keeps one split and one image cache for every run");
    char *csv = text_at(out, "summary.csv");
    int rows = 0;
    harness_expect(&h, read_summary(csv, names, &rows), "summary.csv has a column per varied key and is sorted by "
                                                         "val_loss (lowest first)");
    harness_expectf(&h, rows == NRUNS, "summary.csv lists all %d runs (got %d)", NRUNS, rows);
    for (int r = 0; r < NRUNS; r++) {
        static const char *const files[] = {"config.yaml", "run_state.json", "best_model.safetensors",
                                            "fit_history.json", "callback_history.json", "labels.json",
                                            "split.json", "train.log", "records/fit_plots.jpg"};
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
            snprintf(path, sizeof path, "%s/%s", expect_dirs[r], files[i]);
            harness_expectf(&h, exists(out, path), "the run folder holds %s", path);
        }
        int listed = 0;
        for (int i = 0; i < rows; i++)
            listed |= strcmp(names[i], expect_dirs[r]) == 0;
        harness_expectf(&h, listed, "summary.csv lists %s", expect_dirs[r]);
        snprintf(path, sizeof path, "%s/%s/config.yaml", out, expect_dirs[r]);
        size_t n;
        char *cfg = slurp(path, &n);
        harness_expectf(&h, strstr(cfg, r < 2 ? "learning_rate: 0.01\n" : "learning_rate: 0.001\n") &&
                                strstr(cfg, r % 2 ? "gamma: 2\n" : "gamma: 1\n") != NULL,
                        "the effective configuration of %s holds its values", expect_dirs[r]);
        free(cfg);
    }
    snprintf(path, sizeof path, "%s/%s", out, "best_model.safetensors");
    snprintf(best, sizeof best, "%s/%s/best_model.safetensors", out, rows ? names[0] : "?");
    harness_expect(&h, same_files(path, best), "best_model.safetensors is the best-ranked run's model");
    harness_expect(&h, exists(out, "summary.md") && exists(out, "comparison.png"),
                   "summary.md and comparison.png are written");

    /* an interrupted run: its finished record gone, the others finished */
    snprintf(path, sizeof path, "%s/%s/run_state.json", out, expect_dirs[2]);
    harness_expect(&h, remove(path) == 0, "run 3's finished record is removed");
    t0 = time(NULL);
    harness_expect(&h, run_grid(root, device, "rerun") == 0, "the rerun succeeds");
    printf("     rerun: %ld s\n", (long)(time(NULL) - t0));
    char *again = text_at(root, "rerun.out");
    harness_expect(&h, count_of(again, "finished already") == NRUNS - 1 && count_of(again, ": skipped") == NRUNS - 1,
                   "the rerun skips the 3 finished runs");
    harness_expect(&h, count_of(again, " done in ") == 1 && strstr(again, "[3/4] run-003-") != NULL,
                   "the rerun trains only the interrupted run 3");
    char *csv2 = text_at(out, "summary.csv");
    harness_expect(&h, strcmp(csv, csv2) == 0, "the summary after the rerun is the same");
    if (strcmp(csv, csv2) != 0)
        printf("first:\n%s\nrerun:\n%s\n", csv, csv2);

    /* a metric no run logs: an error naming it and the keys the runs have */
    write_config(root, data, "out", "val_f1", "    optimizer.learning_rate: [0.01, 0.001]\n    loss.gamma: [1.0, 2.0]\n");
    harness_expect(&h, run_grid(root, device, "nometric") == 1, "a metric no run logs fails the grid (exit 1)");
    char *nom = text_at(root, "nometric.out");
    harness_expect(&h, strstr(nom, "'val_f1' is logged by no run") && strstr(nom, "val_balanced_accuracy"),
                   "the error names the metric and the keys the runs logged");

    /* a second grid in a folder where one runs (its lock held) stops */
    snprintf(path, sizeof path, "%s/grid.lock", out);
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    harness_expect(&h, fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0, "the test takes the grid's lock");
    harness_expect(&h, run_grid(root, device, "locked") == 1, "a grid whose folder is locked fails (exit 1)");
    char *locked = text_at(root, "locked.out");
    harness_expect(&h, strstr(locked, "another tlcl grid is running in this folder") && strstr(locked, "grid.lock"),
                   "the error names the lock file and says another grid runs there");
    if (fd >= 0)
        close(fd);

    /* the grid killed (with its run) while the second run trains; the rerun
     * skips the first run, finishes the rest, and the summary is the same */
    write_config(root, data, "out2", "val_loss", "    optimizer.learning_rate: [0.01, 0.001]\n    loss.gamma: [1.0, 2.0]\n");
    pid_t pid = start_grid(root, device, "killed");
    char second[3000];
    snprintf(second, sizeof second, "%s/out2/%s/config.yaml", root, expect_dirs[1]);
    int seen = 0;
    for (int i = 0; i < 6000 && !seen; i++) { /* up to 60 s */
        seen = access(second, F_OK) == 0;
        if (!seen)
            usleep(10000);
    }
    usleep(200000);
    kill(-pid, SIGKILL);
    waitpid(pid, NULL, 0);
    /* the grid's own run process is killed with it but exits (and lets go of
     * its run folder's lock) on its own time: wait until the whole process
     * group is gone (a zombie nobody reaps still counts; 10 s at most) */
    for (int i = 0; i < 1000 && kill(-pid, 0) == 0; i++)
        usleep(10000);
    harness_expect(&h, seen, "the grid reached its second run before it was killed");
    harness_expect(&h, run_grid(root, device, "afterkill") == 0, "the grid rerun after the kill succeeds");
    char *after = text_at(root, "afterkill.out");
    harness_expect(&h, strstr(after, "[1/4] run-001-learning_rate=0.01_gamma=1.0 finished already") != NULL,
                   "the rerun after the kill skips the finished first run");
    char out2[800];
    snprintf(out2, sizeof out2, "%s/out2", root);
    char *csv3 = text_at(out2, "summary.csv");
    harness_expect(&h, strcmp(csv, csv3) == 0, "the killed and rerun grid's summary is the uninterrupted one's");
    if (strcmp(csv, csv3) != 0)
        printf("uninterrupted:\n%s\nkilled and rerun:\n%s\n", csv, csv3);

    /* a key the configuration does not know stops the grid before training */
    write_config(root, data, "out", "val_loss", "    optimizer.learnin_rate: [0.01, 0.001]\n");
    harness_expect(&h, run_grid(root, device, "badkey") == 2, "a grid with an unknown key exits 2");
    char *bad = text_at(root, "badkey.out");
    harness_expect(&h, strstr(bad, "optimizer.learnin_rate") && strstr(bad, "did you mean") &&
                           strstr(bad, "run.yaml"),
                   "the error names the file and the key and suggests the right one");
    if (!strstr(bad, "did you mean"))
        printf("%s\n", bad);
    free(console), free(csv), free(again), free(csv2), free(bad), free(nom), free(after), free(csv3), free(locked);
    return harness_finish(&h);
}
