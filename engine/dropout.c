/* dropout.c — inverted dropout and stochastic depth (per-sample dropout).
 * Both are dropout_apply in cl/kernels/dropout.cl with a different group of
 * elements sharing one keep decision; backward is the same kernel on the
 * gradient with the same seed, so no mask is stored. */
#include "engine_internal.h"
#include "tlcl_programs.h"

/* Keep decisions: per element (stream 0) or per sample (stream 1), so the
 * two kinds of mask differ even with the same seed. */
static tlcl_status dropout_run(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *in, float rate, uint32_t seed,
                               int per_sample, const char *op)
{
    size_t n = tlcl_tensor_count(out);
    ENG_TRY(eng_check_count(e, in, n, op));
    if (!(rate >= 0.0f && rate < 1.0f))
        return ENG_FAIL(e, TLCL_ERR_ARG, "%s: rate %g is outside [0, 1)", op, rate);
    if (rate == 0.0f || n == 0) /* identity, as Keras with rate 0 */
        return out->buf == in->buf ? TLCL_OK : tlcl_tensor_copy(e, out, in);
    int group = per_sample && out->n > 0 ? (int)(n / (size_t)out->n) : 1;
    size_t g = eng_global1(n);
    return TLCL_RUN(e->cl, TLCL_PROG(dropout), "", "dropout_apply", 1, &g, NULL, TLCL_MEM(out->buf), TLCL_MEM(in->buf),
                    TLCL_INT(n), TLCL_INT(group), TLCL_UINT(per_sample ? 1 : 0), TLCL_UINT(seed), TLCL_FLOAT(rate),
                    TLCL_FLOAT(1.0f / (1.0f - rate)));
}

tlcl_status tlcl_dropout_forward(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *in, float rate, uint32_t seed)
{
    return dropout_run(e, out, in, rate, seed, 0, "dropout");
}

/* din = dout * mask / (1 - rate): the forward on dout with the same seed. */
tlcl_status tlcl_dropout_backward(tlcl_engine *e, tlcl_tensor *din, const tlcl_tensor *dout, float rate,
                                  uint32_t seed)
{
    return dropout_run(e, din, dout, rate, seed, 0, "dropout backward");
}

tlcl_status tlcl_drop_path_forward(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *in, float rate,
                                   uint32_t seed)
{
    return dropout_run(e, out, in, rate, seed, 1, "drop path");
}

tlcl_status tlcl_drop_path_backward(tlcl_engine *e, tlcl_tensor *din, const tlcl_tensor *dout, float rate,
                                    uint32_t seed)
{
    return dropout_run(e, din, dout, rate, seed, 1, "drop path backward");
}
