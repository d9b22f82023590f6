/* trainer.c — the phase and callback loop (see trainer.h): phases, epochs
 * of run-layer steps, validation, the Keras callbacks (backups are
 * backup.c's). Keras semantics where tlcl mirrors Keras (epoch loss = sum of w_i l_i / N over the epoch, class-weighted training
 * accuracy, unweighted validation metrics, monitor modes, early stopping and
 * plateau rules), with one deliberate difference: a backup taken mid-epoch
 * resumes at the next batch, not at batch 0, so an interrupted run ends with
 * the same weights as an uninterrupted one. */
#include "config.h"
#include "dist.h"
#include "metrics.h"
#include "run_plan.h"
#include "trainer_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

tlcl_status trainer_fail(trainer *t, tlcl_status s, const char *fmt, const char *detail)
{
    snprintf(t->err, t->err_len, fmt, detail);
    return s;
}

static float current_lr(const trainer *t, long phase_step)
{
    const tlcl_fit_phase *ph = &t->p->phases[t->st.phase];
    if (t->st.plateau_lr > 0)
        return t->st.plateau_lr;
    return tlcl_schedule_lr(&t->p->schedule, ph->learning_rate, phase_step, t->st.epoch);
}

/* ---- one batch: the run layer's step ----------------------------------------------- */

/* Floats of one image of a batch. */
static size_t sample_floats(const trainer *t)
{
    return (size_t)t->p->model->image_h * (size_t)t->p->model->image_w * 3;
}

/* Enqueues one training step; nothing is read back (the counters and the
 * non-finite guard stay on the device until the next sync). Under MPI the
 * rank's share of the global batch, its loss divided by the global count. */
static tlcl_status train_batch(trainer *t, const tlcl_batch *b, const tlcl_tensor *features, float lr)
{
    tlcl_train_plan *p = t->p;
    int first;
    tlcl_run_input in = tlcl_batch_share(b, 1, sample_floats(t), &first);
    tlcl_step_args a = {.lr = lr, .seed = p->seed * 2654435761u + (uint32_t)t->st.step + 1u, .step = t->st.step,
                        .global_count = b->count, .first_sample = first};
    tlcl_status s = trainer_step(t, &in, features, &a);
    t->st.step++;
    return s;
}

static tlcl_status nonfinite_error(trainer *t, const tlcl_run_stats *st)
{
    if (st->nonfinite_step < 0)
        return TLCL_OK;
    snprintf(t->err, t->err_len,
             "the loss is NaN or Inf at step %ld: that update and the later ones were skipped; "
             "lower the learning rate or check the data", st->nonfinite_step);
    return TLCL_ERR_NONFINITE;
}

/* Reads this rank's counters (the one wait of the training loop): this
 * epoch's totals are the ones carried over from a resumed backup plus the
 * device's. */
static tlcl_status local_totals(trainer *t, tlcl_run_stats *st)
{
    TLCL_TRY(trainer_counters(t, st));
    st->loss_sum += t->st.loss_sum, st->samples += t->st.seen;
    st->hits += t->st.acc_hit, st->weight += t->st.acc_w;
    if (t->confusion_total) {
        size_t cc = (size_t)t->p->classes * (size_t)t->p->classes;
        for (size_t i = 0; i < cc; i++)
            t->confusion_total[i] = st->confusion[i] + t->confusion_carry[i];
        st->confusion = t->confusion_total;
    }
    return TLCL_OK;
}

/* The totals of every rank (every rank calls it at the same points). A
 * non-finite loss stops the run here, naming its step; the device skipped
 * that update and every later one. */
tlcl_status trainer_totals(trainer *t, tlcl_run_stats *st)
{
    TLCL_TRY(local_totals(t, st));
    TLCL_TRY(tlcl_run_stats_sum(st, t->confusion_total, t->err, t->err_len));
    return nonfinite_error(t, st);
}

