/* cl_helper.c — a second process that compiles part of a cold start
 * (tlcl_cl_helper_start in tlcl_cl.h says what and why).
 *
 * The two processes run the same sequence of jobs: program builds and the
 * first launch of each (kernel, local size), counted in the same order in
 * both. A job is claimed in a table in shared memory by whoever reaches it
 * first; the helper claims a launch only when it is at least LEAD jobs
 * ahead of the parent, so it compiles what the parent needs next while the
 * parent compiles what it needs now, and skips the launches the parent
 * owns (it runs no step of its own: its buffers' values do not matter).
 * The parent waits for a job the helper is doing and then does it again,
 * from the drivers' disk caches (PoCL publishes its files by rename, so a
 * file is whole or absent). Every wait is bounded: a helper that exits,
 * crashes or makes no progress for settings.helper_wait_s is given up
 * (killed and reaped) and the parent does the rest itself; a parent that
 * dies takes the helper with it (PR_SET_PDEATHSIG). */
#define _GNU_SOURCE
#include "cl_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

enum {
    ROLE_NONE = 0,
    ROLE_PARENT = 1,
    ROLE_HELPER = 2,
    SLOTS = 4096, /* a B0 training step has about 80 jobs, plus its cache entries */
    LEAD = 2,     /* the helper claims a launch this many jobs ahead of the parent */
    HELPER_FD = 3 /* the table's descriptor in the helper */
};
/* a slot holds a job's key with its state in the low two bits */
enum { BY_PARENT = 1, BY_HELPER = 2, DONE = 3 };

typedef struct cl_helper_table {
    _Atomic long parent_seq;  /* the job the parent is at */
    _Atomic long progress;    /* jobs the helper finished: the parent's sign of life */
    _Atomic int parent_pid;
    _Atomic int parent_saving; /* the parent has begun writing cache entries */
    _Atomic uint64_t slot[SLOTS];
} cl_helper_table;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void nap(void) { nanosleep(&(struct timespec){0, 1000000}, NULL); }

static uint64_t job_key(cl_job_kind kind, uint64_t key)
{
    unsigned k = kind;
    return (tlcl_hash_bytes(key, &k, sizeof k) | 4) & ~(uint64_t)3;
}

/* Claims k for owner: 0 when this call claimed it (or the table is full:
 * then both processes do it), else the slot's value. */
static uint64_t claim(cl_helper_table *t, uint64_t k, unsigned owner)
{
    for (size_t i = 0, at = k % SLOTS; i < SLOTS; i++, at = (at + 1) % SLOTS) {
        uint64_t v = 0;
        if (atomic_compare_exchange_strong(&t->slot[at], &v, k | owner))
            return 0;
        if ((v & ~(uint64_t)3) == k)
            return v;
    }
    return 0;
}

static _Atomic uint64_t *slot_of(cl_helper_table *t, uint64_t k)
{
    for (size_t i = 0, at = k % SLOTS; i < SLOTS; i++, at = (at + 1) % SLOTS) {
        uint64_t v = atomic_load(&t->slot[at]);
        if (v == 0)
            return NULL;
        if ((v & ~(uint64_t)3) == k)
            return &t->slot[at];
    }
    return NULL;
}

static int is_done(cl_helper_table *t, uint64_t k)
{
    _Atomic uint64_t *s = slot_of(t, k);
    return !s || (atomic_load(s) & 3) == DONE;
}

/* ---- the parent's side ------------------------------------------------- */

static void helper_warn(tlcl_cl *cl, const char *why)
{
    if (!cl->helper.warning[0] && why[0])
        snprintf(cl->helper.warning, sizeof cl->helper.warning,
                 "the compiling helper process %s; this process compiled the rest itself", why);
}

/* Records why the helper ended, from its wait status (exit 0 is a
 * failure only when it still had work). */
