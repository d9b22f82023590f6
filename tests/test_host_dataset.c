/* test_host_dataset.c — dataset discovery, splits, split files and class
 * weights against tests/fixtures/split_*.json, which
 * tools/make_split_fixture.py writes from NumPy (and scikit-learn) running
 * Keras's algorithm on the same synthetic tree. The tree is recreated here
 * in a temporary directory with empty files: nothing is decoded. */
#define _XOPEN_SOURCE 700 /* nftw(), to remove the temporary tree */
#include "class_weight.h"
#include "dataset_dir.h"
#include "dataset_split.h"
#include "harness.h"
#include "model.h"
#include "mt19937.h"
#include "split_file.h"

#include <cJSON.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_root[256]; /* the temporary tree */

static void pass(harness *h, const char *fmt, const char *what)
{
    h->passed++;
    printf(fmt, what);
}

static void expect(harness *h, int ok, const char *what)
{
    if (ok)
        pass(h, "ok   %s\n", what);
    else
        harness_fail(h, "%s", what);
}

static cJSON *load_fixture(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", TLCL_TEST_FIXTURES, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "FAIL: missing fixture %s (run tools/make_split_fixture.py)\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)n + 1);
    size_t got = fread(text, 1, (size_t)n, f);
    text[got] = '\0';
    fclose(f);
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) {
        fprintf(stderr, "FAIL: fixture %s is not JSON\n", path);
        exit(1);
    }
    return j;
}

static const cJSON *item(const cJSON *j, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(j, key);
}

/* ---- the temporary tree ------------------------------------------------ */

static int mkdirs_for(char *path) /* creates every parent directory of path */
{
    for (char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
        *p = '\0';
        int bad = mkdir(path, 0755) != 0 && access(path, F_OK) != 0;
        *p = '/';
        if (bad)
            return -1;
    }
    return 0;
}

static int touch(const char *root, const char *rel)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    FILE *f = mkdirs_for(path) == 0 ? fopen(path, "wb") : NULL;
    return f ? fclose(f) : -1;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_tree(const char *root)
{
    nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void make_tree(const cJSON *tree, const char *root)
{
    const cJSON *f;
    cJSON_ArrayForEach(f, item(tree, "files")) {
        if (touch(root, f->valuestring) != 0) {
            fprintf(stderr, "FAIL: cannot create %s/%s\n", root, f->valuestring);
            exit(1);
        }
    }
}

/* ---- discovery ------------------------------------------------------------ */

/* Compares a sample list (indices into ds, or all of ds when idx is NULL)
 * with a fixture array of {"path", "label"}. */
static int same_samples(harness *h, const char *what, const tlcl_dataset *ds, const size_t *idx, size_t n,
                        const cJSON *want)
{
    if ((size_t)cJSON_GetArraySize(want) != n) {
        harness_fail(h, "%s: %zu files, want %d", what, n, cJSON_GetArraySize(want));
        return 0;
    }
    size_t k = 0;
    const cJSON *w;
    cJSON_ArrayForEach(w, want) {
        const tlcl_sample *s = &ds->samples[idx ? idx[k] : k];
        if (strcmp(s->path, item(w, "path")->valuestring) != 0 || s->label != item(w, "label")->valueint) {
            harness_fail(h, "%s: item %zu is %s (%d), want %s (%d)", what, k, s->path, s->label,
                         item(w, "path")->valuestring, item(w, "label")->valueint);
            return 0;
        }
        k++;
    }
    pass(h, "ok   %s\n", what);
    return 1;
}

static void open_or_die(tlcl_dataset *ds, const char *root, const tlcl_dataset_options *o)
{
    char err[1024];
    if (tlcl_dataset_open(ds, root, o, err, sizeof err) != TLCL_OK) {
        fprintf(stderr, "FAIL: %s\n", err);
        exit(1);
    }
}

static void test_discovery(harness *h, const cJSON *tree)
{
    tlcl_dataset ds;
    tlcl_dataset_options o = tlcl_dataset_options_default();
    o.keras_only = 1;
    open_or_die(&ds, g_root, &o);
    int names_ok = ds.num_classes == cJSON_GetArraySize(item(tree, "class_names"));
    for (int c = 0; names_ok && c < ds.num_classes; c++)
        names_ok = strcmp(ds.class_names[c], cJSON_GetArrayItem(item(tree, "class_names"), c)->valuestring) == 0;
    expect(h, names_ok, "class names: byte order, dot-dirs skipped, empty class kept");
    same_samples(h, "discovery order, Keras extensions", &ds, NULL, ds.count, item(tree, "keras_only"));
    tlcl_dataset_free(&ds);

    open_or_die(&ds, g_root, NULL);
    same_samples(h, "discovery order, with tlcl's extensions", &ds, NULL, ds.count, item(tree, "tlcl"));
    tlcl_dataset_free(&ds);

    const cJSON *sub = item(tree, "subset");
    const char *names[8];
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, item(sub, "class_names")) names[n++] = e->valuestring;
    o.class_names = names;
    o.num_class_names = n;
    open_or_die(&ds, g_root, &o);
    same_samples(h, "explicit class_names subset, caller's order", &ds, NULL, ds.count, item(sub, "samples"));
    tlcl_dataset_free(&ds);
}

/* ---- the NumPy generator ------------------------------------------------ */

static void test_mt19937(harness *h, const cJSON *kf)
{
    const cJSON *st;
    cJSON_ArrayForEach(st, item(kf, "mt19937")) {
        tlcl_mt19937 g;
        uint32_t seed = (uint32_t)item(st, "seed")->valuedouble;
        tlcl_mt19937_seed(&g, seed);
        int k = 0, bad = -1;
        const cJSON *v;
        cJSON_ArrayForEach(v, item(st, "uint32")) {
            if (tlcl_mt19937_next(&g) != (uint32_t)v->valuedouble && bad < 0)
                bad = k;
            k++;
        }
        char what[128];
        snprintf(what, sizeof what, "RandomState(%u) raw uint32 stream, %d values", seed, k);
        if (bad >= 0)
            harness_fail(h, "%s: differs from value %d", what, bad);
        else
            pass(h, "ok   %s\n", what);
    }
}

