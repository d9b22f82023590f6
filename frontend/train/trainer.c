/* trainer.c — see trainer.h. Keras semantics where tlcl mirrors Keras
 * (epoch loss = sum of w_i l_i / N over the epoch, class-weighted training
 * accuracy, unweighted validation metrics, monitor modes, early stopping and
 * plateau rules), with one deliberate difference: a backup taken mid-epoch
 * resumes at the next batch, not at batch 0, so an interrupted run ends with
 * the same weights as an uninterrupted one. */
#include "trainer.h"

#include "run_status.h"
#include "train_state.h"

#include <cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- logs and history ------------------------------------------------------ */

void tlcl_logs_set(tlcl_logs *l, const char *key, double value)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->key[i], key) == 0) {
            l->value[i] = value;
            return;
        }
    if (l->n < TLCL_LOGS_MAX) {
        snprintf(l->key[l->n], sizeof l->key[0], "%s", key);
        l->value[l->n++] = value;
    }
}

int tlcl_logs_get(const tlcl_logs *l, const char *key, double *value)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->key[i], key) == 0) {
            *value = l->value[i];
            return 1;
        }
    return 0;
}

static int history_add(tlcl_history *h, const tlcl_logs *l, int epoch)
{
    if (h->n == h->cap) {
        int cap = h->cap ? 2 * h->cap : 16;
        tlcl_logs *e = realloc(h->epochs, (size_t)cap * sizeof *e);
        int *i = e ? realloc(h->epoch_index, (size_t)cap * sizeof *i) : NULL;
        if (e)
            h->epochs = e;
        if (!e || !i)
            return -1;
        h->epoch_index = i;
        h->cap = cap;
    }
    h->epochs[h->n] = *l;
    h->epoch_index[h->n++] = epoch;
    return 0;
}

void tlcl_history_free(tlcl_history *h)
{
    free(h->epochs);
    free(h->epoch_index);
    memset(h, 0, sizeof *h);
}

/* ---- run state (everything a backup must restore) ------------------------- */

typedef struct monitor {
    int mode;          /* resolved: -1 min, +1 max */
    double best;
    int has_best;
} monitor;

typedef struct run_state {
    int phase, epoch, batch;      /* position of the next batch to run */
    long step;                    /* optimizer steps in this run (seeds dropout) */
    double loss_sum, seen, acc_hit, acc_w; /* this epoch's totals carried over from a resumed backup */
    float plateau_lr;             /* 0: the schedule's */
    int rlr_wait, rlr_cooldown, es_wait, es_stop;
    monitor ckpt, es, rlr;
} run_state;

typedef struct trainer {
    tlcl_train_plan *p;
    tlcl_history *h;
    run_state st;
    tlcl_run *run;                        /* the step, the inference pass and their counters */
    tlcl_tensor features_train, features_val; /* cached base features [n, C] on the device */
    float *best_weights;                  /* early stopping's snapshot */
    char *err;
    size_t err_len;
    double t_epoch;
    double train_rate;                    /* images per second of this epoch's training loop */
} trainer;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int monitor_mode(const char *key, tlcl_monitor m)
{
    if (m == TLCL_MON_MIN)
        return -1;
    if (m == TLCL_MON_MAX)
        return 1;
    return strstr(key, "loss") ? -1 : 1; /* Keras: losses go down, metrics up */
}

/* Keras's improvement test: op(current - min_delta, best). */
static int improved(monitor *mo, double current, double min_delta)
{
    double d = fabs(min_delta);
    return !mo->has_best || (mo->mode < 0 ? current < mo->best - d : current > mo->best + d);
}

static tlcl_status fail(trainer *t, tlcl_status s, const char *fmt, const char *detail)
{
    snprintf(t->err, t->err_len, fmt, detail);
    return s;
}

/* ---- learning rate ------------------------------------------------------------ */

static float schedule_lr(const tlcl_train_plan *p, float base, long step, int epoch)
{
    const tlcl_schedule *s = &p->schedule;
    switch (s->kind) {
    case TLCL_LR_STEP:
        return base * powf(s->factor, (float)(s->step_epochs > 0 ? epoch / s->step_epochs : 0));
    case TLCL_LR_EXPONENTIAL: {
        double e = s->decay_steps > 0 ? (double)step / s->decay_steps : 0;
        return (float)(base * pow(s->decay_rate, s->staircase ? floor(e) : e));
    }
    case TLCL_LR_COSINE: {
        double start = base, peak = s->warmup_target > 0 ? s->warmup_target : base;
        if (s->warmup_steps > 0 && step < s->warmup_steps)
            return (float)(start + (peak - start) * step / s->warmup_steps);
        long k = step - (s->warmup_target > 0 ? s->warmup_steps : 0);
        k = k < 0 ? 0 : k > s->decay_steps ? s->decay_steps : k;
        double d = s->decay_steps > 0 ? 0.5 * (1 + cos(3.14159265358979323846 * k / s->decay_steps)) : 1;
        return (float)(peak * ((1 - s->alpha) * d + s->alpha));
    }
    default:
        return base;
    }
}

