/* tune_search.c — `tlcl tune`: the distinct GEMM, implicit convolution and
 * depthwise calls of a model's passes are recorded (eng_tune_note), then
 * each kernel group's candidates (the default first, then a dozen or so
 * variations of it that pass the tuning checks) are timed on every one of
 * those calls, best of several runs, and a candidate replaces the default
 * only under tlcl_tune_pick's rule, confirmed by three more rounds of
 * timings that alternate the two (also for the candidate fastest in total
 * when only the scatter of the timings on a few calls kept it out). The
 * groups: the GEMM's three shape classes (NN, TN, NT: tlcl_gemm_class),
 * the implicit convolutions, depthwise; one setting each. A class whose
 * tiles differ from the others' in more than the local size costs a
 * program (two for NN: the batch-norm epilogue's) at the cold start. */
#include "engine_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { REC_MAX = 1024, CAND_MAX = 14, REPS = 3, CONFIRM_ROUNDS = 3, SLOTS = 5 };
#define TUNE_MARGIN 0.03
#define TUNE_SHORT_MS 5.0 /* calls this short get three times the runs: their timings scatter more */

typedef struct tune_call {
    eng_tune_kind kind;
    int v[ENG_TUNE_INTS];
} tune_call;

struct eng_tune_rec {
    int on, n;
    tune_call calls[REC_MAX];
};

/* The GEMM classes first, in tlcl_gemm_class's order. */
typedef enum tune_group { G_GEMM_NN, G_GEMM_TN, G_GEMM_NT, G_CONV, G_DW, G_COUNT } tune_group;
static const char *const group_names[G_COUNT] = {"gemm_nn", "gemm_tn", "gemm_nt", "conv", "depthwise"};
/* The budget's shares: most calls and most time are GEMMs; an EfficientNet
 * has one k x k convolution (the stem) and a depthwise one per block. What
 * a group leaves unused goes to the next. */
static const double budget_share[G_COUNT] = {0.2, 0.2, 0.2, 0.1, 0.3};

const char *tlcl_tune_group_name(int group)
{
    return group >= 0 && group < G_COUNT ? group_names[group] : "?";
}

void eng_tune_note(tlcl_engine *e, eng_tune_kind kind, const int *v, int n)
{
    struct eng_tune_rec *r = e->rec;
    if (!r || !r->on)
        return;
    tune_call c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    memcpy(c.v, v, (size_t)n * sizeof *v);
    for (int i = 0; i < r->n; i++)
        if (memcmp(&r->calls[i], &c, sizeof c) == 0)
            return;
    if (r->n < REC_MAX)
        r->calls[r->n++] = c;
}

tlcl_status tlcl_tune_record(tlcl_engine *e, int on)
{
    if (!e->rec && !(e->rec = calloc(1, sizeof *e->rec)))
        return ENG_FAIL(e, TLCL_ERR_OOM, "out of host memory for tlcl tune's recorder");
    e->rec->on = on;
    return TLCL_OK;
}

void eng_tune_rec_free(tlcl_engine *e)
{
    free(e->rec);
    e->rec = NULL;
}

int tlcl_tune_pick(const double *ms, int ncand, int nshape, double margin)
{
    double total0 = 0.0, best_total = 0.0;
    for (int s = 0; s < nshape; s++) {
        if (!(ms[s] > 0.0))
            return 0;
        total0 += ms[s];
    }
    int best = 0;
    for (int c = 1; c < ncand && nshape > 0; c++) {
        double total = 0.0;
        int ok = 1;
        for (int s = 0; s < nshape && ok; s++) {
            double t = ms[(size_t)c * nshape + s];
            ok = t > 0.0 && t <= ms[s];
            total += t;
        }
        if (ok && total <= total0 * (1.0 - margin) && (best == 0 || total < best_total))
            best = c, best_total = total;
    }
    return best;
}

/* ---- the candidates ----------------------------------------------------------- */

static tune_group group_of(const tune_call *c)
{
    if (c->kind == ENG_TUNE_GEMM)
        return (tune_group)eng_gemm_class(c->v[0], c->v[1]);
    return c->kind == ENG_TUNE_CONV || c->kind == ENG_TUNE_CONV_WGRAD ? G_CONV : G_DW;
}

