/* test_stochastic.c — statistics of the stochastic layers over many samples.
 *
 * tlcl_dropout_forward (inverted dropout, one keep decision per element)
 * and tlcl_drop_path_forward (stochastic depth, one decision per sample, as
 * Keras's Dropout with noise_shape (N, 1, 1, 1)) must, like Keras's, keep
 * each unit with probability 1 - rate, independently, and scale what they
 * keep by 1 / (1 - rate) (so E[y] = x). Checked here, with the masks being
 * deterministic hashes of (seed, index), as statistics of about a million
 * decisions:
 *  - the kept fraction within 4 standard errors of 1 - rate;
 *  - the mean multiplier y / x within 4 standard errors of 1;
 *  - kept values equal to x / (1 - rate) within 2 float ulps, dropped ones 0;
 *  - no structure: neighbours kept together at (1 - rate)^2, every channel
 *    column and every row (dropout), every sample position over seeds
 *    (drop-path) within 5 standard errors of 1 - rate, and consecutive
 *    seeds' masks as independent as two coin sequences;
 *  - a batch split in two shares (data parallelism, first_sample = where
 *    the second starts) draws, share by share, the masks of the whole
 *    batch, bit for bit, for dropout, drop path and drop path + add. */
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* |observed - expected| within k standard errors of a proportion over n trials. */
static void check_fraction(harness *h, const char *what, double observed, double p, double n, double k)
{
    double se = sqrt(p * (1 - p) / n), z = (observed - p) / se;
    char line[256];
    snprintf(line, sizeof line, "%s: %.5f, expected %.5f +- %.0f se (se %.1e over %.0f; z = %+.2f)", what, observed,
             p, k, se, n, z);
    harness_expect(h, fabs(z) <= k, line);
}

/* Kept values x / (1 - rate) within 2 ulps; dropped values exactly 0.
 * Returns the count kept; *exact reports the check. */
static size_t classify(const float *x, const float *y, size_t n, float rate, unsigned char *keep, int *exact)
{
    double scale = 1.0 / (1.0 - (double)rate);
    size_t kept = 0;
    *exact = 1;
    for (size_t i = 0; i < n; i++) {
        keep[i] = y[i] != 0.0f;
        kept += keep[i];
        double want = keep[i] ? x[i] * scale : 0.0;
        *exact &= fabs(y[i] - want) <= 2.0 * ldexp(fabs(want), -23);
    }
    return kept;
}

/* ---- dropout ----------------------------------------------------------------------- */

enum { D_ROWS = 4096, D_COLS = 256 };

static void test_dropout_rate(harness *h, float rate)
{
    const size_t n = (size_t)D_ROWS * D_COLS;
    float *x = malloc(n * sizeof *x), *y = NULL, *y2 = NULL;
    unsigned char *keep = malloc(n), *keep2 = malloc(n);
    harness_fill(h, x, n, 0.5f, 1.5f); /* never 0: y != 0 is the mask */
    tlcl_tensor tx = harness_tensor(h, "x", D_ROWS, 1, 1, D_COLS, x), ty = harness_tensor(h, "y", D_ROWS, 1, 1, D_COLS, NULL);
    if (!harness_status(h, tlcl_dropout_forward(h->eng, &ty, &tx, rate, 20240u, 0), "dropout"))
        y = harness_download(h, &ty);
    if (!harness_status(h, tlcl_dropout_forward(h->eng, &ty, &tx, rate, 20241u, 0), "dropout"))
        y2 = harness_download(h, &ty);
    char what[160];
    if (y && y2) {
        double q = 1.0 - rate;
        int exact = 0, exact2 = 0;
        size_t kept = classify(x, y, n, rate, keep, &exact);
        classify(x, y2, n, rate, keep2, &exact2);
        snprintf(what, sizeof what, "dropout %.2f: kept fraction", rate);
        check_fraction(h, what, (double)kept / n, q, (double)n, 4);
        double sum = 0;
        for (size_t i = 0; i < n; i++)
            sum += y[i] / x[i];
        /* the multiplier is 1/q with probability q, else 0: variance (1 - q) / q */
        double mean = sum / n, se = sqrt((1 - q) / q / n);
        snprintf(what, sizeof what, "dropout %.2f: mean multiplier y/x %.5f, 1 +- 4 se (%.1e)", rate, mean, se);
        harness_expect(h, fabs(mean - 1) <= 4 * se, what);
        snprintf(what, sizeof what, "dropout %.2f: kept values are x / (1 - rate) (2 ulps), dropped ones 0", rate);
        harness_expect(h, exact && exact2, what);
        size_t pairs = 0, agree = 0;
        for (size_t i = 0; i + 1 < n; i++)
            pairs += keep[i] && keep[i + 1];
        for (size_t i = 0; i < n; i++)
            agree += keep[i] == keep2[i];
        snprintf(what, sizeof what, "dropout %.2f: neighbours kept together", rate);
        check_fraction(h, what, (double)pairs / (n - 1), q * q, (double)(n - 1), 4);
        snprintf(what, sizeof what, "dropout %.2f: seeds 20240 and 20241 agree", rate);
        check_fraction(h, what, (double)agree / n, q * q + (1 - q) * (1 - q), (double)n, 4);
        /* every channel column and every row: the worst of them within 5 se */
        double worst_col = 0, worst_row = 0;
        for (int c = 0; c < D_COLS; c++) {
            size_t k = 0;
            for (int r = 0; r < D_ROWS; r++)
                k += keep[(size_t)r * D_COLS + c];
            worst_col = fmax(worst_col, fabs((double)k / D_ROWS - q) / sqrt(q * (1 - q) / D_ROWS));
        }
        for (int r = 0; r < D_ROWS; r++) {
            size_t k = 0;
            for (int c = 0; c < D_COLS; c++)
                k += keep[(size_t)r * D_COLS + c];
            worst_row = fmax(worst_row, fabs((double)k / D_COLS - q) / sqrt(q * (1 - q) / D_COLS));
        }
        snprintf(what, sizeof what, "dropout %.2f: each of %d columns (worst %.2f se) and %d rows (worst %.2f se) within 5 se",
                 rate, D_COLS, worst_col, D_ROWS, worst_row);
        harness_expect(h, worst_col <= 5 && worst_row <= 5, what);
    }
    tlcl_tensor_release(h->eng, &tx), tlcl_tensor_release(h->eng, &ty);
    free(x), free(y), free(y2), free(keep), free(keep2);
}