static void test_shuffles(harness *h, const cJSON *kf)
{
    const cJSON *c;
    int cases = 0, bad = 0;
    cJSON_ArrayForEach(c, item(kf, "shuffles")) {
        size_t n = (size_t)item(c, "n")->valueint;
        size_t *perm = malloc(n * sizeof *perm);
        tlcl_mt19937_permutation((uint32_t)item(c, "seed")->valuedouble, perm, n);
        for (size_t i = 0; i < n; i++)
            if (perm[i] != (size_t)cJSON_GetArrayItem(item(c, "perm"), (int)i)->valueint) {
                harness_fail(h, "RandomState(%d).shuffle(range(%zu)) differs at %zu", item(c, "seed")->valueint,
                             n, i);
                bad++;
                break;
            }
        free(perm);
        cases++;
    }
    if (!bad)
        printf("ok   RandomState(seed).shuffle permutations, %d cases\n", cases), h->passed++;
}

/* ---- splits ----------------------------------------------------------- */

static tlcl_split split_or_fail(harness *h, const tlcl_dataset *ds, const tlcl_split_options *o, int *ok)
{
    tlcl_split s;
    char err[1024];
    *ok = tlcl_split_compute(ds, o, &s, err, sizeof err) == TLCL_OK;
    if (!*ok)
        harness_fail(h, "split: %s", err);
    return s;
}

static void test_keras_splits(harness *h, const tlcl_dataset *ds, const cJSON *kf)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, item(kf, "splits")) {
        tlcl_split_options o = tlcl_split_options_default();
        o.seed = (int64_t)item(c, "seed")->valuedouble;
        o.validation_split = item(c, "validation_split")->valuedouble;
        o.shuffle = cJSON_IsTrue(item(c, "shuffle"));
        int ok;
        tlcl_split s = split_or_fail(h, ds, &o, &ok);
        if (!ok)
            continue;
        char what[160];
        snprintf(what, sizeof what, "keras split seed %lld split %g shuffle %d: training", (long long)o.seed,
                 o.validation_split, o.shuffle);
        same_samples(h, what, ds, s.train, s.n_train, item(c, "training"));
        snprintf(what, sizeof what, "keras split seed %lld split %g shuffle %d: validation", (long long)o.seed,
                 o.validation_split, o.shuffle);
        same_samples(h, what, ds, s.val, s.n_val, item(c, "validation"));
        tlcl_split_free(&s);
    }
}

static void test_subsamples(harness *h, const tlcl_dataset *ds, const cJSON *kf)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, item(kf, "subsamples")) {
        tlcl_split_options o = tlcl_split_options_default();
        o.seed = (int64_t)item(c, "seed")->valuedouble;
        o.validation_split = item(c, "validation_split")->valuedouble;
        o.train_fraction = o.val_fraction = item(c, "fraction")->valuedouble;
        int ok;
        tlcl_split s = split_or_fail(h, ds, &o, &ok);
        if (!ok)
            continue;
        char what[160];
        snprintf(what, sizeof what, "subsample %g of the seed %lld split %g: training", o.train_fraction,
                 (long long)o.seed, o.validation_split);
        same_samples(h, what, ds, s.train, s.n_train, item(c, "training"));
        snprintf(what, sizeof what, "subsample %g of the seed %lld split %g: validation", o.train_fraction,
                 (long long)o.seed, o.validation_split);
        same_samples(h, what, ds, s.val, s.n_val, item(c, "validation"));
        tlcl_split_free(&s);
    }
    expect(h, tlcl_subsample_count(1000, 0.2) == 200 && tlcl_subsample_count(7, 0.5) == 3 &&
                  tlcl_subsample_count(10, 0.7) == 7,
           "subsample counts are int(fraction * n)");
}

/* Every file in exactly one set. */
static int is_partition(const tlcl_dataset *ds, const tlcl_split *s)
{
    if (s->n_train + s->n_val != ds->count)
        return 0;
    unsigned char *seen = calloc(ds->count, 1);
    int ok = 1;
    for (size_t k = 0; k < s->n_train; k++)
        ok &= !seen[s->train[k]]++;
    for (size_t k = 0; k < s->n_val; k++)
        ok &= !seen[s->val[k]]++;
    free(seen);
    return ok;
}

static void test_stratified(harness *h, const tlcl_dataset *ds)
{
    tlcl_split_options o = tlcl_split_options_default();
    o.method = TLCL_SPLIT_STRATIFIED;
    o.validation_split = 0.25;
    for (o.seed = 1; o.seed <= 3; o.seed++) {
        int ok;
        tlcl_split s = split_or_fail(h, ds, &o, &ok);
        if (!ok)
            return;
        size_t n_c[16] = {0}, v_c[16] = {0};
        for (size_t i = 0; i < ds->count; i++)
            n_c[ds->samples[i].label]++;
        for (size_t k = 0; k < s.n_val; k++)
            v_c[ds->samples[s.val[k]].label]++;
        int prop = is_partition(ds, &s);
        for (int c = 0; c < ds->num_classes; c++)
            prop &= v_c[c] == (size_t)(0.25 * (double)n_c[c]);
        char what[128];
        snprintf(what, sizeof what, "stratified seed %lld: partition, validation per class = floor(0.25 n_c)",
                 (long long)o.seed);
        expect(h, prop, what);
        tlcl_split_free(&s);
    }
}