/* Group g's tiles in t (NULL for depthwise). */
static tlcl_gemm_tiles *group_tiles(tlcl_tuning *t, tune_group g)
{
    return g < G_CONV ? &t->gemm[g] : g == G_CONV ? &t->conv : NULL;
}

/* dst with group g's values from src. */
static void take_group(tlcl_tuning *dst, const tlcl_tuning *src, tune_group g)
{
    tlcl_tuning copy = *src;
    if (g == G_DW)
        dst->dw_strip = src->dw_strip, dst->dw_wgrad_items = src->dw_wgrad_items;
    else
        *group_tiles(dst, g) = *group_tiles(&copy, g);
}

static int add_candidate(tlcl_tuning *list, int n, const tlcl_tuning *t, const tlcl_device_info *d)
{
    char why[200];
    if (n >= CAND_MAX || tlcl_tuning_invalid(t, d, why, sizeof why))
        return n;
    for (int i = 0; i < n; i++)
        if (memcmp(&list[i], t, sizeof *t) == 0)
            return n;
    list[n] = *t;
    return n + 1;
}

/* Around the default's tiles: the block's rows, vectors, vector width
 * (the same columns) and narrow width, then the local size. */
static int tile_candidates(const tlcl_tuning *def, tune_group g, const tlcl_device_info *d, tlcl_tuning *list)
{
    tlcl_tuning d0 = *def;
    tlcl_gemm_tiles b = *group_tiles(&d0, g);
    int narrow = g != G_CONV; /* conv has no narrow kernel */
    tlcl_gemm_tiles v[] = {
        b,
        {b.tm / 2, b.vw, b.nv, b.vwn, b.lx, b.ly},
        {b.tm * 2, b.vw, b.nv, b.vwn, b.lx, b.ly},
        {b.tm, b.vw, b.nv / 2, b.vwn, b.lx, b.ly},
        {b.tm, b.vw, b.nv * 2, b.vwn, b.lx, b.ly},
        {b.tm, b.vw / 2, b.nv * 2, b.vwn, b.lx, b.ly},
        {b.tm, b.vw * 2, b.nv / 2, b.vwn, b.lx, b.ly},
        {b.tm, b.vw, b.nv, narrow ? b.vwn / 2 : b.vwn, b.lx, b.ly},
        {b.tm, b.vw, b.nv, narrow ? b.vwn * 2 : b.vwn, b.lx, b.ly},
        {b.tm, b.vw, b.nv, b.vwn, 1, 1},
        {b.tm, b.vw, b.nv, b.vwn, b.lx * 2, b.ly},
        {b.tm, b.vw, b.nv, b.vwn, b.lx, b.ly * 2},
        {b.tm, b.vw, b.nv, b.vwn, b.lx / 2, b.ly},
        {b.tm, b.vw, b.nv, b.vwn, b.lx, b.ly / 2},
    };
    int n = 0;
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        tlcl_tuning t = *def;
        *group_tiles(&t, g) = v[i];
        n = add_candidate(list, n, &t, d);
    }
    return n;
}

/* Around the default's strip and stage-1 work-items. */
static int dw_candidates(const tlcl_tuning *def, const tlcl_device_info *d, tlcl_tuning *list)
{
    int strips[] = {def->dw_strip, 4, 16, 2, 12}, items[] = {def->dw_wgrad_items / 2, def->dw_wgrad_items * 2,
                                                             def->dw_wgrad_items * 4};
    int n = 0;
    for (size_t i = 0; i < sizeof strips / sizeof *strips; i++) {
        tlcl_tuning t = *def;
        t.dw_strip = strips[i];
        n = add_candidate(list, n, &t, d);
    }
    for (size_t i = 0; i < sizeof items / sizeof *items; i++) {
        tlcl_tuning t = *def;
        t.dw_wgrad_items = items[i];
        n = add_candidate(list, n, &t, d);
    }
    return n;
}

/* ---- replaying a call ------------------------------------------------------------ */

/* Operand buffers shared by a group's calls, each as large as the largest
 * call needs; zero-filled (the timing does not depend on the values). */
typedef struct tune_bufs {
    tlcl_tensor t[SLOTS];
} tune_bufs;

