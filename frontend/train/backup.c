/* backup.c — BackupAndRestore for the trainer: the training state a backup
 * carries (position, carried epoch totals, callback state, history), saving
 * it with the weights and optimizer moments, restoring a backup whole or not
 * at all, and recording a finished run before the backup is deleted. */
#include "dist.h"
#include "textout.h"
#include "trainer_internal.h"

#include <cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A line for the console (stdout or stderr) and the run's log. */
void trainer_say(trainer *t, FILE *console, const char *fmt, ...)
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

/* A double as JSON that reads back to the same double. cJSON prints 15
 * significant digits whenever they come within an epsilon of the value, so a
 * resumed run's history, monitors and carried sums were off by an ulp (a
 * training F1 of 0.41708754208754206 came back as 0.417087542087542, and the
 * rerun's CSV differed from the uninterrupted run's): the shortest
 * round-trip digits go in as raw JSON instead. A non-finite value stays
 * cJSON's null, read back as NAN. */
static cJSON *exact_number(double v)
{
    char buf[TEXTOUT_FLOAT_MAX];
    return isfinite(v) ? cJSON_CreateRaw(textout_jsonfloat(v, buf)) : cJSON_CreateNumber(v);
}

static void add_exact(cJSON *o, const char *key, double v) { cJSON_AddItemToObject(o, key, exact_number(v)); }

static cJSON *exact_array(const double *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(a, exact_number(v[i]));
    return a;
}

static cJSON *monitor_json(const monitor *m)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "mode", m->mode);
    add_exact(o, "best", m->has_best ? m->best : 0);
    cJSON_AddBoolToObject(o, "has_best", m->has_best);
    cJSON_AddNumberToObject(o, "best_epoch", m->best_epoch);
    cJSON_AddNumberToObject(o, "best_phase", m->best_phase);
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
    const cJSON *epoch = cJSON_GetObjectItemCaseSensitive(o, "best_epoch"); /* absent in older backups: 0 */
    m->best_epoch = cJSON_IsNumber(epoch) ? epoch->valueint : 0;
    const cJSON *phase = cJSON_GetObjectItemCaseSensitive(o, "best_phase");
    m->best_phase = cJSON_IsNumber(phase) ? phase->valueint : 0;
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
        add_exact(o, snames[i], sums[i]);
    cJSON_AddBoolToObject(o, "es_stop", s->es_stop);
    cJSON_AddItemToObject(o, "confusion", exact_array(t->confusion_carry, t->p->classes * t->p->classes));
    cJSON_AddItemToObject(o, "ckpt", monitor_json(&s->ckpt));
    cJSON_AddStringToObject(o, "best_model", t->best_model);
    cJSON_AddNumberToObject(o, "csv_base", (double)t->p->csv_base);
    cJSON_AddItemToObject(o, "es", monitor_json(&s->es));
    cJSON_AddItemToObject(o, "rlr", monitor_json(&s->rlr));
    cJSON *hist = cJSON_AddArrayToObject(o, "history");
    for (int e = 0; e < t->h->n; e++) {
        cJSON *row = cJSON_CreateObject();
        cJSON_AddNumberToObject(row, "__epoch", t->h->epoch_index[e]);
        for (int k = 0; k < t->h->epochs[e].n; k++)
            add_exact(row, t->h->epochs[e].key[k], t->h->epochs[e].value[k]);
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
    const cJSON *cm = cJSON_GetObjectItemCaseSensitive(o, "confusion"); /* absent in older backups: zeros */
    size_t cc = (size_t)t->p->classes * (size_t)t->p->classes;
    memset(t->confusion_carry, 0, cc * sizeof *t->confusion_carry);
    if (cJSON_GetArraySize(cm) == (int)cc)
        for (size_t i = 0; i < cc; i++)
            t->confusion_carry[i] = cJSON_GetArrayItem(cm, (int)i)->valuedouble;
    monitor_from(&s->ckpt, cJSON_GetObjectItemCaseSensitive(o, "ckpt"));
    const cJSON *best = cJSON_GetObjectItemCaseSensitive(o, "best_model"); /* absent in older backups */
    snprintf(t->best_model, sizeof t->best_model, "%s", cJSON_IsString(best) ? best->valuestring : "");
    const cJSON *base = cJSON_GetObjectItemCaseSensitive(o, "csv_base"); /* where this run's CSV rows began */
    if (cJSON_IsNumber(base))
        t->p->csv_base = (long long)base->valuedouble;
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
        tlcl_history_add(t->h, &l, epoch);
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
    TLCL_TRY(trainer_totals(t, &st));
    t->st.loss_sum = st.loss_sum, t->st.seen = st.samples, t->st.acc_hit = st.hits, t->st.acc_w = st.weight;
    memcpy(t->confusion_carry, st.confusion, (size_t)t->p->classes * (size_t)t->p->classes * sizeof *t->confusion_carry);
    trainer_dist_carry_on_root(t); /* the totals of every rank: counted once */
    return trainer_counters_reset(t);
}

