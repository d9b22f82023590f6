/* resize.c — bilinear resize with TensorFlow's half-pixel centres
 * (antialias off), forward and a gathering backward. Kernels in
 * cl/kernels/resize.cl. */
#include "engine_internal.h"
#include "tlcl_programs.h"

static tlcl_status resize_check(tlcl_engine *e, const tlcl_tensor *in, const tlcl_tensor *out, const char *op)
{
    if (in->n != out->n || in->c != out->c)
        return ENG_FAIL(e, TLCL_ERR_ARG, "%s: '%s' (%d,%d,%d,%d) and '%s' (%d,%d,%d,%d) differ in batch or channels",
                        op, in->name ? in->name : "?", in->n, in->h, in->w, in->c, out->name ? out->name : "?",
                        out->n, out->h, out->w, out->c);
    if ((in->h == 0 || in->w == 0) && out->h > 0 && out->w > 0)
        return ENG_FAIL(e, TLCL_ERR_ARG, "%s: cannot resize the empty image '%s' to %dx%d", op,
                        in->name ? in->name : "?", out->h, out->w);
    return TLCL_OK;
}

/* One launch over dst's elements; small is the tensor at the input
 * resolution [N,H,W,C], big at the output one [N,OH,OW,C]. The scales are
 * computed here once, in float as TF, so forward and backward agree bit
 * for bit on the source positions. */
static tlcl_status resize_run(tlcl_engine *e, const char *kernel, cl_mem dst, const tlcl_tensor *dst_shape,
                              cl_mem src, const tlcl_tensor *small, const tlcl_tensor *big)
{
    float sy = (float)small->h / (float)big->h, sx = (float)small->w / (float)big->w;
    size_t gs[3] = {(size_t)dst_shape->c, (size_t)dst_shape->w, (size_t)dst_shape->n * dst_shape->h};
    return TLCL_RUN(e->cl, TLCL_PROG(resize), "", kernel, 3, gs, NULL, TLCL_MEM(dst), TLCL_MEM(src),
                    TLCL_INT(dst_shape->n * dst_shape->h), TLCL_INT(small->h), TLCL_INT(small->w), TLCL_INT(small->c),
                    TLCL_INT(big->h), TLCL_INT(big->w), TLCL_FLOAT(sy), TLCL_FLOAT(sx));
}

tlcl_status tlcl_resize_bilinear_forward(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *in)
{
    TLCL_TRY(resize_check(e, in, out, "resize forward"));
    if (tlcl_tensor_count(out) == 0)
        return TLCL_OK;
    return resize_run(e, "resize_bilinear_forward", out->buf, out, in->buf, in, out);
}

tlcl_status tlcl_resize_bilinear_backward(tlcl_engine *e, tlcl_tensor *din, const tlcl_tensor *dout)
{
    TLCL_TRY(resize_check(e, din, dout, "resize backward"));
    if (tlcl_tensor_count(din) == 0)
        return TLCL_OK;
    if (tlcl_tensor_count(dout) == 0) /* nothing read the input */
        return tlcl_tensor_fill(e, din, 0.0f);
    return resize_run(e, "resize_bilinear_backward", din->buf, din, dout->buf, din, dout);
}
