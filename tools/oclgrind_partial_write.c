/* oclgrind 21.10 --uninitialized: a host write (clEnqueueWriteBuffer) that
 * covers only the start of a buffer replaces the buffer's whole shadow with
 * one of the written size, so what a kernel later writes past that size is
 * not recorded and reading it back is reported as uninitialised.
 * The engine works around it (engine/tensor.c, pool_find).
 * Build: cc tools/oclgrind_partial_write.c -lOpenCL -o /tmp/repro
 * Run:   oclgrind --uninitialized /tmp/repro partial   (48 reports: floats 16..63)
 *        oclgrind --uninitialized /tmp/repro           (none) */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdio.h>
#include <string.h>

static const char *src =
    "__kernel void fill(__global float *x) { x[get_global_id(0)] = (float)get_global_id(0); }\n"
    "__kernel void use(__global const float *x, __global float *y)\n"
    "{ size_t i = get_global_id(0); y[i] = x[i] > 100.0f ? 1.0f : 0.0f; }\n";

int main(int argc, char **argv)
{
    enum { N = 64, HOST = 16 };
    int partial = argc > 1 && strcmp(argv[1], "partial") == 0;
    cl_platform_id p;
    cl_device_id d;
    clGetPlatformIDs(1, &p, NULL);
    clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 1, &d, NULL);
    cl_context ctx = clCreateContext(NULL, 1, &d, NULL, NULL, NULL);
    cl_command_queue q = clCreateCommandQueue(ctx, d, 0, NULL);
    cl_program prog = clCreateProgramWithSource(ctx, 1, &src, NULL, NULL);
    clBuildProgram(prog, 1, &d, "", NULL, NULL);
    cl_kernel fill = clCreateKernel(prog, "fill", NULL), use = clCreateKernel(prog, "use", NULL);
    cl_mem x = clCreateBuffer(ctx, CL_MEM_READ_WRITE, N * sizeof(float), NULL, NULL);
    cl_mem y = clCreateBuffer(ctx, CL_MEM_READ_WRITE, N * sizeof(float), NULL, NULL);
    float host[N] = {0};
    /* the first HOST floats from the host (or all N), then every float by a kernel */
    clEnqueueWriteBuffer(q, x, CL_TRUE, 0, (partial ? HOST : N) * sizeof(float), host, 0, NULL, NULL);
    size_t g = N;
    clSetKernelArg(fill, 0, sizeof x, &x);
    clEnqueueNDRangeKernel(q, fill, 1, NULL, &g, NULL, 0, NULL, NULL);
    clSetKernelArg(use, 0, sizeof x, &x);
    clSetKernelArg(use, 1, sizeof y, &y);
    clEnqueueNDRangeKernel(q, use, 1, NULL, &g, NULL, 0, NULL, NULL);
    clEnqueueReadBuffer(q, y, CL_TRUE, 0, sizeof host, host, 0, NULL, NULL);
    printf("%s host write; y[63] = %g\n", partial ? "partial" : "whole", host[63]);
    return 0;
}
