/* run_plan.c — turns the configuration into the objects a run needs: model
 * options and weights, loader options, and the trainer's plan (phases,
 * optimizer, schedule, loss, callbacks). Kept apart from cmd_train.c so the
 * mapping from YAML keys to engine settings reads in one place. */
#include "run_plan.h"

#include "run_status.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static tlcl_act head_act(int a)
{
    static const tlcl_act map[] = {TLCL_ACT_RELU, TLCL_ACT_RELU6, TLCL_ACT_SWISH, TLCL_ACT_SIGMOID};
    return a >= 0 && a < 4 ? map[a] : TLCL_ACT_RELU;
}

tlcl_model_options tlcl_plan_model_options(const tlcl_config *c, int classes)
{
    tlcl_model_options o = tlcl_model_options_default();
    o.arch = c->model.architecture;
    o.size = c->model.input_size > 0 ? c->model.input_size : c->train.data_dir.image_size[0];
    o.image_h = c->train.data_dir.image_size[0]; /* another size than the input: Keras's Resizing layer first */
    o.image_w = c->train.data_dir.image_size[1];
    o.classes = classes;
    o.include_top = 1;
    for (int i = 0; i < c->model.head.units_count && i < 4; i++)
        o.head_units[i] = c->model.head.units[i];
    o.head_act = head_act(c->model.head.activation);
    o.head_dropout = (float)c->model.head.dropout;
    o.drop_connect = (float)c->model.drop_connect_rate; /* the configuration's, Keras's 0.2 by default */
    o.activations = c->model.precision == TLCL_PRECISION_MIXED_BFLOAT16 ? TLCL_BF16 : TLCL_F32;
    return o;
}

void tlcl_plan_default_weights(const char *arch, char *dst, size_t len)
{
    const char *dir = getenv("TLCL_WEIGHTS_DIR"), *home = getenv("HOME");
    if (dir && dir[0])
        snprintf(dst, len, "%s/%s-imagenet.safetensors", dir, arch);
    else
        snprintf(dst, len, "%s/.cache/tlcl/weights/%s-imagenet.safetensors", home ? home : ".", arch);
}

tlcl_status tlcl_plan_load_weights(const tlcl_config *c, tlcl_model *m, char *err, size_t len)
{
    char path[2048];
    if (c->model.weights_kind == TLCL_WEIGHTS_NONE)
        return TLCL_OK;
    if (c->model.weights_kind == TLCL_WEIGHTS_FILE)
        snprintf(path, sizeof path, "%s", c->model.weights);
    else
        tlcl_plan_default_weights(m->arch.name, path, sizeof path);
    tlcl_checkpoint *ck = NULL;
    char why[1024];
    if (tlcl_checkpoint_open(&ck, path, why, sizeof why) != TLCL_OK) {
        snprintf(err, len,
                 "model.weights: cannot open the %s weights %s (%s). For efficientnet-lite0 run tools/fetch_lite0.sh; "
                 "for Keras ImageNet weights use `tlcl import --from keras FILE --arch %s -o OUT` and set model.weights "
                 "to OUT; or set model.weights: none to start from random weights",
                 m->arch.name, path, why, m->arch.name);
        return TLCL_ERR_IO;
    }
    tlcl_status s = tlcl_model_load_base(m, ck, why, sizeof why);
    if (s != TLCL_OK)
        snprintf(err, len, "model.weights: %s", why);
    tlcl_checkpoint_close(ck);
    return s;
}

void tlcl_plan_checkpoint_of(const char *best_model, char *dst, size_t len)
{
    static const char *const keras[2] = {".weights.h5", ".keras"};
    size_t n = strlen(best_model);
    for (int i = 0; i < 2; i++) {
        size_t k = strlen(keras[i]);
        if (n > k && strcmp(best_model + n - k, keras[i]) == 0) {
            snprintf(dst, len, "%.*s.safetensors", (int)(n - k), best_model);
            return;
        }
    }
    snprintf(dst, len, "%s", best_model);
}

