/* test_host_config.c — the YAML configuration: the default file and every
 * example load; each error class reports FILE:LINE:COLUMN and what was
 * expected; --set overrides and rejections; path resolution and {DATE};
 * Keras defaults; the dump reads back unchanged; truncated and garbled
 * files never crash (the suite also runs under ASan + UBSan); the phase
 * limit is one number that the configuration and the trainer share.
 * Host only. */
#include "config.h"
#include "dataset_split.h"
#include "harness.h"
#include "textout.h"
#include "run_plan.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

static char tmpdir[256];
static tlcl_config cfg, cfg2; /* large: static rather than on the stack */

static const char *write_file(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
    return path;
}

static tlcl_status load_finalize(const char *path, char *err, size_t len)
{
    tlcl_status s = tlcl_config_load(&cfg, path, err, len);
    return s ? s : tlcl_config_finalize(&cfg, err, len);
}

/* Loads text and expects an error at LINE:COL (NULL: a key the file did not
 * set, so no position) whose message contains each `want`. */
static void expect_error(harness *h, const char *what, const char *text, const char *linecol, const char *want1,
                         const char *want2)
{
    const char *path = write_file("err.yaml", text);
    char err[1024] = "", where[600];
    tlcl_status s = load_finalize(path, err, sizeof err);
    snprintf(where, sizeof where, "%s:%s: ", path, linecol ? linecol : "");
    int ok = s != TLCL_OK && (linecol ? strstr(err, where) != NULL : strncmp(err, path, strlen(path)) != 0) && strstr(err, want1) && (!want2 || strstr(err, want2));
    harness_expectf(h, ok, "%s -> %s", what, err);
}

static void test_files_load(harness *h)
{
    static const char *const files[] = {"config/default.yaml", "config/examples/frozen_head.yaml",
                                        "config/examples/two_phase.yaml",
                                        "config/examples/focal_class_weights.yaml",
                                        "config/examples/grid_head.yaml", "config/examples/seed000.yaml"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[512], err[1024] = "";
        snprintf(path, sizeof path, "%s/%s", TLCL_SOURCE_DIR, files[i]);
        tlcl_status s = load_finalize(path, err, sizeof err);
        harness_expectf(h, s == TLCL_OK, "%s loads and finalizes %s", files[i], err);
    }
    /* what the examples promise */
    char path[512], err[1024];
    snprintf(path, sizeof path, "%s/config/examples/two_phase.yaml", TLCL_SOURCE_DIR);
    load_finalize(path, err, sizeof err);
    harness_expectf(h, cfg.phases_count == 2 && cfg.phases[0].trainable == TLCL_TRAIN_NONE &&
                 cfg.phases[1].trainable == TLCL_TRAIN_TOP_BLOCKS && cfg.phases[1].top_blocks == 2 &&
                 cfg.phases[1].bn_frozen && tlcl_config_phase_learning_rate(&cfg, 1) == 1e-5 &&
                 tlcl_config_phase_epochs(&cfg, 1) == 20 && cfg.model.head.units_count == 2 &&
                 cfg.model.head.units[0] == 1024 && cfg.model.head.units[1] == 512 && cfg.callbacks.backup.save_freq == 1000,
         "two_phase: frozen head, then top 2 blocks with frozen BN at 1e-5, head [1024, 512]");
    snprintf(path, sizeof path, "%s/config/examples/focal_class_weights.yaml", TLCL_SOURCE_DIR);
    load_finalize(path, err, sizeof err);
    harness_expectf(h, cfg.loss.name == TLCL_LOSS_FOCAL && cfg.loss.gamma == 2.0 && cfg.class_weight.kind == TLCL_CW_BALANCED &&
                 cfg.train.data_dir.split == TLCL_CFG_SPLIT_GROUP && cfg.metrics_count == 5 &&
                 cfg.metrics[4].kind == TLCL_METRIC_TOP_K && cfg.metrics[4].k == 3,
         "focal_class_weights: focal, balanced weights, group split, top-3 accuracy");
    snprintf(path, sizeof path, "%s/config/examples/seed000.yaml", TLCL_SOURCE_DIR);
    tlcl_status s = load_finalize(path, err, sizeof err);
    harness_expectf(h, s == TLCL_OK && cfg.loss.name == TLCL_LOSS_CROSSENTROPY && cfg.metrics_count == 1 &&
                           cfg.metrics[0].kind == TLCL_METRIC_ACCURACY && strstr(cfg.train.artefacts.fit_history, ".pkl"),
                    "seed000: train.config.loss and train.config.metric as seed 000 writes them %s", err);
}

/* Keras's ModelCheckpoint names: the fields filled from the epoch's logs as
 * Python's str.format fills them, and the config check's refusals. */
