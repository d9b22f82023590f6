/* dist.h — training across processes with MPI: one rank per process, each
 * with its own device; `mpirun -np N build/tlcl train CONFIG`.
 *
 * tlcl_dist_init starts MPI only when the process was launched by an MPI
 * launcher (Open MPI's OMPI_COMM_WORLD_SIZE, PMIx's PMIX_RANK, Hydra's
 * PMI_SIZE in the environment); otherwise, and in builds without MPI, the
 * process is the one rank of a world of one and every call below is a no-op
 * (a sum of one rank is the buffer itself). The world is process-wide state
 * like the device context: it is set once, in main, before any command.
 *
 * Every collective call (sum, same, bcast, barrier) must be made by every
 * rank, the same calls in the same order; the trainer makes them only at
 * points every rank reaches (each step, each epoch's end, each backup). A
 * failed collective (a rank that died) returns an error naming the rank and
 * MPI's reason; a command that fails under mpirun ends the whole job
 * (tlcl_dist_finish), so the other ranks never wait for ever. */
#ifndef TLCL_DIST_H
#define TLCL_DIST_H

#include "engine.h"

#include <stddef.h>

/* Starts MPI when launched by mpirun (see above). 0, or -1 with a message on stderr. */
int tlcl_dist_init(int *argc, char ***argv);
/* The end of the process: MPI_Finalize when status is 0, else MPI_Abort
 * with status (the other ranks stop too). Returns status. */
int tlcl_dist_finish(int status);

int tlcl_dist_rank(void);
int tlcl_dist_size(void);
/* Rank 0: the one rank that writes files, logs and prints. */
int tlcl_dist_is_root(void);

/* This rank's contiguous share [*lo, *hi) of a global batch of count
 * samples: rank r of N takes count*r/N .. count*(r+1)/N, so the global
 * order of samples never depends on N. */
void tlcl_dist_slice(int count, int *lo, int *hi);

/* Element-wise sums over the ranks, in place (every rank gets the same
 * bits). TLCL_OK, or an error with err naming what failed. */
tlcl_status tlcl_dist_sum_floats(float *buf, size_t n, char *err, size_t err_len);
tlcl_status tlcl_dist_sum_doubles(double *buf, size_t n, char *err, size_t err_len);
/* The tlcl_reducer of the ranks (engine.h): tlcl_dist_sum_floats. */
tlcl_reducer tlcl_dist_reducer(void);

/* 1 when every rank passed the same value, else 0 (also when the call failed). */
int tlcl_dist_same(long value);
/* Rank 0 receives every rank's bytes, in rank order, in *all (malloc'd,
 * *all_len bytes; the others get NULL and 0). TLCL_OK, or an error in err. */
tlcl_status tlcl_dist_gather_bytes(const char *mine, size_t len, char **all, size_t *all_len, char *err,
                                   size_t err_len);
/* The smallest value any rank passed (value itself when the call failed). */
long tlcl_dist_min(long value);
/* Rank 0's value, on every rank. */
int tlcl_dist_bcast_int(int value);
/* Rank 0's len bytes of buf, into every rank's buf. */
void tlcl_dist_bcast_bytes(char *buf, size_t len);
void tlcl_dist_barrier(void);

/* Rank 0 first: the other ranks wait in tlcl_dist_root_first_begin until
 * rank 0 reaches tlcl_dist_root_first_end (rank 0 returns at once from the
 * first and waits in the second): what rank 0 writes between the two (a
 * folder, a split file, a moved backup), the others then read. */
void tlcl_dist_root_first_begin(void);
void tlcl_dist_root_first_end(void);

/* Removes the MPI launcher's variables from this process's environment: a
 * child it starts (tlcl grid's runs) is then a plain process of its own,
 * not a second claimant of this rank. */
void tlcl_dist_forget_launcher(void);

#endif
