/* test_cli_pocl_only.c — the `tlcl` command line (issue 14), driving the
 * binary:
 * - every command takes an option's value after '=' and as the next
 *   argument, options after the operands, and `--` ends the options;
 * - every command's --help and -h print its usage and exit 0; `tlcl --help`
 *   lists the commands; `tlcl --version` names a commit of this checkout
 *   (HEAD or an ancestor, as git says);
 * - a misspelled option is a usage error (status 2) naming the closest one;
 * - --batch-size=-4 and --epochs 0 are refused by the configuration's own
 *   check, naming the option and the allowed range;
 * - predict without --top on a 3-class model writes the 3 classes, whose
 *   probabilities sum to 1; --out creates its missing folders, and a folder
 *   that cannot be made is an error naming it;
 * - Keras's identifiers of optimizers, losses and schedules are accepted in
 *   the YAML and with --set, stored as tlcl's names; others are refused
 *   with the accepted names.
 * The summary's parameter count with --classes N is checked against the
 * classifier's size: one more class adds 1280 weights and a bias. */
#include "harness.h"
#include "image_write.h"
#include "testdata.h"
#include "textout.h"

#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

enum { SIZE = 64, SIDE = 16 };

static char root[256], cfg[400], model[400], image[400];
static char out[1 << 16]; /* the last command's stdout and stderr */

/* Runs `tlcl ARGS` (a shell line) in root; its exit status (-1 when it did
 * not exit), its output in out. */
__attribute__((format(printf, 1, 2))) static int tlcl(const char *fmt, ...)
{
    char args[2000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return testdata_command(TLCL_BINARY, root, args, out, sizeof out);
}

static int has(const char *text)
{
    return strstr(out, text) != NULL;
}

/* A check whose failure also shows the command's output. */
#define EXPECT_OUT(h, cond, ...)                                \
    do {                                                        \
        int ok_ = (cond);                                       \
        harness_expectf(h, ok_, __VA_ARGS__);                   \
        if (!ok_)                                               \
            fprintf(stderr, "the output was:\n%s\n", out);     \
    } while (0)

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f)
        fputs(text, f), fclose(f);
}

static void test_help(harness *h)
{
    static const char *const commands[] = {"devices", "summary", "train", "grid", "test",
                                           "predict", "import", "config", "bench", "track"};
    harness_expect(h, tlcl("--help") == 0 && has("commands:"), "tlcl --help exits 0 with the command list");
    char *list = strdup(out);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
        char usage[64], listed[64];
        snprintf(listed, sizeof listed, "\n  %s ", commands[i]);
        harness_expectf(h, list && strstr(list, listed), "tlcl --help lists %s", commands[i]);
        snprintf(usage, sizeof usage, "usage: tlcl %s ", commands[i]);
        for (int shortform = 0; shortform < 2; shortform++) {
            int rc = tlcl("%s %s", commands[i], shortform ? "-h" : "--help");
            harness_expectf(h, rc == 0 && strncmp(out, usage, strlen(usage)) == 0 && has("-h, --help"),
                            "tlcl %s %s exits 0 with its usage (rc %d)", commands[i], shortform ? "-h" : "--help", rc);
        }
    }
    free(list);
    tlcl("train --help");
    harness_expect(h, has("--epochs=N") && has("--batch-size=N") && has("--device=N") && has("--set=KEY=VALUE"),
                   "tlcl train --help lists its options");
    harness_expect(h, tlcl("frain x") == 2 && has("did you mean train?"), "an unknown command suggests the closest");
}

