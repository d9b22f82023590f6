/* common.cl — prepended to every tlcl program: activations and the
 * counter-based random numbers shared by the kernels. */

#ifndef WG
#define WG 64
#endif

/* NaN or Inf, by the exponent bits: -cl-fast-relaxed-math lets the compiler
 * assume isnan/isinf are false, and this test must survive it. */
inline int nonfinite(float x) { return (as_uint(x) & 0x7f800000u) == 0x7f800000u; }

/* Activation codes, the same values as tlcl_act in engine.h. */
#define ACT_NONE 0
#define ACT_SWISH 1
#define ACT_SIGMOID 2
#define ACT_RELU 3
#define ACT_RELU6 4

/* MAD(a, b, c) = a * b + c for the multiply-accumulate loops. mad() lets
 * the compiler pick, and PoCL picks a multiply and an add: two
 * instructions, each rounding. Where the device does fused multiply-add
 * in hardware (the host passes -DTLCL_FMA, from CL_FP_FMA) fma() is one
 * instruction and one rounding: the GEMM's inner loop on PoCL (AVX-512)
 * went from 32 to 16 arithmetic instructions per k. On a device without it
 * fma() would be emulated, hence mad() there (llvmpipe says no FMA). */
#if defined(FP_FAST_FMAF) || defined(TLCL_FMA)
#define MAD(a, b, c) fma(a, b, c)
#else
#define MAD(a, b, c) mad(a, b, c)
#endif

/* Vector loads and stores by width, for kernels instantiated per channel
 * vector width V (the engine picks V from the device's preferred float
 * vector width, so CPUs get whole SIMD registers per work-item and GPUs
 * V = 1, where neighbouring work-items already make the vector). Vector
 * o of p is read as a vector-typed element, not with vloadn: vloadn may
 * assume only float alignment, and PoCL split each vload16 into eight
 * 8-byte loads and each vstore16 into three stores (bn_forward_16 took
 * 9.7 ms a V2-B0 step that way, 5.2 ms this way). The vector type's
 * alignment holds: p is a kernel argument, a buffer or sub-buffer origin,
 * aligned to CL_DEVICE_MEM_BASE_ADDR_ALIGN (at least the size of long16,
 * 128 bytes), or in optimizer.cl a run of the parameter store, whose
 * entries start at that alignment too (tlcl_params_layout). */
#define LOAD_1(o, p) ((p)[o])
#define STORE_1(v, o, p) ((p)[o] = (v))
#define LOAD_4(o, p) (((__global const float4 *)(p))[o])
#define STORE_4(v, o, p) (((__global float4 *)(p))[o] = (v))
#define LOAD_8(o, p) (((__global const float8 *)(p))[o])
#define STORE_8(v, o, p) (((__global float8 *)(p))[o] = (v))
#define LOAD_16(o, p) (((__global const float16 *)(p))[o])
#define STORE_16(v, o, p) (((__global float16 *)(p))[o] = (v))

/* Feature-map storage. A program built with -DTLCL_BF16 keeps its kernels'
 * feature-map operands (the pointers typed act_t) as bfloat16, the upper
 * 16 bits of a float: LOADA_V widens V of them to floatV (exact), STOREA_V
 * rounds floatV to nearest-even. Everything else (parameters, statistics,
 * sums) stays float and all arithmetic is float32; without the option
 * act_t is float and LOADA/STOREA are LOAD/STORE. bf16_round does not round
 * a NaN (the carry out of an all-ones payload would flip its sign and make
 * it a number) but truncates it with its quiet bit set; it is plain integer
 * arithmetic, which vectorises. */
#define DEFINE_BF16(S)                                                                  \
    inline float##S bf16_load##S(ushort##S h) { return as_float##S(convert_uint##S(h) << 16); } \
    inline ushort##S bf16_round##S(float##S f)                                          \
    {                                                                                   \
        uint##S u = as_uint##S(f);                                                      \
        uint##S nan = (0x7f800000u - (u & 0x7fffffffu)) >> 31; /* 1 for a NaN */         \
        u += (0x7fffu + ((u >> 16) & 1u)) & (nan - 1u);                                  \
        return convert_ushort##S((u | (nan << 22)) >> 16);                              \
    }
DEFINE_BF16()
DEFINE_BF16(2)
DEFINE_BF16(4)
DEFINE_BF16(8)
DEFINE_BF16(16)

#ifdef TLCL_BF16
typedef ushort act_t;
#define LOADA_1(o, p) bf16_load((p)[o])
#define STOREA_1(v, o, p) ((p)[o] = bf16_round(v))
#define LOADA_VEC_(W, o, p) bf16_load##W(((__global const ushort##W *)(p))[o])
#define STOREA_VEC_(W, v, o, p) (((__global ushort##W *)(p))[o] = bf16_round##W(v))
#else
typedef float act_t;
#define LOADA_1(o, p) LOAD_1(o, p)
#define STOREA_1(v, o, p) STORE_1(v, o, p)
#define LOADA_VEC_(W, o, p) (((__global const float##W *)(p))[o])
#define STOREA_VEC_(W, v, o, p) (((__global float##W *)(p))[o] = (v))
#endif
#define LOADA_2(o, p) LOADA_VEC_(2, o, p)
#define STOREA_2(v, o, p) STOREA_VEC_(2, v, o, p)
#define LOADA_4(o, p) LOADA_VEC_(4, o, p)
#define STOREA_4(v, o, p) STOREA_VEC_(4, v, o, p)
#define LOADA_8(o, p) LOADA_VEC_(8, o, p)
#define STOREA_8(v, o, p) STOREA_VEC_(8, v, o, p)
#define LOADA_16(o, p) LOADA_VEC_(16, o, p)
#define STOREA_16(v, o, p) STOREA_VEC_(16, v, o, p)
/* element i of a feature map, as a float; and its store */
#define ACT_GET(p, i) LOADA_1(i, p)
#define ACT_SET(p, i, v) STOREA_1(v, i, p)

