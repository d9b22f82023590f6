/* fuzz_config.c — the configuration loader, the whole path `tlcl train`
 * takes: read the file (size and nesting limits), libyaml's document,
 * the schema walk with every setter, then tlcl_config_finalize (the checks
 * across keys) and tlcl_config_dump (the effective configuration). */
#include "config.h"
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tlcl_config c; /* large: kept off the stack */
    char err[1024];
    const char *path = fuzz_file(data, size, ".yaml");
    int loaded = tlcl_config_load(&c, path, err, sizeof err) == TLCL_OK;
    c.run_time = 0; /* {DATE} alike in every run: the clock would reach libFuzzer's comparison traces */
    if (loaded && tlcl_config_finalize(&c, err, sizeof err) == TLCL_OK) {
        FILE *sink = fopen("/dev/null", "w");
        if (sink) {
            tlcl_config_dump(&c, sink);
            fclose(sink);
        }
    }
    tlcl_config_free(&c);
    return 0;
}
