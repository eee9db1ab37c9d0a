/* gridlease-gpu: prelude that compiles kernels.cu as plain C (tests only). A launch of N threads
 * is a loop setting gl_emulated_id from 0 to N - 1 and calling the kernel. */
#include <stdint.h>
typedef unsigned long long u64;
typedef long long i64;
typedef unsigned int u32;
typedef int i32;
typedef unsigned char u8;
typedef signed char i8;
/* Four INT32s loaded at once (CUDA's int4). */
typedef struct { i32 x, y, z, w; } gl_i32x4;
/* Per thread: tests launch emulated kernels from several threads at once. */
static _Thread_local u64 gl_emulated_id;
#define GL_KERNEL void
#define GL_DEVICE static inline
#define GL_CONSTANT static const
#define GL_ID gl_emulated_id
#define GL_UNROLL
#define GL_NO_UNROLL
#define GL_BSWAP32(x) __builtin_bswap32(x)
#define GL_MULHI(a, b) ((u64)(((unsigned __int128)(a) * (unsigned __int128)(b)) >> 64))
