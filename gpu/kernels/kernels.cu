/* gridlease-gpu kernels: the matmul_i8 workload's seeded inputs, the positional Merkle commitment
 * of C (protocol v2: 1 KiB leaves, no index) and Freivalds' check, byte for byte what
 * gridlease-workload (workload/src/matmul.rs, merkle.rs) computes. One thread per output item, no shared
 * memory and no intra-block synchronisation, so that this file also compiles as plain C with
 * prelude_c.h and is tested against gridlease-workload on machines without a GPU
 * (gpu/tests/kernels_c.rs). */

/* ---- keccak-f[1600]; keccak256 of a message shorter than one block (136 bytes) ---- */

GL_CONSTANT u64 GL_KECCAK_RC[24] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL, 0x8000000080008000ULL,
    0x000000000000808bULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
    0x000000000000008aULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
    0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
    0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800aULL, 0x800000008000000aULL,
    0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL};
GL_CONSTANT u32 GL_KECCAK_ROTC[24] = {1,  3,  6,  10, 15, 21, 28, 36, 45, 55, 2,  14,
                                      27, 41, 56, 8,  25, 43, 62, 18, 39, 61, 20, 44};
GL_CONSTANT u32 GL_KECCAK_PILN[24] = {10, 7,  11, 17, 18, 3, 5,  16, 8,  21, 24, 4,
                                      15, 23, 19, 13, 12, 2, 20, 14, 22, 9,  6,  1};

GL_DEVICE u64 gl_rotl64(u64 x, u32 s) { return (x << s) | (x >> (64 - s)); }

/* Every loop is unrolled on the GPU (GL_UNROLL) so that all indices are constants and the state
 * lives in registers, never in local memory. */
GL_DEVICE void gl_keccakf(u64 st[25]) {
    u64 bc[5];
    GL_UNROLL
    for (int round = 0; round < 24; round++) {
        GL_UNROLL
        for (int i = 0; i < 5; i++)
            bc[i] = st[i] ^ st[i + 5] ^ st[i + 10] ^ st[i + 15] ^ st[i + 20];
        GL_UNROLL
        for (int i = 0; i < 5; i++) {
            u64 t = bc[(i + 4) % 5] ^ gl_rotl64(bc[(i + 1) % 5], 1);
            GL_UNROLL
            for (int j = 0; j < 25; j += 5) st[j + i] ^= t;
        }
        u64 t = st[1];
        GL_UNROLL
        for (int i = 0; i < 24; i++) {
            u32 j = GL_KECCAK_PILN[i];
            u64 tmp = st[j];
            st[j] = gl_rotl64(t, GL_KECCAK_ROTC[i]);
            t = tmp;
        }
        GL_UNROLL
        for (int j = 0; j < 25; j += 5) {
            GL_UNROLL
            for (int i = 0; i < 5; i++) bc[i] = st[j + i];
            GL_UNROLL
            for (int i = 0; i < 5; i++) st[j + i] ^= (~bc[(i + 1) % 5]) & bc[(i + 2) % 5];
        }
        st[0] ^= GL_KECCAK_RC[round];
    }
}

/* The 32-byte digest: the first four lanes, little-endian. */
GL_DEVICE void gl_keccak_squeeze32(const u64 st[25], u8 *out) {
    GL_UNROLL
    for (u32 i = 0; i < 32; i++) out[i] = (u8)(st[i / 8] >> (8 * (i % 8)));
}

/* keccak256 (Ethereum's: padding 0x01 .. 0x80) of `len` <= 135 bytes. The message is absorbed
 * lane by lane with constant indices (bytes past `len` are never read). */
GL_DEVICE void gl_keccak256_short(const u8 *in, u32 len, u8 *out) {
    u64 st[25];
    GL_UNROLL
    for (int l = 0; l < 25; l++) {
        u64 v = 0;
        if (l < 17) {
            GL_UNROLL
            for (int b = 0; b < 8; b++) {
                u32 i = (u32)(l * 8 + b);
                u64 byte = 0;
                if (i < len) byte = in[i];
                if (i == len) byte = 0x01;
                if (i == 135) byte |= 0x80;
                v |= byte << (8 * b);
            }
        }
        st[l] = v;
    }
    gl_keccakf(st);
    gl_keccak_squeeze32(st, out);
}

