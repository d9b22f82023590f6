/* dataset_dir.c — see dataset_dir.h. The walk collects every directory of
 * a class first and sorts the full list, because Keras sorts os.walk's
 * (root, files) entries by root string: a depth-first walk would put "a/b"
 * before "a-b", Keras puts it after ('-' < '/'). */
#include "dataset_dir.h"

#include "model.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Keras's ALLOWLIST_FORMATS first, in its order, then tlcl's additions. */
static const char *const KERAS_EXT[] = {".bmp", ".gif", ".jpeg", ".jpg", ".png"};
static const char *const TLCL_EXT[] = {".tga", ".pnm", ".ppm", ".pgm"};
#define NKERAS (sizeof KERAS_EXT / sizeof KERAS_EXT[0])
#define NTLCL (sizeof TLCL_EXT / sizeof TLCL_EXT[0])

/* A growable list of owned strings. */
typedef struct strvec {
    char **v;
    size_t n, cap;
} strvec;

static int strvec_push(strvec *s, const char *str)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        char **v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return -1;
        s->v = v;
        s->cap = cap;
    }
    if (!(s->v[s->n] = strdup(str)))
        return -1;
    s->n++;
    return 0;
}

static void strvec_free(strvec *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* strcmp compares as unsigned char: byte order, which for UTF-8 names is
 * Python's code-point order. */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void strvec_sort(strvec *s)
{
    if (s->n > 1)
        qsort(s->v, s->n, sizeof *s->v, cmp_str);
}

static int ends_with_nocase(const char *name, const char *ext)
{
    size_t n = strlen(name), e = strlen(ext);
    if (n < e)
        return 0;
    for (size_t i = 0; i < e; i++) {
        char c = name[n - e + i];
        if (c >= 'A' && c <= 'Z') /* ASCII lower-casing is all str.lower() changes in these suffixes */
            c = (char)(c - 'A' + 'a');
        if (c != ext[i])
            return 0;
    }
    return 1;
}

int tlcl_dataset_is_image(const char *name, int keras_only)
{
    for (size_t i = 0; i < NKERAS; i++)
        if (ends_with_nocase(name, KERAS_EXT[i]))
            return 1;
    for (size_t i = 0; !keras_only && i < NTLCL; i++)
        if (ends_with_nocase(name, TLCL_EXT[i]))
            return 1;
    return 0;
}

tlcl_dataset_options tlcl_dataset_options_default(void)
{
    tlcl_dataset_options o;
    memset(&o, 0, sizeof o);
    return o;
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* Kind of a directory entry as os.walk sees it: 'd' a directory (stat
 * follows links), 'l' a link to a directory, 'f' anything else (a broken
 * link is a file to os.walk too). */
static char entry_kind(const char *full)
{
    struct stat st, lst;
    if (stat(full, &st) != 0 || !S_ISDIR(st.st_mode))
        return 'f';
    if (lstat(full, &lst) == 0 && S_ISLNK(lst.st_mode))
        return 'l';
    return 'd';
}

/* Lists the entries of root/rel into dirs (relative paths, to be walked)
 * and files (names), per os.walk's classification. */
static tlcl_status list_dir(const char *root, const char *rel, int follow_links, strvec *dirs, strvec *files,
                            char *err, size_t len)
{
    char *full = join(root, rel);
    DIR *d = full ? opendir(full) : NULL;
    if (!d) {
        snprintf(err, len, "cannot read directory '%s': %s", full ? full : rel, strerror(errno));
        free(full);
        return TLCL_ERR_IO;
    }
    tlcl_status s = TLCL_OK;
    struct dirent *e;
    while (s == TLCL_OK && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *path = join(full, e->d_name), *sub = join(rel, e->d_name);
        char kind = path ? entry_kind(path) : 'f';
        int fail = !path || !sub;
        if (!fail && (kind == 'd' || (kind == 'l' && follow_links)))
            fail = strvec_push(dirs, sub);
        else if (!fail && kind == 'f')
            fail = strvec_push(files, e->d_name);
        if (fail) {
            snprintf(err, len, "out of host memory listing '%s'", full);
            s = TLCL_ERR_OOM;
        }
        free(path);
        free(sub);
    }
    closedir(d);
    free(full);
    return s;
}

/* Where each walked directory came from, to catch link loops: a directory
 * whose device and inode equal one of its ancestors' is a loop. */
typedef struct walk_node {
    size_t parent; /* index in the walk of the directory listing this one */
    dev_t dev;
    ino_t ino;
} walk_node;

static int is_loop(const walk_node *w, size_t self)
{
    for (size_t a = self; a != 0;) { /* up to the class directory, index 0 */
        a = w[a].parent;
        if (w[a].dev == w[self].dev && w[a].ino == w[self].ino)
            return 1;
    }
    return 0;
}

/* Records directory i of the walk (with its parent) and checks for a loop. */
static tlcl_status walk_enter(walk_node **w, size_t *cap, size_t i, size_t parent, const char *root,
                              const char *rel, char *err, size_t len)
{
    if (i >= *cap) {
        size_t c = *cap ? 2 * *cap : 64;
        walk_node *n = realloc(*w, c * sizeof *n);
        if (!n)
            return TLCL_ERR_OOM;
        *w = n;
        *cap = c;
    }
    char *full = join(root, rel);
    struct stat st;
    if (!full || stat(full, &st) != 0) {
        free(full);
        snprintf(err, len, "cannot read directory '%s/%s'", root, rel);
        return TLCL_ERR_IO;
    }
    free(full);
    (*w)[i] = (walk_node){parent, st.st_dev, st.st_ino};
    if (is_loop(*w, i)) {
        snprintf(err, len, "symbolic link loop: '%s/%s' is one of its own parent directories", root, rel);
        return TLCL_ERR_IO;
    }
    return TLCL_OK;
}

/* Collects every directory under root/cls (cls included), relative to root. */
static tlcl_status collect_dirs(const char *root, const char *cls, int follow_links, strvec *all, char *err,
                                size_t len)
{
    if (strvec_push(all, cls))
        return TLCL_ERR_OOM;
    walk_node *walk = NULL;
    size_t cap = 0, *parent_of = NULL;
    tlcl_status s = TLCL_OK;
    for (size_t i = 0; s == TLCL_OK && i < all->n; i++) { /* all grows while we walk it: breadth first */
        size_t first_child = all->n;
        s = walk_enter(&walk, &cap, i, i ? parent_of[i] : 0, root, all->v[i], err, len);
        strvec files = {0};
        if (s == TLCL_OK)
            s = list_dir(root, all->v[i], follow_links, all, &files, err, len);
        strvec_free(&files);
        size_t *p = s == TLCL_OK ? realloc(parent_of, (all->n + 1) * sizeof *p) : NULL;
        if (s == TLCL_OK && !p)
            s = TLCL_ERR_OOM;
        if (p)
            parent_of = p;
        for (size_t k = first_child; s == TLCL_OK && k < all->n; k++)
            parent_of[k] = i;
    }
    free(walk);
    free(parent_of);
    strvec_sort(all); /* the order Keras visits: by full path */
    return s;
}

static tlcl_status add_sample(tlcl_dataset *ds, size_t *cap, const char *dir, const char *name, int label)
{
    if (ds->count == *cap) {
        size_t c = *cap ? 2 * *cap : 64;
        tlcl_sample *v = realloc(ds->samples, c * sizeof *v);
        if (!v)
            return TLCL_ERR_OOM;
        ds->samples = v;
        *cap = c;
    }
    char *p = join(dir, name);
    if (!p)
        return TLCL_ERR_OOM;
    ds->samples[ds->count].path = p;
    ds->samples[ds->count].label = label;
    ds->count++;
    return TLCL_OK;
}

/* Names tlcl writes into JSON (the split file, the checkpoint's class
 * names) must be UTF-8; a Latin-1 name from an old archive is refused here,
 * where it enters, with the bytes shown and a way to rename it. */
static tlcl_status check_utf8_name(const char *root, const char *name, const char *what, char *err, size_t len)
{
    long at = tlcl_utf8_invalid_at(name);
    if (at < 0)
        return TLCL_OK;
    char shown[512];
    tlcl_utf8_printable(shown, sizeof shown, name);
    snprintf(err, len,
             "%s '%s' in '%s' is not valid UTF-8 (byte 0x%02X at offset %ld): tlcl writes class and file names into "
             "JSON, which is UTF-8 only. Rename it: convmv -f latin1 -t utf-8 -r '%s' shows what it would rename, the "
             "same command with --notest renames",
             what, shown, root, (unsigned char)name[at], at, root);
    return TLCL_ERR_ARG;
}

/* Appends the images of one class in Keras's order. */
static tlcl_status index_class(tlcl_dataset *ds, size_t *cap, int label, const tlcl_dataset_options *o, char *err,
                               size_t len)
{
    strvec dirs = {0};
    tlcl_status s = collect_dirs(ds->root, ds->class_names[label], o->follow_links, &dirs, err, len);
    for (size_t i = 0; s == TLCL_OK && i < dirs.n; i++) {
        strvec sub = {0}, files = {0};
        s = list_dir(ds->root, dirs.v[i], o->follow_links, &sub, &files, err, len);
        strvec_sort(&files);
        for (size_t k = 0; s == TLCL_OK && k < files.n; k++)
            if (tlcl_dataset_is_image(files.v[k], o->keras_only)) {
                s = add_sample(ds, cap, dirs.v[i], files.v[k], label);
                if (s == TLCL_OK)
                    s = check_utf8_name(ds->root, ds->samples[ds->count - 1].path, "image path", err, len);
            }
        strvec_free(&sub);
        strvec_free(&files);
    }
    if (s == TLCL_ERR_OOM)
        snprintf(err, len, "out of host memory indexing '%s'", ds->root);
    strvec_free(&dirs);
    return s;
}

/* The class sub-directories of root, sorted, dot-names skipped. */
static tlcl_status find_classes(const char *root, strvec *classes, char *err, size_t len)
{
    struct stat st;
    if (stat(root, &st) != 0) {
        snprintf(err, len, "dataset directory '%s': %s", root,
                 errno == ENOENT ? "does not exist" : strerror(errno));
        return TLCL_ERR_IO;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, len, "dataset path '%s' is not a directory", root);
        return TLCL_ERR_IO;
    }
    strvec dirs = {0}, files = {0};
    tlcl_status s = list_dir(root, ".", 1, &dirs, &files, err, len); /* Keras's isdir() follows links */
    for (size_t i = 0; s == TLCL_OK && i < dirs.n; i++) {
        const char *name = dirs.v[i] + 2; /* skip "./" */
        if (name[0] != '.' && strvec_push(classes, name))
            s = TLCL_ERR_OOM;
    }
    strvec_free(&dirs);
    strvec_free(&files);
    strvec_sort(classes);
    return s;
}

/* Appends "[a, b, c]" to dst. */
static void list_names(char *dst, size_t len, char *const *names, size_t n)
{
    size_t off = strlen(dst);
    off += (size_t)snprintf(dst + off, off < len ? len - off : 0, "[");
    for (size_t i = 0; i < n && off < len; i++)
        off += (size_t)snprintf(dst + off, len - off, "%s'%s'", i ? ", " : "", names[i]);
    if (off < len)
        snprintf(dst + off, len - off, "]");
}

static int find_name(char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return (int)i;
    return -1;
}

/* Replaces the discovered classes by the caller's subset, in its order. */
static tlcl_status pick_classes(strvec *found, const tlcl_dataset_options *o, const char *root, char *err,
                                size_t len)
{
    strvec picked = {0};
    for (int i = 0; i < o->num_class_names; i++) {
        const char *name = o->class_names[i];
        int bad = find_name(found->v, found->n, name) < 0, dup = find_name(picked.v, picked.n, name) >= 0;
        if (bad || dup) {
            snprintf(err, len, "class name '%s' %s; the sub-directories of '%s' are ", name,
                     dup ? "is given twice" : "is not a sub-directory", root);
            list_names(err, len, found->v, found->n);
            strvec_free(&picked);
            return TLCL_ERR_ARG;
        }
        if (strvec_push(&picked, name)) {
            strvec_free(&picked);
            return TLCL_ERR_OOM;
        }
    }
    strvec_free(found);
    *found = picked;
    return TLCL_OK;
}

static tlcl_status check_counts(const tlcl_dataset *ds, const tlcl_dataset_options *o, char *err, size_t len)
{
    if (ds->num_classes < 2) {
        if (ds->num_classes)
            snprintf(err, len, "'%s' has a single class ('%s'); a classifier needs at least two", ds->root,
                     ds->class_names[0]);
        else
            snprintf(err, len, "'%s' has no class sub-directories", ds->root);
        return TLCL_ERR_ARG;
    }
    if (ds->count == 0) {
        snprintf(err, len, "no images found in '%s' (accepted extensions: .bmp .gif .jpeg .jpg .png%s)", ds->root,
                 o->keras_only ? "" : " .tga .pnm .ppm .pgm");
        return TLCL_ERR_ARG;
    }
    return TLCL_OK;
}

tlcl_status tlcl_dataset_open(tlcl_dataset *ds, const char *root, const tlcl_dataset_options *o, char *err,
                              size_t len)
{
    tlcl_dataset_options def = tlcl_dataset_options_default();
    if (!o)
        o = &def;
    memset(ds, 0, sizeof *ds);
    strvec classes = {0};
    tlcl_status s = find_classes(root, &classes, err, len);
    if (s == TLCL_OK && o->class_names)
        s = pick_classes(&classes, o, root, err, len);
    for (size_t i = 0; s == TLCL_OK && i < classes.n; i++)
        s = check_utf8_name(root, classes.v[i], "class folder name", err, len);
    if (s != TLCL_OK) {
        if (s == TLCL_ERR_OOM)
            snprintf(err, len, "out of host memory indexing '%s'", root);
        strvec_free(&classes);
        return s;
    }
    ds->root = strdup(root);
    ds->class_names = classes.v; /* ownership moves to the dataset */
    ds->num_classes = (int)classes.n;
    if (!ds->root) {
        tlcl_dataset_free(ds);
        snprintf(err, len, "out of host memory");
        return TLCL_ERR_OOM;
    }
    size_t cap = 0;
    for (int c = 0; s == TLCL_OK && c < ds->num_classes; c++)
        s = index_class(ds, &cap, c, o, err, len);
    if (s == TLCL_OK)
        s = check_counts(ds, o, err, len);
    if (s != TLCL_OK)
        tlcl_dataset_free(ds);
    return s;
}

void tlcl_dataset_free(tlcl_dataset *ds)
{
    for (size_t i = 0; i < ds->count; i++)
        free(ds->samples[i].path);
    for (int c = 0; c < ds->num_classes; c++)
        free(ds->class_names[c]);
    free(ds->samples);
    free(ds->class_names);
    free(ds->root);
    memset(ds, 0, sizeof *ds);
}

int tlcl_dataset_full_path(const tlcl_dataset *ds, const tlcl_sample *s, char *dst, size_t len)
{
    int n = snprintf(dst, len, "%s/%s", ds->root, s->path);
    return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

/* Appends the names of a that b lacks, "'x', 'y'", to dst; returns how many. */
static int append_missing(char *dst, size_t len, const tlcl_dataset *a, const tlcl_dataset *b)
{
    int k = 0;
    for (int i = 0; i < a->num_classes; i++) {
        if (find_name(b->class_names, (size_t)b->num_classes, a->class_names[i]) >= 0)
            continue;
        size_t off = strlen(dst);
        if (off < len)
            snprintf(dst + off, len - off, "%s'%s'", k++ ? ", " : "", a->class_names[i]);
    }
    return k;
}

static int same_list(const tlcl_dataset *a, const tlcl_dataset *b)
{
    if (a->num_classes != b->num_classes)
        return 0;
    for (int i = 0; i < a->num_classes; i++)
        if (strcmp(a->class_names[i], b->class_names[i]) != 0)
            return 0;
    return 1;
}

tlcl_status tlcl_dataset_check_same_classes(const tlcl_dataset *a, const char *a_what, const tlcl_dataset *b,
                                            const char *b_what, char *err, size_t len)
{
    if (same_list(a, b))
        return TLCL_OK;
    int off = snprintf(err, len, "the class names of %s ('%s') and %s ('%s') differ:", a_what, a->root, b_what,
                       b->root);
    if (off < 0 || (size_t)off >= len)
        return TLCL_ERR_ARG;
    snprintf(err + off, len - (size_t)off, " only in %s: ", a_what);
    int na = append_missing(err, len, a, b);
    size_t o2 = strlen(err);
    snprintf(err + o2, o2 < len ? len - o2 : 0, "%s; only in %s: ", na ? "" : "none", b_what);
    int nb = append_missing(err, len, b, a);
    o2 = strlen(err);
    if (nb == 0 && o2 < len)
        snprintf(err + o2, len - o2, "none");
    if (na == 0 && nb == 0) { /* same names, other order: labels would not mean the same class */
        snprintf(err + off, len - (size_t)off, " same names in another order: %s ", a_what);
        list_names(err, len, a->class_names, (size_t)a->num_classes);
        o2 = strlen(err);
        if (o2 < len)
            snprintf(err + o2, len - o2, ", %s ", b_what);
        list_names(err, len, b->class_names, (size_t)b->num_classes);
    }
    return TLCL_ERR_ARG;
}
