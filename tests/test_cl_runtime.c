/* test_cl_runtime.c — the OpenCL runtime: device listing and its JSON,
 * device selection errors, the on-disk program cache (written after the
 * work, hit, corrupt entry rebuilt, concurrent builders), build failures with their log, and errors
 * that name the call, the OpenCL error and the kernel. */
#include "harness.h"

#include <cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int device_index(harness *h)
{
    return tlcl_cl_device(h->cl)->index;
}

static tlcl_cl *open_with_cache(harness *h, const char *dir)
{
    tlcl_cl_options o = tlcl_cl_options_default();
    o.device_index = device_index(h);
    o.cache_dir = dir;
    char err[2048];
    tlcl_cl *cl = NULL;
    if (tlcl_cl_init(&cl, &o, err, sizeof err) != TLCL_OK)
        harness_fail(h, "tlcl_cl_init: %s", err);
    return cl;
}

/* Path of the single cached "elementwise" program in dir. */
static int cached_file(const char *dir, char *path, size_t len)
{
    DIR *d = opendir(dir);
    int found = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (strncmp(e->d_name, "elementwise-", 12) == 0 && strstr(e->d_name, ".bin") && !strstr(e->d_name, ".tmp")) {
            snprintf(path, len, "%s/%s", dir, e->d_name);
            found++;
        }
    if (d)
        closedir(d);
    return found;
}

static void test_devices_json(harness *h)
{
    tlcl_device_info *devs;
    int n;
    char err[1024];
    harness_expect(h, tlcl_devices_list(&devs, &n, err, sizeof err) == TLCL_OK && n >= 1, "devices listed");
    char *json = tlcl_devices_json(devs, n);
    cJSON *arr = cJSON_Parse(json);
    int ok = cJSON_IsArray(arr) && cJSON_GetArraySize(arr) == n;
    static const char *keys[] = {"index", "platform", "name", "vendor", "type", "compute_units",
                                 "global_mem_bytes", "max_alloc_bytes", "max_work_group_size",
                                 "local_mem_bytes", "opencl_c_version", "fp16", "fp64", "fma", "driver_version"};
    for (int i = 0; ok && i < n; i++)
        for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
            ok = ok && cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(arr, i), keys[k]) != NULL;
    harness_expect(h, ok, "devices JSON has every field for every device");
    int def = tlcl_devices_default(devs, n);
    harness_expect(h, def >= 0 && def < n, "default device index in range");
    cJSON_Delete(arr);
    free(json);

    tlcl_cl_options o = tlcl_cl_options_default();
    o.device_index = n + 3;
    tlcl_cl *cl = NULL;
    tlcl_status s = tlcl_cl_init(&cl, &o, err, sizeof err);
    harness_expect(h, s == TLCL_ERR_NO_DEVICE && cl == NULL && strstr(err, "out of range") && strstr(err, devs[0].name),
           "out-of-range device index is refused with the device list");
    free(devs);
}

