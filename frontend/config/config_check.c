/* config_check.c — tlcl_config_finalize: the rules that involve more than
 * one key (what a monitor can watch, validation data for val_ monitors, the
 * group pattern, the input size), then the paths' final form, and the
 * accessors for keys that inherit another's value. Run after every --set,
 * so it cannot rely on the parser. */
#include "config_schema.h"
#include "dataset_split.h" /* tlcl_regex_cost_ok */
#include "model.h"

#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>

/* "FILE:LINE:COL: " when the key came from the file, so the message points
 * at it; the message itself always names the key. */
static tlcl_status key_error(const tlcl_config *c, char *err, size_t len, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static tlcl_status key_error(const tlcl_config *c, char *err, size_t len, const char *key, const char *fmt, ...)
{
    const cfg_key *k = cfg_find(cfg_keys, cfg_nkeys, key);
    int i = k ? cfg_key_index(k) : -1, n = 0;
    if (i >= 0 && c->where[i].line && c->source[0])
        n = snprintf(err, len, "%s:%d:%d: ", c->source, c->where[i].line, c->where[i].column);
    if (n < 0 || (size_t)n >= len)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, len - (size_t)n, fmt, ap);
    va_end(ap);
    return TLCL_ERR_FORMAT;
}

static int has_validation(const tlcl_config *c)
{
    if (c->train.data_dir.merge_validation)
        return 0; /* the validation files train too: no epoch reports val_ values */
    return c->train.data_dir.validation[0] || c->train.data_dir.validation_split > 0;
}

/* The name a metric is logged under (top_k_accuracy: top_K_accuracy); NULL
 * when it is not logged (top-1 "top-k" accuracy is accuracy). */
static const char *metric_log_name(const tlcl_metric *m, char *buf, size_t len)
{
    if (m->kind == TLCL_METRIC_TOP_K) {
        if (m->k <= 1)
            return NULL;
        snprintf(buf, len, "top_%d_accuracy", m->k);
        return buf;
    }
    return cfg_metric_names[m->kind];
}

/* A metric the training steps' confusion counts determine (AUC and top-k
 * need scores the training steps do not keep). */
static int from_confusion(tlcl_metric_kind k)
{
    return k == TLCL_METRIC_PRECISION || k == TLCL_METRIC_RECALL || k == TLCL_METRIC_F1 ||
           k == TLCL_METRIC_BALANCED_ACCURACY || k == TLCL_METRIC_KAPPA;
}

/* Appends ", <prefix>group_<name>_..." for each metric group. */
static size_t group_keys(const tlcl_config *c, int compact, const char *prefix, char *dst, size_t len, size_t used)
{
    static const char *const what[] = {"precision", "recall", "f1"};
    for (int g = 0; g < c->metric_groups.count && used < len; g++)
        for (int k = 0; k < (compact ? 1 : 3) && used < len; k++)
            used += (size_t)snprintf(dst + used, len - used, ", %sgroup_%s_%s", prefix, c->metric_groups.name[g],
                                     compact ? "{precision,recall,f1}" : what[k]);
    return used;
}

/* Every key an epoch logs (what trainer.c's epoch_end and validate set),
 * comma-separated into dst: training side loss, accuracy, each metric of
 * `metrics` the device's confusion counts determine, and the metric groups;
 * with validation data val_loss, val_accuracy, val_<metric> for each metric
 * and val_group_<name>_{precision,recall,f1} for each metric group (compact:
 * written that way, for messages; otherwise one key each). */
static void logged_keys(const tlcl_config *c, int compact, char *dst, size_t len)
{
    size_t used = (size_t)snprintf(dst, len, "loss, accuracy");
    for (int i = 0; i < c->metrics_count && used < len; i++)
        if (from_confusion(c->metrics[i].kind))
            used += (size_t)snprintf(dst + used, len - used, ", %s", cfg_metric_names[c->metrics[i].kind]);
    used = group_keys(c, compact, "", dst, len, used);
    if (!has_validation(c) || used >= len)
        return;
    used += (size_t)snprintf(dst + used, len - used, ", val_loss, val_accuracy");
    for (int i = 0; i < c->metrics_count && used < len; i++) {
        char buf[64];
        const char *name = metric_log_name(&c->metrics[i], buf, sizeof buf);
        if (name && strcmp(name, "accuracy") != 0)
            used += (size_t)snprintf(dst + used, len - used, ", val_%s", name);
    }
    group_keys(c, compact, "val_", dst, len, used);
}