/* The activations, written once for float and each vector type T (suffix S:
 * act_grad4 works on float4). exp_poly is e^x from plain arithmetic:
 * Cody-Waite reduction by ln 2 and a degree-6 Taylor polynomial on
 * |r| <= ln2/2 (relative error about 2e-7, near float's own), the power of
 * two built in the exponent bits. Unlike a library exp call this vectorises
 * on CPU implementations (PoCL), where swish and sigmoid otherwise dominate
 * the batch-norm kernels; n comes from the rounding of an add, not from
 * floor and a conversion, which made it a third slower on PoCL. Under -DACT (a program specialised for one
 * activation) the switch folds away. */
#ifdef ACT
#define ACT_CODE(act) ACT
#else
#define ACT_CODE(act) (act)
#endif

#define DEFINE_ACTIVATIONS(S, T)                                                        \
    inline T exp_poly##S(T x)                                                           \
    {                                                                                   \
        x = clamp(x, -87.0f, 88.0f);                                                    \
        /* adding 1.5 * 2^23 rounds x log2(e) to the integer n, held in the  */        \
        /* low mantissa bits; n is read back through the bits so that fast   */        \
        /* math cannot fold the add and subtract of the constant away        */        \
        int##S bits = as_int##S(x * 1.44269504089f + 12582912.0f);                      \
        T n = convert_float##S(bits - 0x4B400000);                                      \
        T r = MAD(n, -1.428606765330187e-06f, MAD(n, -0.693145751953125f, x));         \
        T p = (T)(1.0f / 720.0f);                                                       \
        p = MAD(p, r, 1.0f / 120.0f);                                                   \
        p = MAD(p, r, 1.0f / 24.0f);                                                    \
        p = MAD(p, r, 1.0f / 6.0f);                                                     \
        p = MAD(p, r, 0.5f);                                                            \
        p = MAD(p, r, 1.0f);                                                            \
        p = MAD(p, r, 1.0f);                                                            \
        return p * as_float##S((bits + 127) << 23); /* 2^n: the exponent field */       \
    }                                                                                   \
    inline T sigmoidf_##S(T x) { return 1.0f / (1.0f + exp_poly##S(-x)); }             \
    inline T act_forward##S(int act, T x)                                               \
    {                                                                                   \
        switch (ACT_CODE(act)) {                                                        \
        case ACT_SWISH: return x * sigmoidf_##S(x);                                     \
        case ACT_SIGMOID: return sigmoidf_##S(x);                                       \
        case ACT_RELU: return fmax(x, 0.0f);                                            \
        case ACT_RELU6: return fmin(fmax(x, 0.0f), 6.0f);                               \
        default: return x;                                                              \
        }                                                                               \
    }                                                                                   \
    /* d act(x) / dx, from the activation's input x */                                  \
    inline T act_grad##S(int act, T x)                                                  \
    {                                                                                   \
        T s;                                                                            \
        switch (ACT_CODE(act)) {                                                        \
        case ACT_SWISH: s = sigmoidf_##S(x); return s * (1.0f + x * (1.0f - s));        \
        case ACT_SIGMOID: s = sigmoidf_##S(x); return s * (1.0f - s);                   \
        /* ceil(clamp(x, 0, 1)) is x > 0 ? 1 : 0 exactly, in arithmetic that    */ \
        /* vectorises (PoCL lowered the vector select of a mask 10x slower)   */ \
        case ACT_RELU: return ceil(clamp(x, 0.0f, 1.0f));                               \
        case ACT_RELU6: return ceil(clamp(x, 0.0f, 1.0f)) * ceil(clamp(6.0f - x, 0.0f, 1.0f)); \
        default: return (T)(1.0f);                                                      \
        }                                                                               \
    }

DEFINE_ACTIVATIONS(, float)
DEFINE_ACTIVATIONS(2, float2)
DEFINE_ACTIVATIONS(4, float4)
DEFINE_ACTIVATIONS(8, float8)
DEFINE_ACTIVATIONS(16, float16)

/* FOR_EACH_WIDTH(M) instantiates M(S, T, V) for the widths a launch can
 * ask for: 1, 4 and the device's VW (-DVW from the host, 8 or 16 on CPUs).
 * Only these are compiled, which keeps a program's build short. */
#ifndef VW
#define VW 1
#endif
#if VW == 16
#define FOR_WIDE_WIDTH(M) M(16, float16, 16)
#elif VW == 8
#define FOR_WIDE_WIDTH(M) M(8, float8, 8)
#else
#define FOR_WIDE_WIDTH(M)
#endif
#define FOR_EACH_WIDTH(M) M(, float, 1) M(4, float4, 4) FOR_WIDE_WIDTH(M)
/* FOR_MAIN_WIDTH(M): VW alone, for kernels unrolled per shape whose other
 * widths fall back to a generic kernel (a build of every shape at every
 * width took PoCL 8 s for the depthwise program). */
#if VW == 16 || VW == 8
#define FOR_MAIN_WIDTH(M) FOR_WIDE_WIDTH(M)
#elif VW == 4
#define FOR_MAIN_WIDTH(M) M(4, float4, 4)
#else
#define FOR_MAIN_WIDTH(M) M(, float, 1)
#endif

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