static void test_cache_roundtrip(harness *h, const char *dir)
{
    cl_kernel k;
    tlcl_cl *a = open_with_cache(h, dir);
    if (!a)
        return;
    harness_expect(h, tlcl_cl_kernel(a, "elementwise", "", "fill_1", &k) == TLCL_OK, "cold build succeeds");
    harness_expect(h, tlcl_cl_stats_get(a).programs_compiled == 1 && tlcl_cl_stats_get(a).programs_from_cache == 0,
           "cold start compiles from source");
    harness_expect(h, tlcl_cl_kernel(a, "elementwise", "", "axpy", &k) == TLCL_OK &&
               tlcl_cl_stats_get(a).programs_compiled == 1, "second kernel of the same program reuses it");
    char path[1200];
    /* the binary is asked for after the work (PoCL compiles every kernel for it) */
    harness_expect(h, cached_file(dir, path, sizeof path) == 0, "no cache entry written at the build");
    tlcl_cl_save_programs(a);
    harness_expect(h, cached_file(dir, path, sizeof path) == 1 && tlcl_cl_stats_get(a).save_seconds > 0,
                   "tlcl_cl_save_programs writes the entry");
    remove(path);
    tlcl_cl_save_programs(a);
    tlcl_cl_free(a);
    harness_expect(h, cached_file(dir, path, sizeof path) == 0, "a saved program is not written again");

    tlcl_cl *a2 = open_with_cache(h, dir);
    harness_expect(h, a2 && tlcl_cl_kernel(a2, "elementwise", "", "fill_1", &k) == TLCL_OK &&
               tlcl_cl_stats_get(a2).programs_compiled == 1, "a removed entry is compiled again");
    tlcl_cl_free(a2);
    harness_expect(h, cached_file(dir, path, sizeof path) == 1, "tlcl_cl_free writes what was not saved");
    tlcl_cl *b = open_with_cache(h, dir);
    harness_expect(h, b && tlcl_cl_kernel(b, "elementwise", "", "fill_1", &k) == TLCL_OK &&
               tlcl_cl_stats_get(b).programs_from_cache == 1 && tlcl_cl_stats_get(b).programs_compiled == 0,
           "warm start loads from the cache");
    tlcl_cl_free(b);

    /* flip bytes in the payload: the checksum must catch it */
    FILE *f = fopen(path, "r+b");
    if (f) {
        fseek(f, 60, SEEK_SET);
        fputs("garbage!garbage!", f);
        fclose(f);
    }
    tlcl_cl *c = open_with_cache(h, dir);
    harness_expect(h, c && tlcl_cl_kernel(c, "elementwise", "", "fill_1", &k) == TLCL_OK &&
               tlcl_cl_stats_get(c).programs_compiled == 1, "corrupt entry is detected and rebuilt");
    tlcl_cl_free(c);

    f = fopen(path, "wb"); /* truncated to nothing */
    if (f)
        fclose(f);
    tlcl_cl *d = open_with_cache(h, dir);
    harness_expect(h, d && tlcl_cl_kernel(d, "elementwise", "", "fill_1", &k) == TLCL_OK &&
               tlcl_cl_stats_get(d).programs_compiled == 1, "empty entry is rebuilt");
    tlcl_cl_free(d);
    tlcl_cl *e2 = open_with_cache(h, dir);
    harness_expect(h, e2 && tlcl_cl_kernel(e2, "elementwise", "", "fill_1", &k) == TLCL_OK &&
               tlcl_cl_stats_get(e2).programs_from_cache == 1, "rebuilt entry is valid again");
    tlcl_cl_free(e2);

    tlcl_cl *g = open_with_cache(h, dir);
    harness_expect(h, g && tlcl_cl_kernel(g, "elementwise", "-DUNUSED_OPTION=1", "fill_1", &k) == TLCL_OK &&
               tlcl_cl_stats_get(g).programs_compiled == 1, "other options are another cache key");
    tlcl_cl_free(g);
}

/* Several processes building into one empty cache at once: every one must
 * succeed and the entry left behind must load. */
static void test_cache_concurrent(harness *h, const char *dir)
{
    int nproc = 3, failures = 0;
    fflush(stdout);
    for (int i = 0; i < nproc; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            tlcl_cl_options o = tlcl_cl_options_default();
            o.device_index = device_index(h);
            o.cache_dir = dir;
            char err[2048];
            tlcl_cl *cl = NULL;
            cl_kernel k;
            int ok = tlcl_cl_init(&cl, &o, err, sizeof err) == TLCL_OK &&
                     tlcl_cl_kernel(cl, "elementwise", "", "fill_1", &k) == TLCL_OK;
            tlcl_cl_free(cl);
            _exit(ok ? 0 : 1);
        }
    }
    for (int i = 0; i < nproc; i++) {
        int st = 0;
        wait(&st);
        failures += !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    harness_expect(h, failures == 0, "concurrent builders all succeed");
    char path[1200];
    harness_expect(h, cached_file(dir, path, sizeof path) == 1, "concurrent builders leave exactly one entry, no temp files");
    cl_kernel k;
    tlcl_cl *cl = open_with_cache(h, dir);
    harness_expect(h, cl && tlcl_cl_kernel(cl, "elementwise", "", "fill_1", &k) == TLCL_OK &&
               tlcl_cl_stats_get(cl).programs_from_cache == 1, "entry left by concurrent builders loads");
    tlcl_cl_free(cl);
}

