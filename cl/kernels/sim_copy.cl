/* sim_copy.cl — buffer copies as kernels, used for host transfers only on
 * the Oclgrind simulator (see sim_transfer in cl/cl_context.c): its
 * uninitialised-value check tracks stores made by kernels exactly, but not
 * those made by clEnqueueWriteBuffer / clEnqueueCopyBuffer. Offsets and
 * counts are in elements of the kernel's type. */

__kernel void sim_copy_words(__global uint *dst, ulong dst_off, __global const uint *src, ulong src_off, ulong n)
{
    size_t i = get_global_id(0);
    if (i < n) dst[dst_off + i] = src[src_off + i];
}

__kernel void sim_copy_bytes(__global uchar *dst, ulong dst_off, __global const uchar *src, ulong src_off, ulong n)
{
    size_t i = get_global_id(0);
    if (i < n) dst[dst_off + i] = src[src_off + i];
}
