/* dropout.c — inverted dropout and stochastic depth (per-sample dropout).
 * Both are dropout_apply_V in cl/kernels/dropout.cl with a different group
 * of elements sharing one keep decision; backward is the same kernel on the
 * gradient with the same seed, so no mask is stored. */
#include "engine_internal.h"
#include "tlcl_programs.h"

#include <stdio.h>

/* Keep decisions: per element (stream 0) or per sample (stream 1), so the
 * two kinds of mask differ even with the same seed. residual, when given,
 * is added to the result. */
static tlcl_status dropout_run(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *in, const tlcl_tensor *residual,
                               float rate, uint32_t seed, int first_sample, int per_sample, const char *op)
{
    size_t n = tlcl_tensor_count(out);
    TLCL_TRY(eng_check_count(e, in, n, op));
    TLCL_TRY(eng_check_dtype(e, in, out->dtype, op));
    if (residual) {
        TLCL_TRY(eng_check_count(e, residual, n, op));
        TLCL_TRY(eng_check_dtype(e, residual, out->dtype, op));
    }
    if (!(rate >= 0.0f && rate < 1.0f))
        return ENG_FAIL(e, TLCL_ERR_ARG, "%s: rate %g is outside [0, 1)", op, rate);
    if (rate == 0.0f && residual)
        return tlcl_add_forward(e, out, in, residual);
    if (rate == 0.0f || n == 0) /* identity, as Keras with rate 0 */
        return out->buf == in->buf ? TLCL_OK : tlcl_tensor_copy(e, out, in);
    int group = per_sample && out->n > 0 ? (int)(n / (size_t)out->n) : 1;
    /* the hash index of this tensor's first element or sample in the global batch */
    uint32_t base = (uint32_t)first_sample * (uint32_t)(out->n > 0 ? n / (size_t)out->n / (size_t)group : 0);
    int V = eng_channel_vector(e, group);
    if (n % (size_t)V != 0)
        V = 1;
    char kernel[24];
    snprintf(kernel, sizeof kernel, "dropout_apply_%d", V);
    size_t g = eng_global1(n / (size_t)V);
    cl_mem res = residual ? residual->buf : in->buf; /* bound either way; read only with has_residual */
    return TLCL_RUN(e->cl, TLCL_PROG(dropout), eng_dtype_opts(out), kernel, 1, &g, NULL, TLCL_MEM(out->buf), TLCL_MEM(in->buf),
                    TLCL_MEM(res), TLCL_INT(residual != NULL), TLCL_INT(n / (size_t)V),
                    TLCL_INT(group), TLCL_UINT(per_sample ? 1 : 0), TLCL_UINT(seed), TLCL_UINT(base), TLCL_FLOAT(rate),
                    TLCL_FLOAT(1.0f / (1.0f - rate)));
}

tlcl_status tlcl_dropout_forward(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *in, float rate, uint32_t seed,
                                 int first_sample)
{
    return dropout_run(e, out, in, NULL, rate, seed, first_sample, 0, "dropout");
}

/* din = dout * mask / (1 - rate): the forward on dout with the same seed. */
tlcl_status tlcl_dropout_backward(tlcl_engine *e, tlcl_tensor *din, const tlcl_tensor *dout, float rate,
                                  uint32_t seed, int first_sample)
{
    return dropout_run(e, din, dout, NULL, rate, seed, first_sample, 0, "dropout backward");
}

tlcl_status tlcl_drop_path_forward(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *in, float rate,
                                   uint32_t seed, int first_sample)
{
    return dropout_run(e, out, in, NULL, rate, seed, first_sample, 1, "drop path");
}

tlcl_status tlcl_drop_path_backward(tlcl_engine *e, tlcl_tensor *din, const tlcl_tensor *dout, float rate,
                                    uint32_t seed, int first_sample)
{
    return dropout_run(e, din, dout, NULL, rate, seed, first_sample, 1, "drop path backward");
}

tlcl_status tlcl_drop_path_add_forward(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *branch,
                                       const tlcl_tensor *shortcut, float rate, uint32_t seed, int first_sample)
{
    return dropout_run(e, out, branch, shortcut, rate, seed, first_sample, 1, "drop path + add");
}