static void test_errors(harness *h)
{
    cl_kernel k;
    /* -Dfloat=) breaks every kernel: the error must carry the program and its log */
    tlcl_status s = tlcl_cl_kernel(h->cl, "elementwise", "-Dfloat=)", "fill_1", &k);
    const char *msg = tlcl_cl_error(h->cl);
    harness_expect(h, s == TLCL_ERR_BUILD && strstr(msg, "elementwise") && strstr(msg, "CL_BUILD_PROGRAM_FAILURE") &&
               strstr(msg, "build log"), "build failure names the program and prints the build log");

    s = tlcl_cl_kernel(h->cl, "elementwise", "", "no_such_kernel", &k);
    msg = tlcl_cl_error(h->cl);
    harness_expect(h, s == TLCL_ERR_CL && strstr(msg, "CL_INVALID_KERNEL_NAME") && strstr(msg, "no_such_kernel"),
           "unknown kernel is reported by OpenCL error name and kernel name");

    size_t g = 4;
    s = TLCL_RUN(h->cl, "elementwise", "", "fill_1", 1, &g, NULL, TLCL_INT(4)); /* wrong argument */
    msg = tlcl_cl_error(h->cl);
    harness_expect(h, s == TLCL_ERR_CL && strstr(msg, "clSetKernelArg") && strstr(msg, "CL_INVALID") && strstr(msg, "fill"),
           "bad launch names the call, the error and the kernel");

    cl_mem m;
    s = tlcl_cl_buffer(h->cl, (size_t)tlcl_cl_device(h->cl)->max_alloc_bytes + 4096, "stage6_activations", &m);
    msg = tlcl_cl_error(h->cl);
    harness_expect(h, s == TLCL_ERR_OOM && strstr(msg, "stage6_activations") && strstr(msg, "MiB") &&
               strstr(msg, "smaller batch"), "oversized tensor names itself, its size and suggests a smaller batch");
    harness_expect(h, tlcl_cl_program_source("no_such_program") == NULL && tlcl_cl_program_source("common") != NULL,
           "embedded program lookup");
}

/* The small kernel files are one program (the "small" bundle,
 * CMakeLists.txt): kernels named by two of its files share one build, and
 * each kernel is created once however its file is named. */
static void test_bundle(harness *h, const char *dir)
{
    tlcl_cl *cl = open_with_cache(h, dir);
    if (!cl)
        return;
    cl_kernel dense, counters, again;
    int ok = tlcl_cl_kernel(cl, "dense", "", "dense_bias_act", &dense) == TLCL_OK &&
             tlcl_cl_kernel(cl, "counters", "", "counters_add", &counters) == TLCL_OK &&
             tlcl_cl_kernel(cl, "dense", "", "dense_bias_act", &again) == TLCL_OK;
    tlcl_cl_stats st = tlcl_cl_stats_get(cl);
    int builds = st.programs_compiled + st.programs_from_cache;
    harness_expectf(h, ok && builds == 1 && again == dense,
                    "two files of the small bundle come from one program build (%d builds)", builds);
    tlcl_cl_free(cl);
}

/* Launches without a local size over global sizes from 1 to 70000: each
 * writes exactly its n elements (the rounded-up global size is guarded),
 * and on a CPU device they compile at most two work-group functions for
 * the kernel (cpu_local's two widths; a GPU driver's NULL is one). */
static void test_launch_widths(harness *h)
{
    static const int sizes[] = {1, 3, 17, 100, 255, 256, 257, 1000, 2047, 2048, 5000, 70000};
    enum { N = 70001 };
    float *host = malloc(N * sizeof *host);
    cl_mem m;
    if (!host || tlcl_cl_buffer(h->cl, N * sizeof *host, "widths", &m) != TLCL_OK) {
        harness_fail(h, "widths buffer");
        free(host);
        return;
    }
    int before = tlcl_cl_stats_get(h->cl).launch_shapes, ok = 1;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t all = N, g = (size_t)sizes[i];
        ok = ok && TLCL_RUN(h->cl, "elementwise", "", "fill_1", 1, &all, NULL, TLCL_MEM(m), TLCL_INT(N),
                            TLCL_FLOAT(-1.0f)) == TLCL_OK;
        ok = ok && TLCL_RUN(h->cl, "elementwise", "", "fill_1", 1, &g, NULL, TLCL_MEM(m), TLCL_INT(sizes[i]),
                            TLCL_FLOAT((float)i)) == TLCL_OK;
        ok = ok && tlcl_cl_read(h->cl, m, 0, N * sizeof *host, host, "widths") == TLCL_OK;
        for (int j = 0; ok && j < N; j++)
            ok = host[j] == (j < sizes[i] ? (float)i : -1.0f);
    }
    int shapes = tlcl_cl_stats_get(h->cl).launch_shapes - before;
    harness_expect(h, ok, "launches of every global size write exactly their elements");
    harness_expectf(h, shapes >= 1 && shapes <= 2, "12 global sizes compile 1 or 2 work-group shapes of a kernel (got %d)",
                   shapes);
    clReleaseMemObject(m);
    free(host);
}

/* A context under the device profile `name` on the harness's device (NULL
 * with the message in err when refused). */
