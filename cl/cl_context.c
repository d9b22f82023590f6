/* cl_context.c — one OpenCL context and in-order queue on the chosen
 * device, the table of built kernels, launches and copies. The only state
 * tlcl keeps besides the tensors is here, owned by the tlcl_cl handle. */
#include "cl_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

tlcl_status tlcl_cl_fail(tlcl_cl *cl, tlcl_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cl->err, sizeof cl->err, fmt, ap);
    va_end(ap);
    return status;
}

tlcl_status cl_fail_call(tlcl_cl *cl, cl_int err, const char *call, const char *kernel)
{
    tlcl_status s = (err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_RESOURCES ||
                     err == CL_OUT_OF_HOST_MEMORY) ? TLCL_ERR_OOM : TLCL_ERR_CL;
    return tlcl_cl_fail(cl, s, "%s failed: %s%s%s%s on %s", call, tlcl_cl_error_name(err),
                        kernel ? " (kernel " : "", kernel ? kernel : "", kernel ? ")" : "", cl->dev.name);
}

const char *tlcl_cl_error(const tlcl_cl *cl) { return cl->err; }
const tlcl_device_info *tlcl_cl_device(const tlcl_cl *cl) { return &cl->dev; }
cl_context tlcl_cl_context(const tlcl_cl *cl) { return cl->context; }
cl_command_queue tlcl_cl_queue(const tlcl_cl *cl) { return cl->queue; }
size_t tlcl_cl_reduce_wg(const tlcl_cl *cl) { return cl->reduce_wg; }
int tlcl_cl_vector_width(const tlcl_cl *cl) { return cl->vector_width; }

/* The channel vector width of the kernels (common.cl): the device's
 * preferred float width rounded down to 1, 4, 8 or 16, capped by
 * TLCL_VECTOR_WIDTH (the tests run the narrower instances on a CPU). */
static int vector_width(unsigned preferred, int c)
{
    int w = preferred >= 16 ? 16 : preferred >= 8 ? 8 : preferred >= 4 ? 4 : 1;
    while (c >= 1 && w > c)
        w = w == 16 ? 8 : w == 8 ? 4 : 1;
    return w;
}
const char *tlcl_cl_cache_dir(const tlcl_cl *cl) { return cl->cache_dir; }
tlcl_cl_stats tlcl_cl_stats_get(const tlcl_cl *cl) { return cl->stats; }
void tlcl_cl_count_buffer(tlcl_cl *cl) { cl->stats.buffers_created++; }

tlcl_cl_options tlcl_cl_options_default(void)
{
    tlcl_cl_options o = {.device_index = -1, .cache_dir = NULL, .fast_math = -1, .profiling = 0};
    return o;
}

static size_t pow2_floor(size_t x)
{
    size_t p = 1;
    while (p * 2 <= x)
        p *= 2;
    return p;
}

static tlcl_status pick_device(tlcl_device_info *devs, int n, int want, tlcl_device_info *dst, char *err, size_t err_len)
{
    if (want < 0)
        want = tlcl_devices_default(devs, n);
    if (want >= n) {
        int off = snprintf(err, err_len, "device index %d is out of range; the devices are:\n", want);
        for (int i = 0; i < n && off > 0 && (size_t)off < err_len; i++)
            off += snprintf(err + off, err_len - (size_t)off, "  %d: %s — %s (%s)\n", i, devs[i].platform_name,
                            devs[i].name, devs[i].type);
        return TLCL_ERR_NO_DEVICE;
    }
    *dst = devs[want];
    return TLCL_OK;
}

