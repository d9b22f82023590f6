/* tlcl_limits.h — limits that the configuration and the trainer share, so
 * that whatever the configuration accepts the trainer runs (one number, not
 * two that can drift apart). */
#ifndef TLCL_LIMITS_H
#define TLCL_LIMITS_H

/* Fine-tuning phases of one run: the `phases` list of the configuration
 * (config.h) and the phases of a training plan (trainer.h). */
#define TLCL_PHASES_MAX 8

#define TLCL_LIMIT_STR_(x) #x
#define TLCL_LIMIT_STR(x) TLCL_LIMIT_STR_(x) /* "8" for TLCL_PHASES_MAX */

#endif