GL_DEVICE void gl_put_be64(u8 *p, u64 v) {
    GL_UNROLL
    for (int i = 0; i < 8; i++) p[i] = (u8)(v >> (56 - 8 * i));
}

/* keccak256 of each of `count` messages of `len` bytes laid end to end (a test entry point). */
GL_KERNEL gl_keccak_many(const u8 *in, u32 len, u64 count, u8 *out) {
    u64 id = GL_ID;
    if (id >= count) return;
    gl_keccak256_short(in + id * len, len, out + id * 32);
}

/* ---- seeded inputs ----
 * Stream `tag` byte x = byte x % 32 of keccak256(seed || tag || uint64_be(x / 32)). Thread b makes
 * block b (bytes 32b .. 32b + 31, the last block cut at `count`) and stores byte x at
 * out[(x / k) * stride + x % k]: a matrix of rows of k elements with row stride `stride` >= k (the
 * padding is left as it was: zero). A is stream 'A' row-major, B^T is stream 'B'. */
GL_KERNEL gl_generate(const u8 *seed, u32 tag, u64 count, u64 k, u64 stride, i8 *out) {
    u64 b = GL_ID;
    if (b * 32 >= count) return;
    u8 buf[41];
    GL_UNROLL
    for (int i = 0; i < 32; i++) buf[i] = seed[i];
    buf[32] = (u8)tag;
    gl_put_be64(buf + 33, b);
    u8 h[32];
    gl_keccak256_short(buf, 41, h);
    u64 x = b * 32;
    u64 row = x / k, col = x % k;
    for (u32 i = 0; i < 32 && x < count; i++, x++) {
        out[row * stride + col] = (i8)h[i];
        col++;
        if (col == k) {
            col = 0;
            row++;
        }
    }
}

/* ---- the positional Merkle commitment of C ----
 * C (m x n, row stride ldc) is committed as big-endian int32s in leaves of GL_LEAF_ELEMS elements
 * (1 KiB; the last leaf shorter, an empty C one empty leaf). Thread i hashes leaf i,
 * keccak256(0x00 || bytes), into level[i]: a message of 1 + 4 count bytes (1,025 for a full leaf),
 * absorbed in ceil((len + 1) / 136) blocks of 17 lanes (8 keccak-f[1600] permutations for a full
 * leaf). When `enc` is not null the thread also writes the leaf's elements there as encoded (the
 * result file; each element one 32-bit store of its byte-swapped value, which is its big-endian
 * bytes in memory on the little-endian device and test hosts). Leaves past the last up to the
 * power-of-two width are not written (the caller zeroes them).
 *
 * The lanes: with E the encoded bytes read as little-endian 64-bit words (word t = elements 2t and
 * 2t + 1, byte-swapped), the message 0x00 || E shifted by one byte gives lane t =
 * (E[t - 1] >> 56) | (E[t] << 8), E[-1] = 0. Words past the leaf's elements are zero, so the only
 * extra bytes are keccak's padding: 0x01 at byte len, 0x80 at the last byte of the last block.
 * Elements are read in order with the row wrap tracked incrementally (one division per leaf). */
#define GL_LEAF_ELEMS 256u
#define GL_RATE_LANES 17u