/* ---- drop-path -------------------------------------------------------------------- */

enum { P_BATCH = 32, P_H = 3, P_W = 3, P_C = 8, P_SEEDS = 400, P_LARGE = 20000 };

/* A batch of P_BATCH samples under P_SEEDS seeds (the training situation:
 * small batches, a new seed every step), then one batch of P_LARGE samples. */
static void test_drop_path_rate(harness *h, float rate)
{
    const size_t per = (size_t)P_H * P_W * P_C, n = P_BATCH * per;
    float *x = malloc(n * sizeof *x);
    unsigned char *keep = malloc(n), *kept_at = calloc((size_t)P_SEEDS * P_BATCH, 1);
    harness_fill(h, x, n, 0.5f, 1.5f);
    tlcl_tensor tx = harness_tensor(h, "x", P_BATCH, P_H, P_W, P_C, x), ty = harness_tensor(h, "y", P_BATCH, P_H, P_W, P_C, NULL);
    double q = 1.0 - rate;
    int whole = 1, exact = 1, ok = 1;
    size_t kept = 0;
    char what[200];
    for (int s = 0; s < P_SEEDS && ok; s++) {
        float *y = NULL;
        ok = !harness_status(h, tlcl_drop_path_forward(h->eng, &ty, &tx, rate, 1000u + (uint32_t)s, 0), "drop path") &&
             (y = harness_download(h, &ty)) != NULL;
        if (!ok)
            break;
        int ex = 0;
        classify(x, y, n, rate, keep, &ex);
        exact &= ex;
        for (int i = 0; i < P_BATCH; i++) {
            for (size_t j = 1; j < per; j++)
                whole &= keep[i * per + j] == keep[i * per];
            kept_at[(size_t)s * P_BATCH + i] = keep[i * per];
            kept += keep[i * per];
        }
        free(y);
    }
    if (ok) {
        double trials = (double)P_SEEDS * P_BATCH;
        snprintf(what, sizeof what, "drop-path %.2f: whole samples kept or dropped over %d seeds", rate, P_SEEDS);
        harness_expect(h, whole, what);
        snprintf(what, sizeof what, "drop-path %.2f: kept values are x / (1 - rate) (2 ulps), dropped ones 0", rate);
        harness_expect(h, exact, what);
        snprintf(what, sizeof what, "drop-path %.2f: kept fraction of %d samples x %d seeds", rate, P_BATCH, P_SEEDS);
        check_fraction(h, what, kept / trials, q, trials, 4);
        double worst = 0;
        size_t both = 0;
        for (int i = 0; i < P_BATCH; i++) {
            size_t k = 0;
            for (int s = 0; s < P_SEEDS; s++)
                k += kept_at[(size_t)s * P_BATCH + i];
            worst = fmax(worst, fabs((double)k / P_SEEDS - q) / sqrt(q * (1 - q) / P_SEEDS));
        }
        for (int s = 0; s + 1 < P_SEEDS; s++)
            for (int i = 0; i < P_BATCH; i++)
                both += kept_at[(size_t)s * P_BATCH + i] && kept_at[(size_t)(s + 1) * P_BATCH + i];
        snprintf(what, sizeof what, "drop-path %.2f: each of the %d sample positions over %d seeds within 5 se (worst %.2f)",
                 rate, P_BATCH, P_SEEDS, worst);
        harness_expect(h, worst <= 5, what);
        snprintf(what, sizeof what, "drop-path %.2f: a sample kept under consecutive seeds", rate);
        check_fraction(h, what, both / ((P_SEEDS - 1.0) * P_BATCH), q * q, (P_SEEDS - 1.0) * P_BATCH, 4);
    }
    tlcl_tensor_release(h->eng, &tx), tlcl_tensor_release(h->eng, &ty);
    free(x), free(keep), free(kept_at);

    /* one large batch: P_LARGE samples of 4 values */
    const size_t nl = (size_t)P_LARGE * 4;
    float *xl = malloc(nl * sizeof *xl), *yl = NULL;
    unsigned char *kl = malloc(nl);
    harness_fill(h, xl, nl, 0.5f, 1.5f);
    tlcl_tensor lx = harness_tensor(h, "x", P_LARGE, 1, 2, 2, xl), ly = harness_tensor(h, "y", P_LARGE, 1, 2, 2, NULL);
    if (!harness_status(h, tlcl_drop_path_forward(h->eng, &ly, &lx, rate, 77u, 0), "drop path") &&
        (yl = harness_download(h, &ly))) {
        int ex = 0, all = 1;
        size_t k = classify(xl, yl, nl, rate, kl, &ex);
        for (size_t i = 0; i < nl; i++)
            all &= kl[i] == kl[i - i % 4];
        snprintf(what, sizeof what, "drop-path %.2f: kept fraction of one batch of %d samples", rate, P_LARGE);
        check_fraction(h, what, (double)k / nl, q, P_LARGE, 4);
        snprintf(what, sizeof what, "drop-path %.2f, %d samples: whole samples, x / (1 - rate)", rate, P_LARGE);
        harness_expect(h, ex && all, what);
    }
    tlcl_tensor_release(h->eng, &lx), tlcl_tensor_release(h->eng, &ly);
    free(xl), free(yl), free(kl);
}

