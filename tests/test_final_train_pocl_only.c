/* test_final_train_pocl_only.c — the plankton workflow's two steps with
 * `tlcl train`: a fine-tuning run with a validation split (its split saved
 * in its artefacts), then a final run on train + valid
 * (train.data_dir.merge_validation) that reuses that saved split through
 * train.data_dir.split_dir, validates nothing, keeps its best model by the
 * training-side balanced accuracy, and logs it every epoch. The training
 * balanced accuracy comes from the device's confusion counts: with every
 * class the same size and no class weights it must equal the training
 * accuracy (from the device's hit counter) exactly, also with a backup
 * folding the counters after every batch. (PoCL only: it runs the whole
 * program twice.) */
#define _GNU_SOURCE
#include "harness.h"
#include "testdata.h"

#include "image_write.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum { PER_CLASS = 12 };

/* The fine-tuning run (final 0) or the final run on train + valid (1). */
static void write_config(const char *dir, const char *data, int final)
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
            "    epochs: 2\n"
            "    batch_size: 4\n"
            "    logs:\n"
            "      file_path: logs/{DATE}_train.log\n"
            "  data_dir: {train: %s, validation_split: 0.25, split: stratified, image_size: [32, 32],\n"
            "             cache_dir: %s/../cache%s}\n"
            "  artefacts: {base_dir: artefacts}\n"
            "  metrics: {base_dir: metrics}\n"
            "  records: {base_dir: records}\n"
            "model: {architecture: efficientnet-b0, weights: none, head: {dropout: 0.2}}\n"
            "optimizer: {name: adam, learning_rate: 0.002}\n"
            "callbacks:\n"
            "  model_checkpoint: {monitor: %s, mode: max}\n"
            "  backup: {save_freq: 1, delete_checkpoint: true}\n"
            "metrics: [accuracy, balanced_accuracy, kappa, f1]\n",
            data, data,
            final ? ", merge_validation: true, split_dir: ../tune/artefacts" : "",
            final ? "balanced_accuracy" : "val_balanced_accuracy");
    fclose(f);
}

static int run_train(const char *dir, int device)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char dev[32];
        snprintf(dev, sizeof dev, "--device=%d", device);
        if (chdir(dir) != 0 || !freopen("train.out", "w", stdout) || !freopen("train.err", "w", stderr))
            _exit(127);
        execl(TLCL_BINARY, "tlcl", "train", dev, "--no-test", "run.yaml", (char *)NULL);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int run_test_split(const char *dir, const char *data, int device)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char dev[32];
        snprintf(dev, sizeof dev, "--device=%d", device);
        if (chdir(dir) != 0 || !freopen("test.out", "w", stdout) || !freopen("test.err", "w", stderr))
            _exit(127);
        execl(TLCL_BINARY, "tlcl", "test", dev, "--model", "artefacts/best_model.safetensors", "--data", data, "--split",
              "artefacts/split.json", "--out", "split_test", (char *)NULL);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *text_of(const char *dir, const char *rel);
static cJSON *history_of(const char *dir);
static const cJSON *series(const cJSON *hist, const char *key);

static void check_test_split(harness *h, const char *tune, const char *data, int device)
{
    int rc = run_test_split(tune, data, device);
    char *out = text_of(tune, "test.out"), *err = text_of(tune, "test.err");
    char *report = text_of(tune, "split_test/test_report.json");
    cJSON *rep = cJSON_Parse(report), *hist = history_of(tune);
    const cJSON *acc = cJSON_GetObjectItemCaseSensitive(rep, "accuracy");
    const cJSON *vba = series(hist, "val_balanced_accuracy"), *vacc = series(hist, "val_accuracy");
    int best = 0;
    for (int e = 1; vba && e < cJSON_GetArraySize(vba); e++)
        best = cJSON_GetArrayItem(vba, e)->valuedouble > cJSON_GetArrayItem(vba, best)->valuedouble ? e : best;
    double want = vacc ? cJSON_GetArrayItem(vacc, best)->valuedouble : -1;
    harness_expectf(h, rc == 0 && strstr(out, "test: 9 held-out files") && cJSON_IsNumber(acc) &&
                           fabs(acc->valuedouble - want) < 1e-9,
                    "tlcl test --split: the 9 held-out files, accuracy %.6f = the best epoch's val_accuracy %.6f (%s%s)",
                    cJSON_IsNumber(acc) ? acc->valuedouble : -1, want, out, err);
    cJSON_Delete(rep), cJSON_Delete(hist);
    free(out), free(err), free(report);
}

/* The text of dir/rel ("" when absent; malloc'd). */
static char *text_of(const char *dir, const char *rel)
{
    char path[1400];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = fopen(path, "rb");
    size_t n = 0, cap = 1 << 16;
    char *s = malloc(cap);
    if (f) {
        n = fread(s, 1, cap - 1, f);
        fclose(f);
    }
    s[n] = '\0';
    return s;
}

static const cJSON *series(const cJSON *hist, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(hist, key);
    return cJSON_IsArray(v) ? v : NULL;
}

/* The run's whole history: fit_history (loss, accuracy) and callback_history
 * (the rest) merged into one object (NULL when either does not parse). */
