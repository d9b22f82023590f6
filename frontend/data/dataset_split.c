/* dataset_split.c — see dataset_split.h. */
#include "dataset_split.h"
#include "mt19937.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const METHOD_NAMES[] = {"keras", "stratified", "group"};

tlcl_split_options tlcl_split_options_default(void)
{
    tlcl_split_options o;
    memset(&o, 0, sizeof o);
    o.method = TLCL_SPLIT_KERAS;
    o.seed = -1;
    o.shuffle = 1;
    o.train_fraction = 1.0;
    o.val_fraction = 1.0;
    return o;
}

int tlcl_split_method_parse(const char *name, tlcl_split_method *m)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(name, METHOD_NAMES[i]) == 0) {
            *m = (tlcl_split_method)i;
            return 0;
        }
    return -1;
}

const char *tlcl_split_method_name(tlcl_split_method m)
{
    return (unsigned)m < 3 ? METHOD_NAMES[m] : "?";
}

static const char *const GROUP_ON_NAMES[] = {"name", "path", "class_path"};

int tlcl_group_on_parse(const char *name, tlcl_group_on *g)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(name, GROUP_ON_NAMES[i]) == 0) {
            *g = (tlcl_group_on)i;
            return 0;
        }
    return -1;
}

const char *tlcl_group_on_name(tlcl_group_on g)
{
    return (unsigned)g < 3 ? GROUP_ON_NAMES[g] : "?";
}

int tlcl_regex_cost_ok(const char *p)
{
    unsigned long cost = 1;
    while (*p && cost <= TLCL_REGEX_MAX_COST) {
        if (*p == '\\' && p[1]) {
            p += 2;
        } else if (*p == '[') { /* a bracket expression: "]" first is a member, not the end */
            p += p[1] == '^' ? 2 : 1;
            p += *p == ']';
            while (*p && *p != ']')
                p++;
            p += *p == ']';
        } else if (*p == '+') {
            cost *= 2, p++;
        } else if (*p == '{') {
            unsigned long most = 0;
            for (p++; *p >= '0' && *p <= '9' && most <= TLCL_REGEX_MAX_COST; p++)
                most = most * 10 + (unsigned long)(*p - '0');
            if (*p == ',' && p[1] >= '0' && p[1] <= '9')
                for (most = 0, p++; *p >= '0' && *p <= '9' && most <= TLCL_REGEX_MAX_COST; p++)
                    most = most * 10 + (unsigned long)(*p - '0');
            cost *= most + 1;
        } else {
            p++;
        }
    }
    return cost <= TLCL_REGEX_MAX_COST;
}

static tlcl_status compile_pattern(const char *pattern, regex_t *re, char *err, size_t len)
{
    if (!tlcl_regex_cost_ok(pattern)) {
        snprintf(err, len, "group pattern '%s' repeats too much: stacked or nested repetitions ('++', "
                 "'(a{50}){50}') take regcomp exponential time; write each repetition once", pattern);
        return TLCL_ERR_ARG;
    }
    int rc = regcomp(re, pattern, REG_EXTENDED);
    if (rc != 0) {
        char msg[256];
        regerror(rc, re, msg, sizeof msg);
        snprintf(err, len, "group pattern '%s' does not compile: %s", pattern, msg);
        return TLCL_ERR_ARG;
    }
    if (re->re_nsub < 1) {
        regfree(re);
        snprintf(err, len, "group pattern '%s' has no capture group; the first group (...) is the key", pattern);
        return TLCL_ERR_ARG;
    }
    return TLCL_OK;
}

