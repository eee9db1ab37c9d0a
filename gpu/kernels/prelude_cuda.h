/* gridlease-gpu: prelude for NVRTC. The kernels in kernels.cu use only these names, so the same
 * source also compiles as plain C (prelude_c.h), where a launch is a loop over thread ids. */
typedef unsigned long long u64;
typedef long long i64;
typedef unsigned int u32;
typedef int i32;
typedef unsigned char u8;
typedef signed char i8;
/* Four INT32s loaded at once: one 16-byte load. */
typedef int4 gl_i32x4;
#define GL_KERNEL extern "C" __global__ void
#define GL_DEVICE static __device__ __forceinline__
#define GL_CONSTANT __constant__ const
#define GL_ID ((u64)blockIdx.x * (u64)blockDim.x + (u64)threadIdx.x)
#define GL_MULHI(a, b) __umul64hi((a), (b))
#define GL_UNROLL _Pragma("unroll")
#define GL_NO_UNROLL _Pragma("unroll 1")
/* Byte swap of a 32-bit word: one PRMT. */
#define GL_BSWAP32(x) __byte_perm((x), 0u, 0x0123u)