tlcl_status tlcl_plan_load_best(const tlcl_config *c, const char *saved, tlcl_model *m, int *loaded, char *err,
                                size_t len)
{
    char path[1100];
    tlcl_plan_checkpoint_of(saved && saved[0] ? saved : c->train.artefacts.best_model, path, sizeof path);
    *loaded = 0;
    if (!c->callbacks.model_checkpoint.enabled || !path[0] || access(path, F_OK) != 0)
        return TLCL_OK;
    tlcl_checkpoint *ck = NULL;
    char why[1536];
    tlcl_status s = tlcl_checkpoint_open(&ck, path, why, sizeof why);
    if (s == TLCL_OK)
        s = tlcl_model_load(m, ck, why, sizeof why);
    tlcl_checkpoint_close(ck);
    if (s != TLCL_OK) {
        snprintf(err, len,
                 "test evaluation: cannot load the best model %s (train.artefacts.best_model): %s. Training itself "
                 "completed; evaluate a checkpoint with `tlcl test --model FILE --data DIR`, or train again with "
                 "--fresh",
                 path, why);
        return s;
    }
    *loaded = 1;
    return TLCL_OK;
}

tlcl_augment tlcl_plan_augment(const tlcl_config *c)
{
    tlcl_augment a = tlcl_augment_none();
    a.enabled = c->augmentation.enabled;
    a.flip_horizontal = c->augmentation.flip == TLCL_FLIP_H || c->augmentation.flip == TLCL_FLIP_HV;
    a.flip_vertical = c->augmentation.flip == TLCL_FLIP_V || c->augmentation.flip == TLCL_FLIP_HV;
    a.rotation = (float)c->augmentation.rotation;
    a.translation = (float)c->augmentation.translation;
    a.zoom = (float)c->augmentation.zoom;
    a.contrast = (float)c->augmentation.contrast;
    a.brightness = (float)c->augmentation.brightness;
    a.seed = (uint32_t)(c->augmentation.seed >= 0 ? c->augmentation.seed : c->train.config.seed);
    return a;
}

/* Position of the first trainable block (see tlcl_model_set_trainable). */
static int first_trainable(const tlcl_config *c, const tlcl_phase *ph, const tlcl_model *m, char *err, size_t len)
{
    switch (ph->trainable) {
    case TLCL_TRAIN_ALL:
        return 0;
    case TLCL_TRAIN_NONE:
        return m->nblocks + 1;
    case TLCL_TRAIN_TOP_BLOCKS:
        return ph->top_blocks >= m->nblocks ? 1 : m->nblocks - ph->top_blocks + 1;
    default:
        for (int b = 0; b < m->nblocks; b++)
            if (strcmp(m->blocks[b].name, ph->from_block) == 0)
                return b + 1;
        snprintf(err, len, "%s: phase '%s': from_block '%s' is not a block of %s (blocks are block1a .. %s)", c->source,
                 ph->name, ph->from_block, m->arch.name, m->blocks[m->nblocks - 1].name);
        return -1;
    }
}

static void plan_optimizer(const tlcl_config *c, tlcl_train_plan *p)
{
    static const tlcl_opt_type types[] = {TLCL_OPT_ADAM, TLCL_OPT_ADAMW, TLCL_OPT_SGD};
    p->optimizer = tlcl_optimizer_default(types[c->optimizer.name]);
    p->optimizer.beta1 = (float)c->optimizer.beta_1;
    p->optimizer.beta2 = (float)c->optimizer.beta_2;
    p->optimizer.epsilon = (float)c->optimizer.epsilon;
    p->optimizer.momentum = (float)c->optimizer.momentum;
    p->optimizer.nesterov = c->optimizer.nesterov;
    p->optimizer.weight_decay = (float)tlcl_config_weight_decay(c);
    p->optimizer.clip_global_norm = isnan(c->optimizer.global_clipnorm) ? 0.0f : (float)c->optimizer.global_clipnorm;
}

static void plan_schedule(const tlcl_config *c, tlcl_train_plan *p, long steps_per_epoch)
{
    static const tlcl_lr_kind kinds[] = {TLCL_LR_CONSTANT, TLCL_LR_STEP, TLCL_LR_EXPONENTIAL, TLCL_LR_COSINE,
                                         TLCL_LR_PLATEAU};
    tlcl_schedule *s = &p->schedule;
    memset(s, 0, sizeof *s);
    s->kind = kinds[c->schedule.name];
    s->step_epochs = c->schedule.step_size;
    s->factor = (float)c->schedule.factor;
    long phase_steps = steps_per_epoch * tlcl_config_phase_epochs(c, 0);
    s->decay_steps = c->schedule.decay_steps > 0 ? c->schedule.decay_steps : phase_steps;
    s->decay_rate = (float)c->schedule.decay_rate;
    s->staircase = c->schedule.staircase;
    s->alpha = (float)c->schedule.alpha;
    s->warmup_steps = c->schedule.warmup_steps;
    s->warmup_target = isnan(c->schedule.warmup_target) ? 0.0f : (float)c->schedule.warmup_target;
    snprintf(s->monitor, sizeof s->monitor, "%s", c->schedule.monitor);
    s->patience = c->schedule.patience;
    s->cooldown = c->schedule.cooldown;
    s->min_delta = (float)c->schedule.min_delta;
    s->min_lr = (float)c->schedule.min_lr;
}

