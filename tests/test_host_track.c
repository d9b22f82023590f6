/* test_host_track.c — the MLflow tracker without a server: the effective
 * configuration flattens to key paths within MLflow's limits; records go to
 * the journal with consecutive sequence numbers and one local run id; the
 * tracker against a closed port warns once and keeps everything; a torn
 * last line is cut when the journal opens again; an unfinished run
 * continues (no second start), --fresh ends it KILLED; `tlcl track sync`
 * against a closed port fails naming what to do and sends nothing; the
 * sync state round-trips. (The server side: track_mlflow_pocl.) Host only. */
#include "config.h"
#include "harness.h"
#include "track.h"

#include <cJSON.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char tmpdir[256];
static int nwarn;
static char last_warn[4096];

static void on_warn(void *ctx, const char *msg)
{
    (void)ctx;
    nwarn++;
    snprintf(last_warn, sizeof last_warn, "%s", msg);
}

/* A port nothing listens on: bound, never listened to, then closed. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &n);
    close(fd);
    return ntohs(a.sin_port);
}

static cJSON *journal(const char *dir)
{
    track_journal j;
    char err[512];
    if (track_journal_open(&j, dir, err, sizeof err) != 0)
        return NULL;
    return track_journal_read(&j);
}

static const char *type_of(const cJSON *r)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(r, "type");
    return cJSON_IsString(t) ? t->valuestring : "";
}

static void test_flatten(harness *h)
{
    static tlcl_config c;
    char err[1024];
    harness_status(h, tlcl_config_defaults(&c, err, sizeof err), "defaults");
    harness_status(h, tlcl_config_set(&c, "phases.0.name", "head", err, sizeof err), "phase 0");
    harness_status(h, tlcl_config_set(&c, "model.head.units", "[64, 32]", err, sizeof err), "units");
    harness_status(h, tlcl_config_finalize(&c, err, sizeof err), "finalize");
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    tlcl_config_dump(&c, f);
    fclose(f);
    char **keys, **values;
    int n;
    harness_expect(h, tlcl_track_flatten_yaml(text, &keys, &values, &n) == 0, "the dump flattens");
    int seen = 0;
    for (int i = 0; i < n; i++) {
        harness_expectf(h, strlen(keys[i]) <= TLCL_MLF_KEY_MAX && strlen(values[i]) <= TLCL_MLF_PARAM_VALUE_MAX,
                        "param %s within MLflow's limits", keys[i]);
        if (!strcmp(keys[i], "model.head.units"))
            seen += !strcmp(values[i], "[64, 32]");
        if (!strcmp(keys[i], "phases.0.name"))
            seen += !strcmp(values[i], "head");
        if (!strcmp(keys[i], "train.config.seed"))
            seen += !strcmp(values[i], "42");
        if (!strcmp(keys[i], "optimizer.weight_decay"))
            seen += !strcmp(values[i], "null");
        if (!strcmp(keys[i], "tracking.enabled"))
            seen += !strcmp(values[i], "false");
    }
    harness_expectf(h, seen == 5, "model.head.units, phases.0.name, seed, weight_decay (null), tracking.enabled "
                                  "flattened as expected (%d of 5)", seen);
    harness_expectf(h, n > 100, "%d parameters: the whole configuration", n);
    tlcl_track_free_pairs(keys, values, n);
    free(text);
    /* a value past MLflow's limit is cut */
    char big[TLCL_MLF_PARAM_VALUE_MAX + 100 + 8];
    memset(big, 'x', sizeof big);
    memcpy(big, "k: ", 3);
    big[sizeof big - 1] = 0;
    harness_expect(h, tlcl_track_flatten_yaml(big, &keys, &values, &n) == 0 && n == 1 &&
                          strlen(values[0]) == TLCL_MLF_PARAM_VALUE_MAX,
                   "a long value is cut to MLflow's limit");
    tlcl_track_free_pairs(keys, values, n);
    /* keys MLflow would refuse (and with them the whole batch) */
    char k[TLCL_MLF_KEY_MAX + 1];
    tlcl_track_safe_key("class_weight.Copepoda (x)+é", k, sizeof k);
    harness_expectf(h, !strcmp(k, "class_weight.Copepoda _x__"  "__"), "unsafe characters become '_': %s", k);
    tlcl_track_safe_key("/a..b//c", k, sizeof k);
    harness_expectf(h, !strcmp(k, "_a._b__c"), "no '/', no '..': %s", k);
    harness_expect(h, tlcl_track_flatten_yaml("a+: 1\na_: 2\n", &keys, &values, &n) == 0 && n == 1 &&
                          !strcmp(keys[0], "a_") && !strcmp(values[0], "1"),
                   "two keys made equal by the cleaning: the first stays (MLflow refuses duplicates)");
    tlcl_track_free_pairs(keys, values, n);
}