static void test_name_template(harness *h)
{
    const char *keys[] = {"loss", "val_kappa"};
    const double values[] = {0.25, 0.834499};
    char name[256], why[256] = "";
    int rc = tlcl_name_template_fill("m_{epoch:02d}_{val_kappa:.3f}_{loss}_{{x}}.weights.h5", 7, keys, values, 2,
                                     name, sizeof name, why, sizeof why);
    harness_expectf(h, rc == 0 && strcmp(name, "m_07_0.834_0.25_{x}.weights.h5") == 0,
                    "{epoch:02d}, {val_kappa:.3f}, {loss} and {{x}} as Python formats them -> %s %s", name, why);
    rc = tlcl_name_template_fill("m_{epoch:4d}_{val_kappa:e}", 12, keys, values, 2, name, sizeof name, why, sizeof why);
    harness_expectf(h, rc == 0 && strcmp(name, "m_  12_8.344990e-01") == 0, "width and e -> '%s'", name);
    static const struct {
        const char *tpl, *want;
    } bad[] = {{"m_{epoch:x}", "the format after ':'"}, {"m_{epoch", "without its '}'"}, {"m_}", "without its '{'"},
               {"m_{val_auc}", "not logged by this epoch"}, {"m_{epoch:.2d}", "the format after ':'"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rc = tlcl_name_template_fill(bad[i].tpl, 1, keys, values, 2, name, sizeof name, why, sizeof why);
        harness_expectf(h, rc != 0 && strstr(why, bad[i].want), "'%s' refused: %s", bad[i].tpl, why);
    }
    expect_error(h, "a best_model field that no epoch logs",
                 "train: {data_dir: {train: d}, artefacts: {best_model: 'm_{epoch:02d}_{val_kappa:.3f}.safetensors'}}\n",
                 "1:43", "'train.artefacts.best_model': '{val_kappa}' is neither epoch nor a value an epoch logs",
                 "{epoch:02d}");
    expect_error(h, "batch saves of the best model by a validation monitor",
                 "train: {data_dir: {train: d}}\ncallbacks: {model_checkpoint: {save_freq: 10}}\n", "2:32",
                 "'callbacks.model_checkpoint.save_freq': 10 batches saves mid-epoch", "monitor a training-side value");
    const char *path = write_file("tpl.yaml", "train: {data_dir: {train: d}, artefacts: {best_model: "
                                              "'m_{epoch:02d}_{val_loss:.4f}.weights.h5'}}\n");
    char err_buf[1024] = "";
    tlcl_status s = load_finalize(path, err_buf, sizeof err_buf);
    harness_expectf(h, s == TLCL_OK, "a best_model of {epoch} and a logged value, .weights.h5, is accepted %s",
                    err_buf);
}

/* The aliases set their key: given twice is a duplicate, a bad value names the alias. */
static void test_aliases(harness *h)
{
    const char *path = write_file("alias.yaml", "train:\n  data_dir: {train: d}\n  config:\n    loss: focal\n"
                                                "    metric: [accuracy, kappa]\n");
    char err[1024] = "";
    tlcl_status s = load_finalize(path, err, sizeof err);
    harness_expectf(h, s == TLCL_OK && cfg.loss.name == TLCL_LOSS_FOCAL && cfg.metrics_count == 2 &&
                           cfg.metrics[1].kind == TLCL_METRIC_KAPPA,
                    "train.config.loss: focal and train.config.metric: [accuracy, kappa] %s", err);
    expect_error(h, "an alias and its key both given",
                 "train:\n  data_dir: {train: d}\n  config: {loss: focal}\nloss: {name: focal}\n", "4:8", "duplicate key",
                 "first at line 3");
    expect_error(h, "a bad value is reported under the alias's name",
                 "train:\n  data_dir: {train: d}\n  config: {metric: acuracy}\n", "3:20", "'train.config.metric'",
                 "acuracy");
}

static void test_default_file_current(harness *h)
{
    char *mem = NULL, path[512];
    size_t len = 0, flen = 0;
    FILE *f = open_memstream(&mem, &len);
    tlcl_config_print_default(f);
    fclose(f);
    snprintf(path, sizeof path, "%s/config/default.yaml", TLCL_SOURCE_DIR);
    char *file = textout_read_all(path, &flen);
    harness_expectf(h, file && flen == len && memcmp(file, mem, len) == 0,
          "config/default.yaml matches the schema (regenerate: tlcl config default > config/default.yaml)");
    free(file);
    free(mem);
}

static void test_keras_defaults(harness *h)
{
    char err[1024];
    harness_expectf(h, tlcl_config_defaults(&cfg, err, sizeof err) == TLCL_OK, "defaults apply");
    const tlcl_config *c = &cfg;
    harness_expectf(h, c->optimizer.name == TLCL_OPTIMIZER_ADAM && c->optimizer.learning_rate == 1e-3 &&
                 c->optimizer.beta_1 == 0.9 && c->optimizer.beta_2 == 0.999 && c->optimizer.epsilon == 1e-7 &&
                 tlcl_config_weight_decay(c) == 0.0 && isnan(c->optimizer.global_clipnorm),
          "Adam: 1e-3, 0.9, 0.999, 1e-7, no weight decay, no clipping");
    tlcl_config_set(&cfg, "optimizer.name", "adamw", err, sizeof err);
    harness_expectf(h, tlcl_config_weight_decay(c) == 0.004, "AdamW weight_decay 0.004");
    harness_expectf(h, c->schedule.factor == 0.1 && c->schedule.patience == 10 && c->schedule.min_delta == 1e-4 &&
                 c->schedule.cooldown == 0 && c->schedule.min_lr == 0 && !strcmp(c->schedule.monitor, "val_loss") &&
                 c->schedule.mode == TLCL_MODE_AUTO,
          "ReduceLROnPlateau: factor 0.1, patience 10, min_delta 1e-4, cooldown 0, min_lr 0, val_loss, auto");
    const __typeof__(c->callbacks.early_stopping) *es = &c->callbacks.early_stopping;
    harness_expectf(h, es->patience == 0 && es->min_delta == 0 && isnan(es->baseline) && !es->restore_best_weights &&
                 es->start_from_epoch == 0 && es->mode == TLCL_MODE_AUTO && !strcmp(es->monitor, "val_loss"),
          "EarlyStopping: patience 0, min_delta 0, no baseline, no restore, start 0, val_loss");
    harness_expectf(h, c->callbacks.backup.save_freq == 0 && !c->callbacks.backup.double_checkpoint &&
                 c->callbacks.backup.delete_checkpoint && !strcmp(c->callbacks.csv_logger.separator, ",") &&
                 !c->callbacks.csv_logger.append && isnan(c->callbacks.model_checkpoint.initial_value_threshold),
          "BackupAndRestore epoch/no double/delete, CSVLogger ',' no append");
    harness_expectf(h, c->loss.alpha_count == 1 && c->loss.alpha[0] == 0.25 && c->loss.gamma == 2.0 &&
                 c->loss.label_smoothing == 0 && c->train.config.batch_size == 32 && c->model.drop_connect_rate == 0.2 &&
                 c->schedule.alpha == 0 && !c->schedule.staircase && isnan(c->schedule.warmup_target),
          "focal alpha 0.25 gamma 2, no smoothing, batch 32, drop_connect 0.2, cosine alpha 0");
    harness_expectf(h, c->metrics_count == 1 && c->metrics[0].kind == TLCL_METRIC_ACCURACY && c->train.config.device == -1 &&
                 c->class_weight.kind == TLCL_CW_NONE && c->phases_count == 0,
          "metrics [accuracy], device -1, no class weights, no phases");
    tlcl_config_set(&cfg, "metrics", "[top_k_accuracy]", err, sizeof err);
    harness_expectf(h, c->metrics[0].kind == TLCL_METRIC_TOP_K && c->metrics[0].k == 5, "top_k_accuracy k defaults to 5");
}

static void test_errors(harness *h)
{
    expect_error(h, "unknown key", "train: {data_dir: {train: d}}\noptimizer:\n  lerning_rate: 0.1\n", "3:3",
                 "unknown key 'optimizer.lerning_rate'", "did you mean 'learning_rate'?");
    expect_error(h, "key in the wrong section", "train: {data_dir: {train: d}}\nlearning_rate: 0.1\n", "2:1",
                 "unknown key 'learning_rate'", "did you mean 'optimizer.learning_rate'?");
    expect_error(h, "wrong type", "train:\n  data_dir: {train: d}\n  config:\n    epochs: abc\n", "4:13",
                 "'train.config.epochs': expected an integer in [1, 1000000], got 'abc'", NULL);
    expect_error(h, "number expected", "train: {data_dir: {train: d}}\noptimizer:\n  learning_rate: fast\n", "3:18",
                 "expected a number", "got 'fast'");
    expect_error(h, "out of range", "train: {data_dir: {train: d}}\noptimizer:\n  beta_1: 1.5\n", "3:11",
                 "expected a number in [0, 1)", "1.5 (out of range)");
    expect_error(h, "unknown enum", "train: {data_dir: {train: d}}\noptimizer:\n  name: rmsprop\n", "3:9",
                 "expected one of: adam, adamw, sgd", "got 'rmsprop'");
    expect_error(h, "list where a number goes", "train: {data_dir: {train: d}}\nloss:\n  gamma: [1, 2]\n", "3:10",
                 "'loss.gamma'", "got a list");
    expect_error(h, "missing required key", "train:\n  data_dir:\n    test: data/test\n", "2:3",
                 "missing required key 'train.data_dir.train'", NULL);
    expect_error(h, "missing required key, empty file", "", "1:1", "missing required key 'train.data_dir.train'",
                 NULL);
    expect_error(h, "malformed YAML", "train:\n  data_dir: {train: d}\n  config: [1, 2\n", "4:1", "YAML syntax error",
                 NULL);
    expect_error(h, "bad indentation", "train:\n  data_dir:\n    train: d\n   config: 1\n", "4:4",
                 "YAML syntax error", NULL);
    expect_error(h, "duplicate key", "train:\n  data_dir: {train: d}\noptimizer:\n  name: adam\n  name: sgd\n", "5:3",
                 "duplicate key 'optimizer.name' (first at line 4)", NULL);
    expect_error(h, "section given a value", "train: {data_dir: {train: d}}\noptimizer: adam\n", "2:12",
                 "'optimizer' is a section", NULL);
    expect_error(h, "extension", "train:\n  data_dir: {train: d}\n  artefacts:\n    best_model: best.h5\n", "4:17",
                 "a path ending in .safetensors", "'best.h5'");
    expect_error(h, "null where a value is required", "train: {data_dir: {train: ~}}\n", "1:27",
                 "'train.data_dir.train': expected a path, got null", NULL);
    expect_error(h, "phase without its block count", "train: {data_dir: {train: d}}\nphases:\n  - trainable: top_blocks\n",
                 "3:5", "top_blocks needs top_blocks: N", NULL);
    expect_error(h, "unknown phase key", "train: {data_dir: {train: d}}\nphases:\n  - {name: a, epoch: 3}\n", "3:15",
                 "unknown key 'phases[0].epoch'", "did you mean 'epochs'?");
    expect_error(h, "unknown metric", "train: {data_dir: {train: d}}\nmetrics: [accuracy, mcc]\n", "2:21",
                 "got 'mcc'", "balanced_accuracy");
    expect_error(h, "class weight", "train: {data_dir: {train: d}}\nclass_weight: {a: 1, b: heavy}\n", "2:25",
                 "'class_weight.b': expected a number", NULL);
    expect_error(h, "monitor not logged",
                 "train: {data_dir: {train: d}}\ncallbacks:\n  model_checkpoint:\n    monitor: val_acc\n", "4:5",
                 "'val_acc' is not logged", "val_accuracy");
    expect_error(h, "val_ monitor without validation data",
                 "train: {data_dir: {train: d, validation_split: 0}}\n", NULL,
                 "'callbacks.model_checkpoint.monitor': 'val_loss' needs validation data", NULL);
    expect_error(h, "test and test_split", "train:\n  data_dir: {train: d, test: t, test_split: 0.2}\n", "2:33",
                 "give one or the other", NULL);
    expect_error(h, "nothing left to train on", "train:\n  data_dir: {train: d, test_split: 0.5, validation_split: 0.5}\n",
                 "2:41", "leaves no training images", NULL);
    expect_error(h, "group split without a pattern", "train:\n  data_dir: {train: d, split: group}\n", "2:24",
                 "group needs train.data_dir.group_pattern", NULL);
    /* 130 stacked '+' hung glibc's regcomp (fuzz_config, a 1 s timeout); a
     * pattern of nested counts as well; the usual one passes */
    expect_error(h, "stacked repetitions", "train:\n  data_dir: {train: d, split: group, group_pattern: '^([^_]++++++++++++++)_'}\n",
                 "2:38", "'train.data_dir.group_pattern': repeats too much", NULL);
    expect_error(h, "nested counted repetitions",
                 "train:\n  data_dir: {train: d, split: group, group_pattern: '((a{20}){20}){20}(x)'}\n", "2:38",
                 "repeats too much", NULL);
    harness_expectf(h, tlcl_regex_cost_ok("^([^_]+)_(S[0-9]{2,3})") && tlcl_regex_cost_ok("[+{]+x{3}") &&
                           !tlcl_regex_cost_ok("a{4096}"),
                    "ordinary patterns are within the regex cost, a{4096} is not");
    expect_error(h, "bad regex", "train:\n  data_dir: {train: d, split: group, group_pattern: '(['}\n", "2:38",
                 "not a POSIX extended regex", NULL);
    expect_error(h, "class_weight_power without balanced weights",
                 "train: {data_dir: {train: d}}\nclass_weight: {a: 2}\nclass_weight_power: 0.5\n", "3:1",
                 "'class_weight_power': 0.5 applies to class_weight: balanced only", NULL);
    expect_error(h, "class_weight_power out of range", "train: {data_dir: {train: d}}\nclass_weight_power: 1.5\n",
                 "2:21", "'class_weight_power'", "out of range");
    expect_error(h, "training-side monitor that no epoch logs",
                 "train: {data_dir: {train: d}}\ncallbacks:\n  model_checkpoint:\n    monitor: balanced_accuracy\n",
                 "4:5", "'balanced_accuracy' is not logged by any epoch",
                 "logged: loss, accuracy, val_loss, val_accuracy");
    expect_error(h, "training-side auc: a metric, but scores are validation only",
                 "train: {data_dir: {train: d}}\nmetrics: [kappa, auc, balanced_accuracy]\ncallbacks:\n"
                 "  model_checkpoint:\n    monitor: auc\n",
                 "5:5", "'auc' is not logged by any epoch",
                 "logged: loss, accuracy, kappa, balanced_accuracy, val_loss, val_accuracy, val_kappa, val_auc, "
                 "val_balanced_accuracy");
    expect_error(h, "top-k monitor under a name that is never logged",
                 "train: {data_dir: {train: d}}\nmetrics: [{top_k_accuracy: 3}]\ncallbacks:\n  early_stopping:\n"
                 "    enabled: true\n    monitor: val_top_k_accuracy\n",
                 "6:5", "'val_top_k_accuracy' is not logged", "val_top_3_accuracy");
    expect_error(h, "merge_validation with a val_ monitor",
                 "train: {data_dir: {train: d, merge_validation: true}}\nmetrics: [balanced_accuracy]\n", NULL,
                 "'callbacks.model_checkpoint.monitor': 'val_loss' needs validation data, and "
                 "train.data_dir.merge_validation is true",
                 "logged: loss, accuracy, balanced_accuracy)");
    expect_error(h, "merge_validation with nothing to merge",
                 "train: {data_dir: {train: d, validation_split: 0, merge_validation: true}}\n", "1:51",
                 "'train.data_dir.merge_validation': there is no validation set to merge", NULL);
    expect_error(h, "unknown architecture", "train: {data_dir: {train: d}}\nmodel: {architecture: resnet50}\n", "2:9",
                 "unknown 'resnet50'", "efficientnet");
    expect_error(h, "two documents", "train: {data_dir: {train: d}}\n---\nmodel: {}\n", "3:1", "more than one", NULL);
    char err[256];
    harness_expectf(h, tlcl_config_load(&cfg, "/nonexistent/x.yaml", err, sizeof err) == TLCL_ERR_IO && strstr(err, "cannot open"),
          "missing file -> %s", err);
}

/* Monitors that some epoch logs are accepted: training-side balanced
 * accuracy when it is a metric, val_top_K_accuracy, a final run on train +
 * valid monitoring training-side values. */
static void test_monitors_logged(harness *h)
{
    char err[1024] = "";
    const char *path = write_file("mon.yaml",
                                  "train: {data_dir: {train: d, merge_validation: true}}\n"
                                  "metrics: [accuracy, balanced_accuracy]\n"
                                  "callbacks:\n  model_checkpoint: {monitor: balanced_accuracy}\n"
                                  "  early_stopping: {enabled: true, monitor: loss}\n");
    tlcl_status s = load_finalize(path, err, sizeof err);
    harness_expectf(h, s == TLCL_OK && cfg.train.data_dir.merge_validation,
                    "merge_validation with training-side monitors (balanced_accuracy, loss) %s", err);
    path = write_file("mon_kappa.yaml", "train: {data_dir: {train: d}}\nmetrics: [accuracy, kappa, f1]\n"
                                        "callbacks:\n  model_checkpoint: {monitor: kappa}\n"
                                        "  early_stopping: {enabled: true, monitor: f1}\n");
    s = load_finalize(path, err, sizeof err);
    harness_expectf(h, s == TLCL_OK, "training-side kappa and f1 are logged (confusion counts), so accepted %s", err);
    path = write_file("mon2.yaml", "train: {data_dir: {train: d}}\nmetrics: [{top_k_accuracy: 3}, kappa]\n"
                                   "callbacks:\n  model_checkpoint: {monitor: val_top_3_accuracy}\n"
                                   "  early_stopping: {enabled: true, monitor: val_kappa}\n");
    s = load_finalize(path, err, sizeof err);
    harness_expectf(h, s == TLCL_OK, "val_top_3_accuracy and val_kappa are logged, so accepted %s", err);
    tlcl_config_defaults(&cfg, err, sizeof err);
    tlcl_config_set_arg(&cfg, "train.data_dir.train=d", err, sizeof err);
    s = tlcl_config_set_arg(&cfg, "train.data_dir.merge_validation=true", err, sizeof err);
    if (s == TLCL_OK)
        s = tlcl_config_finalize(&cfg, err, sizeof err);
    harness_expectf(h, s != TLCL_OK && strstr(err, "'val_loss' needs validation data") &&
                           strstr(err, "merge_validation is true"),
                    "--set train.data_dir.merge_validation=true: the default val_loss monitor is refused -> %s", err);
}

static void test_set(harness *h)
{
    char err[1024] = "";
    tlcl_config_defaults(&cfg, err, sizeof err);
    int ok = !tlcl_config_set(&cfg, "optimizer.learning_rate", "1e-4", err, sizeof err) &&
             !tlcl_config_set(&cfg, "model.head.units", "[1024, 512]", err, sizeof err) &&
             !tlcl_config_set(&cfg, "class_weight", "{normal: 1, virus: 2.5}", err, sizeof err) &&
             !tlcl_config_set_arg(&cfg, "phases.0.trainable=none", err, sizeof err) &&
             /* either order: the phase is checked at finalize */
             !tlcl_config_set_arg(&cfg, "phases[1].trainable=from_block", err, sizeof err) &&
             !tlcl_config_set_arg(&cfg, "phases.1.from_block=block6a", err, sizeof err) &&
             !tlcl_config_set_arg(&cfg, "callbacks.backup.save_freq=500", err, sizeof err) &&
             !tlcl_config_set_arg(&cfg, "train.data_dir.image_size=256", err, sizeof err) &&
             !tlcl_config_set_arg(&cfg, "class_weight_power=0.5", err, sizeof err) &&
             !tlcl_config_set_arg(&cfg, "train.data_dir.group_on=path", err, sizeof err);
    harness_expectf(h, ok && cfg.optimizer.learning_rate == 1e-4 && cfg.model.head.units_count == 2 &&
                 cfg.class_weight.kind == TLCL_CW_MAP && cfg.class_weight.weights[1] == 2.5 && cfg.phases_count == 2 &&
                 cfg.phases[1].trainable == TLCL_TRAIN_FROM_BLOCK && !strcmp(cfg.phases[1].from_block, "block6a") &&
                 cfg.phases[0].trainable == TLCL_TRAIN_NONE && cfg.callbacks.backup.save_freq == 500 &&
                 cfg.train.data_dir.image_size[1] == 256 && cfg.class_weight.power == 0.5 &&
                 cfg.train.data_dir.group_on == TLCL_CFG_GROUP_ON_PATH,
          "--set scalars, lists, maps, phases.N, a square image size, class_weight_power, group_on %s", err);
    tlcl_config_set_arg(&cfg, "class_weight_power=1", err, sizeof err); /* the map above takes no power */
    cfg2 = cfg;
    struct {
        const char *kv, *want;
    } bad[] = {
        {"optimizer.learning_rate=abc", "--set optimizer.learning_rate: 'optimizer.learning_rate': expected a number"},
        {"optimizer.learning_rate=-1", "out of range"},
        {"optimizer.lerning_rate=1", "did you mean 'learning_rate'?"},
        {"optimizer=adam", "'optimizer' is a section"},
        {"schedule.name=linear", "one of: constant, step, exponential, cosine, reduce_on_plateau"},
        {"phases.5.epochs=3", "there are 2 phases"},
        {"model.head.units=[1024, -1]", "'model.head.units': expected a list of integers"},
        {"metrics=[accuracy, accuracy]", "listed twice"},
        {"class_weight={a: 1", "YAML syntax error"},
        {"no_equals_sign", "expected KEY=VALUE"},
        {"model.architecture=efficientnet\xff", "'model.architecture': not valid UTF-8"}, /* names reach JSON */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tlcl_status s = tlcl_config_set_arg(&cfg, bad[i].kv, err, sizeof err);
        harness_expectf(h, s == TLCL_ERR_ARG && strstr(err, bad[i].want), "--set %s rejected: %s", bad[i].kv, err);
    }
    harness_expectf(h, memcmp(&cfg, &cfg2, sizeof cfg) == 0, "rejected --set values leave the configuration unchanged");
    tlcl_config_set_arg(&cfg, "phases.0.trainable=top_blocks", err, sizeof err);
    tlcl_status s = tlcl_config_finalize(&cfg, err, sizeof err);
    harness_expectf(h, s != TLCL_OK && strstr(err, "'phases[0]': trainable: top_blocks needs top_blocks: N"),
          "finalize checks phases set by --set: %s", err);
}

static void test_paths(harness *h)
{
    char dir[512], path[600], err[1024] = "", want[1200];
    snprintf(dir, sizeof dir, "%s/proj", tmpdir);
    mkdir(dir, 0777);
    snprintf(path, sizeof path, "%s/run.yaml", dir);
    FILE *f = fopen(path, "w");
    fputs("train:\n  config:\n    logs:\n      file_path: logs/{DATE}_train.log\n  data_dir: {train: data/train, test: "
          "/abs/test}\n  artefacts:\n    base_dir: out/{DATE}\n    labels_name: /elsewhere/labels.json\n"
          "callbacks: {csv_logger: {filename: ./log.csv}}\n",
          f);
    fclose(f);
    tlcl_status s = tlcl_config_load(&cfg, path, err, sizeof err);
    cfg.run_time = 86400 * 365; /* a fixed date */
    char date[32];
    struct tm tm;
    localtime_r(&cfg.run_time, &tm);
    strftime(date, sizeof date, "%Y-%m-%d_%H-%M-%S", &tm);
    if (!s)
        s = tlcl_config_finalize(&cfg, err, sizeof err);
    harness_expectf(h, s == TLCL_OK, "paths config loads %s", err);
    snprintf(want, sizeof want, "%s/data/train", dir);
    harness_expectf(h, !strcmp(cfg.train.data_dir.train, want), "relative to the config's directory: %s",
          cfg.train.data_dir.train);
    harness_expectf(h, !strcmp(cfg.train.data_dir.test, "/abs/test"), "absolute kept: %s", cfg.train.data_dir.test);
    snprintf(want, sizeof want, "%s/out/%s/backup", dir, date);
    harness_expectf(h, !strcmp(cfg.train.artefacts.backup_dir, want), "file names join their base_dir, {DATE} expanded: %s",
          cfg.train.artefacts.backup_dir);
    harness_expectf(h, !strcmp(cfg.train.artefacts.labels_name, "/elsewhere/labels.json"), "absolute file name kept");
    snprintf(want, sizeof want, "%s/out/%s/log.csv", dir, date);
    harness_expectf(h, !strcmp(cfg.callbacks.csv_logger.filename, want), "csv_logger under artefacts: %s",
          cfg.callbacks.csv_logger.filename);
    snprintf(want, sizeof want, "%s/logs/%s_train.log", dir, date);
    harness_expectf(h, !strcmp(cfg.train.config.logs.file_path, want), "{DATE}_ prefix of the log: %s",
          cfg.train.config.logs.file_path);
    harness_expectf(h, tlcl_config_finalize(&cfg, err, sizeof err) == TLCL_OK && !strcmp(cfg.train.config.logs.file_path, want),
          "finalize is idempotent");
    /* --set: relative to the working directory */
    char cwd[512], out[64];
    tlcl_config_set(&cfg, "train.data_dir.validation", "val", err, sizeof err);
    snprintf(want, sizeof want, "%s/val", getcwd(cwd, sizeof cwd));
    harness_expectf(h, !strcmp(cfg.train.data_dir.validation, want), "--set path relative to the working directory");
    harness_expectf(h, tlcl_config_expand_date("{DATE}_a_{DATE}", 0, want, sizeof want) == 0 && strlen(want) == 2 * 19 + 3 &&
                 tlcl_config_expand_date("{DATE}", 0, out, 10) == -1,
          "expand_date: every occurrence, overflow reported");
    /* make_dirs: every output directory, and an error naming the path */
    harness_expectf(h, tlcl_config_make_dirs(&cfg, err, sizeof err) == TLCL_ERR_ARG, "make_dirs wants finalize after a --set");
    tlcl_config_finalize(&cfg, err, sizeof err);
    err[0] = 0;
    s = tlcl_config_make_dirs(&cfg, err, sizeof err);
    harness_expectf(h, s == TLCL_OK, "make_dirs after finalize %s", err);
    struct stat st;
    snprintf(want, sizeof want, "%s/out/%s/backup", dir, date);
    int ok = !stat(want, &st) && S_ISDIR(st.st_mode);
    snprintf(want, sizeof want, "%s/records/class_validation_plots", dir);
    ok = ok && !stat(want, &st) && S_ISDIR(st.st_mode);
    snprintf(want, sizeof want, "%s/logs", dir);
    harness_expectf(h, ok && !stat(want, &st) && S_ISDIR(st.st_mode), "backup, class plots and log directories exist");
    snprintf(want, sizeof want, "%s/metrics", dir);
    rmdir(want);
    fclose(fopen(want, "w")); /* a file where a directory goes */
    s = tlcl_config_make_dirs(&cfg, err, sizeof err);
    harness_expectf(h, s == TLCL_ERR_IO && strstr(err, want), "make_dirs names the path: %s", err);
}

/* A configuration of n phases, each 1 epoch, every layer trainable. */
static const char *phases_yaml(int n)
{
    static char text[4096];
    int off = snprintf(text, sizeof text, "train: {data_dir: {train: d, validation_split: 0.2}}\nphases:\n");
    for (int i = 0; i < n && off < (int)sizeof text - 64; i++)
        off += snprintf(text + off, sizeof text - (size_t)off, "  - {name: p%d, epochs: 1}\n", i + 1);
    return text;
}

/* TLCL_CFG_MAX_PHASES (config) and TLCL_PHASES_MAX (trainer) are one limit:
 * a configuration with as many phases as the configuration allows gets
 * every one of them into the trainer's plan; one more is rejected with the
 * key and the limit. */
/* metric_groups: parsed in order, resolved against the data's classes,
 * usable as val_ monitors only; bad groups are errors at their line. */
static void test_metric_groups(harness *h)
{
    char err[1024] = "";
    const char *ok_yaml = "train: {data_dir: {train: d, validation_split: 0.2}}\n"
                          "metric_groups:\n  plankton: [copepod, diatom]\n  detritus: [detritus]\n"
                          "callbacks:\n  model_checkpoint: {monitor: val_group_plankton_precision}\n";
    tlcl_status s = load_finalize(write_file("groups.yaml", ok_yaml), err, sizeof err);
    const __typeof__(cfg.metric_groups) *mg = &cfg.metric_groups;
    harness_expectf(h, s == TLCL_OK && mg->count == 2 && mg->nmembers == 3 && !strcmp(mg->name[0], "plankton") &&
                           !strcmp(mg->member[1], "diatom") && mg->member_group[2] == 1,
                    "metric_groups parse, monitor val_group_plankton_precision accepted %s", err);
    const char *classes[] = {"bubble", "copepod", "detritus", "diatom"};
    metrics_groups g;
    s = tlcl_plan_groups(&cfg, classes, 4, &g, err, sizeof err);
    harness_expectf(h, s == TLCL_OK && g.count == 2 && g.member[0][1] && g.member[0][3] && !g.member[0][0] &&
                           !g.member[0][2] && g.member[1][2] && !g.member[1][1],
                    "metric_groups resolved against the class names %s", err);
    const char *missing[] = {"bubble", "copepod", "detritus"};
    s = tlcl_plan_groups(&cfg, missing, 3, &g, err, sizeof err);
    harness_expectf(h, s != TLCL_OK && strstr(err, "'metric_groups.plankton'") && strstr(err, "'diatom'") &&
                           strstr(err, "bubble, copepod, detritus"),
                    "an unknown class names the group, the class and the classes: %s", err);
    const char *path = write_file("group_mon.yaml", "train: {data_dir: {train: d, validation_split: 0.2}}\n"
                                                    "metric_groups: {a: [x]}\n"
                                                    "callbacks: {model_checkpoint: {monitor: group_a_precision}}\n");
    s = load_finalize(path, err, sizeof err);
    harness_expectf(h, s == TLCL_OK, "a training-side group monitor (from the confusion counts) is accepted %s", err);
    expect_error(h, "a group monitor of an unknown group",
                 "train: {data_dir: {train: d, validation_split: 0.2}}\nmetric_groups: {a: [x]}\n"
                 "callbacks: {model_checkpoint: {monitor: group_b_precision}}\n",
                 "3:32", "'group_b_precision' is not logged", "group_a_{precision,recall,f1}");
    expect_error(h, "group name with a space", "train: {data_dir: {train: d}}\nmetric_groups: {\"a b\": [x]}\n",
                 "2:17", "group name 'a b'", NULL);
    expect_error(h, "class listed twice", "train: {data_dir: {train: d}}\nmetric_groups: {a: [x, x]}\n", "2:24",
                 "class 'x' listed twice", NULL);
    expect_error(h, "not a list", "train: {data_dir: {train: d}}\nmetric_groups: {a: x}\n", "2:20",
                 "'metric_groups.a': expected a non-empty list", NULL);
}

/* Settings that used to be accepted and ignored are refused (issue 13,
 * defect 13): a NaN always stops, and the CSV separator is one character. */
static void test_ignored_settings(harness *h)
{
    expect_error(h, "head batch norm (not implemented)", "train: {data_dir: {train: d}}\nmodel: {head: {batch_norm: true}}\n",
                 "2:16", "'model.head.batch_norm': a batch normalisation in the head is not implemented", "false");
    expect_error(h, "terminate_on_nan off",
                 "train: {data_dir: {train: d}}\ncallbacks: {terminate_on_nan: {enabled: false}}\n", "2:32",
                 "'callbacks.terminate_on_nan.enabled': tlcl always stops", "remove the key");
    expect_error(h, "two-character separator",
                 "train: {data_dir: {train: d}}\ncallbacks: {csv_logger: {separator: ';;'}}\n", "2:26",
                 "'callbacks.csv_logger.separator': expected one character", "got ';;'");
    expect_error(h, "quote as separator",
                 "train: {data_dir: {train: d}}\ncallbacks: {csv_logger: {separator: '\"'}}\n", "2:26",
                 "'callbacks.csv_logger.separator': expected one character", NULL);
}

static void test_phase_limit(harness *h)
{
    char err[1024] = "", want[128];
    harness_expectf(h, TLCL_CFG_MAX_PHASES == TLCL_PHASES_MAX, "one phase limit: config %d, trainer %d", TLCL_CFG_MAX_PHASES,
          TLCL_PHASES_MAX);
    const char *path = write_file("phases_max.yaml", phases_yaml(TLCL_CFG_MAX_PHASES));
    tlcl_status s = load_finalize(path, err, sizeof err);
    harness_expectf(h, s == TLCL_OK && cfg.phases_count == TLCL_CFG_MAX_PHASES, "%d phases load %s", TLCL_CFG_MAX_PHASES, err);
    tlcl_model m;
    tlcl_model_options o = tlcl_model_options_default();
    o.arch = "efficientnet-b0";
    o.classes = 3;
    o.size = 32;
    if (tlcl_model_build(&m, &o, err, sizeof err) != TLCL_OK) {
        harness_fail(h, "building a host model: %s", err);
        return;
    }
    static tlcl_train_plan p;
    memset(&p, 0, sizeof p);
    p.model = &m;
    s = tlcl_plan_fill(&cfg, &p, 10, err, sizeof err);
    int all = s == TLCL_OK && p.nphases == TLCL_CFG_MAX_PHASES;
    for (int i = 0; all && i < p.nphases; i++)
        all = p.phases[i].epochs == 1 && !strcmp(p.phases[i].name, cfg.phases[i].name);
    harness_expectf(h, all, "the trainer's plan gets all %d phases (got %d) %s", TLCL_CFG_MAX_PHASES, p.nphases, err);
    /* a configuration the loader could not hold must not reach the trainer cut short */
    cfg.phases_count = TLCL_CFG_MAX_PHASES + 1;
    s = tlcl_plan_fill(&cfg, &p, 10, err, sizeof err);
    snprintf(want, sizeof want, "between 1 and %d", TLCL_CFG_MAX_PHASES);
    harness_expectf(h, s != TLCL_OK && strstr(err, "'phases'") && strstr(err, want), "the plan refuses %d phases: %s",
          TLCL_CFG_MAX_PHASES + 1, err);
    tlcl_model_free(&m);
    snprintf(want, sizeof want, "at most %d", TLCL_CFG_MAX_PHASES);
    expect_error(h, "one phase too many", phases_yaml(TLCL_CFG_MAX_PHASES + 1), "3:3", "'phases'", want);
    tlcl_config_defaults(&cfg, err, sizeof err);
    for (int i = 0; i < TLCL_CFG_MAX_PHASES; i++) {
        char kv[64];
        snprintf(kv, sizeof kv, "phases.%d.epochs=1", i);
        tlcl_config_set_arg(&cfg, kv, err, sizeof err);
    }
    char kv[64];
    snprintf(kv, sizeof kv, "phases.%d.epochs=1", TLCL_CFG_MAX_PHASES);
    s = tlcl_config_set_arg(&cfg, kv, err, sizeof err);
    harness_expectf(h, s == TLCL_ERR_ARG && cfg.phases_count == TLCL_CFG_MAX_PHASES && strstr(err, "'phases'") && strstr(err, want),
          "--set %s rejected: %s", kv, err);
}

static void test_round_trip(harness *h)
{
    char path[512], err[1024] = "";
    snprintf(path, sizeof path, "%s/config/examples/focal_class_weights.yaml", TLCL_SOURCE_DIR);
    load_finalize(path, err, sizeof err);
    tlcl_config_set(&cfg, "class_weight", "{\"a \\\"quoted\\\" class\": 0.1, b: 3}", err, sizeof err);
    tlcl_config_set(&cfg, "loss.alpha", "[0.25, 0.5]", err, sizeof err);
    tlcl_config_finalize(&cfg, err, sizeof err);
    char *mem = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&mem, &len);
    tlcl_config_dump(&cfg, f);
    fclose(f);
    const char *dumped = write_file("dumped.yaml", mem);
    cfg2 = cfg;
    tlcl_status s = load_finalize(dumped, err, sizeof err);
    /* bookkeeping differs (source, run time, where); the settings must not */
    memcpy(cfg.source, cfg2.source, sizeof cfg.source);
    cfg.run_time = cfg2.run_time;
    memcpy(cfg.where, cfg2.where, sizeof cfg.where);
    harness_expectf(h, s == TLCL_OK && memcmp(&cfg, &cfg2, sizeof cfg) == 0, "the dump reads back to the same configuration %s",
          err);
    free(mem);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static unsigned next_rand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (unsigned)(rng >> 32);
}

