/* test_console_pocl_only.c — what `tlcl train` tells the user on the
 * console (issue 14, item 10), not only in its log: the images of each
 * class in each split, the class weights in force, each ModelCheckpoint
 * save ("improved from inf to ..., saved to ...") and non-save, the
 * learning rate a plateau schedule lowers, early stopping and the weights
 * it restores, and at the end the epoch the best model is from. The
 * thresholds are set so the events happen at known epochs: min_delta 10
 * makes epoch 2 a plateau for early stopping and for the schedule. */
#include "harness.h"
#include "testdata.h"

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char root[256], out[1 << 16];

/* Writes NAME.yaml (run folder NAME, the shapes data at image_size,
 * batches of 4) with the given epochs, artefacts keys and further
 * sections, and runs `tlcl train --no-test` on it. */
static int train(int device, const char *name, int epochs, const char *image_size, const char *artefacts,
                 const char *rest)
{
    char path[400], args[600];
    snprintf(path, sizeof path, "%s/%s.yaml", root, name);
    FILE *f = fopen(path, "w");
    fprintf(f,
            "train:\n"
            "  config: {seed: 3, epochs: %d, batch_size: 4}\n"
            "  data_dir: {train: data, validation_split: 0.25, split: stratified, image_size: %s}\n"
            "  artefacts: {base_dir: %s%s}\n"
            "  metrics: {base_dir: %s/metrics}\n"
            "  records: {base_dir: %s/records}\n"
            "%s",
            epochs, image_size, name, artefacts, name, name, rest);
    fclose(f);
    snprintf(args, sizeof args, "train --device=%d --no-test %s.yaml", device, name);
    return testdata_command(TLCL_BINARY, root, args, out, sizeof out);
}

static void expect_line(harness *h, const char *text, const char *what)
{
    harness_expectf(h, strstr(out, text) != NULL, "%s: \"%s\"", what, text);
}

/* Keras's {epoch:02d} and {val_loss:.3f} fields name a file per save; a
 * .weights.h5 best_model is the Keras file with the tlcl checkpoint beside
 * it; save_best_only false keeps one file per epoch. */
static void keras_names(harness *h, int device)
{
    char file[500];
    int rc = train(device, "keras", 2, "[32, 32]", ", best_model: 'm_{epoch:02d}_{val_loss:.3f}.weights.h5'",
                   "model: {architecture: efficientnet-b0, weights: none}\n"
                   "callbacks: {model_checkpoint: {save_best_only: false}}\n");
    printf("%s", out);
    int both = 0;
    for (int e = 0; e < 2; e++) { /* the value in the name: found by glob, not re-rounded here */
        glob_t g;
        snprintf(file, sizeof file, "%s/keras/m_%02d_[0-9].[0-9][0-9][0-9].weights.h5", root, e + 1);
        if (glob(file, 0, NULL, &g) == 0 && g.gl_pathc == 1) {
            char twin[600];
            snprintf(twin, sizeof twin, "%.*s.safetensors", (int)(strlen(g.gl_pathv[0]) - strlen(".weights.h5")),
                     g.gl_pathv[0]);
            both += 1 + (access(twin, F_OK) == 0);
        }
        globfree(&g);
    }
    harness_expectf(h, rc == 0 && both == 4,
                    "m_{epoch:02d}_{val_loss:.3f}.weights.h5, save_best_only false: a Keras file and a checkpoint "
                    "for each of the 2 epochs (%d of 4 files, rc %d)", both, rc);
    snprintf(file, sizeof file, "saved to %s/keras/m_02_", root);
    expect_line(h, file, "each save names its file");
}

/* model.input_size 32 under train.data_dir.image_size [40, 36] (seed 001
 * resizes 512 -> 224 in the model): the images are cached at 40x36, the
 * network resizes them (Keras's Resizing), the checkpoint records both, and
 * predict feeds it 40x36 images. */
static void resizing_model(harness *h, int device)
{
    char path[400];
    int rc = train(device, "resize", 1, "[40, 36]", "",
                   "model: {architecture: efficientnet-b0, weights: none, input_size: 32}\n");
    harness_expectf(h, rc == 0, "input_size 32 under image_size [40, 36] trains (rc %d)", rc);
    char args[200];
    snprintf(args, sizeof args, "predict --device=%d --model resize/best_model.safetensors data/circles/img00.png",
             device);
    rc = testdata_command(TLCL_BINARY, root, args, out, sizeof out);
    harness_expectf(h, rc == 0 && strstr(out, "img00.png,"), "predict with that checkpoint (40x36 images, resized "
                    "by the network): %s", out);
    snprintf(path, sizeof path, "%s/resize/best_model.safetensors", root);
    char *text = NULL;
    FILE *f = fopen(path, "rb");
    unsigned long long hlen = 0;
    if (f && fread(&hlen, 8, 1, f) == 1 && hlen < (1u << 20) && (text = calloc(hlen + 1, 1)) &&
        fread(text, 1, hlen, f) == hlen)
        harness_expect(h, strstr(text, "\"image_height\":\"40\"") && strstr(text, "\"image_width\":\"36\"") &&
                              strstr(text, "\"input_size\":\"32\""),
                       "the checkpoint records input_size 32 and the 40x36 images");
    else
        harness_fail(h, "cannot read %s", path);
    free(text);
    if (f)
        fclose(f);
}