/* ---- frozen-base features ---------------------------------------------------- */

/* Runs the base once over a loader; each sample's pooled features land in a
 * device table at its dataset position and stay there. */
static tlcl_status extract_features(trainer *t, tlcl_loader *l, tlcl_tensor *table)
{
    tlcl_model *m = t->p->model;
    tlcl_status s = tlcl_tensor_alloc(t->p->eng, table, "cached features", tlcl_loader_size(l), 1, 1, m->top.cout);
    if (s == TLCL_OK) /* each MPI rank fills its share of the rows, the others stay 0 until the sum */
        s = tlcl_tensor_fill(t->p->eng, table, 0);
    tlcl_loader_start(l, 0, 0);
    for (const tlcl_batch *b; s == TLCL_OK && (b = tlcl_loader_next(l));) {
        tlcl_run_input in = tlcl_batch_share(b, 0, sample_floats(t), NULL);
        tlcl_run_batch *rb;
        if (in.count > 0 && (s = tlcl_run_load(t->run, &in, NULL, &rb)) == TLCL_OK)
            s = tlcl_run_features(t->run, rb, table);
        if (t->p->progress)
            fprintf(stderr, "\rcomputing base features: batch %d/%d", b->index + 1, tlcl_loader_batches(l));
    }
    if (t->p->progress)
        fprintf(stderr, "\n");
    if (s == TLCL_OK)
        s = tlcl_cl_finish(tlcl_engine_cl(t->p->eng));
    if (s != TLCL_OK) {
        snprintf(t->err, t->err_len, "computing base features: %s", tlcl_run_error(t->run));
        return s;
    }
    return trainer_dist_sum_table(t, table);
}

/* A features file: "TLCLFEAT", int64 rows, int64 columns, the float32
 * table. 1: the table came from the file; 0: no file, or one that does not
 * fit (it is computed again). */
static int load_features(trainer *t, const char *path, tlcl_loader *l, tlcl_tensor *table)
{
    FILE *f = path[0] ? fopen(path, "rb") : NULL;
    if (!tlcl_dist_min(f != NULL)) { /* every rank reads the file, or every rank computes */
        if (f)
            fclose(f);
        return 0;
    }
    long long dims[2] = {0, 0};
    char magic[8];
    int rows = tlcl_loader_size(l), cols = t->p->model->top.cout, ok = 0;
    float *host = NULL;
    if (fread(magic, 1, 8, f) == 8 && memcmp(magic, "TLCLFEAT", 8) == 0 && fread(dims, sizeof dims, 1, f) == 1 &&
        dims[0] == rows && dims[1] == cols && (host = malloc((size_t)rows * (size_t)cols * sizeof *host)) &&
        fread(host, sizeof *host, (size_t)rows * (size_t)cols, f) == (size_t)rows * (size_t)cols && fgetc(f) == EOF)
        ok = tlcl_tensor_alloc(t->p->eng, table, "cached features", rows, 1, 1, cols) == TLCL_OK &&
             tlcl_tensor_upload(t->p->eng, table, host) == TLCL_OK;
    fclose(f);
    free(host);
    if (ok && !tlcl_dist_min(ok)) /* a rank that cannot read the file: every rank computes them together */
        ok = 0;
    if (!ok && table->buf)
        tlcl_tensor_release(t->p->eng, table);
    return ok;
}

/* Publishes the table as path (tlcl_publish); a failure
 * only costs the next run the computation, so it is a note in the log. */
