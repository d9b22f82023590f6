/* config_paths.c — what the configuration does with paths: joining a
 * relative path to its directory, checking an extension, expanding {DATE}
 * and creating output directories (mkdir -p). */
#include "config_schema.h"

#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

int cfg_path_join(char *out, size_t len, const char *dir, const char *rel)
{
    int n;
    while (strncmp(rel, "./", 2) == 0)
        rel += 2;
    if (rel[0] == '/' || !dir || !dir[0])
        n = snprintf(out, len, "%s", rel);
    else if (!rel[0] || strcmp(rel, ".") == 0)
        n = snprintf(out, len, "%s", dir);
    else
        n = snprintf(out, len, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", rel);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

int cfg_has_ext(const char *path, const char *exts)
{
    size_t n = strlen(path);
    for (const char *e = exts; *e;) {
        const char *bar = strchr(e, '|');
        size_t el = bar ? (size_t)(bar - e) : strlen(e);
        if (n > el && strncasecmp(path + n - el, e, el) == 0)
            return 1;
        e += el + (bar != NULL);
    }
    return 0;
}

int tlcl_config_expand_date(const char *in, time_t t, char *out, size_t out_len)
{
    char date[32];
    struct tm tm;
    if (!localtime_r(&t, &tm) || !strftime(date, sizeof date, "%Y-%m-%d_%H-%M-%S", &tm))
        return -1;
    size_t used = 0;
    for (const char *s = in; *s;) {
        const char *piece = s;
        size_t n = 1;
        if (strncmp(s, "{DATE}", 6) == 0)
            piece = date, n = strlen(date), s += 6;
        else
            s++;
        if (used + n >= out_len)
            return -1;
        memcpy(out + used, piece, n);
        used += n;
    }
    out[used] = 0;
    return 0;
}

int tlcl_mkdir_p(const char *path, char *err, size_t len)
{
    char tmp[TLCL_CFG_PATH_MAX];
    struct stat st;
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1;; p++) {
        if (*p != '/' && *p)
            continue;
        char saved = *p;
        *p = 0;
        if (mkdir(tmp, 0777) && errno != EEXIST) {
            snprintf(err, len, "cannot create directory '%s': %s", tmp, strerror(errno));
            return -1;
        }
        if (stat(tmp, &st) || !S_ISDIR(st.st_mode)) {
            snprintf(err, len, "cannot create directory '%s': a file of that name exists", tmp);
            return -1;
        }
        *p = saved;
        if (!saved || !p[1])
            return 0;
    }
}

tlcl_status tlcl_config_make_dirs(const tlcl_config *c, char *err, size_t err_len)
{
    if (!c->finalized) {
        snprintf(err, err_len, "tlcl_config_make_dirs: call tlcl_config_finalize first");
        return TLCL_ERR_ARG;
    }
    for (size_t i = 0; i < cfg_nkeys; i++) {
        const cfg_key *k = &cfg_keys[i];
        if (k->type != CFG_PATH || !(k->flags & (CFG_OUT_DIR | CFG_OUT_FILE)))
            continue;
        char dir[TLCL_CFG_PATH_MAX];
        snprintf(dir, sizeof dir, "%s", (const char *)CFG_FIELD(c, k));
        if (!dir[0])
            continue; /* an optional output left unset */
        if (k->flags & CFG_OUT_FILE) {
            char *slash = strrchr(dir, '/');
            if (!slash)
                continue;
            slash[slash == dir] = 0;
        }
        if (tlcl_mkdir_p(dir, err, err_len))
            return TLCL_ERR_IO;
    }
    return TLCL_OK;
}
