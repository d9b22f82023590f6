/* reduce.c — column sums over rows (see reduce.cl for the kernel design):
 * the public tlcl_reduce_rows and eng_reduce_rows, which lets batch norm,
 * dense and channel scale sum a transform of their inputs in the same pass. */
#include "norm_internal.h"
#include "tlcl_programs.h"

#include <stdio.h>
#include <string.h>

/* Aim for about this many stage-1 lanes (work-items times their channel
 * vector width, not counting a CPU work-item's block of vectors) per
 * compute unit: a GPU's compute unit needs thousands in flight when
 * groups * C is small; a CPU core a few work-items of its own to balance
 * the load (16 at V = 16), and more chunks there only add partial sums to
 * fold. */
#define REDUCE_LANES_PER_CU_GPU 2048
#define REDUCE_LANES_PER_CU_CPU 256
#define REDUCE_MIN_ROWS_PER_CHUNK 16
#define REDUCE_MAX_CHUNKS 4096
#define REDUCE_CB_CPU 8

/* Channel vectors a stage-1 work-item sums side by side (reduce.cl's
 * REDUCE_CB): a CPU reads a row's run of them contiguously, a GPU's
 * neighbouring work-items read neighbouring vectors. */
static int reduce_block(tlcl_engine *e) { return eng_on_cpu(e) ? REDUCE_CB_CPU : 1; }

/* items counts the work-items of one chunk (groups * Cv / block, rounded
 * up): each sums a block of vectors of V channels. */
static int reduce_chunks(tlcl_engine *e, int groups, int rows, int Cv, int V)
{
    long lanes = (long)tlcl_cl_device(e->cl)->compute_units *
                 (eng_on_cpu(e) ? REDUCE_LANES_PER_CU_CPU : REDUCE_LANES_PER_CU_GPU);
    int cb = reduce_block(e);
    long items = (long)groups * ((Cv + cb - 1) / cb);
    long chunks = lanes / V / (items > 0 ? items : 1);
    if (chunks > rows / REDUCE_MIN_ROWS_PER_CHUNK)
        chunks = rows / REDUCE_MIN_ROWS_PER_CHUNK;
    if (chunks > REDUCE_MAX_CHUNKS)
        chunks = REDUCE_MAX_CHUNKS;
    return chunks < 1 ? 1 : (int)chunks;
}

static tlcl_status reduce_partial(tlcl_engine *e, cl_mem dst, cl_mem dst2, cl_mem in, int groups, int rows, int C,
                                  int chunks, float scale, int accumulate, const eng_row_map *m)
{
    int V = eng_channel_vector(e, C);
    /* buffers a mode does not read are bound to `in` so every argument is valid */
    cl_mem y = m->y ? m->y : in, mean = m->mean ? m->mean : in, istd = m->istd ? m->istd : in;
    cl_mem gamma = m->gamma ? m->gamma : in, beta = m->beta ? m->beta : in;
    int cb = reduce_block(e);
    size_t g[2] = {(size_t)chunks * (size_t)((C / V + cb - 1) / cb), (size_t)groups};
    /* batch norm's modes recompute an activation's derivative per element:
     * a program specialised for the activation lets the loop vectorise */
    char opts[64] = "";
    if (m->mode == ENG_ROW_BN_DZ || m->mode == ENG_ROW_BN_DZ_XHAT)
        snprintf(opts, sizeof opts, "-DBN_ROWS -DACT=%d ", (int)m->act);
    snprintf(opts + strlen(opts), sizeof opts - strlen(opts), "-DREDUCE_CB=%d %s", cb, eng_dtype_option(m->dtype));
    int pair = dst2 != NULL;
    cl_mem d2 = pair ? dst2 : dst;
    char kernel[32];
    snprintf(kernel, sizeof kernel, "reduce_rows_partial_%d", V);
    return TLCL_RUN(e->cl, TLCL_PROG(reduce), opts, kernel, 2, g, NULL, TLCL_MEM(dst), TLCL_MEM(d2), TLCL_INT(pair),
                    TLCL_MEM(in), TLCL_MEM(y), TLCL_MEM(mean), TLCL_MEM(istd), TLCL_MEM(gamma), TLCL_MEM(beta),
                    TLCL_INT(rows), TLCL_INT(C / V), TLCL_INT(chunks), TLCL_INT(m->mode), TLCL_INT(m->act),
                    TLCL_FLOAT(scale), TLCL_INT(accumulate));
}