/* ---- shares of a global batch ------------------------------------------------------ */

enum { S_BATCH = 7, S_SPLIT = 3, S_PER = 5 * 5 * 6 };

/* One kind of mask on the whole batch, then on samples [0, S_SPLIT) and
 * [S_SPLIT, S_BATCH) with first_sample 0 and S_SPLIT: the same outputs. */
static void check_shares(harness *h, int kind, const char *what)
{
    float *x = malloc(S_BATCH * S_PER * sizeof *x), *whole = NULL, *part[2] = {NULL, NULL};
    harness_fill(h, x, S_BATCH * S_PER, 0.5f, 1.5f);
    int lo[2] = {0, S_SPLIT}, n[2] = {S_SPLIT, S_BATCH - S_SPLIT}, same = 1;
    for (int p = -1; p < 2; p++) {
        int first = p < 0 ? 0 : lo[p], count = p < 0 ? S_BATCH : n[p];
        tlcl_tensor tx = harness_tensor(h, "x", count, 5, 5, 6, x + (size_t)first * S_PER);
        tlcl_tensor ty = harness_tensor(h, "y", count, 5, 5, 6, NULL);
        tlcl_status s = kind == 0   ? tlcl_dropout_forward(h->eng, &ty, &tx, 0.4f, 99u, first)
                        : kind == 1 ? tlcl_drop_path_forward(h->eng, &ty, &tx, 0.4f, 99u, first)
                                    : tlcl_drop_path_add_forward(h->eng, &ty, &tx, &tx, 0.4f, 99u, first);
        if (harness_status(h, s, what))
            break;
        float *y = harness_download(h, &ty);
        if (p < 0)
            whole = y;
        else
            part[p] = y;
    }
    for (int p = 0; whole && p < 2 && part[p]; p++)
        same &= memcmp(part[p], whole + (size_t)lo[p] * S_PER, (size_t)n[p] * S_PER * sizeof(float)) == 0;
    char line[160];
    snprintf(line, sizeof line, "%s: two shares of a batch (first_sample 0 and %d) draw the whole batch's masks", what,
             S_SPLIT);
    harness_expect(h, whole && part[0] && part[1] && same, line);
    free(x), free(whole), free(part[0]), free(part[1]);
}

int main(void)
{
    harness h;
    harness_init(&h, 1);
    static const float dropout_rates[] = {0.1f, 0.3f, 0.5f, 0.8f}, path_rates[] = {0.05f, 0.2f, 0.5f};
    for (size_t i = 0; i < sizeof dropout_rates / sizeof *dropout_rates; i++)
        test_dropout_rate(&h, dropout_rates[i]);
    for (size_t i = 0; i < sizeof path_rates / sizeof *path_rates; i++)
        test_drop_path_rate(&h, path_rates[i]);
    check_shares(&h, 0, "dropout");
    check_shares(&h, 1, "drop path");
    check_shares(&h, 2, "drop path + add");
    return harness_finish(&h);
}