static void save_features(trainer *t, const char *path, const tlcl_tensor *table)
{
    if (!path[0] || !tlcl_dist_is_root())
        return;
    size_t n = tlcl_tensor_count(table);
    float *host = malloc(n * sizeof *host);
    long long dims[2] = {table->n, table->c};
    char why[4400] = "out of host memory";
    tlcl_publish f;
    int ok = host && tlcl_tensor_download(t->p->eng, table, host) == TLCL_OK &&
             tlcl_publish_open(&f, path, why, sizeof why) == TLCL_OK;
    if (ok)
        ok = tlcl_publish_commit(&f, fwrite("TLCLFEAT", 1, 8, f.f) == 8 && fwrite(dims, sizeof dims, 1, f.f) == 1 &&
                                         fwrite(host, sizeof *host, n, f.f) == n,
                                 why, sizeof why) == TLCL_OK;
    if (!ok && t->p->log)
        fprintf(t->p->log, "note: cannot keep the base features (the next run computes them again): %s\n", why);
    free(host);
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
    tlcl_loader *l[2] = {t->p->train, t->p->val};
    tlcl_tensor *table[2] = {&t->features_train, &t->features_val};
    int loaded = 0;
    for (int i = 0; i < 2 && l[i]; i++) {
        if (load_features(t, t->p->features_file[i], l[i], table[i])) {
            loaded++;
            continue;
        }
        TLCL_TRY(extract_features(t, l[i], table[i]));
        save_features(t, t->p->features_file[i], table[i]);
    }
    if (t->p->log && loaded)
        fprintf(t->p->log, "base features loaded from %s%s in %.1f s\n", t->p->features_file[0],
                loaded > 1 ? " (and the validation ones)" : "", now_s() - t0);
    else if (t->p->log)
        fprintf(t->p->log, "base features computed once in %.1f s\n", now_s() - t0);
    return TLCL_OK;
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

/* A callback's line about this epoch, printed after the epoch's own line
 * (as Keras prints "Epoch 7: val_loss improved from ..."). */
static void note(trainer *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(trainer *t, const char *fmt, ...)
{
    if (t->nnotes == (int)(sizeof t->notes / sizeof t->notes[0]))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->notes[t->nnotes++], sizeof t->notes[0], fmt, ap);
    va_end(ap);
}

/* The callbacks' lines noted so far, to the console and the log. */
static void flush_notes(trainer *t)
{
    for (int i = 0; i < t->nnotes; i++)
        trainer_say(t, stdout, "%s", t->notes[i]);
    t->nnotes = 0;
}

/* "0.8123", or "inf" / "-inf" before any best (Keras's first "improved from inf"). */
static const char *best_text(const monitor *m, char *buf, size_t len)
{
    if (m->has_best)
        snprintf(buf, len, "%.5g", m->best);
    else
        snprintf(buf, len, "%s", m->mode < 0 ? "inf" : "-inf");
    return buf;
}

/* ModelCheckpoint at an epoch's end (batch 0) or after batch `batch` of it
 * (save_freq in batches: logs then hold the training side's values). */
static tlcl_status checkpoint_callback(trainer *t, const tlcl_logs *logs, int batch)
{
    const tlcl_callbacks *cb = &t->p->cb;
    const char *key = cb->checkpoint_monitor;
    double v;
    char was[32];
    if (!cb->checkpoint_path[0])
        return TLCL_OK;
    int have = tlcl_logs_get(logs, key, &v), epoch = t->st.epoch + 1;
    char path[1024], ckpt[1100], why[300], when[48];
    if (batch > 0)
        snprintf(when, sizeof when, "epoch %d batch %d", epoch, batch);
    else
        snprintf(when, sizeof when, "epoch %d", epoch);
    const char *keys[TLCL_LOGS_MAX];
    for (int i = 0; i < logs->n; i++)
        keys[i] = logs->key[i];
    if (tlcl_name_template_fill(cb->checkpoint_path, epoch, keys, logs->value, logs->n, path, sizeof path, why,
                                sizeof why) != 0)
        return trainer_fail(t, TLCL_ERR_ARG, "train.artefacts.best_model: %s", why);
    if (cb->save_best_only && have && !improved(&t->st.ckpt, v, 0)) {
        note(t, "%s: %s did not improve from %s", when, key, best_text(&t->st.ckpt, was, sizeof was));
        return TLCL_OK;
    }
    if (have) {
        best_text(&t->st.ckpt, was, sizeof was);
        t->st.ckpt.best = v, t->st.ckpt.has_best = 1, t->st.ckpt.best_epoch = epoch;
        t->st.ckpt.best_phase = t->st.phase;
        if (cb->save_best_only)
            note(t, "%s: %s improved from %s to %.5g, saved to %s", when, key, was, v, path);
        else
            note(t, "%s: %s %.5g, saved to %s", when, key, v, path);
    } else {
        note(t, "%s: saved to %s (warning: the monitor %s is not logged)", when, path, key);
    }
    tlcl_plan_checkpoint_of(path, ckpt, sizeof ckpt);
    snprintf(t->best_model, sizeof t->best_model, "%s", path);
    if (!tlcl_dist_is_root()) /* rank 0 alone writes files */
        return TLCL_OK;
    TLCL_TRY(tlcl_model_save(t->p->model, ckpt, t->p->class_names, t->p->classes, t->err, t->err_len));
    if (strcmp(ckpt, path) != 0) /* X.weights.h5: the Keras file beside the checkpoint */
        TLCL_TRY(tlcl_model_save_keras(t->p->model, path, t->err, t->err_len));
    return TLCL_OK;
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
        t->st.es.best = v, t->st.es.has_best = 1, t->st.es_wait = 0, t->st.es.best_epoch = t->st.epoch + 1;
        if (cb->es_restore_best)
            TLCL_TRY(snapshot_weights(t));
        return TLCL_OK;
    }
    if (t->st.es_wait >= cb->es_patience && t->st.epoch > 0) {
        t->st.es_stop = 1;
        char best[32];
        note(t, "epoch %d: early stopping: %s did not improve from %s (epoch %d) for %d epochs", t->st.epoch + 1,
             cb->es_monitor, best_text(&t->st.es, best, sizeof best), t->st.es.best_epoch, t->st.es_wait);
    }
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
        note(t, "epoch %d: ReduceLROnPlateau reducing the learning rate from %g to %g (%s did not improve for %d "
             "epochs)", t->st.epoch + 1, lr_used, t->st.plateau_lr, s->monitor, s->patience);
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
    flush_notes(t);
}