/* No group key has files on both sides. */
static int groups_respected(const tlcl_dataset *ds, const tlcl_split *s, tlcl_group_on on, const regex_t *re)
{
    char a[256], b[256];
    for (size_t i = 0; i < s->n_train; i++) {
        tlcl_group_key(ds->samples[s->train[i]].path, on, re, a, sizeof a);
        for (size_t k = 0; k < s->n_val; k++) {
            tlcl_group_key(ds->samples[s->val[k]].path, on, re, b, sizeof b);
            if (strcmp(a, b) == 0)
                return 0;
        }
    }
    return 1;
}

static void test_group(harness *h, const tlcl_dataset *ds)
{
    char key[64];
    expect(h, tlcl_group_key("cls/sub/S12_0003.jpg", TLCL_GROUP_ON_NAME, NULL, key, sizeof key) == 0 &&
                  strcmp(key, "S12") == 0,
           "default group key: file name before the last '_'");
    expect(h, tlcl_group_key("cls/a_b_c.png", TLCL_GROUP_ON_NAME, NULL, key, sizeof key) == 0 &&
                  strcmp(key, "a_b") == 0 &&
                  tlcl_group_key("cls/plain.png", TLCL_GROUP_ON_NAME, NULL, key, sizeof key) == 0 &&
                  strcmp(key, "plain") == 0,
           "default group key: last '_' only; no '_' gives the stem");
    regex_t us;
    regcomp(&us, "^([^_]+)_", REG_EXTENDED); /* config/examples/focal_class_weights.yaml's pattern */
    expect(h, tlcl_group_key("copepod/S12_0003.jpg", TLCL_GROUP_ON_NAME, &us, key, sizeof key) == 0 &&
                  strcmp(key, "S12") == 0 &&
                  tlcl_group_key("copepod/sub/S12_0003.jpg", TLCL_GROUP_ON_PATH, &us, key, sizeof key) == 0 &&
                  strcmp(key, "sub/S12") == 0 &&
                  tlcl_group_key("copepod/S12_0003.jpg", TLCL_GROUP_ON_CLASS_PATH, &us, key, sizeof key) == 0 &&
                  strcmp(key, "copepod/S12") == 0,
           "group pattern on the file name (default), the path below the class, or the class path when asked");
    regfree(&us);
    tlcl_split_options o = tlcl_split_options_default();
    o.method = TLCL_SPLIT_GROUP;
    o.validation_split = 0.3;
    for (o.seed = 5; o.seed <= 7; o.seed++) {
        int ok;
        tlcl_split s = split_or_fail(h, ds, &o, &ok);
        if (!ok)
            return;
        char what[128];
        snprintf(what, sizeof what, "group split seed %lld: partition, no group on both sides, >= int(0.3 N)",
                 (long long)o.seed);
        expect(h, is_partition(ds, &s) && groups_respected(ds, &s, TLCL_GROUP_ON_NAME, NULL) &&
                      s.n_val >= tlcl_subsample_count(ds->count, 0.3) && s.n_train > 0,
               what);
        tlcl_split_free(&s);
    }
    regex_t re;
    regcomp(&re, "^([^/]+)/", REG_EXTENDED);
    o.group_pattern = "^([^/]+)/"; /* group = class directory, asked for with class_path */
    o.group_on = TLCL_GROUP_ON_CLASS_PATH;
    int ok;
    tlcl_split s = split_or_fail(h, ds, &o, &ok);
    if (ok)
        expect(h, is_partition(ds, &s) && groups_respected(ds, &s, TLCL_GROUP_ON_CLASS_PATH, &re),
               "group split by a pattern (class dir)");
    tlcl_split_free(&s);
    regfree(&re);
}

/* ---- split files -------------------------------------------------------- */

static int same_split(const tlcl_split *a, const tlcl_split *b)
{
    return a->n_train == b->n_train && a->n_val == b->n_val && a->seed == b->seed &&
           memcmp(a->train, b->train, a->n_train * sizeof *a->train) == 0 &&
           memcmp(a->val, b->val, a->n_val * sizeof *a->val) == 0;
}

static tlcl_status resolve(const tlcl_dataset *ds, const tlcl_split_options *o, int strict, tlcl_split *s,
                           tlcl_split_outcome *out, char *err, size_t len)
{
    char path[512], note[1024] = "";
    snprintf(path, sizeof path, "%s/split.json", g_root);
    tlcl_status st = tlcl_split_resolve(path, ds, o, strict, s, out, note, sizeof note, err, len);
    printf("     note: %s\n", st == TLCL_OK ? note : err);
    return st;
}