static void plan_callbacks(const tlcl_config *c, tlcl_train_plan *p)
{
    tlcl_callbacks *cb = &p->cb;
    memset(cb, 0, sizeof *cb);
    if (c->callbacks.model_checkpoint.enabled) {
        snprintf(cb->checkpoint_path, sizeof cb->checkpoint_path, "%s", c->train.artefacts.best_model);
        snprintf(cb->checkpoint_monitor, sizeof cb->checkpoint_monitor, "%s", c->callbacks.model_checkpoint.monitor);
        cb->checkpoint_mode = (tlcl_monitor)c->callbacks.model_checkpoint.mode;
        cb->save_best_only = c->callbacks.model_checkpoint.save_best_only;
        cb->checkpoint_every_batches = c->callbacks.model_checkpoint.save_freq;
    }
    if (c->callbacks.backup.enabled) {
        snprintf(cb->backup_dir, sizeof cb->backup_dir, "%s", c->train.artefacts.backup_dir);
        cb->backup_every_batches = c->callbacks.backup.save_freq;
        cb->double_checkpoint = c->callbacks.backup.double_checkpoint;
        cb->keep_backup = !c->callbacks.backup.delete_checkpoint;
    }
#define ES c->callbacks.early_stopping
    cb->early_stopping = ES.enabled;
    snprintf(cb->es_monitor, sizeof cb->es_monitor, "%s", ES.monitor);
    cb->es_mode = (tlcl_monitor)ES.mode;
    cb->es_min_delta = (float)ES.min_delta;
    cb->es_patience = ES.patience;
    cb->es_start_from_epoch = ES.start_from_epoch;
    cb->es_restore_best = ES.restore_best_weights;
#undef ES
    cb->terminate_on_nan = 1;
}

_Static_assert(TLCL_CFG_MAX_PHASES == TLCL_PHASES_MAX, "the configuration and the trainer share one phase limit");

static int plan_phases(const tlcl_config *c, tlcl_train_plan *p, char *err, size_t len)
{
    if (c->phases_count < 1 || c->phases_count > TLCL_PHASES_MAX) { /* never cut a run short silently */
        snprintf(err, len, "%s: 'phases': %d phases, but a run has between 1 and %d (TLCL_PHASES_MAX)", c->source,
                 c->phases_count, TLCL_PHASES_MAX);
        return -1;
    }
    p->nphases = c->phases_count;
    for (int i = 0; i < p->nphases; i++) {
        tlcl_fit_phase *ph = &p->phases[i];
        snprintf(ph->name, sizeof ph->name, "%s", c->phases[i].name);
        ph->epochs = tlcl_config_phase_epochs(c, i);
        ph->learning_rate = (float)tlcl_config_phase_learning_rate(c, i);
        ph->bn_frozen = c->phases[i].bn_frozen;
        if ((ph->first_trainable_block = first_trainable(c, &c->phases[i], p->model, err, len)) < 0)
            return -1;
    }
    return 0;
}

tlcl_status tlcl_plan_fill(const tlcl_config *c, tlcl_train_plan *p, long steps_per_epoch, char *err, size_t len)
{
    p->loss = tlcl_loss_spec_default();
    p->loss.kind = c->loss.name == TLCL_LOSS_FOCAL ? TLCL_LOSS_KIND_FOCAL : TLCL_LOSS_KIND_XENT;
    p->loss.label_smoothing = (float)c->loss.label_smoothing;
    p->loss.focal_gamma = (float)c->loss.gamma;
    p->loss.focal_alpha = c->loss.alpha_count > 0 ? (float)c->loss.alpha[0] : 0.25f;
    p->seed = (uint32_t)c->train.config.seed;
    p->sync_batchnorm = c->train.config.sync_batchnorm;
    p->bucket_floats = (size_t)(c->train.config.bucket_mb * 1024.0 * 1024.0 / sizeof(float));
    plan_optimizer(c, p);
    plan_schedule(c, p, steps_per_epoch);
    plan_callbacks(c, p);
    /* augmented images change every epoch: their features cannot be cached */
    p->cache_features = c->train.data_dir.cache_features && !c->augmentation.enabled;
    tlcl_plan_state_path(c, p->state_path, sizeof p->state_path);
    return plan_phases(c, p, err, len) == 0 ? TLCL_OK : TLCL_ERR_ARG;
}

