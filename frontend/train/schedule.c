/* schedule.c — the learning rate of a step under the configured schedule
 * (Keras's StepDecay-style steps, ExponentialDecay and CosineDecay with
 * warm-up; reduce-on-plateau is the trainer's callback). */
#include "trainer.h"

#include <math.h>

float tlcl_schedule_lr(const tlcl_schedule *s, float base, long step, int epoch)
{
    switch (s->kind) {
    case TLCL_LR_STEP:
        return base * powf(s->factor, (float)(s->step_epochs > 0 ? epoch / s->step_epochs : 0));
    case TLCL_LR_EXPONENTIAL: {
        double e = s->decay_steps > 0 ? (double)step / s->decay_steps : 0;
        return (float)(base * pow(s->decay_rate, s->staircase ? floor(e) : e));
    }
    case TLCL_LR_COSINE: {
        double start = base, peak = s->warmup_target > 0 ? s->warmup_target : base;
        if (s->warmup_steps > 0 && step < s->warmup_steps)
            return (float)(start + (peak - start) * step / s->warmup_steps);
        long k = step - (s->warmup_target > 0 ? s->warmup_steps : 0);
        k = k < 0 ? 0 : k > s->decay_steps ? s->decay_steps : k;
        double d = s->decay_steps > 0 ? 0.5 * (1 + cos(3.14159265358979323846 * k / s->decay_steps)) : 1;
        return (float)(peak * ((1 - s->alpha) * d + s->alpha));
    }
    default:
        return base;
    }
}

