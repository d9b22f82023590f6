/* mt19937.c — see mt19937.h. Written from the published algorithm
 * (Matsumoto & Nishimura 1998) and the description of NumPy's legacy
 * shuffle in shared/reference/keras_reference.md §4.4. */
#include "mt19937.h"

#define MT_M 397
#define MT_UPPER 0x80000000u
#define MT_LOWER 0x7fffffffu
#define MT_MATRIX_A 0x9908b0dfu

void tlcl_mt19937_seed(tlcl_mt19937 *g, uint32_t seed)
{
    g->state[0] = seed;
    for (uint32_t i = 1; i < TLCL_MT19937_N; i++) {
        uint32_t prev = g->state[i - 1];
        g->state[i] = 1812433253u * (prev ^ (prev >> 30)) + i;
    }
    g->pos = TLCL_MT19937_N;
}

/* One twist of word i from words i+1 and i+M (indices modulo N). */
static uint32_t twist(const uint32_t *s, int i)
{
    uint32_t y = (s[i] & MT_UPPER) | (s[(i + 1) % TLCL_MT19937_N] & MT_LOWER);
    return s[(i + MT_M) % TLCL_MT19937_N] ^ (y >> 1) ^ ((y & 1u) ? MT_MATRIX_A : 0u);
}

/* Regenerates the whole state in place, as the reference generator does:
 * words are updated in order, so later words see the new earlier ones. */
static void regenerate(tlcl_mt19937 *g)
{
    for (int i = 0; i < TLCL_MT19937_N; i++)
        g->state[i] = twist(g->state, i);
    g->pos = 0;
}

uint32_t tlcl_mt19937_next(tlcl_mt19937 *g)
{
    if (g->pos >= TLCL_MT19937_N)
        regenerate(g);
    uint32_t y = g->state[g->pos++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

uint32_t tlcl_mt19937_interval(tlcl_mt19937 *g, uint32_t max)
{
    if (max == 0)
        return 0;
    /* smallest all-ones mask covering max: rejection keeps the draw uniform
     * and, unlike a modulo, consumes exactly the draws NumPy consumes */
    uint32_t mask = max;
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    mask |= mask >> 16;
    uint32_t v;
    do
        v = tlcl_mt19937_next(g) & mask;
    while (v > max);
    return v;
}

void tlcl_mt19937_shuffle(tlcl_mt19937 *g, size_t *idx, size_t n)
{
    for (size_t i = n; i-- > 1;) {
        size_t j = tlcl_mt19937_interval(g, (uint32_t)i);
        size_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

void tlcl_mt19937_permutation(uint32_t seed, size_t *perm, size_t n)
{
    tlcl_mt19937 g;
    tlcl_mt19937_seed(&g, seed);
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    tlcl_mt19937_shuffle(&g, perm, n);
}
