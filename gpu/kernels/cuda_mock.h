/* Tests only: just enough of CUDA's built-ins for a host C++ compiler to type-check the exact
 * source NVRTC compiles (prelude_cuda.h + kernels.cu). Nothing here runs. */
#define __global__
#define __device__
#define __forceinline__ inline
#define __constant__
struct gl_dim3 { unsigned int x, y, z; };
struct int4 { int x, y, z, w; };
static gl_dim3 blockIdx, blockDim, threadIdx;
static inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
/* Byte k of the result is byte ((s >> 4k) & 7) of the 8 bytes y:x (x the low four). */
static inline unsigned int __byte_perm(unsigned int x, unsigned int y, unsigned int s) {
    unsigned long long v = ((unsigned long long)y << 32) | x;
    unsigned int r = 0;
    for (int k = 0; k < 4; k++)
        r |= (unsigned int)((v >> (8 * ((s >> (4 * k)) & 7))) & 0xff) << (8 * k);
    return r;
}