/* A monitor must name a key some epoch logs: anything else would never be
 * read, and every epoch would count as an improvement (or none would). */
static tlcl_status check_monitor(const tlcl_config *c, const char *key, const char *monitor, char *err, size_t len)
{
    char logged[4096], item[TLCL_CFG_NAME_MAX + 4];
    logged_keys(c, 0, logged, sizeof logged);
    snprintf(item, sizeof item, ", %s,", monitor);
    char padded[sizeof logged + 4];
    snprintf(padded, sizeof padded, ", %s,", logged);
    if (strstr(padded, item))
        return TLCL_OK;
    logged_keys(c, 1, logged, sizeof logged); /* for the message */
    int val = strncmp(monitor, "val_", 4) == 0;
    if (val && !has_validation(c))
        return key_error(c, err, len, key,
                         "'%s': '%s' needs validation data, and %s; monitor a training-side value instead "
                         "(logged: %s)",
                         key, monitor,
                         c->train.data_dir.merge_validation
                             ? "train.data_dir.merge_validation is true (the validation files train too)"
                             : "there is none: set train.data_dir.validation or train.data_dir.validation_split > 0",
                         logged);
    return key_error(c, err, len, key,
                     "'%s': '%s' is not logged by any epoch, so it would never be read; logged: %s "
                     "(the training side logs loss, accuracy and, of `metrics`, those the confusion counts give: precision, "
                     "recall, f1, balanced_accuracy, kappa; auc and top-k accuracy are validation only)",
                     key, monitor, logged);
}

/* train.artefacts.best_model may name Keras's {epoch:02d}, {val_loss:.3f}
 * fields: only the epoch and what an epoch logs. */
static tlcl_status check_best_model_name(const tlcl_config *c, char *err, size_t len)
{
    char logged[4096], why[256];
    const char *keys[256];
    int n = 0, fields = 0;
    logged_keys(c, 0, logged, sizeof logged);
    if (c->callbacks.model_checkpoint.save_freq > 0) /* mid-epoch saves: {batch}, the training side's values */
        strncat(logged, ", batch", sizeof logged - strlen(logged) - 1);
    char *save = NULL;
    for (char *k = strtok_r(logged, ", ", &save); k && n < 256; k = strtok_r(NULL, ", ", &save))
        keys[n++] = k;
    if (!c->callbacks.model_checkpoint.enabled ||
        tlcl_name_template_check(c->train.artefacts.best_model, keys, n, &fields, why, sizeof why) == 0)
        return TLCL_OK;
    return key_error(c, err, len, "train.artefacts.best_model",
                     "'train.artefacts.best_model': %s (Keras's fields: {epoch:02d}, {val_loss:.4f}, any logged "
                     "value)", why);
}

static tlcl_status check_monitors(const tlcl_config *c, char *err, size_t len)
{
    tlcl_status s = TLCL_OK;
    const __typeof__(c->callbacks.model_checkpoint) *mc = &c->callbacks.model_checkpoint;
    if (mc->enabled && mc->save_freq > 0 && mc->save_best_only && strncmp(mc->monitor, "val_", 4) == 0)
        return key_error(c, err, len, "callbacks.model_checkpoint.save_freq",
                         "'callbacks.model_checkpoint.save_freq': %d batches saves mid-epoch, where only the "
                         "training side's values are known, and the monitor is '%s': monitor a training-side "
                         "value (loss, accuracy, ...) or save each epoch",
                         mc->save_freq, mc->monitor);
    if (c->callbacks.model_checkpoint.enabled)
        s = check_monitor(c, "callbacks.model_checkpoint.monitor", c->callbacks.model_checkpoint.monitor, err, len);
    if (!s && c->callbacks.early_stopping.enabled)
        s = check_monitor(c, "callbacks.early_stopping.monitor", c->callbacks.early_stopping.monitor, err, len);
    if (!s && c->schedule.name == TLCL_SCHED_PLATEAU)
        s = check_monitor(c, "schedule.monitor", c->schedule.monitor, err, len);
    return s;
}

