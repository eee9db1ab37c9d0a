/* Tests only: kernels.cu compiled as plain C, each launch a loop over thread ids. Built into a
 * shared library by gpu/tests/kernels_c.rs and called through libloading. */
#include "prelude_c.h"
#include "kernels.cu"

/* A launch of n threads runs every thread of the grid a GPU would: whole blocks of 256 (the
 * largest block cuda.rs uses), at least one, so every kernel's guard for the ids past n runs too. */
#define GL_LAUNCH(n, call)                                                                        \
    do {                                                                                          \
        u64 gl_n = ((n) + 255) / 256 * 256;                                                       \
        if (gl_n == 0) gl_n = 256;                                                                \
        for (gl_emulated_id = 0; gl_emulated_id < gl_n; gl_emulated_id++) { call; }               \
    } while (0)

void emu_keccak_many(u64 threads, const u8 *in, u32 len, u64 count, u8 *out) {
    GL_LAUNCH(threads, gl_keccak_many(in, len, count, out));
}
void emu_generate(u64 threads, const u8 *seed, u32 tag, u64 count, u64 k, u64 stride, i8 *out) {
    GL_LAUNCH(threads, gl_generate(seed, tag, count, k, stride, out));
}
void emu_leaves(u64 threads, const i32 *c, u64 m, u64 n, u64 ldc, u64 leaves, u32 *enc,
                u8 *level) {
    GL_LAUNCH(threads, gl_leaves(c, m, n, ldc, leaves, enc, level));
}
void emu_level(u64 threads, const u8 *below, u64 count, u8 *above) {
    GL_LAUNCH(threads, gl_level(below, count, above));
}
void emu_fv_vector(u64 threads, const u8 *r_seed, u64 len, u64 *r) {
    GL_LAUNCH(threads, gl_fv_vector(r_seed, len, r));
}
void emu_fv_bt(u64 threads, const i8 *bt, u64 n, u64 k, u64 stride, const u64 *r, u64 jchunk,
               u64 chunks, u64 *part) {
    GL_LAUNCH(threads, gl_fv_bt(bt, n, k, stride, r, jchunk, chunks, part));
}
void emu_fv_sum(u64 threads, const u64 *part, u64 chunks, u64 len, u64 *out) {
    GL_LAUNCH(threads, gl_fv_sum(part, chunks, len, out));
}
void emu_fv_rows_i8(u64 threads, const i8 *a, u64 rows, u64 cols, u64 stride, const u64 *v,
                    u64 lanes, u64 *part) {
    GL_LAUNCH(threads, gl_fv_rows_i8(a, rows, cols, stride, v, lanes, part));
}
void emu_fv_rows_i32(u64 threads, const i32 *a, u64 rows, u64 cols, u64 stride, const u64 *v,
                     u64 lanes, u64 *part) {
    GL_LAUNCH(threads, gl_fv_rows_i32(a, rows, cols, stride, v, lanes, part));
}
void emu_fv_compare(u64 threads, const u64 *pa, const u64 *pc, u64 rows, u64 lanes, u32 *bad) {
    GL_LAUNCH(threads, gl_fv_compare(pa, pc, rows, lanes, bad));
}
