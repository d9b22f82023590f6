/* cl_profile.c — per-kernel device time from OpenCL profiling events, for
 * `tlcl bench`. Launch events are kept with their kernel until collected,
 * then summed by the kernel's function name (copied: callers' name strings
 * may live on their stack). */
#include "cl_internal.h"

#include <stdlib.h>
#include <string.h>

void cl_profile_push(tlcl_cl *cl, cl_event ev, cl_kernel kernel)
{
    if (cl->nevents == cl->cap_events) {
        int cap = cl->cap_events ? 2 * cl->cap_events : 1024;
        cl_event *e = realloc(cl->events, (size_t)cap * sizeof *e);
        cl_kernel *n = e ? realloc(cl->event_kernels, (size_t)cap * sizeof *n) : NULL;
        if (e)
            cl->events = e;
        if (!e || !n) {
            clReleaseEvent(ev);
            return;
        }
        cl->event_kernels = n;
        cl->cap_events = cap;
    }
    cl->events[cl->nevents] = ev;
    cl->event_kernels[cl->nevents++] = kernel;
}

static struct cl_profile_total *total_for(tlcl_cl *cl, cl_kernel k)
{
    char name[128] = "?";
    clGetKernelInfo(k, CL_KERNEL_FUNCTION_NAME, sizeof name, name, NULL);
    name[sizeof name - 1] = '\0';
    for (int i = 0; i < cl->ntotals; i++)
        if (strcmp(cl->totals[i].name, name) == 0)
            return &cl->totals[i];
    if (cl->ntotals == cl->cap_totals) {
        int cap = cl->cap_totals ? 2 * cl->cap_totals : 64;
        struct cl_profile_total *t = realloc(cl->totals, (size_t)cap * sizeof *t);
        if (!t)
            return NULL;
        cl->totals = t;
        cl->cap_totals = cap;
    }
    cl->totals[cl->ntotals] = (struct cl_profile_total){strdup(name), 0, 0};
    return &cl->totals[cl->ntotals++];
}

tlcl_status tlcl_cl_profile_collect(tlcl_cl *cl)
{
    tlcl_status s = tlcl_cl_finish(cl);
    for (int i = 0; i < cl->nevents; i++) {
        cl_ulong start = 0, end = 0;
        clGetEventProfilingInfo(cl->events[i], CL_PROFILING_COMMAND_START, sizeof start, &start, NULL);
        clGetEventProfilingInfo(cl->events[i], CL_PROFILING_COMMAND_END, sizeof end, &end, NULL);
        struct cl_profile_total *t = total_for(cl, cl->event_kernels[i]);
        if (t && end >= start) {
            t->ms += (double)(end - start) * 1e-6;
            t->calls++;
        }
        clReleaseEvent(cl->events[i]);
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
        clReleaseEvent(cl->events[i]);
    cl->nevents = 0;
    for (int i = 0; i < cl->ntotals; i++)
        free((char *)cl->totals[i].name);
    cl->ntotals = 0;
}