static void test_split_file(harness *h)
{
    tlcl_dataset ds;
    open_or_die(&ds, g_root, NULL);
    tlcl_split_options o = tlcl_split_options_default();
    o.seed = 42;
    o.validation_split = 0.2;
    tlcl_split a, b, ref;
    tlcl_split_outcome out;
    char err[1024];
    tlcl_split_compute(&ds, &o, &ref, err, sizeof err);
    expect(h, resolve(&ds, &o, 0, &a, &out, err, sizeof err) == TLCL_OK && out == TLCL_SPLIT_CREATED &&
                  same_split(&a, &ref),
           "split file: first run computes and writes");
    expect(h, resolve(&ds, &o, 0, &b, &out, err, sizeof err) == TLCL_OK && out == TLCL_SPLIT_REUSED &&
                  same_split(&a, &b),
           "split file: rerun reuses it, same lists");
    tlcl_split_free(&b);
    o.seed = -1; /* no seed given: the stored one is kept */
    expect(h, resolve(&ds, &o, 0, &b, &out, err, sizeof err) == TLCL_OK && out == TLCL_SPLIT_REUSED &&
                  b.seed == 42 && same_split(&a, &b),
           "split file: no seed given reuses the stored seed");
    tlcl_split_free(&b);
    o.seed = 43;
    expect(h, resolve(&ds, &o, 0, &b, &out, err, sizeof err) == TLCL_OK && out == TLCL_SPLIT_PARAMS_CHANGED &&
                  b.seed == 43,
           "split file: another seed recomputes");
    tlcl_split_free(&b);
    tlcl_split_free(&a);
    tlcl_split_free(&ref);
    tlcl_dataset_free(&ds);

    touch(g_root, "NORMAL/new_0001.jpg");
    open_or_die(&ds, g_root, NULL);
    expect(h, resolve(&ds, &o, 1, &b, &out, err, sizeof err) == TLCL_ERR_ARG && strstr(err, "changed"),
           "split file: changed directory under strict is an error");
    expect(h, resolve(&ds, &o, 0, &b, &out, err, sizeof err) == TLCL_OK && out == TLCL_SPLIT_DIR_CHANGED &&
                  b.n_train + b.n_val == ds.count,
           "split file: changed directory recomputes and says so");
    tlcl_split_free(&b);
    tlcl_dataset_free(&ds);
    char path[512];
    snprintf(path, sizeof path, "%s/NORMAL/new_0001.jpg", g_root);
    remove(path);
}

static void test_split_file_errors(harness *h)
{
    tlcl_dataset ds;
    open_or_die(&ds, g_root, NULL);
    char path[512], tmp[600];
    snprintf(path, sizeof path, "%s/split.json", g_root);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    expect(h, access(tmp, F_OK) != 0, "split file: no temporary file left behind");
    FILE *f = fopen(path, "w");
    fputs("{\"format\": \"something else\"}", f);
    fclose(f);
    tlcl_split_options o = tlcl_split_options_default();
    o.seed = 1;
    o.validation_split = 0.2;
    tlcl_split s;
    tlcl_split_outcome out;
    char err[1024];
    expect(h, resolve(&ds, &o, 0, &s, &out, err, sizeof err) == TLCL_ERR_FORMAT,
           "split file: a foreign file is an error, not overwritten");
    remove(path);
    /* a hand-edited file listing a training file in validation too (found
     * while fuzzing the reader): refused, not a leak between the sets */
    expect(h, resolve(&ds, &o, 0, &s, &out, err, sizeof err) == TLCL_OK, "split file: written");
    tlcl_split_free(&s);
    size_t n = 0;
    char *text = (char *)tlcl_read_input(path, "split file", 1 << 24, &n, err, sizeof err);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "training"), 0);
    if (first)
        cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(j, "validation"), cJSON_Duplicate(first, 1));
    char *edited = cJSON_Print(j);
    f = fopen(path, "w");
    if (f && edited)
        fputs(edited, f);
    if (f)
        fclose(f);
    err[0] = 0;
    expect(h, first && resolve(&ds, &o, 0, &s, &out, err, sizeof err) == TLCL_ERR_FORMAT &&
                  strstr(err, "is listed twice"),
           "split file: a file in both lists is refused");
    free(edited), free(text), cJSON_Delete(j);
    remove(path);
    tlcl_dataset_free(&ds);
}

/* ---- samples spread over several classes ---------------------------------- */

/* The sample of a path of the leak trees, computed here without
 * tlcl_group_key: "cls/S03_0001.png" -> "S03", "cls/S03/img_1.png" -> "S03". */
static void sample_of(const char *path, char *dst, size_t len)
{
    const char *p = strchr(path, '/') + 1;
    size_t n = strcspn(p, "/_");
    snprintf(dst, len, "%.*s", (int)(n < len ? n : len - 1), p);
}

/* side[file] in {0, 1, 2} (train, validation, test): no sample on two sides. */
static int no_sample_crosses(const tlcl_dataset *ds, const unsigned char *side, char *bad, size_t len)
{
    char a[64], b[64];
    for (size_t i = 0; i < ds->count; i++) {
        sample_of(ds->samples[i].path, a, sizeof a);
        for (size_t k = i + 1; k < ds->count; k++) {
            sample_of(ds->samples[k].path, b, sizeof b);
            if (side[i] != side[k] && strcmp(a, b) == 0) {
                snprintf(bad, len, "sample %s: %s on side %d, %s on side %d", a, ds->samples[i].path, side[i],
                         ds->samples[k].path, side[k]);
                return 0;
            }
        }
    }
    return 1;
}

/* 12 samples, each with 3 images in two or three of four classes; by name
 * ("cls/S03_0001.png") or in a sub-directory per sample ("cls/S03/img_1.png"). */
static void make_leak_tree(const char *root, int subdirs)
{
    static const char *const classes[] = {"copepod", "detritus", "diatom", "egg"};
    char rel[256];
    for (int smp = 0; smp < 12; smp++)
        for (int c = 0; c < 4; c++) {
            if (c != smp % 4 && c != (smp + 1) % 4 && !(smp % 3 == 0 && c == (smp + 2) % 4))
                continue;
            for (int k = 0; k < 3; k++) {
                if (subdirs)
                    snprintf(rel, sizeof rel, "%s/S%02d/img_%d.png", classes[c], smp, k);
                else
                    snprintf(rel, sizeof rel, "%s/S%02d_%04d.png", classes[c], smp, k);
                if (touch(root, rel) != 0) {
                    fprintf(stderr, "FAIL: cannot create %s/%s\n", root, rel);
                    exit(1);
                }
            }
        }
}

/* A test split, then a validation split of what is left (run_data's order):
 * every sample on exactly one of the three sides, over all classes. */
