/* bench_child.c — a `tlcl bench` run in a child process (see
 * bench_child.h). The child is this executable (/proc/self/exe), so parent
 * and child always agree on options and JSON. The caches are moved through
 * the variables each runtime documents: TLCL_CACHE_DIR (tlcl's programs and
 * GEMM choice), POCL_CACHE_DIR (PoCL's kernel cache), MESA_SHADER_CACHE_DIR
 * (Mesa: Rusticl), CUDA_CACHE_PATH (NVIDIA), NEO_CACHE_DIR (Intel). */
#include "bench_child.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

__attribute__((format(printf, 2, 3))) static void add_arg(bench_argv *a, const char *fmt, ...)
{
    if (a->n == BENCH_MAX_ARGS)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->text[a->n], sizeof a->text[a->n], fmt, ap);
    va_end(ap);
    a->argv[a->n] = a->text[a->n];
    a->argv[++a->n] = NULL;
}

void bench_argv_build(bench_argv *a, const bench_options *o, int device, int steps, int warmup, int peaks,
                      const char *json_path, int profile)
{
    a->n = 0;
    add_arg(a, "tlcl");
    add_arg(a, "bench");
    add_arg(a, "--device=%d", device);
    add_arg(a, "--arch=%s", o->arch);
    add_arg(a, "--batch=%d", o->batch);
    add_arg(a, "--size=%d", o->size);
    add_arg(a, "--mode=%s", bench_mode_name(o->mode));
    add_arg(a, "--precision=%s", o->activations == TLCL_BF16 ? "mixed_bfloat16" : "float32");
    add_arg(a, "--steps=%d", steps);
    add_arg(a, "--warmup=%d", warmup);
    if (json_path)
        add_arg(a, "--json=%s", json_path);
    if (!peaks)
        add_arg(a, "--no-peaks");
    if (profile)
        add_arg(a, "--profile");
}

/* In the child, before exec: every cache under root (created if needed). */
static void move_caches(const char *root)
{
    static const char *vars[][2] = {{"TLCL_CACHE_DIR", "tlcl"},
                                    {"POCL_CACHE_DIR", "pocl"},
                                    {"MESA_SHADER_CACHE_DIR", "mesa"},
                                    {"CUDA_CACHE_PATH", "cuda"},
                                    {"NEO_CACHE_DIR", "neo"}};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        char dir[1200];
        snprintf(dir, sizeof dir, "%s/%s", root, vars[i][1]);
        mkdir(dir, 0700); /* PoCL uses its directory only when it exists */
        setenv(vars[i][0], dir, 1);
    }
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Waits for pid; returns 1 when it ran past timeout_s and was killed. */
static int wait_child(pid_t pid, int timeout_s, int *status)
{
    double end = now_s() + timeout_s;
    for (;;) {
        pid_t r = waitpid(pid, status, timeout_s > 0 ? WNOHANG : 0);
        if (r == pid || (r < 0 && errno != EINTR))
            return 0;
        if (timeout_s > 0 && now_s() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, status, 0);
            return 1;
        }
        if (r == 0)
            nanosleep(&(struct timespec){0, 20000000}, NULL);
    }
}

/* 0 when the child exited with status 0; otherwise -1 and why. */
static int spawn(const bench_child *c, char *why, size_t why_len)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        snprintf(why, why_len, "cannot find the tlcl executable (/proc/self/exe): %s", strerror(errno));
        return -1;
    }
    exe[n] = '\0';
    bench_argv a;
    const bench_options *o = c->run;
    bench_argv_build(&a, o, c->device, c->start_only ? 1 : o->steps, c->start_only ? 1 : o->warmup,
                     o->peaks && !c->start_only, c->json_path, c->profile);
    fflush(stdout); /* the child must not print our buffered output again */
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, why_len, "fork failed: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        if (c->cache_root)
            move_caches(c->cache_root);
        int null = c->quiet ? open("/dev/null", O_WRONLY) : -1;
        if (null >= 0)
            dup2(null, STDOUT_FILENO);
        execv(exe, a.argv);
        fprintf(stderr, "tlcl bench: cannot run %s: %s\n", exe, strerror(errno));
        _exit(127);
    }
    int st = 0;
    if (wait_child(pid, c->timeout_s, &st))
        snprintf(why, why_len, "timed out after %d s", c->timeout_s);
    else if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    else if (WIFEXITED(st))
        snprintf(why, why_len, "exited with status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(why, why_len, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    return -1;
}

static cJSON *read_json(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *text = NULL;
    long len = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (len > 0 && fseek(f, 0, SEEK_SET) == 0 && (text = malloc((size_t)len + 1)) != NULL) {
        size_t got = fread(text, 1, (size_t)len, f);
        text[got] = '\0';
    }
    fclose(f);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    return j;
}

cJSON *bench_child_run(const bench_child *c, char *why, size_t why_len)
{
    remove(c->json_path); /* a stale file must not pass for this run's result */
    why[0] = '\0';
    int rc = spawn(c, why, why_len);
    cJSON *j = read_json(c->json_path);
    if (!j && !why[0])
        snprintf(why, why_len, "wrote no result%s", rc ? "" : " (exit status 0)");
    return j;
}