GL_KERNEL gl_leaves(const i32 *c, u64 m, u64 n, u64 ldc, u64 leaves, u32 *enc, u8 *level) {
    u64 i = GL_ID;
    if (i >= leaves) return;
    u64 total = m * n;
    u64 x0 = i * GL_LEAF_ELEMS;
    u32 count = total - x0 < GL_LEAF_ELEMS ? (u32)(total - x0) : GL_LEAF_ELEMS;
    u32 len = 1 + 4 * count;
    u32 blocks = len / (8 * GL_RATE_LANES) + 1;
    /* n == 0 only for an empty C (count == 0: nothing is read). */
    u64 col = n ? x0 % n : 0;
    const i32 *p = c + (n ? x0 / n : 0) * ldc + col;
    u32 e = 0;    /* elements of the leaf read so far */
    u64 prev = 0; /* E[t - 1]: the 0x00 prefix before the first word */
    u64 st[25];
    GL_UNROLL
    for (int l = 0; l < 25; l++) st[l] = 0;
    /* One copy of the permutation, looped over the blocks (a full leaf: 8). */
    GL_NO_UNROLL
    for (u32 b = 0; b < blocks; b++) {
        GL_UNROLL
        for (u32 l = 0; l < GL_RATE_LANES; l++) {
            u64 word = 0;
            GL_UNROLL
            for (u32 h = 0; h < 2; h++) {
                if (e < count) {
                    u32 w = GL_BSWAP32((u32)*p);
                    if (enc) enc[x0 + e] = w;
                    word |= (u64)w << (32 * h);
                    e++;
                    p++;
                    if (++col == n) {
                        col = 0;
                        p += ldc - n;
                    }
                }
            }
            u64 lane = (prev >> 56) | (word << 8);
            prev = word;
            u32 at = 8 * (GL_RATE_LANES * b + l); /* message byte of the lane's first byte */
            if (len >= at && len - at < 8) lane ^= 0x01ULL << (8 * (len - at));
            st[l] ^= lane;
        }
        if (b + 1 == blocks) st[GL_RATE_LANES - 1] ^= 0x80ULL << 56;
        gl_keccakf(st);
    }
    gl_keccak_squeeze32(st, level + i * 32);
}

/* One level up: node i = keccak256(0x01 || below[2i] || below[2i + 1]), for i < count. */
GL_KERNEL gl_level(const u8 *below, u64 count, u8 *above) {
    u64 i = GL_ID;
    if (i >= count) return;
    u8 buf[65];
    buf[0] = 1;
    GL_UNROLL
    for (int j = 0; j < 64; j++) buf[1 + j] = below[i * 64 + j];
    gl_keccak256_short(buf, 65, above + i * 32);
}

/* ---- Freivalds' check over GF(2^61 - 1) ---- */

#define GL_P 0x1fffffffffffffffULL

GL_DEVICE u64 gl_fold(u64 x) { /* x < 2^64 -> x mod P */
    u64 r = (x & GL_P) + (x >> 61);
    return r >= GL_P ? r - GL_P : r;
}

GL_DEVICE u64 gl_addmod(u64 a, u64 b) { /* a, b < P */
    u64 r = a + b;
    return r >= GL_P ? r - GL_P : r;
}

GL_DEVICE u64 gl_mulmod(u64 a, u64 b) { /* a, b < P */
    u64 lo = a * b;
    u64 hi = GL_MULHI(a, b);
    u64 r = ((hi << 3) | (lo >> 61)) + (lo & GL_P);
    return gl_fold(r);
}

/* r[j] = uint256_be(keccak256(r_seed || uint64_be(j))) mod P, for j < len. */
GL_KERNEL gl_fv_vector(const u8 *r_seed, u64 len, u64 *r) {
    u64 j = GL_ID;
    if (j >= len) return;
    u8 buf[40];
    GL_UNROLL
    for (int i = 0; i < 32; i++) buf[i] = r_seed[i];
    gl_put_be64(buf + 32, j);
    u8 h[32];
    gl_keccak256_short(buf, 40, h);
    /* value = L3 2^192 + L2 2^128 + L1 2^64 + L0 and 2^64 = 8 (mod P). */
    u64 acc = 0, w = 1;
    for (int limb = 0; limb < 4; limb++) {
        u64 l = 0;
        for (int i = 0; i < 8; i++) l = (l << 8) | h[24 - 8 * limb + i];
        acc = gl_addmod(acc, gl_mulmod(gl_fold(l), w));
        w = gl_mulmod(w, 8);
    }
    r[j] = acc;
}

