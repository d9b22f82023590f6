/* dense.c — fully connected layer: pre = in W + b, out = act(pre), as a
 * GEMM plus one epilogue kernel; backward is two GEMMs and a column sum. */
#include "norm_internal.h"
#include "tlcl_programs.h"

typedef struct dense_dims { int N, Cin, Cout; } dense_dims;

/* in is N rows of h*w*c; weight is [Cin, Cout] in any 4-D spelling (a 1x1
 * conv kernel [1,1,Cin,Cout] included) with Cout its last dimension. */
static tlcl_status dense_dims_of(tlcl_engine *e, const tlcl_tensor *in, const tlcl_tensor *weight,
                                 const tlcl_tensor *out, const char *op, dense_dims *d)
{
    d->N = in->n;
    d->Cin = in->h * in->w * in->c;
    d->Cout = weight->c;
    TLCL_TRY(eng_check_count(e, weight, (size_t)d->Cin * (size_t)d->Cout, op));
    return eng_check_count(e, out, (size_t)d->N * (size_t)d->Cout, op);
}

tlcl_status tlcl_dense_forward(tlcl_engine *e, tlcl_tensor *out, tlcl_tensor *pre, const tlcl_tensor *in,
                               const tlcl_tensor *weight, const tlcl_tensor *bias, tlcl_act act)
{
    dense_dims d;
    TLCL_TRY(dense_dims_of(e, in, weight, out, "dense forward", &d));
    if (bias)
        TLCL_TRY(eng_check_count(e, bias, (size_t)d.Cout, "dense forward bias"));
    if (pre)
        TLCL_TRY(eng_check_count(e, pre, (size_t)d.N * (size_t)d.Cout, "dense forward pre"));
    else if (act != TLCL_ACT_NONE)
        return ENG_FAIL(e, TLCL_ERR_ARG, "dense forward: an activation needs the 'pre' tensor for backward");
    cl_mem z = pre ? pre->buf : out->buf;
    TLCL_TRY(tlcl_gemm(e, 0, 0, d.N, d.Cout, d.Cin, 1.0f, in->buf, 0, d.Cin, weight->buf, 0, d.Cout, 0.0f, z, 0,
                      d.Cout));
    size_t n = (size_t)d.N * (size_t)d.Cout, g = eng_global1(n);
    if (n == 0 || (!bias && act == TLCL_ACT_NONE && !pre))
        return TLCL_OK;
    cl_mem b = bias ? bias->buf : z; /* any valid buffer when there is no bias */
    return TLCL_RUN(e->cl, TLCL_PROG(dense), "", "dense_bias_act", 1, &g, NULL, TLCL_MEM(out->buf), TLCL_MEM(z),
                    TLCL_MEM(b), TLCL_INT(bias != NULL), TLCL_INT(n), TLCL_INT(d.Cout),
                    TLCL_INT(act));
}

/* din = dz W^T (overwritten); dW += in^T dz; dbias += column sums of dz. */
static tlcl_status dense_backward_dz(tlcl_engine *e, const dense_dims *d, tlcl_tensor *din, tlcl_tensor *dweight,
                                     tlcl_tensor *dbias, cl_mem dz, const tlcl_tensor *in, const tlcl_tensor *weight)
{
    if (din)
        TLCL_TRY(tlcl_gemm(e, 0, 1, d->N, d->Cin, d->Cout, 1.0f, dz, 0, d->Cout, weight->buf, 0, d->Cout, 0.0f,
                          din->buf, 0, d->Cin));
    if (dweight)
        TLCL_TRY(tlcl_gemm(e, 1, 0, d->Cin, d->Cout, d->N, 1.0f, in->buf, 0, d->Cin, dz, 0, d->Cout, 1.0f,
                          dweight->buf, 0, d->Cout));
    if (dbias)
        TLCL_TRY(eng_reduce_rows(e, dbias->buf, dz, 1, d->N, d->Cout, 1.0f, 1, NULL));
    return TLCL_OK;
}

tlcl_status tlcl_dense_backward(tlcl_engine *e, tlcl_tensor *din, tlcl_tensor *dweight, tlcl_tensor *dbias,
                                const tlcl_tensor *dout, const tlcl_tensor *in, const tlcl_tensor *weight,
                                const tlcl_tensor *pre, tlcl_act act)
{
    dense_dims d;
    TLCL_TRY(dense_dims_of(e, in, weight, dout, "dense backward", &d));
    if (din)
        TLCL_TRY(eng_check_count(e, din, tlcl_tensor_count(in), "dense backward din"));
    if (dweight)
        TLCL_TRY(eng_check_count(e, dweight, tlcl_tensor_count(weight), "dense backward dweight"));
    if (dbias)
        TLCL_TRY(eng_check_count(e, dbias, (size_t)d.Cout, "dense backward dbias"));
    if (act == TLCL_ACT_NONE)
        return dense_backward_dz(e, &d, din, dweight, dbias, dout->buf, in, weight);
    if (!pre)
        return ENG_FAIL(e, TLCL_ERR_ARG, "dense backward: an activation needs the 'pre' tensor");
    tlcl_tensor dz;
    TLCL_TRY(tlcl_tensor_alloc(e, &dz, "dense dz", d.N, 1, 1, d.Cout));
    tlcl_status s = tlcl_activation_backward(e, act, &dz, dout, pre);
    if (s == TLCL_OK)
        s = dense_backward_dz(e, &d, din, dweight, dbias, dz.buf, in, weight);
    tlcl_tensor_release(e, &dz);
    return s;
}
