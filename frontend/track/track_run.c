/* track_run.c — the tracker (records to the journal, then sends what is
 * pending) and `tlcl track sync` (sends what is pending later). One send
 * loop serves both, so a record goes out once whoever sends it: a record
 * counts as sent when the server took it (or rejected it with a 4xx error,
 * reported: resending could not help), and the sync state is saved after
 * each one. */
#include "track.h"

#include <cJSON.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tlcl_tracker {
    track_journal j;
    mlf_client client;
    char run[40];   /* local run id */
    char run_dir[1024];
    int offline;    /* the server failed once: no more tries in this process */
    void (*warn)(void *ctx, const char *msg);
    void *warn_ctx;
    char err[1400];
};

/* ---- the send loop ---------------------------------------------------------------- */

static const char *str_of(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static double num_of(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static int send_start(mlf_client *c, track_state *s, const cJSON *rec, void (*warn)(void *, const char *),
                      void *warn_ctx)
{
    const char *run = str_of(rec, "run");
    if (cJSON_GetObjectItemCaseSensitive(s->runs, run))
        return 0; /* created already (a continued run's start is recorded once) */
    char exp[128], id[128], au[1024];
    cJSON *tags = cJSON_CreateArray();
    const cJSON *parent = cJSON_GetObjectItemCaseSensitive(rec, "parent");
    int rc = parent ? track_parent_tag(c, parent, warn, warn_ctx, tags) : 0;
    if (rc == 0)
        rc = mlf_experiment_id(c, str_of(rec, "experiment"), exp, sizeof exp);
    if (rc == 0)
        rc = mlf_create_run(c, exp, str_of(rec, "run_name"), (long long)num_of(rec, "time"),
                            cJSON_GetArraySize(tags) ? tags : NULL, id, sizeof id, au, sizeof au);
    cJSON_Delete(tags);
    if (rc != 0)
        return rc;
    cJSON *info = cJSON_CreateObject();
    cJSON_AddStringToObject(info, "run_id", id);
    cJSON_AddStringToObject(info, "artifact_uri", au);
    cJSON_AddStringToObject(info, "experiment_id", exp);
    cJSON_AddItemToObject(s->runs, run, info);
    return 0;
}

static cJSON *metrics_body(const cJSON *rec)
{
    cJSON *body = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(body, "metrics"), *m;
    double step = num_of(rec, "step"), time = num_of(rec, "time");
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(rec, "metrics"))
    {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "key", str_of(m, "key"));
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, "value");
        if (cJSON_IsNumber(v))
            cJSON_AddNumberToObject(o, "value", v->valuedouble);
        else /* NaN and infinities travel as protobuf's JSON strings */
            cJSON_AddStringToObject(o, "value", cJSON_IsString(v) ? v->valuestring : "NaN");
        cJSON_AddNumberToObject(o, "timestamp", time);
        cJSON_AddNumberToObject(o, "step", step);
        cJSON_AddItemToArray(arr, o);
    }
    return body;
}

/* 0 sent; -1 the server did not answer (stop); -2 rejected (skip). */
static int send_record(mlf_client *c, track_state *s, const cJSON *rec, void (*warn)(void *, const char *),
                       void *warn_ctx)
{
    const char *type = str_of(rec, "type");
    if (!strcmp(type, "start"))
        return send_start(c, s, rec, warn, warn_ctx);
    const cJSON *info = cJSON_GetObjectItemCaseSensitive(s->runs, str_of(rec, "run"));
    if (!info) {
        snprintf(c->error, sizeof c->error, "record %.0f belongs to run %s, whose start record was not sent",
                 num_of(rec, "seq"), str_of(rec, "run"));
        return -2;
    }
    const char *run_id = str_of(info, "run_id");
    if (!strcmp(type, "end"))
        return mlf_update_run(c, run_id, str_of(rec, "status"), (long long)num_of(rec, "time"));
    if (!strcmp(type, "artifact"))
        return mlf_put_artifact(c, str_of(info, "artifact_uri"), str_of(rec, "name"), str_of(rec, "path"));
    cJSON *body;
    if (!strcmp(type, "metrics"))
        body = metrics_body(rec);
    else if (!strcmp(type, "params") || !strcmp(type, "tags")) {
        body = cJSON_CreateObject();
        cJSON_AddItemToObject(body, type, cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(rec, type), 1));
    } else {
        snprintf(c->error, sizeof c->error, "record %.0f has an unknown type '%s'", num_of(rec, "seq"), type);
        return -2;
    }
    int rc = mlf_log_batch(c, run_id, body);
    cJSON_Delete(body);
    return rc;
}

