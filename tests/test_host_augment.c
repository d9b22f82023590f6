/* test_host_augment.c — augmentation: off is the identity, the same (seed,
 * epoch, index) gives the same image and another index another one, flips
 * are exact mirror images, a zero-size affine transform is the identity,
 * values stay within 0..255, contrast keeps the channel mean. */
#include "harness.h"
#include "augment.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { H = 9, W = 12, N = H * W * 3 };

static void pattern(float *img)
{
    for (int i = 0; i < N; i++)
        img[i] = (float)((i * 37) % 251);
}

static int find_flipping_index(const tlcl_augment *a, float *img, float *scratch, const float *ref)
{
    for (int idx = 0; idx < 64; idx++) {
        pattern(img);
        tlcl_augment_apply(a, img, scratch, H, W, 0, (uint32_t)idx);
        if (memcmp(img, ref, sizeof(float) * N) != 0)
            return idx;
    }
    return -1;
}

int main(void)
{
    harness h;
    harness_init(&h, 0);
    float img[N], ref[N], other[N], scratch[N];
    tlcl_augment a = tlcl_augment_none();
    pattern(img), pattern(ref);
    a.flip_horizontal = 1; /* enabled = 0: nothing happens */
    tlcl_augment_apply(&a, img, scratch, H, W, 0, 0);
    harness_expect(&h, memcmp(img, ref, sizeof img) == 0, "disabled augmentation is the identity");

    a.enabled = 1;
    int idx = find_flipping_index(&a, img, scratch, ref);
    int mirrored = idx >= 0;
    for (int y = 0; mirrored && y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++)
                mirrored &= img[(y * W + x) * 3 + c] == ref[(y * W + (W - 1 - x)) * 3 + c];
    harness_expect(&h, mirrored, "horizontal flip is an exact mirror image");

    a = tlcl_augment_none();
    a.enabled = 1;
    a.rotation = 0.1f, a.zoom = 0.2f, a.translation = 0.1f, a.contrast = 0.3f, a.brightness = 0.2f, a.seed = 7;
    pattern(img), pattern(other);
    tlcl_augment_apply(&a, img, scratch, H, W, 3, 5);
    tlcl_augment_apply(&a, other, scratch, H, W, 3, 5);
    harness_expect(&h, memcmp(img, other, sizeof img) == 0, "same seed, epoch and index: same image");
    pattern(other);
    tlcl_augment_apply(&a, other, scratch, H, W, 3, 6);
    harness_expect(&h, memcmp(img, other, sizeof img) != 0, "another index: another image");
    int in_range = 1;
    for (int i = 0; i < N; i++)
        in_range &= img[i] >= 0 && img[i] <= 255 && isfinite(img[i]);
    harness_expect(&h, in_range, "augmented values stay finite within 0..255");

    /* a transform drawn with zero ranges is the identity, up to float rounding */
    a = tlcl_augment_none();
    a.enabled = 1;
    a.rotation = 1e-9f;
    pattern(img);
    tlcl_augment_apply(&a, img, scratch, H, W, 0, 0);
    double maxerr = 0;
    for (int i = 0; i < N; i++)
        maxerr = fmax(maxerr, fabs(img[i] - ref[i]));
    harness_expect(&h, maxerr < 1e-3, "a vanishing rotation leaves the image unchanged");

    a = tlcl_augment_none();
    a.enabled = 1;
    a.contrast = 0.5f;
    for (int i = 0; i < N; i++)
        img[i] = 100.0f + (float)(i % 7); /* far from the clip limits */
    double before = 0, after = 0;
    for (int i = 0; i < N; i += 3)
        before += img[i];
    tlcl_augment_apply(&a, img, scratch, H, W, 1, 2);
    for (int i = 0; i < N; i += 3)
        after += img[i];
    harness_expect(&h, fabs(before - after) < 1e-2 * N, "contrast keeps the channel mean");
    return harness_finish(&h);
}
