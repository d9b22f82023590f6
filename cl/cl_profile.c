/* cl_profile.c — device time from OpenCL profiling events, for `tlcl bench`:
 * per kernel (summed by function name) and per layer scope. Launch events are
 * kept with their kernel and the scope they ran in until collected. Scopes
 * live here, in the device context, so the layers above need only name a
 * layer before launching its kernels: the kernels themselves never know.
 * Names are copied (callers' strings may live on their stack). */
#include "cl_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

int tlcl_cl_profiling(const tlcl_cl *cl) { return cl->profiling; }

static int grow(void **arr, int *cap, int n, size_t elem, int first)
{
    if (n < *cap)
        return 0;
    int ncap = *cap ? 2 * *cap : first;
    void *p = realloc(*arr, (size_t)ncap * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

void cl_profile_push(tlcl_cl *cl, cl_event ev, cl_kernel kernel)
{
    if (grow((void **)&cl->events, &cl->cap_events, cl->nevents, sizeof *cl->events, 1024)) {
        clReleaseEvent(ev); /* out of memory: the profile misses this launch */
        return;
    }
    cl->events[cl->nevents++] = (struct cl_profile_event){ev, kernel, cl->scope, cl->scope_phase};
}

/* The layer's index, added when new; -1 when out of memory. A linear search:
 * a network has a few hundred scopes at most, and this runs only when
 * profiling. */
static int layer_index(tlcl_cl *cl, const char *name)
{
    for (int i = 0; i < cl->nlayers; i++)
        if (strcmp(cl->layers[i].name, name) == 0)
            return i;
    char *copy = strdup(name);
    if (!copy || grow((void **)&cl->layers, &cl->cap_layers, cl->nlayers, sizeof *cl->layers, 64)) {
        free(copy);
        return -1;
    }
    cl->layers[cl->nlayers] = (tlcl_cl_layer_profile){.name = copy};
    return cl->nlayers++;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + 1e-6 * (double)t.tv_nsec;
}

/* Host timing: waits for the current scope's launches and charges them to
 * it (time outside any scope is not charged: it may be the host idle). */
static void charge_scope(tlcl_cl *cl)
{
    tlcl_cl_finish(cl);
    double now = now_ms();
    if (cl->scope >= 0)
        cl->layers[cl->scope].ms[cl->scope_phase] += now - cl->scope_since;
    cl->scope_since = now;
}

void tlcl_cl_profile_host_timing(tlcl_cl *cl, int on)
{
    cl->host_timing = on;
    cl->scope_since = now_ms();
}

void tlcl_cl_profile_scope(tlcl_cl *cl, const char *layer, tlcl_cl_phase phase, double flops, double bytes)
{
    if (!cl->profiling)
        return;
    if (cl->host_timing)
        charge_scope(cl);
    cl->scope = layer ? layer_index(cl, layer) : -1;
    cl->scope_phase = phase;
    if (cl->scope < 0)
        return;
    tlcl_cl_layer_profile *l = &cl->layers[cl->scope];
    l->flops[phase] += flops;
    l->bytes[phase] += bytes;
    l->passes[phase]++;
}

int tlcl_cl_profile_layers(const tlcl_cl *cl, const tlcl_cl_layer_profile **out)
{
    *out = cl->layers;
    return cl->nlayers;
}

static struct cl_profile_total *total_for(tlcl_cl *cl, cl_kernel k)
{
    char name[128] = "?";
    clGetKernelInfo(k, CL_KERNEL_FUNCTION_NAME, sizeof name, name, NULL);
    name[sizeof name - 1] = '\0';
    for (int i = 0; i < cl->ntotals; i++)
        if (strcmp(cl->totals[i].name, name) == 0)
            return &cl->totals[i];
    char *copy = strdup(name);
    if (!copy || grow((void **)&cl->totals, &cl->cap_totals, cl->ntotals, sizeof *cl->totals, 64)) {
        free(copy);
        return NULL;
    }
    cl->totals[cl->ntotals] = (struct cl_profile_total){copy, 0, 0};
    return &cl->totals[cl->ntotals++];
}

tlcl_status tlcl_cl_profile_collect(tlcl_cl *cl)
{
    if (cl->host_timing)
        charge_scope(cl); /* the last scope's launches */
    tlcl_status s = tlcl_cl_finish(cl);
    for (int i = 0; i < cl->nevents; i++) {
        const struct cl_profile_event *e = &cl->events[i];
        cl_ulong start = 0, end = 0;
        clGetEventProfilingInfo(e->ev, CL_PROFILING_COMMAND_START, sizeof start, &start, NULL);
        clGetEventProfilingInfo(e->ev, CL_PROFILING_COMMAND_END, sizeof end, &end, NULL);
        clReleaseEvent(e->ev);
        if (end < start)
            continue;
        double ms = (double)(end - start) * 1e-6;
        struct cl_profile_total *t = total_for(cl, e->kernel);
        if (t) {
            t->ms += ms;
            t->calls++;
        }
        int layer = e->layer >= 0 ? e->layer : layer_index(cl, TLCL_PROFILE_UNSCOPED);
        if (layer >= 0 && !cl->host_timing)
            cl->layers[layer].ms[e->layer >= 0 ? e->phase : TLCL_PHASE_FWD] += ms;
    }
    cl->nevents = 0;
    return s;
}

static int by_time(const void *a, const void *b)
{
    double d = ((const struct cl_profile_total *)b)->ms - ((const struct cl_profile_total *)a)->ms;
    return (d > 0) - (d < 0);
}

void tlcl_cl_profile_report(tlcl_cl *cl, FILE *f, double scale)
{
    qsort(cl->totals, (size_t)cl->ntotals, sizeof *cl->totals, by_time);
    double all = 0;
    for (int i = 0; i < cl->ntotals; i++)
        all += cl->totals[i].ms;
    fprintf(f, "%-32s %10s %8s %6s\n", "kernel", "ms/step", "calls", "share");
    for (int i = 0; i < cl->ntotals; i++)
        fprintf(f, "%-32s %10.2f %8.1f %5.1f%%\n", cl->totals[i].name, cl->totals[i].ms * scale,
                cl->totals[i].calls * scale, all > 0 ? 100.0 * cl->totals[i].ms / all : 0.0);
    fprintf(f, "%-32s %10.2f\n", "total device time", all * scale);
}

void tlcl_cl_profile_reset(tlcl_cl *cl)
{
    for (int i = 0; i < cl->nevents; i++)
        clReleaseEvent(cl->events[i].ev);
    cl->nevents = 0;
    for (int i = 0; i < cl->ntotals; i++)
        free((char *)cl->totals[i].name);
    cl->ntotals = 0;
    for (int i = 0; i < cl->nlayers; i++)
        free(cl->layers[i].name);
    cl->nlayers = 0;
    cl->scope = -1;
    cl->scope_since = now_ms();
}