static void test_offline(harness *h)
{
    char dir[512], uri[64], err[2048];
    snprintf(dir, sizeof dir, "%s/run", tmpdir);
    snprintf(uri, sizeof uri, "http://127.0.0.1:%d", closed_port());
    tlcl_track_options o = {.run_dir = dir, .uri = uri, .experiment = "e", .run_name = "r", .timeout_s = 2,
                            .warn = on_warn};
    tlcl_tracker *t;
    int continued = -1;
    harness_status(h, tlcl_tracker_open(&t, &o, &continued, err, sizeof err), "tracker open");
    harness_expect(h, continued == 0, "a new journal starts a new run");
    tlcl_tracker_params_yaml(t, "a: 1\nb: {c: [1, 2]}\n");
    const char *tk[] = {"tlcl.version"}, *tv[] = {"0.1.0"};
    tlcl_tracker_tags(t, tk, tv, 1);
    const char *mk[] = {"loss", "accuracy"};
    double mv[] = {0.5, 0.25}, bad[] = {NAN, 1.0};
    tlcl_tracker_metrics(t, 0, mk, mv, 2);
    tlcl_tracker_metrics(t, 1, mk, bad, 2);
    /* killed here: the next open continues the run */
    free(t); /* (what a SIGKILL leaves: no end record) */
    harness_expectf(h, nwarn == 1 && strstr(last_warn, "tlcl track sync") && strstr(last_warn, dir),
                    "one warning naming tlcl track sync and the run folder (%d: %s)", nwarn, last_warn);
    /* a torn last line (a crash in the middle of a write) */
    char path[700];
    snprintf(path, sizeof path, "%s/tracking/journal.jsonl", dir);
    FILE *f = fopen(path, "a");
    fputs("{\"type\":\"metrics\",\"st", f);
    fclose(f);
    nwarn = 0;
    harness_status(h, tlcl_tracker_open(&t, &o, &continued, err, sizeof err), "tracker reopen");
    harness_expect(h, continued == 1, "an unfinished run continues");
    tlcl_tracker_metrics(t, 2, mk, mv, 2);
    tlcl_tracker_close(t, "FINISHED");
    cJSON *all = journal(dir), *r;
    int seq = 0, ok = 1, starts = 0, ends = 0;
    const char *run = NULL;
    cJSON_ArrayForEach(r, all)
    {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(r, "seq");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(r, "run");
        ok &= cJSON_IsNumber(s) && (int)s->valuedouble == ++seq && cJSON_IsString(id);
        if (ok && !run)
            run = id->valuestring;
        ok &= run && !strcmp(run, id->valuestring);
        starts += !strcmp(type_of(r), "start");
        ends += !strcmp(type_of(r), "end");
    }
    harness_expectf(h, ok && seq == 7 && starts == 1 && ends == 1,
                    "journal: seq 1..7 of one run, one start, one end (the torn line cut): %d records", seq);
    cJSON_Delete(all);
    /* --fresh: a new run, the unfinished one ended KILLED */
    o.fresh = 1;
    harness_status(h, tlcl_tracker_open(&t, &o, &continued, err, sizeof err), "tracker open fresh");
    tlcl_tracker_close(t, "FINISHED");
    o.fresh = 0;
    harness_status(h, tlcl_tracker_open(&t, &o, &continued, err, sizeof err), "tracker open again");
    harness_expect(h, continued == 0, "a finished run does not continue");
    o.fresh = 1; /* this one ends KILLED */
    tlcl_tracker *t2;
    free(t); /* left unfinished */
    harness_status(h, tlcl_tracker_open(&t2, &o, &continued, err, sizeof err), "tracker open fresh 2");
    tlcl_tracker_close(t2, "FINISHED");
    all = journal(dir);
    int killed = 0, runs = 0;
    cJSON_ArrayForEach(r, all)
    {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(r, "status");
        killed += !strcmp(type_of(r), "end") && cJSON_IsString(st) && !strcmp(st->valuestring, "KILLED");
        runs += !strcmp(type_of(r), "start");
    }
    harness_expectf(h, runs == 4 && killed == 1, "--fresh ends the unfinished run KILLED (%d runs, %d killed)", runs,
                    killed);
    cJSON_Delete(all);
    /* sync against a closed port: an error that says what to do, nothing marked sent */
    harness_expect(h, tlcl_track_sync(dir, NULL, 2, stdout, err, sizeof err) != TLCL_OK, "sync without a server fails");
    harness_expectf(h, strstr(err, "Couldn't connect") && strstr(err, "again"), "the sync error says why and what to do: %s",
                    err);
    track_journal j;
    track_state s;
    harness_expect(h, track_journal_open(&j, dir, err, sizeof err) == 0, "journal open");
    track_state_load(&j, &s);
    harness_expectf(h, s.sent_seq == 0, "nothing marked sent (sent_seq %ld)", s.sent_seq);
    s.sent_seq = 5;
    cJSON_AddItemToObject(s.runs, "abc", cJSON_CreateString("x"));
    harness_expect(h, track_state_save(&j, &s, err, sizeof err) == 0, "state saved");
    track_state_free(&s);
    track_state_load(&j, &s);
    harness_expect(h, s.sent_seq == 5 && cJSON_GetObjectItemCaseSensitive(s.runs, "abc"), "state reads back");
    track_state_free(&s);
    /* a folder without a journal */
    harness_expect(h, tlcl_track_sync(tmpdir, NULL, 2, stdout, err, sizeof err) != TLCL_OK &&
                          strstr(err, "no tracking journal") && strstr(err, "tracking.enabled"),
                   "sync of a folder without a journal names the file and the key");
}

int main(void)
{
    harness h;
    harness_init(&h, 0);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tlcl_track_host_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_flatten(&h);
    test_offline(&h);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", tmpdir);
    return harness_finish(&h);
}
