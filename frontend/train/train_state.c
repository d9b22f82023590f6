/* train_state.c — see train_state.h. */
#include "train_state.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef enum { K_COUNT, K_INT64, K_FINITE, K_NONNEG, K_MONITOR, K_HISTORY, K_BOOL, K_COUNTS, K_TEXT } key_kind;

static const struct {
    const char *key;
    key_kind kind;
    int optional;
} KEYS[] = {
    {"phase", K_COUNT, 0},      {"epoch", K_COUNT, 0},      {"batch", K_COUNT, 0},   {"rlr_wait", K_COUNT, 0},
    {"rlr_cooldown", K_COUNT, 0}, {"es_wait", K_COUNT, 0},  {"step", K_INT64, 0},    {"iterations", K_INT64, 0},
    {"loss_sum", K_FINITE, 0},  {"seen", K_NONNEG, 0},      {"acc_hit", K_NONNEG, 0}, {"acc_w", K_NONNEG, 0},
    {"plateau_lr", K_NONNEG, 0}, {"ckpt", K_MONITOR, 0},    {"es", K_MONITOR, 0},    {"rlr", K_MONITOR, 0},
    {"history", K_HISTORY, 0},  {"es_stop", K_BOOL, 1},     {"confusion", K_COUNTS, 1},
    {"best_model", K_TEXT, 1},  {"csv_base", K_INT64, 1},
};

static int bad(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return -1;
}

/* What a value holds, for messages: its JSON text, cut short. */
static const char *shown(const cJSON *v, char *buf, size_t len)
{
    char *text = cJSON_PrintUnformatted(v);
    snprintf(buf, len, "%s", text ? text : "?");
    if (text && strlen(text) >= len && len > 4)
        strcpy(buf + len - 4, "...");
    cJSON_free(text);
    return buf;
}

static int is_integer(const cJSON *v, double lo, double hi)
{
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble == floor(v->valuedouble) &&
           v->valuedouble >= lo && v->valuedouble <= hi;
}

static int check_scalar(const cJSON *v, key_kind kind, const char *name, char *err, size_t len)
{
    char got[64];
    switch (kind) {
    case K_COUNT:
        if (!is_integer(v, 0, 2147483647.0))
            return bad(err, len, "key '%s' should be a non-negative integer, got %s", name, shown(v, got, sizeof got));
        return 0;
    case K_INT64:
        if (!is_integer(v, 0, 9007199254740992.0))
            return bad(err, len, "key '%s' should be a non-negative integer, got %s", name, shown(v, got, sizeof got));
        return 0;
    case K_FINITE:
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
            return bad(err, len, "key '%s' should be a finite number, got %s", name, shown(v, got, sizeof got));
        return 0;
    case K_NONNEG:
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0)
            return bad(err, len, "key '%s' should be a finite non-negative number, got %s", name,
                       shown(v, got, sizeof got));
        return 0;
    case K_TEXT:
        if (!cJSON_IsString(v) || strlen(v->valuestring) >= 1024)
            return bad(err, len, "key '%s' should be a path, got %s", name, shown(v, got, sizeof got));
        return 0;
    case K_BOOL:
        if (!cJSON_IsBool(v))
            return bad(err, len, "key '%s' should be true or false, got %s", name, shown(v, got, sizeof got));
        return 0;
    case K_COUNTS: {
        if (!cJSON_IsArray(v))
            return bad(err, len, "key '%s' should be a list of counts, got %s", name, shown(v, got, sizeof got));
        int i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, v)
        {
            if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble) || e->valuedouble < 0)
                return bad(err, len, "key '%s[%d]' should be a finite non-negative number, got %s", name, i,
                           shown(e, got, sizeof got));
            i++;
        }
        return 0;
    }
    default:
        return 0;
    }
}