static void check_three_way(harness *h, const tlcl_dataset *ds, tlcl_split_options o, const char *label)
{
    char what[1024], bad[512] = "", err[1024];
    int ok_all = 1, runs = 0;
    unsigned char *side = calloc(ds->count, 1);
    for (o.seed = 1; o.seed <= 8; o.seed++) {
        tlcl_split te, va;
        o.validation_split = 0.2;
        if (tlcl_split_compute(ds, &o, &te, err, sizeof err) != TLCL_OK) {
            harness_fail(h, "%s: test split: %s", label, err);
            free(side);
            return;
        }
        tlcl_dataset pool = *ds;
        pool.samples = malloc(te.n_train * sizeof *pool.samples);
        pool.count = te.n_train;
        for (size_t i = 0; i < te.n_train; i++)
            pool.samples[i] = ds->samples[te.train[i]];
        o.validation_split = 0.25;
        if (tlcl_split_compute(&pool, &o, &va, err, sizeof err) != TLCL_OK) {
            harness_fail(h, "%s: validation split: %s", label, err);
            free(pool.samples), tlcl_split_free(&te), free(side);
            return;
        }
        memset(side, 0, ds->count);
        for (size_t i = 0; i < te.n_val; i++)
            side[te.val[i]] = 2;
        for (size_t i = 0; i < va.n_val; i++)
            side[te.train[va.val[i]]] = 1;
        ok_all &= te.n_val > 0 && va.n_val > 0 && va.n_train > 0 && no_sample_crosses(ds, side, bad, sizeof bad);
        runs++;
        free(pool.samples);
        tlcl_split_free(&te);
        tlcl_split_free(&va);
        if (!ok_all)
            break;
    }
    snprintf(what, sizeof what, "%s: train / validation / test over %d seeds, no sample on two sides%s%s", label,
             runs, bad[0] ? ": " : "", bad);
    expect(h, ok_all, what);
    free(side);
}

static void test_group_no_leak(harness *h)
{
    char root[512];
    snprintf(root, sizeof root, "%s/leak_names", g_root);
    make_leak_tree(root, 0);
    tlcl_dataset ds;
    open_or_die(&ds, root, NULL);
    tlcl_split_options o = tlcl_split_options_default();
    o.method = TLCL_SPLIT_GROUP;
    check_three_way(h, &ds, o, "group split, default key, samples in several classes");
    o.group_pattern = "^([^_]+)_"; /* the example's pattern: on the file name by default */
    check_three_way(h, &ds, o, "group split, pattern '^([^_]+)_' on the name, samples in several classes");

    /* the split file keeps group_on and is reused; another group_on recomputes */
    char path[600], err[1024], note[1024];
    snprintf(path, sizeof path, "%s/split.json", root);
    tlcl_split a, b;
    tlcl_split_outcome out;
    o.seed = 3;
    o.validation_split = 0.25;
    tlcl_status s1 = tlcl_split_resolve(path, &ds, &o, 1, &a, &out, note, sizeof note, err, sizeof err);
    tlcl_status s2 = tlcl_split_resolve(path, &ds, &o, 1, &b, &out, note, sizeof note, err, sizeof err);
    expect(h, s1 == TLCL_OK && s2 == TLCL_OK && out == TLCL_SPLIT_REUSED && same_split(&a, &b),
           "group split file: written once, reused by the next run");
    tlcl_split_free(&b);
    o.group_on = TLCL_GROUP_ON_CLASS_PATH;
    s2 = tlcl_split_resolve(path, &ds, &o, 1, &b, &out, note, sizeof note, err, sizeof err);
    expect(h, s2 == TLCL_OK && out == TLCL_SPLIT_PARAMS_CHANGED && strstr(note, "group_on"),
           "group split file: another group_on recomputes and says so");
    tlcl_split_free(&a);
    tlcl_split_free(&b);
    tlcl_dataset_free(&ds);

    snprintf(root, sizeof root, "%s/leak_dirs", g_root);
    make_leak_tree(root, 1);
    open_or_die(&ds, root, NULL);
    o = tlcl_split_options_default();
    o.method = TLCL_SPLIT_GROUP;
    o.group_pattern = "^([^/]+)/";
    o.group_on = TLCL_GROUP_ON_PATH;
    check_three_way(h, &ds, o, "group split, a sub-directory per sample (group_on path), several classes");
    tlcl_dataset_free(&ds);
}

/* ---- class weights ---------------------------------------------------- */

static void test_balanced(harness *h, const tlcl_dataset *ds, const cJSON *cw)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, item(cw, "cases")) {
        tlcl_split_options o = tlcl_split_options_default();
        o.seed = (int64_t)item(c, "seed")->valuedouble;
        o.validation_split = item(c, "validation_split")->valuedouble;
        o.shuffle = cJSON_IsTrue(item(c, "shuffle"));
        int ok;
        tlcl_split s = split_or_fail(h, ds, &o, &ok);
        if (!ok)
            continue;
        int *labels = malloc((s.n_train + 1) * sizeof *labels);
        for (size_t k = 0; k < s.n_train; k++)
            labels[k] = ds->samples[s.train[k]].label;
        double w[16];
        char err[256], what[160];
        tlcl_class_weight_balanced(labels, s.n_train, ds->num_classes, w, err, sizeof err);
        double worst = 0;
        for (int k = 0; k < ds->num_classes; k++)
            worst = fmax(worst, fabs(w[k] - cJSON_GetArrayItem(item(c, "balanced"), k)->valuedouble));
        snprintf(what, sizeof what, "balanced class weights, seed %lld split %g shuffle %d (max diff %.1e)",
                 (long long)o.seed, o.validation_split, o.shuffle, worst);
        expect(h, worst <= 1e-15 * 16, what);
        free(labels);
        tlcl_split_free(&s);
    }
}