static tlcl_status check_data(const tlcl_config *c, char *err, size_t len)
{
    const __typeof__(c->train.data_dir) *d = &c->train.data_dir;
    if (d->split == TLCL_CFG_SPLIT_GROUP && !d->validation[0]) {
        if (!d->group_pattern[0])
            return key_error(c, err, len, "train.data_dir.split",
                             "'train.data_dir.split': group needs train.data_dir.group_pattern (a regex on the file "
                             "name, or on what train.data_dir.group_on names, whose first group is the sample)");
        if (!tlcl_regex_cost_ok(d->group_pattern))
            return key_error(c, err, len, "train.data_dir.group_pattern",
                             "'train.data_dir.group_pattern': repeats too much: stacked or nested repetitions "
                             "('++', '(a{50}){50}') take the regex compiler exponential time; write each "
                             "repetition once");
        regex_t re;
        int rc = regcomp(&re, d->group_pattern, REG_EXTENDED);
        if (rc) {
            char why[128];
            regerror(rc, &re, why, sizeof why);
            return key_error(c, err, len, "train.data_dir.group_pattern",
                             "'train.data_dir.group_pattern': not a POSIX extended regex: %s", why);
        }
        regfree(&re);
    }
    if (d->merge_validation && !d->validation[0] && d->validation_split <= 0)
        return key_error(c, err, len, "train.data_dir.merge_validation",
                         "'train.data_dir.merge_validation': there is no validation set to merge; keep the "
                         "validation_split (or validation directory) of the run whose split is reused");
    if (d->test[0] && d->test_split > 0)
        return key_error(c, err, len, "train.data_dir.test_split",
                         "'train.data_dir.test_split': train.data_dir.test is set too; give one or the other");
    double held = (d->validation[0] ? 0 : d->validation_split) + (d->test[0] ? 0 : d->test_split);
    if (held >= 1)
        return key_error(c, err, len, "train.data_dir.validation_split",
                         "'train.data_dir.validation_split' + test_split = %g leaves no training images", held);
    int size = c->model.input_size;
    if (size == 0 && d->image_size[0] != d->image_size[1])
        return key_error(c, err, len, "train.data_dir.image_size",
                         "'train.data_dir.image_size': the network takes square inputs; give [S, S] or set "
                         "model.input_size");
    return TLCL_OK; /* an input_size other than image_size: the network resizes first, as Keras's Resizing */
}

static tlcl_status check_model(const tlcl_config *c, char *err, size_t len)
{
    if (!tlcl_arch_find(c->model.architecture)) {
        char names[1024];
        tlcl_arch_list(names, sizeof names);
        return key_error(c, err, len, "model.architecture", "'model.architecture': unknown '%s'; allowed: %s",
                         c->model.architecture, names);
    }
    if (c->loss.name == TLCL_LOSS_FOCAL && c->loss.alpha_count > 1 && c->class_weight.kind == TLCL_CW_MAP &&
        c->loss.alpha_count != c->class_weight.count)
        return key_error(c, err, len, "loss.alpha", "'loss.alpha': %d values but class_weight names %d classes",
                         c->loss.alpha_count, c->class_weight.count);
    if (c->class_weight.power != 1.0 && c->class_weight.kind != TLCL_CW_BALANCED)
        return key_error(c, err, len, "class_weight_power",
                         "'class_weight_power': %g applies to class_weight: balanced only; set class_weight: "
                         "balanced or remove class_weight_power",
                         c->class_weight.power);
    const char *sep = c->callbacks.csv_logger.separator;
    if (strlen(sep) != 1 || strchr("\"\r\n", sep[0]))
        return key_error(c, err, len, "callbacks.csv_logger.separator",
                         "'callbacks.csv_logger.separator': expected one character other than a quote or a line "
                         "break (Python's csv writes one), got '%s'",
                         sep);
    if (!c->callbacks.terminate_on_nan.enabled)
        return key_error(c, err, len, "callbacks.terminate_on_nan.enabled",
                         "'callbacks.terminate_on_nan.enabled': tlcl always stops on a NaN or Inf loss (the device "
                         "skips that update and the later ones, so training on would change nothing): remove the "
                         "key or set it to true");
    if (c->model.head.batch_norm)
        return key_error(c, err, len, "model.head.batch_norm",
                         "'model.head.batch_norm': a batch normalisation in the head is not implemented yet (the "
                         "head is pooling, dropout and dense layers): remove the key or set it to false");
    return TLCL_OK;
}

