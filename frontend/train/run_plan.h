/* run_plan.h — from the configuration to the run's settings (see run_plan.c). */
#ifndef TLCL_RUN_PLAN_H
#define TLCL_RUN_PLAN_H

#include "augment.h"
#include "config.h"
#include "evaluate.h"
#include "trainer.h"

tlcl_model_options tlcl_plan_model_options(const tlcl_config *c, int classes);
/* <TLCL_WEIGHTS_DIR or ~/.cache/tlcl/weights>/<arch>-imagenet.safetensors */
void tlcl_plan_default_weights(const char *arch, char *dst, size_t len);
/* Pretrained base weights per model.weights (the new head keeps its init). */
tlcl_status tlcl_plan_load_weights(const tlcl_config *c, tlcl_model *m, char *err, size_t len);
/* The weights the test evaluation uses: the best checkpoint
 * (train.artefacts.best_model) when model_checkpoint is on and the file
 * exists (*loaded = 1), else the weights in hand (*loaded = 0). A best model
 * that exists but cannot be opened or does not fit the model is an error
 * naming the file and what to do. */
/* The tlcl checkpoint of a best_model path: itself, or X.safetensors for X.weights.h5 or X.keras (the
 * Keras file is written beside it). */
void tlcl_plan_checkpoint_of(const char *best_model, char *dst, size_t len);
/* Loads the best model: saved (the file ModelCheckpoint last wrote, "" or NULL: the configured one). */
tlcl_status tlcl_plan_load_best(const tlcl_config *c, const char *saved, tlcl_model *m, int *loaded, char *err,
                                size_t len);
tlcl_augment tlcl_plan_augment(const tlcl_config *c);
/* Fills everything of the plan but the model, engine, loaders and hooks
 * (p->model must be set: phases resolve block names against it). */
tlcl_status tlcl_plan_fill(const tlcl_config *c, tlcl_train_plan *p, long steps_per_epoch, char *err, size_t len);
void tlcl_plan_metrics(const tlcl_config *c, const char *const *class_names, tlcl_eval_metrics *m);
/* metric_groups resolved against the data's class names; an unknown class
 * is an error naming the group, the class and the classes there are. */
tlcl_status tlcl_plan_groups(const tlcl_config *c, const char *const *class_names, int classes, metrics_groups *g,
                             char *err, size_t len);

/* <train.artefacts.base_dir>/run_state.json: the record that the run
 * finished (run_status.h). */
void tlcl_plan_state_path(const tlcl_config *c, char *dst, size_t len);

/* How `tlcl train` starts: automatic resume from a backup (the default, as
 * Keras's BackupAndRestore), --resume (a backup is required) or --fresh. */
typedef enum tlcl_start_mode { TLCL_START_AUTO = 0, TLCL_START_RESUME, TLCL_START_FRESH } tlcl_start_mode;

/* Before a run, on the host, with messages to out: --fresh moves the backup
 * directory (when it holds anything) and the run state aside, renamed with
 * a time stamp; otherwise a run state that records a finished run sets
 * *finished (nothing is left to train; with --resume too), and --resume
 * without a backup file to resume from (or with callbacks.backup off) is an
 * error naming the directory. A run state that cannot be read is an error
 * naming the file. */
/* Takes the run folder (train.artefacts.base_dir) for this process
 * (tlcl_run_lock: a second run on it stops here, naming the holder), then
 * removes the temporaries killed runs left in the folders a run writes
 * (tlcl_publish_clean_stale), saying so on out. *lock_fd: for
 * tlcl_run_unlock at the end. */
tlcl_status tlcl_plan_take_folder(const tlcl_config *c, int *lock_fd, FILE *out, char *err, size_t len);

tlcl_status tlcl_plan_start(const tlcl_config *c, tlcl_start_mode mode, int *finished, FILE *out, char *err,
                            size_t len);

#endif
