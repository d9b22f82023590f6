/* cl_internal.h — shared between the files of the cl/ module only. */
#ifndef TLCL_CL_INTERNAL_H
#define TLCL_CL_INTERNAL_H

#include "tlcl_cl.h"

typedef struct cl_program_entry {
    uint64_t hash;        /* of program name + options */
    char *name, *options;
    char *build_options;  /* the full option string it was built with */
    int unsaved;          /* built from source, not yet in the disk cache */
    cl_program program;
} cl_program_entry;

typedef struct cl_kernel_entry {
    uint64_t hash;        /* of program name + options + kernel name */
    int program;          /* index into programs */
    char *name;
    cl_kernel kernel;
} cl_kernel_entry;

struct tlcl_cl {
    tlcl_device_info dev;  /* the capabilities every decision reads (a device profile's under one) */
    tlcl_device_info real; /* the device's own: what launches must also fit, the driver's quirks */
    cl_context context;
    cl_command_queue queue;
    tlcl_settings settings;
    char cache_dir[1024];
    int fast_math;
    int fma; /* kernels get -DTLCL_FMA: MAD() is fma() (see common.cl) */
    size_t reduce_wg;
    int vector_width;  /* 1, 4, 8 or 16: -DVW of every program */
    int sim_transfers;    /* Oclgrind: host transfers go through copy kernels (sim_transfer) */
    cl_program_entry *programs;
    int nprograms, cap_programs;
    cl_kernel_entry *kernels;
    int nkernels, cap_kernels;
    tlcl_cl_stats stats;
    uint64_t shapes[1024]; /* hashes of the launched (kernel, local size) pairs: stats.launch_shapes */
    int profiling;
    /* launches since the last profile reset (profiling only), each with its
     * kernel and the layer scope it ran in (-1: none) */
    struct cl_profile_event { cl_event ev; cl_kernel kernel; int layer; tlcl_cl_phase phase; } *events;
    int nevents, cap_events;
    struct cl_profile_total { const char *name; double ms; long calls; } *totals;
    int ntotals, cap_totals;
    tlcl_cl_layer_profile *layers;
    int nlayers, cap_layers;
    int scope;                 /* layer index of the launches that follow, -1: none */
    tlcl_cl_phase scope_phase;
    int host_timing;           /* layer times from the host clock (tlcl_cl_profile_host_timing) */
    double scope_since;        /* host time the current scope began */
    char err[16384];
};

uint64_t tlcl_hash_str(uint64_t h, const char *s);

/* Builds (or loads from the disk cache) the program with the full option
 * string; on failure records the build log in cl->err. *from_source: it was
 * compiled, and cl_program_save should put it in the cache. */
tlcl_status cl_program_build(tlcl_cl *cl, const char *name, const char *options, cl_program *out,
                             int *from_source);

/* Writes a program built from source to the disk cache (a failure only
 * costs a rebuild next time). */
void cl_program_save(tlcl_cl *cl, const char *name, const char *options, cl_program p);

/* Keeps a launch's event for the profile (releases it if out of memory). */
void cl_profile_push(tlcl_cl *cl, cl_event ev, cl_kernel kernel);

/* Records "call failed: CL_NAME (kernel K) at file:line". */
tlcl_status cl_fail_call(tlcl_cl *cl, cl_int err, const char *call, const char *kernel);

#define CL_TRY(cl, call, kernel)                                       \
    do {                                                               \
        cl_int e_ = (call);                                            \
        if (e_ != CL_SUCCESS) return cl_fail_call((cl), e_, #call, (kernel)); \
    } while (0)

#endif