static void warn_stderr(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "warning: %s\n", msg);
}

int track_send_pending(track_journal *j, mlf_client *c, void (*warn)(void *, const char *), void *warn_ctx, int wait,
                       int *sent, int *skipped, char *err, size_t err_len)
{
    *sent = *skipped = 0;
    int lock = track_journal_lock(j, wait);
    if (lock < 0) {
        if (!wait)
            return 0; /* a `tlcl track sync` is sending: it takes these records too */
        snprintf(err, err_len, "cannot lock %s/sync.lock: is the folder writable?", j->dir);
        return -1;
    }
    track_state s;
    track_state_load(j, &s);
    cJSON *all = track_journal_read(j), *rec;
    int rc = 0;
    cJSON_ArrayForEach(rec, all)
    {
        long seq = (long)num_of(rec, "seq");
        if (seq <= s.sent_seq)
            continue;
        int r = send_record(c, &s, rec, warn, warn_ctx);
        if (r == -1) {
            snprintf(err, err_len, "%s", c->error);
            rc = -1;
            break;
        }
        if (r == -2) {
            char msg[3000];
            snprintf(msg, sizeof msg, "MLflow rejected record %ld (%.20s) of %.1200s, skipped: %.1500s", seq,
                     str_of(rec, "type"), j->path, c->error);
            warn(warn_ctx, msg);
            ++*skipped;
        } else
            ++*sent;
        s.sent_seq = seq;
        if (track_state_save(j, &s, err, err_len) != 0) {
            rc = -1;
            break;
        }
    }
    cJSON_Delete(all);
    track_state_free(&s);
    track_journal_unlock(lock);
    return rc;
}

/* ---- the tracker ------------------------------------------------------------------ */

static void new_run_id(char *out, size_t n)
{
    unsigned char r[8] = {0};
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd < 0 || read(fd, r, sizeof r) != (ssize_t)sizeof r) {
        long long t = track_now_ms() ^ ((long long)getpid() << 20);
        memcpy(r, &t, sizeof r);
    }
    if (fd >= 0)
        close(fd);
    snprintf(out, n, "%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
}

static void go_offline(tlcl_tracker *t)
{
    if (t->offline)
        return;
    t->offline = 1;
    char msg[4096];
    snprintf(msg, sizeof msg,
             "MLflow tracking is offline for the rest of this run: %s. Training goes on; every record is kept "
             "in %s. Upload them later with `tlcl track sync %s`.",
             t->err, t->j.path, t->run_dir);
    t->warn(t->warn_ctx, msg);
}

static int record(tlcl_tracker *t, cJSON *rec)
{
    if (!t) {
        cJSON_Delete(rec);
        return 0;
    }
    cJSON_AddStringToObject(rec, "run", t->run);
    int rc = track_journal_append(&t->j, rec, t->err, sizeof t->err);
    cJSON_Delete(rec);
    if (rc != 0) {
        char msg[1600];
        snprintf(msg, sizeof msg, "MLflow tracking: %s", t->err);
        t->warn(t->warn_ctx, msg);
        return -1;
    }
    int sent, skipped;
    if (!t->offline &&
        track_send_pending(&t->j, &t->client, t->warn, t->warn_ctx, 0, &sent, &skipped, t->err, sizeof t->err) != 0)
        go_offline(t);
    return 0;
}

