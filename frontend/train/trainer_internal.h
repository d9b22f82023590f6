/* trainer_internal.h — the trainer's state, shared by trainer.c (the phase
 * and callback loop) and backup.c (what a backup carries). */
#ifndef TLCL_TRAINER_INTERNAL_H
#define TLCL_TRAINER_INTERNAL_H

#include "run_status.h"
#include "train_state.h"
#include "trainer.h"

#include <stdio.h>

typedef struct monitor {
    int mode;          /* resolved: -1 min, +1 max */
    double best;
    int has_best;
    int best_epoch;    /* 1-based epoch of the phase that gave best (0: none) */
    int best_phase;    /* 0-based phase of that epoch */
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
    tlcl_group *group;                    /* several devices (replicas.c); NULL: run alone */
    tlcl_run *replica_runs[TLCL_GROUP_MAX]; /* [0] is run */
    int balance_steps;                    /* steps over which the group measures the replicas' speeds */
    int buckets_said;                     /* the gradient buckets' overlap was reported (once a run) */
    long group_steps;                     /* steps through the group in this process */
    tlcl_tensor features_train, features_val; /* cached base features [n, C] on the device */
    float *best_weights;                  /* early stopping's snapshot */
    char *err;
    size_t err_len;
    double t_epoch;
    double train_rate;                    /* images per second of this epoch's training loop */
    double *confusion_carry;              /* [classes^2] this epoch's training confusion counts folded at a
                                             backup (or restored from one), added to the device's */
    double *confusion_total;              /* [classes^2] carry + device: what trainer_totals returns */
    char notes[4][640];                   /* the callbacks' lines of this epoch, printed after its line */
    char best_model[1024];                /* the last file ModelCheckpoint saved ("" none): the best one */
    int nnotes;
} trainer;

/* This epoch's totals: the device counters plus those carried over from a
 * resumed backup (confusion counts included: st->confusion then points at
 * t->confusion_total); a non-finite loss is an error naming its step. */
tlcl_status trainer_totals(trainer *t, tlcl_run_stats *st);
/* Writes the message (fmt with one %s) into the caller's buffer. */
tlcl_status trainer_fail(trainer *t, tlcl_status s, const char *fmt, const char *detail);
/* A line for the console (stdout or stderr) and the run's log. */
void trainer_say(trainer *t, FILE *console, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* train_dist.c: the trainer across MPI ranks (see there) */
tlcl_status trainer_dist_check(trainer *t);
void trainer_dist_single_device(trainer *t);
tlcl_status trainer_dist_average_state(trainer *t);
void trainer_dist_carry_on_root(trainer *t);
tlcl_status trainer_dist_resume(trainer *t);
tlcl_status trainer_dist_sum_table(trainer *t, tlcl_tensor *table);
/* replicas.c: the training step and its counters on one device or on a
 * group of replicas (p->replicas) */
tlcl_status trainer_group_open(trainer *t);
void trainer_group_close(trainer *t);
tlcl_status trainer_step(trainer *t, const tlcl_run_input *in, const tlcl_tensor *features, const tlcl_step_args *a);
tlcl_status trainer_counters(trainer *t, tlcl_run_stats *st);
tlcl_status trainer_counters_reset(trainer *t);
/* A phase's start: the replicas take replica 0's trainable flags, parameters and moments. */
tlcl_status trainer_group_phase(trainer *t);

/* backup.c */
tlcl_status trainer_backup_save(trainer *t);
/* Restores the latest usable backup as p->resume asks (see tlcl_resume_mode). */
tlcl_status trainer_resume(trainer *t);

#endif