/* MLflow tracking: the server's URL and names MLflow accepts. */
static tlcl_status check_tracking(const tlcl_config *c, char *err, size_t len)
{
    if (!c->tracking.enabled)
        return TLCL_OK;
    const char *u = c->tracking.uri;
    if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
        return key_error(c, err, len, "tracking.uri",
                         "'tracking.uri': '%s' is not an http:// or https:// URL: give the address of the MLflow "
                         "server (`mlflow server --host H --port P` serves http://H:P)",
                         u);
    if (!c->tracking.experiment[0])
        return key_error(c, err, len, "tracking.experiment",
                         "'tracking.experiment': expected the name of an MLflow experiment (created when missing)");
    if (!c->tracking.run_name[0])
        return key_error(c, err, len, "tracking.run_name",
                         "'tracking.run_name': expected a run name, e.g. \"{ARCH}_{DATE}\"");
    return TLCL_OK;
}

static tlcl_status check_phases(const tlcl_config *c, char *err, size_t len)
{
    for (int i = 0; i < c->phases_count; i++) {
        const tlcl_phase *p = &c->phases[i];
        if (p->trainable == TLCL_TRAIN_TOP_BLOCKS && p->top_blocks < 1)
            return key_error(c, err, len, "phases", "'phases[%d]': trainable: top_blocks needs top_blocks: N (N >= 1)",
                             i);
        if (p->trainable == TLCL_TRAIN_FROM_BLOCK && !p->from_block[0])
            return key_error(c, err, len, "phases",
                             "'phases[%d]': trainable: from_block needs from_block: NAME (e.g. block6a)", i);
    }
    return TLCL_OK;
}

/* {DATE} everywhere, then file names joined to their base directory. */
static tlcl_status finish_paths(tlcl_config *c, char *err, size_t len)
{
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < cfg_nkeys; i++) {
            const cfg_key *k = &cfg_keys[i];
            char *p = CFG_FIELD(c, k), tmp[TLCL_CFG_PATH_MAX];
            if ((k->type != CFG_PATH && k->type != CFG_WEIGHTS) || !p[0])
                continue;
            int rc = 0;
            if (pass == 0)
                rc = tlcl_config_expand_date(p, c->run_time, tmp, sizeof tmp);
            else if (k->flags & CFG_IN_BASE)
                rc = cfg_path_join(tmp, sizeof tmp, CFG_FIELD(c, cfg_find(cfg_keys, cfg_nkeys, k->base)), p);
            else
                continue;
            if (rc)
                return key_error(c, err, len, k->key, "'%s': path longer than %d bytes", k->key,
                                 TLCL_CFG_PATH_MAX - 1);
            strcpy(p, tmp);
        }
    return TLCL_OK;
}

tlcl_status tlcl_config_finalize(tlcl_config *c, char *err, size_t err_len)
{
    tlcl_status s = check_data(c, err, err_len);
    if (!s)
        s = check_model(c, err, err_len);
    if (!s)
        s = check_monitors(c, err, err_len);
    if (!s)
        s = check_phases(c, err, err_len);
    if (!s)
        s = check_tracking(c, err, err_len);
    if (!s)
        s = finish_paths(c, err, err_len);
    if (!s)
        s = check_best_model_name(c, err, err_len);
    if (s)
        return s;
    if (c->phases_count == 0) { /* no phases: one fit() of the whole network, as plain Keras */
        cfg_phase_default(&c->phases[0], 0);
        strcpy(c->phases[0].name, "train");
        c->phases_count = 1;
    }
    c->finalized = 1;
    return TLCL_OK;
}

double tlcl_config_weight_decay(const tlcl_config *c)
{
    if (!isnan(c->optimizer.weight_decay))
        return c->optimizer.weight_decay;
    return c->optimizer.name == TLCL_OPTIMIZER_ADAMW ? 0.004 : 0.0;
}

int tlcl_config_phase_epochs(const tlcl_config *c, int phase)
{
    int e = c->phases[phase].epochs;
    return e < 0 ? c->train.config.epochs : e;
}

double tlcl_config_phase_learning_rate(const tlcl_config *c, int phase)
{
    double lr = c->phases[phase].learning_rate;
    return isnan(lr) ? c->optimizer.learning_rate : lr;
}
