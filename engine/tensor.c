/* tensor.c — the engine handle, device tensors and the buffer pool that
 * lets a training step reuse the buffers of the previous one, plus the
 * elementwise helpers every layer uses (fill, copy, axpy). */
#include "engine_internal.h"
#include "tlcl_programs.h"

#include <stdlib.h>
#include <string.h>

tlcl_status tlcl_engine_init(tlcl_engine **out, tlcl_cl *cl)
{
    tlcl_engine *e = calloc(1, sizeof *e);
    if (!e)
        return tlcl_cl_fail(cl, TLCL_ERR_OOM, "out of host memory creating the engine");
    e->cl = cl;
    e->gemm_backend = TLCL_GEMM_AUTO;
    e->pool_reuse = TLCL_POOL_REUSE_TRAINING;
    e->oclgrind = strstr(tlcl_cl_device(cl)->platform_name, "Oclgrind") != NULL;
    eng_tuning_load(e);
    *out = e;
    return TLCL_OK;
}

void tlcl_gemm_clblast_free(tlcl_engine *e);

void tlcl_engine_free(tlcl_engine *e)
{
    if (!e)
        return;
    tlcl_gemm_clblast_free(e);
    eng_tune_rec_free(e);
    for (int i = 0; i < e->npool; i++)
        clReleaseMemObject(e->pool[i].buf);
    free(e->pool);
    free(e->bn_sums_host);
    free(e);
}

tlcl_status eng_zeros(tlcl_engine *e, size_t count, cl_mem *out)
{
    if (tlcl_tensor_count(&e->zeros) < count) {
        if (e->zeros.buf)
            tlcl_tensor_release(e, &e->zeros);
        TLCL_TRY(tlcl_tensor_alloc(e, &e->zeros, "engine zeros", 1, 1, 1, (int)count));
        tlcl_status s = tlcl_tensor_fill(e, &e->zeros, 0.0f);
        if (s != TLCL_OK) {
            tlcl_tensor_release(e, &e->zeros);
            return s;
        }
    }
    *out = e->zeros.buf;
    return TLCL_OK;
}

void tlcl_engine_set_pool_reuse(tlcl_engine *e, int factor) { e->pool_reuse = factor >= 1 ? factor : 1; }

tlcl_cl *tlcl_engine_cl(tlcl_engine *e) { return e->cl; }
const char *tlcl_engine_error(const tlcl_engine *e) { return tlcl_cl_error(e->cl); }

size_t tlcl_tensor_count(const tlcl_tensor *t)
{
    return (size_t)t->n * (size_t)t->h * (size_t)t->w * (size_t)t->c;
}

size_t tlcl_tensor_bytes(const tlcl_tensor *t) { return tlcl_tensor_count(t) * eng_dtype_size(t->dtype); }

/* The same rounding as common.cl's bf16_round: a NaN is not rounded (the
 * carry out of an all-ones payload would flip its sign and make it a
 * number) but truncated with its quiet bit set. */
uint16_t tlcl_bf16_from_float(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    uint32_t nan = (0x7f800000u - (u & 0x7fffffffu)) >> 31;
    u += (0x7fffu + ((u >> 16) & 1u)) & (nan - 1u);
    return (uint16_t)((u | (nan << 22)) >> 16);
}

