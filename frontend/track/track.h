/* track.h — MLflow tracking of a training run through MLflow's REST API
 * (api/2.0/mlflow/..., libcurl), with a journal that makes it robust.
 *
 * Every record (run start, parameters, tags, one epoch's metrics, an
 * artefact, run end) is first appended to the journal
 * RUN_DIR/tracking/journal.jsonl — one JSON object a line, each with a
 * sequence number ("seq") and the local run id ("run"), written with one
 * write() and fsync'd — and then sent. What was sent is remembered in
 * RUN_DIR/tracking/sync_state.json (the last sent seq and the MLflow run id
 * of each local run; replaced atomically after each record), so a record
 * is sent once: by the run itself while the server answers, otherwise by
 * `tlcl track sync RUN_DIR` later. When the server cannot be reached the
 * tracker prints one warning and stops trying for the rest of the run;
 * training never fails because of tracking.
 *
 * A run may be nested under a parent run (a grid's runs under the grid's
 * run): its start record refers to the parent's journal, and the parent's
 * MLflow run id is resolved when the start is sent (track_parent.c).
 *
 * Files: track_rest.c (the REST client), track_journal.c (the journal and
 * the sync state), track_params.c (the effective configuration as flat
 * parameters), track_parent.c (the parent run's id), track_run.c (the
 * tracker and the sync). */
#ifndef TLCL_TRACK_H
#define TLCL_TRACK_H

#include "tlcl_cl.h"

#include <stddef.h>
#include <stdio.h>

/* MLflow's limits (mlflow/utils/validation.py). */
enum {
    TLCL_MLF_KEY_MAX = 250,        /* parameter, metric and tag keys */
    TLCL_MLF_PARAM_VALUE_MAX = 6000,
    TLCL_MLF_TAG_VALUE_MAX = 5000,
    TLCL_MLF_BATCH_PARAMS = 100,   /* per runs/log-batch */
    TLCL_MLF_BATCH_METRICS = 1000,
};

typedef struct tlcl_track_options {
    const char *run_dir;    /* the run's folder: the journal goes to run_dir/tracking */
    const char *uri;        /* http://host:port of the MLflow server */
    const char *experiment; /* created when missing */
    const char *run_name;
    int timeout_s;          /* per request */
    int fresh;              /* 1: always a new MLflow run; 0: an unfinished one in the journal continues */
    /* the parent run (NULL: none): its run folder (absolute) and local run id (tlcl_tracker_run_id) */
    const char *parent_dir, *parent_run;
    /* where warnings go (the offline one, once): "warning: " is the caller's; NULL: stderr */
    void (*warn)(void *ctx, const char *msg);
    void *warn_ctx;
} tlcl_track_options;

typedef struct tlcl_tracker tlcl_tracker;

/* Opens (creates) the journal and starts a local run, or continues the
 * journal's unfinished one (a run resumed from its backup); *continued is
 * 1 then (its parameters are already recorded). With fresh, an unfinished
 * run of the journal is ended KILLED first. Errors name the file. */
tlcl_status tlcl_tracker_open(tlcl_tracker **t, const tlcl_track_options *o, int *continued, char *err,
                              size_t err_len);

/* The local run id (the journal's "run"): what a child run's parent_run names. */
const char *tlcl_tracker_run_id(const tlcl_tracker *t);

/* Records; each returns 0, or -1 when the journal cannot be written (a
 * warning was printed). The upload happens as it can. */
/* The effective configuration (YAML text, as tlcl_config_dump writes it)
 * flattened to key paths: model.head.dropout = 0.2, phases.0.name = ... */
int tlcl_tracker_params_yaml(tlcl_tracker *t, const char *yaml_text);
int tlcl_tracker_tags(tlcl_tracker *t, const char *const *keys, const char *const *values, int n);
/* "k=v,k=v" (the configuration's tracking.tags). */
int tlcl_tracker_tags_text(tlcl_tracker *t, const char *text);
int tlcl_tracker_metrics(tlcl_tracker *t, long step, const char *const *keys, const double *values, int n);
/* A file uploaded as artifacts/<name> (mlflow-artifacts REST, PUT); a
 * missing file is skipped with a warning at upload time. */
int tlcl_tracker_artifact(tlcl_tracker *t, const char *path, const char *name);
/* Ends the run (status FINISHED, FAILED or KILLED; NULL: leaves it
 * unfinished, for the next tlcl_tracker_open to continue); offline, tries
 * the server once more (it may be back); warns how many records wait for
 * `tlcl track sync` when some do; frees t (NULL-safe). */