/* ---- exact accumulation, reduced once ----
 * A product of a matrix element and a vector element mod P costs a full 61 x 61-bit mulmod
 * (about 50 instructions). Instead each vector element v < 2^61 is split into limbs that fit 32
 * bits signed, each element x limb product is one 32 x 32 -> 64-bit multiply-add, the products
 * are summed exactly in signed 64-bit accumulators, and the sums are reduced mod P once per
 * thread (or per GL_FOLD_TERMS terms, where a sum could otherwise overflow). The result is the
 * same residue, so the same bits. */

#define GL_FOLD_TERMS 1024u

GL_DEVICE u64 gl_from_i64(i64 v) { /* any v -> v mod P */
    u64 mag = v < 0 ? (u64)0 - (u64)v : (u64)v;
    u64 r = gl_fold(mag);
    return v < 0 && r ? GL_P - r : r;
}

/* v = hi 2^31 + lo (INT8 elements: |x lo| < 2^38, |x hi| < 2^37; 2^24 terms fit in 63 bits). */
GL_DEVICE i32 gl_lo31(u64 v) { return (i32)(v & 0x7fffffffULL); }
GL_DEVICE i32 gl_hi31(u64 v) { return (i32)(v >> 31); }
GL_DEVICE u64 gl_join31(i64 hi, i64 lo) {
    return gl_addmod(gl_mulmod(gl_from_i64(hi), 1ULL << 31), gl_from_i64(lo));
}

/* v = l2 2^42 + l1 2^21 + l0 (INT32 elements: |x limb| < 2^52; GL_FOLD_TERMS terms fit). */
#define GL_LIMB21 0x1fffffULL
GL_DEVICE u64 gl_join21(i64 l2, i64 l1, i64 l0) {
    u64 r = gl_mulmod(gl_from_i64(l2), 1ULL << 42);
    r = gl_addmod(r, gl_mulmod(gl_from_i64(l1), 1ULL << 21));
    return gl_addmod(r, gl_from_i64(l0));
}

/* Partial sums of s = B r: thread (c, t) adds B[j][t] r[j] = bt[j * stride + t] r[j] over the rows
 * j of chunk c (jchunk <= 2^24 rows each) into part[c * k + t]. */
GL_KERNEL gl_fv_bt(const i8 *bt, u64 n, u64 k, u64 stride, const u64 *r, u64 jchunk, u64 chunks,
                   u64 *part) {
    u64 id = GL_ID;
    if (id >= chunks * k) return;
    u64 c = id / k, t = id % k;
    u64 end = (c + 1) * jchunk < n ? (c + 1) * jchunk : n;
    i64 hi = 0, lo = 0;
    for (u64 j = c * jchunk; j < end; j++) {
        i64 x = bt[j * stride + t];
        u64 v = r[j];
        hi += x * (i64)gl_hi31(v);
        lo += x * (i64)gl_lo31(v);
    }
    part[c * k + t] = gl_join31(hi, lo);
}

/* out[t] = sum over c < chunks of part[c * len + t] (mod P). */
GL_KERNEL gl_fv_sum(const u64 *part, u64 chunks, u64 len, u64 *out) {
    u64 t = GL_ID;
    if (t >= len) return;
    u64 acc = 0;
    for (u64 c = 0; c < chunks; c++) acc = gl_addmod(acc, part[c * len + t]);
    out[t] = acc;
}

/* Row dot products against v, split in `lanes` interleaved lanes per row: thread (i, l) adds
 * a[i * stride + t] v[t] for the elements t of the groups of four g = l, l + lanes, ... (t = 4g ..
 * 4g + 3, t < cols) into part[l * rows + i] (lane-major, so that gl_fv_compare's neighbouring
 * threads read neighbouring partials). A group is one load when the rows are 4-element aligned
 * (stride a multiple of 4 and an aligned base: always, with the plan's padding of 16): a warp
 * then reads 128 contiguous bytes of an INT8 row, 512 of an INT32 row, in one instruction per
 * thread. Otherwise the same groups are read an element at a time: the same sums, the same bits.
 * One kernel for INT8 rows (A), one for INT32 (C). */
