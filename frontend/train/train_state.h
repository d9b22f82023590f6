/* train_state.h — the training state a backup carries (JSON text in the
 * checkpoint metadata "training_state", written by trainer.c): its keys,
 * checked one by one before a backup is used, so that a damaged or foreign
 * backup is refused with the key at fault instead of being half restored.
 *
 * Keys: phase, epoch, batch (the position of the next batch), rlr_wait,
 * rlr_cooldown, es_wait (non-negative integers), step, iterations
 * (non-negative integers), loss_sum (a finite number), seen, acc_hit, acc_w,
 * plateau_lr (finite, non-negative), ckpt, es, rlr (monitors: {mode: -1, 0
 * or 1, best: a number or null, has_best: a boolean}), history (a list of
 * objects of numbers or nulls, each with a non-negative integer "__epoch"),
 * es_stop (a boolean; optional: older backups lack it) and confusion (the
 * epoch's training confusion counts so far, classes x classes non-negative
 * numbers; optional: older backups lack it, and then the resumed epoch's
 * training balanced accuracy counts the batches after the resume only). */
#ifndef TLCL_TRAIN_STATE_H
#define TLCL_TRAIN_STATE_H

#include <cJSON.h>
#include <stddef.h>

/* 0 when every key is there with its type and range; -1 otherwise, with err
 * naming the key, what it holds and what was expected. nphases bounds
 * "phase"; batches_per_epoch (> 0) bounds "batch" (0: not checked);
 * logs_max and key_max bound the history rows (keys per row, key length). */
int tlcl_train_state_check(const cJSON *state, int nphases, int batches_per_epoch, int logs_max, int key_max,
                           char *err, size_t len);

#endif
