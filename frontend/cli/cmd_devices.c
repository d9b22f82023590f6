/* cmd_devices.c — `tlcl devices [--json]`. */
#include "commands.h"
#include "tlcl_cl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_device_index(int argc, char **argv)
{
    const char *v = getenv("TLCL_DEVICE");
    const char *src = "TLCL_DEVICE";
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], "--device=", 9) == 0) {
            v = argv[i] + 9;
            src = "--device";
        }
    if (!v || !v[0])
        return -1;
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || n < 0 || n > 1000000) {
        fprintf(stderr, "tlcl: %s=%s is not a device index; run `tlcl devices` to list them\n", src, v);
        return -2;
    }
    return (int)n;
}

int cmd_devices(int argc, char **argv)
{
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else {
            fprintf(stderr, "tlcl devices: unknown option '%s' (expected --json)\n", argv[i]);
            return 2;
        }
    }
    tlcl_device_info *devs;
    int n;
    char err[1024];
    if (tlcl_devices_list(&devs, &n, err, sizeof err) != TLCL_OK) {
        fprintf(stderr, "tlcl: %s\n", err);
        return 1;
    }
    if (json) {
        char *s = tlcl_devices_json(devs, n);
        printf("%s\n", s ? s : "[]");
        free(s);
    } else {
        int def = tlcl_devices_default(devs, n);
        printf("%-3s %-5s %-28s %-40s %4s %9s %9s %6s %s\n", "idx", "type", "platform", "device", "CUs", "mem MiB",
               "alloc MiB", "wg", "OpenCL C");
        for (int i = 0; i < n; i++) {
            const tlcl_device_info *d = &devs[i];
            printf("%-3d %-5s %-28.28s %-40.40s %4u %9llu %9llu %6zu %s%s\n", d->index, d->type, d->platform_name,
                   d->name, d->compute_units, (unsigned long long)(d->global_mem_bytes >> 20),
                   (unsigned long long)(d->max_alloc_bytes >> 20), d->max_work_group_size, d->opencl_c_version,
                   i == def ? "  (default)" : "");
        }
    }
    free(devs);
    return 0;
}
