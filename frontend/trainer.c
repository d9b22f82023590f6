/* trainer.c — see trainer.h. Keras semantics where tlcl mirrors Keras
 * (epoch loss = sum of w_i l_i / N over the epoch, class-weighted training
 * accuracy, unweighted validation metrics, monitor modes, early stopping and
 * plateau rules), with one deliberate difference: a backup taken mid-epoch
 * resumes at the next batch, not at batch 0, so an interrupted run ends with
 * the same weights as an uninterrupted one. */
#include "trainer.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TRY(expr)                              \
    do {                                       \
        tlcl_status s_ = (expr);               \
        if (s_ != TLCL_OK) return s_;          \
    } while (0)

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
    double loss_sum, seen, acc_hit, acc_w; /* this epoch's training accumulators */
    float plateau_lr;             /* 0: the schedule's */
    int rlr_wait, rlr_cooldown, es_wait, es_stop;
    monitor ckpt, es, rlr;
} run_state;

typedef struct trainer {
    tlcl_train_plan *p;
    tlcl_history *h;
    run_state st;
    float *features_train, *features_val; /* cached base features [n, C] by dataset position */
    int nfeat_train, nfeat_val;
    float *best_weights;                  /* early stopping's snapshot */
    char *err;
    size_t err_len;
    double t_epoch;
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

/* ---- one batch ------------------------------------------------------------------ */

typedef struct batch_tensors { tlcl_tensor x, labels, weights, loss, dlogits, probs, alpha; } batch_tensors;

static void batch_release(tlcl_engine *e, batch_tensors *b)
{
    tlcl_tensor *all[] = {&b->x, &b->labels, &b->weights, &b->loss, &b->dlogits, &b->probs, &b->alpha};
    for (int i = 0; i < 7; i++)
        if (all[i]->buf)
            tlcl_tensor_release(e, all[i]);
}

/* The model's input for a batch: its images, or its rows of the cached base
 * features (gathered on the host, one upload). */
static tlcl_status upload_inputs(tlcl_model *m, tlcl_engine *e, const tlcl_batch *b, const float *features,
                                 tlcl_tensor *x)
{
    int n = b->count;
    if (!features) {
        TRY(tlcl_tensor_alloc(e, x, "images", n, m->size, m->size, 3));
        return tlcl_tensor_upload(e, x, b->images);
    }
    int C = m->top.cout;
    TRY(tlcl_tensor_alloc(e, x, "features", n, 1, 1, C));
    float *rows = malloc((size_t)n * C * sizeof *rows);
    if (!rows)
        return TLCL_ERR_OOM;
    for (int k = 0; k < n; k++)
        memcpy(rows + (size_t)k * C, features + (size_t)b->items[k] * C, (size_t)C * sizeof *rows);
    tlcl_status s = tlcl_tensor_upload(e, x, rows);
    free(rows);
    return s;
}

/* Uploads the inputs, labels and weights of a batch. */
static tlcl_status batch_upload(trainer *t, const tlcl_batch *b, const float *features, batch_tensors *bt)
{
    tlcl_engine *e = t->p->eng;
    int n = b->count;
    TRY(upload_inputs(t->p->model, e, b, features, &bt->x));
    TRY(tlcl_tensor_alloc(e, &bt->labels, "labels", n, 1, 1, 1));
    TRY(tlcl_cl_write(tlcl_engine_cl(e), bt->labels.buf, 0, (size_t)n * sizeof(int), b->labels, "labels"));
    TRY(tlcl_tensor_alloc(e, &bt->weights, "sample weights", n, 1, 1, 1));
    return tlcl_tensor_upload(e, &bt->weights, b->weights);
}

static tlcl_status loss_and_grad(trainer *t, const tlcl_tensor *logits, batch_tensors *bt)
{
    tlcl_train_plan *p = t->p;
    tlcl_engine *e = p->eng;
    int n = logits->n;
    TRY(tlcl_tensor_alloc(e, &bt->loss, "loss", 1, 1, 1, 1));
    TRY(tlcl_tensor_alloc(e, &bt->dlogits, "dlogits", n, 1, 1, p->classes));
    if (p->loss == TLCL_FIT_XENT)
        return tlcl_softmax_xent(e, &bt->loss, NULL, &bt->dlogits, logits, bt->labels.buf, &bt->weights,
                                 p->label_smoothing);
    if (p->focal_alpha_per_class && !bt->alpha.buf) {
        TRY(tlcl_tensor_alloc(e, &bt->alpha, "focal alpha", 1, 1, 1, p->classes));
        TRY(tlcl_tensor_upload(e, &bt->alpha, p->focal_alpha_per_class));
    }
    return tlcl_focal_loss(e, &bt->loss, NULL, &bt->dlogits, logits, bt->labels.buf, &bt->weights,
                           p->label_smoothing, p->focal_alpha_per_class ? &bt->alpha : NULL, p->focal_alpha,
                           p->focal_gamma);
}

/* Accumulates Keras's epoch loss and class-weighted accuracy. */
static void accumulate(trainer *t, const tlcl_batch *b, float loss, const float *probs)
{
    int C = t->p->classes;
    t->st.loss_sum += (double)loss * b->count;
    t->st.seen += b->count;
    for (int k = 0; k < b->count; k++) {
        int best = 0;
        for (int c = 1; c < C; c++)
            if (probs[k * C + c] > probs[k * C + best])
                best = c;
        t->st.acc_hit += b->weights[k] * (best == b->labels[k]);
        t->st.acc_w += b->weights[k];
    }
}

static tlcl_status train_batch(trainer *t, const tlcl_batch *b, const float *features, float lr)
{
    tlcl_train_plan *p = t->p;
    tlcl_engine *e = p->eng;
    batch_tensors bt;
    memset(&bt, 0, sizeof bt);
    tlcl_tensor *logits;
    uint32_t seed = p->seed * 2654435761u + (uint32_t)t->st.step + 1u;
    tlcl_status s = batch_upload(t, b, features, &bt);
    if (s == TLCL_OK)
        s = tlcl_params_zero_grads(e, &p->model->params);
    if (s == TLCL_OK)
        s = features ? tlcl_model_head_forward(p->model, &bt.x, 1, seed, &logits)
                     : tlcl_model_forward(p->model, &bt.x, 1, seed, &logits);
    if (s == TLCL_OK)
        s = loss_and_grad(t, logits, &bt);
    if (s == TLCL_OK)
        s = features ? tlcl_model_head_backward(p->model, &bt.dlogits) : tlcl_model_backward(p->model, &bt.dlogits);
    if (s == TLCL_OK)
        s = tlcl_optimizer_step(e, &p->optimizer, &p->model->params, lr, &bt.loss);
    if (s == TLCL_OK && (s = tlcl_tensor_alloc(e, &bt.probs, "probs", b->count, 1, 1, p->classes)) == TLCL_OK)
        s = tlcl_softmax_forward(e, &bt.probs, logits);
    float loss = 0;
    float *probs = malloc((size_t)b->count * p->classes * sizeof *probs);
    if (s == TLCL_OK)
        s = tlcl_loss_check(e, &bt.loss, t->st.step, &loss);
    if (s == TLCL_OK)
        s = probs ? tlcl_tensor_download(e, &bt.probs, probs) : TLCL_ERR_OOM;
    if (s == TLCL_OK)
        accumulate(t, b, loss, probs);
    free(probs);
    tlcl_model_release_activations(p->model);
    batch_release(e, &bt);
    t->st.step++;
    if (s != TLCL_OK)
        snprintf(t->err, t->err_len, "%s", tlcl_engine_error(e));
    return s;
}

/* ---- inference over a loader ------------------------------------------------ */

static tlcl_status predict_batch(tlcl_model *m, tlcl_engine *e, const tlcl_batch *b, const float *features,
                                 int classes, float *probs_out)
{
    tlcl_tensor x = {0}, probs = {0}, *logits;
    tlcl_status s = upload_inputs(m, e, b, features, &x);
    if (s == TLCL_OK)
        s = features ? tlcl_model_head_forward(m, &x, 0, 0, &logits) : tlcl_model_forward(m, &x, 0, 0, &logits);
    if (s == TLCL_OK && (s = tlcl_tensor_alloc(e, &probs, "probs", b->count, 1, 1, classes)) == TLCL_OK &&
        (s = tlcl_softmax_forward(e, &probs, logits)) == TLCL_OK)
        s = tlcl_tensor_download(e, &probs, probs_out);
    tlcl_model_release_activations(m);
    if (x.buf)
        tlcl_tensor_release(e, &x);
    if (probs.buf)
        tlcl_tensor_release(e, &probs);
    return s;
}

static tlcl_status predict_all(tlcl_model *m, tlcl_engine *e, tlcl_loader *l, const float *features, int classes,
                               float **probs, int **labels, int *n, char *err, size_t err_len)
{
    int cap = tlcl_loader_batches(l) * 1 + 1, used = 0, bs = 0;
    float *P = NULL;
    int *L = NULL;
    tlcl_status s = TLCL_OK;
    tlcl_loader_start(l, 0, 0);
    for (const tlcl_batch *b; s == TLCL_OK && (b = tlcl_loader_next(l));) {
        if (!P) {
            bs = b->count;
            cap = tlcl_loader_batches(l) * bs;
            P = malloc((size_t)cap * classes * sizeof *P);
            L = malloc((size_t)cap * sizeof *L);
            if (!P || !L) {
                s = TLCL_ERR_OOM;
                break;
            }
        }
        s = predict_batch(m, e, b, features, classes, P + (size_t)used * classes);
        memcpy(L + used, b->labels, (size_t)b->count * sizeof *L);
        used += b->count;
    }
    if (s != TLCL_OK) {
        snprintf(err, err_len, "inference failed: %s", tlcl_engine_error(e));
        free(P), free(L);
        return s;
    }
    *probs = P, *labels = L, *n = used;
    return TLCL_OK;
}

tlcl_status tlcl_predict_loader(tlcl_model *m, tlcl_engine *e, tlcl_loader *l, int classes, float **probs,
                                int **labels, int *n, char *err, size_t err_len)
{
    return predict_all(m, e, l, NULL, classes, probs, labels, n, err, err_len);
}

/* ---- frozen-base features ---------------------------------------------------- */

/* Runs the base once over a loader; features land at their dataset position. */
static tlcl_status extract_features(trainer *t, tlcl_loader *l, float **out, int *n_out)
{
    tlcl_model *m = t->p->model;
    tlcl_engine *e = t->p->eng;
    int C = m->top.cout, total = 0, include_top = m->include_top;
    tlcl_loader_start(l, 0, 0);
    float *f = NULL;
    tlcl_status s = TLCL_OK;
    m->include_top = 0; /* forward stops at the pooled features */
    for (const tlcl_batch *b; s == TLCL_OK && (b = tlcl_loader_next(l));) {
        if (!f) {
            total = tlcl_loader_batches(l) * b->count;
            f = calloc((size_t)total * C, sizeof *f);
            if (!f) {
                s = TLCL_ERR_OOM;
                break;
            }
        }
        tlcl_tensor x, *pooled;
        if ((s = tlcl_tensor_alloc(e, &x, "images", b->count, m->size, m->size, 3)) != TLCL_OK)
            break;
        s = tlcl_tensor_upload(e, &x, b->images);
        if (s == TLCL_OK)
            s = tlcl_model_forward(m, &x, 0, 0, &pooled);
        float *rows = malloc((size_t)b->count * C * sizeof *rows);
        if (s == TLCL_OK)
            s = rows ? tlcl_tensor_download(e, pooled, rows) : TLCL_ERR_OOM;
        for (int k = 0; s == TLCL_OK && k < b->count; k++)
            memcpy(f + (size_t)b->items[k] * C, rows + (size_t)k * C, (size_t)C * sizeof *f);
        free(rows);
        tlcl_model_release_activations(m);
        tlcl_tensor_release(e, &x);
        if (t->p->progress)
            fprintf(stderr, "\rcomputing base features: batch %d/%d", b->index + 1, tlcl_loader_batches(l));
    }
    m->include_top = include_top;
    if (t->p->progress)
        fprintf(stderr, "\n");
    if (s != TLCL_OK) {
        free(f);
        snprintf(t->err, t->err_len, "computing base features: %s", tlcl_engine_error(e));
        return s;
    }
    *out = f;
    *n_out = total;
    return TLCL_OK;
}

static int phase_uses_features(const trainer *t)
{
    const tlcl_fit_phase *ph = &t->p->phases[t->st.phase];
    return t->p->cache_features && ph->first_trainable_block > t->p->model->nblocks;
}

static tlcl_status ensure_features(trainer *t)
{
    if (!phase_uses_features(t) || t->features_train)
        return TLCL_OK;
    double t0 = now_s();
    TRY(extract_features(t, t->p->train, &t->features_train, &t->nfeat_train));
    if (t->p->val)
        TRY(extract_features(t, t->p->val, &t->features_val, &t->nfeat_val));
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

static void monitor_from(monitor *m, const cJSON *o)
{
    cJSON *v;
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "mode")))
        m->mode = v->valueint;
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "best")))
        m->best = v->valuedouble;
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
                tlcl_logs_set(&l, kv->string, kv->valuedouble);
        }
        history_add(t->h, &l, epoch);
    }
}