/* Floats each slot needs for call c. */
static void call_sizes(const tune_call *c, size_t *n)
{
    const int *v = c->v;
    memset(n, 0, SLOTS * sizeof *n);
    if (c->kind == ENG_TUNE_GEMM) { /* A, B, C, the epilogue's statistics */
        n[0] = (size_t)(v[0] ? v[4] : v[2]) * (size_t)v[5];
        n[1] = (size_t)(v[1] ? v[3] : v[4]) * (size_t)v[6];
        n[2] = (size_t)v[2] * (size_t)v[7];
        n[3] = (size_t)v[3];
    } else if (c->kind == ENG_TUNE_CONV || c->kind == ENG_TUNE_CONV_WGRAD) { /* X, W, out or dY, statistics */
        n[0] = (size_t)v[0] * v[1] * v[2] * v[3];
        n[1] = (size_t)v[7] * v[8] * v[3] * v[6];
        n[2] = (size_t)v[0] * v[4] * v[5] * v[6];
        n[3] = (size_t)v[6];
    } else { /* in, out, weight, din, dweight */
        n[0] = n[3] = (size_t)v[0] * v[1] * v[2] * v[3];
        n[1] = (size_t)v[0] * v[4] * v[5] * v[3];
        n[2] = n[4] = (size_t)v[6] * v[7] * v[3];
    }
}

static tlcl_status bufs_alloc(tlcl_engine *e, tune_call *const *calls, int n, tune_bufs *b)
{
    size_t need[SLOTS] = {0}, one[SLOTS];
    for (int i = 0; i < n; i++) {
        call_sizes(calls[i], one);
        for (int k = 0; k < SLOTS; k++)
            need[k] = one[k] > need[k] ? one[k] : need[k];
    }
    memset(b, 0, sizeof *b);
    for (int k = 0; k < SLOTS; k++) {
        if (need[k] > (size_t)0x7fffffff)
            return ENG_FAIL(e, TLCL_ERR_ARG, "tlcl tune: a recorded call needs %zu floats in one operand", need[k]);
        TLCL_TRY(tlcl_tensor_alloc(e, &b->t[k], "tune operand", 1, 1, 1, need[k] ? (int)need[k] : 1));
        TLCL_TRY(tlcl_tensor_fill(e, &b->t[k], 0.0f));
    }
    return TLCL_OK;
}

static void bufs_free(tlcl_engine *e, tune_bufs *b)
{
    for (int k = 0; k < SLOTS; k++)
        if (b->t[k].buf)
            tlcl_tensor_release(e, &b->t[k]);
}

static tlcl_status replay_gemm(tlcl_engine *e, const int *v, cl_mem *m)
{
    eng_gemm_bn bn = {m[3], m[3], m[3], m[3], TLCL_ACT_NONE, NULL};
    if (v[8]) /* the epilogue's calls are untransposed */
        return eng_gemm_bn_own(e, v[2], v[3], v[4], m[0], v[5], m[1], v[6], m[2], 0, v[7], &bn, NULL);
    return tlcl_gemm_own(e, v[0], v[1], v[2], v[3], v[4], 1.0f, m[0], 0, v[5], m[1], 0, v[6], 0.0f, m[2], 0, v[7]);
}

/* A candidate whose vector width does not divide the channels would send
 * the call to im2col: refused, so that a candidate is timed on the path
 * it would take. */
static tlcl_status replay_conv(tlcl_engine *e, eng_tune_kind kind, const int *v, cl_mem *m)
{
    eng_conv_shape s = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], TLCL_F32};
    if (!eng_conv_implicit_ok(e, &s))
        return ENG_FAIL(e, TLCL_ERR_ARG, "tlcl tune: the candidate does not take this convolution implicitly");
    eng_gemm_bn bn = {m[3], m[3], m[3], m[3], TLCL_ACT_NONE, NULL};
    if (kind == ENG_TUNE_CONV_WGRAD)
        return eng_conv_wgrad_implicit(e, &s, m[0], m[2], m[1]);
    return eng_conv_implicit(e, &s, m[0], m[1], m[2], v[12] ? &bn : NULL, NULL);
}