tlcl_status tlcl_split_options_check(const tlcl_split_options *o, char *err, size_t len)
{
    const char *bad = NULL;
    if ((unsigned)o->method > TLCL_SPLIT_GROUP)
        bad = "unknown split method";
    else if ((unsigned)o->group_on > TLCL_GROUP_ON_CLASS_PATH)
        bad = "unknown group_on (name, path or class_path)";
    else if (!(o->validation_split >= 0.0 && o->validation_split < 1.0))
        bad = "validation_split must be in [0, 1)";
    else if (!(o->train_fraction > 0.0 && o->train_fraction <= 1.0) ||
             !(o->val_fraction > 0.0 && o->val_fraction <= 1.0))
        bad = "subsample fractions must be in (0, 1]";
    else if (o->seed < -1 || o->seed > (int64_t)UINT32_MAX)
        bad = "seed must be in [0, 2^32 - 1]";
    else if (o->seed < 0 && o->shuffle && o->validation_split > 0.0) /* Keras raises the same ValueError */
        bad = "a validation split of shuffled files needs a seed, or the two sets would not be reproducible";
    if (bad) {
        snprintf(err, len, "%s", bad);
        return TLCL_ERR_ARG;
    }
    if (o->method == TLCL_SPLIT_GROUP && o->group_pattern) {
        regex_t re;
        if (compile_pattern(o->group_pattern, &re, err, len) != TLCL_OK)
            return TLCL_ERR_ARG;
        regfree(&re);
    }
    return TLCL_OK;
}

/* Keras draws np.random.randint(1e6) when no seed is given; any source of
 * entropy will do, the split records the seed it used. */
static uint32_t draw_seed(void)
{
    uint32_t s = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16);
    tlcl_mt19937 g;
    tlcl_mt19937_seed(&g, s);
    return tlcl_mt19937_interval(&g, 999999);
}

size_t tlcl_subsample_count(size_t n, double fraction)
{
    return (size_t)(fraction * (double)n); /* Python's int(fraction * n) */
}

void tlcl_subsample(size_t *idx, size_t *n, double fraction, uint32_t seed)
{
    if (fraction >= 1.0)
        return;
    tlcl_mt19937 g;
    tlcl_mt19937_seed(&g, seed);
    tlcl_mt19937_shuffle(&g, idx, *n);
    *n = tlcl_subsample_count(*n, fraction);
}

/* The part of "class/sub/name.jpg" a pattern sees (see the header). */
static const char *group_text(const char *path, tlcl_group_on on)
{
    const char *slash;
    switch (on) {
    case TLCL_GROUP_ON_CLASS_PATH:
        return path;
    case TLCL_GROUP_ON_PATH:
        slash = strchr(path, '/');
        return slash ? slash + 1 : path;
    case TLCL_GROUP_ON_NAME:
        break;
    }
    slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

int tlcl_group_key(const char *path, tlcl_group_on on, const regex_t *re, char *dst, size_t len)
{
    size_t a, b;
    if (re) {
        regmatch_t m[2];
        const char *text = group_text(path, on);
        if (regexec(re, text, 2, m, 0) != 0 || m[1].rm_so < 0)
            return -1;
        a = (size_t)(text - path) + (size_t)m[1].rm_so;
        b = (size_t)(text - path) + (size_t)m[1].rm_eo;
    } else {
        const char *slash = strrchr(path, '/');
        a = slash ? (size_t)(slash - path) + 1 : 0;
        const char *us = strrchr(path + a, '_'), *dot = strrchr(path + a, '.');
        b = us ? (size_t)(us - path) : dot ? (size_t)(dot - path) : strlen(path);
    }
    if (b - a >= len)
        return -1;
    memcpy(dst, path + a, b - a);
    dst[b - a] = '\0';
    return 0;
}

/* The file order every method starts from (see the header). */
static size_t *base_order(size_t n, const tlcl_split_options *o, uint32_t seed)
{
    size_t *order = malloc((n ? n : 1) * sizeof *order);
    if (!order)
        return NULL;
    if (o->shuffle)
        tlcl_mt19937_permutation(seed, order, n);
    else
        for (size_t i = 0; i < n; i++)
            order[i] = i;
    return order;
}

/* Moves order[] into the two sets by is_val[file]; both keep the order. */
static tlcl_status partition(tlcl_split *s, const size_t *order, size_t n, const unsigned char *is_val)
{
    s->train = malloc((n ? n : 1) * sizeof *s->train);
    s->val = malloc((n ? n : 1) * sizeof *s->val);
    if (!s->train || !s->val)
        return TLCL_ERR_OOM;
    for (size_t k = 0; k < n; k++) {
        if (is_val[order[k]])
            s->val[s->n_val++] = order[k];
        else
            s->train[s->n_train++] = order[k];
    }
    return TLCL_OK;
}

static void mark_keras(const tlcl_dataset *ds, const size_t *order, double split, unsigned char *is_val)
{
    size_t n_val = tlcl_subsample_count(ds->count, split);
    for (size_t k = ds->count - n_val; k < ds->count; k++)
        is_val[order[k]] = 1;
}

static tlcl_status mark_stratified(const tlcl_dataset *ds, const size_t *order, double split,
                                   unsigned char *is_val)
{
    size_t *left = calloc((size_t)ds->num_classes, sizeof *left);
    if (!left)
        return TLCL_ERR_OOM;
    for (size_t i = 0; i < ds->count; i++)
        left[ds->samples[i].label]++;
    for (int c = 0; c < ds->num_classes; c++)
        left[c] = tlcl_subsample_count(left[c], split);
    for (size_t k = ds->count; k-- > 0;) { /* from the end: each class's tail goes to validation */
        int c = ds->samples[order[k]].label;
        if (left[c]) {
            is_val[order[k]] = 1;
            left[c]--;
        }
    }
    free(left);
    return TLCL_OK;
}

/* Group ids per file (first appearance order) and the number of groups. */
typedef struct groups {
    int *of_file;   /* group id of each file */
    size_t *size;   /* files per group */
    char **key;     /* key per group */
    size_t n;
} groups;

static void groups_free(groups *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->key[i]);
    free(g->of_file);
    free(g->size);
    free(g->key);
}

