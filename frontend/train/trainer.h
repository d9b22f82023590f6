/* trainer.h — the fit loop: phases (freezing, learning rate, epochs),
 * batches from the loaders through the model on the device, the loss with
 * class weights, the optimizer and schedule, validation, and the Keras
 * callbacks (best-model checkpoint, backup and restore, early stopping,
 * reduce-on-plateau, stop on NaN), with per-epoch logs. */
#ifndef TLCL_TRAINER_H
#define TLCL_TRAINER_H

#include "batch_loader.h"
#include "run.h"
#include "tlcl_limits.h"

#include <stdio.h>

enum { TLCL_LOGS_MAX = 96 }; /* TLCL_PHASES_MAX: tlcl_limits.h, shared with the configuration */

/* One epoch's logs: Keras's logs dict (loss, accuracy, val_*, learning_rate, ...). */
typedef struct tlcl_logs {
    int n;
    char key[TLCL_LOGS_MAX][48];
    double value[TLCL_LOGS_MAX];
} tlcl_logs;

void tlcl_logs_set(tlcl_logs *l, const char *key, double value);
/* 1 and *value when present. */
int tlcl_logs_get(const tlcl_logs *l, const char *key, double *value);

typedef enum tlcl_lr_kind {
    TLCL_LR_CONSTANT = 0, TLCL_LR_STEP, TLCL_LR_EXPONENTIAL, TLCL_LR_COSINE, TLCL_LR_PLATEAU
} tlcl_lr_kind;
typedef enum tlcl_monitor { TLCL_MON_AUTO = 0, TLCL_MON_MIN, TLCL_MON_MAX } tlcl_monitor;

typedef struct tlcl_schedule {
    tlcl_lr_kind kind;
    int step_epochs;          /* step: every N epochs multiply by factor */
    float factor;             /* step and plateau */
    long decay_steps;         /* exponential, cosine (in optimizer steps) */
    float decay_rate;         /* exponential */
    int staircase;            /* exponential */
    float alpha;              /* cosine: floor fraction */
    long warmup_steps;        /* cosine */
    float warmup_target;      /* cosine: 0 = none */
    char monitor[64];         /* plateau */
    int patience, cooldown;   /* plateau */
    float min_delta, min_lr;  /* plateau */
} tlcl_schedule;

/* The learning rate at optimizer step `step` (of the phase) and epoch under
 * the schedule, from the phase's base rate (schedule.c). */
float tlcl_schedule_lr(const tlcl_schedule *s, float base, long step, int epoch);

typedef struct tlcl_fit_phase {
    char name[64];
    int epochs;
    float learning_rate;
    int first_trainable_block;  /* 0: all; nblocks + 1: base frozen */
    int bn_frozen;              /* keep every BatchNorm in inference mode */
} tlcl_fit_phase;

typedef struct tlcl_callbacks {
    /* best-model checkpoint */
    char checkpoint_path[1024];  /* "" = none */
    char checkpoint_monitor[64];
    tlcl_monitor checkpoint_mode;
    int save_best_only;
    int checkpoint_every_batches; /* 0 = at epoch ends (Keras save_freq "epoch") */
    /* backup and restore */
    char backup_dir[1024];       /* "" = none */
    int backup_every_batches;    /* 0 = at epoch ends only */
    int keep_backup;             /* keep it after a successful run */
    int double_checkpoint;
    /* early stopping */
    int early_stopping;
    char es_monitor[64];
    tlcl_monitor es_mode;
    float es_min_delta;
    int es_patience, es_start_from_epoch, es_restore_best;
    int terminate_on_nan;        /* always on: a NaN loss stops the run (the update is skipped) */
} tlcl_callbacks;

/* What the trainer does with a backup in cb.backup_dir when it starts. */
typedef enum tlcl_resume_mode {
    TLCL_RESUME_NEVER = 0,   /* start from the first epoch */
    TLCL_RESUME_AUTO = 1,    /* resume from a usable backup; an unusable one is reported, moved aside, and the
                                run starts over (Keras's BackupAndRestore) */
    TLCL_RESUME_REQUIRED = 2 /* resume, or fail when no backup is usable (--resume) */
} tlcl_resume_mode;

/* Computes the validation metrics of one epoch from probabilities. */
typedef void (*tlcl_metrics_fn)(void *ctx, const float *probs, const int *labels, int n, int classes,
                                const char *prefix, tlcl_logs *logs);
/* Computes the training metrics of one epoch from the confusion counts of
 * its steps (the device keeps no scores). */
typedef void (*tlcl_train_metrics_fn)(void *ctx, const double *confusion, int classes, tlcl_logs *logs);