static cJSON *history_of(const char *dir)
{
    char *a = text_of(dir, "artefacts/fit_history.json"), *b = text_of(dir, "artefacts/callback_history.json");
    cJSON *fit = cJSON_Parse(a), *cb = cJSON_Parse(b);
    free(a), free(b);
    if (!fit || !cb) {
        cJSON_Delete(fit), cJSON_Delete(cb);
        return NULL;
    }
    while (cb->child) {
        cJSON *k = cJSON_DetachItemViaPointer(cb, cb->child);
        cJSON_AddItemToObject(fit, k->string, k);
    }
    cJSON_Delete(cb);
    return fit;
}

int main(void)
{
    harness h;
    harness_init(&h, 1);
    int device = tlcl_cl_device(h.cl)->index;
    char root[] = "/tmp/tlcl-final-XXXXXX";
    if (!mkdtemp(root))
        return harness_fail(&h, "mkdtemp"), harness_finish(&h);
    printf("     runs in %s\n", root);
    char data[600], tune[600], fin[600];
    snprintf(data, sizeof data, "%s/data", root);
    snprintf(tune, sizeof tune, "%s/tune", root), snprintf(fin, sizeof fin, "%s/final", root);
    mkdir(tune, 0755), mkdir(fin, 0755);
    testdata_shapes(data, PER_CLASS, 0);
    write_config(tune, data, 0), write_config(fin, data, 1);

    /* fine-tuning: 27 training, 9 validation images (stratified, 3 per class) */
    int rc = run_train(tune, device);
    char *out = text_of(tune, "train.out"), *err = text_of(tune, "train.err");
    harness_expectf(&h, rc == 0 && strstr(out, "27 training, 9 validation"),
                    "the fine-tuning run trains on 27 images and validates on 9 (%s%s)", out, err);
    cJSON *hist = history_of(tune);
    const cJSON *ba = series(hist, "balanced_accuracy"), *vba = series(hist, "val_balanced_accuracy");
    harness_expect(&h, ba && vba && cJSON_GetArraySize(ba) == 2 && cJSON_GetArraySize(vba) == 2,
                   "fine-tuning logs balanced_accuracy and val_balanced_accuracy every epoch");
    cJSON_Delete(hist), free(out), free(err);

    /* tlcl test --split on the fine-tuning split's 9 validation files gives
     * the validation accuracy of the best epoch (val_balanced_accuracy, first
     * maximum), whose weights the best model holds */
    check_test_split(&h, tune, data, device);

    /* the final run: the saved split's 27 + 9 images train, nothing validates */
    rc = run_train(fin, device);
    out = text_of(fin, "train.out"), err = text_of(fin, "train.err");
    harness_expectf(&h, rc == 0 && strstr(out, "36 training, 0 validation") && strstr(err, "reusing the split in") &&
                            strstr(err, "tune/artefacts/split.json") && strstr(err, "merge_validation"),
                    "the final run reuses the fine-tuning split and trains on train + valid (%s%s)", out, err);
    hist = history_of(fin);
    char *text = hist ? cJSON_PrintUnformatted(hist) : NULL;
    ba = series(hist, "balanced_accuracy");
    const cJSON *acc = series(hist, "accuracy"), *kappa = series(hist, "kappa"), *f1 = series(hist, "f1");
    int ok = ba && acc && cJSON_GetArraySize(ba) == 2 && cJSON_GetArraySize(acc) == 2;
    harness_expect(&h, kappa && f1 && cJSON_GetArraySize(kappa) == 2 && cJSON_GetArraySize(f1) == 2,
                   "the final run logs the training side's kappa and f1 every epoch (confusion counts)");
    const cJSON *k;
    cJSON_ArrayForEach(k, hist) ok &= strncmp(k->string, "val_", 4) != 0;
    harness_expectf(&h, ok, "the final run logs balanced_accuracy every epoch and no val_ key: %s",
                    text ? text : "(no history)");
    for (int e = 0; ok && e < 2; e++) {
        double b = cJSON_GetArrayItem(ba, e)->valuedouble, a = cJSON_GetArrayItem(acc, e)->valuedouble;
        harness_expectf(&h, fabs(a - b) <= 1e-6 && b >= 0 && b <= 1,
                        "equal classes, no class weights: the confusion counts' balanced accuracy equals the "
                        "hit counter's accuracy, counters folded by a backup after every batch (%s)",
                        e == 0 ? "epoch 1" : "epoch 2");
        printf("     epoch %d: accuracy %.6f balanced_accuracy %.6f\n", e + 1, a, b);
    }
    cJSON_Delete(hist), free(text);
    char path[1400];
    struct stat st;
    snprintf(path, sizeof path, "%s/artefacts/best_model.safetensors", fin);
    harness_expect(&h, stat(path, &st) == 0 && st.st_size > 0, "the final run keeps a best model");
    snprintf(path, sizeof path, "%s/artefacts/class_weights.json", fin);
    harness_expect(&h, stat(path, &st) == 0 && st.st_size > 0, "the final run saves the class weights in force");
    harness_expect(&h, strstr(out, "class weights (none):") != NULL, "the class weights in force are printed");
    free(out), free(err);
    return harness_finish(&h);
}
