/* cl_program_cache.c — builds a program from its embedded source and keeps
 * the compiled binary on disk, keyed by everything that changes the binary:
 * sources, options, platform, device, device and driver version. A cached
 * entry carries its key and a checksum; a corrupt, truncated or foreign file
 * is deleted and rebuilt. Entries are written to a temporary file and
 * renamed, so two processes building at once never see half a file. */
#include "cl_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CACHE_MAGIC "TLCLBIN2"

typedef struct cache_header {
    char magic[8];
    uint64_t key;
    uint64_t key2;
    uint64_t payload_len;
    uint64_t payload_hash;
} cache_header;

uint64_t tlcl_hash_bytes(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t tlcl_hash_str(uint64_t h, const char *s)
{
    /* include the terminator so ("ab","c") and ("a","bc") differ */
    return tlcl_hash_bytes(h, s, strlen(s) + 1);
}

static uint64_t program_key(const tlcl_cl *cl, const char *src_common, const char *src,
                            const char *options, uint64_t seed)
{
    uint64_t h = seed;
    h = tlcl_hash_str(h, CACHE_MAGIC);
    h = tlcl_hash_str(h, src_common);
    h = tlcl_hash_str(h, src);
    h = tlcl_hash_str(h, options);
    h = tlcl_hash_str(h, cl->dev.platform_name);
    h = tlcl_hash_str(h, cl->dev.name);
    h = tlcl_hash_str(h, cl->dev.device_version);
    h = tlcl_hash_str(h, cl->dev.driver_version);
    return h;
}

static int mkdir_p(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return (mkdir(tmp, 0755) != 0 && errno != EEXIST) ? -1 : 0;
}

static unsigned char *cache_read(const char *path, uint64_t key, uint64_t key2, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    cache_header h;
    unsigned char *bin = NULL;
    if (fread(&h, sizeof h, 1, f) == 1 && memcmp(h.magic, CACHE_MAGIC, 8) == 0 && h.key == key &&
        h.key2 == key2 && h.payload_len > 0 && h.payload_len < ((uint64_t)1 << 31)) {
        bin = malloc(h.payload_len);
        if (bin && (fread(bin, 1, h.payload_len, f) != h.payload_len ||
                    tlcl_hash_bytes(TLCL_HASH_SEED, bin, h.payload_len) != h.payload_hash)) {
            free(bin);
            bin = NULL;
        }
        *len = h.payload_len;
    }
    fclose(f);
    return bin;
}

static void cache_write(const char *path, uint64_t key, uint64_t key2, const unsigned char *bin, size_t len)
{
    tlcl_publish f;
    char err[4400];
    if (tlcl_publish_open(&f, path, err, sizeof err) != TLCL_OK)
        return; /* an unwritable cache only costs a rebuild next time */
    cache_header h;
    memcpy(h.magic, CACHE_MAGIC, 8);
    h.key = key;
    h.key2 = key2;
    h.payload_len = len;
    h.payload_hash = tlcl_hash_bytes(TLCL_HASH_SEED, bin, len);
    tlcl_publish_commit(&f, fwrite(&h, sizeof h, 1, f.f) == 1 && fwrite(bin, 1, len, f.f) == len, err, sizeof err);
}

static tlcl_status build_log_fail(tlcl_cl *cl, cl_program p, cl_int rc, const char *name, const char *options)
{
    size_t len = 0;
    clGetProgramBuildInfo(p, cl->dev.device, CL_PROGRAM_BUILD_LOG, 0, NULL, &len);
    char *log = malloc(len + 1);
    if (log) {
        log[0] = '\0';
        clGetProgramBuildInfo(p, cl->dev.device, CL_PROGRAM_BUILD_LOG, len, log, NULL);
        log[len] = '\0';
    }
    tlcl_cl_fail(cl, TLCL_ERR_BUILD, "clBuildProgram failed for kernel program '%s' (options: %s) on %s: %s\nbuild log:\n%s",
                 name, options, cl->dev.name, tlcl_cl_error_name(rc), log ? log : "(no log)");
    free(log);
    return TLCL_ERR_BUILD;
}

static cl_program program_from_binary(tlcl_cl *cl, const unsigned char *bin, size_t len, const char *options)
{
    cl_int rc, status;
    cl_program p = clCreateProgramWithBinary(cl->context, 1, &cl->dev.device, &len, &bin, &status, &rc);
    if (rc != CL_SUCCESS || status != CL_SUCCESS) {
        if (p)
            clReleaseProgram(p);
        return NULL;
    }
    if (clBuildProgram(p, 1, &cl->dev.device, options, NULL, NULL) != CL_SUCCESS) {
        clReleaseProgram(p);
        return NULL;
    }
    return p;
}

static unsigned char *program_binary(tlcl_cl *cl, cl_program p, size_t *len)
{
    *len = 0;
    if (clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof *len, len, NULL) != CL_SUCCESS || *len == 0)
        return NULL;
    unsigned char *bin = malloc(*len);
    if (bin && clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL) != CL_SUCCESS) {
        free(bin);
        bin = NULL;
    }
    (void)cl;
    return bin;
}