void tlcl_tracker_close(tlcl_tracker *t, const char *status);

/* Uploads every record of run_dir's journal not sent yet (`tlcl track
 * sync`); uri overrides the journal's when not NULL. Reports on out. */
tlcl_status tlcl_track_sync(const char *run_dir, const char *uri, int timeout_s, FILE *out, char *err,
                            size_t err_len);

/* ---- internal to the module, shared by its files ---------------------------- */

/* track_params.c: YAML text to key/value pairs (malloc'd arrays of
 * malloc'd strings, keys and values cut to MLflow's limits); -1 on a parse
 * error. */
int tlcl_track_flatten_yaml(const char *yaml_text, char ***keys, char ***values, int *n);
void tlcl_track_free_pairs(char **keys, char **values, int n);
/* A key as MLflow accepts it (letters, digits, _ - . space; no "..", and
 * no '/', which MLflow allows only as a normalised path), cut to
 * TLCL_MLF_KEY_MAX: anything else becomes '_', so a
 * class name in a key (val_group_<name>_f1, class_weight.<class>) never
 * gets a whole batch rejected. */
void tlcl_track_safe_key(const char *in, char *out, size_t out_len);

/* track_rest.c: the REST client. */
typedef struct mlf_client {
    char base[512];
    int timeout_s;
    long http;        /* last HTTP status (0: no answer) */
    char error[1024]; /* last error, with the URL */
} mlf_client;

void mlf_init(mlf_client *c, const char *uri, int timeout_s);
/* Each: 0 ok; -1 the server did not answer (or 5xx: try later); -2 it
 * answered with a 4xx error (the request itself is at fault). */
int mlf_experiment_id(mlf_client *c, const char *name, char *id, size_t id_len);
/* tags: a cJSON array of {key, value}, or NULL. */
int mlf_create_run(mlf_client *c, const char *experiment_id, const char *run_name, long long start_ms,
                   const void *tags_json, char *run_id, size_t run_id_len, char *artifact_uri, size_t uri_len);
/* body: a cJSON object {metrics, params, tags} (run_id is added). */
int mlf_log_batch(mlf_client *c, const char *run_id, void *body_json);
int mlf_update_run(mlf_client *c, const char *run_id, const char *status, long long end_ms);
int mlf_put_artifact(mlf_client *c, const char *artifact_uri, const char *name, const char *path);

/* track_journal.c: the journal and the sync state. */
typedef struct track_journal {
    char dir[1100], path[1200], state_path[1200];
    long next_seq;
} track_journal;

/* Creates dir/tracking and the journal; cuts a torn last line. */
int track_journal_open(track_journal *j, const char *run_dir, char *err, size_t err_len);
/* The sender's lock (tracking/sync.lock, flock): one sender at a time, so a
 * `tlcl track sync` beside a running training sends nothing twice. wait 0:
 * -1 at once when another holds it. Returns the descriptor for unlock. */
int track_journal_lock(const track_journal *j, int wait);
void track_journal_unlock(int fd);
/* Appends record (a cJSON object) with "seq" added; -1 with err. */
int track_journal_append(track_journal *j, void *record, char *err, size_t err_len);
/* Every complete record, in order (a cJSON array; NULL when none). */
void *track_journal_read(const track_journal *j);

typedef struct track_state {
    long sent_seq;
    void *runs; /* cJSON object: local run id -> {run_id, artifact_uri, experiment_id} */
} track_state;

void track_state_load(const track_journal *j, track_state *s);
int track_state_save(const track_journal *j, const track_state *s, char *err, size_t err_len);
void track_state_free(track_state *s);

long long track_now_ms(void);

/* track_run.c: sends every record of j after the sync state's sent_seq, under
 * the sender's lock (wait 0: nothing is sent while another sender holds
 * it); *sent, *skipped count. 0 when nothing is left; -1 when the server
 * stopped answering or the state could not be saved (err says which). */
int track_send_pending(track_journal *j, mlf_client *c, void (*warn)(void *, const char *), void *warn_ctx, int wait,
                       int *sent, int *skipped, char *err, size_t err_len);

/* track_parent.c: adds {mlflow.parentRunId: the parent's MLflow run id} to
 * tags (a cJSON array) for ref, a start record's "parent" {dir, run}; sends
 * the parent's pending records first. 0 (also when the parent can never
 * have an id: warned, no tag); -1 when the server did not answer (c->error). */
int track_parent_tag(mlf_client *c, const void *ref, void (*warn)(void *, const char *), void *warn_ctx,
                     void *tags);

#endif
