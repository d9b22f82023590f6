/* fixture.c — see fixture.h. */
#include "fixture.h"

#include <cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TLCL_FIXTURE_DIR
#define TLCL_FIXTURE_DIR "tests/fixtures"
#endif

const char *fixture_dir(void)
{
    const char *d = getenv("TLCL_FIXTURE_DIR");
    return d && *d ? d : TLCL_FIXTURE_DIR;
}

int fixture_open(harness *h, fixture *fx, const char *name, const char *script)
{
    memset(fx, 0, sizeof *fx);
    snprintf(fx->path, sizeof fx->path, "%s/%s", fixture_dir(), name);
    FILE *f = fopen(fx->path, "rb");
    unsigned char len8[8];
    uint64_t hlen = 0;
    char *text = NULL;
    int ok = f && fread(len8, 1, 8, f) == 8;
    for (int i = 0; ok && i < 8; i++)
        hlen |= (uint64_t)len8[i] << (8 * i);
    long end = ok && fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    ok = ok && end > 0 && hlen < (uint64_t)end - 8;
    if (ok) {
        fx->size = (size_t)end - 8 - (size_t)hlen;
        text = calloc(1, (size_t)hlen + 1);
        fx->data = malloc(fx->size ? fx->size : 1);
        ok = text && fx->data && fseek(f, 8, SEEK_SET) == 0 && fread(text, 1, (size_t)hlen, f) == hlen &&
             fread(fx->data, 1, fx->size, f) == fx->size;
    }
    if (f)
        fclose(f);
    fx->header = ok ? cJSON_Parse(text) : NULL;
    free(text);
    if (!fx->header) {
        harness_fail(h, "cannot read the fixture %s (written by tools/%s; TLCL_FIXTURE_DIR moves the directory)",
                     fx->path, script);
        fixture_close(fx);
        return -1;
    }
    return 0;
}

void fixture_close(fixture *fx)
{
    cJSON_Delete(fx->header);
    free(fx->data);
    fx->header = NULL, fx->data = NULL;
}

const char *fixture_meta(const fixture *fx, const char *key)
{
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(fx->header, "__metadata__");
    cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

double fixture_meta_num(harness *h, const fixture *fx, const char *key)
{
    const char *s = fixture_meta(fx, key);
    if (!s) {
        harness_fail(h, "%s: metadata '%s' missing", fx->path, key);
        return 0;
    }
    return strtod(s, NULL);
}

/* IEEE half to float (normals, subnormals, zeros, inf/NaN). */
static double half(uint16_t v)
{
    int sign = v >> 15, exp = (v >> 10) & 31, man = v & 1023;
    double x = exp == 0 ? ldexp(man, -24) : exp == 31 ? (man ? NAN : INFINITY) : ldexp(1024 + man, exp - 25);
    return sign ? -x : x;
}

double *fixture_get(const fixture *fx, const char *name, size_t *n)
{
    cJSON *t = cJSON_GetObjectItemCaseSensitive(fx->header, name);
    cJSON *off = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
    cJSON *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype");
    if (!t || cJSON_GetArraySize(off) != 2 || !cJSON_IsString(dt))
        return NULL;
    size_t begin = (size_t)cJSON_GetArrayItem(off, 0)->valuedouble;
    size_t bytes = (size_t)cJSON_GetArrayItem(off, 1)->valuedouble - begin;
    size_t width = strcmp(dt->valuestring, "F32") == 0 ? 4 : strcmp(dt->valuestring, "F16") == 0 ? 2
                   : strcmp(dt->valuestring, "U8") == 0  ? 1 : 0;
    if (!width || begin + bytes > fx->size || bytes % width)
        return NULL;
    *n = bytes / width;
    double *x = malloc((*n ? *n : 1) * sizeof *x);
    const unsigned char *p = fx->data + begin;
    for (size_t i = 0; x && i < *n; i++) {
        if (width == 4) {
            float f;
            memcpy(&f, p + 4 * i, 4);
            x[i] = f;
        } else if (width == 2) {
            x[i] = half((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        } else {
            x[i] = p[i];
        }
    }
    return x;
}

int fixture_shape(const fixture *fx, const char *name, int shape[4], int *ndims)
{
    cJSON *sh = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(fx->header, name), "shape");
    if (!cJSON_IsArray(sh) || cJSON_GetArraySize(sh) > 4)
        return -1;
    *ndims = cJSON_GetArraySize(sh);
    for (int d = 0; d < *ndims; d++)
        shape[d] = cJSON_GetArrayItem(sh, d)->valueint;
    return 0;
}

double *fixture_need(harness *h, const fixture *fx, const char *name, size_t want)
{
    size_t n = 0;
    double *x = fixture_get(fx, name, &n);
    if (!x || (want && n != want)) {
        harness_fail(h, "%s: tensor '%s' %s (%zu values, want %zu)", fx->path, name, x ? "has the wrong size" : "missing",
                     n, want);
        free(x);
        return NULL;
    }
    return x;
}

cJSON *fixture_first(const fixture *fx) { return fx->header ? fx->header->child : NULL; }

float *fixture_to_float(const double *x, size_t n)
{
    float *f = malloc((n ? n : 1) * sizeof *f);
    for (size_t i = 0; f && i < n; i++)
        f[i] = (float)x[i];
    return f;
}

double fixture_elementwise(const float *got, const double *want, size_t n, const double *floor, double floor0,
                           size_t *worst)
{
    double e_max = 0;
    *worst = 0;
    for (size_t i = 0; i < n; i++) {
        double f = floor ? floor[i] : floor0, scale = fabs(want[i]) > f ? fabs(want[i]) : f;
        double e = isfinite(got[i]) ? fabs((double)got[i] - want[i]) / scale : INFINITY;
        if (e > e_max) {
            e_max = e;
            *worst = i;
        }
    }
    return e_max;
}

int fixture_check(harness *h, const char *what, const float *got, const double *want, size_t n, double tol,
                  double floor0)
{
    return harness_close(h, what, got, want, n, tol, tol * floor0); /* the harness's one per-element check */
}