/* save_freq in batches: a save every 2 batches of the 5 of an epoch, named
 * by {epoch} and {batch} (1-based, as Keras), none at the epoch's end. */
static void batch_saves(harness *h, int device)
{
    char file[600];
    int rc = train(device, "batches", 1, "[32, 32]", ", best_model: 'b_{epoch:02d}_{batch:03d}.keras'",
                   "model: {architecture: efficientnet-b0, weights: none}\n"
                   "callbacks: {model_checkpoint: {save_freq: 2, save_best_only: false, monitor: loss}}\n");
    int found = 0;
    const int want[3] = {2, 4, 5};
    for (int i = 0; i < 3; i++) {
        snprintf(file, sizeof file, "%s/batches/b_01_%03d.safetensors", root, want[i]);
        int both = access(file, F_OK) == 0;
        snprintf(file, sizeof file, "%s/batches/b_01_%03d.keras", root, want[i]);
        found += (both && access(file, F_OK) == 0) << i;
    }
    harness_expectf(h, rc == 0 && found == 3, "save_freq 2 of 5 batches: b_01_002 and b_01_004 (.keras and "
                    ".safetensors), no b_01_005 (rc %d, found mask %d)", rc, found);
    expect_line(h, "epoch 1 batch 2: loss ", "each batch save is on the console as it happens");
}

int main(void)
{
    harness h;
    harness_init(&h, 1);
    snprintf(root, sizeof root, "%s/tlcl_console_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(root))
        return 1;
    char data[300];
    snprintf(data, sizeof data, "%s/data", root);
    testdata_shapes(data, 8, 0);
    /* the test outputs of an earlier run, which --no-test must not leave beside the new model */
    char metrics[400], file[500];
    snprintf(metrics, sizeof metrics, "%s/run", root);
    mkdir(metrics, 0755);
    snprintf(metrics, sizeof metrics, "%s/run/metrics", root);
    mkdir(metrics, 0755);
    FILE *f;
    const char *earlier[2] = {"test_report.json", "test_confusion_matrix.csv"};
    for (int i = 0; i < 2; i++) {
        snprintf(file, sizeof file, "%s/%s", metrics, earlier[i]);
        f = fopen(file, "w");
        fputs("an earlier run's\n", f);
        fclose(f);
    }
    int device = tlcl_cl_device(h.cl)->index;
    int rc = train(device, "run", 4, "[32, 32]", "",
                   "model: {architecture: efficientnet-b0, weights: none}\n"
                   "class_weight: {circles: 2}\n"
                   "schedule: {name: reduce_on_plateau, patience: 1, min_delta: 10, factor: 0.5}\n"
                   "callbacks:\n"
                   "  early_stopping: {enabled: true, patience: 1, min_delta: 10, restore_best_weights: true}\n");
    printf("%s", out);
    harness_expectf(&h, rc == 0, "tlcl train ran (rc %d)", rc);
    harness_expect(&h, testdata_counts_are(out, "circles", 6, 2, 0) && testdata_counts_are(out, "total", 18, 6, 0),
                   "the class counts table: 6 training and 2 validation images a class");
    expect_line(&h, "class weights (manual): circles 2.0000", "the class weights in force");
    expect_line(&h, "epoch 1: val_loss improved from inf to ", "the first save");
    expect_line(&h, "saved to ", "the file it saved to");
    expect_line(&h, "epoch 2: ReduceLROnPlateau reducing the learning rate from 0.001 to 0.0005",
                "the plateau schedule's change");
    expect_line(&h, "epoch 2: early stopping: val_loss did not improve from ", "early stopping fires at epoch 2");
    expect_line(&h, "(epoch 1) for 1 epochs", "it names the best epoch and the wait");
    expect_line(&h, "phase 1: restoring the weights of epoch 1, the best val_loss", "the weights it restores");
    expect_line(&h, "best model: phase 1 epoch", "which epoch the best model is from");
    expect_line(&h, "the test outputs of an earlier run described another model (this run was not tested: --no-test)",
                "--no-test: the earlier test outputs are marked stale");
    snprintf(file, sizeof file, "%s/test_report.stale.json", metrics);
    char gone[500];
    snprintf(gone, sizeof gone, "%s/test_report.json", metrics);
    harness_expect(&h, access(file, F_OK) == 0 && access(gone, F_OK) != 0,
                   "test_report.json is now test_report.stale.json");
    keras_names(&h, device);
    resizing_model(&h, device);
    batch_saves(&h, device);
    char rm[400];
    snprintf(rm, sizeof rm, "rm -rf '%s'", root);
    if (system(rm) != 0)
        harness_fail(&h, "cannot remove %s", root);
    return harness_finish(&h);
}