static tlcl_cl *open_profile(harness *h, const char *name, char *err, size_t err_len)
{
    tlcl_settings st = tlcl_settings_from_env();
    snprintf(st.device_profile, sizeof st.device_profile, "%s", name);
    tlcl_cl_options o = tlcl_cl_options_default();
    o.device_index = device_index(h);
    o.settings = &st;
    tlcl_cl *cl = NULL;
    err[0] = '\0';
    tlcl_cl_init(&cl, &o, err, err_len);
    return cl;
}

static uint64_t min64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* Each profile: the capabilities are the emulated GPU's, every limit the
 * stricter of the profile's and the device's, names the device's. */
static void test_profile_caps(harness *h, const char *name, const tlcl_device_info *real)
{
    char err[1024];
    const tlcl_device_profile *p = tlcl_device_profile_find(name);
    tlcl_cl *cl = open_profile(h, name, err, sizeof err);
    if (!p || !cl) {
        harness_fail(h, "profile %s: %s", name, p ? err : "not in the table");
        return;
    }
    const tlcl_device_info *d = tlcl_cl_device(cl);
    unsigned align = p->mem_base_addr_align_bytes > real->mem_base_addr_align_bytes ? p->mem_base_addr_align_bytes
                                                                                  : real->mem_base_addr_align_bytes;
    harness_expectf(h, strcmp(d->type, "gpu") == 0 && strcmp(d->profile, name) == 0 && d->vendor_id == p->vendor_id &&
                        tlcl_cl_vector_width(cl) == 1 && d->simd_width == p->simd_width &&
                        d->compute_units == p->compute_units && d->fma == p->fma,
                    "profile %s: a GPU of vendor 0x%x, scalar kernels (VW %d), warp %u", name, d->vendor_id,
                    tlcl_cl_vector_width(cl), d->simd_width);
    harness_expectf(h, d->max_work_group_size == min64(p->max_work_group_size, real->max_work_group_size) &&
                        d->local_mem_bytes == min64(p->local_mem_bytes, real->local_mem_bytes) &&
                        d->max_alloc_bytes == min64(p->max_alloc_bytes, real->max_alloc_bytes) &&
                        d->max_work_item_sizes[2] == min64(p->max_work_item_sizes[2], real->max_work_item_sizes[2]) &&
                        d->mem_base_addr_align_bytes == align && tlcl_cl_reduce_wg(cl) <= d->max_work_group_size,
                    "profile %s: limits bounded by both (wg %zu, local %llu, alloc %llu, align %u)", name,
                    d->max_work_group_size, (unsigned long long)d->local_mem_bytes,
                    (unsigned long long)d->max_alloc_bytes, d->mem_base_addr_align_bytes);
    cl_mem m = NULL;
    tlcl_status s = tlcl_cl_buffer(cl, (size_t)d->max_alloc_bytes + 4096, "big", &m);
    const char *msg = tlcl_cl_error(cl);
    harness_expectf(h, s == TLCL_ERR_OOM && m == NULL && strstr(msg, name),
                    "profile %s: a tensor over its allocation limit is refused, naming it: %s", name, msg);
    harness_expectf(h, strcmp(d->name, real->name) == 0 && d->device == real->device &&
                        tlcl_device_family_of(d) != TLCL_FAMILY_GPU_OTHER,
                    "profile %s: the real device's name and handle, family %s", name,
                    tlcl_device_family_name(tlcl_device_family_of(d)));
    tlcl_cl_free(cl);
}

/* Under a profile a launch the emulated GPU would refuse fails, naming
 * the kernel, though PoCL would run it. */
