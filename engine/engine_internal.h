/* engine_internal.h — shared by the files of engine/ only. */
#ifndef TLCL_ENGINE_INTERNAL_H
#define TLCL_ENGINE_INTERNAL_H

#include "engine.h"

typedef struct pool_entry {
    cl_mem buf;
    size_t bytes;
    int in_use;
    const char *name;  /* of the tensor that holds it now (diagnostics) */
} pool_entry;

struct tlcl_engine {
    tlcl_cl *cl;
    pool_entry *pool;
    int npool, cap_pool;
    tlcl_gemm_backend gemm_backend;  /* AUTO until resolved */
    void *clblast_state;             /* gemm_clblast.c's, NULL when unused */
};

#define ENG_TRY(expr)                          \
    do {                                       \
        tlcl_status s_ = (expr);               \
        if (s_ != TLCL_OK) return s_;          \
    } while (0)

/* Records a message in the context and returns status. */
#define ENG_FAIL(e, status, ...) tlcl_cl_fail((e)->cl, (status), __VA_ARGS__)

/* Checks that a tensor has exactly the element count expected; names it. */
tlcl_status eng_check_count(tlcl_engine *e, const tlcl_tensor *t, size_t want, const char *op);
tlcl_status eng_check_shape(tlcl_engine *e, const tlcl_tensor *t, int n, int h, int w, int c, const char *op);

/* Global size for a 1-D launch over count elements, local size left to the
 * driver (kernels guard their bounds). */
static inline size_t eng_global1(size_t count) { return count; }

#endif