static float current_lr(const trainer *t, long phase_step)
{
    const tlcl_fit_phase *ph = &t->p->phases[t->st.phase];
    if (t->st.plateau_lr > 0)
        return t->st.plateau_lr;
    return schedule_lr(t->p, ph->learning_rate, phase_step, t->st.epoch);
}

/* ---- one batch: the run layer's step ----------------------------------------------- */

static tlcl_run_input run_input(const tlcl_batch *b, int with_weights)
{
    return (tlcl_run_input){.images = b->images, .items = b->items, .labels = b->labels,
                            .weights = with_weights ? b->weights : NULL, .count = b->count};
}

/* Enqueues one training step; nothing is read back (the counters and the
 * non-finite guard stay on the device until the next sync). */
static tlcl_status train_batch(trainer *t, const tlcl_batch *b, const tlcl_tensor *features, float lr)
{
    tlcl_train_plan *p = t->p;
    tlcl_run_input in = run_input(b, 1);
    tlcl_run_batch *rb;
    tlcl_step_args a = {.lr = lr, .seed = p->seed * 2654435761u + (uint32_t)t->st.step + 1u, .step = t->st.step};
    tlcl_status s = tlcl_run_load(t->run, &in, features, &rb);
    if (s == TLCL_OK)
        s = tlcl_run_step(t->run, rb, &p->optimizer, &a);
    t->st.step++;
    if (s != TLCL_OK)
        snprintf(t->err, t->err_len, "%s", tlcl_run_error(t->run));
    return s;
}

/* Reads the counters (the one wait of the training loop): this epoch's
 * totals are the ones carried over from a resumed backup plus the
 * device's. A non-finite loss stops the run here, naming its step; the
 * device skipped that update and every later one. */
static tlcl_status train_totals(trainer *t, tlcl_run_stats *st)
{
    tlcl_status s = tlcl_run_sync(t->run, st);
    if (s != TLCL_OK)
        return fail(t, s, "%s", tlcl_run_error(t->run));
    st->loss_sum += t->st.loss_sum, st->samples += t->st.seen;
    st->hits += t->st.acc_hit, st->weight += t->st.acc_w;
    if (st->nonfinite_step >= 0) {
        snprintf(t->err, t->err_len,
                 "the loss is NaN or Inf at step %ld: that update and the later ones were skipped; "
                 "lower the learning rate or check the data", st->nonfinite_step);
        return TLCL_ERR_NONFINITE;
    }
    return TLCL_OK;
}

/* ---- inference over a loader --------------------------------------------------- */

tlcl_status tlcl_predict_loader(tlcl_run *r, tlcl_loader *l, const tlcl_tensor *features, float **probs,
                                int **labels, int *n, tlcl_run_stats *stats, char *err, size_t err_len)
{
    int rows = tlcl_loader_size(l), classes = tlcl_run_model(r)->classes, used = 0;
    tlcl_run_stats st;
    tlcl_status s = tlcl_run_reset(r);
    float *P = malloc((size_t)(rows ? rows : 1) * classes * sizeof *P);
    int *L = malloc((size_t)(rows ? rows : 1) * sizeof *L);
    if (!P || !L)
        s = TLCL_ERR_OOM;
    tlcl_loader_start(l, 0, 0);
    for (const tlcl_batch *b; s == TLCL_OK && (b = tlcl_loader_next(l));) {
        tlcl_run_input in = run_input(b, 0);
        tlcl_run_batch *rb;
        if ((s = tlcl_run_load(r, &in, features, &rb)) == TLCL_OK)
            s = tlcl_run_predict(r, rb, P + (size_t)used * classes);
        memcpy(L + used, b->labels, (size_t)b->count * sizeof *L);
        used += b->count;
    }
    if (s == TLCL_OK) /* the probabilities arrive with the counters */
        s = tlcl_run_sync(r, &st);
    if (s != TLCL_OK) {
        snprintf(err, err_len, "inference failed: %s", s == TLCL_ERR_OOM ? "out of host memory" : tlcl_run_error(r));
        free(P), free(L);
        return s;
    }
    if (stats)
        *stats = st;
    *probs = P, *labels = L, *n = used;
    return TLCL_OK;
}

/* ---- frozen-base features ---------------------------------------------------- */

/* Runs the base once over a loader; each sample's pooled features land in a
 * device table at its dataset position and stay there. */
