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
    /* under TLCL_DEVICE_PROFILE every device shows what a context on it plans with */
    tlcl_settings settings = tlcl_settings_from_env();
    const tlcl_device_profile *profile;
    if (tlcl_device_profile_of(settings.device_profile, &profile, err, sizeof err) != TLCL_OK) {
        fprintf(stderr, "tlcl: %s\n", err);
        free(devs);
        return 1;
    }
    for (int i = 0; profile && i < n; i++)
        devs[i] = tlcl_device_profile_apply(profile, &devs[i]);
    if (json) {
        char *s = tlcl_devices_json(devs, n);
        printf("%s\n", s ? s : "[]");
        free(s);
    } else {
        int def = tlcl_devices_default(devs, n);
        if (profile)
            printf("device profile in force: %s, %s (TLCL_DEVICE_PROFILE): type, limits and widths below are "
                   "the emulated GPU's, bounded by each device's own\n", profile->name, profile->model);
        printf("%-3s %-5s %-28s %-40s %4s %9s %9s %6s %6s %3s %s\n", "idx", "type", "platform", "device", "CUs",
               "mem MiB", "alloc MiB", "wg", "lmem K", "vec", "OpenCL C");
        for (int i = 0; i < n; i++) {
            const tlcl_device_info *d = &devs[i];
            printf("%-3d %-5s %-28.28s %-40.40s %4u %9llu %9llu %6zu %6llu %3u %s%s\n", d->index, d->type,
                   d->platform_name, d->name, d->compute_units, (unsigned long long)(d->global_mem_bytes >> 20),
                   (unsigned long long)(d->max_alloc_bytes >> 20), d->max_work_group_size,
                   (unsigned long long)(d->local_mem_bytes >> 10), d->float_vector_width, d->opencl_c_version,
                   i == def ? "  (default)" : "");
        }
    }
    free(devs);
    return 0;
}