/* Open-addressing table from key to group id: a dataset can hold hundreds
 * of thousands of files, too many for a linear search per file. */
typedef struct key_table {
    size_t *slot; /* group id + 1, 0 empty */
    size_t cap;
} key_table;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* Returns the group id of key, adding it when new; -1 out of memory. */
static long group_id(groups *g, key_table *t, const char *key)
{
    size_t i = (size_t)(hash_str(key) & (t->cap - 1));
    for (; t->slot[i]; i = (i + 1) & (t->cap - 1))
        if (strcmp(g->key[t->slot[i] - 1], key) == 0)
            return (long)(t->slot[i] - 1);
    if (!(g->key[g->n] = strdup(key)))
        return -1;
    g->size[g->n] = 0;
    t->slot[i] = ++g->n;
    return (long)(g->n - 1);
}

/* Keys are looked up in one table over every file of every class: group
 * membership is decided over the whole data set, never per class. */
static tlcl_status find_groups(const tlcl_dataset *ds, tlcl_group_on on, const regex_t *re, groups *g, char *err,
                               size_t len)
{
    key_table t = {0};
    t.cap = 16;
    while (t.cap < 2 * ds->count) /* at most half full, so probing ends */
        t.cap *= 2;
    t.slot = calloc(t.cap, sizeof *t.slot);
    g->of_file = malloc(ds->count * sizeof *g->of_file);
    g->size = malloc(ds->count * sizeof *g->size);
    g->key = malloc(ds->count * sizeof *g->key);
    tlcl_status s = (t.slot && g->of_file && g->size && g->key) ? TLCL_OK : TLCL_ERR_OOM;
    char key[1024];
    for (size_t i = 0; s == TLCL_OK && i < ds->count; i++) {
        if (tlcl_group_key(ds->samples[i].path, on, re, key, sizeof key) != 0) {
            snprintf(err, len, "the group pattern does not match '%s' (matched against its %s; or its key is too "
                               "long): change group_pattern or group_on",
                     ds->samples[i].path, on == TLCL_GROUP_ON_NAME ? "file name" : on == TLCL_GROUP_ON_PATH ?
                     "path below the class folder" : "relative path, class folder included");
            s = TLCL_ERR_ARG;
            break;
        }
        long id = group_id(g, &t, key);
        if (id < 0)
            s = TLCL_ERR_OOM;
        else {
            g->of_file[i] = (int)id;
            g->size[id]++;
        }
    }
    free(t.slot);
    return s;
}

/* Takes whole groups from the end of the (shuffled) group list into
 * validation until it holds n_val files, always leaving one for training. */