static tlcl_status extract_features(trainer *t, tlcl_loader *l, tlcl_tensor *table)
{
    tlcl_model *m = t->p->model;
    tlcl_status s = tlcl_tensor_alloc(t->p->eng, table, "cached features", tlcl_loader_size(l), 1, 1, m->top.cout);
    tlcl_loader_start(l, 0, 0);
    for (const tlcl_batch *b; s == TLCL_OK && (b = tlcl_loader_next(l));) {
        tlcl_run_input in = run_input(b, 0);
        tlcl_run_batch *rb;
        if ((s = tlcl_run_load(t->run, &in, NULL, &rb)) == TLCL_OK)
            s = tlcl_run_features(t->run, rb, table);
        if (t->p->progress)
            fprintf(stderr, "\rcomputing base features: batch %d/%d", b->index + 1, tlcl_loader_batches(l));
    }
    if (t->p->progress)
        fprintf(stderr, "\n");
    if (s == TLCL_OK)
        s = tlcl_cl_finish(tlcl_engine_cl(t->p->eng));
    if (s != TLCL_OK)
        snprintf(t->err, t->err_len, "computing base features: %s", tlcl_run_error(t->run));
    return s;
}

static int phase_uses_features(const trainer *t)
{
    const tlcl_fit_phase *ph = &t->p->phases[t->st.phase];
    return t->p->cache_features && ph->first_trainable_block > t->p->model->nblocks;
}

static const tlcl_tensor *features_of(const trainer *t, const tlcl_tensor *table)
{
    return phase_uses_features(t) ? table : NULL;
}

static tlcl_status ensure_features(trainer *t)
{
    if (!phase_uses_features(t) || t->features_train.buf)
        return TLCL_OK;
    double t0 = now_s();
    TLCL_TRY(extract_features(t, t->p->train, &t->features_train));
    if (t->p->val)
        TLCL_TRY(extract_features(t, t->p->val, &t->features_val));
    if (t->p->log)
        fprintf(t->p->log, "base features computed once in %.1f s\n", now_s() - t0);
    return TLCL_OK;
}

/* ---- backup and restore -------------------------------------------------------- */

static cJSON *monitor_json(const monitor *m)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "mode", m->mode);
    cJSON_AddNumberToObject(o, "best", m->has_best ? m->best : 0);
    cJSON_AddBoolToObject(o, "has_best", m->has_best);
    return o;
}

/* A number of a checked training_state; null (a NaN that JSON cannot hold) is NAN. */
static double json_number(const cJSON *v)
{
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void monitor_from(monitor *m, const cJSON *o)
{
    m->mode = cJSON_GetObjectItemCaseSensitive(o, "mode")->valueint;
    m->best = json_number(cJSON_GetObjectItemCaseSensitive(o, "best"));
    m->has_best = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "has_best"));
}

static char *state_json(const trainer *t)
{
    const run_state *s = &t->st;
    cJSON *o = cJSON_CreateObject();
    int ints[] = {s->phase, s->epoch, s->batch, s->rlr_wait, s->rlr_cooldown, s->es_wait};
    const char *names[] = {"phase", "epoch", "batch", "rlr_wait", "rlr_cooldown", "es_wait"};
    for (int i = 0; i < 6; i++)
        cJSON_AddNumberToObject(o, names[i], ints[i]);
    cJSON_AddNumberToObject(o, "step", (double)s->step);
    cJSON_AddNumberToObject(o, "iterations", (double)t->p->optimizer.iterations);
    double sums[] = {s->loss_sum, s->seen, s->acc_hit, s->acc_w, s->plateau_lr};
    const char *snames[] = {"loss_sum", "seen", "acc_hit", "acc_w", "plateau_lr"};
    for (int i = 0; i < 5; i++)
        cJSON_AddNumberToObject(o, snames[i], sums[i]);
    cJSON_AddBoolToObject(o, "es_stop", s->es_stop);
    cJSON_AddItemToObject(o, "ckpt", monitor_json(&s->ckpt));
    cJSON_AddItemToObject(o, "es", monitor_json(&s->es));
    cJSON_AddItemToObject(o, "rlr", monitor_json(&s->rlr));
    cJSON *hist = cJSON_AddArrayToObject(o, "history");
    for (int e = 0; e < t->h->n; e++) {
        cJSON *row = cJSON_CreateObject();
        cJSON_AddNumberToObject(row, "__epoch", t->h->epoch_index[e]);
        for (int k = 0; k < t->h->epochs[e].n; k++)
            cJSON_AddNumberToObject(row, t->h->epochs[e].key[k], t->h->epochs[e].value[k]);
        cJSON_AddItemToArray(hist, row);
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

/* o has passed tlcl_train_state_check: every key is there with its type. */
static void state_restore(trainer *t, const cJSON *o)
{
    run_state *s = &t->st;
    int *ints[] = {&s->phase, &s->epoch, &s->batch, &s->rlr_wait, &s->rlr_cooldown, &s->es_wait};
    const char *names[] = {"phase", "epoch", "batch", "rlr_wait", "rlr_cooldown", "es_wait"};
    for (int i = 0; i < 6; i++)
        *ints[i] = cJSON_GetObjectItemCaseSensitive(o, names[i])->valueint;
    s->step = (long)cJSON_GetObjectItemCaseSensitive(o, "step")->valuedouble;
    t->p->optimizer.iterations = (long)cJSON_GetObjectItemCaseSensitive(o, "iterations")->valuedouble;
    s->loss_sum = cJSON_GetObjectItemCaseSensitive(o, "loss_sum")->valuedouble;
    s->seen = cJSON_GetObjectItemCaseSensitive(o, "seen")->valuedouble;
    s->acc_hit = cJSON_GetObjectItemCaseSensitive(o, "acc_hit")->valuedouble;
    s->acc_w = cJSON_GetObjectItemCaseSensitive(o, "acc_w")->valuedouble;
    s->plateau_lr = (float)cJSON_GetObjectItemCaseSensitive(o, "plateau_lr")->valuedouble;
    s->es_stop = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "es_stop")); /* absent in older backups */
    monitor_from(&s->ckpt, cJSON_GetObjectItemCaseSensitive(o, "ckpt"));
    monitor_from(&s->es, cJSON_GetObjectItemCaseSensitive(o, "es"));
    monitor_from(&s->rlr, cJSON_GetObjectItemCaseSensitive(o, "rlr"));
    const cJSON *row;
    cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(o, "history"))
    {
        tlcl_logs l = {0};
        int epoch = 0;
        const cJSON *kv;
        cJSON_ArrayForEach(kv, row)
        {
            if (strcmp(kv->string, "__epoch") == 0)
                epoch = kv->valueint;
            else
                tlcl_logs_set(&l, kv->string, json_number(kv));
        }
        history_add(t->h, &l, epoch);
    }
}