tlcl_status tlcl_tracker_open(tlcl_tracker **out, const tlcl_track_options *o, int *continued, char *err,
                              size_t err_len)
{
    *out = NULL;
    *continued = 0;
    tlcl_tracker *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, err_len, "out of memory starting the MLflow tracker");
        return TLCL_ERR_OOM;
    }
    t->warn = o->warn ? o->warn : warn_stderr;
    t->warn_ctx = o->warn_ctx;
    snprintf(t->run_dir, sizeof t->run_dir, "%s", o->run_dir);
    if (track_journal_open(&t->j, o->run_dir, err, err_len) != 0) {
        free(t);
        return TLCL_ERR_IO;
    }
    mlf_init(&t->client, o->uri, o->timeout_s);
    /* the journal's last run continues when it did not end (a resumed run) */
    cJSON *all = track_journal_read(&t->j), *rec;
    const char *last = NULL;
    int ended = 0;
    cJSON_ArrayForEach(rec, all)
    {
        if (!strcmp(str_of(rec, "type"), "start"))
            last = str_of(rec, "run"), ended = 0;
        else if (!strcmp(str_of(rec, "type"), "end") && last && !strcmp(str_of(rec, "run"), last))
            ended = 1;
    }
    if (last && !ended)
        snprintf(t->run, sizeof t->run, "%s", last);
    cJSON_Delete(all);
    if (t->run[0] && !o->fresh) {
        *continued = 1;
    } else if (t->run[0]) { /* --fresh: the interrupted run ends as MLflow's KILLED */
        cJSON *end = cJSON_CreateObject();
        cJSON_AddStringToObject(end, "type", "end");
        cJSON_AddStringToObject(end, "status", "KILLED");
        cJSON_AddNumberToObject(end, "time", (double)track_now_ms());
        record(t, end);
    }
    *out = t;
    if (*continued)
        return TLCL_OK;
    new_run_id(t->run, sizeof t->run);
    cJSON *start = cJSON_CreateObject();
    cJSON_AddStringToObject(start, "type", "start");
    cJSON_AddStringToObject(start, "uri", t->client.base);
    cJSON_AddStringToObject(start, "experiment", o->experiment);
    cJSON_AddStringToObject(start, "run_name", o->run_name);
    cJSON_AddNumberToObject(start, "time", (double)track_now_ms());
    if (o->parent_dir && o->parent_run) {
        cJSON *parent = cJSON_AddObjectToObject(start, "parent");
        cJSON_AddStringToObject(parent, "dir", o->parent_dir);
        cJSON_AddStringToObject(parent, "run", o->parent_run);
    }
    record(t, start);
    return TLCL_OK;
}

const char *tlcl_tracker_run_id(const tlcl_tracker *t)
{
    return t ? t->run : "";
}

static cJSON *kv(const char *key, const char *value, size_t value_max)
{
    cJSON *o = cJSON_CreateObject();
    char k[TLCL_MLF_KEY_MAX + 1];
    tlcl_track_safe_key(key, k, sizeof k);
    cJSON_AddStringToObject(o, "key", k);
    size_t n = strlen(value);
    if (n > value_max) {
        char *v = malloc(value_max + 1);
        if (v) {
            memcpy(v, value, value_max);
            v[value_max] = 0;
            cJSON_AddStringToObject(o, "value", v);
            free(v);
        }
    } else
        cJSON_AddStringToObject(o, "value", value);
    return o;
}

int tlcl_tracker_params_yaml(tlcl_tracker *t, const char *yaml_text)
{
    if (!t)
        return 0;
    char **keys, **values;
    int n;
    if (tlcl_track_flatten_yaml(yaml_text, &keys, &values, &n) != 0) {
        t->warn(t->warn_ctx, "MLflow tracking: the effective configuration does not parse as YAML: no parameters "
                             "logged");
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i += TLCL_MLF_BATCH_PARAMS) {
        cJSON *rec = cJSON_CreateObject(), *arr;
        cJSON_AddStringToObject(rec, "type", "params");
        arr = cJSON_AddArrayToObject(rec, "params");
        for (int k = i; k < n && k < i + TLCL_MLF_BATCH_PARAMS; k++)
            cJSON_AddItemToArray(arr, kv(keys[k], values[k], TLCL_MLF_PARAM_VALUE_MAX));
        rc = record(t, rec);
    }
    tlcl_track_free_pairs(keys, values, n);
    return rc;
}

int tlcl_tracker_tags(tlcl_tracker *t, const char *const *keys, const char *const *values, int n)
{
    if (!t || n <= 0)
        return 0;
    cJSON *rec = cJSON_CreateObject(), *arr;
    cJSON_AddStringToObject(rec, "type", "tags");
    arr = cJSON_AddArrayToObject(rec, "tags");
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, kv(keys[i], values[i], TLCL_MLF_TAG_VALUE_MAX));
    return record(t, rec);
}

int tlcl_tracker_tags_text(tlcl_tracker *t, const char *text)
{
    if (!t || !text || !text[0])
        return 0;
    char *copy = strdup(text);
    if (!copy)
        return -1;
    const char *keys[64], *values[64];
    int n = 0;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item && n < 64; item = strtok_r(NULL, ",", &save)) {
        while (*item == ' ')
            item++;
        char *eq = strchr(item, '=');
        if (!eq || eq == item) {
            char msg[600];
            snprintf(msg, sizeof msg, "tracking.tags: '%.500s' is not key=value: left out (write \"k=v,k=v\")",
                     item);
            t->warn(t->warn_ctx, msg);
            continue;
        }
        *eq = 0;
        keys[n] = item, values[n++] = eq + 1;
    }
    int rc = tlcl_tracker_tags(t, keys, values, n);
    free(copy);
    return rc;
}