static void backup_path(const trainer *t, char *dst, size_t len, const char *suffix)
{
    snprintf(dst, len, "%s/latest.safetensors%s", t->p->cb.backup_dir, suffix);
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
    char *json = state_json(t);
    tlcl_save_extra x = {1, json};
    tlcl_status s = tlcl_model_save_ex(t->p->model, path, t->p->class_names, t->p->classes, &x, t->err, t->err_len);
    free(json);
    return s;
}

static tlcl_status try_restore(trainer *t, const char *path, int *restored)
{
    tlcl_checkpoint *c = NULL;
    *restored = 0;
    if (access(path, R_OK) != 0 || tlcl_checkpoint_open(&c, path, t->err, t->err_len) != TLCL_OK)
        return TLCL_OK;
    cJSON *st = cJSON_Parse(tlcl_checkpoint_meta(c, "training_state") ? tlcl_checkpoint_meta(c, "training_state") : "");
    tlcl_status s = st ? TLCL_OK : TLCL_ERR_FORMAT;
    if (s == TLCL_OK)
        s = tlcl_model_load(t->p->model, c, t->err, t->err_len);
    if (s == TLCL_OK)
        s = tlcl_model_load_optimizer(t->p->model, c, t->err, t->err_len);
    if (s == TLCL_OK) {
        state_restore(t, st);
        *restored = 1;
    }
    cJSON_Delete(st);
    tlcl_checkpoint_close(c);
    return TLCL_OK; /* a damaged backup is skipped: the caller tries the next one */
}