static tlcl_status epoch_end(trainer *t, float lr_used)
{
    tlcl_logs logs = {0};
    tlcl_run_stats st;
    TLCL_TRY(trainer_totals(t, &st));
    TLCL_TRY(trainer_dist_average_state(t)); /* before validation and the saves read them */
    /* the training loop's own rate, loader included, validation excluded */
    double dt = now_s() - t->t_epoch;
    t->train_rate = dt > 0 ? (st.samples - t->st.seen) / dt : 0;
    tlcl_logs_set(&logs, "loss", st.samples > 0 ? st.loss_sum / st.samples : 0);
    tlcl_logs_set(&logs, "accuracy", st.weight > 0 ? st.hits / st.weight : 0);
    if (t->p->train_metrics) /* from the device's confusion counts of the epoch's training steps */
        t->p->train_metrics(t->p->metrics_ctx, st.confusion, t->p->classes, &logs);
    TLCL_TRY(validate(t, &logs));
    tlcl_logs_set(&logs, "learning_rate", lr_used);
    if (!t->st.ckpt.mode)
        t->st.ckpt.mode = monitor_mode(t->p->cb.checkpoint_monitor, t->p->cb.checkpoint_mode);
    if (!t->p->cb.checkpoint_every_batches) /* Keras's save_freq "epoch"; else the batches save */
        TLCL_TRY(checkpoint_callback(t, &logs, 0));
    TLCL_TRY(early_stopping(t, &logs));
    reduce_on_plateau(t, &logs, lr_used);
    if (tlcl_history_add(t->h, &logs, t->st.epoch) != 0)
        return TLCL_ERR_OOM;
    print_epoch(t, &logs, t->p->phases[t->st.phase].epochs);
    /* the programs compiled so far into the disk cache (once each): a run
     * stopped later still leaves the next one a warm start */
    tlcl_cl_save_programs(tlcl_engine_cl(t->p->eng));
    if (t->p->on_epoch_end)
        t->p->on_epoch_end(t->p->epoch_ctx, t->st.phase, t->st.epoch, &logs);
    t->st.epoch++;
    t->st.batch = 0;
    t->st.loss_sum = t->st.seen = t->st.acc_hit = t->st.acc_w = 0;
    memset(t->confusion_carry, 0, (size_t)t->p->classes * (size_t)t->p->classes * sizeof *t->confusion_carry);
    TLCL_TRY(trainer_counters_reset(t));
    return trainer_backup_save(t);
}

