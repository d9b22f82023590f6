/* replicas.h — the devices and models of data parallelism in one process
 * (train.config.devices): replica 0 is the run's own device and model, this
 * opens the others. */
#ifndef TLCL_REPLICAS_H
#define TLCL_REPLICAS_H

#include "config.h"
#include "run.h"

#include <stdio.h>

typedef struct tlcl_replicas {
    int n;                               /* replicas beyond the first */
    tlcl_cl *cl[TLCL_GROUP_MAX];
    tlcl_engine *eng[TLCL_GROUP_MAX];
    tlcl_model model[TLCL_GROUP_MAX];
    tlcl_model *models[TLCL_GROUP_MAX];  /* &model[i], for tlcl_train_plan.replicas */
    int built;
} tlcl_replicas;

/* Opens train.config.devices[1..] and gives every engine (eng0's too) the
 * largest parameter alignment of the devices: call before replica 0's
 * model is allocated. An unusable index is an error naming it. */
tlcl_status tlcl_replicas_open(tlcl_replicas *r, const tlcl_config *c, tlcl_engine *eng0, char *err, size_t len);
/* Each replica's model, built with o and allocated (the group copies
 * replica 0's weights into it). */
tlcl_status tlcl_replicas_models(tlcl_replicas *r, const tlcl_model_options *o, uint32_t seed, char *err, size_t len);
void tlcl_replicas_close(tlcl_replicas *r);
/* "replicas: 2; replica 0: PLATFORM / DEVICE; replica 1: ..." (nothing for one device). */
void tlcl_replicas_describe(const tlcl_replicas *r, tlcl_engine *eng0, FILE *f);

#endif