int tlcl_tracker_metrics(tlcl_tracker *t, long step, const char *const *keys, const double *values, int n)
{
    if (!t)
        return 0;
    cJSON *rec = cJSON_CreateObject(), *arr;
    cJSON_AddStringToObject(rec, "type", "metrics");
    cJSON_AddNumberToObject(rec, "step", (double)step);
    cJSON_AddNumberToObject(rec, "time", (double)track_now_ms());
    arr = cJSON_AddArrayToObject(rec, "metrics");
    for (int i = 0; i < n && i < TLCL_MLF_BATCH_METRICS; i++) {
        cJSON *m = cJSON_CreateObject();
        char k[TLCL_MLF_KEY_MAX + 1];
        tlcl_track_safe_key(keys[i], k, sizeof k);
        cJSON_AddStringToObject(m, "key", k);
        if (isfinite(values[i]))
            cJSON_AddNumberToObject(m, "value", values[i]);
        else
            cJSON_AddStringToObject(m, "value", isnan(values[i]) ? "NaN" : values[i] > 0 ? "Infinity" : "-Infinity");
        cJSON_AddItemToArray(arr, m);
    }
    return record(t, rec);
}

int tlcl_tracker_artifact(tlcl_tracker *t, const char *path, const char *name)
{
    if (!t || !path || !path[0])
        return 0;
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "type", "artifact");
    cJSON_AddStringToObject(rec, "path", path);
    cJSON_AddStringToObject(rec, "name", name);
    return record(t, rec);
}

void tlcl_tracker_close(tlcl_tracker *t, const char *status)
{
    if (!t)
        return;
    if (status) {
        cJSON *rec = cJSON_CreateObject();
        cJSON_AddStringToObject(rec, "type", "end");
        cJSON_AddStringToObject(rec, "status", status);
        cJSON_AddNumberToObject(rec, "time", (double)track_now_ms());
        record(t, rec);
    }
    if (t->offline) { /* one more try, quietly: a server back after a restart takes the rest now */
        int sent, skipped;
        char err[1400];
        track_send_pending(&t->j, &t->client, t->warn, t->warn_ctx, 0, &sent, &skipped, err, sizeof err);
    }
    track_state s;
    track_state_load(&t->j, &s);
    long waiting = t->j.next_seq - 1 - s.sent_seq;
    track_state_free(&s);
    if (waiting > 0) {
        char msg[2600];
        snprintf(msg, sizeof msg, "MLflow tracking: %ld records wait in %s: upload them with `tlcl track sync %s`",
                 waiting, t->j.path, t->run_dir);
        t->warn(t->warn_ctx, msg);
    }
    free(t);
}

/* ---- tlcl track sync ------------------------------------------------------------- */

tlcl_status tlcl_track_sync(const char *run_dir, const char *uri, int timeout_s, FILE *out, char *err,
                            size_t err_len)
{
    track_journal j;
    char path[1200];
    snprintf(path, sizeof path, "%s/tracking/journal.jsonl", run_dir);
    if (access(path, R_OK) != 0) {
        snprintf(err, err_len,
                 "%s: no tracking journal: give the run folder (train.artefacts.base_dir) of a run trained with "
                 "tracking.enabled: true",
                 path);
        return TLCL_ERR_IO;
    }
    if (track_journal_open(&j, run_dir, err, err_len) != 0)
        return TLCL_ERR_IO;
    char journal_uri[512] = "";
    cJSON *all = track_journal_read(&j), *rec;
    cJSON_ArrayForEach(rec, all) if (!strcmp(str_of(rec, "type"), "start"))
        snprintf(journal_uri, sizeof journal_uri, "%s", str_of(rec, "uri"));
    cJSON_Delete(all);
    mlf_client c;
    mlf_init(&c, uri && uri[0] ? uri : journal_uri, timeout_s);
    int sent, skipped;
    if (track_send_pending(&j, &c, warn_stderr, NULL, 1, &sent, &skipped, err, err_len) != 0) {
        char why[1400];
        snprintf(why, sizeof why, "%s", err);
        snprintf(err, err_len, "%s (%d records sent before it stopped; run `tlcl track sync %s` again)", why, sent,
                 run_dir);
        return TLCL_ERR_IO;
    }
    fprintf(out, "tracking: %d records sent to %s, %d rejected, nothing left in %s\n", sent, c.base, skipped,
            j.path);
    return TLCL_OK;
}
