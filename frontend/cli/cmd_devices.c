/* cmd_devices.c — `tlcl devices [--json]`. */
#include "commands.h"
#include "tlcl_cl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

CLI_COMMAND(cli_devices, "devices", "", 0, 0,
    "List every OpenCL device of every platform, with its index.",
    CLI_FLAG_OPT("json", "the list as JSON"));

int cmd_devices(int argc, char **argv)
{
    cli_args a;
    if (cli_parse(&cli_devices, argc, argv, &a))
        return a.status;
    int json = cli_flag(&a, "json");
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
