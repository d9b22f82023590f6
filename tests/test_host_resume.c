/* test_host_resume.c — how a training run starts and what it leaves, on the
 * host: a backup's training_state is checked key by key (each missing key,
 * each wrong type and each out-of-range position is refused with the key's
 * name); the run state that records a finished run is written atomically
 * and read back, and a malformed one is refused naming the file and the key;
 * moving aside renames, never deletes; and tlcl_plan_start (auto, --resume,
 * --fresh) decides what `tlcl train` does before any data is loaded. */
#include "config.h"
#include "harness.h"
#include "run_plan.h"
#include "run_status.h"
#include "train_state.h"

#include <cJSON.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

/* What trainer.c's state_json writes, for a run of 2 phases. */
static const char *VALID =
    "{\"phase\":1,\"epoch\":2,\"batch\":3,\"rlr_wait\":0,\"rlr_cooldown\":1,\"es_wait\":2,\"step\":40,"
    "\"iterations\":15,\"loss_sum\":3.25,\"seen\":12,\"acc_hit\":7.5,\"acc_w\":12,\"plateau_lr\":0,\"es_stop\":false,"
    "\"ckpt\":{\"mode\":-1,\"best\":0.75,\"has_best\":true},\"es\":{\"mode\":-1,\"best\":null,\"has_best\":false},"
    "\"rlr\":{\"mode\":-1,\"best\":0,\"has_best\":false},"
    "\"history\":[{\"__epoch\":0,\"loss\":1.5,\"val_kappa\":null},{\"__epoch\":1,\"loss\":1.25}]}";

static const char *const REQUIRED[] = {"phase", "epoch", "batch", "rlr_wait", "rlr_cooldown", "es_wait",
                                       "step", "iterations", "loss_sum", "seen", "acc_hit", "acc_w",
                                       "plateau_lr", "ckpt", "es", "rlr", "history"};

static int run_check(cJSON *o, int nphases, int batches, char *err, size_t len)
{
    err[0] = '\0';
    return tlcl_train_state_check(o, nphases, batches, 96, 48, err, len);
}

/* VALID with key set to the JSON value `json` (NULL: the key removed). */
static cJSON *variant(const char *key, const char *json)
{
    cJSON *o = cJSON_Parse(VALID);
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    if (json)
        cJSON_AddItemToObject(o, key, cJSON_Parse(json));
    return o;
}