GL_DEVICE int gl_aligned4(const void *base, u64 stride, u64 elem) {
    return ((u64)base % (4 * elem)) == 0 && stride % 4 == 0;
}

GL_KERNEL gl_fv_rows_i8(const i8 *a, u64 rows, u64 cols, u64 stride, const u64 *v, u64 lanes,
                        u64 *part) {
    u64 id = GL_ID;
    if (id >= rows * lanes) return;
    u64 i = id / lanes, l = id % lanes;
    const i8 *row = a + i * stride;
    u64 groups = (cols + 3) / 4, full = cols / 4;
    int vector = gl_aligned4(a, stride, 1);
    i64 hi = 0, lo = 0;
    for (u64 g = l; g < groups; g += lanes) {
        i8 x4[4];
        if (vector && g < full) {
            u32 w = ((const u32 *)row)[g]; /* little-endian: byte b is element 4g + b */
            GL_UNROLL
            for (int b = 0; b < 4; b++) x4[b] = (i8)(u8)(w >> (8 * b));
        } else {
            GL_UNROLL
            for (int b = 0; b < 4; b++) x4[b] = 4 * g + b < cols ? row[4 * g + b] : 0;
        }
        GL_UNROLL
        for (int b = 0; b < 4; b++) {
            if (4 * g + b >= cols) break;
            i64 x = x4[b];
            u64 w = v[4 * g + b];
            hi += x * (i64)gl_hi31(w);
            lo += x * (i64)gl_lo31(w);
        }
    }
    part[l * rows + i] = gl_join31(hi, lo);
}

GL_KERNEL gl_fv_rows_i32(const i32 *a, u64 rows, u64 cols, u64 stride, const u64 *v, u64 lanes,
                         u64 *part) {
    u64 id = GL_ID;
    if (id >= rows * lanes) return;
    u64 i = id / lanes, l = id % lanes;
    const i32 *row = a + i * stride;
    u64 groups = (cols + 3) / 4, full = cols / 4;
    int vector = gl_aligned4(a, stride, 4);
    u64 acc = 0;
    i64 l2 = 0, l1 = 0, l0 = 0;
    u32 terms = 0;
    for (u64 g = l; g < groups; g += lanes) {
        i32 x4[4];
        if (vector && g < full) {
            gl_i32x4 q = ((const gl_i32x4 *)row)[g];
            x4[0] = q.x;
            x4[1] = q.y;
            x4[2] = q.z;
            x4[3] = q.w;
        } else {
            GL_UNROLL
            for (int b = 0; b < 4; b++) x4[b] = 4 * g + b < cols ? row[4 * g + b] : 0;
        }
        GL_UNROLL
        for (int b = 0; b < 4; b++) {
            if (4 * g + b >= cols) break;
            i64 x = x4[b];
            u64 w = v[4 * g + b];
            l2 += x * (i64)(w >> 42);
            l1 += x * (i64)((w >> 21) & GL_LIMB21);
            l0 += x * (i64)(w & GL_LIMB21);
            if (++terms == GL_FOLD_TERMS) {
                acc = gl_addmod(acc, gl_join21(l2, l1, l0));
                l2 = l1 = l0 = 0;
                terms = 0;
            }
        }
    }
    part[l * rows + i] = gl_addmod(acc, gl_join21(l2, l1, l0));
}

/* bad[i] = 1 when row i of A (B r) and row i of C r differ, else 0 (partials lane-major). */
GL_KERNEL gl_fv_compare(const u64 *pa, const u64 *pc, u64 rows, u64 lanes, u32 *bad) {
    u64 i = GL_ID;
    if (i >= rows) return;
    u64 y = 0, z = 0;
    for (u64 l = 0; l < lanes; l++) {
        y = gl_addmod(y, pa[l * rows + i]);
        z = gl_addmod(z, pc[l * rows + i]);
    }
    bad[i] = y != z ? 1u : 0u;
}
