/* fuzz_keras_import.c — the whole Keras import as `tlcl import` runs it
 * (tlcl_keras_open on a file: magic, zip or HDF5, superblock check, then
 * libhdf5 in a child process streaming the tensors back). The property
 * checked is the parent's: whatever libhdf5 does in the child (crash, hang,
 * garbage), tlcl_keras_open returns a status and a message. Leaks and
 * crashes inside the child are libhdf5's and are not reported (the child
 * ends with _exit; see in_child for the sanitizer's reports there). Each
 * execution forks, so this target runs at hundreds,
 * not thousands, of executions a second. */
#include "fuzz_file.h"
#include "keras_internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <sanitizer/common_interface_defs.h>

/* In tlcl's child only: libhdf5's memory errors there (ASan sees them
 * through its interceptors, e.g. an overlapping memcpy in H5HG_read) would
 * run libFuzzer's death callback, which reports them as this target's
 * crashes. The child instead dies quietly with a failure status, which is
 * exactly the case the parent must handle. */
static void child_death(void) { _exit(86); }

static int fixed_mode; /* TLCL_FUZZ_FIXED=1 (tools/run_fuzz.sh --fixed), read once at start */

static void in_child(void)
{
    __sanitizer_set_death_callback(child_death);
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0)
        dup2(null, 2);
    /* libhdf5 loops on some damaged files (one spun a core until tlcl's
     * 60 s silence limit): the harness ends the child after 0.5 s, so the
     * 1-second timeout measures tlcl's parent, not libhdf5. The parent
     * then reports the file corrupt, as it does after 60 s in tlcl.
     * tools/run_fuzz.sh's fixed mode (TLCL_FUZZ_FIXED=1, timeout 10 s)
     * counts the 0.5 s in the child's processor time instead, so that the
     * machine's load does not decide which children are ended, with 5 s
     * of wall time for a child that blocks. */
    signal(SIGALRM, SIG_DFL);
    signal(SIGPROF, SIG_DFL);
    struct itimerval half = {.it_value = {.tv_sec = 0, .tv_usec = 500000}};
    struct itimerval backstop = {.it_value = {.tv_sec = 5, .tv_usec = 0}};
    setitimer(ITIMER_REAL, fixed_mode ? &backstop : &half, NULL);
    if (fixed_mode)
        setitimer(ITIMER_PROF, &half, NULL);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *fixed = getenv("TLCL_FUZZ_FIXED");
    fixed_mode = fixed && strcmp(fixed, "1") == 0;
    pthread_atfork(NULL, NULL, in_child);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[2048];
    tlcl_keras_weights *w = NULL;
    const char *path = fuzz_file(data, size, ".weights.h5");
    if (tlcl_keras_open(&w, path, err, sizeof err) == TLCL_OK)
        tlcl_keras_classes(w);
    tlcl_keras_close(w);
    return 0;
}