/* Hostile files (issue 13, defects 8, 9 and 15): deep nesting is refused
 * at once naming the file and line (100,000 '[' took 46 s in libyaml), an
 * oversized file and a FIFO are refused without reading or blocking, and
 * max_image_pixels is a checked key. */
static void test_limits(harness *h)
{
    size_t deep = 100000;
    char *text = malloc(deep + 16);
    memcpy(text, "train:\n  x: ", 12);
    memset(text + 12, '[', deep);
    text[12 + deep] = 0;
    const char *path = write_file("deep.yaml", text);
    char err[1024] = "", where[600];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    tlcl_status s = tlcl_config_load(&cfg, path, err, sizeof err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    snprintf(where, sizeof where, "%s:2:", path);
    harness_expectf(h, s == TLCL_ERR_FORMAT && strstr(err, where) && strstr(err, "nested more than 64 levels") &&
                           secs < 1.0,
                    "100,000 nested '[' refused in %.3f s, naming file and line: %s", secs, err);
    free(text);

    size_t big = TLCL_CONFIG_MAX_BYTES + 1;
    text = malloc(big + 1);
    memset(text, '#', big);
    text[big] = 0;
    path = write_file("big.yaml", text);
    free(text);
    s = tlcl_config_load(&cfg, path, err, sizeof err);
    harness_expectf(h, s == TLCL_ERR_IO && strstr(err, path) && strstr(err, "more than the 1048576 bytes"),
                    "a configuration of 1 MiB + 1 byte is refused -> %s", err);

    char fifo[600];
    snprintf(fifo, sizeof fifo, "%s/fifo.yaml", tmpdir);
    alarm(20); /* a regression would block in open() forever */
    s = mkfifo(fifo, 0600) == 0 ? tlcl_config_load(&cfg, fifo, err, sizeof err) : TLCL_OK;
    alarm(0);
    harness_expectf(h, s == TLCL_ERR_IO && strstr(err, fifo) && strstr(err, "FIFO"),
                    "a FIFO named .yaml is refused without blocking -> %s", err);

    expect_error(h, "max_image_pixels 0", "train: {data_dir: {train: d, max_image_pixels: 0}}\n", "1:48",
                 "max_image_pixels", NULL);
    err[0] = 0;
    path = write_file("pixels.yaml", "train: {data_dir: {train: d, max_image_pixels: 4000000}}\n");
    s = load_finalize(path, err, sizeof err);
    harness_expectf(h, s == TLCL_OK && cfg.train.data_dir.max_image_pixels == 4000000,
                    "max_image_pixels 4000000 is read %s", err);
}

/* Truncated and garbled versions of every shipped file: any status is fine,
 * a crash, a hang or an unterminated message is not. */
static void test_fuzz(harness *h)
{
    static const char *const files[] = {"config/default.yaml", "config/examples/two_phase.yaml",
                                        "config/examples/focal_class_weights.yaml"};
    static const char special[] = ":-[]{}#&*!|>'\"%@`,?~\t\n \\0123456789.e";
    int runs = 0, failed_loads = 0, bad_messages = 0;
    const char *env = getenv("TLCL_CONFIG_FUZZ"); /* more iterations for a longer hunt */
    int iters = env && atoi(env) > 0 ? 700 * atoi(env) : 700;
    for (size_t fi = 0; fi < sizeof files / sizeof files[0]; fi++) {
        char path[512];
        size_t len;
        snprintf(path, sizeof path, "%s/%s", TLCL_SOURCE_DIR, files[fi]);
        char *text = textout_read_all(path, &len);
        if (!text)
            continue;
        char *buf = malloc(len + 1);
        for (int iter = 0; iter < iters; iter++) {
            memcpy(buf, text, len + 1);
            if (iter % 7 < 3) { /* truncation */
                buf[(size_t)next_rand() % (len + 1)] = 0;
            } else { /* a few random edits */
                for (int e = 0, n = 1 + (int)(next_rand() % 6); e < n; e++) {
                    size_t at = next_rand() % len;
                    buf[at] = next_rand() % 4 ? special[next_rand() % (sizeof special - 1)] : (char)next_rand();
                }
            }
            const char *p = write_file("fuzz.yaml", buf);
            char err[512];
            memset(err, 'x', sizeof err);
            tlcl_status s = load_finalize(p, err, sizeof err);
            runs++;
            if (s) {
                failed_loads++;
                bad_messages += memchr(err, 0, sizeof err) == NULL || !err[0];
            }
        }
        free(buf);
        free(text);
    }
    /* --set with garbled values on keys of every type */
    static const char *const keys[] = {"optimizer.learning_rate", "model.head.units", "class_weight", "metrics",
                                       "phases.0.trainable", "loss.alpha", "train.data_dir.image_size",
                                       "callbacks.backup.save_freq", "model.weights", "train.artefacts.best_model"};
    char err[512], value[24];
    tlcl_config_defaults(&cfg, err, sizeof err);
    for (int iter = 0; iter < iters; iter++) {
        for (size_t i = 0; i < sizeof value - 1; i++)
            value[i] = special[next_rand() % (sizeof special - 1)];
        value[next_rand() % sizeof value] = 0;
        value[sizeof value - 1] = 0;
        memset(err, 'x', sizeof err);
        if (tlcl_config_set(&cfg, keys[next_rand() % (sizeof keys / sizeof keys[0])], value, err, sizeof err)) {
            failed_loads++;
            bad_messages += memchr(err, 0, sizeof err) == NULL || !err[0];
        }
        runs++;
    }
    harness_expectf(h, bad_messages == 0, "fuzz: %d runs, %d rejected, every rejection with a message", runs, failed_loads);
}

int main(void)
{
    harness h;
    harness_init(&h, 0);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tlcl_config_test_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_default_file_current(&h);
    test_aliases(&h);
    test_name_template(&h);
    test_files_load(&h);
    test_keras_defaults(&h);
    test_errors(&h);
    test_set(&h);
    test_monitors_logged(&h);
    test_phase_limit(&h);
    test_metric_groups(&h);
    test_ignored_settings(&h);
    test_paths(&h);
    test_round_trip(&h);
    test_limits(&h);
    test_fuzz(&h);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return harness_finish(&h);
}