static void resume_if_possible(trainer *t)
{
    if (!t->p->resume || !t->p->cb.backup_dir[0])
        return;
    char path[1100];
    int ok = 0;
    backup_path(t, path, sizeof path, "");
    try_restore(t, path, &ok);
    if (!ok) {
        backup_path(t, path, sizeof path, ".bkp");
        try_restore(t, path, &ok);
    }
    if (ok && t->p->log)
        fprintf(t->p->log, "resumed from %s: phase %d, epoch %d, batch %d\n", path, t->st.phase + 1,
                t->st.epoch + 1, t->st.batch);
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

/* ---- epoch end: validation and callbacks ---------------------------------- */

static tlcl_status validate(trainer *t, tlcl_logs *logs)
{
    tlcl_train_plan *p = t->p;
    if (!p->val)
        return TLCL_OK;
    float *probs;
    int *labels, n;
    TRY(predict_all(p->model, p->eng, p->val, phase_uses_features(t) ? t->features_val : NULL, p->classes, &probs,
                    &labels, &n, t->err, t->err_len));
    double loss = 0, hit = 0;
    for (int i = 0; i < n; i++) {
        const float *row = probs + (size_t)i * p->classes;
        int best = 0;
        for (int c = 1; c < p->classes; c++)
            best = row[c] > row[best] ? c : best;
        hit += best == labels[i];
        loss -= log(fmax(row[labels[i]], 1e-12));
    }
    tlcl_logs_set(logs, "val_loss", n ? loss / n : 0);
    tlcl_logs_set(logs, "val_accuracy", n ? hit / n : 0);
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
        TRY(snapshot_weights(t));
    t->st.es_wait++;
    if (improved(&t->st.es, v, cb->es_min_delta)) {
        t->st.es.best = v, t->st.es.has_best = 1, t->st.es_wait = 0;
        if (cb->es_restore_best)
            TRY(snapshot_weights(t));
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
    int off = snprintf(line, sizeof line, "phase %d epoch %d/%d (%.1f s):", t->st.phase + 1, t->st.epoch + 1, epochs,
                       now_s() - t->t_epoch);
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
    tlcl_logs_set(&logs, "loss", t->st.seen ? t->st.loss_sum / t->st.seen : 0);
    tlcl_logs_set(&logs, "accuracy", t->st.acc_w > 0 ? t->st.acc_hit / t->st.acc_w : 0);
    TRY(validate(t, &logs));
    tlcl_logs_set(&logs, "learning_rate", lr_used);
    if (!t->st.ckpt.mode)
        t->st.ckpt.mode = monitor_mode(t->p->cb.checkpoint_monitor, t->p->cb.checkpoint_mode);
    TRY(checkpoint_callback(t, &logs));
    TRY(early_stopping(t, &logs));
    reduce_on_plateau(t, &logs, lr_used);
    if (history_add(t->h, &logs, t->st.epoch) != 0)
        return TLCL_ERR_OOM;
    print_epoch(t, &logs, t->p->phases[t->st.phase].epochs);
    if (t->p->on_epoch_end)
        t->p->on_epoch_end(t->p->epoch_ctx, t->st.phase, t->st.epoch, &logs);
    t->st.epoch++;
    t->st.batch = 0;
    t->st.loss_sum = t->st.seen = t->st.acc_hit = t->st.acc_w = 0;
    return backup_save(t);
}

/* ---- the loops ------------------------------------------------------------------ */

static void progress_line(trainer *t, int nb, double t0, int done)
{
    if (!t->p->progress)
        return;
    double el = now_s() - t0, per = done > 0 ? el / done : 0; /* seconds per batch */
    double seen = t->st.seen > 0 ? t->st.seen : 1;
    fprintf(stderr, "\r\033[Kphase %d epoch %d batch %d/%d loss %.4f accuracy %.4f %.1f img/s ETA %.0f s",
            t->st.phase + 1, t->st.epoch + 1, t->st.batch, nb, t->st.loss_sum / seen,
            t->st.acc_w > 0 ? t->st.acc_hit / t->st.acc_w : 0, el > 0 ? done * (seen / t->st.batch) / el : 0,
            per * (nb - t->st.batch));
}

static tlcl_status run_epoch(trainer *t)
{
    tlcl_train_plan *p = t->p;
    int nb = tlcl_loader_batches(p->train), done = 0;
    const float *features = phase_uses_features(t) ? t->features_train : NULL;
    float lr = current_lr(t, p->optimizer.iterations);
    double t0 = now_s();
    t->t_epoch = t0;
    tlcl_loader_start(p->train, t->st.epoch + 1000 * t->st.phase, t->st.batch);
    for (const tlcl_batch *b; (b = tlcl_loader_next(p->train));) {
        lr = current_lr(t, p->optimizer.iterations);
        TRY(train_batch(t, b, features, lr));
        t->st.batch = b->index + 1;
        done++;
        progress_line(t, nb, t0, done);
        if (p->cb.backup_every_batches > 0 && t->st.batch % p->cb.backup_every_batches == 0 && t->st.batch < nb)
            TRY(backup_save(t));
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
    TRY(tlcl_tensor_fill(p->eng, &m, 0));
    TRY(tlcl_tensor_fill(p->eng, &v, 0));
    p->optimizer.iterations = 0;
    t->st.plateau_lr = 0;
    t->st.es_wait = t->st.rlr_wait = t->st.rlr_cooldown = t->st.es_stop = 0;
    t->st.es = (monitor){monitor_mode(p->cb.es_monitor, p->cb.es_mode), 0, 0};
    t->st.rlr = (monitor){monitor_mode(p->schedule.monitor, TLCL_MON_AUTO), 0, 0};
    free(t->best_weights);
    t->best_weights = NULL;
    return ensure_features(t);
}

static tlcl_status run_phases(trainer *t)
{
    tlcl_train_plan *p = t->p;
    int resumed = t->st.epoch > 0 || t->st.batch > 0;
    for (; t->st.phase < p->nphases; t->st.phase++, t->st.epoch = 0, t->st.batch = 0, resumed = 0) {
        TRY(phase_begin(t, !resumed));
        while (t->st.epoch < p->phases[t->st.phase].epochs && !t->st.es_stop)
            TRY(run_epoch(t));
        if (t->st.es_stop && p->log)
            fprintf(p->log, "early stopping after epoch %d of phase %d\n", t->st.epoch, t->st.phase + 1);
        TRY(restore_best(t));
    }
    return TLCL_OK;
}

tlcl_status tlcl_train_run(tlcl_train_plan *p, tlcl_history *h, char *err, size_t err_len)
{
    trainer t;
    memset(&t, 0, sizeof t);
    t.p = p, t.h = h, t.err = err, t.err_len = err_len;
    memset(h, 0, sizeof *h);
    if (p->nphases < 1 || p->nphases > TLCL_PHASES_MAX)
        return fail(&t, TLCL_ERR_ARG, "%s", "a run needs between 1 and 4 phases");
    t.st.ckpt.mode = monitor_mode(p->cb.checkpoint_monitor, p->cb.checkpoint_mode);
    resume_if_possible(&t);
    tlcl_status s = run_phases(&t);
    if (s == TLCL_OK)
        backup_delete(&t);
    free(t.features_train), free(t.features_val), free(t.best_weights);
    return s;
}
