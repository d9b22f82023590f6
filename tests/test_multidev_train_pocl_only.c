/* test_multidev_train_pocl_only.c — `tlcl train --devices=0,0` (two model
 * replicas on PoCL, one process) against `tlcl train --device=0` on the
 * same configuration and data (efficientnet-b0 at 32 px, random weights,
 * head dropout 0.2 and stochastic depth, Adam, one step per epoch): with
 * sync_batchnorm the first epoch's training loss (the first forward, split
 * across the replicas) agrees within 1e-4 relative, the later losses of the
 * CSV log within 1e-3. Adam's first steps move every weight by about the
 * learning rate whatever its gradient's size, so a near-zero gradient whose
 * sign the reductions' rounding flips moves by twice the rate: at 0.002 this
 * ill-conditioned net's second loss moved 4e-4 with one summation order of
 * the column sums and 3.6e-3 with another (both correct); at 0.0002 it
 * moves 1e-4, while a replica's batch norm left unsynchronised still moves
 * the first loss by a third. With per-replica statistics the run finishes
 * and logs its epochs (that it learns as well as one device is
 * multidev_pocl's). */
#include "harness.h"
#include "testdata.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { PER_CLASS = 12, EPOCHS = 2 };

static void write_config(const char *dir, const char *data, int sync_bn)
{
    FILE *f = testdata_config_file(dir);
    if (!f)
        return;
    fprintf(f,
            "train:\n"
            "  config: {seed: 7, epochs: %d, batch_size: 32, sync_batchnorm: %s, logs: {file_path: train.log}}\n"
            "  data_dir: {train: %s/train, validation_split: 0.25, image_size: [32, 32]}\n"
            "  artefacts: {base_dir: artefacts}\n"
            "  metrics: {base_dir: metrics}\n"
            "  records: {base_dir: records}\n"
            "model: {architecture: efficientnet-b0, weights: none, head: {dropout: 0.2}}\n"
            "optimizer: {name: adam, learning_rate: 0.0002}\n"
            "augmentation: {enabled: false}\n"
            "callbacks: {csv_logger: {enabled: true, filename: log.csv}}\n",
            EPOCHS, sync_bn ? "true" : "false", data);
    fclose(f);
}

/* The CSV log's column `key` for each epoch into v[EPOCHS]; 0 when read. */
static int csv_column(const char *dir, const char *key, double *v)
{
    char path[1300], line[4096];
    snprintf(path, sizeof path, "%s/artefacts/log.csv", dir);
    FILE *f = fopen(path, "r");
    if (!f || !fgets(line, sizeof line, f)) {
        if (f)
            fclose(f);
        return -1;
    }
    int col = -1, i = 0;
    for (char *t = strtok(line, ",\r\n"); t; t = strtok(NULL, ",\r\n"), i++)
        if (!strcmp(t, key))
            col = i;
    int rows = 0;
    while (col >= 0 && rows < EPOCHS && fgets(line, sizeof line, f)) {
        i = 0;
        for (char *t = strtok(line, ",\r\n"); t; t = strtok(NULL, ",\r\n"), i++)
            if (i == col)
                v[rows] = atof(t);
        rows++;
    }
    fclose(f);
    return rows == EPOCHS ? 0 : -1;
}

static int train(harness *h, const char *root, const char *name, const char *args, int sync_bn, char *out,
                 size_t len)
{
    char dir[1200], cmd[600];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    mkdir(dir, 0755);
    write_config(dir, root, sync_bn);
    snprintf(cmd, sizeof cmd, "train --no-test %s run.yaml", args);
    int rc = testdata_command(TLCL_BINARY, dir, cmd, out, len);
    harness_expectf(h, rc == 0, "tlcl %s exits 0 (%d)", cmd, rc);
    if (rc != 0)
        printf("%s\n", out);
    return rc;
}

int main(void)
{
    harness h;
    harness_init(&h, 0);
    /* the single device's batch norm by the same reductions as the synchronised one (not
     * the CPU column kernels): a randomly initialised B0 at 32 px is ill-conditioned
     * enough that the kernels' rounding alone moves its loss by percents within an epoch */
    setenv("TLCL_BN_COLUMN", "0", 1);
    char root[] = "/tmp/tlcl-multidev-XXXXXX", train_dir[1200];
    if (!mkdtemp(root))
        return harness_fail(&h, "mkdtemp"), harness_finish(&h);
    snprintf(train_dir, sizeof train_dir, "%s/train", root);
    testdata_shapes(train_dir, PER_CLASS, 0);
    static char out[1 << 16];
    char one_dir[1200], two_dir[1200], per_dir[1200];
    snprintf(one_dir, sizeof one_dir, "%s/one", root);
    snprintf(two_dir, sizeof two_dir, "%s/two", root);
    snprintf(per_dir, sizeof per_dir, "%s/per", root);
    if (train(&h, root, "one", "--device=0", 1, out, sizeof out) ||
        train(&h, root, "two", "--devices=0,0", 1, out, sizeof out))
        return harness_finish(&h);
    harness_expect(&h, strstr(out, "replicas: 2; replica 0: ") && strstr(out, "; replica 1: "),
                   "the console names both replicas");
    harness_expect(&h, strstr(out, "\ndevice 0 (") && strstr(out, " of 27 samples, device 1 ("),
                   "the console prints the measured split of the batch");
    const char *keys[] = {"loss", "val_loss"};
    for (int k = 0; k < 2; k++) {
        double a[EPOCHS], b[EPOCHS];
        if (csv_column(one_dir, keys[k], a) || csv_column(two_dir, keys[k], b)) {
            harness_fail(&h, "log.csv lacks %d epochs of %s", EPOCHS, keys[k]);
            continue;
        }
        for (int e = 0; e < EPOCHS; e++) {
            /* epoch 1's training loss is the first forward, before any update */
            double tol = k == 0 && e == 0 ? 1e-4 : 1e-3, d = fabs(a[e] - b[e]) / fabs(a[e]);
            harness_expectf(&h, d <= tol, "sync BN: epoch %d %s of 2 replicas = 1 device's within %g (%.7f vs %.7f)",
                            e + 1, keys[k], tol, b[e], a[e]);
        }
    }
    if (train(&h, root, "per", "--devices 0,0", 0, out, sizeof out) == 0) {
        double loss[EPOCHS] = {0};
        int read = csv_column(per_dir, "loss", loss);
        harness_expectf(&h, read == 0 && isfinite(loss[EPOCHS - 1]),
                        "per-replica BN: %d epochs logged, finite loss (%.4f)", EPOCHS, loss[EPOCHS - 1]);
    }
    char rm[1300];
    snprintf(rm, sizeof rm, "rm -rf '%s'", root);
    if (h.failed == 0 && system(rm) != 0)
        printf("note: %s failed\n", rm);
    return harness_finish(&h);
}