static void note_exit(tlcl_cl *cl, int st, int early)
{
    char why[160] = "";
    if (WIFEXITED(st) && (WEXITSTATUS(st) != 0 || early))
        snprintf(why, sizeof why, "exited with status %d before finishing its work", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(why, sizeof why, "was killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    if (why[0])
        helper_warn(cl, why);
}

/* The parent lets go of the helper: kills it (saying kill_why, "": no
 * warning) unless it has exited, reaps it, unmaps the table. */
static void parent_release(tlcl_cl *cl, const char *kill_why)
{
    cl_helper *h = &cl->helper;
    int st = 0;
    pid_t r = h->pid > 0 ? waitpid(h->pid, &st, WNOHANG) : -1;
    if (r == 0) {
        helper_warn(cl, kill_why);
        kill(h->pid, SIGKILL);
        waitpid(h->pid, &st, 0);
    } else if (r == h->pid) {
        note_exit(cl, st, 1);
    }
    h->pid = 0;
    munmap(h->table, sizeof *h->table);
    h->table = NULL;
    h->role = ROLE_NONE;
}

/* Whether the helper is still running (when it is not, it is let go). */
static int helper_alive(tlcl_cl *cl)
{
    siginfo_t info = {0};
    if (waitid(P_PID, (id_t)cl->helper.pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == 0)
        return 1; /* (a stopped helper counts as running: its progress tells) */
    parent_release(cl, "");
    return 0;
}

/* Waits for the helper to finish k; 0 when it gave up on the helper. */
static int wait_for_helper(tlcl_cl *cl, uint64_t k)
{
    cl_helper_table *t = cl->helper.table;
    long progress = atomic_load(&t->progress);
    double since = now_s();
    while (!is_done(t, k)) {
        if (!helper_alive(cl))
            return 0;
        long p = atomic_load(&t->progress);
        if (p != progress)
            progress = p, since = now_s();
        if (now_s() - since > cl->settings.helper_wait_s) {
            char why[120];
            snprintf(why, sizeof why, "finished nothing for %.0f s and was stopped", cl->settings.helper_wait_s);
            parent_release(cl, why);
            return 0;
        }
        nap();
    }
    return 1;
}

static cl_job parent_begin(tlcl_cl *cl, cl_job_kind kind, uint64_t k)
{
    cl_helper_table *t = cl->helper.table;
    if (kind != CL_JOB_SAVE)
        atomic_store(&t->parent_seq, cl->helper.seq);
    uint64_t v = claim(t, k, BY_PARENT);
    if (v == 0 || (v & 3) == BY_PARENT)
        return CL_JOB_MINE;
    double t0 = now_s();
    if (!wait_for_helper(cl, k))
        return CL_JOB_MINE;
    cl->stats.helper_jobs++;
    if (cl->settings.log_builds)
        fprintf(stderr, "tlcl: the helper's %s job: waited %.2f s for it\n",
                kind == CL_JOB_PROGRAM ? "program" : kind == CL_JOB_LAUNCH ? "first-launch" : "cache-entry",
                now_s() - t0);
    return kind == CL_JOB_SAVE ? CL_JOB_SKIP : CL_JOB_REUSE;
}

/* ---- the helper's side ------------------------------------------------- */

/* The helper waits (bounded) for a program the parent is building. */
static void wait_for_parent(tlcl_cl *cl, uint64_t k)
{
    cl_helper_table *t = cl->helper.table;
    double since = now_s();
    while (!is_done(t, k) && getppid() == atomic_load(&t->parent_pid) &&
           now_s() - since < cl->settings.helper_wait_s)
        nap();
}

/* TLCL_TEST_HELPER_FAULT: the helper fails right after its first claim. */
static void test_fault(const tlcl_cl *cl)
{
    if (strcmp(cl->settings.helper_fault, "exit") == 0)
        _exit(3);
    if (strcmp(cl->settings.helper_fault, "stall") == 0)
        raise(SIGSTOP);
}

static cl_job helper_begin(tlcl_cl *cl, cl_job_kind kind, uint64_t k)
{
    cl_helper_table *t = cl->helper.table;
    if (kind == CL_JOB_LAUNCH && cl->helper.seq < atomic_load(&t->parent_seq) + LEAD)
        return CL_JOB_SKIP; /* the parent is there already, or about to be */
    uint64_t v = claim(t, k, BY_HELPER);
    if (v == 0) {
        test_fault(cl);
        return CL_JOB_MINE;
    }
    if (kind != CL_JOB_PROGRAM)
        return CL_JOB_SKIP;
    wait_for_parent(cl, k); /* the helper needs every program for its later launches */
    return CL_JOB_REUSE;
}

/* ---- both sides -------------------------------------------------------- */

cl_job cl_helper_begin(tlcl_cl *cl, cl_job_kind kind, uint64_t key)
{
    if (!cl->helper.table)
        return CL_JOB_MINE;
    if (kind != CL_JOB_SAVE)
        cl->helper.seq++;
    uint64_t k = job_key(kind, key);
    return cl->helper.role == ROLE_PARENT ? parent_begin(cl, kind, k) : helper_begin(cl, kind, k);
}

void cl_helper_end(tlcl_cl *cl, cl_job_kind kind, uint64_t key)
{
    if (!cl->helper.table)
        return;
    uint64_t k = job_key(kind, key);
    _Atomic uint64_t *s = slot_of(cl->helper.table, k);
    if (s)
        atomic_store(s, k | DONE);
    if (cl->helper.role == ROLE_HELPER)
        atomic_fetch_add(&cl->helper.table->progress, 1);
}

void cl_helper_launch_done(tlcl_cl *cl, cl_job job, uint64_t key)
{
    if (job != CL_JOB_MINE || cl->helper.role != ROLE_HELPER)
        return;
    clFinish(cl->queue); /* the work-group function is compiled (and on disk) once the launch has run */
    cl_helper_end(cl, CL_JOB_LAUNCH, key);
}

/* The helper writes cache entries only once the parent writes its own:
 * before that the parent's steps run on every core (a low priority is no
 * answer: on a busy machine the parent would then wait for a starved
 * helper's entry). */
void cl_helper_saving(tlcl_cl *cl)
{
    cl_helper_table *t = cl->helper.table;
    if (cl->helper.role == ROLE_PARENT)
        atomic_store(&t->parent_saving, 1);
    while (cl->helper.role == ROLE_HELPER && !atomic_load(&t->parent_saving) &&
           getppid() == atomic_load(&t->parent_pid))
        nanosleep(&(struct timespec){0, 20000000}, NULL);
}

tlcl_status cl_helper_attach(tlcl_cl *cl, char *err, size_t err_len)
{
    int fd = cl->settings.helper_fd;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    cl_helper_table *t = mmap(NULL, sizeof *t, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (t == MAP_FAILED) {
        snprintf(err, err_len, "TLCL_HELPER_FD=%d: cannot map the compiling helper's table: %s "
                 "(the variable is set by tlcl for its own helper process only)", fd, strerror(errno));
        return TLCL_ERR_ARG;
    }
    if (getppid() != atomic_load(&t->parent_pid)) {
        munmap(t, sizeof *t);
        snprintf(err, err_len, "the compiling helper's parent process has gone");
        return TLCL_ERR_ARG;
    }
    cl->helper.table = t;
    cl->helper.role = ROLE_HELPER;
    return TLCL_OK;
}

void cl_helper_detach(tlcl_cl *cl)
{
    cl_helper *h = &cl->helper;
    if (h->role == ROLE_HELPER) { /* after its cache entries: tlcl_cl_free */
        munmap(h->table, sizeof *h->table);
        h->table = NULL;
        h->role = ROLE_NONE;
    }
    tlcl_cl_helper_stop(cl);
}

void tlcl_cl_helper_stop(tlcl_cl *cl)
{
    cl_helper *h = &cl->helper;
    if (h->role != ROLE_PARENT)
        return;
    /* normally it has nothing left to do: a short grace, then it is killed */
    double grace = cl->settings.helper_wait_s < 5 ? cl->settings.helper_wait_s : 5, since = now_s();
    int st = 0;
    pid_t r;
    while ((r = waitpid(h->pid, &st, WNOHANG)) == 0 && now_s() - since < grace)
        nap();
    if (r == h->pid) {
        note_exit(cl, st, 0);
        h->pid = 0;
    }
    parent_release(cl, ""); /* this process did its work: a helper still running only filled caches */
}

/* ---- starting it ------------------------------------------------------- */

/* This environment with TLCL_HELPER_FD=HELPER_FD added (malloc'd). */
static char **helper_environment(void)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 2, sizeof *env);
    if (!env)
        return NULL;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "TLCL_HELPER_FD=", 15) != 0)
            env[m++] = environ[i];
    static char fd_var[] = "TLCL_HELPER_FD=3";
    env[m] = fd_var;
    return env;
}

