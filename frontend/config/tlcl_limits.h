/* tlcl_limits.h — limits that the configuration and the trainer share, so
 * that whatever the configuration accepts the trainer runs (one number, not
 * two that can drift apart). */
#ifndef TLCL_LIMITS_H
#define TLCL_LIMITS_H

/* Fine-tuning phases of one run: the `phases` list of the configuration
 * (config.h) and the phases of a training plan (trainer.h). */
#define TLCL_PHASES_MAX 8

/* The configuration file (config_yaml.c): at most this many bytes, and
 * mappings and lists nested at most this deep (libyaml's scanner takes time
 * quadratic in the depth: 100,000 nested '[' took 46 s; tlcl's own keys are
 * at most 4 levels deep). Documented in the README's configuration section. */
#define TLCL_CONFIG_MAX_BYTES (1024 * 1024)
#define TLCL_CONFIG_MAX_DEPTH 64

#define TLCL_LIMIT_STR_(x) #x
#define TLCL_LIMIT_STR(x) TLCL_LIMIT_STR_(x) /* "8" for TLCL_PHASES_MAX */

#endif
