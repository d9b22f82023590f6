/* cl_devices.c — enumerates every device of every OpenCL platform under one
 * global index, and renders the list as JSON for `tlcl devices --json`. */
#include "tlcl_cl.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void device_string(cl_device_id d, cl_device_info what, char *dst, size_t len)
{
    dst[0] = '\0';
    if (clGetDeviceInfo(d, what, len, dst, NULL) != CL_SUCCESS)
        snprintf(dst, len, "?");
    dst[len - 1] = '\0';
}

static int device_has_extension(cl_device_id d, const char *ext)
{
    size_t len = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, 0, NULL, &len) != CL_SUCCESS || len == 0)
        return 0;
    char *all = malloc(len + 1);
    if (!all)
        return 0;
    int found = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, len, all, NULL) == CL_SUCCESS) {
        all[len] = '\0';
        size_t n = strlen(ext);
        for (const char *p = strstr(all, ext); p && !found; p = strstr(p + 1, ext))
            found = (p == all || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0');
    }
    free(all);
    return found;
}

/* The warp (NVIDIA) or wavefront (AMD) width their attribute-query
 * extensions report; 0 elsewhere (not reported). */
static unsigned device_simd_width(cl_device_id d)
{
    enum { WARP_SIZE_NV = 0x4003, WAVEFRONT_WIDTH_AMD = 0x4043 }; /* cl_ext.h's values */
    cl_uint w = 0;
    if (device_has_extension(d, "cl_nv_device_attribute_query"))
        clGetDeviceInfo(d, WARP_SIZE_NV, sizeof w, &w, NULL);
    else if (device_has_extension(d, "cl_amd_device_attribute_query"))
        clGetDeviceInfo(d, WAVEFRONT_WIDTH_AMD, sizeof w, &w, NULL);
    return w;
}

static const char *device_type_name(cl_device_type t)
{
    if (t & CL_DEVICE_TYPE_GPU) return "gpu";
    if (t & CL_DEVICE_TYPE_CPU) return "cpu";
    if (t & CL_DEVICE_TYPE_ACCELERATOR) return "accelerator";
    return "other";
}

static void device_fill(tlcl_device_info *info, int index, cl_platform_id p, cl_device_id d)
{
    memset(info, 0, sizeof *info);
    info->index = index;
    info->platform = p;
    info->device = d;
    if (clGetPlatformInfo(p, CL_PLATFORM_NAME, sizeof info->platform_name, info->platform_name, NULL) != CL_SUCCESS)
        snprintf(info->platform_name, sizeof info->platform_name, "?");
    device_string(d, CL_DEVICE_NAME, info->name, sizeof info->name);
    device_string(d, CL_DEVICE_VENDOR, info->vendor, sizeof info->vendor);
    device_string(d, CL_DEVICE_OPENCL_C_VERSION, info->opencl_c_version, sizeof info->opencl_c_version);
    device_string(d, CL_DEVICE_VERSION, info->device_version, sizeof info->device_version);
    device_string(d, CL_DRIVER_VERSION, info->driver_version, sizeof info->driver_version);
    cl_device_type type = 0;
    cl_uint cu = 0, align_bits = 0, vec = 1;
    cl_ulong gmem = 0, maxalloc = 0, lmem = 0;
    size_t wg = 0;
    clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof type, &type, NULL);
    clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
    clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof gmem, &gmem, NULL);
    clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof maxalloc, &maxalloc, NULL);
    clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof lmem, &lmem, NULL);
    clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg, NULL);
    size_t items[3] = {0, 0, 0}; /* every device has at least 3 dimensions */
    clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_ITEM_SIZES, sizeof items, items, NULL);
    for (int k = 0; k < 3; k++)
        info->max_work_item_sizes[k] = items[k] ? items[k] : wg;
    clGetDeviceInfo(d, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof align_bits, &align_bits, NULL);
    clGetDeviceInfo(d, CL_DEVICE_PREFERRED_VECTOR_WIDTH_FLOAT, sizeof vec, &vec, NULL);
    cl_device_fp_config fp = 0;
    clGetDeviceInfo(d, CL_DEVICE_SINGLE_FP_CONFIG, sizeof fp, &fp, NULL);
    info->fma = (fp & CL_FP_FMA) && !(fp & CL_FP_SOFT_FLOAT);
    snprintf(info->type, sizeof info->type, "%s", device_type_name(type));
    info->compute_units = cu;
    info->global_mem_bytes = gmem;
    info->max_alloc_bytes = maxalloc;
    info->local_mem_bytes = lmem;
    info->max_work_group_size = wg;
    info->mem_base_addr_align_bytes = align_bits / 8 ? align_bits / 8 : 128;
    info->fp16 = device_has_extension(d, "cl_khr_fp16");
    info->fp64 = device_has_extension(d, "cl_khr_fp64");
    info->float_vector_width = vec ? vec : 1;
    cl_uint vendor_id = 0;
    cl_bool images = CL_FALSE;
    clGetDeviceInfo(d, CL_DEVICE_VENDOR_ID, sizeof vendor_id, &vendor_id, NULL);
    clGetDeviceInfo(d, CL_DEVICE_IMAGE_SUPPORT, sizeof images, &images, NULL);
    info->vendor_id = vendor_id;
    info->image_support = images == CL_TRUE;
    info->simd_width = device_simd_width(d);
}

