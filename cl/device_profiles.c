/* device_profiles.c — emulated GPU device profiles (TLCL_DEVICE_PROFILE)
 * and the device families tlcl keeps built-in defaults for.
 *
 * A profile is what one real GPU's driver reports (clinfo), so that tlcl
 * plans every code path and launch on PoCL as it would on that GPU: the
 * device type, the work-group and local-memory limits, the preferred float
 * width (1 on every GPU: the scalar kernels), FMA, the warp or wavefront
 * width, the allocation limit, images and fp16/fp64. Where a number was not
 * in the dump it comes from the named document; each is marked. */
#include "tlcl_cl.h"

#include <stdio.h>
#include <string.h>

#define MIB (1024ull * 1024ull)

static const tlcl_device_profile profiles[] = {
    /* NVIDIA Ampere: "NVIDIA GeForce RTX 3050 Laptop GPU", driver 527.56,
     * OpenCL 3.0 CUDA; clinfo dump in github.com/husmen/DepthZNCC clinfo.md
     * (also github.com/nohzen/opencl info/desktop_RTX3050.md: the same
     * 1024 work-items, 32 multiple, vector width 1). Every number is the
     * dump's: compute units 16, max work group 1024 (1024 x 1024 x 64 per
     * dimension), local memory 49152, preferred float width 1,
     * IEEE754-2008 FMA yes, max allocation
     * 1073610752, global memory 4294443008, base address alignment 4096
     * bits, kernel preferred work-group multiple 32 (the warp), image
     * support yes, cl_khr_fp64 yes, cl_khr_fp16 absent. Hopper (H100)
     * reports the same limits with more compute units and memory. */
    {.name = "nvidia", .model = "NVIDIA Ampere (GeForce RTX 3050 Laptop, driver 527.56)",
     .vendor = "NVIDIA Corporation", .vendor_id = 0x10de, .compute_units = 16,
     .float_vector_width = 1, .simd_width = 32, .mem_base_addr_align_bytes = 4096 / 8,
     .max_work_group_size = 1024, .max_work_item_sizes = {1024, 1024, 64}, .local_mem_bytes = 49152,
     .max_alloc_bytes = 1073610752ull, .global_mem_bytes = 4294443008ull,
     .fma = 1, .fp16 = 0, .fp64 = 1, .image_support = 1},
    /* AMD RDNA2: "gfx1030" (Radeon RX 6800 XT), driver 3452.0 (HSA1.1,LC),
     * OpenCL 2.0; clinfo in github.com/ROCm/legacy-rocm-build issue 1779:
     * compute units 36, SIMD width 32 (the wave32 wavefront). The same
     * driver family on gfx1032 (RX 6600 XT, issue 1575 there): max work
     * group 256 (1024 x 1024 x 1024 per dimension), preferred work-group
     * multiple 32, wavefront width 32, preferred float width 1, cl_khr_fp16 and cl_khr_fp64; base address
     * alignment 2048 bits (RX 6600 XT, github.com/todxx/teamredminer issue
     * 416). Not in those excerpts: local memory 65536 (RDNA2's 64 KiB LDS
     * per work-group, the GROUP segment rocminfo reports), FMA yes (GCN's
     * gfx90c dump in github.com/husmen/DepthZNCC clinfo.md: IEEE754-2008
     * FMA yes, images yes), global memory 16 GiB (the card's) and the
     * allocation cap ROCm applies, 85% of it. CDNA (gfx908/gfx90a) runs
     * 64-wide wavefronts under the same 256 work-item OpenCL limit. */
    {.name = "amd", .model = "AMD RDNA2 (Radeon RX 6800 XT gfx1030, driver 3452.0)",
     .vendor = "Advanced Micro Devices, Inc.", .vendor_id = 0x1002, .compute_units = 36,
     .float_vector_width = 1, .simd_width = 32, .mem_base_addr_align_bytes = 2048 / 8,
     .max_work_group_size = 256, .max_work_item_sizes = {1024, 1024, 1024}, .local_mem_bytes = 65536,
     .max_alloc_bytes = 16ull * 1024 * MIB * 85 / 100, .global_mem_bytes = 16ull * 1024 * MIB,
     .fma = 1, .fp16 = 1, .fp64 = 1, .image_support = 1},
    /* Intel Xe-LP: "Intel(R) Iris(R) Xe Graphics" (Tiger Lake), OpenCL 3.0
     * NEO; github.com/ggml-org/llama.cpp issue 5467 lists it with 96 compute
     * units, max work group 512, max sub-group 32 and 31690 MiB of (shared)
     * global memory; NEO gives every dimension the work-group limit (the
     * Gen9 dump below: 256 x 256 x 256). The rest from NEO clinfo dumps of the same driver on
     * Gen9: local memory 65536 (CL_LOCAL), preferred float width 1,
     * preferred work-group multiple 32, images yes, cl_khr_fp16
     * (github.com/nohzen/opencl info/x390_IntelGPU.md, UHD Graphics 0x9b41);
     * base address alignment 1024 bits and the 4294959104-byte (4 GiB - 8
     * KiB) cap (github.com/Bdot42/mfakto issue 16, intel/compute-runtime
     * issue 18). Not in those: FMA yes; no cl_khr_fp64 on Xe-LP. */
    {.name = "intel-gpu", .model = "Intel Xe-LP (Iris Xe Graphics, NEO)",
     .vendor = "Intel(R) Corporation", .vendor_id = 0x8086, .compute_units = 96,
     .float_vector_width = 1, .simd_width = 32, .mem_base_addr_align_bytes = 1024 / 8,
     .max_work_group_size = 512, .max_work_item_sizes = {512, 512, 512}, .local_mem_bytes = 65536,
     .max_alloc_bytes = 4294959104ull, .global_mem_bytes = 31690ull * MIB,
     .fma = 1, .fp16 = 1, .fp64 = 0, .image_support = 1},
    /* Arm Mali: "Mali-G52" (Bifrost, Khadas VIM3), OpenCL 2.0, clinfo in
     * github.com/ARM-software/ComputeLibrary issue 999: vendor id 0x72120000
     * (Arm's driver reports the GPU's product id, vendor "ARM"), compute
     * units 2, max work group 384 (not a power of two; 384 x 384 x 384). Local memory 32 KiB
     * of type Global (Mali-T860 and T628 dumps: github.com/plaidml/plaidml
     * issue 182, github.com/MichaIng/DietPi issue 4101), base address
     * alignment 1024 bits (DietPi 4101), cl_khr_fp16 and images (plaidml
     * issue 39). Not in those excerpts: the allocation limit (a quarter of
     * global memory, OpenCL's minimum, of the board's 4 GiB), FMA yes, no
     * fp64 (Bifrost's platform extensions in ComputeLibrary issue 953 list
     * cl_khr_fp16 but not cl_khr_fp64). Preferred float width 1 and a
     * 16-wide warp are Valhall's (Mali-G57 and later, Arm's Mali OpenCL
     * guide: scalar warps, no need to vectorise); Bifrost's quad warps are
     * 4 or 8 wide (Mali-G71: preferred work-group multiple 4, 96boards-hikey
     * linux pull request 59). */
    {.name = "arm-mali", .model = "Arm Mali Bifrost (Mali-G52 limits, Valhall widths)",
     .vendor = "ARM", .vendor_id = 0x72120000, .compute_units = 2,
     .float_vector_width = 1, .simd_width = 16, .mem_base_addr_align_bytes = 1024 / 8,
     .max_work_group_size = 384, .max_work_item_sizes = {384, 384, 384}, .local_mem_bytes = 32768,
     .max_alloc_bytes = 1024ull * MIB, .global_mem_bytes = 4096ull * MIB,
     .fma = 1, .fp16 = 1, .fp64 = 0, .image_support = 1},
};