/* ---- the loops ------------------------------------------------------------------ */

/* How often the training loop reads the counters: each read waits for the
 * device, so at most once a second (for the progress line and to stop
 * promptly on a NaN) and at the epoch's end. */
#define SYNC_SECONDS 1.0

/* From this rank's counters alone: it runs when a second has passed, a
 * moment that differs between MPI ranks, so it makes no collective call. */
static tlcl_status progress_line(trainer *t, int nb, double t0, int done)
{
    tlcl_run_stats st;
    TLCL_TRY(local_totals(t, &st));
    TLCL_TRY(nonfinite_error(t, &st));
    if (!t->p->progress)
        return TLCL_OK;
    double el = now_s() - t0, per = done > 0 ? el / done : 0; /* seconds per batch */
    fprintf(stderr, "\r\033[Kphase %d epoch %d batch %d/%d loss %.4f accuracy %.4f %.1f img/s ETA %.0f s",
            t->st.phase + 1, t->st.epoch + 1, t->st.batch, nb, st.samples > 0 ? st.loss_sum / st.samples : 0,
            st.weight > 0 ? st.hits / st.weight : 0, el > 0 ? (st.samples - t->st.seen) / el : 0,
            per * (nb - t->st.batch));
    return TLCL_OK;
}

/* ModelCheckpoint with save_freq in batches: the epoch's training values so
 * far (as Keras's batch logs, running means), and the batch (1-based). */
static tlcl_status batch_checkpoint(trainer *t)
{
    tlcl_logs logs = {0};
    tlcl_run_stats st;
    TLCL_TRY(trainer_totals(t, &st));
    TLCL_TRY(trainer_dist_average_state(t));
    tlcl_logs_set(&logs, "loss", st.samples > 0 ? st.loss_sum / st.samples : 0);
    tlcl_logs_set(&logs, "accuracy", st.weight > 0 ? st.hits / st.weight : 0);
    if (t->p->train_metrics)
        t->p->train_metrics(t->p->metrics_ctx, st.confusion, t->p->classes, &logs);
    tlcl_logs_set(&logs, "batch", t->st.batch);
    TLCL_TRY(checkpoint_callback(t, &logs, t->st.batch));
    if (t->p->progress)
        fprintf(stderr, "\r\033[K");
    flush_notes(t); /* now, not after the epoch's line: a save is an event of its batch */
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
    TLCL_TRY(trainer_counters_reset(t));
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
        if (p->cb.checkpoint_every_batches > 0 && t->st.batch % p->cb.checkpoint_every_batches == 0)
            TLCL_TRY(batch_checkpoint(t));
        if (p->cb.backup_every_batches > 0 && t->st.batch % p->cb.backup_every_batches == 0 && t->st.batch < nb)
            TLCL_TRY(trainer_backup_save(t));
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
    t->st.es = (monitor){.mode = monitor_mode(p->cb.es_monitor, p->cb.es_mode)};
    t->st.rlr = (monitor){.mode = monitor_mode(p->schedule.monitor, TLCL_MON_AUTO)};
    free(t->best_weights);
    t->best_weights = NULL;
    return ensure_features(t);
}