/* Starts exe with the table's descriptor as HELPER_FD and /dev/null as its
 * standard streams; 0 or an errno. */
static int spawn(const char *exe, char *const argv[], int fd, pid_t *pid)
{
    char **env = helper_environment();
    if (!env)
        return ENOMEM;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none;
    sigemptyset(&none);
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    posix_spawn_file_actions_adddup2(&fa, fd, HELPER_FD); /* fd is above HELPER_FD (see helper_start) */
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawn(pid, exe, &fa, &attr, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    free(env);
    return rc;
}

/* A close-on-exec descriptor of a shared table, above HELPER_FD; -1. */
static int table_fd(void)
{
    int fd = memfd_create("tlcl-helper", MFD_CLOEXEC);
    if (fd >= 0 && fd <= HELPER_FD) {
        int high = fcntl(fd, F_DUPFD_CLOEXEC, HELPER_FD + 1);
        close(fd);
        fd = high;
    }
    if (fd >= 0 && ftruncate(fd, sizeof(cl_helper_table)) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

int tlcl_cl_helper_start(tlcl_cl *cl, char *const argv[])
{
    char full[2048];
    cl->helper.warning[0] = '\0';
    cl_program_options(cl, "", full, sizeof full);
    if (!cl->settings.compile_helper || cl->helper.role != ROLE_NONE || cl->settings.helper_fd >= 0 ||
        strcmp(cl->real.type, "cpu") != 0 || cl_program_cached(cl, "elementwise", full))
        return 0; /* every model builds "elementwise" first: when it is cached, so are the others */
    int fd = table_fd();
    cl_helper_table *t = fd < 0 ? MAP_FAILED : mmap(NULL, sizeof *t, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (t == MAP_FAILED) {
        snprintf(cl->helper.warning, sizeof cl->helper.warning, "no compiling helper process: shared memory: %s",
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        return 0;
    }
    atomic_store(&t->parent_pid, (int)getpid());
    const char *exe = strcmp(cl->settings.helper_fault, "exec") == 0 ? "/nonexistent/tlcl" : "/proc/self/exe";
    pid_t pid;
    int rc = spawn(exe, argv, fd, &pid);
    close(fd);
    if (rc != 0) {
        munmap(t, sizeof *t);
        snprintf(cl->helper.warning, sizeof cl->helper.warning,
                 "the compiling helper process did not start (%s: %s); this process compiled everything itself",
                 exe, strerror(rc));
        return 0;
    }
    cl->helper = (cl_helper){.role = ROLE_PARENT, .table = t, .pid = pid};
    return 1;
}

int tlcl_cl_is_helper(const tlcl_cl *cl) { return cl->helper.role == ROLE_HELPER; }

const char *tlcl_cl_helper_warning(const tlcl_cl *cl) { return cl->helper.warning; }
