/* arch.c — the EfficientNet block tables and their scaling rules, as in
 * keras/src/applications/efficientnet.py, efficientnet_v2.py and the
 * TensorFlow EfficientNet-Lite builder. */
#include "model.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* k, stride, expand, in, out, repeats, se, fused */
#define V1_STAGES                                                                                   \
    {{3, 1, 1, 32, 16, 1, 0.25f, 0}, {3, 2, 6, 16, 24, 2, 0.25f, 0}, {5, 2, 6, 24, 40, 2, 0.25f, 0}, \
     {3, 2, 6, 40, 80, 3, 0.25f, 0}, {5, 1, 6, 80, 112, 3, 0.25f, 0}, {5, 2, 6, 112, 192, 4, 0.25f, 0}, \
     {3, 1, 6, 192, 320, 1, 0.25f, 0}}
#define LITE_STAGES                                                                        \
    {{3, 1, 1, 32, 16, 1, 0, 0}, {3, 2, 6, 16, 24, 2, 0, 0}, {5, 2, 6, 24, 40, 2, 0, 0},    \
     {3, 2, 6, 40, 80, 3, 0, 0}, {5, 1, 6, 80, 112, 3, 0, 0}, {5, 2, 6, 112, 192, 4, 0, 0}, \
     {3, 1, 6, 192, 320, 1, 0, 0}}
#define V2B_STAGES                                                                                   \
    {{3, 1, 1, 32, 16, 1, 0, 1}, {3, 2, 4, 16, 32, 2, 0, 1}, {3, 2, 4, 32, 48, 2, 0, 1},              \
     {3, 2, 4, 48, 96, 3, 0.25f, 0}, {3, 1, 6, 96, 112, 5, 0.25f, 0}, {3, 2, 6, 112, 192, 8, 0.25f, 0}}
#define V2S_STAGES                                                                                   \
    {{3, 1, 1, 24, 24, 2, 0, 1}, {3, 2, 4, 24, 48, 4, 0, 1}, {3, 2, 4, 48, 64, 4, 0, 1},              \
     {3, 2, 4, 64, 128, 6, 0.25f, 0}, {3, 1, 6, 128, 160, 9, 0.25f, 0}, {3, 2, 6, 160, 256, 15, 0.25f, 0}}

#define V1(n, w, d, s, dr)                                                                           \
    {n, TLCL_FAMILY_V1, w, d, s, dr, 0.2f, 0.99f, 1e-3f, TLCL_ACT_SWISH, 32, 1280, 0, 7, V1_STAGES, \
     TLCL_PAD_TF_SAME, TLCL_PRE_IMAGENET}
#define V2(n, w, d, s, dr, st, stem, pre)                                                          \
    {n, TLCL_FAMILY_V2, w, d, s, dr, 0.2f, 0.9f, 1e-3f, TLCL_ACT_SWISH, stem, 1280, 0, 6, st, \
     TLCL_PAD_TF_SAME, pre}
#define LITE(n, w, d, s, dr)                                                                           \
    {n, TLCL_FAMILY_LITE, w, d, s, dr, 0.2f, 0.99f, 1e-3f, TLCL_ACT_RELU6, 32, 1280, 1, 7, LITE_STAGES, \
     TLCL_PAD_TF_SAME, TLCL_PRE_LITE}

static const tlcl_arch ARCHS[] = {
    V1("efficientnet-b0", 1.0, 1.0, 224, 0.2f),
    V1("efficientnet-b1", 1.0, 1.1, 240, 0.2f),
    V1("efficientnet-b2", 1.1, 1.2, 260, 0.3f),
    V1("efficientnet-b3", 1.2, 1.4, 300, 0.3f),
    V1("efficientnet-b4", 1.4, 1.8, 380, 0.4f),
    V1("efficientnet-b5", 1.6, 2.2, 456, 0.4f),
    V1("efficientnet-b6", 1.8, 2.6, 528, 0.5f),
    V1("efficientnet-b7", 2.0, 3.1, 600, 0.5f),
    V2("efficientnetv2-b0", 1.0, 1.0, 224, 0.2f, V2B_STAGES, 32, TLCL_PRE_IMAGENET),
    V2("efficientnetv2-b1", 1.0, 1.1, 240, 0.2f, V2B_STAGES, 32, TLCL_PRE_IMAGENET),
    V2("efficientnetv2-b2", 1.1, 1.2, 260, 0.3f, V2B_STAGES, 32, TLCL_PRE_IMAGENET),
    V2("efficientnetv2-b3", 1.2, 1.4, 300, 0.3f, V2B_STAGES, 32, TLCL_PRE_IMAGENET),
    V2("efficientnetv2-s", 1.0, 1.0, 384, 0.2f, V2S_STAGES, 24, TLCL_PRE_SIGNED),
    LITE("efficientnet-lite0", 1.0, 1.0, 224, 0.2f),
    LITE("efficientnet-lite1", 1.0, 1.1, 240, 0.2f),
    LITE("efficientnet-lite2", 1.1, 1.2, 260, 0.3f),
    LITE("efficientnet-lite3", 1.2, 1.4, 280, 0.3f),
    LITE("efficientnet-lite4", 1.4, 1.8, 300, 0.3f),
};

/* "EfficientNetV2B0", "efficientnetv2-b0" and "efficientnet_v2_b0" are one name. */
static void canonical(const char *in, char *out, size_t len)
{
    size_t j = 0;
    for (; *in && j + 1 < len; in++)
        if (isalnum((unsigned char)*in))
            out[j++] = (char)tolower((unsigned char)*in);
    out[j] = '\0';
}

const tlcl_arch *tlcl_arch_find(const char *name)
{
    char want[64], have[64];
    canonical(name, want, sizeof want);
    for (size_t i = 0; i < sizeof ARCHS / sizeof *ARCHS; i++) {
        canonical(ARCHS[i].name, have, sizeof have);
        if (strcmp(want, have) == 0)
            return &ARCHS[i];
    }
    return NULL;
}

void tlcl_arch_list(char *dst, size_t len)
{
    size_t off = 0;
    dst[0] = '\0';
    for (size_t i = 0; i < sizeof ARCHS / sizeof *ARCHS && off < len; i++)
        off += (size_t)snprintf(dst + off, len - off, "%s%s", i ? ", " : "", ARCHS[i].name);
}

int tlcl_round_filters(const tlcl_arch *a, int filters)
{
    const int divisor = 8;
    double f = filters * a->width;
    int rounded = (int)((int)(f + divisor / 2.0) / divisor * divisor);
    if (rounded < divisor)
        rounded = divisor;
    /* V1 (and Lite, built by the same TF code) add a divisor when rounding
     * lost more than 10%; V2 does not. */
    if (a->family != TLCL_FAMILY_V2 && rounded < 0.9 * f)
        rounded += divisor;
    return rounded;
}

int tlcl_round_repeats(const tlcl_arch *a, int repeats, int stage_index)
{
    if (a->fix_stem_head && (stage_index == 0 || stage_index == a->nstages - 1))
        return repeats;
    return (int)ceil(a->depth * repeats); /* double, as Python computes it */
}