static tlcl_status choose_groups(const groups *g, size_t n_val, const tlcl_split_options *o, uint32_t seed,
                                 unsigned char *val_group)
{
    size_t *order = base_order(g->n, o, seed);
    if (!order)
        return TLCL_ERR_OOM;
    size_t have = 0;
    for (size_t k = g->n; k-- > 1 && have < n_val;) {
        val_group[order[k]] = 1;
        have += g->size[order[k]];
    }
    free(order);
    return TLCL_OK;
}

static tlcl_status mark_group(const tlcl_dataset *ds, const tlcl_split_options *o, uint32_t seed,
                              unsigned char *is_val, char *err, size_t len)
{
    regex_t re;
    int have_re = o->group_pattern != NULL;
    if (have_re && compile_pattern(o->group_pattern, &re, err, len) != TLCL_OK)
        return TLCL_ERR_ARG;
    groups g = {0};
    tlcl_status s = find_groups(ds, o->group_on, have_re ? &re : NULL, &g, err, len);
    if (have_re)
        regfree(&re);
    size_t n_val = tlcl_subsample_count(ds->count, o->validation_split);
    if (s == TLCL_OK && g.n < 2 && n_val > 0) {
        snprintf(err, len, "a group split needs at least two groups; every file of '%s' is in group '%s'",
                 ds->root, g.key[0]);
        s = TLCL_ERR_ARG;
    }
    unsigned char *val_group = s == TLCL_OK ? calloc(g.n ? g.n : 1, 1) : NULL;
    if (s == TLCL_OK && !val_group)
        s = TLCL_ERR_OOM;
    if (s == TLCL_OK)
        s = choose_groups(&g, n_val, o, seed, val_group);
    for (size_t i = 0; s == TLCL_OK && i < ds->count; i++)
        is_val[i] = val_group[g.of_file[i]];
    free(val_group);
    groups_free(&g);
    return s;
}

static tlcl_status mark_validation(const tlcl_dataset *ds, const tlcl_split_options *o, const size_t *order,
                                   uint32_t seed, unsigned char *is_val, char *err, size_t len)
{
    if (o->validation_split <= 0.0)
        return TLCL_OK;
    switch (o->method) {
    case TLCL_SPLIT_KERAS:
        mark_keras(ds, order, o->validation_split, is_val);
        return TLCL_OK;
    case TLCL_SPLIT_STRATIFIED:
        return mark_stratified(ds, order, o->validation_split, is_val);
    case TLCL_SPLIT_GROUP:
        return mark_group(ds, o, seed, is_val, err, len);
    }
    return TLCL_ERR_ARG;
}

tlcl_status tlcl_split_compute(const tlcl_dataset *ds, const tlcl_split_options *o, tlcl_split *s, char *err,
                               size_t len)
{
    memset(s, 0, sizeof *s);
    tlcl_status st = tlcl_split_options_check(o, err, len);
    if (st != TLCL_OK)
        return st;
    if (o->validation_split > 0.0 && tlcl_subsample_count(ds->count, o->validation_split) == 0) {
        /* Keras's samples[:-0] would leave training empty here */
        snprintf(err, len, "validation_split %g of %zu files is less than one file", o->validation_split,
                 ds->count);
        return TLCL_ERR_ARG;
    }
    s->seed = o->seed >= 0 ? (uint32_t)o->seed : draw_seed();
    size_t *order = base_order(ds->count, o, s->seed);
    unsigned char *is_val = calloc(ds->count ? ds->count : 1, 1);
    st = (order && is_val) ? TLCL_OK : TLCL_ERR_OOM;
    if (st == TLCL_OK)
        st = mark_validation(ds, o, order, s->seed, is_val, err, len);
    if (st == TLCL_OK)
        st = partition(s, order, ds->count, is_val);
    free(order);
    free(is_val);
    if (st == TLCL_ERR_OOM)
        snprintf(err, len, "out of host memory splitting '%s'", ds->root);
    if (st != TLCL_OK) {
        tlcl_split_free(s);
        return st;
    }
    tlcl_subsample(s->train, &s->n_train, o->train_fraction, s->seed);
    tlcl_subsample(s->val, &s->n_val, o->val_fraction, s->seed);
    return TLCL_OK;
}

void tlcl_split_free(tlcl_split *s)
{
    free(s->train);
    free(s->val);
    memset(s, 0, sizeof *s);
}
