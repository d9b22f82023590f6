/* name_template.c — Keras's ModelCheckpoint file names: "{epoch:02d}" and
 * "{val_kappa:.3f}" fields in train.artefacts.best_model, filled with the
 * epoch (1-based, as Keras) and the epoch's logs. Python's format spec is
 * read for what such names use: [0][width][.precision][d|f|e|g], nothing
 * else. "{{" and "}}" are literal braces. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct field {
    char key[64];
    char spec[32]; /* a C conversion, "%02d" or "%.3f" ("" : Python's str()) */
    int integer;   /* the spec is d */
} field;

/* Reads "{key[:spec]}" at s (after the '{'); returns the length consumed
 * up to and with the '}', or -1 with why. */
static int read_field(const char *s, field *f, char *why, size_t len)
{
    const char *end = strchr(s, '}');
    const char *colon = memchr(s, ':', end ? (size_t)(end - s) : 0);
    if (!end) {
        snprintf(why, len, "a '{' without its '}'");
        return -1;
    }
    size_t klen = (size_t)((colon ? colon : end) - s);
    if (klen == 0 || klen >= sizeof f->key) {
        snprintf(why, len, "an empty or too long field name");
        return -1;
    }
    memcpy(f->key, s, klen);
    f->key[klen] = '\0';
    f->spec[0] = '\0', f->integer = 0;
    if (!colon)
        return (int)(end - s) + 1;
    const char *p = colon + 1;
    char flags[4] = "";
    if (*p == '0')
        strcpy(flags, "0"), p++;
    int width = -1, precision = -1;
    if (*p >= '0' && *p <= '9')
        width = (int)strtol(p, (char **)&p, 10);
    if (*p == '.' && p[1] >= '0' && p[1] <= '9')
        precision = (int)strtol(p + 1, (char **)&p, 10);
    char type = *p && p < end ? *p++ : 'g';
    if (p != end || !strchr("dfeg", type) || width > 64 || precision > 17 || (type == 'd' && precision >= 0)) {
        snprintf(why, len, "'{%.*s}': the format after ':' must be [0][width][.precision][d|f|e|g]",
                 (int)(end - s), s);
        return -1;
    }
    char w[8] = "", pr[8] = "";
    if (width >= 0)
        snprintf(w, sizeof w, "%d", width);
    if (precision >= 0)
        snprintf(pr, sizeof pr, ".%d", precision);
    snprintf(f->spec, sizeof f->spec, "%%%s%s%s%c", flags, w, pr, type);
    f->integer = type == 'd';
    return (int)(end - s) + 1;
}

/* Walks the template; for each field calls fn (which may write the value
 * into dst at *used). Literal text is copied when dst is not NULL. */
typedef int (*field_fn)(const field *f, void *ctx, char *dst, size_t len, size_t *used, char *why, size_t wlen);

static int walk(const char *tpl, field_fn fn, void *ctx, char *dst, size_t len, char *why, size_t wlen)
{
    size_t used = 0;
    for (const char *s = tpl; *s;) {
        if ((s[0] == '{' && s[1] == '{') || (s[0] == '}' && s[1] == '}')) {
            if (dst && used + 1 < len)
                dst[used++] = s[0];
            s += 2;
            continue;
        }
        if (*s == '}') {
            snprintf(why, wlen, "a '}' without its '{' (write '}}' for a brace)");
            return -1;
        }
        if (*s != '{') {
            if (dst && used + 1 < len)
                dst[used++] = *s;
            s++;
            continue;
        }
        field f;
        int n = read_field(s + 1, &f, why, wlen);
        if (n < 0 || fn(&f, ctx, dst, len, &used, why, wlen) != 0)
            return -1;
        s += 1 + n;
    }
    if (dst && len)
        dst[used < len ? used : len - 1] = '\0';
    if (dst && used >= len) {
        snprintf(why, wlen, "the file name is longer than %zu bytes", len - 1);
        return -1;
    }
    return 0;
}

typedef struct check_ctx {
    const char *const *keys;
    int nkeys;
    int fields;
} check_ctx;

static int check_field(const field *f, void *ctx, char *dst, size_t len, size_t *used, char *why, size_t wlen)
{
    (void)dst, (void)len, (void)used;
    check_ctx *c = ctx;
    c->fields++;
    if (strcmp(f->key, "epoch") == 0)
        return 0;
    for (int i = 0; i < c->nkeys; i++)
        if (strcmp(c->keys[i], f->key) == 0)
            return 0;
    snprintf(why, wlen, "'{%s}' is neither epoch nor a value an epoch logs", f->key);
    return -1;
}

int tlcl_name_template_check(const char *tpl, const char *const *keys, int nkeys, int *fields, char *why, size_t len)
{
    check_ctx c = {keys, nkeys, 0};
    int rc = walk(tpl, check_field, &c, NULL, 0, why, len);
    *fields = c.fields;
    return rc;
}

typedef struct fill_ctx {
    int epoch;
    const char *const *keys;
    const double *values;
    int n;
} fill_ctx;

static int fill_field(const field *f, void *ctx, char *dst, size_t len, size_t *used, char *why, size_t wlen)
{
    fill_ctx *c = ctx;
    double v = 0;
    int found = strcmp(f->key, "epoch") == 0;
    if (found)
        v = c->epoch;
    for (int i = 0; !found && i < c->n; i++)
        if (strcmp(c->keys[i], f->key) == 0)
            v = c->values[i], found = 1;
    if (!found) {
        snprintf(why, wlen, "'{%s}' is not logged by this epoch", f->key);
        return -1;
    }
    size_t room = *used < len ? len - *used : 0;
    int n;
    if (f->integer)
        n = snprintf(dst + *used, room, f->spec, (int)v);
    else if (f->spec[0])
        n = snprintf(dst + *used, room, f->spec, v);
    else if (strcmp(f->key, "epoch") == 0)
        n = snprintf(dst + *used, room, "%d", (int)v);
    else
        n = snprintf(dst + *used, room, "%.17g", v);
    *used += n > 0 ? (size_t)n : 0;
    return 0;
}

int tlcl_name_template_fill(const char *tpl, int epoch, const char *const *keys, const double *values, int n,
                            char *dst, size_t len, char *why, size_t wlen)
{
    fill_ctx c = {epoch, keys, values, n};
    return walk(tpl, fill_field, &c, dst, len, why, wlen);
}
