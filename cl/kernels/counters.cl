/* counters.cl — a run's device-side counters (engine/counters.c): one batch's
 * loss sum, hits, weights and confusion counts added without a host round
 * trip, and the sticky non-finite guard the optimizer reads.
 *
 * One work-group: the work-items find each sample's arg-max in parallel,
 * then work-item 0 adds the batch in sample order (a fixed order, so the
 * sums do not depend on the device's work-group size). Sums are compensated
 * (Kahan), so an epoch of float additions loses nothing a double would
 * keep at these magnitudes. */

/* Slots of sums (engine.h's tlcl_counter_slot). */
#define GUARD 0
#define LOSS 1
#define HITS 3
#define WEIGHT 5
#define SAMPLES 7

static void kahan_add(__global float *sums, int slot, float x)
{
    float y = x - sums[slot + 1];
    float t = sums[slot] + y;
    sums[slot + 1] = (t - sums[slot]) - y;
    sums[slot] = t;
}

__kernel void counters_add(__global float *sums, __global float *confusion, __global int *bad_step,
                           __global const float *logits, __global const float *per_sample,
                           __global const int *labels, __global const float *weights, int has_weights, int N,
                           int C, int step, __local int *pred)
{
    int lid = get_local_id(0), wg = get_local_size(0);
    for (int i = lid; i < N; i += wg) {
        __global const float *row = logits + (size_t)i * C;
        int best = 0;
        for (int c = 1; c < C; c++)
            if (row[c] > row[best]) best = c;
        pred[i] = best;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid != 0) return;
    int bad = 0;
    for (int i = 0; i < N; i++) {
        float w = has_weights ? weights[i] : 1.0f;
        float l = w * per_sample[i];
        int y = labels[i];
        bad |= nonfinite(l);
        kahan_add(sums, LOSS, l);
        kahan_add(sums, HITS, pred[i] == y ? w : 0.0f);
        kahan_add(sums, WEIGHT, w);
        sums[SAMPLES] += 1.0f;
        if (y >= 0 && y < C) confusion[(size_t)y * C + pred[i]] += 1.0f;
    }
    /* step < 0: an inference batch, which never stops training */
    if (bad && step >= 0 && bad_step[0] < 0) {
        bad_step[0] = step;
        sums[GUARD] = as_float(0x7fc00000u); /* NaN: the optimizer skips */
    }
}
