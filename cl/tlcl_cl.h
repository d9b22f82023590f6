/* tlcl_cl.h — the OpenCL runtime of tlcl: devices, one context per device,
 * programs built at run time from embedded .cl sources with -D options and
 * cached on disk, kernel launches with named errors.
 *
 * Everything above this module (engine/, models/, frontend/) talks to OpenCL
 * only through this header. Errors are returned as tlcl_status; the message
 * (call, OpenCL error name, kernel, build log) is kept in the context and read
 * with tlcl_cl_error(). */
#ifndef TLCL_CL_H
#define TLCL_CL_H

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

typedef enum tlcl_status {
    TLCL_OK = 0,
    TLCL_ERR_CL,         /* an OpenCL call failed */
    TLCL_ERR_BUILD,      /* a kernel failed to compile (build log in the message) */
    TLCL_ERR_NO_PLATFORM,
    TLCL_ERR_NO_DEVICE,  /* device index out of range */
    TLCL_ERR_OOM,        /* device (or host) allocation failed */
    TLCL_ERR_ARG,        /* bad argument from the caller */
    TLCL_ERR_IO,         /* file read/write failed */
    TLCL_ERR_NONFINITE,  /* NaN or Inf in the loss */
    TLCL_ERR_FORMAT,     /* a file has the wrong format */
} tlcl_status;

const char *tlcl_status_name(tlcl_status s);

/* The one way every module passes a failure up: evaluates a tlcl_status
 * expression and returns it from the caller when it is not TLCL_OK (the
 * message is already in the context, or in the caller's error buffer). */
#define TLCL_TRY(expr)                         \
    do {                                       \
        tlcl_status s_ = (expr);               \
        if (s_ != TLCL_OK) return s_;          \
    } while (0)
/* ---- input files ------------------------------------------------------ */

/* Opens an input file (`what` names it in errors: "image", "checkpoint",
 * ...) for reading. Only regular files: a FIFO, device, socket or directory
 * is refused at once (the open does not block). Returns the descriptor, or
 * -1 with "... PATH ... reason" in err. */
int tlcl_open_input(const char *path, const char *what, char *err, size_t err_len);
/* The same as a stdio stream; NULL with the reason in err. */
FILE *tlcl_fopen_input(const char *path, const char *what, char *err, size_t err_len);
/* Reads a whole input file of at most max_bytes (a larger one is refused
 * before anything is read) into a malloc'd buffer with a NUL after the
 * *len bytes; NULL with the reason in err. */
unsigned char *tlcl_read_input(const char *path, const char *what, size_t max_bytes, size_t *len, char *err,
                               size_t err_len);

/* The OpenCL error code as its CL_ name ("CL_OUT_OF_RESOURCES"). */
const char *tlcl_cl_error_name(cl_int err);

/* ---- devices ---------------------------------------------------------- */

typedef struct tlcl_device_info {
    int index;                 /* global index over all platforms */
    cl_platform_id platform;
    cl_device_id device;
    char platform_name[128];
    char name[128];
    char vendor[128];
    char type[16];             /* "gpu", "cpu", "accelerator", "other" */
    unsigned compute_units;
    uint64_t global_mem_bytes;
    uint64_t max_alloc_bytes;
    size_t max_work_group_size;
    size_t max_work_item_sizes[3]; /* CL_DEVICE_MAX_WORK_ITEM_SIZES: a work-group's limit per dimension */
    uint64_t local_mem_bytes;
    unsigned mem_base_addr_align_bytes;
    char opencl_c_version[64];
    char device_version[128];
    char driver_version[128];
    int fp16, fp64;
    unsigned float_vector_width; /* CL_DEVICE_PREFERRED_VECTOR_WIDTH_FLOAT, at least 1 */
    int fma;                   /* fused multiply-add in hardware: CL_FP_FMA, not CL_FP_SOFT_FLOAT */
    unsigned vendor_id;        /* CL_DEVICE_VENDOR_ID (PCI id on GPUs: 0x10de NVIDIA, 0x1002 AMD, ...) */
    unsigned simd_width;       /* warp / wavefront / sub-group width (0: not reported) */
    int image_support;         /* CL_DEVICE_IMAGE_SUPPORT */
    char profile[16];          /* the emulated device profile in force ("": the device itself) */
} tlcl_device_info;

