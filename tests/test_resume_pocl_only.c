/* test_resume_pocl_only.c — `tlcl train` end to end: a run killed with
 * SIGKILL in the middle of an epoch and started again resumes from its
 * backup and ends with exactly the weights of an uninterrupted run on the
 * same device; the run writes every artefact the configuration names, and
 * each parses. (PoCL only: it runs the whole program several times.) */
#define _GNU_SOURCE
#include "harness.h"

#include "image_write.h"

#include <cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *CLASSES[] = {"circles", "stripes", "squares"};
enum { NCLASS = 3, PER_CLASS = 12, SIDE = 24 };

static void write_dataset(const char *root, const char *split, int count, int salt)
{
    unsigned char px[SIDE * SIDE * 3];
    char dir[1024], path[1200];
    for (int k = 0; k < NCLASS; k++) {
        snprintf(dir, sizeof dir, "%s/%s", root, split);
        mkdir(dir, 0755);
        snprintf(dir, sizeof dir, "%s/%s/%s", root, split, CLASSES[k]);
        mkdir(dir, 0755);
        for (int i = 0; i < count; i++) {
            for (int y = 0; y < SIDE; y++)
                for (int x = 0; x < SIDE; x++) {
                    int dx = x - SIDE / 2, dy = y - SIDE / 2, v;
                    if (k == 0)
                        v = (dx * dx + dy * dy) % (40 + i + salt) < 20 ? 230 : 30;
                    else if (k == 1)
                        v = ((x + i + salt) / 3) % 2 ? 220 : 40;
                    else
                        v = (abs(dx) < 6 + i % 4 && abs(dy) < 6 + salt % 3) ? 200 : 50;
                    for (int c = 0; c < 3; c++)
                        px[(y * SIDE + x) * 3 + c] = (unsigned char)(v + 7 * c + i);
                }
            snprintf(path, sizeof path, "%s/img%02d.png", dir, i);
            image_write_rgb(path, SIDE, SIDE, px, NULL, 0);
        }
    }
}

static void write_config(const char *dir, const char *data)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/run.yaml", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fprintf(f,
            "train:\n"
            "  config:\n"
            "    seed: 7\n"
            "    epochs: 3\n"
            "    batch_size: 4\n"
            "    logs:\n"
            "      file_path: logs/{DATE}_train.log\n"
            "  data_dir: {train: %s/train, test: %s/test, validation_split: 0.25, image_size: [32, 32],\n"
            "             cache_dir: %s/cache}\n"
            "  artefacts: {base_dir: artefacts, fit_history: fit_history.pkl, callback_history: callbacks.csv}\n"
            "  metrics: {base_dir: metrics}\n"
            "  records: {base_dir: records}\n"
            "model: {architecture: efficientnet-b0, weights: none, head: {dropout: 0.2}}\n"
            "optimizer: {name: adam, learning_rate: 0.002}\n"
            "augmentation: {enabled: true, flip: horizontal, rotation: 0.05}\n"
            "callbacks:\n"
            "  model_checkpoint: {monitor: val_loss, save_best_only: false}\n"
            "  backup: {save_freq: 1, delete_checkpoint: true}\n"
            "  csv_logger: {enabled: true}\n"
            "metrics: [accuracy, f1, kappa]\n",
            data, data, data);
    fclose(f);
}