const tlcl_device_profile *tlcl_device_profile_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof profiles / sizeof *profiles; i++)
        if (strcmp(profiles[i].name, name) == 0)
            return &profiles[i];
    return NULL;
}

tlcl_status tlcl_device_profile_of(const char *name, const tlcl_device_profile **out, char *err, size_t err_len)
{
    *out = NULL;
    if (!name || !name[0])
        return TLCL_OK;
    if ((*out = tlcl_device_profile_find(name)))
        return TLCL_OK;
    int off = snprintf(err, err_len, "TLCL_DEVICE_PROFILE='%s' is not a device profile: use one of", name);
    for (size_t i = 0; off > 0 && (size_t)off < err_len && i < sizeof profiles / sizeof *profiles; i++)
        off += snprintf(err + off, err_len - (size_t)off, "%s %s", i ? "," : "", profiles[i].name);
    if (off > 0 && (size_t)off < err_len)
        snprintf(err + off, err_len - (size_t)off, ", or unset it");
    return TLCL_ERR_ARG;
}

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

tlcl_device_info tlcl_device_profile_apply(const tlcl_device_profile *p, const tlcl_device_info *real)
{
    tlcl_device_info d = *real; /* names, versions and handles stay the real device's (program cache keys) */
    snprintf(d.type, sizeof d.type, "gpu");
    snprintf(d.profile, sizeof d.profile, "%s", p->name);
    d.vendor_id = p->vendor_id;
    snprintf(d.vendor, sizeof d.vendor, "%s", p->vendor);
    d.compute_units = p->compute_units;
    d.float_vector_width = p->float_vector_width;
    d.simd_width = p->simd_width;
    d.fma = p->fma;
    /* limits: what is launched must fit the emulated GPU and the real device */
    d.max_work_group_size = (size_t)min_u64(p->max_work_group_size, real->max_work_group_size);
    for (int k = 0; k < 3; k++)
        d.max_work_item_sizes[k] = (size_t)min_u64(p->max_work_item_sizes[k], real->max_work_item_sizes[k]);
    d.local_mem_bytes = min_u64(p->local_mem_bytes, real->local_mem_bytes);
    d.max_alloc_bytes = min_u64(p->max_alloc_bytes, real->max_alloc_bytes);
    d.global_mem_bytes = min_u64(p->global_mem_bytes, real->global_mem_bytes);
    d.mem_base_addr_align_bytes = p->mem_base_addr_align_bytes > real->mem_base_addr_align_bytes
                                      ? p->mem_base_addr_align_bytes
                                      : real->mem_base_addr_align_bytes;
    d.fp16 = p->fp16 && real->fp16;
    d.fp64 = p->fp64 && real->fp64;
    d.image_support = p->image_support && real->image_support;
    return d;
}