static void test_manual_weights(harness *h, const tlcl_dataset *ds)
{
    const char *const *cls = (const char *const *)ds->class_names;
    const char *names[] = {"Virus", "alpha"};
    double weights[] = {3.0, 0.5}, w[16];
    char err[512];
    int ok = tlcl_class_weight_manual(names, weights, 2, cls, ds->num_classes, w, err, sizeof err) == TLCL_OK;
    expect(h, ok && w[2] == 3.0 && w[3] == 0.5 && w[0] == 1.0 && w[5] == 1.0,
           "manual class weights by name; classes not named get 1.0");
    const char *bad[] = {"virus"};
    ok = tlcl_class_weight_manual(bad, weights, 1, cls, ds->num_classes, w, err, sizeof err) == TLCL_ERR_ARG &&
         strstr(err, "'virus'") && strstr(err, "'Virus'") && strstr(err, "'zeta_empty'");
    printf("     error: %s\n", err);
    expect(h, ok, "manual class weights: an unknown name lists the classes");
    const char *dup[] = {"alpha", "alpha"};
    expect(h, tlcl_class_weight_manual(dup, weights, 2, cls, ds->num_classes, w, err, sizeof err) == TLCL_ERR_ARG,
           "manual class weights: a name given twice is an error");
    /* Keras's {0: w0, 3: w3}: keys that are no class name are class indexes (seed 001) */
    const char *idx[] = {"0", "3"};
    ok = tlcl_class_weight_manual(idx, weights, 2, cls, ds->num_classes, w, err, sizeof err) == TLCL_OK;
    expect(h, ok && w[0] == 3.0 && w[3] == 0.5 && w[2] == 1.0, "manual class weights by class index, as Keras");
    const char *same[] = {"alpha", "3"}, *out[] = {"99"};
    expect(h, tlcl_class_weight_manual(same, weights, 2, cls, ds->num_classes, w, err, sizeof err) == TLCL_ERR_ARG &&
                  strstr(err, "names a class given before"),
           "manual class weights: a class by name and by index is given twice");
    expect(h, tlcl_class_weight_manual(out, weights, 1, cls, ds->num_classes, w, err, sizeof err) == TLCL_ERR_ARG &&
                  strstr(err, "neither a class nor a class index"),
           "manual class weights: an index past the classes is refused");
    const char *digits[] = {"0", "1", "10", "2"}, *k10[] = {"10"}, *k2[] = {"2"};
    ok = tlcl_class_weight_manual(k10, weights, 1, digits, 4, w, err, sizeof err) == TLCL_OK && w[2] == 3.0;
    expect(h, ok, "folders named by digits: '10' names folder 10 (index 2), no index 10 exists");
    ok = tlcl_class_weight_manual(k2, weights, 1, digits, 4, w, err, sizeof err) == TLCL_ERR_ARG &&
         strstr(err, "both the class folder '2' (index 3) and class index 2");
    printf("     error: %s\n", err);
    expect(h, ok, "a key that is one folder's name and another class's index is refused");
    int labels[] = {2, 3, 0, 7, -1};
    float sw[5];
    tlcl_class_weight_manual(names, weights, 2, cls, ds->num_classes, w, err, sizeof err);
    tlcl_class_weight_per_sample(w, ds->num_classes, labels, 5, sw);
    expect(h, sw[0] == 3.0f && sw[1] == 0.5f && sw[2] == 1.0f && sw[3] == 1.0f && sw[4] == 1.0f,
           "per-sample weights: class weight, 1.0 for unknown labels (Keras)");
    tlcl_class_weight_spec none = {TLCL_CLASS_WEIGHT_NONE, NULL, NULL, 0, 1.0};
    tlcl_class_weight_resolve(&none, cls, ds->num_classes, labels, 0, w, err, sizeof err);
    expect(h, w[0] == 1.0 && w[ds->num_classes - 1] == 1.0, "class_weight none: every class 1.0");
}

/* Balanced weights to a power p, against values worked out by hand: 10
 * training files, counts 6, 3, 1 and an absent fourth class, so K = 3
 * classes present and the balanced weights are 10/18, 10/9, 10/3 (and 1). */
static void test_weight_power(harness *h)
{
    static const char *const cls[] = {"copepod", "detritus", "diatom", "egg"};
    const int labels[] = {0, 0, 1, 0, 2, 0, 1, 0, 1, 0};
    static const struct {
        double p, w[4];
    } ref[] = {
        {1.0, {0.5555555555555556, 1.1111111111111112, 3.3333333333333335, 1.0}},
        {0.5, {0.7453559924999299, 1.0540925533894598, 1.8257418583505538, 1.0}}, /* sqrt(10/18) ... */
        {0.25, {0.8633400213704505, 1.026690096080341, 1.3512001548070345, 1.0}},
        {0.0, {1.0, 1.0, 1.0, 1.0}},
    };
    char err[512], what[160];
    for (size_t r = 0; r < sizeof ref / sizeof ref[0]; r++) {
        tlcl_class_weight_spec spec = {TLCL_CLASS_WEIGHT_BALANCED, NULL, NULL, 0, ref[r].p};
        double w[4];
        int ok = tlcl_class_weight_resolve(&spec, cls, 4, labels, 10, w, err, sizeof err) == TLCL_OK;
        for (int c = 0; c < 4; c++)
            ok &= fabs(w[c] - ref[r].w[c]) <= 1e-15 * ref[r].w[c];
        snprintf(what, sizeof what, "balanced class weights to the power %g: %.6f %.6f %.6f %.6f (by hand)", ref[r].p,
                 w[0], w[1], w[2], w[3]);
        expect(h, ok, what);
    }
    tlcl_class_weight_spec spec = {TLCL_CLASS_WEIGHT_BALANCED, NULL, NULL, 0, 0.5};
    double w[4];
    tlcl_class_weight_resolve(&spec, cls, 4, labels, 10, w, err, sizeof err);
    char line[512];
    tlcl_class_weight_describe(&spec, cls, 4, w, line, sizeof line);
    printf("     %s\n", line);
    expect(h, strcmp(line, "class weights (balanced, power 0.5): copepod 0.7454, detritus 1.0541, diatom 1.8257, "
                           "egg 1.0000") == 0,
           "class weights: the line printed at train time");
    char path[512];
    snprintf(path, sizeof path, "%s/class_weights.json", g_root);
    int ok = tlcl_class_weight_write_json(path, &spec, cls, 4, w, labels, 10, err, sizeof err) == TLCL_OK;
    FILE *f = fopen(path, "rb");
    char text[4096] = "";
    size_t got = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[got] = '\0';
    if (f)
        fclose(f);
    cJSON *j = cJSON_Parse(text);
    const cJSON *classes = j ? item(j, "classes") : NULL;
    ok &= j && !strcmp(item(j, "mode")->valuestring, "balanced") && item(j, "power")->valuedouble == 0.5 &&
          cJSON_GetArraySize(classes) == 4;
    for (int c = 0; ok && c < 4; c++) {
        const cJSON *e = cJSON_GetArrayItem(classes, c);
        static const int counts[] = {6, 3, 1, 0};
        ok &= !strcmp(item(e, "name")->valuestring, cls[c]) && item(e, "count")->valueint == counts[c] &&
              fabs(item(e, "weight")->valuedouble - w[c]) <= 1e-14 * w[c]; /* cJSON writes 15 digits */
    }
    cJSON_Delete(j);
    if (!ok)
        printf("     %s\n", text);
    remove(path);
    expect(h, ok, "class weights saved as JSON: mode, power, each class's count and weight");
}