tlcl_status tlcl_devices_list(tlcl_device_info **out, int *count, char *err, size_t err_len)
{
    *out = NULL;
    *count = 0;
    cl_uint nplat = 0;
    cl_int rc = clGetPlatformIDs(0, NULL, &nplat);
    if (rc != CL_SUCCESS || nplat == 0) {
        snprintf(err, err_len,
                 "no OpenCL platform found (clGetPlatformIDs: %s). Install one, for example PoCL for the CPU: "
                 "apt-get install pocl-opencl-icd ocl-icd-libopencl1 (GPU vendors ship their own ICD; "
                 "Mesa's Rusticl needs RUSTICL_ENABLE=<driver>)",
                 tlcl_cl_error_name(rc));
        return TLCL_ERR_NO_PLATFORM;
    }
    cl_platform_id *plats = calloc(nplat, sizeof *plats);
    if (!plats)
        return TLCL_ERR_OOM;
    clGetPlatformIDs(nplat, plats, NULL);
    tlcl_device_info *devs = NULL;
    int n = 0;
    for (cl_uint p = 0; p < nplat; p++) {
        cl_uint nd = 0;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || nd == 0)
            continue; /* a platform without devices (Clover without a driver) is not an error */
        cl_device_id *ids = calloc(nd, sizeof *ids);
        tlcl_device_info *grown = realloc(devs, (size_t)(n + (int)nd) * sizeof *devs);
        if (!ids || !grown) {
            free(ids);
            free(grown ? grown : devs);
            free(plats);
            return TLCL_ERR_OOM;
        }
        devs = grown;
        clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, nd, ids, NULL);
        for (cl_uint d = 0; d < nd; d++, n++)
            device_fill(&devs[n], n, plats[p], ids[d]);
        free(ids);
    }
    free(plats);
    if (n == 0) {
        free(devs);
        snprintf(err, err_len,
                 "OpenCL platforms are installed but none has a device. Install PoCL for the CPU "
                 "(apt-get install pocl-opencl-icd) or your GPU vendor's OpenCL driver");
        return TLCL_ERR_NO_PLATFORM;
    }
    *out = devs;
    *count = n;
    return TLCL_OK;
}

int tlcl_devices_default(const tlcl_device_info *devs, int count)
{
    for (int i = 0; i < count; i++)
        if (strcmp(devs[i].type, "gpu") == 0)
            return i;
    return 0;
}

char *tlcl_devices_json(const tlcl_device_info *devs, int count)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < count; i++) {
        const tlcl_device_info *d = &devs[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "index", d->index);
        cJSON_AddStringToObject(o, "platform", d->platform_name);
        cJSON_AddStringToObject(o, "name", d->name);
        cJSON_AddStringToObject(o, "vendor", d->vendor);
        cJSON_AddStringToObject(o, "type", d->type);
        cJSON_AddNumberToObject(o, "compute_units", d->compute_units);
        cJSON_AddNumberToObject(o, "global_mem_bytes", (double)d->global_mem_bytes);
        cJSON_AddNumberToObject(o, "max_alloc_bytes", (double)d->max_alloc_bytes);
        cJSON_AddNumberToObject(o, "max_work_group_size", (double)d->max_work_group_size);
        cJSON_AddNumberToObject(o, "local_mem_bytes", (double)d->local_mem_bytes);
        cJSON_AddStringToObject(o, "opencl_c_version", d->opencl_c_version);
        cJSON_AddBoolToObject(o, "fp16", d->fp16);
        cJSON_AddNumberToObject(o, "float_vector_width", d->float_vector_width);
        cJSON_AddBoolToObject(o, "fp64", d->fp64);
        cJSON_AddBoolToObject(o, "fma", d->fma);
        cJSON_AddNumberToObject(o, "vendor_id", d->vendor_id);
        cJSON_AddNumberToObject(o, "simd_width", d->simd_width);
        cJSON_AddBoolToObject(o, "image_support", d->image_support);
        cJSON_AddStringToObject(o, "family", tlcl_device_family_name(tlcl_device_family_of(d)));
        if (d->profile[0])
            cJSON_AddStringToObject(o, "profile", d->profile);
        cJSON_AddStringToObject(o, "driver_version", d->driver_version);
        cJSON_AddItemToArray(arr, o);
    }
    char *s = cJSON_Print(arr);
    cJSON_Delete(arr);
    return s;
}
