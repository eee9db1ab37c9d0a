/* Tests only: just enough of CUDA's built-ins for a host C++ compiler to type-check the exact
 * source NVRTC compiles (prelude_cuda.h + kernels.cu). Nothing here runs. */
#define __global__
#define __device__
#define __forceinline__ inline
#define __constant__
struct gl_dim3 { unsigned int x, y, z; };
static gl_dim3 blockIdx, blockDim, threadIdx;
static inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
