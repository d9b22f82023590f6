/* test_resume_pocl_only.c — `tlcl train` end to end: a run killed with
 * SIGKILL in the middle of an epoch and started again really resumes (it
 * says "resumed from ... epoch N, batch B" with the backup's position, trains
 * only the remaining epochs, and its history holds each epoch once, equal to
 * the uninterrupted run's) and ends with exactly the weights of an
 * uninterrupted run on the same device; the run writes every artefact the
 * configuration names, and each parses. Then how a run starts: a rerun of a
 * finished run trains nothing and exits 0 (its run_state.json records that
 * it finished); --resume without a backup is an error naming the backup
 * directory; a backup whose training_state lacks a key is not used (the
 * console names the file and the key; --resume fails, a plain rerun moves it
 * aside and starts over); --fresh moves the old backup and run state aside
 * and trains from the first epoch. (PoCL only: it runs the whole program
 * several times.) */
#define _GNU_SOURCE
#include "harness.h"
#include "testdata.h"

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

enum { PER_CLASS = 12 };

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

/* Starts `tlcl train [flag] run.yaml` in dir; stdout and stderr go to
 * dir/<tag>.out and dir/<tag>.err. */
static pid_t start_train_as(const char *dir, int device, const char *tag, const char *flag)
{
    fflush(stdout); /* the child must not print our buffer again */
    pid_t pid = fork();
    if (pid == 0) {
        char dev[32], out[64], err[64];
        snprintf(dev, sizeof dev, "--device=%d", device);
        snprintf(out, sizeof out, "%s.out", tag), snprintf(err, sizeof err, "%s.err", tag);
        if (chdir(dir) != 0)
            _exit(127);
        if (!freopen(out, "w", stdout) || !freopen(err, "w", stderr))
            _exit(127);
        if (flag)
            execl(TLCL_BINARY, "tlcl", "train", dev, flag, "run.yaml", (char *)NULL);
        else
            execl(TLCL_BINARY, "tlcl", "train", dev, "run.yaml", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static pid_t start_train(const char *dir, int device)
{
    return start_train_as(dir, device, "train", NULL);
}

static int finish(pid_t pid)
{
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int backup_position(const char *path, int *epoch, int *batch);

/* Kills the run once its backup stands in the middle of the second epoch,
 * so that the resumed run has one epoch behind it and some to go. */
static int kill_mid_epoch(const char *dir, pid_t pid)
{
    char backup[1200];
    snprintf(backup, sizeof backup, "%s/artefacts/backup/latest.safetensors", dir);
    for (int i = 0; i < 60000; i++) { /* up to 10 minutes */
        int epoch, batch;
        if (backup_position(backup, &epoch, &batch) && epoch >= 1 && batch >= 1) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return 1;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return 0; /* it finished before */
        usleep(10000);
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

/* The text of dir/rel ("" when absent; malloc'd). */
static char *text_of(const char *dir, const char *rel)
{
    char path[1400];
    size_t n = 0;
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    unsigned char *b = slurp(path, &n);
    char *s = realloc(b ? b : malloc(1), n + 1);
    s[b ? n : 0] = '\0';
    return s;
}

static int count_of(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* The epochs a run's console shows ("phase 1 epoch K/3 ("): a bit per K,
 * and the number of such lines. */
static int epochs_shown(const char *out, int *lines)
{
    int mask = 0;
    *lines = 0;
    for (const char *p = out; (p = strstr(p, "phase 1 epoch ")); p++) {
        int k, of;
        char paren;
        if (sscanf(p, "phase 1 epoch %d/%d %c", &k, &of, &paren) == 3 && paren == '(' && k >= 1 && k < 30) {
            mask |= 1 << k;
            ++*lines;
        }
    }
    return mask;
}

/* The header of a safetensors file, parsed, and the offset of its data. */
static cJSON *read_header(const char *path, unsigned char **file, size_t *n, size_t *data)
{
    *file = slurp(path, n);
    if (!*file || *n < 8)
        return NULL;
    unsigned long long hlen = 0;
    for (int i = 0; i < 8; i++)
        hlen |= (unsigned long long)(*file)[i] << (8 * i);
    if (hlen > *n - 8)
        return NULL;
    char *text = malloc(hlen + 1);
    memcpy(text, *file + 8, hlen);
    text[hlen] = '\0';
    cJSON *h = cJSON_Parse(text);
    free(text);
    *data = 8 + hlen;
    return h;
}

/* The backup's position: training_state "epoch" and "batch". */
static int backup_position(const char *path, int *epoch, int *batch)
{
    unsigned char *file;
    size_t n, data;
    cJSON *h = read_header(path, &file, &n, &data);
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(h, "__metadata__");
    cJSON *ts = cJSON_GetObjectItemCaseSensitive(meta, "training_state");
    cJSON *st = cJSON_IsString(ts) ? cJSON_Parse(ts->valuestring) : NULL;
    cJSON *e = cJSON_GetObjectItemCaseSensitive(st, "epoch"), *b = cJSON_GetObjectItemCaseSensitive(st, "batch");
    int ok = cJSON_IsNumber(e) && cJSON_IsNumber(b);
    if (ok)
        *epoch = e->valueint, *batch = b->valueint;
    cJSON_Delete(st), cJSON_Delete(h), free(file);
    return ok;
}

/* Copies the backup src to dst without the key `drop` of its training_state
 * (the header rewritten and padded, the tensors as they were). */
static int copy_backup_without(const char *src, const char *dst, const char *drop)
{
    unsigned char *file;
    size_t n, data;
    cJSON *h = read_header(src, &file, &n, &data);
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(h, "__metadata__");
    cJSON *ts = cJSON_GetObjectItemCaseSensitive(meta, "training_state");
    cJSON *st = cJSON_IsString(ts) ? cJSON_Parse(ts->valuestring) : NULL;
    int ok = st && cJSON_GetObjectItemCaseSensitive(st, drop);
    if (ok) {
        cJSON_DeleteItemFromObjectCaseSensitive(st, drop);
        char *state = cJSON_PrintUnformatted(st);
        cJSON_ReplaceItemInObjectCaseSensitive(meta, "training_state", cJSON_CreateString(state));
        free(state);
        char *header = cJSON_PrintUnformatted(h);
        size_t hl = strlen(header), padded = (hl + 7) / 8 * 8;
        FILE *f = fopen(dst, "wb");
        unsigned char len8[8];
        for (int i = 0; i < 8; i++)
            len8[i] = (unsigned char)((unsigned long long)padded >> (8 * i));
        ok = f && fwrite(len8, 1, 8, f) == 8 && fwrite(header, 1, hl, f) == hl;
        for (size_t i = hl; ok && i < padded; i++)
            ok = fputc(' ', f) != EOF;
        ok = ok && fwrite(file + data, 1, n - data, f) == n - data;
        if (f)
            ok = fclose(f) == 0 && ok;
        free(header);
    }
    cJSON_Delete(st), cJSON_Delete(h), free(file);
    return ok;
}

static int copy_file(const char *src, const char *dst)
{
    size_t n = 0;
    unsigned char *b = slurp(src, &n);
    FILE *f = b ? fopen(dst, "wb") : NULL;
    int ok = f && fwrite(b, 1, n, f) == n;
    if (f)
        ok = fclose(f) == 0 && ok;
    free(b);
    return ok;
}

/* 1 when dir holds an entry named prefix + something that contains `inside`. */
static int moved_aside(const char *dir, const char *prefix, const char *inside)
{
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "ls -d '%s'/%s.20* >/dev/null 2>&1 && ls '%s'/%s.20*%s >/dev/null 2>&1", dir, prefix,
             dir, prefix, inside);
    return system(cmd) == 0;
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
    printf("     runs in %s\n", root);
    char data[600], a[600], b[600], c[600], d[600], saved[700], path[1400], what[2000];
    snprintf(data, sizeof data, "%s/data", root), snprintf(a, sizeof a, "%s/whole", root);
    snprintf(b, sizeof b, "%s/killed", root), snprintf(c, sizeof c, "%s/nobackup", root);
    snprintf(d, sizeof d, "%s/badbackup", root), snprintf(saved, sizeof saved, "%s/saved.safetensors", root);
    mkdir(data, 0755), mkdir(a, 0755), mkdir(b, 0755), mkdir(c, 0755), mkdir(d, 0755);
    snprintf(path, sizeof path, "%s/train", data);
    testdata_shapes(path, PER_CLASS, 0);
    snprintf(path, sizeof path, "%s/test", data);
    testdata_shapes(path, 4, 5);
    write_config(a, data), write_config(b, data), write_config(c, data), write_config(d, data);
    int lines = 0;

    /* the uninterrupted run */
    harness_expect(&h, finish(start_train(a, device)) == 0, "an uninterrupted run succeeds");
    check_artefacts(&h, a);
    char *out = text_of(a, "train.out");
    harness_expect(&h, epochs_shown(out, &lines) == 0xe && lines == 3 && !strstr(out, "resumed from"),
                   "the uninterrupted run trains epochs 1, 2 and 3 once each, resuming nothing");
    free(out);
    out = text_of(a, "artefacts/run_state.json");
    harness_expect(&h, strstr(out, "\"state\":\t\"finished\"") && strstr(out, "\"epochs_trained\":\t3"),
                   "a finished run records it in artefacts/run_state.json");
    free(out);

    /* killed mid-epoch, started again: it resumes where the backup stands */
    pid_t pid = start_train(b, device);
    int killed = kill_mid_epoch(b, pid);
    harness_expect(&h, killed, "the second run is killed with SIGKILL in its second epoch");
    int epoch = -1, batch = -1;
    snprintf(path, sizeof path, "%s/artefacts/backup/latest.safetensors", b);
    harness_expect(&h, backup_position(path, &epoch, &batch) && epoch >= 1 && epoch < 3,
                   "the killed run left a backup with its position, after its first epoch");
    harness_expect(&h, copy_file(path, saved), "the backup is kept for the later cases");
    harness_expect(&h, finish(start_train_as(b, device, "resumed", NULL)) == 0,
                   "the killed run, started again, completes");
    char wa[800], wb[800];
    snprintf(wa, sizeof wa, "%s/artefacts/best_model.safetensors", a);
    snprintf(wb, sizeof wb, "%s/artefacts/best_model.safetensors", b);
    harness_expect(&h, same_file(wa, wb), "resumed run ends with exactly the uninterrupted run's weights");
    out = text_of(b, "resumed.out");
    char want[1600];
    snprintf(want, sizeof want, "resumed from %s: phase 1, epoch %d, batch %d", path, epoch + 1, batch);
    snprintf(what, sizeof what, "the console says \"%s\"", want);
    harness_expect(&h, strstr(out, want) != NULL, what);
    int mask = epochs_shown(out, &lines), rest = 0;
    for (int k = epoch + 1; k <= 3; k++)
        rest |= 1 << k;
    snprintf(what, sizeof what, "after the resume it trains epochs %d..3 once each, nothing before (%d epoch lines)",
             epoch + 1, lines);
    harness_expect(&h, mask == rest && lines == 3 - epoch, what);
    free(out);
    char log[800];
    snprintf(log, sizeof log, "grep -q 'resumed from .* epoch %d, batch %d' %s/logs/*_train.log", epoch + 1, batch, b);
    harness_expect(&h, system(log) == 0, "the log says where the run resumed");
    char ha[800], hb[800];
    snprintf(ha, sizeof ha, "%s/artefacts/callbacks.csv", a), snprintf(hb, sizeof hb, "%s/artefacts/callbacks.csv", b);
    out = text_of(b, "artefacts/callbacks.csv");
    harness_expect(&h, same_file(ha, hb) && count_of(out, "\r\n") == 4,
                   "the resumed run's history has each epoch once, as the uninterrupted run's");
    free(out);
    snprintf(ha, sizeof ha, "%s/artefacts/fit_history.pkl", a), snprintf(hb, sizeof hb, "%s/artefacts/fit_history.pkl", b);
    harness_expect(&h, same_file(ha, hb), "the resumed run's fit history equals the uninterrupted run's");

    /* a rerun of a finished run trains nothing more */
    harness_expect(&h, finish(start_train_as(b, device, "rerun", NULL)) == 0, "a rerun of a finished run exits 0");
    out = text_of(b, "rerun.out");
    epochs_shown(out, &lines);
    harness_expect(&h, strstr(out, "already finished") && strstr(out, "--fresh") && lines == 0,
                   "it says the run already finished (and how to train again) and trains no epoch");
    free(out);
    harness_expect(&h, same_file(wa, wb), "the finished run's best model is left as it was");
    harness_expect(&h, finish(start_train_as(b, device, "rerun_resume", "--resume")) == 0,
                   "--resume on a finished run: says so, exits 0");
    out = text_of(b, "rerun_resume.out");
    epochs_shown(out, &lines);
    harness_expect(&h, strstr(out, "already finished") && lines == 0, "--resume on a finished run trains no epoch");
    free(out);

    /* --resume with nothing to resume from */
    harness_expect(&h, finish(start_train_as(c, device, "resume", "--resume")) == 1, "--resume without a backup fails");
    out = text_of(c, "resume.err");
    snprintf(want, sizeof want, "%s/artefacts/backup", c);
    harness_expect(&h, strstr(out, "--resume: no backup to resume from") && strstr(out, want),
                   "the error says there is no backup and names the backup directory");
    free(out);
    harness_expect(&h, !nonempty(c, "artefacts/best_model.safetensors"), "and nothing was trained");

    /* a backup whose training_state lacks a key */
    snprintf(path, sizeof path, "%s/artefacts", d);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/artefacts/backup", d);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/artefacts/backup/latest.safetensors", d);
    harness_expect(&h, copy_backup_without(saved, path, "epoch"), "a backup without training_state 'epoch' is made");
    harness_expect(&h, finish(start_train_as(d, device, "resume", "--resume")) == 1,
                   "--resume with a backup missing a key fails (no crash)");
    out = text_of(d, "resume.err");
    harness_expect(&h, count_of(out, "not used") >= 1 && strstr(out, path) && strstr(out, "key 'epoch' is missing") &&
                           strstr(out, "--resume: no usable backup"),
                   "the console says the backup is not used, naming the file and the key");
    free(out);
    harness_expect(&h, finish(start_train_as(d, device, "auto", NULL)) == 0,
                   "a plain rerun with that backup starts over and completes");
    out = text_of(d, "auto.err");
    harness_expect(&h, strstr(out, path) && strstr(out, "key 'epoch' is missing") && strstr(out, "moved aside"),
                   "it names the file and the key and moves the backup aside");
    free(out);
    out = text_of(d, "auto.out");
    harness_expect(&h, epochs_shown(out, &lines) == 0xe && lines == 3 && !strstr(out, "resumed from"),
                   "it trains epochs 1..3 from the start");
    free(out);
    snprintf(wb, sizeof wb, "%s/artefacts/best_model.safetensors", d);
    harness_expect(&h, same_file(wa, wb), "starting over ends with the uninterrupted run's weights");
    snprintf(path, sizeof path, "%s/artefacts", d);
    harness_expect(&h, moved_aside(path, "backup", "/latest.safetensors"),
                   "the unusable backup is kept, renamed with a time stamp");

    /* --fresh on the finished run, with a backup in its place */
    snprintf(path, sizeof path, "%s/artefacts/backup", b);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/artefacts/backup/latest.safetensors", b);
    harness_expect(&h, copy_file(saved, path), "a backup is put back into the finished run");
    harness_expect(&h, finish(start_train_as(b, device, "fresh", "--fresh")) == 0, "--fresh succeeds");
    out = text_of(b, "fresh.out");
    harness_expect(&h, count_of(out, "moved aside") == 2 && epochs_shown(out, &lines) == 0xe && lines == 3 &&
                           !strstr(out, "resumed from") && !strstr(out, "already finished"),
                   "--fresh says it moves the backup and the run state aside and trains epochs 1..3");
    free(out);
    snprintf(wb, sizeof wb, "%s/artefacts/best_model.safetensors", b);
    harness_expect(&h, same_file(wa, wb), "--fresh ends with the uninterrupted run's weights");
    snprintf(path, sizeof path, "%s/artefacts", b);
    harness_expect(&h, moved_aside(path, "backup", "/latest.safetensors") && moved_aside(path, "run_state.json", "") &&
                           nonempty(b, "artefacts/run_state.json"),
                   "the old backup and run state are kept, renamed; a new run state is written");
    pid = fork();
    if (pid == 0) {
        if (chdir(c) != 0 || !freopen("both.err", "w", stderr))
            _exit(127);
        execl(TLCL_BINARY, "tlcl", "train", "--resume", "--fresh", "run.yaml", (char *)NULL);
        _exit(127);
    }
    int rc = finish(pid);
    out = text_of(c, "both.err");
    harness_expect(&h, rc == 2 && strstr(out, "--resume and --fresh") != NULL,
                   "--resume with --fresh is a usage error (exit 2)");
    free(out);

    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (h.failed == 0 && !getenv("TLCL_TEST_KEEP") && system(cmd) != 0) /* TLCL_TEST_KEEP=1 keeps the runs */
        printf("note: could not remove %s\n", root);
    return harness_finish(&h);
}