float tlcl_bf16_to_float(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

const char *eng_dtype_opts(const tlcl_tensor *t) { return eng_dtype_option(t ? t->dtype : TLCL_F32); }

tlcl_status eng_check_dtype(tlcl_engine *e, const tlcl_tensor *t, tlcl_dtype want, const char *op)
{
    if (t && t->dtype != want)
        return ENG_FAIL(e, TLCL_ERR_ARG, "%s: tensor '%s' is stored as %s, expected %s", op,
                        t->name ? t->name : "?", eng_dtype_name(t->dtype), eng_dtype_name(want));
    return TLCL_OK;
}

tlcl_status eng_check_count(tlcl_engine *e, const tlcl_tensor *t, size_t want, const char *op)
{
    if (tlcl_tensor_count(t) != want)
        return ENG_FAIL(e, TLCL_ERR_ARG, "%s: tensor '%s' has %zu elements, expected %zu", op,
                        t->name ? t->name : "?", tlcl_tensor_count(t), want);
    return TLCL_OK;
}

tlcl_status eng_check_shape(tlcl_engine *e, const tlcl_tensor *t, int n, int h, int w, int c, const char *op)
{
    if (t->n != n || t->h != h || t->w != w || t->c != c)
        return ENG_FAIL(e, TLCL_ERR_ARG, "%s: tensor '%s' has shape (%d,%d,%d,%d), expected (%d,%d,%d,%d)", op,
                        t->name ? t->name : "?", t->n, t->h, t->w, t->c, n, h, w, c);
    return TLCL_OK;
}

/* Smallest free buffer that fits without wasting more than the pool's
 * reuse factor allows (tlcl_engine_set_pool_reuse). */
static int pool_find(const tlcl_engine *e, size_t bytes)
{
    int best = -1;
    for (int i = 0; i < e->npool; i++) {
        const pool_entry *p = &e->pool[i];
        if (p->in_use || p->bytes < bytes || p->bytes > (size_t)e->pool_reuse * bytes + 4096)
            continue;
        if (best < 0 || p->bytes < e->pool[best].bytes)
            best = i;
    }
    return best;
}

tlcl_status tlcl_tensor_alloc(tlcl_engine *e, tlcl_tensor *t, const char *name, int n, int h, int w, int c)
{
    return tlcl_tensor_alloc_as(e, t, name, TLCL_F32, n, h, w, c);
}

tlcl_status tlcl_tensor_alloc_as(tlcl_engine *e, tlcl_tensor *t, const char *name, tlcl_dtype dtype, int n, int h,
                                 int w, int c)
{
    memset(t, 0, sizeof *t);
    if (n < 0 || h < 0 || w < 0 || c < 0)
        return ENG_FAIL(e, TLCL_ERR_ARG, "tensor '%s': negative dimension (%d,%d,%d,%d)", name, n, h, w, c);
    t->n = n, t->h = h, t->w = w, t->c = c, t->name = name, t->dtype = dtype;
    size_t bytes = tlcl_tensor_bytes(t);
    if (bytes == 0)
        bytes = sizeof(float);
    int i = pool_find(e, bytes);
    if (i < 0) {
        if (e->npool == e->cap_pool) {
            int cap = e->cap_pool ? 2 * e->cap_pool : 64;
            pool_entry *grown = realloc(e->pool, (size_t)cap * sizeof *grown);
            if (!grown)
                return ENG_FAIL(e, TLCL_ERR_OOM, "out of host memory for tensor '%s'", name);
            e->pool = grown;
            e->cap_pool = cap;
        }
        cl_mem m;
        TLCL_TRY(tlcl_cl_buffer(e->cl, bytes, name, &m));
        i = e->npool++;
        e->pool[i] = (pool_entry){.buf = m, .bytes = bytes};
    }
    e->pool[i].in_use = 1;
    e->pool[i].name = name;
    t->buf = e->pool[i].buf;
    return TLCL_OK;
}

void tlcl_tensor_release(tlcl_engine *e, tlcl_tensor *t)
{
    if (!t || !t->buf)
        return;
    if (t->is_view) {
        clReleaseMemObject(t->buf);
    } else {
        for (int i = 0; i < e->npool; i++)
            if (e->pool[i].buf == t->buf) {
                e->pool[i].in_use = 0;
                break;
            }
    }
    t->buf = NULL;
}

/* bfloat16 tensors go through a host array of 16-bit words. */
static tlcl_status bf16_upload(tlcl_engine *e, tlcl_tensor *t, const float *host)
{
    size_t n = tlcl_tensor_count(t);
    uint16_t *h = malloc((n ? n : 1) * sizeof *h);
    if (!h)
        return ENG_FAIL(e, TLCL_ERR_OOM, "out of host memory uploading tensor '%s'", t->name ? t->name : "?");
    for (size_t i = 0; i < n; i++)
        h[i] = tlcl_bf16_from_float(host[i]);
    tlcl_status s = tlcl_cl_write(e->cl, t->buf, 0, n * sizeof *h, h, t->name);
    free(h);
    return s;
}

static tlcl_status bf16_download(tlcl_engine *e, const tlcl_tensor *t, float *host)
{
    size_t n = tlcl_tensor_count(t);
    uint16_t *h = malloc((n ? n : 1) * sizeof *h);
    if (!h)
        return ENG_FAIL(e, TLCL_ERR_OOM, "out of host memory downloading tensor '%s'", t->name ? t->name : "?");
    tlcl_status s = tlcl_cl_read(e->cl, t->buf, 0, n * sizeof *h, h, t->name);
    for (size_t i = 0; s == TLCL_OK && i < n; i++)
        host[i] = tlcl_bf16_to_float(h[i]);
    free(h);
    return s;
}

tlcl_status tlcl_tensor_upload(tlcl_engine *e, tlcl_tensor *t, const float *host)
{
    if (t->dtype == TLCL_BF16)
        return bf16_upload(e, t, host);
    return tlcl_cl_write(e->cl, t->buf, 0, tlcl_tensor_count(t) * sizeof(float), host, t->name);
}

tlcl_status tlcl_tensor_download(tlcl_engine *e, const tlcl_tensor *t, float *host)
{
    if (t->dtype == TLCL_BF16)
        return bf16_download(e, t, host);
    return tlcl_cl_read(e->cl, t->buf, 0, tlcl_tensor_count(t) * sizeof(float), host, t->name);
}

tlcl_status tlcl_tensor_to_float(tlcl_engine *e, tlcl_tensor *t)
{
    if (t->dtype == TLCL_F32)
        return TLCL_OK;
    tlcl_tensor wide;
    TLCL_TRY(tlcl_tensor_alloc(e, &wide, t->name, t->n, t->h, t->w, t->c));
    size_t n = tlcl_tensor_count(t), g = eng_global1(n);
    tlcl_status s = n == 0 ? TLCL_OK
                           : TLCL_RUN(e->cl, TLCL_PROG(elementwise), "", "bf16_widen", 1, &g, NULL,
                                      TLCL_MEM(wide.buf), TLCL_MEM(t->buf), TLCL_INT(n));
    if (s != TLCL_OK) {
        tlcl_tensor_release(e, &wide);
        return s;
    }
    tlcl_tensor_release(e, t);
    *t = wide;
    return TLCL_OK;
}

tlcl_status tlcl_tensor_fill(tlcl_engine *e, tlcl_tensor *t, float value)
{
    size_t n = tlcl_tensor_count(t);
    int V = tlcl_cl_vector_width(e->cl) >= 4 ? tlcl_cl_vector_width(e->cl) : 1; /* FOR_EACH_WIDTH's */
    size_t g = eng_global1((n + (size_t)V - 1) / (size_t)V);
    char kernel[16];
    snprintf(kernel, sizeof kernel, "fill_%d", V);
    return TLCL_RUN(e->cl, TLCL_PROG(elementwise), eng_dtype_opts(t), kernel, 1, &g, NULL, TLCL_MEM(t->buf),
                    TLCL_INT(n), TLCL_FLOAT(value));
}

/* The element count and the storage of b and c (either may be NULL) are
 * a's: the elementwise kernels take one storage for all their tensors. */
static tlcl_status check_like(tlcl_engine *e, const tlcl_tensor *a, const tlcl_tensor *b, const tlcl_tensor *c,
                              const char *op)
{
    const tlcl_tensor *others[2] = {b, c};
    for (int i = 0; i < 2; i++)
        if (others[i]) {
            TLCL_TRY(eng_check_count(e, others[i], tlcl_tensor_count(a), op));
            TLCL_TRY(eng_check_dtype(e, others[i], a->dtype, op));
        }
    return TLCL_OK;
}

tlcl_status tlcl_tensor_axpy(tlcl_engine *e, tlcl_tensor *dst, float alpha, const tlcl_tensor *src)
{
    size_t n = tlcl_tensor_count(dst);
    TLCL_TRY(check_like(e, dst, src, NULL, "axpy"));
    size_t g = eng_global1(n);
    return TLCL_RUN(e->cl, TLCL_PROG(elementwise), eng_dtype_opts(dst), "axpy", 1, &g, NULL, TLCL_MEM(dst->buf),
                    TLCL_MEM(src->buf), TLCL_INT(n), TLCL_FLOAT(alpha));
}

tlcl_status tlcl_tensor_copy(tlcl_engine *e, tlcl_tensor *dst, const tlcl_tensor *src)
{
    TLCL_TRY(check_like(e, dst, src, NULL, "copy"));
    size_t bytes = tlcl_tensor_bytes(dst);
    if (bytes == 0)
        return TLCL_OK;
    return tlcl_cl_copy(e->cl, dst->buf, 0, src->buf, 0, bytes, dst->name ? dst->name : "?");
}

tlcl_status tlcl_add_forward(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *a, const tlcl_tensor *b)
{
    size_t n = tlcl_tensor_count(out);
    TLCL_TRY(check_like(e, out, a, b, "add"));
    size_t g = eng_global1(n);
    return TLCL_RUN(e->cl, TLCL_PROG(elementwise), eng_dtype_opts(out), "add", 1, &g, NULL, TLCL_MEM(out->buf),
                    TLCL_MEM(a->buf), TLCL_MEM(b->buf), TLCL_INT(n));
}

tlcl_status tlcl_activation_forward(tlcl_engine *e, tlcl_act act, tlcl_tensor *out, const tlcl_tensor *in)
{
    size_t n = tlcl_tensor_count(out);
    TLCL_TRY(check_like(e, out, in, NULL, "activation"));
    size_t g = eng_global1(n);
    return TLCL_RUN(e->cl, TLCL_PROG(elementwise), eng_dtype_opts(out), "activation_forward", 1, &g, NULL,
                    TLCL_MEM(out->buf), TLCL_MEM(in->buf), TLCL_INT(n), TLCL_INT(act));
}

tlcl_status tlcl_activation_backward(tlcl_engine *e, tlcl_act act, tlcl_tensor *din, const tlcl_tensor *dout,
                                     const tlcl_tensor *in)
{
    size_t n = tlcl_tensor_count(din);
    TLCL_TRY(check_like(e, din, dout, in, "activation backward"));
    size_t g = eng_global1(n);
    return TLCL_RUN(e->cl, TLCL_PROG(elementwise), eng_dtype_opts(din), "activation_backward", 1, &g, NULL,
                    TLCL_MEM(din->buf), TLCL_MEM(dout->buf), TLCL_MEM(in->buf), TLCL_INT(n), TLCL_INT(act));
}

#define AFFINE_GROUPS 8 /* 16-pixel groups per work-item, as in elementwise.cl */

tlcl_status tlcl_affine_channels(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *in, const float *scale,
                                 const float *shift)
{
    size_t n = tlcl_tensor_count(out);
    TLCL_TRY(eng_check_count(e, in, n, "affine_channels"));
    TLCL_TRY(eng_check_dtype(e, in, TLCL_F32, "affine_channels")); /* images come as float32 */
    if (in->c < 1 || in->c > 4)
        return ENG_FAIL(e, TLCL_ERR_ARG, "affine_channels: tensor '%s' has %d channels, at most 4 are supported",
                        in->name ? in->name : "?", in->c);
    cl_float4 a = {{1, 1, 1, 1}}, b = {{0, 0, 0, 0}};
    for (int c = 0; c < in->c; c++) {
        a.s[c] = scale[c];
        b.s[c] = shift ? shift[c] : 0.0f;
    }
    /* vector devices: whole groups of 16 pixels as float16s, then the rest */
    size_t groups = tlcl_cl_vector_width(e->cl) > 1 ? n / (16 * (size_t)in->c) : 0, i0 = groups * 16 * in->c;
    if (groups > 0) {
        size_t g = eng_global1((groups + AFFINE_GROUPS - 1) / AFFINE_GROUPS);
        TLCL_TRY(TLCL_RUN(e->cl, TLCL_PROG(elementwise), eng_dtype_opts(out), "affine_channels_16", 1, &g, NULL, TLCL_MEM(out->buf),
                         TLCL_MEM(in->buf), TLCL_INT(groups), TLCL_INT(in->c), ((tlcl_arg){sizeof a, &a}),
                         ((tlcl_arg){sizeof b, &b})));
    }
    if (i0 == n)
        return TLCL_OK;
    size_t g = eng_global1(n - i0);
    return TLCL_RUN(e->cl, TLCL_PROG(elementwise), eng_dtype_opts(out), "affine_channels", 1, &g, NULL, TLCL_MEM(out->buf),
                    TLCL_MEM(in->buf), TLCL_INT(i0), TLCL_INT(n), TLCL_INT(in->c), ((tlcl_arg){sizeof a, &a}),
                    ((tlcl_arg){sizeof b, &b}));
}

int eng_on_cpu(tlcl_engine *e) { return strcmp(tlcl_cl_device(e->cl)->type, "cpu") == 0; }

int eng_channel_vector(tlcl_engine *e, int C)
{
    int w = tlcl_cl_vector_width(e->cl);
    if (C % w == 0)
        return w;
    return w >= 4 && C % 4 == 0 ? 4 : 1;
}

static tlcl_status rows_launch(tlcl_engine *e, const char *kernel, tlcl_tensor *dst, const tlcl_tensor *src,
                               cl_mem idx, int N, int C)
{
    if (N <= 0 || C <= 0)
        return TLCL_OK;
    size_t g[2] = {(size_t)C, (size_t)N};
    return TLCL_RUN(e->cl, TLCL_PROG(elementwise), "", kernel, 2, g, NULL, TLCL_MEM(dst->buf), TLCL_MEM(src->buf),
                    TLCL_MEM(idx), TLCL_INT(C), TLCL_INT(N));
}

tlcl_status tlcl_rows_gather(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *table, cl_mem idx)
{
    int N = out->n, C = N > 0 ? (int)(tlcl_tensor_count(out) / (size_t)N) : 0;
    if (table->n > 0 && tlcl_tensor_count(table) != (size_t)table->n * C)
        return ENG_FAIL(e, TLCL_ERR_ARG, "gather: table '%s' rows are not %d wide", table->name ? table->name : "?", C);
    return rows_launch(e, "gather_rows", out, table, idx, N, C);
}

tlcl_status tlcl_rows_scatter(tlcl_engine *e, tlcl_tensor *table, const tlcl_tensor *in, cl_mem idx)
{
    int N = in->n, C = N > 0 ? (int)(tlcl_tensor_count(in) / (size_t)N) : 0;
    if (table->n > 0 && tlcl_tensor_count(table) != (size_t)table->n * C)
        return ENG_FAIL(e, TLCL_ERR_ARG, "scatter: table '%s' rows are not %d wide", table->name ? table->name : "?", C);
    return rows_launch(e, "scatter_rows", table, in, idx, N, C);
}