static pid_t start_train(const char *dir, int device)
{
    fflush(stdout); /* the child must not print our buffer again */
    pid_t pid = fork();
    if (pid == 0) {
        char dev[32];
        snprintf(dev, sizeof dev, "--device=%d", device);
        if (chdir(dir) != 0)
            _exit(127);
        freopen("train.out", "a", stdout);
        freopen("train.err", "a", stderr);
        execl(TLCL_BINARY, "tlcl", "train", dev, "run.yaml", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int finish(pid_t pid)
{
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Kills the run once its backup exists: somewhere mid-epoch. */
static int kill_mid_epoch(const char *dir, pid_t pid)
{
    char backup[1200];
    snprintf(backup, sizeof backup, "%s/artefacts/backup/latest.safetensors", dir);
    for (int i = 0; i < 6000; i++) { /* up to 10 minutes */
        struct stat st;
        if (stat(backup, &st) == 0) {
            usleep(150000);
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return 1;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return 0; /* it finished before a backup appeared */
        usleep(100000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return 0;
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(len > 0 ? (size_t)len : 1);
    *n = b && fread(b, 1, (size_t)len, f) == (size_t)len ? (size_t)len : 0;
    fclose(f);
    return b;
}

static int same_file(const char *a, const char *b)
{
    size_t na = 0, nb = 0;
    unsigned char *x = slurp(a, &na), *y = slurp(b, &nb);
    int same = x && y && na == nb && na > 0 && memcmp(x, y, na) == 0;
    free(x), free(y);
    return same;
}

static int json_ok(const char *path)
{
    size_t n = 0;
    unsigned char *b = slurp(path, &n);
    if (!b)
        return 0;
    char *s = realloc(b, n + 1);
    s[n] = '\0';
    cJSON *j = cJSON_Parse(s);
    free(s);
    int ok = j != NULL;
    cJSON_Delete(j);
    return ok;
}

static int nonempty(const char *dir, const char *rel)
{
    char path[1400];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    return stat(path, &st) == 0 && st.st_size > 0;
}

static void check_artefacts(harness *h, const char *dir)
{
    static const char *files[] = {"artefacts/best_model.safetensors", "artefacts/fit_history.pkl",
                                  "artefacts/callbacks.csv", "artefacts/labels.json", "artefacts/split.json",
                                  "metrics/test_confusion_matrix.csv", "metrics/test_confusion_matrix.png",
                                  "metrics/test_report.json", "records/fit_plots.jpg", "records/validation_plots.jpg",
                                  "records/class_validation_plots/stripes.jpg"};
    int ok = 1;
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        if (!nonempty(dir, files[i])) {
            printf("     missing or empty: %s\n", files[i]);
            ok = 0;
        }
    harness_expect(h, ok, "every configured artefact is written");
    char path[1400];
    snprintf(path, sizeof path, "%s/metrics/test_report.json", dir);
    int report = json_ok(path);
    snprintf(path, sizeof path, "%s/artefacts/labels.json", dir);
    harness_expect(h, report && json_ok(path), "the report and the labels parse as JSON");
    snprintf(path, sizeof path, "%s/artefacts/fit_history.pkl", dir);
    size_t n = 0;
    unsigned char *pkl = slurp(path, &n);
    harness_expect(h, pkl && n > 3 && pkl[0] == 0x80 && pkl[1] == 2 && pkl[n - 1] == '.', "the history pickle is protocol 2");
    free(pkl);
    snprintf(path, sizeof path, "%s/artefacts/backup", dir);
    struct stat st;
    harness_expect(h, stat(path, &st) != 0, "the backup is deleted after a successful run");
}

int main(void)
{
    harness h;
    harness_init(&h, 1);
    int device = tlcl_cl_device(h.cl)->index;
    char root[] = "/tmp/tlcl-resume-XXXXXX";
    if (!mkdtemp(root))
        return harness_fail(&h, "mkdtemp"), harness_finish(&h);
    char data[600], a[600], b[600];
    snprintf(data, sizeof data, "%s/data", root), snprintf(a, sizeof a, "%s/whole", root);
    snprintf(b, sizeof b, "%s/killed", root);
    mkdir(data, 0755), mkdir(a, 0755), mkdir(b, 0755);
    write_dataset(data, "train", PER_CLASS, 0);
    write_dataset(data, "test", 4, 5);
    write_config(a, data), write_config(b, data);

    harness_expect(&h, finish(start_train(a, device)) == 0, "an uninterrupted run succeeds");
    check_artefacts(&h, a);
    pid_t pid = start_train(b, device);
    int killed = kill_mid_epoch(b, pid);
    harness_expect(&h, killed, "the second run is killed with SIGKILL after its first backup");
    harness_expect(&h, finish(start_train(b, device)) == 0, "the killed run, started again, completes");
    char wa[800], wb[800];
    snprintf(wa, sizeof wa, "%s/artefacts/best_model.safetensors", a);
    snprintf(wb, sizeof wb, "%s/artefacts/best_model.safetensors", b);
    harness_expect(&h, same_file(wa, wb), "resumed run ends with exactly the uninterrupted run's weights");
    char log[800];
    snprintf(log, sizeof log, "grep -q 'resumed from' %s/logs/*_train.log", b);
    harness_expect(&h, system(log) == 0, "the log says where the run resumed");
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (h.failed == 0 && system(cmd) != 0)
        printf("note: could not remove %s\n", root);
    return harness_finish(&h);
}
