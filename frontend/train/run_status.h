/* run_status.h — what outlives a training run in its folder: the record
 * that it finished (run_state.json in train.artefacts.base_dir, written when
 * training completes and before the backup is deleted, so a rerun knows
 * there is nothing left to train), and moving an old backup or record aside
 * (renamed with a time stamp, never deleted) when a run starts over. */
#ifndef TLCL_RUN_STATUS_H
#define TLCL_RUN_STATUS_H

#include <stddef.h>

#define TLCL_RUN_STATE_FILE "run_state.json"

typedef struct tlcl_run_status {
    char reason[32];       /* "last_epoch" or "early_stopping" (of the last phase) */
    int phases;            /* phases of the run */
    int last_phase_epochs; /* epochs the last phase ran */
    int epochs_trained;    /* epochs in the run's history, all phases */
    char finished_at[32];  /* local time, YYYY-MM-DD HH:MM:SS */
} tlcl_run_status;

/* Writes {"state": "finished", ...} atomically: a temporary file in the same
 * directory, fsync, rename, fsync of the directory. finished_at is filled
 * with the current time when empty. 0, or -1 with err naming the path. */
int tlcl_run_status_write(const char *path, const tlcl_run_status *st, char *err, size_t len);

/* 1: the file records a finished run (*st filled); 0: there is no file;
 * -1: it cannot be read or is malformed (err names the file and the key). */
int tlcl_run_status_read(const char *path, tlcl_run_status *st, char *err, size_t len);

/* Renames path (a file or a directory) to path.YYYY-MM-DD_HH-MM-SS (the
 * current local time; -2, -3, ... appended when taken). 1: moved, *moved_to
 * holds the new name; 0: nothing at path; -1: error (err names both paths). */
int tlcl_move_aside(const char *path, char *moved_to, size_t moved_len, char *err, size_t len);

#define TLCL_RUN_LOCK_FILE ".tlcl.lock"

/* One run per folder: an exclusive flock (LOCK_EX | LOCK_NB) on
 * dir/.tlcl.lock, which then names the holder ("pid N on host H"). The lock
 * lasts while *fd is open (tlcl_run_unlock, or the process's end, kill -9
 * included: the kernel drops it). 0, or -1 with err naming the folder and
 * the holder when another process has it (or the reason it cannot be
 * taken). */
int tlcl_run_lock(const char *dir, int *fd, char *err, size_t len);
void tlcl_run_unlock(int fd);

#endif