void tlcl_plan_metrics(const tlcl_config *c, const char *const *class_names, tlcl_eval_metrics *m)
{
    memset(m, 0, sizeof *m);
    m->class_names = class_names;
    for (int i = 0; i < c->metrics_count; i++)
        switch (c->metrics[i].kind) {
        case TLCL_METRIC_PRECISION: m->want_precision = 1; break;
        case TLCL_METRIC_RECALL: m->want_recall = 1; break;
        case TLCL_METRIC_F1: m->want_f1 = 1; break;
        case TLCL_METRIC_BALANCED_ACCURACY: m->want_balanced = 1; break;
        case TLCL_METRIC_KAPPA: m->want_kappa = 1; break;
        case TLCL_METRIC_AUC: m->want_auc = 1; break;
        case TLCL_METRIC_TOP_K: m->top_k = c->metrics[i].k; break;
        default: break;
        }
}

_Static_assert(METRICS_GROUPS_MAX >= TLCL_CFG_MAX_GROUPS && METRICS_GROUP_CLASSES_MAX >= TLCL_CFG_MAX_CLASSES,
               "metric_groups fit metrics_groups");

tlcl_status tlcl_plan_groups(const tlcl_config *c, const char *const *class_names, int classes, metrics_groups *g,
                             char *err, size_t len)
{
    const __typeof__(c->metric_groups) *mg = &c->metric_groups;
    memset(g, 0, sizeof *g);
    g->count = mg->count;
    for (int k = 0; k < mg->count; k++)
        /* the config keeps group names under 24 bytes */
        snprintf(g->name[k], sizeof g->name[k], "%.*s", (int)sizeof g->name[k] - 1, mg->name[k]);
    for (int i = 0; i < mg->nmembers; i++) {
        int found = -1;
        for (int k = 0; k < classes && found < 0; k++)
            found = strcmp(class_names[k], mg->member[i]) == 0 ? k : -1;
        if (found < 0) {
            char known[1024] = "";
            for (int k = 0, used = 0; k < classes && used < (int)sizeof known - 2; k++)
                used += snprintf(known + used, sizeof known - (size_t)used, "%s%s", k ? ", " : "", class_names[k]);
            snprintf(err, len, "%s: 'metric_groups.%s': no class '%s' in the data; the classes are: %s", c->source,
                     mg->name[mg->member_group[i]], mg->member[i], known);
            return TLCL_ERR_ARG;
        }
        g->member[mg->member_group[i]][found] = 1;
    }
    return TLCL_OK;
}

void tlcl_plan_state_path(const tlcl_config *c, char *dst, size_t len)
{
    snprintf(dst, len, "%s/%s", c->train.artefacts.base_dir[0] ? c->train.artefacts.base_dir : ".",
             TLCL_RUN_STATE_FILE);
}

/* 1 when the backup directory holds a backup file, latest or previous. */
static int backup_file_exists(const char *dir, char *which, size_t len)
{
    static const char *const names[] = {"latest.safetensors", "latest.safetensors.bkp"};
    for (int i = 0; i < 2; i++) {
        snprintf(which, len, "%s/%s", dir, names[i]);
        if (access(which, F_OK) == 0)
            return 1;
    }
    return 0;
}

/* 1 when path is a directory with at least one entry, or not a directory. */
static int has_content(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return 0;
    if (!S_ISDIR(st.st_mode))
        return 1;
    char probe[2100];
    return backup_file_exists(path, probe, sizeof probe) || rmdir(path) != 0; /* an empty one is simply removed */
}