static tlcl_status replay_dw(tlcl_engine *e, eng_tune_kind kind, const int *v, cl_mem *m)
{
#define TUNE_TENSOR(i, n, h, w, c, name) {m[i], n, h, w, c, name, 0, TLCL_F32}
    tlcl_tensor in = TUNE_TENSOR(0, v[0], v[1], v[2], v[3], "tune in");
    tlcl_tensor out = TUNE_TENSOR(1, v[0], v[4], v[5], v[3], "tune out");
    tlcl_tensor w = TUNE_TENSOR(2, v[6], v[7], 1, v[3], "tune weight");
    tlcl_tensor din = TUNE_TENSOR(3, v[0], v[1], v[2], v[3], "tune din");
    tlcl_tensor dw = TUNE_TENSOR(4, v[6], v[7], 1, v[3], "tune dweight");
#undef TUNE_TENSOR
    tlcl_conv_geom g = {v[6], v[7], v[8], v[9], v[10]};
    if (kind == ENG_TUNE_DW_FWD)
        return tlcl_depthwise_forward(e, &out, &in, &w, &g);
    return tlcl_depthwise_backward(e, v[11] ? &din : NULL, v[12] ? &dw : NULL, &out, &in, &w, &g);
}

static tlcl_status replay(tlcl_engine *e, const tune_call *c, tune_bufs *b)
{
    cl_mem m[SLOTS];
    for (int k = 0; k < SLOTS; k++)
        m[k] = b->t[k].buf;
    switch (group_of(c)) {
    case G_CONV: return replay_conv(e, c->kind, c->v, m);
    case G_DW: return replay_dw(e, c->kind, c->v, m);
    default: return replay_gemm(e, c->v, m);
    }
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Best of the runs after a warm-up (which compiles), in ms; 0 when the
 * call fails with this candidate. */
static double time_call(tlcl_engine *e, const tune_call *c, tune_bufs *b)
{
    double t0 = now_s();
    if (replay(e, c, b) != TLCL_OK || tlcl_cl_finish(e->cl) != TLCL_OK)
        return 0.0;
    double best = 1e30, warm = (now_s() - t0) * 1e3;
    int reps = warm < TUNE_SHORT_MS ? 3 * REPS : REPS;
    for (int r = 0; r < reps; r++) {
        t0 = now_s();
        if (replay(e, c, b) != TLCL_OK || tlcl_cl_finish(e->cl) != TLCL_OK)
            return 0.0;
        double t = (now_s() - t0) * 1e3;
        best = t < best ? t : best;
    }
    return best;
}

/* Candidate t on every call, into ms (keeping the lower of an earlier
 * timing); 0 when the deadline passed before it was through. */
static int time_candidate(tlcl_engine *e, const tlcl_tuning *t, tune_call *const *calls, int n, tune_bufs *b,
                          double deadline, double *ms)
{
    e->tuning = *t;
    for (int s = 0; s < n; s++) {
        if (now_s() > deadline)
            return 0;
        double x = time_call(e, calls[s], b);
        ms[s] = ms[s] > 0.0 && (x <= 0.0 || ms[s] < x) ? ms[s] : x;
    }
    return 1;
}

/* ---- the search ------------------------------------------------------------------ */

static void call_label(const tune_call *c, char *dst, size_t len)
{
    const int *v = c->v;
    if (c->kind == ENG_TUNE_GEMM)
        snprintf(dst, len, "%c%c %dx%dx%d%s", v[0] ? 'T' : 'N', v[1] ? 'T' : 'N', v[2], v[3], v[4],
                 v[8] ? " +bn" : "");
    else if (c->kind == ENG_TUNE_DW_FWD || c->kind == ENG_TUNE_DW_BWD)
        snprintf(dst, len, "%s %dx%dx%dx%d k%dx%d s%d", c->kind == ENG_TUNE_DW_FWD ? "fwd" : "bwd", v[0], v[1],
                 v[2], v[3], v[6], v[7], v[8]);
    else
        snprintf(dst, len, "%s %dx%dx%dx%d k%dx%d s%d ->%d%s", c->kind == ENG_TUNE_CONV ? "fwd" : "wgrad", v[0],
                 v[1], v[2], v[3], v[7], v[8], v[9], v[6], c->kind == ENG_TUNE_CONV && v[12] ? " +bn" : "");
}

typedef struct group_search {
    tune_group g;
    tune_call *calls[REC_MAX];
    int n, ncand, tried;
    tlcl_tuning cand[CAND_MAX];
    double *ms; /* [ncand][n] */
} group_search;

/* Times the default and the winner again, alternately, and keeps the
 * winner only if the rule still picks it on the lower of all timings. */
static int confirm(tlcl_engine *e, group_search *s, tune_bufs *b, int w)
{
    double *two = malloc(2 * (size_t)s->n * sizeof *two);
    if (!two)
        return 0;
    memcpy(two, s->ms, (size_t)s->n * sizeof *two);
    memcpy(two + s->n, s->ms + (size_t)w * s->n, (size_t)s->n * sizeof *two);
    for (int r = 0; r < CONFIRM_ROUNDS; r++)
        for (int k = 0; k < 2; k++)
            time_candidate(e, &s->cand[k ? w : 0], s->calls, s->n, b, 1e300, two + (size_t)k * s->n);
    int keep = tlcl_tune_pick(two, 2, s->n, TUNE_MARGIN) == 1;
    memcpy(s->ms, two, (size_t)s->n * sizeof *two);
    memcpy(s->ms + (size_t)w * s->n, two + s->n, (size_t)s->n * sizeof *two);
    free(two);
    return keep;
}

/* Of the candidates besides the default timed on every call, the one
 * fastest in total (-1: none), its total and on how many calls it is
 * slower than the default. */
static int fastest_candidate(const group_search *s, double *best_total, int *best_slower)
{
    int best = -1;
    for (int c = 1; c < s->tried; c++) {
        double total = 0.0;
        int slower = 0, ok = 1;
        for (int i = 0; i < s->n && ok; i++) {
            double t = s->ms[(size_t)c * s->n + i];
            ok = t > 0.0;
            total += t;
            slower += t > s->ms[i];
        }
        if (ok && (best < 0 || total < *best_total))
            best = c, *best_total = total, *best_slower = slower;
    }
    return best;
}

/* What came closest besides the default: why a default stays. */
static void fastest_other(const group_search *s, tlcl_tune_group_report *gr)
{
    gr->fastest = fastest_candidate(s, &gr->fastest_ms, &gr->fastest_slower);
    if (gr->fastest > 0)
        gr->fastest_tuning = s->cand[gr->fastest];
}

/* The candidate worth confirming: the rule's pick, else the fastest in
 * total when it is the margin faster than the default in total (a call
 * its parameters do not touch can look slower by the timing's scatter
 * alone; the confirmation's further runs tell). 0: none. */
static int worth_confirming(const group_search *s)
{
    int w = tlcl_tune_pick(s->ms, s->tried, s->n, TUNE_MARGIN), slower;
    double total0 = 0.0, total;
    for (int i = 0; i < s->n; i++)
        total0 += s->ms[i];
    int f = fastest_candidate(s, &total, &slower);
    return w ? w : f > 0 && total <= total0 * (1.0 - TUNE_MARGIN) ? f : 0;
}

static void group_report(const group_search *s, int w, double seconds, tlcl_tune_report *r)
{
    tlcl_tune_group_report *gr = &r->group[s->g];
    *gr = (tlcl_tune_group_report){.shapes = s->n, .tried = s->tried, .space = s->ncand, .chosen = w,
                                   .seconds = seconds};
    fastest_other(s, gr);
    for (int i = 0; i < s->n; i++) {
        tlcl_tune_result *x = &r->results[r->nresults++];
        snprintf(x->kernel, sizeof x->kernel, "%s", group_names[s->g]);
        call_label(s->calls[i], x->shape, sizeof x->shape);
        x->default_ms = s->ms[i];
        x->tuned_ms = s->ms[(size_t)w * s->n + i];
        gr->default_ms += x->default_ms;
        gr->tuned_ms += x->tuned_ms;
    }
}

/* Group g's search from *chosen (the groups searched so far) until the
 * deadline; its winner goes into *chosen. */
static tlcl_status search_group(tlcl_engine *e, group_search *s, tlcl_tuning *chosen, double deadline,
                                tlcl_tune_report *r)
{
    double t0 = now_s();
    const tlcl_device_info *d = tlcl_cl_device(e->cl);
    tlcl_tuning base = *chosen;
    s->ncand = s->g == G_DW ? dw_candidates(&base, d, s->cand) : tile_candidates(&base, s->g, d, s->cand);
    if (!(s->ms = calloc((size_t)s->ncand * (size_t)(s->n ? s->n : 1), sizeof *s->ms)))
        return ENG_FAIL(e, TLCL_ERR_OOM, "out of host memory for tlcl tune's timings");
    tune_bufs b;
    tlcl_status st = s->n ? bufs_alloc(e, s->calls, s->n, &b) : TLCL_OK;
    for (int c = 0; st == TLCL_OK && s->n && c < s->ncand; c++) {
        if (!time_candidate(e, &s->cand[c], s->calls, s->n, &b, c ? deadline : 1e300, s->ms + (size_t)c * s->n)) {
            r->budget_hit = 1;
            break;
        }
        s->tried = c + 1;
    }
    int w = st == TLCL_OK ? worth_confirming(s) : 0;
    if (w && !confirm(e, s, &b, w))
        w = 0;
    if (s->n)
        bufs_free(e, &b);
    take_group(chosen, &s->cand[w], s->g);
    if (st == TLCL_OK)
        group_report(s, w, now_s() - t0, r);
    free(s->ms);
    return st;
}

/* The summary kept as comments in the file. */
static void report_comment(const tlcl_tune_report *r, char *dst, size_t len)
{
    size_t used = 0;
    for (int g = 0; g < G_COUNT && used < len; g++) {
        const tlcl_tune_group_report *x = &r->group[g];
        used += (size_t)snprintf(dst + used, len - used,
                                 "%s: %d calls, %d of %d candidates timed, candidate %d kept; %.3f ms -> %.3f ms\n",
                                 group_names[g], x->shapes, x->tried, x->space, x->chosen, x->default_ms, x->tuned_ms);
    }
    if (used < len)
        snprintf(dst + used, len - used, "search %.1f s%s", r->seconds, r->budget_hit ? ", stopped by the budget" : "");
}

tlcl_status tlcl_tune_search(tlcl_engine *e, double budget_s, tlcl_tune_report *r)
{
    memset(r, 0, sizeof *r);
    double t0 = now_s();
    if (!e->rec || e->rec->n == 0)
        return ENG_FAIL(e, TLCL_ERR_ARG, "tlcl tune: no calls were recorded (run a model's passes under "
                                         "tlcl_tune_record first)");
    e->rec->on = 0;
    const tlcl_device_info *d = tlcl_cl_device(e->cl);
    tlcl_tuning loaded = e->tuning, chosen = tlcl_tuning_default(d);
    group_search *s = calloc(1, sizeof *s);
    if (!s || !(r->results = calloc((size_t)e->rec->n, sizeof *r->results))) {
        free(s);
        return ENG_FAIL(e, TLCL_ERR_OOM, "out of host memory for tlcl tune");
    }
    tlcl_status st = TLCL_OK;
    for (int g = 0; g < G_COUNT && st == TLCL_OK; g++) {
        s->g = (tune_group)g, s->n = 0;
        for (int i = 0; i < e->rec->n; i++)
            if (group_of(&e->rec->calls[i]) == s->g)
                s->calls[s->n++] = &e->rec->calls[i];
        double left = budget_s - (now_s() - t0), rest = 0.0;
        for (int k = g; k < G_COUNT; k++)
            rest += budget_share[k];
        st = search_group(e, s, &chosen, now_s() + left * budget_share[g] / rest, r);
    }
    free(s);
    e->tuning = st == TLCL_OK ? chosen : loaded;
    r->tuning = chosen;
    r->seconds = now_s() - t0;
    if (st != TLCL_OK)
        return st;
    char comment[1024], err[4400];
    report_comment(r, comment, sizeof comment);
    tlcl_tuning_path(tlcl_cl_cache_dir(e->cl), d, r->path, sizeof r->path);
    if (r->path[0] && tlcl_tuning_write(r->path, d, &chosen, comment, err, sizeof err) != TLCL_OK)
        return ENG_FAIL(e, TLCL_ERR_IO, "%s", err);
    snprintf(e->tuning_note, sizeof e->tuning_note, "tuning: %s", r->path[0] ? r->path : "(not stored: no cache dir)");
    return TLCL_OK;
}

void tlcl_tune_report_free(tlcl_tune_report *r)
{
    free(r->results);
    r->results = NULL;
}
