/* augment.h — seeded image augmentation on the host, in the manner of the
 * Keras preprocessing layers (RandomFlip, RandomRotation, RandomTranslation,
 * RandomZoom, RandomContrast, RandomBrightness). Images are float RGB 0..255,
 * H x W x 3. The same (seed, epoch, index) always gives the same image, so
 * a resumed run sees the same augmented batches. */
#ifndef TLCL_AUGMENT_H
#define TLCL_AUGMENT_H

#include <stdint.h>

typedef struct tlcl_augment {
    int enabled;
    int flip_horizontal, flip_vertical;
    float rotation;     /* fraction of a full turn: angle in [-rotation, rotation] * 2 pi */
    float translation;  /* fraction of height/width: shift in [-t, t] * size */
    float zoom;         /* fraction: scale in [1 - zoom, 1 + zoom] (Keras: positive zooms out) */
    float contrast;     /* factor in [1 - c, 1 + c] around the per-channel mean */
    float brightness;   /* shift in [-b, b] * 255 */
    uint32_t seed;
} tlcl_augment;

tlcl_augment tlcl_augment_none(void);
/* True when any transform is on (a frozen base can then not cache features). */
int tlcl_augment_active(const tlcl_augment *a);
/* Transforms img in place; scratch holds h * w * 3 floats. */
void tlcl_augment_apply(const tlcl_augment *a, float *img, float *scratch, int h, int w, uint32_t epoch,
                        uint32_t index);

#endif