static void backup_path(const trainer *t, char *dst, size_t len, const char *suffix)
{
    snprintf(dst, len, "%s/latest.safetensors%s", t->p->cb.backup_dir, suffix);
}

/* Moves the device counters into the carried totals. */
static tlcl_status fold_counters(trainer *t)
{
    tlcl_run_stats st;
    TLCL_TRY(train_totals(t, &st));
    t->st.loss_sum = st.loss_sum, t->st.seen = st.samples, t->st.acc_hit = st.hits, t->st.acc_w = st.weight;
    return tlcl_run_reset(t->run);
}

static tlcl_status backup_save(trainer *t)
{
    const tlcl_callbacks *cb = &t->p->cb;
    if (!cb->backup_dir[0])
        return TLCL_OK;
    char path[1100], bkp[1100];
    backup_path(t, path, sizeof path, "");
    mkdir(cb->backup_dir, 0755);
    if (cb->double_checkpoint) {
        backup_path(t, bkp, sizeof bkp, ".bkp");
        rename(path, bkp); /* the previous backup survives a damaged new one */
    }
    TLCL_TRY(fold_counters(t)); /* a backup taken mid-epoch carries the epoch's totals so far */
    char *json = state_json(t);
    tlcl_save_extra x = {1, json};
    tlcl_status s = tlcl_model_save_ex(t->p->model, path, t->p->class_names, t->p->classes, &x, t->err, t->err_len);
    free(json);
    return s;
}

