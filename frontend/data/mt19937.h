/* mt19937.h — the Mersenne Twister as NumPy's legacy RandomState(seed) uses
 * it, so that tlcl shuffles a file list exactly as
 * keras.utils.image_dataset_from_directory does (np.random.RandomState(seed)
 * .shuffle(list)). Three pieces, each matching NumPy bit for bit:
 *   - seeding with an integer seed is Matsumoto and Nishimura's init_genrand
 *     (NumPy's _legacy_seeding for an int seed);
 *   - each draw is the standard tempered 32-bit output;
 *   - random_interval(max) masks draws to the smallest 2^k-1 >= max and
 *     rejects values above max; shuffle is Fisher-Yates from the end. */
#ifndef TLCL_MT19937_H
#define TLCL_MT19937_H

#include <stddef.h>
#include <stdint.h>

#define TLCL_MT19937_N 624

typedef struct tlcl_mt19937 {
    uint32_t state[TLCL_MT19937_N];
    int pos; /* next word of state to temper; N: regenerate first */
} tlcl_mt19937;

/* init_genrand(seed): what np.random.RandomState(seed) does for 0 <= seed < 2^32. */
void tlcl_mt19937_seed(tlcl_mt19937 *g, uint32_t seed);
/* The next raw 32-bit output (RandomState.randint(0, 2**32, dtype=np.uint32)). */
uint32_t tlcl_mt19937_next(tlcl_mt19937 *g);
/* Uniform integer in [0, max] by masked rejection (NumPy random_interval). */
uint32_t tlcl_mt19937_interval(tlcl_mt19937 *g, uint32_t max);
/* RandomState.shuffle on n items: for i = n-1 down to 1, swap item i with
 * item random_interval(i). Permutes idx in place. */
void tlcl_mt19937_shuffle(tlcl_mt19937 *g, size_t *idx, size_t n);
/* The permutation RandomState(seed).shuffle applies to n items: perm[k] is
 * the original index of the item that ends at position k. */
void tlcl_mt19937_permutation(uint32_t seed, size_t *perm, size_t n);

#endif
