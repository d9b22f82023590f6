/* track_parent.c — a run nested under another in MLflow (the tag
 * mlflow.parentRunId: a grid's runs under the grid's run).
 *
 * A child's start record holds a reference to its parent's journal,
 * "parent": {"dir": RUN_DIR, "run": local run id}, never an MLflow run id:
 * the parent may not be in MLflow yet when the child starts (the server was
 * down). The id is resolved when the child's start is sent: from the
 * parent's sync_state.json, after sending what the parent's journal still
 * holds (the parent goes first, whoever sends the child). */
#include "track.h"

#include <cJSON.h>
#include <string.h>
#include <unistd.h>

static const char *str_of(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* The MLflow run id of the parent's local run, when its start was sent. */
static int sent_id(const track_journal *pj, const char *run, char *id, size_t id_len)
{
    track_state s;
    track_state_load(pj, &s);
    const char *v = str_of(cJSON_GetObjectItemCaseSensitive(s.runs, run), "run_id");
    snprintf(id, id_len, "%s", v);
    track_state_free(&s);
    return id[0] ? 0 : -1;
}

int track_parent_tag(mlf_client *c, const void *ref, void (*warn)(void *, const char *), void *warn_ctx,
                     void *tags)
{
    const char *dir = str_of(ref, "dir"), *run = str_of(ref, "run");
    char path[1200], id[128], err[1400], msg[3000];
    snprintf(path, sizeof path, "%s/tracking/journal.jsonl", dir);
    track_journal pj;
    if (access(path, R_OK) != 0 || track_journal_open(&pj, dir, err, sizeof err) != 0) {
        snprintf(msg, sizeof msg, "the parent run's journal %.1200s is gone: the run is logged without its parent",
                 path);
        warn(warn_ctx, msg);
        return 0;
    }
    if (sent_id(&pj, run, id, sizeof id) != 0) {
        int sent, skipped;
        if (track_send_pending(&pj, c, warn, warn_ctx, 1, &sent, &skipped, err, sizeof err) != 0) {
            snprintf(c->error, sizeof c->error, "the parent run (%.400s) is not in MLflow yet: %.500s", dir, err);
            return -1;
        }
        if (sent_id(&pj, run, id, sizeof id) != 0) {
            snprintf(msg, sizeof msg,
                     "the parent run %.40s has no MLflow run (its start was rejected; see %.1200s): the run is "
                     "logged without its parent",
                     run, pj.path);
            warn(warn_ctx, msg);
            return 0;
        }
    }
    cJSON *tag = cJSON_CreateObject();
    cJSON_AddStringToObject(tag, "key", "mlflow.parentRunId");
    cJSON_AddStringToObject(tag, "value", id);
    cJSON_AddItemToArray(tags, tag);
    return 0;
}