tlcl_status tlcl_cl_init(tlcl_cl **out, const tlcl_cl_options *opt, char *err, size_t err_len)
{
    *out = NULL;
    tlcl_cl_options o = opt ? *opt : tlcl_cl_options_default();
    tlcl_device_info *devs = NULL;
    int n = 0;
    tlcl_status s = tlcl_devices_list(&devs, &n, err, err_len);
    if (s != TLCL_OK)
        return s;
    tlcl_cl *cl = calloc(1, sizeof *cl);
    if (!cl) {
        free(devs);
        return TLCL_ERR_OOM;
    }
    s = pick_device(devs, n, o.device_index, &cl->dev, err, err_len);
    free(devs);
    if (s != TLCL_OK) {
        free(cl);
        return s;
    }
    cl_int rc;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)cl->dev.platform, 0};
    cl->context = clCreateContext(props, 1, &cl->dev.device, NULL, NULL, &rc);
    if (rc == CL_SUCCESS)
        cl->queue = clCreateCommandQueue(cl->context, cl->dev.device,
                                         o.profiling ? CL_QUEUE_PROFILING_ENABLE : 0, &rc);
    if (rc != CL_SUCCESS) {
        snprintf(err, err_len, "creating the OpenCL context on %s failed: %s", cl->dev.name, tlcl_cl_error_name(rc));
        tlcl_cl_free(cl);
        return TLCL_ERR_CL;
    }
    cl->settings = o.settings ? *o.settings : tlcl_settings_from_env();
    cl->real = cl->dev;
    const tlcl_device_profile *profile;
    if ((s = tlcl_device_profile_of(cl->settings.device_profile, &profile, err, err_len)) != TLCL_OK) {
        tlcl_cl_free(cl);
        return s;
    }
    if (profile)
        cl->dev = tlcl_device_profile_apply(profile, &cl->real);
    snprintf(cl->cache_dir, sizeof cl->cache_dir, "%s", o.cache_dir && o.cache_dir[0] ? o.cache_dir : cl->settings.cache_dir);
    if (cl->cache_dir[0]) /* what a process killed while writing the cache left */
        tlcl_publish_clean_stale(cl->cache_dir);
    cl->fast_math = o.fast_math >= 0 ? o.fast_math : cl->settings.fast_math;
    size_t wg = cl->dev.max_work_group_size < 256 ? cl->dev.max_work_group_size : 256;
    cl->reduce_wg = pow2_floor(wg ? wg : 1);
    cl->vector_width = vector_width(cl->dev.float_vector_width, cl->settings.vector_width_cap);
    /* TLCL_FMA=0|1 overrides the device's word (for bench A/B runs) */
    cl->fma = cl->settings.fma >= 0 ? cl->settings.fma : cl->dev.fma;
    cl->profiling = o.profiling;
    cl->scope = -1;
    cl->sim_transfers = strstr(cl->dev.platform_name, "Oclgrind") != NULL;
    if (cl->settings.helper_fd >= 0 && (s = cl_helper_attach(cl, err, err_len)) != TLCL_OK) {
        tlcl_cl_free(cl);
        return s;
    }
    *out = cl;
    return TLCL_OK;
}

/* With a helper process, the two take turns (cl_helper.c): each entry is
 * written by whichever claims it first. */
void tlcl_cl_save_programs(tlcl_cl *cl)
{
    if (cl)
        cl_helper_saving(cl);
    for (int i = 0; cl && i < cl->nprograms; i++) {
        cl_program_entry *e = &cl->programs[i];
        if (e->unsaved && cl_helper_begin(cl, CL_JOB_SAVE, e->hash) == CL_JOB_MINE) {
            cl_program_save(cl, e->name, e->build_options, e->program);
            cl_helper_end(cl, CL_JOB_SAVE, e->hash);
        }
        e->unsaved = 0;
    }
}