/* Runs `git ARGS` in the source tree (any owner: the suite runs as root); its exit status. */
static int git(const char *args)
{
    char cmd[800];
    snprintf(cmd, sizeof cmd, "git -c safe.directory='*' -C '%s' %s >/dev/null 2>&1", TLCL_SOURCE_DIR, args);
    int st = system(cmd);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The commit --version names is one git knows in this tree, HEAD or before
 * it (a commit since the build is fine: ctest does not rebuild); outside a
 * git checkout it is "unknown". */
static void test_version(harness *h)
{
    int rc = tlcl("--version");
    const char *at = strstr(out, "(commit ");
    char commit[64] = "", args[200];
    if (at)
        sscanf(at + 8, "%40[0-9a-zA-Z.-]", commit);
    char *dirty = strstr(commit, "-dirty");
    if (dirty)
        *dirty = '\0';
    int checkout = git("rev-parse --verify HEAD") == 0;
    snprintf(args, sizeof args, "merge-base --is-ancestor '%s' HEAD", commit);
    int known = commit[0] && (checkout ? git(args) == 0 : strcmp(commit, "unknown") == 0);
    EXPECT_OUT(h, rc == 0 && strncmp(out, "tlcl 0.", 7) == 0 && known,
               "tlcl --version names %s, a commit of this %s", commit, checkout ? "checkout" : "tree (unknown)");
}

static void test_suggestions(harness *h)
{
    int rc = tlcl("train --batchsize 4 '%s'", cfg);
    EXPECT_OUT(h, rc == 2 && has("unknown option '--batchsize' for 'tlcl train'; did you mean --batch-size?"),
               "a misspelled option suggests the closest (rc %d)", rc);
    rc = tlcl("predict --tpo=3 --model m x.png");
    harness_expectf(h, rc == 2 && has("did you mean --top?"), "predict --tpo suggests --top (rc %d)", rc);
    rc = tlcl("train --no-test=1 '%s'", cfg);
    harness_expectf(h, rc == 2 && has("'--no-test' takes no value"), "a value given to a flag is refused (rc %d)", rc);
    rc = tlcl("predict --model");
    harness_expectf(h, rc == 2 && has("'--model' needs a value"), "a missing value is named (rc %d)", rc);
}

/* Values the configuration refuses, in both forms: the error names the option and the range. */
static void test_train_values(harness *h)
{
    static const char *const bad[][2] = {{"--batch-size=-4", "--batch-size: 'train.config.batch_size': expected an "
                                                             "integer in [1, 65536], got -4"},
                                         {"--batch-size -4", "--batch-size: 'train.config.batch_size'"},
                                         {"--epochs 0", "--epochs: 'train.config.epochs': expected an integer in "
                                                        "[1, 1000000], got 0"},
                                         {"--epochs=x", "--epochs: 'train.config.epochs'"},
                                         {"--device 5000", "--device: 'train.config.device'"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = tlcl("train %s '%s'", bad[i][0], cfg);
        EXPECT_OUT(h, rc == 2 && has(bad[i][1]), "train %s is refused naming the option (rc %d)", bad[i][0],
                   rc);
    }
    int rc = tlcl("grid --dry-run --device 5000 '%s'", cfg);
    EXPECT_OUT(h, rc == 2 && has("--device: 'train.config.device': expected an integer in [-1, 1023], got 5000"),
               "grid --device 5000 is refused as the key would be (rc %d)", rc);
    /* accepted values get past the command line: the run then fails on the missing data folder */
    rc = tlcl("train --epochs 3 --device %d --batch-size 8 --no-test '%s'", 0, cfg);
    EXPECT_OUT(h, rc == 1 && has("nodata") && !has("option"), "train takes --epochs 3 --batch-size 8 (rc %d)",
               rc);
    rc = tlcl("train '%s' --epochs=3 --batch-size=8", cfg);
    harness_expectf(h, rc == 1 && has("nodata"), "options after the operand (rc %d)", rc);
}

/* One option of each command, as --opt=value and as --opt value. */
static void test_forms(harness *h, int dev)
{
    for (int eq = 0; eq < 2; eq++) {
        const char *sep = eq ? "=" : " ";
        int rc = tlcl("grid --device%s%d --dry-run '%s'", sep, dev, cfg);
        EXPECT_OUT(h, rc == 0 && has("run-001") && has("run-002"), "grid --device%s%d (rc %d)", sep, dev, rc);
        rc = tlcl("grid '%s' --dry-run --set%soptimizer.name=rmsprop", cfg, sep);
        harness_expectf(h, rc == 2 && has("rmsprop"), "grid --set%s... reaches the configuration (rc %d)", sep, rc);
        rc = tlcl("test --model '%s' --data . --batch-size%s0", model, sep);
        EXPECT_OUT(h, rc == 2 && has("--batch-size: expected an integer in [1, 65536], got '0'"),
                   "test --batch-size%s0 is refused (rc %d)", sep, rc);
        rc = tlcl("bench --mode%ssideways", sep);
        harness_expectf(h, rc == 2 && has("--mode expects train, infer or head, got 'sideways'"),
                        "bench --mode%ssideways (rc %d)", sep, rc);
        rc = tlcl("import missing.h5 --from%skeras --arch efficientnet-b0 -o out.safetensors", sep);
        EXPECT_OUT(h, rc == 1 && has("missing.h5") && !has("usage"), "import --from%skeras (rc %d)", sep, rc);
        rc = tlcl("track sync --timeout%s0 run", sep);
        harness_expectf(h, rc == 2 && has("--timeout: expected an integer"), "track --timeout%s0 (rc %d)", sep, rc);
        rc = tlcl("config check '%s' --set%soptimizer.name=SGD", cfg, sep);
        harness_expectf(h, rc == 0 && has("name: sgd"), "config --set%s... (rc %d)", sep, rc);
        rc = tlcl("predict --model%s'%s' --device%s%d --top%s2 '%s'", sep, model, sep, dev, sep, image);
        EXPECT_OUT(h, rc == 0 && has("file,class_1,prob_1,class_2,prob_2\n"), "predict --top%s2 (rc %d)", sep,
                   rc);
    }
    harness_expect(h, tlcl("devices --json") == 0 && out[0] == '[', "devices --json");
    setenv("TLCL_DEVICE_PROFILE", "amd", 1);
    int prc = tlcl("devices");
    EXPECT_OUT(h, prc == 0 && has("device profile in force: amd") && has("\n0   gpu "),
               "devices under TLCL_DEVICE_PROFILE=amd shows the profile and a GPU (rc %d)", prc);
    setenv("TLCL_DEVICE_PROFILE", "bogus", 1);
    prc = tlcl("devices");
    EXPECT_OUT(h, prc == 1 && has("'bogus'") && has("nvidia, amd, intel-gpu, arm-mali"),
               "devices refuses an unknown TLCL_DEVICE_PROFILE, naming the four (rc %d)", prc);
    unsetenv("TLCL_DEVICE_PROFILE");
    harness_expect(h, tlcl("import x.h5 --from pytorch --arch a -o b") == 2 && has("only --from keras"),
                   "import refuses another --from");
    long total[3] = {0};
    const char *forms[3] = {"--classes 7", "--classes=7", "--classes 8"};
    for (int i = 0; i < 3; i++) {
        int rc = tlcl("summary efficientnet-b0 %s", forms[i]);
        const char *t = strstr(out, "Total params:");
        total[i] = rc == 0 && t ? atol(t + 13) : -1;
    }
    harness_expectf(h, total[0] > 0 && total[0] == total[1] && total[2] - total[0] == 1281,
                    "summary --classes 7 = --classes=7, one class more adds 1281 (%ld %ld %ld)", total[0], total[1],
                    total[2]);
}

/* The default --top is every class of a 3-class model; its probabilities sum to 1. */
static void test_predict(harness *h, int dev)
{
    int rc = tlcl("predict --device=%d --model '%s' '%s'", dev, model, image);
    const char *row = strstr(out, "\n");
    char *line = row ? strstr(row + 1, image) : NULL;
    double p[3] = {0};
    char c[3][16];
    int got = line ? sscanf(line + strlen(image), ",%15[^,],%lf,%15[^,],%lf,%15[^,],%lf", c[0], &p[0], c[1], &p[1],
                            c[2], &p[2])
                   : 0;
    EXPECT_OUT(h, rc == 0 && has("file,class_1,prob_1,class_2,prob_2,class_3,prob_3\n") && got == 6,
               "predict without --top on 3 classes writes 3 (rc %d)", rc);
    harness_expectf(h, got == 6 && p[0] >= p[1] && p[1] >= p[2] && p[0] + p[1] + p[2] > 0.9999 &&
                           p[0] + p[1] + p[2] < 1.0001,
                    "the 3 probabilities are sorted and sum to 1 (%g %g %g)", p[0], p[1], p[2]);
    rc = tlcl("predict --device=%d --model '%s' --top 1 --logits '%s'", dev, model, image);
    row = strstr(out, "\n");
    line = row ? strstr(row + 1, image) : NULL;
    double prob = 0, z[3] = {0};
    got = line ? sscanf(line + strlen(image), ",%15[^,],%lf,%lf,%lf,%lf", c[0], &prob, &z[0], &z[1], &z[2]) : 0;
    double zmax = fmax(z[0], fmax(z[1], z[2])), sum = exp(z[0] - zmax) + exp(z[1] - zmax) + exp(z[2] - zmax);
    EXPECT_OUT(h, rc == 0 && has("file,class_1,prob_1,logit_0,logit_1,logit_2\n") && got == 5 &&
                      fabs(prob - 1.0 / sum) < 1e-6,
               "--logits: 3 logits whose softmax gives the top probability (%g vs %g, rc %d)", prob,
               got == 5 ? 1.0 / sum : -1.0, rc);
    rc = tlcl("predict --device=%d --model '%s' --top 4 '%s'", dev, model, image);
    harness_expectf(h, rc == 1 && has("--top 4 exceeds the model's 3 classes"),
                    "an explicit --top 4 is refused (rc %d)", rc);
    rc = tlcl("predict --device=%d --model '%s' --out new/deeper/preds.csv '%s'", dev, model, image);
    char path[600];
    snprintf(path, sizeof path, "%s/new/deeper/preds.csv", root);
    char *csv = textout_read_all(path, NULL);
    EXPECT_OUT(h, rc == 0 && csv && strncmp(csv, "file,class_1", 12) == 0 && strstr(csv, image),
               "--out creates its missing folders (rc %d)", rc);
    free(csv);
    snprintf(path, sizeof path, "%s/afile", root);
    write_file(path, "not a folder\n");
    rc = tlcl("predict --device=%d --model '%s' --out afile/sub/preds.csv '%s'", dev, model, image);
    EXPECT_OUT(h, rc == 1 && has("--out afile/sub/preds.csv") && has("afile"),
               "an --out folder that cannot be made is named (rc %d)", rc);
    snprintf(path, sizeof path, "%s/-dash.png", root);
    rc = rename(image, path) == 0 ? tlcl("predict --device=%d --model '%s' -- -dash.png", dev, model) : -1;
    EXPECT_OUT(h, rc == 0 && has("\n-dash.png,"), "-- ends the options (rc %d)", rc);
    if (rename(path, image) != 0)
        harness_fail(h, "renaming %s back", path);
}

static void test_keras_names(harness *h)
{
    static const char *const ok[][3] = {
        {"optimizer.name", "Adam", "adam"},   {"optimizer.name", "adam", "adam"},
        {"optimizer.name", "AdamW", "adamw"}, {"optimizer.name", "SGD", "sgd"},
        {"loss.name", "CategoricalCrossentropy", "categorical_crossentropy"},
        {"loss.name", "categorical_focal_crossentropy", "focal"},
        {"loss.name", "CategoricalFocalCrossentropy", "focal"},
        {"schedule.name", "CosineDecay", "cosine"},  {"schedule.name", "ExponentialDecay", "exponential"},
        {"schedule.name", "ReduceLROnPlateau", "reduce_on_plateau"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        char want[64];
        snprintf(want, sizeof want, "\n  name: %s\n", ok[i][2]);
        int rc = tlcl("config check '%s' --set %s=%s", cfg, ok[i][0], ok[i][1]);
        harness_expectf(h, rc == 0 && has(want), "%s=%s is %s (rc %d)", ok[i][0], ok[i][1], ok[i][2], rc);
    }
    int rc = tlcl("config check '%s' --set optimizer.name=RMSprop", cfg);
    EXPECT_OUT(h, rc == 1 && has("expected one of: adam, adamw, sgd (Keras's identifiers Adam, AdamW, SGD)"),
               "RMSprop (not in tlcl) is refused with the accepted names (rc %d)", rc);
    rc = tlcl("config check '%s' --set loss.name=categorical_crossentropie", cfg);
    harness_expectf(h, rc == 1 && has("did you mean 'categorical_crossentropy'?"), "a misspelled loss is named (rc %d)",
                    rc);
    char keras_yaml[600];
    snprintf(keras_yaml, sizeof keras_yaml, "%s/keras.yaml", root);
    write_file(keras_yaml, "train:\n  data_dir: {train: nodata}\noptimizer: {name: AdamW}\n"
                           "loss: {name: CategoricalFocalCrossentropy}\nschedule: {name: CosineDecay}\n");
    rc = tlcl("config check keras.yaml");
    EXPECT_OUT(h, rc == 0 && has("\n  name: adamw\n") && has("\n  name: focal\n") && has("\n  name: cosine\n"),
               "Keras identifiers in the YAML (rc %d)", rc);
}

/* The scratch folder: a configuration (with a grid section), an image and
 * a 3-class checkpoint. 0, or 1 after failing h. */
/* tlcl export, then tlcl import of what it wrote: the same model, so the
 * same logits for an image (the layout itself is checked against Keras's
 * own files by host_keras_export, and in Keras by tools/keras_export_check.py). */
static void test_export(harness *h, int dev)
{
    int rc = tlcl("export --to keras '%s' -o out/m.weights.h5", model);
    EXPECT_OUT(h, rc == 1 && has("out/m.weights.h5") && has("No such file or directory"),
               "export into a missing folder names it (rc %d)", rc);
    rc = tlcl("export --to keras '%s' -o m.h5", model);
    EXPECT_OUT(h, rc == 2 && has("*.weights.h5"), "export -o must end in .weights.h5 (rc %d)", rc);
    rc = tlcl("export --to onnx '%s' -o m.weights.h5", model);
    EXPECT_OUT(h, rc == 2 && has("only --to keras"), "export --to onnx is refused (rc %d)", rc);
    rc = tlcl("export --to keras '%s' -o m.weights.h5", model);
    EXPECT_OUT(h, rc == 0 && has("keras.applications"), "export writes the Keras file (rc %d)", rc);
    rc = rc ? rc : tlcl("import --from keras m.weights.h5 --arch efficientnet-b0 --size %d -o back.safetensors", SIZE);
    EXPECT_OUT(h, rc == 0, "tlcl imports what it exported (rc %d)", rc);
    char first[4096] = "";
    for (int k = 0; rc == 0 && k < 2; k++) {
        rc = tlcl("predict --device=%d --model '%s' --top 1 --logits '%s'", dev, k ? "back.safetensors" : model,
                      image);
        const char *row = strstr(out, image);
        row = row ? strchr(row + strlen(image) + 1, ',') : NULL; /* after the class (import keeps no names) */
        if (k == 0)
            snprintf(first, sizeof first, "%s", row ? row : "(none)");
        else
            EXPECT_OUT(h, rc == 0 && row && strcmp(row, first) == 0,
                       "exported and imported back: the same probability and logits (%s)", first);
    }
}

static int set_up(harness *h)
{
    unsigned char px[SIDE * SIDE * 3];
    for (int i = 0; i < SIDE * SIDE * 3; i++)
        px[i] = (unsigned char)(i * 37 % 251);
    snprintf(root, sizeof root, "/tmp/tlcl_cli_XXXXXX");
    int ok = mkdtemp(root) != NULL;
    snprintf(cfg, sizeof cfg, "%s/run.yaml", root);
    snprintf(model, sizeof model, "%s/model.safetensors", root);
    snprintf(image, sizeof image, "%s/img.png", root);
    if (ok)
        write_file(cfg, "train:\n  data_dir: {train: nodata}\n"
                        "grid:\n  params:\n    optimizer.learning_rate: [1e-3, 1e-4]\n");
    ok = ok && image_write_rgb(image, SIDE, SIDE, px, NULL, 0) == 0;
    if (!ok)
        harness_fail(h, "setting up %s", root);
    return !ok || testdata_checkpoint(h, model, SIZE) != 0;
}

int main(void)
{
    harness h;
    harness_init(&h, 1);
    int dev = tlcl_cl_device(h.cl)->index;
    if (set_up(&h) == 0) {
        test_help(&h);
        test_version(&h);
        test_suggestions(&h);
        test_train_values(&h);
        test_forms(&h, dev);
        test_predict(&h, dev);
        test_export(&h, dev);
        test_keras_names(&h);
    }
    if (h.failed == 0) { /* kept to look at when a check failed */
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        harness_expect(&h, system(cmd) == 0, "the scratch folder is removed");
    }
    return harness_finish(&h);
}