tlcl_status trainer_backup_save(trainer *t)
{
    const tlcl_callbacks *cb = &t->p->cb;
    if (!cb->backup_dir[0])
        return TLCL_OK;
    /* every MPI rank folds its counters and moving statistics into the global ones; rank 0 writes them */
    TLCL_TRY(fold_counters(t)); /* a backup taken mid-epoch carries the epoch's totals so far */
    TLCL_TRY(trainer_dist_average_state(t));
    if (!tlcl_dist_is_root())
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
    if (tlcl_checkpoint_verify(c, why, why_len) != TLCL_OK) { /* before any of it is used */
        tlcl_checkpoint_close(c);
        return TLCL_OK;
    }
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

/* Where an append: true CSV log stood when this run started (csv_base),
 * kept in the backup folder from the start: a run killed before its first
 * backup has written rows that the rerun must not keep twice. The first
 * start records the value, a rerun without a usable backup reads it. */
static void run_start_path(const tlcl_callbacks *cb, char *dst, size_t len)
{
    snprintf(dst, len, "%s/run_start.json", cb->backup_dir);
}

static void run_start(trainer *t)
{
    char path[1100], text[64], err[1400];
    run_start_path(&t->p->cb, path, sizeof path);
    size_t n = 0;
    char *was = textout_read_all(path, &n);
    cJSON *j = was ? cJSON_Parse(was) : NULL;
    const cJSON *base = cJSON_GetObjectItemCaseSensitive(j, "csv_base");
    if (cJSON_IsNumber(base) && base->valuedouble >= 0) {
        t->p->csv_base = (long long)base->valuedouble; /* an earlier start of this run, killed before its first backup */
    } else {
        mkdir(t->p->cb.backup_dir, 0755);
        snprintf(text, sizeof text, "{\"csv_base\": %lld}\n", t->p->csv_base);
        if (tlcl_publish_bytes(path, text, strlen(text), err, sizeof err) != TLCL_OK)
            trainer_say(t, stderr, "warning: %s (a rerun after a kill may repeat CSV rows)", err);
    }
    cJSON_Delete(j);
    free(was);
}

/* The backup in cb.backup_dir (latest, then the previous one), per
 * p->resume; see tlcl_resume_mode. */
tlcl_status trainer_resume(trainer *t)
{
    tlcl_train_plan *p = t->p;
    const char *dir = p->cb.backup_dir;
    if (p->resume == TLCL_RESUME_NEVER)
        return TLCL_OK;
    if (!dir[0]) {
        if (p->resume == TLCL_RESUME_REQUIRED)
            return trainer_fail(t, TLCL_ERR_ARG, "%s",
                        "--resume: callbacks.backup is off in this configuration: there is no backup to resume from");
        return TLCL_OK;
    }
    char path[2][1100], why[2][4096];
    int ok = 0, present = 0, used = 0;
    for (int i = 0; i < 2 && !ok; i++) {
        backup_path(t, path[i], sizeof path[i], i ? ".bkp" : "");
        why[i][0] = '\0';
        if (access(path[i], F_OK) != 0) {
            snprintf(why[i], sizeof why[i], "%s: no such file", path[i]);
            continue;
        }
        present++;
        TLCL_TRY(try_restore(t, path[i], &ok, why[i], sizeof why[i]));
        used = i;
        if (!ok)
            trainer_say(t, stderr, "warning: a backup is not used: %s", why[i]); /* why names the file */
    }
    if (ok) {
        trainer_say(t, stdout, "resumed from %s%s: phase %d, epoch %d, batch %d", path[used],
                    used ? (present > 1 ? " (the previous backup: the latest is not usable, see above)"
                                        : " (the previous backup: there is no latest one)") : "",
                    t->st.phase + 1, t->st.epoch + 1, t->st.batch);
        return TLCL_OK;
    }
    run_start(t);
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
            trainer_say(t, stderr, "warning: the unusable backup %s is moved aside to %s; training starts from the first "
                "epoch", dir, moved);
        else
            trainer_say(t, stderr, "warning: %s; training starts from the first epoch", err);
    }
    return TLCL_OK;
}

/* The backup files and their folder, once the run is recorded as finished. */
void tlcl_train_delete_backup(const tlcl_callbacks *cb)
{
    if (!cb->backup_dir[0] || cb->keep_backup)
        return;
    static const char *const names[] = {"latest.safetensors", "latest.safetensors.bkp", "run_start.json"};
    char path[1100];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", cb->backup_dir, names[i]);
        remove(path);
    }
    tlcl_publish_clean_stale(cb->backup_dir); /* a killed run's temporaries would keep the folder */
    rmdir(cb->backup_dir);
}

int tlcl_train_finish(const tlcl_train_plan *p, const tlcl_history *h, char *err, size_t err_len)
{
    if (p->state_path[0]) {
        tlcl_run_status st;
        memset(&st, 0, sizeof st);
        snprintf(st.reason, sizeof st.reason, "%s", h->stopped_early ? "early_stopping" : "last_epoch");
        st.phases = p->nphases;
        st.last_phase_epochs = h->last_phase_epochs;
        st.epochs_trained = h->n;
        if (tlcl_run_status_write(p->state_path, &st, err, err_len) != 0)
            return -1;
    }
    tlcl_train_delete_backup(&p->cb);
    return 0;
}
