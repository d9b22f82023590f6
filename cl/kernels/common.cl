/* common.cl — prepended to every tlcl program: activations and the
 * counter-based random numbers shared by the kernels. */

#ifndef WG
#define WG 64
#endif

/* Activation codes, the same values as tlcl_act in engine.h. */
#define ACT_NONE 0
#define ACT_SWISH 1
#define ACT_SIGMOID 2
#define ACT_RELU 3
#define ACT_RELU6 4

/* e^x from plain arithmetic: Cody-Waite reduction by ln 2 and a degree-6
 * Taylor polynomial on |r| <= ln2/2 (relative error about 2e-7, near float's
 * own), the power of two built in the exponent bits. Unlike a library exp
 * call this vectorises on CPU implementations (PoCL), where swish and
 * sigmoid otherwise dominate the batch-norm kernels. */
inline float exp_poly(float x)
{
    x = clamp(x, -87.0f, 88.0f);
    float n = floor(x * 1.44269504089f + 0.5f);
    float r = x - n * 0.693145751953125f - n * 1.428606765330187e-06f;
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    return p * as_float(((int)n + 127) << 23);
}

inline float sigmoidf_(float x) { return 1.0f / (1.0f + exp_poly(-x)); }

inline float act_forward(int act, float x)
{
#ifdef ACT
    act = ACT; /* a program specialised for one activation: the switch folds away */
#endif
    switch (act) {
    case ACT_SWISH: return x * sigmoidf_(x);
    case ACT_SIGMOID: return sigmoidf_(x);
    case ACT_RELU: return fmax(x, 0.0f);
    case ACT_RELU6: return fmin(fmax(x, 0.0f), 6.0f);
    default: return x;
    }
}

/* d act(x) / dx, from the activation's input x. */
inline float act_grad(int act, float x)
{
#ifdef ACT
    act = ACT;
#endif
    switch (act) {
    case ACT_SWISH: {
        float s = sigmoidf_(x);
        return s * (1.0f + x * (1.0f - s));
    }
    case ACT_SIGMOID: {
        float s = sigmoidf_(x);
        return s * (1.0f - s);
    }
    case ACT_RELU: return x > 0.0f ? 1.0f : 0.0f;
    case ACT_RELU6: return (x > 0.0f && x < 6.0f) ? 1.0f : 0.0f;
    default: return 1.0f;
    }
}

/* A stateless hash (a 32-bit mix in the style of lowbias32) of a seed and two
 * counters: the same (seed, a, b) gives the same number on every device, so
 * backward re-derives a dropout mask instead of storing it. */
inline uint hash_u32(uint x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

inline float uniform01(uint seed, uint a, uint b)
{
    uint h = hash_u32(seed ^ hash_u32(a ^ hash_u32(b + 0x9e3779b9U)));
    return (float)(h >> 8) * (1.0f / 16777216.0f); /* [0, 1) with 24 bits */
}
