/* pool.c — global average pooling (a column reduction per sample) and the
 * per-(sample, channel) broadcast that its backward shares with SE. */
#include "norm_internal.h"
#include "tlcl_programs.h"

#include <stdio.h>

tlcl_status eng_channel_broadcast(tlcl_engine *e, tlcl_dtype dtype, cl_mem out, cl_mem in, cl_mem mul, cl_mem add,
                                  float add_scale, int N, int HW, int C)
{
    if ((size_t)N * (size_t)HW * (size_t)C == 0)
        return TLCL_OK;
    int V = eng_channel_vector(e, C);
    size_t g = eng_global1((size_t)N * HW * (C / V));
    int has_in = in && mul, has_add = add != NULL;
    /* unused buffers are bound to out so every argument is a valid buffer */
    cl_mem a = has_in ? in : out, m = has_in ? mul : out, s = has_add ? add : out;
    char kernel[32];
    snprintf(kernel, sizeof kernel, "channel_broadcast_%d", V);
    return TLCL_RUN(e->cl, TLCL_PROG(pool), eng_dtype_option(dtype), kernel, 1, &g, NULL, TLCL_MEM(out), TLCL_MEM(a), TLCL_MEM(m),
                    TLCL_MEM(s), TLCL_FLOAT(add_scale), TLCL_INT(has_in), TLCL_INT(has_add), TLCL_INT(N),
                    TLCL_INT(HW), TLCL_INT(C / V));
}

tlcl_status tlcl_global_avgpool_forward(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *in)
{
    int HW = in->h * in->w;
    TLCL_TRY(eng_check_count(e, out, (size_t)in->n * (size_t)in->c, "global_avgpool forward"));
    if (out->c != in->c)
        return ENG_FAIL(e, TLCL_ERR_ARG, "global_avgpool forward: out '%s' has %d channels, in has %d",
                        out->name ? out->name : "?", out->c, in->c);
    TLCL_TRY(eng_check_dtype(e, out, TLCL_F32, "global_avgpool forward")); /* pooled vectors are float */
    eng_row_map plain = {.mode = ENG_ROW_PLAIN, .dtype = in->dtype};
    return eng_reduce_rows(e, out->buf, in->buf, in->n, HW, in->c, HW > 0 ? 1.0f / (float)HW : 0.0f, 0, &plain);
}

tlcl_status tlcl_global_avgpool_backward(tlcl_engine *e, tlcl_tensor *din, const tlcl_tensor *dout)
{
    int HW = din->h * din->w;
    TLCL_TRY(eng_check_count(e, dout, (size_t)din->n * (size_t)din->c, "global_avgpool backward"));
    if (dout->c != din->c)
        return ENG_FAIL(e, TLCL_ERR_ARG, "global_avgpool backward: dout '%s' has %d channels, din has %d",
                        dout->name ? dout->name : "?", dout->c, din->c);
    TLCL_TRY(eng_check_dtype(e, dout, TLCL_F32, "global_avgpool backward"));
    return eng_channel_broadcast(e, din->dtype, din->buf, NULL, NULL, dout->buf, HW > 0 ? 1.0f / (float)HW : 0.0f,
                                 din->n, HW, din->c);
}
