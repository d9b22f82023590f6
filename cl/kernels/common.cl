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

inline float sigmoidf_(float x) { return 1.0f / (1.0f + exp(-x)); }

inline float act_forward(int act, float x)
{
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