/* The kinds of device tlcl keeps built-in defaults for (launch shapes,
 * GEMM tiles), from the device type, the PCI vendor id and the preferred
 * float width, never from name strings. */
typedef enum tlcl_device_family {
    TLCL_FAMILY_OTHER = 0,  /* an accelerator or anything unknown */
    TLCL_FAMILY_CPU_SIMD,   /* a CPU that vectorises within a work-item (PoCL: float width > 1) */
    TLCL_FAMILY_CPU_SIMT,   /* a CPU that vectorises across work-items (llvmpipe: float width 1) */
    TLCL_FAMILY_NVIDIA,
    TLCL_FAMILY_AMD,
    TLCL_FAMILY_INTEL_GPU,
    TLCL_FAMILY_ARM_MALI,
    TLCL_FAMILY_GPU_OTHER,
} tlcl_device_family;
tlcl_device_family tlcl_device_family_of(const tlcl_device_info *d);
const char *tlcl_device_family_name(tlcl_device_family f);

/* ---- emulated device profiles (device_profiles.c) --------------------- */

/* A GPU's capabilities as its driver reports them (clinfo), for running
 * tlcl's GPU code paths on another device: TLCL_DEVICE_PROFILE=NAME. */
typedef struct tlcl_device_profile {
    const char *name;        /* "nvidia", "amd", "intel-gpu", "arm-mali" */
    const char *model;       /* the device the numbers come from */
    const char *vendor;      /* its CL_DEVICE_VENDOR */
    unsigned vendor_id, compute_units, float_vector_width, simd_width, mem_base_addr_align_bytes;
    size_t max_work_group_size, max_work_item_sizes[3];
    uint64_t local_mem_bytes, max_alloc_bytes, global_mem_bytes;
    int fma, fp16, fp64, image_support;
} tlcl_device_profile;

/* The profile of that name, NULL when there is none. */
const tlcl_device_profile *tlcl_device_profile_find(const char *name);
/* The profile the settings ask for: *out NULL when none is asked for;
 * an unknown name is TLCL_ERR_ARG with a message naming the known ones. */
tlcl_status tlcl_device_profile_of(const char *name, const tlcl_device_profile **out, char *err, size_t err_len);
/* The capabilities tlcl plans with when real (the device tlcl runs on)
 * emulates p: p's type, widths and choices, and for every limit the
 * stricter of p's and the real device's, so that what is launched fits
 * both (work-group size, local memory, allocation: the smaller; base
 * address alignment: the larger; fp16/fp64/images: both must have them). */
tlcl_device_info tlcl_device_profile_apply(const tlcl_device_profile *p, const tlcl_device_info *real);

/* Lists every device of every platform. *out is malloc'd; the caller frees it.
 * Returns TLCL_ERR_NO_PLATFORM (with a message in err) when no OpenCL
 * platform is installed. */
tlcl_status tlcl_devices_list(tlcl_device_info **out, int *count, char *err, size_t err_len);
/* Default device: the first GPU, else the first device. */
int tlcl_devices_default(const tlcl_device_info *devs, int count);
/* Writes the JSON array of `tlcl devices --json` (malloc'd string). */
char *tlcl_devices_json(const tlcl_device_info *devs, int count);

/* ---- context ---------------------------------------------------------- */

typedef struct tlcl_cl tlcl_cl;

/* Every environment variable tlcl's modules honour, read once
 * (tlcl_settings_from_env, at start-up or context creation). */