tlcl_device_family tlcl_device_family_of(const tlcl_device_info *d)
{
    if (strcmp(d->type, "cpu") == 0) /* PoCL reports its host's PCI vendor id: the width tells the kind */
        return d->float_vector_width > 1 ? TLCL_FAMILY_CPU_SIMD : TLCL_FAMILY_CPU_SIMT;
    if (strcmp(d->type, "gpu") != 0)
        return TLCL_FAMILY_OTHER;
    switch (d->vendor_id) {
    case 0x10de: return TLCL_FAMILY_NVIDIA;
    case 0x1002: return TLCL_FAMILY_AMD;
    case 0x8086: return TLCL_FAMILY_INTEL_GPU;
    case 0x13b5: return TLCL_FAMILY_ARM_MALI; /* Arm's PCI id, which its driver does not report: */
    default: /* Mali drivers give the GPU's product id (0x72120000 on a G52) and the vendor "ARM" */
        return strcmp(d->vendor, "ARM") == 0 ? TLCL_FAMILY_ARM_MALI : TLCL_FAMILY_GPU_OTHER;
    }
}

const char *tlcl_device_family_name(tlcl_device_family f)
{
    static const char *names[] = {"other", "cpu-simd", "cpu-simt", "nvidia", "amd", "intel-gpu", "arm-mali",
                                  "gpu"};
    return (unsigned)f < sizeof names / sizeof *names ? names[f] : "other";
}