void tlcl_cl_free(tlcl_cl *cl)
{
    if (!cl)
        return;
    tlcl_cl_save_programs(cl);
    cl_helper_detach(cl);
    for (int i = 0; i < cl->nkernels; i++) {
        clReleaseKernel(cl->kernels[i].kernel);
        free(cl->kernels[i].name);
    }
    for (int i = 0; i < cl->nprograms; i++) {
        clReleaseProgram(cl->programs[i].program);
        free(cl->programs[i].name);
        free(cl->programs[i].options);
        free(cl->programs[i].build_options);
    }
    free(cl->kernels);
    free(cl->programs);
    tlcl_cl_profile_reset(cl);
    free(cl->events);
    free(cl->totals);
    free(cl->layers);
    if (cl->queue)
        clReleaseCommandQueue(cl->queue);
    if (cl->context)
        clReleaseContext(cl->context);
    free(cl);
}

static int grow(void **arr, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return 0;
    int ncap = *cap ? *cap * 2 : 32;
    void *p = realloc(*arr, (size_t)ncap * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void cl_program_options(const tlcl_cl *cl, const char *options, char *full, size_t len)
{
    snprintf(full, len, "-cl-std=CL1.2 -DWG=%zu -DVW=%d%s%s %s", cl->reduce_wg, cl->vector_width,
             cl->fma ? " -DTLCL_FMA=1" : "", cl->fast_math ? " -cl-fast-relaxed-math -DTLCL_FAST_MATH=1" : "",
             options);
}

static tlcl_status program_get(tlcl_cl *cl, const char *name, const char *options, int *index)
{
    uint64_t h = tlcl_hash_str(tlcl_hash_str(TLCL_HASH_SEED, name), options);
    for (int i = 0; i < cl->nprograms; i++) {
        const cl_program_entry *e = &cl->programs[i];
        if (e->hash == h && strcmp(e->name, name) == 0 && strcmp(e->options, options) == 0) {
            *index = i;
            return TLCL_OK;
        }
    }
    char full[2048];
    cl_program_options(cl, options, full, sizeof full);
    cl_program p;
    int from_source;
    double t0 = now_s();
    cl_job job = cl_helper_begin(cl, CL_JOB_PROGRAM, h);
    tlcl_status s = cl_program_build(cl, name, full, &p, &from_source);
    if (job == CL_JOB_MINE)
        cl_helper_end(cl, CL_JOB_PROGRAM, h);
    cl->stats.program_seconds += now_s() - t0; /* for `tlcl bench`'s start-up figures */
    if (s != TLCL_OK)
        return s;
    if (grow((void **)&cl->programs, &cl->cap_programs, cl->nprograms + 1, sizeof *cl->programs)) {
        clReleaseProgram(p);
        return tlcl_cl_fail(cl, TLCL_ERR_OOM, "out of host memory");
    }
    cl_program_entry *e = &cl->programs[cl->nprograms];
    e->hash = h;
    e->name = strdup(name);
    e->options = strdup(options);
    e->build_options = strdup(full);
    e->unsaved = from_source && e->build_options;
    e->program = p;
    *index = cl->nprograms++;
    return TLCL_OK;
}

tlcl_status tlcl_cl_kernel(tlcl_cl *cl, const char *program, const char *options, const char *kernel_name, cl_kernel *out)
{
    if (!options)
        options = "";
    program = tlcl_cl_program_home(program);
    uint64_t h = tlcl_hash_str(tlcl_hash_str(tlcl_hash_str(TLCL_HASH_SEED, program), options), kernel_name);
    for (int i = 0; i < cl->nkernels; i++) {
        const cl_kernel_entry *e = &cl->kernels[i];
        const cl_program_entry *p = &cl->programs[e->program];
        if (e->hash == h && strcmp(e->name, kernel_name) == 0 && strcmp(p->name, program) == 0 &&
            strcmp(p->options, options) == 0) {
            *out = e->kernel;
            return TLCL_OK;
        }
    }
    int pi;
    tlcl_status s = program_get(cl, program, options, &pi);
    if (s != TLCL_OK)
        return s;
    cl_int rc;
    cl_kernel k = clCreateKernel(cl->programs[pi].program, kernel_name, &rc);
    if (rc != CL_SUCCESS)
        return cl_fail_call(cl, rc, "clCreateKernel", kernel_name);
    if (grow((void **)&cl->kernels, &cl->cap_kernels, cl->nkernels + 1, sizeof *cl->kernels)) {
        clReleaseKernel(k);
        return tlcl_cl_fail(cl, TLCL_ERR_OOM, "out of host memory");
    }
    cl_kernel_entry *e = &cl->kernels[cl->nkernels++];
    e->hash = h;
    e->program = pi;
    e->name = strdup(kernel_name);
    e->kernel = k;
    *out = k;
    return TLCL_OK;
}

/* A CPU implementation such as PoCL compiles a kernel's work-group function
 * again for every local size it meets (and again for a large grid), and
 * left to itself it derives the local size from the global one: a
 * network's many shapes then cost hundreds of compilations at start-up. On
 * CPU devices a launch without a local size gets one of two widths
 * instead: the widest (256, or the largest power of two the profile
 * allows) when that still leaves a few groups per compute unit, else 1,
 * which spreads a small launch (a column reduction over a few channels,
 * each work-item a long loop) over every compute unit. The global size is
 * rounded up to it; kernels guard their bounds. Two widths, not a ladder
 * (256/64/16/4 before): a kernel compiles at most two work-group functions,
 * a quarter fewer at a B0 training step's cold start; a width-1 group costs a function call per
 * work-item, which only the small launches pay (per-kernel profile:
 * bench/README.md, "Cold start"). GPU drivers choose well and compile
 * once: they keep NULL. This answers the driver's compiler, so it follows
 * the real device even under a GPU device profile (whose GPU would choose
 * for itself); the width stays within the profile's work-group limit. */
static const size_t *cpu_local(const tlcl_cl *cl, cl_uint dims, const size_t *global, size_t local[3])
{
    if (strcmp(cl->real.type, "cpu") != 0)
        return NULL;
    size_t wide = 256, others = 1, want = 4 * (size_t)(cl->real.compute_units ? cl->real.compute_units : 1);
    while (wide > 1 && wide > cl->dev.max_work_group_size)
        wide /= 2;
    for (cl_uint d = 1; d < dims; d++)
        local[d] = 1, others *= global[d];
    local[0] = (global[0] + wide - 1) / wide * others >= want ? wide : 1;
    return local;
}

/* Counts the distinct (kernel, local size) pairs launched (tlcl_cl_stats):
 * a CPU driver compiles a work-group function for each, or one for two
 * that differ only in their number of dimensions (PoCL: 256 and 256x1). */
static int count_shape(tlcl_cl *cl, cl_kernel k, cl_uint dims, const size_t *local)
{
    uint64_t h = tlcl_hash_bytes(TLCL_HASH_SEED, &k, sizeof k);
    for (cl_uint d = 0; local && d < dims; d++)
        h = tlcl_hash_bytes(h, &local[d], sizeof local[d]);
    h |= 1; /* 0 marks a free slot */
    enum { N = sizeof cl->shapes / sizeof *cl->shapes };
    for (size_t i = 0, at = (size_t)(h % N); i < N; i++, at = (at + 1) % N) {
        if (cl->shapes[at] == h)
            return 0;
        if (cl->shapes[at] == 0) {
            cl->shapes[at] = h;
            cl->stats.launch_shapes++;
            return 1;
        }
    }
    return 0;
}

/* A launch shape as both processes of a helper pair name it: the kernel's
 * program (name and options), its name and the local size. */
static uint64_t shape_key(const tlcl_cl *cl, cl_kernel k, const char *kernel_name, cl_uint dims,
                          const size_t *local)
{
    uint64_t h = TLCL_HASH_SEED;
    for (int i = 0; i < cl->nkernels; i++)
        if (cl->kernels[i].kernel == k)
            h = cl->programs[cl->kernels[i].program].hash;
    h = tlcl_hash_str(h, kernel_name);
    for (cl_uint d = 0; local && d < dims; d++)
        h = tlcl_hash_bytes(h, &local[d], sizeof local[d]);
    return h;
}

/* What a helper pair does with a launch (cl_helper.c): the helper launches
 * only the new shapes it claims, the parent every launch. */
static cl_job launch_job(tlcl_cl *cl, int fresh, uint64_t key)
{
    if (!fresh)
        return tlcl_cl_is_helper(cl) ? CL_JOB_SKIP : CL_JOB_REUSE;
    return cl_helper_begin(cl, CL_JOB_LAUNCH, key);
}

size_t tlcl_cl_kernel_max_wg(tlcl_cl *cl, cl_kernel k)
{
    size_t max = 0;
    if (clGetKernelWorkGroupInfo(k, cl->real.device, CL_KERNEL_WORK_GROUP_SIZE, sizeof max, &max, NULL) != CL_SUCCESS)
        return 0;
    return max < cl->dev.max_work_group_size ? max : cl->dev.max_work_group_size;
}

/* Under a device profile, a launch the emulated GPU would refuse fails
 * here, naming the kernel, although the real device (PoCL: 4096
 * work-items, 1 MiB of local memory) would run it: a work-group over the
 * profile's limit, or more local memory (the kernel's own and its __local
 * arguments) than the profile has. */
static tlcl_status profile_check(tlcl_cl *cl, cl_kernel k, const char *kernel_name, cl_uint dims,
                                 const size_t *local, int nargs, const tlcl_arg *args)
{
    size_t items = 1;
    for (cl_uint d = 0; local && d < dims; d++) {
        items *= local[d];
        if (local[d] > cl->dev.max_work_item_sizes[d])
            return tlcl_cl_fail(cl, TLCL_ERR_ARG, "kernel %s: a work-group %zu work-items wide in dimension %u "
                                "exceeds the %zu of device profile '%s'", kernel_name, local[d], d,
                                cl->dev.max_work_item_sizes[d], cl->dev.profile);
    }
    if (local && items > cl->dev.max_work_group_size)
        return tlcl_cl_fail(cl, TLCL_ERR_ARG, "kernel %s: a work-group of %zu work-items exceeds the %zu of device "
                            "profile '%s'", kernel_name, items, cl->dev.max_work_group_size, cl->dev.profile);
    cl_ulong bytes = 0, arg_bytes = 0;
    CL_TRY(cl, clGetKernelWorkGroupInfo(k, cl->real.device, CL_KERNEL_LOCAL_MEM_SIZE, sizeof bytes, &bytes, NULL),
           kernel_name);
    for (int i = 0; i < nargs; i++)
        arg_bytes += args[i].ptr ? 0 : args[i].size; /* TLCL_LOCAL */
    if (bytes < arg_bytes) /* Rusticl leaves the __local arguments out of its figure */
        bytes += arg_bytes;
    if (bytes > cl->dev.local_mem_bytes)
        return tlcl_cl_fail(cl, TLCL_ERR_ARG, "kernel %s: %llu bytes of local memory exceed the %llu of device "
                            "profile '%s'", kernel_name, (unsigned long long)bytes,
                            (unsigned long long)cl->dev.local_mem_bytes, cl->dev.profile);
    return TLCL_OK;
}

tlcl_status tlcl_cl_launch(tlcl_cl *cl, cl_kernel k, const char *kernel_name, cl_uint dims,
                           const size_t *global, const size_t *local, int nargs, const tlcl_arg *args)
{
    size_t g[3], chosen[3];
    if (!local)
        local = cpu_local(cl, dims, global, chosen);
    for (cl_uint d = 0; d < dims; d++) {
        if (global[d] == 0)
            return TLCL_OK; /* empty tensor: nothing to do */
        g[d] = local ? (global[d] + local[d] - 1) / local[d] * local[d] : global[d];
    }
    for (int i = 0; i < nargs; i++) {
        cl_int rc = clSetKernelArg(k, (cl_uint)i, args[i].size, args[i].ptr);
        if (rc != CL_SUCCESS) {
            char call[64];
            snprintf(call, sizeof call, "clSetKernelArg(arg %d)", i);
            return cl_fail_call(cl, rc, call, kernel_name);
        }
    }
    if (cl->dev.profile[0])
        TLCL_TRY(profile_check(cl, k, kernel_name, dims, local, nargs, args));
    int fresh = count_shape(cl, k, dims, local);
    uint64_t key = fresh && cl->helper.role ? shape_key(cl, k, kernel_name, dims, local) : 0;
    cl_job job = launch_job(cl, fresh, key);
    if (job == CL_JOB_SKIP)
        return TLCL_OK; /* the helper leaves it to its parent */
    cl_event ev = NULL;
    cl_int rc = clEnqueueNDRangeKernel(cl->queue, k, dims, NULL, g, local, 0, NULL, cl->profiling ? &ev : NULL);
    cl_helper_launch_done(cl, job, key);
    if (rc != CL_SUCCESS)
        return cl_fail_call(cl, rc, "clEnqueueNDRangeKernel", kernel_name);
    if (ev)
        cl_profile_push(cl, ev, k);
    return TLCL_OK;
}

tlcl_status tlcl_cl_run(tlcl_cl *cl, const char *program, const char *options, const char *kernel_name,
                        cl_uint dims, const size_t *global, const size_t *local, int nargs, const tlcl_arg *args)
{
    cl_kernel k;
    tlcl_status s = tlcl_cl_kernel(cl, program, options, kernel_name, &k);
    if (s != TLCL_OK)
        return s;
    return tlcl_cl_launch(cl, k, kernel_name, dims, global, local, nargs, args);
}

tlcl_status tlcl_cl_finish(tlcl_cl *cl)
{
    CL_TRY(cl, clFinish(cl->queue), NULL);
    return TLCL_OK;
}

/* Oclgrind (21.10; the code is the same in 26.03) tracks uninitialised
 * memory with a shadow per buffer slot, and gets two things wrong
 * (tools/oclgrind_shadow_repro.c reproduces both):
 * - A host store (clEnqueueWriteBuffer, clEnqueueCopyBuffer) REPLACES the
 *   buffer's whole shadow by a new one the size of the store: a store of a
 *   prefix truncates it, so later kernel stores past the prefix are dropped
 *   and loads there read as uninitialised; a store at an offset (through a
 *   parameter sub-buffer) leaves it garbage. A pooled buffer that once got a
 *   smaller upload, or the parameter store, then gives false reports.
 * - It ignores allocations and releases: a new buffer that reuses a released
 *   buffer's slot inherits that buffer's stale shadow (truncated when the
 *   old buffer was smaller).
 * Kernel stores update the shadow exactly, so on Oclgrind only, a transfer
 * into a buffer is a copy kernel from a source Oclgrind tracks correctly (a
 * staging buffer written whole from offset 0), and a new buffer gets a
 * 0-byte host store, which leaves it an empty shadow so that the first
 * kernel using it allocates a fresh one, all uninitialised. Sub-buffers are
 * resolved to their parent so no kernel gets an address inside a shadow
 * Oclgrind does not know. The checks themselves are not changed. */
static tlcl_status sim_parent(tlcl_cl *cl, cl_mem *m, size_t *off, const char *what)
{
    cl_mem parent = NULL;
    size_t origin = 0;
    CL_TRY(cl, clGetMemObjectInfo(*m, CL_MEM_ASSOCIATED_MEMOBJECT, sizeof parent, &parent, NULL), what);
    if (parent) {
        CL_TRY(cl, clGetMemObjectInfo(*m, CL_MEM_OFFSET, sizeof origin, &origin, NULL), what);
        *m = parent, *off += origin;
    }
    return TLCL_OK;
}

static tlcl_status sim_transfer(tlcl_cl *cl, cl_mem dst, size_t dst_off, cl_mem src, size_t src_off, size_t bytes,
                                const char *what)
{
    tlcl_status st = sim_parent(cl, &dst, &dst_off, what);
    if (st == TLCL_OK)
        st = sim_parent(cl, &src, &src_off, what);
    if (st != TLCL_OK)
        return st;
    int words = (dst_off | src_off | bytes) % 4 == 0;
    size_t unit = words ? 4 : 1, n = bytes / unit;
    cl_ulong d = dst_off / unit, s = src_off / unit, count = n;
    return TLCL_RUN(cl, "sim_copy", "", words ? "sim_copy_words" : "sim_copy_bytes", 1, &n, NULL, TLCL_MEM(dst),
                    ((tlcl_arg){sizeof d, &d}), TLCL_MEM(src), ((tlcl_arg){sizeof s, &s}),
                    ((tlcl_arg){sizeof count, &count}));
}

tlcl_status tlcl_cl_write(tlcl_cl *cl, cl_mem buf, size_t offset, size_t bytes, const void *src, const char *what)
{
    if (bytes == 0)
        return TLCL_OK;
    if (cl->sim_transfers) {
        cl_int rc;
        cl_mem staging = clCreateBuffer(cl->context, CL_MEM_READ_WRITE, bytes, NULL, &rc);
        if (rc != CL_SUCCESS)
            return cl_fail_call(cl, rc, "clCreateBuffer (staging)", what);
        rc = clEnqueueWriteBuffer(cl->queue, staging, CL_TRUE, 0, bytes, src, 0, NULL, NULL);
        tlcl_status s = rc == CL_SUCCESS ? sim_transfer(cl, buf, offset, staging, 0, bytes, what)
                                         : cl_fail_call(cl, rc, "clEnqueueWriteBuffer (staging)", what);
        if (s == TLCL_OK)
            s = tlcl_cl_finish(cl); /* blocking, as the write it stands for */
        clReleaseMemObject(staging);
        return s;
    }
    CL_TRY(cl, clEnqueueWriteBuffer(cl->queue, buf, CL_TRUE, offset, bytes, src, 0, NULL, NULL), what);
    return TLCL_OK;
}

tlcl_status tlcl_cl_copy(tlcl_cl *cl, cl_mem dst, size_t dst_offset, cl_mem src, size_t src_offset, size_t bytes,
                         const char *what)
{
    if (bytes == 0)
        return TLCL_OK;
    if (cl->sim_transfers)
        return sim_transfer(cl, dst, dst_offset, src, src_offset, bytes, what);
    CL_TRY(cl, clEnqueueCopyBuffer(cl->queue, src, dst, src_offset, dst_offset, bytes, 0, NULL, NULL), what);
    return TLCL_OK;
}

tlcl_status tlcl_cl_write_async(tlcl_cl *cl, cl_mem buf, size_t offset, size_t bytes, const void *src,
                                const char *what, cl_event *done)
{
    if (done)
        *done = NULL;
    if (bytes == 0 || cl->sim_transfers)
        return tlcl_cl_write(cl, buf, offset, bytes, src, what);
    CL_TRY(cl, clEnqueueWriteBuffer(cl->queue, buf, CL_FALSE, offset, bytes, src, 0, NULL, done), what);
    return TLCL_OK;
}

tlcl_status tlcl_cl_read_async(tlcl_cl *cl, cl_mem buf, size_t offset, size_t bytes, void *dst, const char *what,
                               cl_event *done)
{
    if (done)
        *done = NULL;
    if (bytes == 0)
        return TLCL_OK;
    CL_TRY(cl, clEnqueueReadBuffer(cl->queue, buf, CL_FALSE, offset, bytes, dst, 0, NULL, done), what);
    return TLCL_OK;
}

tlcl_status tlcl_cl_marker(tlcl_cl *cl, cl_event *out)
{
    *out = NULL;
    CL_TRY(cl, clEnqueueMarkerWithWaitList(cl->queue, 0, NULL, out), "step marker");
    return TLCL_OK;
}

void tlcl_cl_forget(cl_event *ev)
{
    if (ev && *ev)
        clReleaseEvent(*ev);
    if (ev)
        *ev = NULL;
}

tlcl_status tlcl_cl_wait(tlcl_cl *cl, cl_event *ev, const char *what)
{
    if (!ev || !*ev)
        return TLCL_OK;
    cl_int rc = clWaitForEvents(1, ev);
    clReleaseEvent(*ev);
    *ev = NULL;
    return rc == CL_SUCCESS ? TLCL_OK : cl_fail_call(cl, rc, "clWaitForEvents", what);
}

tlcl_status tlcl_cl_poll(tlcl_cl *cl, cl_event ev, int *done, const char *what)
{
    cl_int status = CL_COMPLETE;
    *done = 1;
    if (ev)
        CL_TRY(cl, clGetEventInfo(ev, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status, &status, NULL), what);
    if (status < 0)
        return cl_fail_call(cl, status, "clGetEventInfo (the command failed)", what);
    *done = status == CL_COMPLETE;
    return TLCL_OK;
}

tlcl_status tlcl_cl_flush(tlcl_cl *cl)
{
    CL_TRY(cl, clFlush(cl->queue), "the queue");
    return TLCL_OK;
}

tlcl_status tlcl_cl_read(tlcl_cl *cl, cl_mem buf, size_t offset, size_t bytes, void *dst, const char *what)
{
    if (bytes == 0)
        return TLCL_OK;
    CL_TRY(cl, clEnqueueReadBuffer(cl->queue, buf, CL_TRUE, offset, bytes, dst, 0, NULL, NULL), what);
    return TLCL_OK;
}

tlcl_status tlcl_cl_buffer(tlcl_cl *cl, size_t bytes, const char *what, cl_mem *out)
{
    *out = NULL;
    if (bytes == 0)
        bytes = 4; /* OpenCL rejects empty buffers; a 0-element tensor still needs a handle */
    if (bytes > cl->dev.max_alloc_bytes)
        return tlcl_cl_fail(cl, TLCL_ERR_OOM,
                            "tensor '%s' needs %.1f MiB, more than the largest buffer %s%s%s allows (%.1f MiB): "
                            "use a smaller batch size or input size",
                            what, bytes / 1048576.0, cl->dev.name, cl->dev.profile[0] ? " under device profile " : "",
                            cl->dev.profile, cl->dev.max_alloc_bytes / 1048576.0);
    cl_int rc;
    cl_mem m = clCreateBuffer(cl->context, CL_MEM_READ_WRITE, bytes, NULL, &rc);
    if (rc != CL_SUCCESS)
        return tlcl_cl_fail(cl, TLCL_ERR_OOM,
                            "out of device memory: clCreateBuffer for tensor '%s' (%.1f MiB) failed with %s on %s: "
                            "use a smaller batch size",
                            what, bytes / 1048576.0, tlcl_cl_error_name(rc), cl->dev.name);
    if (cl->sim_transfers) { /* a fresh shadow on Oclgrind: see sim_transfer */
        rc = clEnqueueWriteBuffer(cl->queue, m, CL_TRUE, 0, 0, &bytes, 0, NULL, NULL);
        if (rc != CL_SUCCESS) {
            clReleaseMemObject(m);
            return cl_fail_call(cl, rc, "clEnqueueWriteBuffer (0 bytes, Oclgrind)", what);
        }
    }
    cl->stats.buffers_created++;
    *out = m;
    return TLCL_OK;
}