/* How the last phase ended goes to the history (tlcl_train_finish records it). */
static tlcl_status run_phases(trainer *t)
{
    tlcl_train_plan *p = t->p;
    int resumed = t->st.epoch > 0 || t->st.batch > 0, last_epochs = 0, stopped = 0;
    for (; t->st.phase < p->nphases; t->st.phase++, t->st.epoch = 0, t->st.batch = 0, resumed = 0) {
        TLCL_TRY(phase_begin(t, !resumed));
        TLCL_TRY(trainer_group_phase(t));
        while (t->st.epoch < p->phases[t->st.phase].epochs && !t->st.es_stop)
            TLCL_TRY(run_epoch(t));
        last_epochs = t->st.epoch, stopped = t->st.es_stop;
        if (p->cb.es_restore_best && t->best_weights)
            trainer_say(t, stdout, "phase %d: restoring the weights of epoch %d, the best %s (%.5g)", t->st.phase + 1,
                        t->st.es.best_epoch, p->cb.es_monitor, t->st.es.best);
        TLCL_TRY(restore_best(t));
    }
    t->h->stopped_early = stopped, t->h->last_phase_epochs = last_epochs;
    const monitor *best = &t->st.ckpt;
    snprintf(p->best_model, sizeof p->best_model, "%s", t->best_model);
    if (p->cb.checkpoint_path[0] && p->cb.save_best_only && best->has_best)
        trainer_say(t, stdout, "best model: phase %d epoch %d, %s %.5g, in %s", best->best_phase + 1, best->best_epoch,
                    p->cb.checkpoint_monitor, best->best, t->best_model);
    return TLCL_OK;
}

tlcl_status tlcl_train_run(tlcl_train_plan *p, tlcl_history *h, char *err, size_t err_len)
{
    trainer t;
    memset(&t, 0, sizeof t);
    t.p = p, t.h = h, t.err = err, t.err_len = err_len;
    memset(h, 0, sizeof *h);
    if (p->nphases < 1 || p->nphases > TLCL_PHASES_MAX)
        return trainer_fail(&t, TLCL_ERR_ARG, "%s",
                    "'phases': a run needs between 1 and " TLCL_LIMIT_STR(TLCL_PHASES_MAX) " phases");
    t.st.ckpt.mode = monitor_mode(p->cb.checkpoint_monitor, p->cb.checkpoint_mode);
    tlcl_status s = tlcl_run_create(&t.run, p->model, &p->loss, err, err_len);
    if (s != TLCL_OK)
        return s;
    size_t cc = (size_t)p->classes * (size_t)p->classes;
    t.confusion_carry = calloc(cc ? cc : 1, sizeof *t.confusion_carry);
    t.confusion_total = calloc(cc ? cc : 1, sizeof *t.confusion_total);
    if (!t.confusion_carry || !t.confusion_total) {
        free(t.confusion_carry), free(t.confusion_total), tlcl_run_free(t.run);
        return trainer_fail(&t, TLCL_ERR_OOM, "%s", "out of host memory for the training confusion counts");
    }
    s = trainer_dist_check(&t);
    if (s == TLCL_OK)
        s = trainer_group_open(&t); /* the local replicas; across ranks through its outer reducer */
    if (s == TLCL_OK && !t.group && tlcl_dist_size() > 1) /* one device per rank: the ranks' sums */
        trainer_dist_single_device(&t);
    if (s == TLCL_OK)
        s = trainer_dist_resume(&t);
    if (s == TLCL_OK)
        s = run_phases(&t);
    trainer_group_close(&t);
    tlcl_tensor_release(p->eng, &t.features_train);
    tlcl_tensor_release(p->eng, &t.features_val);
    tlcl_run_free(t.run);
    free(t.best_weights);
    free(t.confusion_carry), free(t.confusion_total);
    return s;
}
