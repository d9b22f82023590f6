/* oclgrind_shadow_repro.c — minimal reproduction of an Oclgrind false
 * positive (21.10; the code is unchanged in 26.03): with --uninitialized, a
 * host store (clEnqueueWriteBuffer, clEnqueueCopyBuffer) that does not cover
 * a whole buffer from offset 0 replaces the buffer's whole shadow by one of
 * the store's size, so data every byte of which was written is reported as
 * uninitialised. cl/cl_context.c works around it (sim_transfer).
 *   cc -o /tmp/repro tools/oclgrind_shadow_repro.c -lOpenCL
 *   for c in 1 2 3 4 5; do oclgrind --uninitialized /tmp/repro $c; done
 * Cases 1-4 report "Uninitialized value written to global memory" in
 * kernel copy, though the program never reads a byte it did not write.
 * case 1: 40-byte buffer, host writes 12 bytes at offset 0, kernel `fill`
 *         writes all 10 floats, kernel `copy` reads all 10 -> reported for
 *         floats 3..9 (oclgrind resized the shadow to the 12 written bytes,
 *         so the kernel's stores past them are dropped).
 * case 2: 40-byte buffer, fill kernel writes all 10 floats, host writes 4
 *         bytes at offset 8 (as a write through a sub-buffer does), copy
 *         reads all 10 -> reported (shadow replaced by 4 bytes of garbage).
 * case 3: fill kernel writes all 10 floats, clEnqueueCopyBuffer copies 3
 *         floats of another buffer (host-written whole) over the first 3,
 *         copy reads all 10 -> reported for floats 3..9 (truncated shadow).
 * case 4: a 12-byte buffer written whole by the host is released; the
 *         40-byte buffer created next gets its slot and the stale 12-byte
 *         shadow (the plugin ignores allocations and releases): fill writes
 *         all 10 floats, copy reads them -> reported for floats 3..9.
 * case 5: case 4 with a 0-byte clEnqueueWriteBuffer right after creating the
 *         40-byte buffer (Oclgrind accepts it; other platforms need not):
 *         the shadow becomes empty, the first kernel allocates a fresh one
 *         of the buffer's size -> nothing reported. */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdio.h>
static const char *src =
    "__kernel void fill(__global float *x) { x[get_global_id(0)] = 1.0f; }\n"
    "__kernel void copy(__global float *d, __global const float *s) { d[get_global_id(0)] = s[get_global_id(0)]; }\n";
int main(int argc, char **argv)
{
    int which = argc > 1 ? argv[1][0] - '0' : 1;
    cl_platform_id p; cl_device_id d; cl_int rc;
    clGetPlatformIDs(1, &p, NULL);
    clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 1, &d, NULL);
    cl_context ctx = clCreateContext(NULL, 1, &d, NULL, NULL, &rc);
    cl_command_queue q = clCreateCommandQueue(ctx, d, 0, &rc);
    cl_program prog = clCreateProgramWithSource(ctx, 1, &src, NULL, &rc);
    clBuildProgram(prog, 1, &d, "", NULL, NULL);
    cl_kernel kf = clCreateKernel(prog, "fill", &rc), kc = clCreateKernel(prog, "copy", &rc);
    float host[3] = {1, 2, 3};
    if (which >= 4) {
        cl_mem old = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 12, NULL, &rc);
        clEnqueueWriteBuffer(q, old, CL_TRUE, 0, 12, host, 0, NULL, NULL);
        clReleaseMemObject(old);
    }
    cl_mem a = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 40, NULL, &rc), b = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 40, NULL, &rc);
    if (which == 5)
        clEnqueueWriteBuffer(q, a, CL_TRUE, 0, 0, host, 0, NULL, NULL);
    size_t n = 10;
    clSetKernelArg(kf, 0, sizeof a, &a);
    if (which == 1) {
        clEnqueueWriteBuffer(q, a, CL_TRUE, 0, 12, host, 0, NULL, NULL);
        clEnqueueNDRangeKernel(q, kf, 1, NULL, &n, NULL, 0, NULL, NULL);
    } else if (which == 3) {
        float whole[10] = {0};
        cl_mem c = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 40, NULL, &rc);
        clEnqueueWriteBuffer(q, c, CL_TRUE, 0, 40, whole, 0, NULL, NULL);
        clEnqueueNDRangeKernel(q, kf, 1, NULL, &n, NULL, 0, NULL, NULL);
        clEnqueueCopyBuffer(q, c, a, 0, 0, 12, 0, NULL, NULL);
    } else if (which == 2) {
        clEnqueueNDRangeKernel(q, kf, 1, NULL, &n, NULL, 0, NULL, NULL);
        clEnqueueWriteBuffer(q, a, CL_TRUE, 8, 4, host, 0, NULL, NULL);
    } else {
        clEnqueueNDRangeKernel(q, kf, 1, NULL, &n, NULL, 0, NULL, NULL);
    }
    clSetKernelArg(kc, 0, sizeof b, &b);
    clSetKernelArg(kc, 1, sizeof a, &a);
    clEnqueueNDRangeKernel(q, kc, 1, NULL, &n, NULL, 0, NULL, NULL);
    float out[10];
    clEnqueueReadBuffer(q, b, CL_TRUE, 0, 40, out, 0, NULL, NULL);
    printf("case %d: %g %g %g %g (all initialised on the host side)\n", which, out[0], out[2], out[3], out[9]);
    return 0;
}
