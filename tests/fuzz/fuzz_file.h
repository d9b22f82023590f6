/* fuzz_file.h — the fuzz targets whose reader takes a path write the input
 * to one temporary file per process (in /dev/shm when there is one: no
 * disk traffic at thousands of executions a second). tools/run_fuzz.sh's
 * fixed mode names a folder of its own in TLCL_FUZZ_TMPDIR instead: the
 * path then holds no process id, which would reach libFuzzer's comparison
 * traces (the paths in messages) and change its mutations from run to run. */
#ifndef TLCL_FUZZ_FILE_H
#define TLCL_FUZZ_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The path (ending in suffix) now holding data[0..size); exits on failure,
 * which is the harness's fault, not a finding. */
static char fuzz_path[256];

static void fuzz_file_remove(void) { remove(fuzz_path); }

static inline const char *fuzz_file(const uint8_t *data, size_t size, const char *suffix)
{
    char *path = fuzz_path;
    if (!path[0]) {
        const char *fixed_dir = getenv("TLCL_FUZZ_TMPDIR");
        if (fixed_dir && fixed_dir[0])
            snprintf(fuzz_path, sizeof fuzz_path, "%s/input%s", fixed_dir, suffix);
        else
            snprintf(fuzz_path, sizeof fuzz_path, "%s/tlcl_fuzz_%ld%s",
                     access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (long)getpid(), suffix);
        atexit(fuzz_file_remove); /* libFuzzer ends a timed run with exit() */
    }
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(path);
        exit(2);
    }
    return path;
}

#endif