typedef struct tlcl_train_plan {
    tlcl_model *model;
    tlcl_engine *eng;
    /* data parallelism (train.config.devices): the models of the other
     * devices (replicas 1..n; p->model is replica 0, which validates and
     * saves), allocated with one parameter layout (tlcl_replicas_open) */
    tlcl_model *const *replicas;
    int nreplicas;
    int sync_batchnorm;
    size_t bucket_floats;            /* train.config.bucket_mb in floats */
    tlcl_loader *train, *val;       /* val may be NULL */
    int classes;
    const char *const *class_names;
    tlcl_loss_spec loss;             /* validation uses it too, without class weights (Keras) */
    tlcl_optimizer optimizer;        /* type and hyper-parameters; state is per phase */
    tlcl_schedule schedule;
    tlcl_fit_phase phases[TLCL_PHASES_MAX];
    int nphases;
    tlcl_callbacks cb;
    int cache_features;              /* frozen base, no augmentation: features once, head trains on them */
    /* with cache_features: files that keep the training [0] and validation
     * [1] features for later runs ("" = none; named by what they depend
     * on, see cmd_train.c): read when they fit, else computed and written */
    char features_file[2][1100];
    uint32_t seed;
    int resume;                      /* tlcl_resume_mode */
    char state_path[1100];           /* run_state.json, written when training completes ("" = none) */
    char best_model[1024];           /* out: the checkpoint ModelCheckpoint last saved ("" = none) */
    long long csv_base;              /* in/out: bytes of the CSV log before this run's rows (CSVLogger
                                        append: true); a resumed backup restores the value of the run's start */
    int progress;                    /* progress bar on a terminal */
    FILE *log;                       /* also receives the per-epoch lines (may be NULL) */
    tlcl_metrics_fn metrics;         /* extra validation metrics (may be NULL) */
    tlcl_train_metrics_fn train_metrics; /* the same on the training side, from confusion counts (may be NULL) */
    void *metrics_ctx;               /* of both */
    /* called after each epoch's logs are complete (CSV logger, plots) */
    void (*on_epoch_end)(void *ctx, int phase, int epoch, const tlcl_logs *logs);
    void *epoch_ctx;
} tlcl_train_plan;

typedef struct tlcl_history {
    int n, cap;
    tlcl_logs *epochs;               /* one per completed epoch, in order */
    int *epoch_index;                /* 0-based epoch within its phase */
    int stopped_early;               /* early stopping ended the last phase (tlcl_train_finish records it) */
    int last_phase_epochs;           /* epochs the last phase ran */
} tlcl_history;

/* Appends an epoch's logs; -1 when out of memory (logs.c). */
int tlcl_history_add(tlcl_history *h, const tlcl_logs *l, int epoch);
void tlcl_history_free(tlcl_history *h);

/* Runs every phase. On success the model holds the final weights (or the
 * best ones when early stopping restores them). A backup is validated key by
 * key (train_state.h) and tensor by tensor before it is used; one that is
 * not used is reported on stderr and in the log with the file and the key or
 * tensor at fault. The backup stays: the caller writes the run's artefacts
 * (final model, histories, plots, test metrics), then tlcl_train_finish. */
tlcl_status tlcl_train_run(tlcl_train_plan *p, tlcl_history *h, char *err, size_t err_len);
/* After every artefact of the run is written: records that the run
 * finished (p->state_path: a rerun then trains nothing more), then deletes
 * the backup (unless cb.keep_backup). A kill before this point leaves the
 * backup, and the rerun resumes from it and writes the artefacts again.
 * 0, or -1 with err naming the run state file (the backup is kept). */
int tlcl_train_finish(const tlcl_train_plan *p, const tlcl_history *h, char *err, size_t err_len);
/* Deletes the backup (unless cb->keep_backup): tlcl_train_finish's last
 * step, also what a rerun does when a kill came between the two. */
void tlcl_train_delete_backup(const tlcl_callbacks *cb);

/* Runs the model over a loader through the run's inference pass and returns
 * probabilities [n, classes] (malloc'd) with the labels in loader order;
 * stats (may be NULL) receives the run's counters over the loader (the
 * loss is the run's, unweighted; its confusion is NULL: count it from the
 * probabilities). Under MPI every rank runs its share of each batch and
 * gets every row and the counters of every rank. features: a device table of the loader's
 * base features (NULL: images). */
/* A loader's batch as the run layer's input (with its class weights, or
 * none); predict_loader.c. */
tlcl_run_input tlcl_batch_input(const tlcl_batch *b, int with_weights);
/* This MPI rank's contiguous share of a global batch (the whole batch with
 * one rank; count 0 when the batch has fewer samples than ranks);
 * sample_floats: floats per image; *first (may be NULL): the share's first
 * sample in the batch (train_dist.c). */
tlcl_run_input tlcl_batch_share(const tlcl_batch *b, int with_weights, size_t sample_floats, int *first);
/* The counters of every MPI rank summed (a no-op with one rank): loss sum,
 * samples, hits, weight, the first non-finite step of any rank, and the
 * confusion counts into `confusion` ([classes^2], may be st->confusion),
 * which st->confusion then points at. */
tlcl_status tlcl_run_stats_sum(tlcl_run_stats *st, double *confusion, char *err, size_t err_len);
tlcl_status tlcl_predict_loader(tlcl_run *r, tlcl_loader *l, const tlcl_tensor *features, float **probs,
                                int **labels, int *n, tlcl_run_stats *stats, char *err, size_t err_len);

#endif