/* ---- errors ------------------------------------------------------------- */

static void expect_open_error(harness *h, const char *root, const tlcl_dataset_options *o, const char *needle,
                              const char *what)
{
    tlcl_dataset ds;
    char err[1024] = "";
    tlcl_status s = tlcl_dataset_open(&ds, root, o, err, sizeof err);
    printf("     error: %s\n", err);
    expect(h, s != TLCL_OK && strstr(err, needle) != NULL, what);
}

static void test_open_errors(harness *h)
{
    char dir[300];
    expect_open_error(h, "/nonexistent/tlcl-data", NULL, "does not exist", "missing directory");
    snprintf(dir, sizeof dir, "%s/errs", g_root);
    touch(dir, "one/a.jpg");
    expect_open_error(h, dir, NULL, "single class", "a single class");
    rm_tree(dir);
    touch(dir, "one/readme.txt");
    touch(dir, "two/a.jpg.txt");
    expect_open_error(h, dir, NULL, "no images", "no images");
    const char *names[] = {"one", "three"};
    tlcl_dataset_options o = tlcl_dataset_options_default();
    o.class_names = names;
    o.num_class_names = 2;
    expect_open_error(h, dir, &o, "'three' is not a sub-directory", "class_names not a subset");
    rm_tree(dir);
}

static void test_class_mismatch(harness *h)
{
    char train[300], test[300], err[1024];
    snprintf(train, sizeof train, "%s/cmp_train", g_root);
    snprintf(test, sizeof test, "%s/cmp_test", g_root);
    const char *tr[] = {"cat/a.jpg", "dog/b.jpg", "owl/c.png"}, *te[] = {"cat/a.jpg", "dog/b.jpg", "Owl/c.png"};
    for (int i = 0; i < 3; i++)
        touch(train, tr[i]), touch(test, te[i]);
    tlcl_dataset a, b;
    open_or_die(&a, train, NULL);
    open_or_die(&b, test, NULL);
    tlcl_status s = tlcl_dataset_check_same_classes(&a, "train", &b, "test", err, sizeof err);
    printf("     error: %s\n", err);
    expect(h, s == TLCL_ERR_ARG && strstr(err, "only in train: 'owl'") && strstr(err, "only in test: 'Owl'"),
           "train/test class names differ: the message lists the differences");
    expect(h, tlcl_dataset_check_same_classes(&a, "train", &a, "train", err, sizeof err) == TLCL_OK,
           "same class names pass");
    tlcl_dataset_free(&a);
    tlcl_dataset_free(&b);
    rm_tree(train);
    rm_tree(test);
}

/* Names that reach JSON must be UTF-8: the checker against a table of
 * valid and invalid sequences (RFC 3629 and Unicode's table 3-7), then the
 * data set refusing a Latin-1 class folder and image name, accepting UTF-8. */
