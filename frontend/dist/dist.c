/* dist.c — the ranks of an MPI job (dist.h): MPI when built with it and
 * launched by mpirun, else one rank whose collectives are no-ops. */
#include "dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef TLCL_HAVE_MPI
#include <mpi.h>
#endif

extern char **environ;

/* The world of this process: set once by tlcl_dist_init, then read-only. */
static struct {
    int rank, size, mpi;
} world = {0, 1, 0};

static int launched_by_mpirun(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_SIZE");
}

int tlcl_dist_rank(void) { return world.rank; }
int tlcl_dist_size(void) { return world.size; }
int tlcl_dist_is_root(void) { return world.rank == 0; }

void tlcl_dist_slice(int count, int *lo, int *hi)
{
    *lo = (int)((long long)count * world.rank / world.size);
    *hi = (int)((long long)count * (world.rank + 1) / world.size);
}

static tlcl_status sum_floats_reducer(void *ctx, int replica, float *buf, size_t n, char *err, size_t err_len)
{
    (void)ctx, (void)replica;
    return tlcl_dist_sum_floats(buf, n, err, err_len);
}

tlcl_reducer tlcl_dist_reducer(void)
{
    return (tlcl_reducer){.sum = sum_floats_reducer, .ctx = NULL, .replica = 0};
}

void tlcl_dist_forget_launcher(void)
{
    static const char *const prefixes[] = {"OMPI_", "PMIX_", "PMI_", "PRTE_"};
    for (int again = 1; again;) { /* unsetenv shifts environ: start over after each */
        again = 0;
        for (char **e = environ; e && *e && !again; e++)
            for (size_t k = 0; k < sizeof prefixes / sizeof prefixes[0] && !again; k++)
                if (strncmp(*e, prefixes[k], strlen(prefixes[k])) == 0) {
                    char name[256];
                    snprintf(name, sizeof name, "%.*s", (int)strcspn(*e, "="), *e);
                    unsetenv(name);
                    again = 1;
                }
    }
}

#ifdef TLCL_HAVE_MPI

int tlcl_dist_init(int *argc, char ***argv)
{
    if (!launched_by_mpirun())
        return 0;
    int provided = 0;
    /* serialized: a replica group's thread may make the outer sum, one call at a time */
    if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "tlcl: MPI_Init_thread failed: cannot join the MPI job\n");
        return -1;
    }
    world.mpi = 1;
    /* errors come back as codes: a dead peer becomes a message naming this rank, then an abort */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &world.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world.size);
    return 0;
}

int tlcl_dist_finish(int status)
{
    if (!world.mpi)
        return status;
    if (status != 0 && world.size > 1) {
        fprintf(stderr, "tlcl: rank %d of %d failed (exit status %d): stopping every rank of the MPI job\n",
                world.rank, world.size, status);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, status);
    }
    MPI_Finalize();
    return status;
}

static tlcl_status mpi_failed(int rc, const char *what, char *err, size_t err_len)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS)
        snprintf(text, sizeof text, "MPI error %d", rc);
    snprintf(err, err_len, "rank %d of %d: %s across the ranks failed: %s (did another rank stop? its own "
             "message names why)", world.rank, world.size, what, text);
    return TLCL_ERR_IO; /* the interconnect: I/O between the ranks */
}

/* MPI counts are ints: long buffers go in pieces. */
static tlcl_status sum_in_place(void *buf, size_t n, size_t elem, MPI_Datatype type, char *err, size_t err_len)
{
    const size_t chunk = (size_t)1 << 30;
    for (size_t off = 0; off < n; off += chunk) {
        size_t part = n - off < chunk ? n - off : chunk;
        int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + off * elem, (int)part, type, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS)
            return mpi_failed(rc, "a sum", err, err_len);
    }
    return TLCL_OK;
}

tlcl_status tlcl_dist_sum_floats(float *buf, size_t n, char *err, size_t err_len)
{
    return world.size > 1 ? sum_in_place(buf, n, sizeof *buf, MPI_FLOAT, err, err_len) : TLCL_OK;
}

tlcl_status tlcl_dist_sum_doubles(double *buf, size_t n, char *err, size_t err_len)
{
    return world.size > 1 ? sum_in_place(buf, n, sizeof *buf, MPI_DOUBLE, err, err_len) : TLCL_OK;
}

int tlcl_dist_same(long value)
{
    if (world.size == 1)
        return 1;
    long range[2] = {value, -value}; /* max of value and of -value: max and -min in one call */
    if (MPI_Allreduce(MPI_IN_PLACE, range, 2, MPI_LONG, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS)
        return 0;
    return range[0] == -range[1];
}

long tlcl_dist_min(long value)
{
    long v = value;
    if (world.size > 1 && MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_LONG, MPI_MIN, MPI_COMM_WORLD) != MPI_SUCCESS)
        return value;
    return v;
}

int tlcl_dist_bcast_int(int value)
{
    if (world.size > 1)
        MPI_Bcast(&value, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return value;
}

void tlcl_dist_barrier(void)
{
    if (world.size > 1)
        MPI_Barrier(MPI_COMM_WORLD);
}

#else /* one rank: nothing to sum with */

int tlcl_dist_init(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (launched_by_mpirun())
        fprintf(stderr, "tlcl: warning: launched by an MPI launcher, but this tlcl was built without MPI: every "
                        "process trains alone (install libopenmpi-dev and rebuild)\n");
    return 0;
}

int tlcl_dist_finish(int status) { return status; }

tlcl_status tlcl_dist_sum_floats(float *buf, size_t n, char *err, size_t err_len)
{
    (void)buf, (void)n, (void)err, (void)err_len;
    return TLCL_OK;
}

tlcl_status tlcl_dist_sum_doubles(double *buf, size_t n, char *err, size_t err_len)
{
    (void)buf, (void)n, (void)err, (void)err_len;
    return TLCL_OK;
}

int tlcl_dist_same(long value)
{
    (void)value;
    return 1;
}

long tlcl_dist_min(long value) { return value; }
int tlcl_dist_bcast_int(int value) { return value; }
void tlcl_dist_barrier(void) {}

#endif

void tlcl_dist_root_first_begin(void)
{
    if (!tlcl_dist_is_root())
        tlcl_dist_barrier();
}

void tlcl_dist_root_first_end(void)
{
    if (tlcl_dist_is_root())
        tlcl_dist_barrier();
}