/* A line for the console (stdout or stderr) and the run's log. */
static void say(trainer *t, FILE *console, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(trainer *t, FILE *console, const char *fmt, ...)
{
    char line[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(console, "%s\n", line);
    fflush(console);
    if (t->p->log) {
        fprintf(t->p->log, "%s\n", line);
        fflush(t->p->log);
    }
}

/* Checks a backup's training state and tensors, then restores it. When it
 * is not used, *restored = 0 and why names the file and the key or tensor at
 * fault; the model then keeps the weights it had. */
static tlcl_status try_restore(trainer *t, const char *path, int *restored, char *why, size_t why_len)
{
    tlcl_model *m = t->p->model;
    *restored = 0;
    if (access(path, F_OK) != 0) {
        snprintf(why, why_len, "%s: no such file", path);
        return TLCL_OK;
    }
    tlcl_checkpoint *c = NULL;
    if (tlcl_checkpoint_open(&c, path, why, why_len) != TLCL_OK)
        return TLCL_OK;
    const char *text = tlcl_checkpoint_meta(c, "training_state");
    cJSON *st = text ? cJSON_Parse(text) : NULL;
    char bad[768];
    int nb = t->p->train ? tlcl_loader_batches(t->p->train) : 0;
    tlcl_status s = TLCL_OK;
    if (!text)
        snprintf(why, why_len, "%s: no training_state in its metadata (not a backup)", path);
    else if (!st)
        snprintf(why, why_len, "%s: its training_state is not valid JSON", path);
    else if (tlcl_train_state_check(st, t->p->nphases, nb, TLCL_LOGS_MAX, (int)sizeof t->h->epochs->key[0], bad,
                                    sizeof bad) != 0)
        snprintf(why, why_len, "%s: training_state %s", path, bad);
    else {
        /* the tensors are checked as they load: keep the weights in hand until the whole backup fits */
        tlcl_params *pp = &m->params;
        float *keep = malloc(pp->total * sizeof *keep), pre_scale[3], pre_shift[3];
        memcpy(pre_scale, m->pre_scale, sizeof pre_scale), memcpy(pre_shift, m->pre_shift, sizeof pre_shift);
        s = keep ? tlcl_cl_read(tlcl_engine_cl(t->p->eng), pp->values, 0, pp->total * sizeof(float), keep, "weights")
                 : TLCL_ERR_OOM;
        if (s != TLCL_OK) {
            snprintf(t->err, t->err_len, "before reading the backup %s: %s", path,
                     keep ? tlcl_engine_error(t->p->eng) : "out of memory");
        } else if (tlcl_model_load(m, c, why, why_len) != TLCL_OK ||
                   tlcl_model_load_optimizer(m, c, why, why_len) != TLCL_OK) {
            memcpy(m->pre_scale, pre_scale, sizeof pre_scale), memcpy(m->pre_shift, pre_shift, sizeof pre_shift);
            s = tlcl_cl_write(tlcl_engine_cl(t->p->eng), pp->values, 0, pp->total * sizeof(float), keep, "weights");
            if (s != TLCL_OK)
                snprintf(t->err, t->err_len, "restoring the weights after the backup %s failed: %s", path,
                         tlcl_engine_error(t->p->eng));
        } else {
            state_restore(t, st);
            *restored = 1;
        }
        free(keep);
    }
    cJSON_Delete(st);
    tlcl_checkpoint_close(c);
    return s; /* an unusable backup is not an error here: the caller tries the next one */
}

/* The backup in cb.backup_dir (latest, then the previous one), per
 * p->resume; see tlcl_resume_mode. */
static tlcl_status resume_if_possible(trainer *t)
{
    tlcl_train_plan *p = t->p;
    const char *dir = p->cb.backup_dir;
    if (p->resume == TLCL_RESUME_NEVER)
        return TLCL_OK;
    if (!dir[0]) {
        if (p->resume == TLCL_RESUME_REQUIRED)
            return fail(t, TLCL_ERR_ARG, "%s",
                        "--resume: callbacks.backup is off in this configuration: there is no backup to resume from");
        return TLCL_OK;
    }
    char path[2][1100], why[2][4096];
    int ok = 0, present = 0;
    for (int i = 0; i < 2 && !ok; i++) {
        backup_path(t, path[i], sizeof path[i], i ? ".bkp" : "");
        why[i][0] = '\0';
        if (access(path[i], F_OK) != 0) {
            snprintf(why[i], sizeof why[i], "%s: no such file", path[i]);
            continue;
        }
        present++;
        TLCL_TRY(try_restore(t, path[i], &ok, why[i], sizeof why[i]));
        if (!ok)
            say(t, stderr, "warning: a backup is not used: %s", why[i]); /* why names the file */
    }
    if (ok) {
        say(t, stdout, "resumed from %s: phase %d, epoch %d, batch %d", path[present - 1], t->st.phase + 1,
            t->st.epoch + 1, t->st.batch);
        return TLCL_OK;
    }
    if (p->resume == TLCL_RESUME_REQUIRED) {
        snprintf(t->err, t->err_len,
                 "--resume: no usable backup in %s (%s; %s). Run without --resume to start over (an unusable "
                 "backup is then moved aside, not deleted)",
                 dir, why[0], why[1]);
        return TLCL_ERR_FORMAT;
    }
    if (present) { /* keep it for inspection: the first backup of the new run would overwrite it */
        char moved[1200], err[1400];
        if (tlcl_move_aside(dir, moved, sizeof moved, err, sizeof err) > 0)
            say(t, stderr, "warning: the unusable backup %s is moved aside to %s; training starts from the first "
                "epoch", dir, moved);
        else
            say(t, stderr, "warning: %s; training starts from the first epoch", err);
    }
    return TLCL_OK;
}

static void backup_delete(trainer *t)
{
    if (!t->p->cb.backup_dir[0] || t->p->cb.keep_backup)
        return;
    char path[1100];
    backup_path(t, path, sizeof path, "");
    remove(path);
    backup_path(t, path, sizeof path, ".bkp");
    remove(path);
    rmdir(t->p->cb.backup_dir);
}

/* Records that the run finished (p->state_path), before the backup goes:
 * a rerun then trains no further epoch. 0 when recorded (or nothing to
 * record), -1 when the file could not be written (the backup is kept). */
static int record_finished(trainer *t, int stopped_early, int last_phase_epochs)
{
    if (!t->p->state_path[0])
        return 0;
    tlcl_run_status st;
    memset(&st, 0, sizeof st);
    snprintf(st.reason, sizeof st.reason, "%s", stopped_early ? "early_stopping" : "last_epoch");
    st.phases = t->p->nphases;
    st.last_phase_epochs = last_phase_epochs;
    st.epochs_trained = t->h->n;
    char err[1400];
    if (tlcl_run_status_write(t->p->state_path, &st, err, sizeof err) != 0) {
        say(t, stderr, "warning: %s; the backup is kept", err);
        return -1;
    }
    return 0;
}

/* ---- epoch end: validation and callbacks ---------------------------------- */

/* val_loss and val_accuracy from the run's counters: the training loss
 * without class weights, as Keras reports them; the other metrics from the
 * probabilities. */
static tlcl_status validate(trainer *t, tlcl_logs *logs)
{
    tlcl_train_plan *p = t->p;
    if (!p->val)
        return TLCL_OK;
    float *probs;
    int *labels, n;
    tlcl_run_stats st;
    TLCL_TRY(tlcl_predict_loader(t->run, p->val, features_of(t, &t->features_val), &probs, &labels, &n, &st, t->err,
                            t->err_len));
    tlcl_logs_set(logs, "val_loss", st.samples > 0 ? st.loss_sum / st.samples : 0);
    tlcl_logs_set(logs, "val_accuracy", st.weight > 0 ? st.hits / st.weight : 0);
    if (p->metrics)
        p->metrics(p->metrics_ctx, probs, labels, n, p->classes, "val_", logs);
    free(probs), free(labels);
    return TLCL_OK;
}

static tlcl_status snapshot_weights(trainer *t)
{
    tlcl_params *pp = &t->p->model->params;
    if (!t->best_weights && !(t->best_weights = malloc(pp->total * sizeof(float))))
        return TLCL_ERR_OOM;
    return tlcl_cl_read(tlcl_engine_cl(t->p->eng), pp->values, 0, pp->total * sizeof(float), t->best_weights,
                        "best weights");
}

static tlcl_status checkpoint_callback(trainer *t, const tlcl_logs *logs)
{
    const tlcl_callbacks *cb = &t->p->cb;
    double v;
    if (!cb->checkpoint_path[0])
        return TLCL_OK;
    int have = tlcl_logs_get(logs, cb->checkpoint_monitor, &v);
    if (cb->save_best_only && have && !improved(&t->st.ckpt, v, 0))
        return TLCL_OK;
    if (have) {
        t->st.ckpt.best = v;
        t->st.ckpt.has_best = 1;
    } else if (t->p->log) {
        fprintf(t->p->log, "warning: checkpoint monitor '%s' is not logged; saving anyway (Keras does the same)\n",
                cb->checkpoint_monitor);
    }
    return tlcl_model_save(t->p->model, cb->checkpoint_path, t->p->class_names, t->p->classes, t->err, t->err_len);
}

static tlcl_status early_stopping(trainer *t, const tlcl_logs *logs)
{
    const tlcl_callbacks *cb = &t->p->cb;
    double v;
    if (!cb->early_stopping || t->st.epoch < cb->es_start_from_epoch || !tlcl_logs_get(logs, cb->es_monitor, &v))
        return TLCL_OK;
    if (cb->es_restore_best && !t->best_weights)
        TLCL_TRY(snapshot_weights(t));
    t->st.es_wait++;
    if (improved(&t->st.es, v, cb->es_min_delta)) {
        t->st.es.best = v, t->st.es.has_best = 1, t->st.es_wait = 0;
        if (cb->es_restore_best)
            TLCL_TRY(snapshot_weights(t));
        return TLCL_OK;
    }
    if (t->st.es_wait >= cb->es_patience && t->st.epoch > 0)
        t->st.es_stop = 1;
    return TLCL_OK;
}

static void reduce_on_plateau(trainer *t, tlcl_logs *logs, float lr_used)
{
    const tlcl_schedule *s = &t->p->schedule;
    double v;
    if (s->kind != TLCL_LR_PLATEAU || !tlcl_logs_get(logs, s->monitor, &v))
        return;
    if (t->st.rlr_cooldown > 0) {
        t->st.rlr_cooldown--;
        t->st.rlr_wait = 0;
    }
    if (improved(&t->st.rlr, v, s->min_delta)) {
        t->st.rlr.best = v, t->st.rlr.has_best = 1, t->st.rlr_wait = 0;
    } else if (t->st.rlr_cooldown == 0 && ++t->st.rlr_wait >= s->patience && lr_used > s->min_lr) {
        t->st.plateau_lr = fmaxf(lr_used * s->factor, s->min_lr);
        t->st.rlr_cooldown = s->cooldown;
        t->st.rlr_wait = 0;
        if (t->p->log)
            fprintf(t->p->log, "reducing the learning rate to %g\n", t->st.plateau_lr);
    }
}

static void print_epoch(trainer *t, const tlcl_logs *logs, int epochs)
{
    char line[2048];
    int off = snprintf(line, sizeof line, "phase %d epoch %d/%d (%.1f s, training %.1f img/s):", t->st.phase + 1,
                       t->st.epoch + 1, epochs, now_s() - t->t_epoch, t->train_rate);
    for (int i = 0; i < logs->n && off < (int)sizeof line - 64; i++) {
        const char *k = logs->key[i];
        int per_class = !strncmp(k, "val_precision_", 14) || !strncmp(k, "val_recall_", 11) || !strncmp(k, "val_f1_", 7);
        if (!per_class) /* per-class values go to the histories and curves, not the console */
            off += snprintf(line + off, sizeof line - (size_t)off, " %s %.4f", k, logs->value[i]);
    }
    if (t->p->progress)
        fprintf(stderr, "\r\033[K");
    printf("%s\n", line);
    fflush(stdout);
    if (t->p->log) {
        fprintf(t->p->log, "%s\n", line);
        fflush(t->p->log);
    }
}

static tlcl_status epoch_end(trainer *t, float lr_used)
{
    tlcl_logs logs = {0};
    tlcl_run_stats st;
    TLCL_TRY(train_totals(t, &st));
    /* the training loop's own rate, loader included, validation excluded */
    double dt = now_s() - t->t_epoch;
    t->train_rate = dt > 0 ? (st.samples - t->st.seen) / dt : 0;
    tlcl_logs_set(&logs, "loss", st.samples > 0 ? st.loss_sum / st.samples : 0);
    tlcl_logs_set(&logs, "accuracy", st.weight > 0 ? st.hits / st.weight : 0);
    TLCL_TRY(validate(t, &logs));
    tlcl_logs_set(&logs, "learning_rate", lr_used);
    if (!t->st.ckpt.mode)
        t->st.ckpt.mode = monitor_mode(t->p->cb.checkpoint_monitor, t->p->cb.checkpoint_mode);
    TLCL_TRY(checkpoint_callback(t, &logs));
    TLCL_TRY(early_stopping(t, &logs));
    reduce_on_plateau(t, &logs, lr_used);
    if (history_add(t->h, &logs, t->st.epoch) != 0)
        return TLCL_ERR_OOM;
    print_epoch(t, &logs, t->p->phases[t->st.phase].epochs);
    if (t->p->on_epoch_end)
        t->p->on_epoch_end(t->p->epoch_ctx, t->st.phase, t->st.epoch, &logs);
    t->st.epoch++;
    t->st.batch = 0;
    t->st.loss_sum = t->st.seen = t->st.acc_hit = t->st.acc_w = 0;
    TLCL_TRY(tlcl_run_reset(t->run));
    return backup_save(t);
}

/* ---- the loops ------------------------------------------------------------------ */

/* How often the training loop reads the counters: each read waits for the
 * device, so at most once a second (for the progress line and to stop
 * promptly on a NaN) and at the epoch's end. */
#define SYNC_SECONDS 1.0

static tlcl_status progress_line(trainer *t, int nb, double t0, int done)
{
    tlcl_run_stats st;
    TLCL_TRY(train_totals(t, &st));
    if (!t->p->progress)
        return TLCL_OK;
    double el = now_s() - t0, per = done > 0 ? el / done : 0; /* seconds per batch */
    fprintf(stderr, "\r\033[Kphase %d epoch %d batch %d/%d loss %.4f accuracy %.4f %.1f img/s ETA %.0f s",
            t->st.phase + 1, t->st.epoch + 1, t->st.batch, nb, st.samples > 0 ? st.loss_sum / st.samples : 0,
            st.weight > 0 ? st.hits / st.weight : 0, el > 0 ? (st.samples - t->st.seen) / el : 0,
            per * (nb - t->st.batch));
    return TLCL_OK;
}

static tlcl_status run_epoch(trainer *t)
{
    tlcl_train_plan *p = t->p;
    int nb = tlcl_loader_batches(p->train), done = 0;
    const tlcl_tensor *features = features_of(t, &t->features_train);
    float lr = current_lr(t, p->optimizer.iterations);
    double t0 = now_s(), last_sync = t0;
    t->t_epoch = t0;
    TLCL_TRY(tlcl_run_reset(t->run));
    tlcl_loader_start(p->train, t->st.epoch + 1000 * t->st.phase, t->st.batch);
    for (const tlcl_batch *b; (b = tlcl_loader_next(p->train));) {
        lr = current_lr(t, p->optimizer.iterations);
        TLCL_TRY(train_batch(t, b, features, lr));
        t->st.batch = b->index + 1;
        done++;
        if (now_s() - last_sync >= SYNC_SECONDS) {
            TLCL_TRY(progress_line(t, nb, t0, done));
            last_sync = now_s();
        }
        if (p->cb.backup_every_batches > 0 && t->st.batch % p->cb.backup_every_batches == 0 && t->st.batch < nb)
            TLCL_TRY(backup_save(t));
    }
    return epoch_end(t, lr);
}

static tlcl_status restore_best(trainer *t)
{
    if (!t->p->cb.es_restore_best || !t->best_weights)
        return TLCL_OK;
    tlcl_params *pp = &t->p->model->params;
    return tlcl_cl_write(tlcl_engine_cl(t->p->eng), pp->values, 0, pp->total * sizeof(float), t->best_weights,
                         "best weights");
}

/* Keras recompiles between phases: a new optimizer, new callback state. */
static tlcl_status phase_begin(trainer *t, int fresh)
{
    tlcl_train_plan *p = t->p;
    const tlcl_fit_phase *ph = &p->phases[t->st.phase];
    tlcl_model_set_trainable(p->model, ph->first_trainable_block, ph->bn_frozen);
    if (!fresh)
        return ensure_features(t);
    tlcl_tensor m = {.buf = p->model->params.m, .n = (int)p->model->params.total, .h = 1, .w = 1, .c = 1};
    tlcl_tensor v = m;
    v.buf = p->model->params.v;
    TLCL_TRY(tlcl_tensor_fill(p->eng, &m, 0));
    TLCL_TRY(tlcl_tensor_fill(p->eng, &v, 0));
    p->optimizer.iterations = 0;
    t->st.plateau_lr = 0;
    t->st.es_wait = t->st.rlr_wait = t->st.rlr_cooldown = t->st.es_stop = 0;
    t->st.es = (monitor){monitor_mode(p->cb.es_monitor, p->cb.es_mode), 0, 0};
    t->st.rlr = (monitor){monitor_mode(p->schedule.monitor, TLCL_MON_AUTO), 0, 0};
    free(t->best_weights);
    t->best_weights = NULL;
    return ensure_features(t);
}

/* *recorded: the run state says the run finished (or there is none to write). */
static tlcl_status run_phases(trainer *t, int *recorded)
{
    tlcl_train_plan *p = t->p;
    int resumed = t->st.epoch > 0 || t->st.batch > 0, last_epochs = 0, stopped = 0;
    *recorded = 0;
    for (; t->st.phase < p->nphases; t->st.phase++, t->st.epoch = 0, t->st.batch = 0, resumed = 0) {
        TLCL_TRY(phase_begin(t, !resumed));
        while (t->st.epoch < p->phases[t->st.phase].epochs && !t->st.es_stop)
            TLCL_TRY(run_epoch(t));
        if (t->st.es_stop && p->log)
            fprintf(p->log, "early stopping after epoch %d of phase %d\n", t->st.epoch, t->st.phase + 1);
        last_epochs = t->st.epoch, stopped = t->st.es_stop;
        TLCL_TRY(restore_best(t));
    }
    *recorded = record_finished(t, stopped, last_epochs) == 0;
    return TLCL_OK;
}

tlcl_status tlcl_train_run(tlcl_train_plan *p, tlcl_history *h, char *err, size_t err_len)
{
    trainer t;
    memset(&t, 0, sizeof t);
    t.p = p, t.h = h, t.err = err, t.err_len = err_len;
    memset(h, 0, sizeof *h);
    if (p->nphases < 1 || p->nphases > TLCL_PHASES_MAX)
        return fail(&t, TLCL_ERR_ARG, "%s",
                    "'phases': a run needs between 1 and " TLCL_LIMIT_STR(TLCL_PHASES_MAX) " phases");
    t.st.ckpt.mode = monitor_mode(p->cb.checkpoint_monitor, p->cb.checkpoint_mode);
    tlcl_status s = tlcl_run_create(&t.run, p->model, &p->loss, err, err_len);
    if (s != TLCL_OK)
        return s;
    int recorded = 0;
    s = resume_if_possible(&t);
    if (s == TLCL_OK)
        s = run_phases(&t, &recorded);
    if (s == TLCL_OK && recorded)
        backup_delete(&t);
    tlcl_tensor_release(p->eng, &t.features_train);
    tlcl_tensor_release(p->eng, &t.features_val);
    tlcl_run_free(t.run);
    free(t.best_weights);
    return s;
}