typedef struct tlcl_settings {
    char cache_dir[1024];   /* $TLCL_CACHE_DIR, else $XDG_CACHE_HOME/tlcl, else ~/.cache/tlcl ("" none) */
    int fast_math;          /* $TLCL_FAST_MATH=1: -cl-fast-relaxed-math */
    int vector_width_cap;   /* $TLCL_VECTOR_WIDTH: narrower channel vectors (0: the device's) */
    int fma;                /* $TLCL_FMA=0|1 overrides the device's CL_FP_FMA (-1: unset) */
    int log_builds;         /* $TLCL_LOG_BUILDS: one line per program build or load */
    char gemm[16];          /* $TLCL_GEMM=own|clblast forces the GEMM back-end ("": measured choice) */
    char gemm_tune[64];     /* $TLCL_GEMM_TUNE="tm,vw,nv,vwn,lx,ly" overrides the GEMM table */
    int conv_im2col;        /* $TLCL_CONV=im2col: no implicit-GEMM convolutions */
    size_t conv_col_bytes;  /* $TLCL_CONV_COL_BYTES: im2col chunk size (0: the default) */
    int bn_column;          /* $TLCL_BN_COLUMN=0|1: training-mode batch norm's column kernels never or always
                               (-1: the engine's choice) */
    char device_profile[32]; /* $TLCL_DEVICE_PROFILE=nvidia|amd|intel-gpu|arm-mali: plan every launch as on that
                                GPU (device_profiles.c; "": the device itself; another name is refused at
                                context creation) */
    int compile_helper;     /* $TLCL_COMPILE_HELPER=0: no second compiling process on a cold start
                               (tlcl_cl_helper_start; default on, CPU devices only) */
    int helper_fd;          /* $TLCL_HELPER_FD: set by tlcl_cl_helper_start in its child only, the
                               descriptor of the table it shares with its parent (-1: not a helper) */
    double helper_wait_s;   /* $TLCL_HELPER_WAIT_S: a helper that finishes nothing for this long is
                               killed and its work done here (default 30) */
    char helper_fault[16];  /* $TLCL_TEST_HELPER_FAULT=exec|exit|stall: tests only, the helper fails to start,
                               exits, or stops after its first claimed job */
} tlcl_settings;

tlcl_settings tlcl_settings_from_env(void);

typedef struct tlcl_cl_options {
    int device_index;        /* -1: the default device */
    const char *cache_dir;   /* NULL: the settings' */
    int fast_math;           /* -1: the settings'; 0/1 forces */
    int profiling;           /* enable queue profiling (bench) */
    const tlcl_settings *settings; /* NULL: tlcl_settings_from_env() */
} tlcl_cl_options;

tlcl_cl_options tlcl_cl_options_default(void);
/* On failure *out is NULL and the message is written to err. */
tlcl_status tlcl_cl_init(tlcl_cl **out, const tlcl_cl_options *opt, char *err, size_t err_len);
void tlcl_cl_free(tlcl_cl *cl);

/* Writes the programs compiled from source since the last call to the
 * disk cache. It is deferred to here because PoCL generates code for every
 * kernel of a program for the binary (about half of a cold start's
 * compiling, for code tlcl never runs): a run calls it once its work is
 * done, tlcl_cl_free calls it too. A process killed before either starts
 * cold again next time (the driver's own cache, PoCL's, still helps). */
void tlcl_cl_save_programs(tlcl_cl *cl);

/* ---- a second compiling process (cl_helper.c) ---------------------------
 *
 * PoCL compiles behind a process-wide lock: a program at its build, and a
 * work-group function at the first launch of each kernel and local size,
 * so a cold start compiles on one core. When this context's programs are
 * not in tlcl's cache (a cold start) on a CPU device, helper_start starts
 * /proc/self/exe with argv (a command that runs the same first step) as a
 * helper: its context (tlcl_cl_init sees $TLCL_HELPER_FD) runs the same
 * sequence of program builds and launches, and the two share it through a
 * table of jobs in shared memory. The helper claims the jobs a little ahead
 * of this process, compiles them (a program build, or one launch on its
 * own buffers, whose values do not matter) and leaves the rest, so its work
 * lands in the drivers' disk caches where this process finds it. After its
 * step it waits for this process's tlcl_cl_save_programs and writes the
 * programs' binaries to tlcl's cache with it, each entry by whichever
 * claims it first. Results are this
 * process's own: the helper only fills caches. Waits for it are bounded
 * (settings.helper_wait_s without progress: it is killed); a helper that
 * fails, dies or stalls leaves a warning (helper_warning) and this process
 * doing the work itself; tlcl_cl_free reaps it. Returns 1 when started, 0
 * when not needed (warm cache, not a CPU device, settings.compile_helper
 * 0, already a helper) or when it could not start (helper_warning says
 * why). */