static tlcl_status start_fresh(const tlcl_config *c, const char *state, FILE *out, char *err, size_t len)
{
    const char *dir = c->train.artefacts.backup_dir;
    char moved[4300];
    int any = 0;
    if (dir[0] && has_content(dir)) {
        int rc = tlcl_move_aside(dir, moved, sizeof moved, err, len);
        if (rc < 0)
            return TLCL_ERR_IO;
        if (rc > 0)
            fprintf(out, "--fresh: the old backup %s is moved aside to %s (kept, not deleted)\n", dir, moved), any = 1;
    }
    int rc = tlcl_move_aside(state, moved, sizeof moved, err, len);
    if (rc < 0)
        return TLCL_ERR_IO;
    if (rc > 0)
        fprintf(out, "--fresh: the old run state %s is moved aside to %s\n", state, moved), any = 1;
    if (dir[0] && mkdir(dir, 0755) != 0 && access(dir, F_OK) != 0) {
        snprintf(err, len, "cannot create the backup directory %s (train.artefacts.backup_dir)", dir);
        return TLCL_ERR_IO;
    }
    fprintf(out, "--fresh: %straining starts from the first epoch\n", any ? "" : "nothing to move aside; ");
    fflush(out);
    return TLCL_OK;
}

tlcl_status tlcl_plan_take_folder(const tlcl_config *c, int *lock_fd, FILE *out, char *err, size_t len)
{
    if (tlcl_run_lock(c->train.artefacts.base_dir, lock_fd, err, len) != 0)
        return TLCL_ERR_IO;
    char image_cache[2100];
    snprintf(image_cache, sizeof image_cache, "%s/image_cache", c->train.artefacts.base_dir);
    const char *dirs[] = {c->train.artefacts.base_dir, c->train.artefacts.backup_dir, c->train.metrics.base_dir,
                          c->train.records.base_dir, c->train.records.class_validation_plots_dir,
                          c->train.data_dir.split_dir, c->train.data_dir.cache_dir, image_cache};
    int removed = 0;
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        removed += dirs[i][0] ? tlcl_publish_clean_stale(dirs[i]) : 0;
    if (removed) {
        fprintf(out, "removed %d temporary file%s left by an interrupted run\n", removed, removed == 1 ? "" : "s");
        fflush(out);
    }
    return TLCL_OK;
}

tlcl_status tlcl_plan_start(const tlcl_config *c, tlcl_start_mode mode, int *finished, FILE *out, char *err,
                            size_t len)
{
    char state[2100], which[2100];
    *finished = 0;
    tlcl_plan_state_path(c, state, sizeof state);
    if (mode == TLCL_START_FRESH)
        return start_fresh(c, state, out, err, len);
    tlcl_run_status st;
    int rc = tlcl_run_status_read(state, &st, err, len);
    if (rc < 0)
        return TLCL_ERR_FORMAT;
    if (rc > 0) {
        char how[160];
        if (strcmp(st.reason, "early_stopping") == 0)
            snprintf(how, sizeof how, "early stopping ended its last phase after %d epoch%s", st.last_phase_epochs,
                     st.last_phase_epochs == 1 ? "" : "s");
        else
            snprintf(how, sizeof how, "it trained its last epoch");
        fprintf(out,
                "this run already finished on %s: %s (%d epoch%s in all); %s records it. Nothing is left to "
                "train%s. To train it again from the first epoch, run with --fresh (the old backup and run state "
                "are kept, renamed).\n",
                st.finished_at, how, st.epochs_trained, st.epochs_trained == 1 ? "" : "s", state,
                mode == TLCL_START_RESUME ? " or to resume" : "");
        fflush(out);
        *finished = 1;
        tlcl_callbacks cb = {.keep_backup = !c->callbacks.backup.delete_checkpoint}; /* a kill between the */
        if (c->callbacks.backup.enabled) /* run state and the backup's deletion left it: finish the finish */
            snprintf(cb.backup_dir, sizeof cb.backup_dir, "%s", c->train.artefacts.backup_dir);
        tlcl_train_delete_backup(&cb);
        return TLCL_OK;
    }
    if (mode != TLCL_START_RESUME)
        return TLCL_OK;
    if (!c->callbacks.backup.enabled) {
        snprintf(err, len,
                 "--resume: callbacks.backup.enabled is false in %s, so there is no backup to resume from: enable "
                 "it, or run without --resume",
                 c->source[0] ? c->source : "the configuration");
        return TLCL_ERR_ARG;
    }
    if (!backup_file_exists(c->train.artefacts.backup_dir, which, sizeof which)) {
        snprintf(err, len,
                 "--resume: no backup to resume from: %s holds neither latest.safetensors nor "
                 "latest.safetensors.bkp (train.artefacts.backup_dir). Run without --resume to start the run (it "
                 "resumes by itself whenever a backup is there)",
                 c->train.artefacts.backup_dir);
        return TLCL_ERR_ARG;
    }
    return TLCL_OK;
}
