/* dist.c — the ranks of an MPI job (dist.h): MPI when built with it and
 * launched by mpirun, else one rank whose collectives are no-ops. */
#include "dist.h"

#include <limits.h>
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

/* A gather of one rank: a copy. */
static tlcl_status gather_alone(const char *mine, size_t len, char **all, size_t *all_len, char *err, size_t err_len)
{
    *all = malloc(len + 1), *all_len = 0;
    if (!*all) {
        snprintf(err, err_len, "out of host memory gathering the results");
        return TLCL_ERR_OOM;
    }
    if (len)
        memcpy(*all, mine, len);
    *all_len = len;
    return TLCL_OK;
}

#ifdef TLCL_HAVE_MPI

/* The gradient buckets' non-blocking sums (tlcl_reducer.start/poll): a
 * communicator of their own, a duplicate of the world's, so their order
 * and that of the blocking sums (sync BN's, made while buckets are under
 * way) never have to match; one request per bucket of the step. Set up
 * with the world, process-wide like it. */
static struct {
    MPI_Comm comm;
    MPI_Request *req;
    int cap;
} buckets = {MPI_COMM_NULL, NULL, 0};

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
    if (MPI_Comm_dup(MPI_COMM_WORLD, &buckets.comm) != MPI_SUCCESS) {
        fprintf(stderr, "tlcl: MPI_Comm_dup failed: cannot set up the gradient sums\n");
        return -1;
    }
    MPI_Comm_set_errhandler(buckets.comm, MPI_ERRORS_RETURN);
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
    free(buckets.req);
    buckets.req = NULL, buckets.cap = 0;
    if (buckets.comm != MPI_COMM_NULL)
        MPI_Comm_free(&buckets.comm);
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

static tlcl_status bucket_start(int bucket, float *buf, size_t n, char *err, size_t err_len)
{
    if (world.size == 1)
        return TLCL_OK;
    if (bucket >= buckets.cap) {
        int cap = bucket + 16;
        MPI_Request *grown = realloc(buckets.req, (size_t)cap * sizeof *grown);
        if (!grown) {
            snprintf(err, err_len, "rank %d: out of host memory for the gradient buckets", world.rank);
            return TLCL_ERR_OOM;
        }
        for (int k = buckets.cap; k < cap; k++)
            grown[k] = MPI_REQUEST_NULL;
        buckets.req = grown, buckets.cap = cap;
    }
    if (n > (size_t)INT_MAX) {
        snprintf(err, err_len, "rank %d: gradient bucket %d holds %zu floats, more than MPI counts", world.rank,
                 bucket, n);
        return TLCL_ERR_ARG;
    }
    int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, buckets.comm, &buckets.req[bucket]);
    return rc == MPI_SUCCESS ? TLCL_OK : mpi_failed(rc, "a gradient bucket's sum", err, err_len);
}

static tlcl_status bucket_poll(int bucket, int *done, char *err, size_t err_len)
{
    *done = 1;
    if (world.size == 1 || bucket >= buckets.cap)
        return TLCL_OK;
    int rc = MPI_Test(&buckets.req[bucket], done, MPI_STATUS_IGNORE);
    return rc == MPI_SUCCESS ? TLCL_OK : mpi_failed(rc, "a gradient bucket's sum", err, err_len);
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

/* Byte counts are ints in MPI: a rank's share of a gather stays under 2 GiB. */
tlcl_status tlcl_dist_gather_bytes(const char *mine, size_t len, char **all, size_t *all_len, char *err,
                                   size_t err_len)
{
    int n = (int)len, *counts = NULL, *offsets = NULL, rc;
    size_t total = 0;
    if (world.size == 1)
        return gather_alone(mine, len, all, all_len, err, err_len);
    *all = NULL, *all_len = 0;
    if (len > (size_t)1 << 30) {
        snprintf(err, err_len, "rank %d: %zu bytes to gather is more than 1 GiB", world.rank, len);
        return TLCL_ERR_ARG;
    }
    if (world.rank == 0 && (!(counts = calloc((size_t)world.size, sizeof *counts)) ||
                            !(offsets = calloc((size_t)world.size, sizeof *offsets)))) {
        free(counts);
        snprintf(err, err_len, "out of host memory gathering the ranks' results");
        return TLCL_ERR_OOM; /* rank 0 stops, and with it the job */
    }
    if ((rc = MPI_Gather(&n, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD)) != MPI_SUCCESS) {
        free(counts), free(offsets);
        return mpi_failed(rc, "a gather", err, err_len);
    }
    for (int r = 0; world.rank == 0 && r < world.size; r++)
        offsets[r] = (int)total, total += (size_t)counts[r];
    if (world.rank == 0 && !(*all = malloc(total + 1))) {
        free(counts), free(offsets);
        snprintf(err, err_len, "out of host memory gathering the ranks' results");
        return TLCL_ERR_OOM;
    }
    rc = MPI_Gatherv(mine, n, MPI_CHAR, *all, counts, offsets, MPI_CHAR, 0, MPI_COMM_WORLD);
    free(counts), free(offsets);
    if (rc != MPI_SUCCESS) {
        free(*all);
        *all = NULL;
        return mpi_failed(rc, "a gather", err, err_len);
    }
    *all_len = total;
    return TLCL_OK;
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

void tlcl_dist_bcast_bytes(char *buf, size_t len)
{
    if (world.size > 1)
        MPI_Bcast(buf, (int)len, MPI_CHAR, 0, MPI_COMM_WORLD);
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

static tlcl_status bucket_start(int bucket, float *buf, size_t n, char *err, size_t err_len)
{
    (void)bucket, (void)buf, (void)n, (void)err, (void)err_len;
    return TLCL_OK;
}

static tlcl_status bucket_poll(int bucket, int *done, char *err, size_t err_len)
{
    (void)bucket, (void)err, (void)err_len;
    *done = 1;
    return TLCL_OK;
}

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

tlcl_status tlcl_dist_gather_bytes(const char *mine, size_t len, char **all, size_t *all_len, char *err,
                                   size_t err_len)
{
    return gather_alone(mine, len, all, all_len, err, err_len);
}

long tlcl_dist_min(long value) { return value; }
int tlcl_dist_bcast_int(int value) { return value; }

void tlcl_dist_bcast_bytes(char *buf, size_t len)
{
    (void)buf, (void)len;
}
void tlcl_dist_barrier(void) {}

#endif

static tlcl_status sum_floats_reducer(void *ctx, int replica, float *buf, size_t n, char *err, size_t err_len)
{
    (void)ctx, (void)replica;
    return tlcl_dist_sum_floats(buf, n, err, err_len);
}

static tlcl_status bucket_start_reducer(void *ctx, int replica, int bucket, float *buf, size_t n, char *err,
                                        size_t err_len)
{
    (void)ctx, (void)replica;
    return bucket_start(bucket, buf, n, err, err_len);
}

static tlcl_status bucket_poll_reducer(void *ctx, int replica, int bucket, int *done, char *err, size_t err_len)
{
    (void)ctx, (void)replica;
    return bucket_poll(bucket, done, err, err_len);
}

tlcl_reducer tlcl_dist_reducer(void)
{
    return (tlcl_reducer){.sum = sum_floats_reducer, .start = bucket_start_reducer, .poll = bucket_poll_reducer,
                          .ctx = NULL, .replica = 0};
}

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