static int check_monitor(const cJSON *m, const char *name, char *err, size_t len)
{
    char got[64];
    if (!cJSON_IsObject(m))
        return bad(err, len, "key '%s' should be an object {mode, best, has_best}, got %s", name,
                   shown(m, got, sizeof got));
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(m, "mode");
    const cJSON *best = cJSON_GetObjectItemCaseSensitive(m, "best");
    const cJSON *has = cJSON_GetObjectItemCaseSensitive(m, "has_best");
    if (!mode || !best || !has)
        return bad(err, len, "key '%s.%s' is missing", name, !mode ? "mode" : !best ? "best" : "has_best");
    if (!is_integer(mode, -1, 1))
        return bad(err, len, "key '%s.mode' should be -1, 0 or 1, got %s", name, shown(mode, got, sizeof got));
    if (!cJSON_IsNumber(best) && !cJSON_IsNull(best)) /* null: a NaN best value */
        return bad(err, len, "key '%s.best' should be a number or null, got %s", name, shown(best, got, sizeof got));
    if (!cJSON_IsBool(has))
        return bad(err, len, "key '%s.has_best' should be true or false, got %s", name, shown(has, got, sizeof got));
    static const char *const where[2] = {"best_epoch", "best_phase"}; /* absent in older backups */
    for (int i = 0; i < 2; i++) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(m, where[i]);
        if (n && !is_integer(n, 0, 1000000))
            return bad(err, len, "key '%s.%s' should be a count, got %s", name, where[i], shown(n, got, sizeof got));
    }
    return 0;
}

static int check_history(const cJSON *h, int logs_max, int key_max, char *err, size_t len)
{
    char got[64];
    if (!cJSON_IsArray(h))
        return bad(err, len, "key 'history' should be a list of epoch logs, got %s", shown(h, got, sizeof got));
    int i = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, h)
    {
        if (!cJSON_IsObject(row))
            return bad(err, len, "key 'history[%d]' should be an object of logs, got %s", i, shown(row, got, sizeof got));
        const cJSON *epoch = cJSON_GetObjectItemCaseSensitive(row, "__epoch");
        if (!epoch)
            return bad(err, len, "key 'history[%d].__epoch' is missing", i);
        if (!is_integer(epoch, 0, 2147483647.0))
            return bad(err, len, "key 'history[%d].__epoch' should be a non-negative integer, got %s", i,
                       shown(epoch, got, sizeof got));
        int n = 0;
        const cJSON *kv;
        cJSON_ArrayForEach(kv, row)
        {
            if (strcmp(kv->string, "__epoch") == 0)
                continue;
            if (++n > logs_max)
                return bad(err, len, "key 'history[%d]' has more than %d logs", i, logs_max);
            if ((int)strlen(kv->string) >= key_max)
                return bad(err, len, "key 'history[%d].%.40s...' is longer than %d characters", i, kv->string,
                           key_max - 1);
            if (!cJSON_IsNumber(kv) && !cJSON_IsNull(kv)) /* null: a NaN log value */
                return bad(err, len, "key 'history[%d].%s' should be a number or null, got %s", i, kv->string,
                           shown(kv, got, sizeof got));
        }
        i++;
    }
    return 0;
}

int tlcl_train_state_check(const cJSON *o, int nphases, int batches_per_epoch, int logs_max, int key_max, char *err,
                           size_t len)
{
    char got[64];
    if (!cJSON_IsObject(o))
        return bad(err, len, "it should be a JSON object, got %s", shown(o, got, sizeof got));
    for (size_t i = 0; i < sizeof KEYS / sizeof KEYS[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, KEYS[i].key);
        if (!v) {
            if (KEYS[i].optional)
                continue;
            return bad(err, len, "key '%s' is missing", KEYS[i].key);
        }
        int rc = KEYS[i].kind == K_MONITOR   ? check_monitor(v, KEYS[i].key, err, len)
                 : KEYS[i].kind == K_HISTORY ? check_history(v, logs_max, key_max, err, len)
                                             : check_scalar(v, KEYS[i].kind, KEYS[i].key, err, len);
        if (rc)
            return rc;
    }
    int phase = cJSON_GetObjectItemCaseSensitive(o, "phase")->valueint;
    if (phase >= nphases)
        return bad(err, len, "key 'phase' is %d (0-based), but this run has %d phase%s: the backup belongs to "
                   "another configuration", phase, nphases, nphases == 1 ? "" : "s");
    int batch = cJSON_GetObjectItemCaseSensitive(o, "batch")->valueint;
    if (batches_per_epoch > 0 && batch > batches_per_epoch)
        return bad(err, len, "key 'batch' is %d, but an epoch of this run has %d batches (was "
                   "train.config.batch_size or the data changed?)", batch, batches_per_epoch);
    return 0;
}