static void test_utf8_names(harness *h)
{
    static const struct {
        const char *s;
        long bad_at;
    } cases[] = {
        {"abc", -1}, {"caf\xc3\xa9", -1}, {"\xe6\x97\xa5\xe6\x9c\xac", -1}, {"\xf0\x9f\x98\x80", -1},
        {"\xf4\x8f\xbf\xbf", -1}, {"caf\xe9", 3}, {"\xc0\xaf", 0}, {"\xe0\x80\xaf", 0}, {"\xed\xa0\x80", 0},
        {"\xf4\x90\x80\x80", 0}, {"a\xe6\x97", 1}, {"\x80", 0}, {"ok\xf5\x80\x80\x80", 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        harness_expectf(h, tlcl_utf8_invalid_at(cases[i].s) == cases[i].bad_at, "utf8 case %zu: first bad byte %ld",
                        i, cases[i].bad_at);
    char shown[64];
    tlcl_utf8_printable(shown, sizeof shown, "caf\xe9-\xc3\xa9");
    expect(h, strcmp(shown, "caf\\xE9-\xc3\xa9") == 0, "a bad byte is shown as \\xNN, valid ones as they are");

    char dir[300];
    snprintf(dir, sizeof dir, "%s/utf8", g_root);
    static const struct {
        const char *file, *needle, *what;
    } latin1[] = {{"caf\xe9/a.jpg", "class folder name 'caf\\xE9'", "a Latin-1 class folder is refused, bytes shown"},
                  {"cat/\xff.jpg", "image path 'cat/\\xFF.jpg'", "a Latin-1 image name is refused"}};
    for (size_t i = 0; i < 2; i++) {
        touch(dir, latin1[i].file);
        touch(dir, "dog/b.jpg");
        expect_open_error(h, dir, NULL, latin1[i].needle, latin1[i].what);
        rm_tree(dir);
    }
    touch(dir, "caf\xc3\xa9/a.jpg");
    touch(dir, "\xe6\x97\xa5/b.jpg");
    tlcl_dataset ds;
    open_or_die(&ds, dir, NULL);
    expect(h, ds.num_classes == 2 && strcmp(ds.class_names[0], "caf\xc3\xa9") == 0 && ds.count == 2,
           "UTF-8 class names are kept as they are");
    tlcl_dataset_free(&ds);
    rm_tree(dir);
}

/* Keras's follow_links=False: a link to a directory inside a class is not
 * walked unless asked. */
static void test_links(harness *h)
{
    char dir[300], target[400], link[400];
    snprintf(dir, sizeof dir, "%s/links", g_root);
    touch(dir, "c1/real/a.jpg");
    touch(dir, "c2/b.jpg");
    snprintf(target, sizeof target, "%s/c1/real", dir);
    snprintf(link, sizeof link, "%s/c1/ln", dir);
    if (symlink(target, link) != 0) {
        harness_fail(h, "cannot create a symbolic link in %s", dir);
        return;
    }
    tlcl_dataset ds;
    tlcl_dataset_options o = tlcl_dataset_options_default();
    open_or_die(&ds, dir, &o);
    expect(h, ds.count == 2 && strcmp(ds.samples[0].path, "c1/real/a.jpg") == 0,
           "links to directories are not followed by default");
    tlcl_dataset_free(&ds);
    o.follow_links = 1;
    open_or_die(&ds, dir, &o);
    expect(h, ds.count == 3 && strcmp(ds.samples[0].path, "c1/ln/a.jpg") == 0, "follow_links walks them");
    tlcl_dataset_free(&ds);
    snprintf(link, sizeof link, "%s/c1/real/up", dir);
    if (symlink("..", link) == 0) /* c1/real/up -> c1 */
        expect_open_error(h, dir, &o, "symbolic link loop", "follow_links: a link to a parent is an error");
    rm_tree(dir);
}

static void expect_split_error(harness *h, const tlcl_dataset *ds, const tlcl_split_options *o, const char *needle,
                               const char *what)
{
    tlcl_split s;
    char err[1024] = "";
    tlcl_status st = tlcl_split_compute(ds, o, &s, err, sizeof err);
    printf("     error: %s\n", err);
    expect(h, st == TLCL_ERR_ARG && strstr(err, needle) != NULL, what);
}

static void test_split_errors(harness *h, const tlcl_dataset *ds)
{
    tlcl_split_options o = tlcl_split_options_default();
    o.validation_split = 0.2;
    expect_split_error(h, ds, &o, "needs a seed", "shuffled split without a seed (Keras's rule)");
    o.seed = 1;
    o.validation_split = 1.0;
    expect_split_error(h, ds, &o, "[0, 1)", "validation_split out of range");
    o.validation_split = 0.001;
    expect_split_error(h, ds, &o, "less than one file", "a split that leaves no validation file");
    o.validation_split = 0.2;
    o.method = TLCL_SPLIT_GROUP;
    o.group_pattern = "^[^/]+/";
    expect_split_error(h, ds, &o, "no capture group", "group pattern without a capture group");
    o.group_pattern = "^(NORMAL)/";
    expect_split_error(h, ds, &o, "does not match 'Bacteria/", "group pattern that misses a file names it");
    o.group_pattern = NULL;
    o.method = TLCL_SPLIT_KERAS;
    o.validation_split = 0.0;
    tlcl_split s;
    char err[256];
    expect(h, tlcl_split_compute(ds, &o, &s, err, sizeof err) == TLCL_OK && s.n_train == ds->count && s.n_val == 0,
           "validation_split 0: every file in training");
    tlcl_split_free(&s);
}

int main(void)
{
    harness h;
    harness_init(&h, 0);
    snprintf(g_root, sizeof g_root, "%s/tlcl_dataset_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(g_root)) {
        perror("mkdtemp");
        return 1;
    }
    cJSON *tree = load_fixture("split_tree.json"), *kf = load_fixture("split_keras.json");
    cJSON *cw = load_fixture("split_class_weight.json");
    make_tree(tree, g_root);
    test_discovery(&h, tree);
    test_mt19937(&h, kf);
    test_shuffles(&h, kf);

    tlcl_dataset ds;
    tlcl_dataset_options o = tlcl_dataset_options_default();
    o.keras_only = 1; /* the fixture's splits are Keras's, on Keras's file list */
    open_or_die(&ds, g_root, &o);
    test_keras_splits(&h, &ds, kf);
    test_subsamples(&h, &ds, kf);
    test_stratified(&h, &ds);
    test_group(&h, &ds);
    test_balanced(&h, &ds, cw);
    test_manual_weights(&h, &ds);
    test_weight_power(&h);
    test_split_errors(&h, &ds);
    tlcl_dataset_free(&ds);

    test_split_file(&h);
    test_split_file_errors(&h);
    test_group_no_leak(&h);
    test_open_errors(&h);
    test_class_mismatch(&h);
    test_links(&h);
    test_utf8_names(&h);
    rm_tree(g_root);
    cJSON_Delete(tree);
    cJSON_Delete(kf);
    cJSON_Delete(cw);
    return harness_finish(&h);
}