/* The program from the cache file at path (when there is one and it is
 * sound), else built from source (cl_program_save writes it there later). */
static tlcl_status program_get(tlcl_cl *cl, const char *name, const char *src, const char *options,
                               const char *path, uint64_t key, uint64_t key2, cl_program *out, int *from_source)
{
    const char *common = tlcl_cl_program_source("common");
    if (path[0]) {
        size_t len = 0;
        unsigned char *bin = cache_read(path, key, key2, &len);

        cl_program p = bin ? program_from_binary(cl, bin, len, options) : NULL;
        free(bin);
        if (p) {
            cl->stats.programs_from_cache++;
            *out = p;
            return TLCL_OK;
        }
        remove(path); /* stale or corrupt: rebuild below */
    }
    const char *srcs[2] = {common, src};
    cl_int rc;
    cl_program p = clCreateProgramWithSource(cl->context, 2, srcs, NULL, &rc);
    if (rc != CL_SUCCESS)
        return cl_fail_call(cl, rc, "clCreateProgramWithSource", name);
    rc = clBuildProgram(p, 1, &cl->dev.device, options, NULL, NULL);
    if (rc != CL_SUCCESS) {
        tlcl_status s = build_log_fail(cl, p, rc, name, options);
        clReleaseProgram(p);
        return s;
    }
    cl->stats.programs_compiled++;
    *from_source = 1;
    *out = p;
    return TLCL_OK;
}

static double build_clock(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The cache file of a program ("" when there is no cache directory) and
 * its two keys. */
static void cache_entry(tlcl_cl *cl, const char *name, const char *src, const char *options, char *path,
                        size_t path_len, uint64_t *key, uint64_t *key2)
{
    const char *common = tlcl_cl_program_source("common");
    *key = program_key(cl, common, src, options, TLCL_HASH_SEED);
    *key2 = program_key(cl, common, src, options, 0x84222325cbf29ce4ULL);
    path[0] = '\0';
    if (cl->cache_dir[0] && mkdir_p(cl->cache_dir) == 0)
        snprintf(path, path_len, "%s/%s-%016llx%016llx.bin", cl->cache_dir, name, (unsigned long long)*key,
                 (unsigned long long)*key2);
}

int cl_program_cached(tlcl_cl *cl, const char *name, const char *full_options)
{
    const char *src = tlcl_cl_program_source(name);
    uint64_t key, key2;
    char path[1100];
    if (!src)
        return 0;
    cache_entry(cl, name, src, full_options, path, sizeof path, &key, &key2);
    return path[0] && access(path, R_OK) == 0;
}

/* Build times go to stderr under TLCL_LOG_BUILDS. */
tlcl_status cl_program_build(tlcl_cl *cl, const char *name, const char *options, cl_program *out, int *from_source)
{
    const char *src = tlcl_cl_program_source(name);
    *from_source = 0;
    if (!src || !tlcl_cl_program_source("common"))
        return tlcl_cl_fail(cl, TLCL_ERR_ARG, "no kernel program named '%s' is embedded in this build", name);
    uint64_t key, key2;
    char path[1100];
    cache_entry(cl, name, src, options, path, sizeof path, &key, &key2);
    double t0 = build_clock();
    tlcl_status s = program_get(cl, name, src, options, path, key, key2, out, from_source);
    double dt = build_clock() - t0;
    if (cl->settings.log_builds)
        fprintf(stderr, "tlcl: program %s %s: %.2f s\n", name, options, dt);
    return s;
}

/* Asking for a program's binary makes PoCL generate code for every kernel
 * in it for any local size (kernels tlcl never launches that way: its CPU
 * launches have fixed local sizes, compiled at the first launch), about
 * half of a cold start's compiling. So the binary is asked for
 * here, after the run's work, not at the build. */
void cl_program_save(tlcl_cl *cl, const char *name, const char *options, cl_program p)
{
    const char *src = tlcl_cl_program_source(name);
    uint64_t key, key2;
    char path[1100];
    if (!src)
        return;
    cache_entry(cl, name, src, options, path, sizeof path, &key, &key2);
    if (!path[0])
        return;
    double t0 = build_clock();
    size_t len = 0;
    unsigned char *bin = program_binary(cl, p, &len);
    if (bin)
        cache_write(path, key, key2, bin, len);
    free(bin);
    double dt = build_clock() - t0;
    cl->stats.save_seconds += dt;
    if (cl->settings.log_builds)
        fprintf(stderr, "tlcl: program %s %s: saved to the cache in %.2f s\n", name, options, dt);
}