int tlcl_cl_helper_start(tlcl_cl *cl, char *const argv[]);
/* Waits a short grace for the helper to exit, else kills it; reaps it
 * (tlcl_cl_free calls it; a caller that wants helper_warning complete calls
 * it first). Nothing in the helper itself. */
void tlcl_cl_helper_stop(tlcl_cl *cl);
/* This context is a helper's: its caller runs the first step only. */
int tlcl_cl_is_helper(const tlcl_cl *cl);
/* Why the helper did not help ("" when nothing went wrong). */
const char *tlcl_cl_helper_warning(const tlcl_cl *cl);

const char *tlcl_cl_error(const tlcl_cl *cl);
/* Records an error message and returns status (printf-style). */
tlcl_status tlcl_cl_fail(tlcl_cl *cl, tlcl_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The capabilities every decision reads: the device's own, or under a
 * device profile the emulated ones (tlcl_device_profile_apply). */
const tlcl_device_info *tlcl_cl_device(const tlcl_cl *cl);
/* The largest work-group this compiled kernel may be launched with: the
 * real device's CL_KERNEL_WORK_GROUP_SIZE bounded by the capabilities'
 * max_work_group_size (0 when the query fails). */
size_t tlcl_cl_kernel_max_wg(tlcl_cl *cl, cl_kernel k);
/* The context's copy of the settings; override replaces it (tests and
 * benchmarks that compare the GEMM and convolution choices in one process;
 * what the context derived at creation, its vector width and build
 * options, stays). */
const tlcl_settings *tlcl_cl_settings(const tlcl_cl *cl);
void tlcl_cl_settings_override(tlcl_cl *cl, const tlcl_settings *s);
cl_context tlcl_cl_context(const tlcl_cl *cl);
cl_command_queue tlcl_cl_queue(const tlcl_cl *cl);
/* Largest power-of-two work-group size ≤ 256 the device allows: kernels that
 * reduce in local memory are built with -DWG=<this>. */
size_t tlcl_cl_reduce_wg(const tlcl_cl *cl);
/* Channels per work-item of the vectorised kernels (1, 4, 8 or 16; -DVW). */
int tlcl_cl_vector_width(const tlcl_cl *cl);
/* The program cache directory ("" when there is none); other per-device
 * results (the GEMM back-end choice) are persisted there too. */
const char *tlcl_cl_cache_dir(const tlcl_cl *cl);

/* ---- programs and kernels -------------------------------------------- */

/* A kernel of a program built with given -D options. Kernels are created
 * once and kept in the context; programs come from the disk cache when the
 * (source, options, device, driver) key matches. The handle is owned by the
 * context: do not release it. */
tlcl_status tlcl_cl_kernel(tlcl_cl *cl, const char *program, const char *options,
                           const char *kernel_name, cl_kernel *out);

/* Counters for tests and bench: programs compiled from source vs loaded
 * from the cache, buffers created, launch shapes. */
typedef struct tlcl_cl_stats {
    int programs_compiled;
    int programs_from_cache;
    long buffers_created;
    double program_seconds;  /* wall time spent compiling or loading programs (a driver
                                that defers code generation to the first launch, as
                                PoCL does, spends part of it later) */
    double save_seconds;     /* wall time spent writing programs to the disk cache
                                (tlcl_cl_save_programs) */
    int launch_shapes;       /* distinct (kernel, local size) pairs launched: about the
                                work-group functions a CPU driver compiles at first launches */
    int helper_jobs;         /* programs, work-group functions and cache entries the helper
                                process compiled or wrote for this one (tlcl_cl_helper_start) */
} tlcl_cl_stats;
tlcl_cl_stats tlcl_cl_stats_get(const tlcl_cl *cl);
void tlcl_cl_count_buffer(tlcl_cl *cl);

/* Kernel arguments as (size, pointer) pairs so a launch is one call. */
typedef struct tlcl_arg { size_t size; const void *ptr; } tlcl_arg;
#define TLCL_MEM(m)   ((tlcl_arg){sizeof(cl_mem), &(m)})
#define TLCL_INT(x)   ((tlcl_arg){sizeof(cl_int), &(cl_int){(cl_int)(x)}})
#define TLCL_UINT(x)  ((tlcl_arg){sizeof(cl_uint), &(cl_uint){(cl_uint)(x)}})
#define TLCL_FLOAT(x) ((tlcl_arg){sizeof(cl_float), &(cl_float){(cl_float)(x)}})
#define TLCL_LOCAL(bytes) ((tlcl_arg){(bytes), NULL})

/* Enqueues kernel over global (rounded up to a multiple of local when local
 * is given). Kernels guard their own bounds. */
tlcl_status tlcl_cl_launch(tlcl_cl *cl, cl_kernel k, const char *kernel_name, cl_uint dims,
                           const size_t *global, const size_t *local,
                           int nargs, const tlcl_arg *args);
#define TLCL_LAUNCH(cl, k, name, dims, global, local, ...)                       \
    tlcl_cl_launch((cl), (k), (name), (dims), (global), (local),                 \
                   (int)(sizeof((tlcl_arg[]){__VA_ARGS__}) / sizeof(tlcl_arg)), \
                   (tlcl_arg[]){__VA_ARGS__})

/* Looks up program/kernel and launches it in one call. */
tlcl_status tlcl_cl_run(tlcl_cl *cl, const char *program, const char *options, const char *kernel_name,
                        cl_uint dims, const size_t *global, const size_t *local,
                        int nargs, const tlcl_arg *args);
#define TLCL_RUN(cl, prog, opts, name, dims, global, local, ...)                  \
    tlcl_cl_run((cl), (prog), (opts), (name), (dims), (global), (local),          \
                (int)(sizeof((tlcl_arg[]){__VA_ARGS__}) / sizeof(tlcl_arg)),      \
                (tlcl_arg[]){__VA_ARGS__})

tlcl_status tlcl_cl_finish(tlcl_cl *cl);

/* With options.profiling, every launch is timed by its OpenCL event:
 * collect() waits for the queue and adds the durations per kernel name and
 * per layer scope; report() prints the kernel table (most expensive first)
 * and the total; reset() forgets both. */
tlcl_status tlcl_cl_profile_collect(tlcl_cl *cl);
void tlcl_cl_profile_report(tlcl_cl *cl, FILE *f, double scale);
void tlcl_cl_profile_reset(tlcl_cl *cl);
int tlcl_cl_profiling(const tlcl_cl *cl);

/* Layer scopes: the launches after tlcl_cl_profile_scope(cl, layer, phase,
 * flops, bytes) count towards that layer and phase until the next scope call
 * (layer NULL: towards none). Each call adds flops and bytes (the work of
 * one pass of the layer) to the layer's totals, so times and work come from
 * the same steps. Costs nothing without profiling. */
typedef enum tlcl_cl_phase { TLCL_PHASE_FWD = 0, TLCL_PHASE_BWD = 1 } tlcl_cl_phase;
void tlcl_cl_profile_scope(tlcl_cl *cl, const char *layer, tlcl_cl_phase phase, double flops, double bytes);

/* Per-layer totals since the last reset, indexed by tlcl_cl_phase, in the
 * order the layers were first scoped; after collect(). Launches outside any
 * scope count towards the layer TLCL_PROFILE_UNSCOPED (forward phase). */
#define TLCL_PROFILE_UNSCOPED "(unscoped)"
typedef struct tlcl_cl_layer_profile {
    char *name;
    double ms[2], flops[2], bytes[2];
    long passes[2];                 /* scope calls */
} tlcl_cl_layer_profile;
int tlcl_cl_profile_layers(const tlcl_cl *cl, const tlcl_cl_layer_profile **out);

/* Layer times from the host clock instead of events, for drivers whose
 * events carry no time (Mesa's Rusticl and Clover report 0, 1, 2, 3): each
 * scope call then waits for the queue and charges the time since the
 * previous one to the previous scope. That serialises host and device, so it
 * is for a pass of its own, not for timed steps. */
void tlcl_cl_profile_host_timing(tlcl_cl *cl, int on);

/* Host <-> device copies (blocking), with errors naming the tensor. */
tlcl_status tlcl_cl_write(tlcl_cl *cl, cl_mem buf, size_t offset_bytes, size_t bytes, const void *src, const char *what);
tlcl_status tlcl_cl_read(tlcl_cl *cl, cl_mem buf, size_t offset_bytes, size_t bytes, void *dst, const char *what);
/* Non-blocking copies: the host memory must stay untouched (write) or unread
 * (read) until *done has completed (tlcl_cl_wait) or the queue is finished.
 * done may be NULL. On the Oclgrind simulator a write is blocking (see
 * sim_transfer) and *done is NULL. */
tlcl_status tlcl_cl_write_async(tlcl_cl *cl, cl_mem buf, size_t offset_bytes, size_t bytes, const void *src,
                                const char *what, cl_event *done);
tlcl_status tlcl_cl_read_async(tlcl_cl *cl, cl_mem buf, size_t offset_bytes, size_t bytes, void *dst,
                               const char *what, cl_event *done);
/* An event that completes when everything enqueued so far has. */
tlcl_status tlcl_cl_marker(tlcl_cl *cl, cl_event *out);
/* Waits for *ev (NULL or an empty event: nothing to wait for), releases it
 * and sets it to NULL. */
tlcl_status tlcl_cl_wait(tlcl_cl *cl, cl_event *ev, const char *what);
/* Releases *ev without waiting for it and sets it to NULL. */
void tlcl_cl_forget(cl_event *ev);
/* Without waiting: *done = 1 when ev has completed (or is NULL), else 0. */
tlcl_status tlcl_cl_poll(tlcl_cl *cl, cl_event ev, int *done, const char *what);
/* Submits what was enqueued so far to the device (clFlush), so it starts
 * while the host waits elsewhere (for a poll loop, not a blocking wait). */
tlcl_status tlcl_cl_flush(tlcl_cl *cl);
/* Device-to-device copy (enqueued, not waited for). */
tlcl_status tlcl_cl_copy(tlcl_cl *cl, cl_mem dst, size_t dst_offset_bytes, cl_mem src, size_t src_offset_bytes,
                         size_t bytes, const char *what);

/* Creates a device buffer; on failure the error names `what` and its size
 * and suggests a smaller batch. */
tlcl_status tlcl_cl_buffer(tlcl_cl *cl, size_t bytes, const char *what, cl_mem *out);

/* The embedded source of a program (NULL when unknown). */
const char *tlcl_cl_program_source(const char *program);

/* FNV-1a 64 of len bytes, continuing from h (TLCL_HASH_SEED to start): the
 * program cache's keys and the checksums of checkpoints. */
uint64_t tlcl_hash_bytes(uint64_t h, const void *data, size_t len);
#define TLCL_HASH_SEED 0xcbf29ce484222325ULL

/* ---- files published whole (file_publish.c) -------------------------- */

/* A file being written under "<path>.tmp.<pid>" next to its final path:
 * write to f, then commit. */
typedef struct tlcl_publish {
    FILE *f;          /* the content goes here (buffered) */
    int fd;
    int err_no;       /* errno of the first failed write */
    char path[4096];
    char tmp[4200];
} tlcl_publish;

/* Creates the temporary. On failure the message names path, the system's
 * reason and what to do. */
tlcl_status tlcl_publish_open(tlcl_publish *p, const char *path, char *err, size_t err_len);
/* Flushes, fsyncs and closes the temporary, renames it to the path and
 * fsyncs the folder. ok = 0 (the writer failed: its message is already in
 * err) or any failed step removes the temporary and returns TLCL_ERR_IO;
 * the message of a failed step names the file, the step and strerror. */
tlcl_status tlcl_publish_commit(tlcl_publish *p, int ok, char *err, size_t err_len);
/* Closes and removes the temporary without publishing it. */
void tlcl_publish_discard(tlcl_publish *p);
/* The n bytes of data as the file path, the same way. */
tlcl_status tlcl_publish_bytes(const char *path, const void *data, size_t n, char *err, size_t err_len);
/* fsync of the folder holding path, so a rename there survives a crash.
 * 0, or -1 with errno. */
int tlcl_sync_folder_of(const char *path);
/* What to do about a failed write with this errno: " (free space ...)",
 * or "" when there is nothing to suggest. */
const char *tlcl_io_hint(int err_no);
/* Removes, in dir, the temporaries "<name>.tmp.<pid>" of processes that no
 * longer exist (kill(pid, 0) fails with ESRCH): what a killed run left.
 * Returns how many were removed. */
int tlcl_publish_clean_stale(const char *dir);

#endif
