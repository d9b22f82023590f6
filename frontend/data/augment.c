/* augment.c — see augment.h. Geometric transforms are one inverse affine
 * map (rotation, zoom and translation about the centre) sampled bilinearly
 * with Keras's default "reflect" fill; photometric ones follow. */
#include "augment.h"

#include <math.h>
#include <string.h>

tlcl_augment tlcl_augment_none(void)
{
    tlcl_augment a;
    memset(&a, 0, sizeof a);
    return a;
}

int tlcl_augment_active(const tlcl_augment *a)
{
    return a->enabled && (a->flip_horizontal || a->flip_vertical || a->rotation > 0 || a->translation > 0 ||
                          a->zoom > 0 || a->contrast > 0 || a->brightness > 0);
}

typedef struct aug_rng { uint64_t s; } aug_rng;

static double rng_next(aug_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

/* uniform in [-f, f] */
static double rng_sym(aug_rng *r, double f) { return (2.0 * rng_next(r) - 1.0) * f; }

static void flip(float *img, int h, int w, int horizontal)
{
    for (int y = 0; y < (horizontal ? h : h / 2); y++)
        for (int x = 0; x < (horizontal ? w / 2 : w); x++) {
            int y2 = horizontal ? y : h - 1 - y, x2 = horizontal ? w - 1 - x : x;
            for (int c = 0; c < 3; c++) {
                float *a = &img[(y * w + x) * 3 + c], *b = &img[(y2 * w + x2) * 3 + c], t = *a;
                *a = *b, *b = t;
            }
        }
}

/* Keras "reflect": (d c b a | a b c d | d c b a), i.e. the edge pixel repeats. */
static int reflect(int i, int n)
{
    if (n == 1)
        return 0;
    int period = 2 * n;
    i %= period;
    if (i < 0)
        i += period;
    return i < n ? i : period - 1 - i;
}

static float sample(const float *img, int h, int w, double sy, double sx, int c)
{
    int y0 = (int)floor(sy), x0 = (int)floor(sx);
    double fy = sy - y0, fx = sx - x0;
    float v00 = img[(reflect(y0, h) * w + reflect(x0, w)) * 3 + c];
    float v01 = img[(reflect(y0, h) * w + reflect(x0 + 1, w)) * 3 + c];
    float v10 = img[(reflect(y0 + 1, h) * w + reflect(x0, w)) * 3 + c];
    float v11 = img[(reflect(y0 + 1, h) * w + reflect(x0 + 1, w)) * 3 + c];
    double top = v00 + (v01 - v00) * fx, bottom = v10 + (v11 - v10) * fx;
    return (float)(top + (bottom - top) * fy);
}

static void affine(const tlcl_augment *a, aug_rng *r, float *img, float *scratch, int h, int w)
{
    double angle = rng_sym(r, a->rotation) * 2.0 * 3.14159265358979323846;
    double zoom = 1.0 + rng_sym(r, a->zoom);
    double ty = rng_sym(r, a->translation) * h, tx = rng_sym(r, a->translation) * w;
    double cy = (h - 1) / 2.0, cx = (w - 1) / 2.0, cs = cos(angle) * zoom, sn = sin(angle) * zoom;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            /* the output pixel reads the source at the inverse-mapped point */
            double dy = y - cy, dx = x - cx;
            double sy = cy + sn * dx + cs * dy - ty, sx = cx + cs * dx - sn * dy - tx;
            for (int c = 0; c < 3; c++)
                scratch[(y * w + x) * 3 + c] = sample(img, h, w, sy, sx, c);
        }
    memcpy(img, scratch, (size_t)h * w * 3 * sizeof *img);
}

static float clamp255(float v) { return v < 0 ? 0 : v > 255 ? 255 : v; }

static void photometric(const tlcl_augment *a, aug_rng *r, float *img, int h, int w)
{
    size_t n = (size_t)h * w;
    if (a->contrast > 0) {
        double f = 1.0 + rng_sym(r, a->contrast), mean[3] = {0, 0, 0};
        for (size_t i = 0; i < n; i++)
            for (int c = 0; c < 3; c++)
                mean[c] += img[i * 3 + c];
        for (int c = 0; c < 3; c++)
            mean[c] /= (double)(n ? n : 1);
        for (size_t i = 0; i < n; i++)
            for (int c = 0; c < 3; c++)
                img[i * 3 + c] = clamp255((float)((img[i * 3 + c] - mean[c]) * f + mean[c]));
    }
    if (a->brightness > 0) {
        float delta = (float)(rng_sym(r, a->brightness) * 255.0);
        for (size_t i = 0; i < n * 3; i++)
            img[i] = clamp255(img[i] + delta);
    }
}

void tlcl_augment_apply(const tlcl_augment *a, float *img, float *scratch, int h, int w, uint32_t epoch,
                        uint32_t index)
{
    if (!tlcl_augment_active(a))
        return;
    aug_rng r = {((uint64_t)a->seed << 32) ^ ((uint64_t)epoch * 0x9e3779b97f4a7c15ULL) ^ (uint64_t)index};
    rng_next(&r);
    if (a->flip_horizontal && rng_next(&r) < 0.5)
        flip(img, h, w, 1);
    if (a->flip_vertical && rng_next(&r) < 0.5)
        flip(img, h, w, 0);
    if (a->rotation > 0 || a->translation > 0 || a->zoom > 0)
        affine(a, &r, img, scratch, h, w);
    photometric(a, &r, img, h, w);
}