static void test_state_check(harness *h)
{
    char err[1024], want[128];
    cJSON *o = cJSON_Parse(VALID);
    harness_expectf(h, run_check(o, 2, 9, err, sizeof err) == 0, "a complete training_state passes %s", err);
    cJSON_Delete(o);
    int missing = 0, typed = 0;
    for (size_t i = 0; i < sizeof REQUIRED / sizeof REQUIRED[0]; i++) {
        o = variant(REQUIRED[i], NULL);
        snprintf(want, sizeof want, "key '%s' is missing", REQUIRED[i]);
        if (run_check(o, 2, 9, err, sizeof err) == -1 && strstr(err, want))
            missing++;
        else
            printf("     without '%s': %s\n", REQUIRED[i], err);
        cJSON_Delete(o);
        o = variant(REQUIRED[i], "\"x\"");
        snprintf(want, sizeof want, "key '%s' should be", REQUIRED[i]);
        if (run_check(o, 2, 9, err, sizeof err) == -1 && strstr(err, want) && strstr(err, "got \"x\""))
            typed++;
        else
            printf("     '%s' a string: %s\n", REQUIRED[i], err);
        cJSON_Delete(o);
    }
    int n = (int)(sizeof REQUIRED / sizeof REQUIRED[0]);
    harness_expectf(h, missing == n, "each of the %d keys, when missing, is refused by name (%d)", n, missing);
    harness_expectf(h, typed == n, "each of the %d keys, of the wrong type, is refused by name with what it holds (%d)", n, typed);
    o = variant("es_stop", NULL);
    harness_expectf(h, run_check(o, 2, 9, err, sizeof err) == 0, "es_stop is optional (older backups) %s", err);
    cJSON_Delete(o);
    o = variant("es_stop", "1");
    harness_expectf(h, run_check(o, 2, 9, err, sizeof err) == -1 && strstr(err, "key 'es_stop' should be true or false"),
          "es_stop, when there, is a boolean: %s", err);
    cJSON_Delete(o);

    struct {
        const char *key, *json, *want;
        int nphases, batches;
    } bad[] = {
        {"epoch", "-1", "key 'epoch' should be a non-negative integer, got -1", 2, 9},
        {"batch", "2.5", "key 'batch' should be a non-negative integer, got 2.5", 2, 9},
        {"step", "null", "key 'step' should be a non-negative integer, got null", 2, 9},
        {"seen", "-3", "key 'seen' should be a finite non-negative number", 2, 9},
        {"loss_sum", "true", "key 'loss_sum' should be a finite number", 2, 9},
        {"phase", "1", "key 'phase' is 1 (0-based), but this run has 1 phase", 1, 9},
        {"batch", "10", "key 'batch' is 10, but an epoch of this run has 9 batches", 2, 9},
        {"ckpt", "{\"mode\":-1,\"has_best\":true}", "key 'ckpt.best' is missing", 2, 9},
        {"es", "{\"mode\":2,\"best\":0,\"has_best\":false}", "key 'es.mode' should be -1, 0 or 1, got 2", 2, 9},
        {"rlr", "{\"mode\":1,\"best\":0,\"has_best\":0}", "key 'rlr.has_best' should be true or false", 2, 9},
        {"rlr", "[]", "key 'rlr' should be an object", 2, 9},
        {"history", "[{\"loss\":1}]", "key 'history[0].__epoch' is missing", 2, 9},
        {"history", "[{\"__epoch\":0},{\"__epoch\":1,\"loss\":\"low\"}]",
         "key 'history[1].loss' should be a number or null, got \"low\"", 2, 9},
        {"history", "[3]", "key 'history[0]' should be an object of logs", 2, 9},
        {"history",
         "[{\"__epoch\":0,\"a_key_far_longer_than_the_forty_seven_characters_of_a_log_key\":1}]",
         "is longer than 47 characters", 2, 9},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o = variant(bad[i].key, bad[i].json);
        harness_expectf(h, run_check(o, bad[i].nphases, bad[i].batches, err, sizeof err) == -1 && strstr(err, bad[i].want),
              "%s = %s refused: %s", bad[i].key, bad[i].json, err);
        cJSON_Delete(o);
    }
    o = cJSON_Parse("[1, 2]");
    harness_expectf(h, run_check(o, 2, 9, err, sizeof err) == -1 && strstr(err, "should be a JSON object"),
          "a training_state that is no object is refused: %s", err);
    cJSON_Delete(o);
}