static tlcl_status reduce_final(tlcl_engine *e, cl_mem out, cl_mem part, int groups, int C, int chunks, float scale,
                                int accumulate)
{
    /* On a CPU one work-item sums a channel's chunks: a tree over a group
     * only adds barriers there, and PoCL compiles a work-group function per
     * local size (5 of them, 2 to 32, at B0's cold start before) */
    size_t wg = eng_on_cpu(e) ? 1 : tlcl_cl_reduce_wg(e->cl), lsize = 1;
    while (lsize < (size_t)chunks && lsize < wg)
        lsize *= 2;
    size_t g[2] = {(size_t)C * lsize, (size_t)groups}, l[2] = {lsize, 1};
    return TLCL_RUN(e->cl, TLCL_PROG(reduce), "", "reduce_rows_final", 2, g, l, TLCL_MEM(out), TLCL_MEM(part),
                    TLCL_INT(C), TLCL_INT(chunks), TLCL_FLOAT(scale), TLCL_INT(accumulate), TLCL_INT(lsize));
}

/* One pass; with out2 (the shifted and batch-norm modes) a second sum from
 * the same pass (see reduce.cl). */
static tlcl_status reduce_rows(tlcl_engine *e, cl_mem out, cl_mem out2, cl_mem in, int groups, int rows, int C,
                               float scale, int accumulate, const eng_row_map *m)
{
    if (groups <= 0 || C <= 0)
        return TLCL_OK;
    if (rows <= 0) /* an empty sum: zero (or leave out unchanged) */
        return reduce_partial(e, out, out2, in, groups, 0, C, 1, scale, accumulate, m);
    int V = eng_channel_vector(e, C);
    int chunks = reduce_chunks(e, groups, rows, C / V, V);
    if (chunks == 1)
        return reduce_partial(e, out, out2, in, groups, rows, C, 1, scale, accumulate, m);
    tlcl_tensor part, part2 = {0};
    TLCL_TRY(tlcl_tensor_alloc(e, &part, "reduce partial sums", groups, chunks, 1, C));
    tlcl_status s = out2 ? tlcl_tensor_alloc(e, &part2, "reduce partial sums", groups, chunks, 1, C) : TLCL_OK;
    if (s == TLCL_OK)
        s = reduce_partial(e, part.buf, out2 ? part2.buf : NULL, in, groups, rows, C, chunks, 1.0f, 0, m);
    if (s == TLCL_OK)
        s = reduce_final(e, out, part.buf, groups, C, chunks, scale, accumulate);
    if (s == TLCL_OK && out2)
        s = reduce_final(e, out2, part2.buf, groups, C, chunks, scale, accumulate);
    /* the in-order queue runs the launches above before any later user of the buffers */
    if (part2.buf)
        tlcl_tensor_release(e, &part2);
    tlcl_tensor_release(e, &part);
    return s;
}

tlcl_status eng_reduce_rows(tlcl_engine *e, cl_mem out, cl_mem in, int groups, int rows, int C, float scale,
                            int accumulate, const eng_row_map *map)
{
    static const eng_row_map plain = {.mode = ENG_ROW_PLAIN};
    return reduce_rows(e, out, NULL, in, groups, rows, C, scale, accumulate, map ? map : &plain);
}

tlcl_status eng_reduce_pair(tlcl_engine *e, cl_mem out, cl_mem out2, cl_mem in, int rows, int C, float scale,
                            int accumulate, const eng_row_map *map)
{
    return reduce_rows(e, out, out2, in, 1, rows, C, scale, accumulate, map);
}

tlcl_status tlcl_reduce_rows(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *in, int groups, int rows,
                             int channels, float scale, int accumulate)
{
    TLCL_TRY(eng_check_count(e, out, (size_t)groups * (size_t)channels, "reduce_rows"));
    TLCL_TRY(eng_check_count(e, in, (size_t)groups * (size_t)rows * (size_t)channels, "reduce_rows"));
    TLCL_TRY(eng_check_dtype(e, out, TLCL_F32, "reduce_rows"));
    eng_row_map plain = {.mode = ENG_ROW_PLAIN, .dtype = in->dtype};
    return eng_reduce_rows(e, out->buf, in->buf, groups, rows, channels, scale, accumulate, &plain);
}