static void test_profile_launch_limits(harness *h)
{
    char err[1024];
    tlcl_cl *cl = open_profile(h, "arm-mali", err, sizeof err); /* 256 work-items, 32 KiB of local memory */
    cl_mem m = NULL;
    /* large enough for every argument below, should a launch not be refused */
    if (!cl || tlcl_cl_buffer(cl, 256 * 1024, "profile test", &m) != TLCL_OK) {
        harness_fail(h, "arm-mali profile context: %s", cl ? tlcl_cl_error(cl) : err);
        tlcl_cl_free(cl);
        return;
    }
    size_t g = 512, l = 512, l_ok = 256;
    cl_ulong zero = 0, count = 4;
    tlcl_status s = TLCL_RUN(cl, "sim_copy", "", "sim_copy_words", 1, &g, &l, TLCL_MEM(m), ((tlcl_arg){8, &zero}),
                             TLCL_MEM(m), ((tlcl_arg){8, &count}), ((tlcl_arg){8, &count}));
    const char *msg = tlcl_cl_error(cl);
    harness_expectf(h, s == TLCL_ERR_ARG && strstr(msg, "sim_copy_words") && strstr(msg, "512") &&
                        strstr(msg, "'arm-mali'"),
                    "a 512-item work-group is refused under the arm-mali profile: %s", msg);
    s = TLCL_RUN(cl, "sim_copy", "", "sim_copy_words", 1, &g, &l_ok, TLCL_MEM(m), ((tlcl_arg){8, &zero}),
                 TLCL_MEM(m), ((tlcl_arg){8, &count}), ((tlcl_arg){8, &count}));
    harness_expect(h, s == TLCL_OK && tlcl_cl_finish(cl) == TLCL_OK,
                   "a 256-item work-group runs under the arm-mali profile");
    /* NVIDIA allows 64 work-items along the third dimension: 1 x 2 x 128 is refused there */
    tlcl_cl *nv = open_profile(h, "nvidia", err, sizeof err);
    cl_mem mn = NULL;
    if (nv && tlcl_cl_buffer(nv, 4096, "profile test", &mn) == TLCL_OK) {
        size_t g3[3] = {1, 2, 128}, l3[3] = {1, 2, 128};
        s = TLCL_RUN(nv, "sim_copy", "", "sim_copy_words", 3, g3, l3, TLCL_MEM(mn), ((tlcl_arg){8, &zero}),
                     TLCL_MEM(mn), ((tlcl_arg){8, &count}), ((tlcl_arg){8, &count}));
        msg = tlcl_cl_error(nv);
        harness_expectf(h, s == TLCL_ERR_ARG && strstr(msg, "dimension 2") && strstr(msg, "'nvidia'"),
                        "128 work-items along the third dimension are refused under the nvidia profile: %s", msg);
        clReleaseMemObject(mn);
    } else {
        harness_fail(h, "nvidia profile context: %s", nv ? tlcl_cl_error(nv) : err);
    }
    tlcl_cl_free(nv);
    /* counters_add's __local int pred[N]: 16384 samples need 64 KiB */
    size_t one = 1;
    s = TLCL_RUN(cl, "counters", "", "counters_add", 1, &one, &one, TLCL_MEM(m), TLCL_MEM(m), TLCL_MEM(m), TLCL_MEM(m),
                 TLCL_MEM(m), TLCL_MEM(m), TLCL_MEM(m), TLCL_INT(0), TLCL_INT(16384), TLCL_INT(1), TLCL_INT(0),
                 TLCL_LOCAL(16384 * sizeof(cl_int)));
    msg = tlcl_cl_error(cl);
    harness_expectf(h, s == TLCL_ERR_ARG && strstr(msg, "counters_add") && strstr(msg, "local memory") &&
                        strstr(msg, "32768"),
                    "64 KiB of local memory is refused under the arm-mali profile (32 KiB): %s", msg);
    clReleaseMemObject(m);
    tlcl_cl_free(cl);
}

static void test_profiles(harness *h)
{
    char err[1024];
    tlcl_cl *cl = open_profile(h, "cuda", err, sizeof err);
    harness_expectf(h, cl == NULL && strstr(err, "'cuda'") && strstr(err, "nvidia, amd, intel-gpu, arm-mali"),
                    "an unknown profile is refused, naming the known ones: %s", err);
    tlcl_cl_free(cl);
    tlcl_device_info real = *tlcl_cl_device(h->cl);
    if (real.profile[0]) /* the harness's own context runs under $TLCL_DEVICE_PROFILE: take the device's */
        harness_fail(h, "test_cl_runtime compares profiles with the device itself: unset TLCL_DEVICE_PROFILE");
    static const char *names[] = {"nvidia", "amd", "intel-gpu", "arm-mali"};
    for (int i = 0; i < 4; i++)
        test_profile_caps(h, names[i], &real);
    test_profile_launch_limits(h);
}

int main(void)
{
    harness h;
    harness_init(&h, 1);
    char dir[] = "/tmp/tlcl-cache-test-XXXXXX", dir2[] = "/tmp/tlcl-cache-test-XXXXXX";
    if (!mkdtemp(dir) || !mkdtemp(dir2)) {
        harness_fail(&h, "mkdtemp");
        return harness_finish(&h);
    }
    test_devices_json(&h);
    test_cache_roundtrip(&h, dir);
    test_cache_concurrent(&h, dir2);
    test_errors(&h);
    test_launch_widths(&h);
    test_bundle(&h, dir);
    test_profiles(&h);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", dir, dir2);
    if (system(cmd) != 0)
        printf("note: could not remove %s\n", dir);
    return harness_finish(&h);
}