static int count_entries(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    if (d)
        closedir(d);
    return n;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

static void test_run_status(harness *h)
{
    char dir[512], path[600], err[1024] = "", moved[1200], moved2[1200];
    snprintf(dir, sizeof dir, "%s/status", tmpdir);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/run_state.json", dir);
    tlcl_run_status st = {.reason = "early_stopping", .phases = 2, .last_phase_epochs = 4, .epochs_trained = 9}, back;
    harness_expectf(h, tlcl_run_status_read(path, &back, err, sizeof err) == 0, "no run state: 0");
    int w = tlcl_run_status_write(path, &st, err, sizeof err);
    int r = tlcl_run_status_read(path, &back, err, sizeof err);
    harness_expectf(h, w == 0 && r == 1 && !strcmp(back.reason, "early_stopping") && back.phases == 2 &&
                 back.last_phase_epochs == 4 && back.epochs_trained == 9 && strlen(back.finished_at) == 19,
          "the run state reads back as written, with the time it finished (%s) %s", back.finished_at, err);
    harness_expectf(h, count_entries(dir, "run_state.json") == 1, "no temporary file is left beside it");
    snprintf(moved, sizeof moved, "%s/missing/run_state.json", dir);
    harness_expectf(h, tlcl_run_status_write(moved, &st, err, sizeof err) == -1 && strstr(err, moved),
          "a run state that cannot be written names the path: %s", err);
    struct {
        const char *text, *want;
    } bad[] = {
        {"{\"state\": \"finished\", \"reason\"", "is not a JSON object"},
        {"{\"state\": \"running\", \"reason\": \"x\", \"phases\": 1, \"last_phase_epochs\": 1, \"epochs_trained\": 1,"
         " \"finished_at\": \"x\"}",
         "key 'state' is 'running'"},
        {"{\"state\": \"finished\", \"phases\": 1, \"last_phase_epochs\": 1, \"epochs_trained\": 1, \"finished_at\": "
         "\"x\"}",
         "key 'reason' is missing"},
        {"{\"state\": \"finished\", \"reason\": \"x\", \"phases\": \"one\", \"last_phase_epochs\": 1, "
         "\"epochs_trained\": 1, \"finished_at\": \"x\"}",
         "key 'phases' is of the wrong type"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text(path, bad[i].text);
        err[0] = '\0';
        harness_expectf(h, tlcl_run_status_read(path, &back, err, sizeof err) == -1 && strstr(err, path) &&
                     strstr(err, bad[i].want) && strstr(err, "--fresh"),
              "a malformed run state is refused naming the file and the key: %s", err);
    }
    /* moving aside: renamed with a time stamp, never deleted; a second move in the same second gets its own name */
    harness_expectf(h, tlcl_move_aside(path, moved, sizeof moved, err, sizeof err) == 1 && access(path, F_OK) != 0 &&
                 access(moved, F_OK) == 0 && !strncmp(moved, path, strlen(path)) && moved[strlen(path)] == '.',
          "a file is moved aside to %s", moved);
    write_text(path, "{}");
    harness_expectf(h, tlcl_move_aside(path, moved2, sizeof moved2, err, sizeof err) == 1 && strcmp(moved, moved2) != 0 &&
                 access(moved, F_OK) == 0 && access(moved2, F_OK) == 0,
          "a second one keeps its own name: %s", moved2);
    harness_expectf(h, tlcl_move_aside(path, moved, sizeof moved, err, sizeof err) == 0, "nothing there: nothing moved");
}

static void test_plan_start(harness *h)
{
    static tlcl_config cfg;
    char err[2048] = "", run[512], backup[600], latest[700], state[700], *text = NULL;
    size_t tlen = 0;
    int finished = -1;
    tlcl_config_defaults(&cfg, err, sizeof err);
    snprintf(run, sizeof run, "%s/run", tmpdir);
    mkdir(run, 0755);
    snprintf(backup, sizeof backup, "%s/backup", run);
    snprintf(latest, sizeof latest, "%s/latest.safetensors", backup);
    snprintf(state, sizeof state, "%s/run_state.json", run);
    snprintf(cfg.train.artefacts.base_dir, sizeof cfg.train.artefacts.base_dir, "%s", run);
    snprintf(cfg.train.artefacts.backup_dir, sizeof cfg.train.artefacts.backup_dir, "%s", backup);
    cfg.callbacks.backup.enabled = 1;
    char path[700];
    tlcl_plan_state_path(&cfg, path, sizeof path);
    harness_expectf(h, !strcmp(path, state), "the run state lives in train.artefacts.base_dir: %s", path);
    FILE *out = open_memstream(&text, &tlen);

    harness_expectf(h, tlcl_plan_start(&cfg, TLCL_START_AUTO, &finished, out, err, sizeof err) == TLCL_OK && finished == 0,
          "a new run starts %s", err);
    err[0] = '\0';
    tlcl_status s = tlcl_plan_start(&cfg, TLCL_START_RESUME, &finished, out, err, sizeof err);
    harness_expectf(h, s != TLCL_OK && strstr(err, "--resume: no backup to resume from") && strstr(err, backup),
          "--resume without a backup is an error naming the directory: %s", err);
    mkdir(backup, 0755);
    s = tlcl_plan_start(&cfg, TLCL_START_RESUME, &finished, out, err, sizeof err);
    harness_expectf(h, s != TLCL_OK && strstr(err, "no backup to resume from"), "an empty backup directory is no backup");
    write_text(latest, "backup");
    harness_expectf(h, tlcl_plan_start(&cfg, TLCL_START_RESUME, &finished, out, err, sizeof err) == TLCL_OK && !finished,
          "--resume with a backup goes on (the trainer checks it)");
    cfg.callbacks.backup.enabled = 0;
    s = tlcl_plan_start(&cfg, TLCL_START_RESUME, &finished, out, err, sizeof err);
    harness_expectf(h, s != TLCL_OK && strstr(err, "callbacks.backup.enabled is false"),
          "--resume with callbacks.backup off is an error naming the key: %s", err);
    cfg.callbacks.backup.enabled = 1;

    /* a finished run: nothing to train, --resume or not */
    tlcl_run_status st = {.reason = "last_epoch", .phases = 1, .last_phase_epochs = 3, .epochs_trained = 3};
    tlcl_run_status_write(state, &st, err, sizeof err);
    fflush(out);
    size_t mark = tlen;
    s = tlcl_plan_start(&cfg, TLCL_START_AUTO, &finished, out, err, sizeof err);
    fflush(out);
    harness_expectf(h, s == TLCL_OK && finished == 1 && strstr(text + mark, "already finished") &&
                 strstr(text + mark, state) && strstr(text + mark, "--fresh"),
          "a finished run: says so, names the run state and --fresh: %s", text + mark);
    harness_expect(h, access(latest, F_OK) != 0,
                   "a finished run's backup (a kill came between the run state and its deletion) is deleted");
    finished = 0;
    harness_expectf(h, tlcl_plan_start(&cfg, TLCL_START_RESUME, &finished, out, err, sizeof err) == TLCL_OK && finished == 1,
          "--resume on a finished run: finished too");
    write_text(state, "garbage");
    err[0] = '\0';
    s = tlcl_plan_start(&cfg, TLCL_START_AUTO, &finished, out, err, sizeof err);
    harness_expectf(h, s != TLCL_OK && strstr(err, state), "an unreadable run state is an error naming it: %s", err);

    /* --fresh: the backup directory and the run state are renamed, the run starts over */
    mkdir(backup, 0755);
    write_text(latest, "a backup");
    fflush(out);
    mark = tlen;
    s = tlcl_plan_start(&cfg, TLCL_START_FRESH, &finished, out, err, sizeof err);
    fflush(out);
    char cmd[3000];
    snprintf(cmd, sizeof cmd, "test -f '%s'.20*/latest.safetensors && test -f '%s'.20* && test -d '%s' && ! test -e '%s'",
             backup, state, backup, latest);
    harness_expectf(h, s == TLCL_OK && finished == 0 && system(cmd) == 0 && count_entries(run, "backup.20") == 1 &&
                 count_entries(run, "run_state.json.20") == 1,
          "--fresh moves the backup and the run state aside, renamed (not deleted)");
    harness_expectf(h, strstr(text + mark, "moved aside") && strstr(text + mark, backup) && strstr(text + mark, state),
          "and says so: %s", text + mark);
    fflush(out);
    mark = tlen;
    s = tlcl_plan_start(&cfg, TLCL_START_FRESH, &finished, out, err, sizeof err);
    fflush(out);
    harness_expectf(h, s == TLCL_OK && count_entries(run, "backup.20") == 1 && strstr(text + mark, "nothing to move aside"),
          "--fresh with nothing there moves nothing (an empty backup directory stays): %s", text + mark);
    fclose(out);
    free(text);
}

int main(void)
{
    harness h;
    harness_init(&h, 0);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tlcl_resume_test_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_state_check(&h);
    test_run_status(&h);
    test_plan_start(&h);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (h.failed == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return harness_finish(&h);
}
