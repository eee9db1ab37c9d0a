//! The device layout of one `matmul_i8` job, shared by the CUDA path and the tests that run the
//! same kernels compiled as C: padded sizes (what cuBLAS's INT8 tensor-core GEMM needs), thread
//! counts per kernel, and where each level of the Merkle tree lives (C in 1 KiB leaves of
//! [`LEAF_ELEMS`] int32s, as `gridlease_workload::merkle` commits a result).
//!
//! cuBLAS is column-major. C (m x n, row-major) is computed as its transpose in column-major
//! terms, `C^T = B^T A^T` with `transa = T, transb = N` ("TN", the layout INT8 IMMA kernels want):
//! A row-major (m x kp) is `A^T` column-major with `lda = kp`, `B^T` row-major (n x kp) is B
//! column-major with `ldb = kp`, and C comes out row-major with `ldc = np`. k is padded with zeros
//! to a multiple of 16 (leading dimensions and pointers 16-byte aligned), m and n to multiples of
//! 16; zero padding adds nothing to any dot product, and only the m x n corner is committed.

/// Padding of every dimension.
pub const PAD: u64 = 16;
/// Interleaved lanes per row in Freivalds' row products.
pub const FV_LANES: u64 = 256;
/// Rows of B^T per chunk in Freivalds' `B r`.
pub const FV_JCHUNK: u64 = 256;
/// Elements of C per Merkle leaf (as gridlease-workload; `GL_LEAF_ELEMS` in `kernels.cu`).
pub const LEAF_ELEMS: u64 = gridlease_workload::matmul::LEAF_ELEMS as u64;
/// Threads per block of `gl_leaves`. A thread hashes a whole 1 KiB leaf (8 permutations), so
/// blocks are kept small to spread a modest C over every SM: C at 1,024^2 is 4,096 leaves, 64
/// blocks of 64 rather than 16 of 256.
pub const LEAF_BLOCK: u64 = 64;

/// Sizes of one job on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Rows of A and C.
    pub m: u64,
    /// Columns of A, rows of B.
    pub k: u64,
    /// Columns of B and C.
    pub n: u64,
    /// m rounded up to [`PAD`].
    pub mp: u64,
    /// k rounded up to [`PAD`] (row stride of A and of B^T).
    pub kp: u64,
    /// n rounded up to [`PAD`] (row stride of C).
    pub np: u64,
}

impl Plan {
    /// The layout of an m x k by k x n product.
    pub fn new(m: u32, k: u32, n: u32) -> Self {
        let (m, k, n) = (u64::from(m), u64::from(k), u64::from(n));
        Self {
            m,
            k,
            n,
            mp: m.next_multiple_of(PAD),
            kp: k.next_multiple_of(PAD),
            np: n.next_multiple_of(PAD),
        }
    }

    /// Bytes of padded A (mp x kp).
    pub fn a_len(&self) -> u64 {
        self.mp * self.kp
    }

    /// Bytes of padded B^T (np x kp).
    pub fn bt_len(&self) -> u64 {
        self.np * self.kp
    }

    /// Elements of padded C (mp x np).
    pub fn c_len(&self) -> u64 {
        self.mp * self.np
    }

    /// Threads of `gl_generate` for a stream of `rows` rows of k: one per 32-byte block.
    pub fn gen_threads(&self, rows: u64) -> u64 {
        (rows * self.k).div_ceil(32)
    }

    /// Bytes of C as committed (big-endian int32s).
    pub fn c_bytes(&self) -> u64 {
        self.m * self.n * 4
    }

    /// Real leaves of C's tree: `gridlease_workload::merkle::result_leaves` of C's bytes (at least
    /// one: an empty C is one empty leaf). Also the threads of `gl_leaves`.
    pub fn leaves(&self) -> u64 {
        gridlease_workload::merkle::result_leaves(self.c_bytes())
    }

    /// Leaf-level width (a power of two, at least 1).
    pub fn width(&self) -> u64 {
        self.leaves().max(1).next_power_of_two()
    }

    /// Nodes of the whole tree, all levels end to end (leaf level first, root last).
    pub fn tree_nodes(&self) -> u64 {
        2 * self.width() - 1
    }

    /// (offset of the level below, offset of this level, nodes) for each level above the leaves,
    /// in node units, bottom-up.
    pub fn levels(&self) -> Vec<(u64, u64, u64)> {
        let mut out = Vec::new();
        let (mut below, mut count) = (0, self.width());
        while count > 1 {
            let above = below + count;
            out.push((below, above, count / 2));
            below = above;
            count /= 2;
        }
        out
    }

    /// The `cublasGemmEx` call that computes C, in cuBLAS's column-major terms. cuBLAS's A is our
    /// B^T buffer and its B is our A buffer; C comes out row-major m x n with row stride np.
    pub fn gemm(&self) -> Gemm {
        Gemm {
            transa: true,
            transb: false,
            m: self.np,
            n: self.mp,
            k: self.kp,
            lda: self.kp,
            ldb: self.kp,
            ldc: self.np,
        }
    }

    /// Chunks of B^T rows in Freivalds' `B r`.
    pub fn fv_chunks(&self) -> u64 {
        self.n.div_ceil(FV_JCHUNK)
    }
}

/// Arguments of one `cublasGemmEx` call (column-major; `trans*` true for `CUBLAS_OP_T`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gemm {
    /// `transa`.
    pub transa: bool,
    /// `transb`.
    pub transb: bool,
    /// Rows of op(A) and C.
    pub m: u64,
    /// Columns of op(B) and C.
    pub n: u64,
    /// Columns of op(A), rows of op(B).
    pub k: u64,
    /// Leading dimension of A.
    pub lda: u64,
    /// Leading dimension of B.
    pub ldb: u64,
    /// Leading dimension of C.
    pub ldc: u64,
}

impl Gemm {
    /// What cuBLAS computes with these arguments, alpha = 1, beta = 0, on the host (a reference
    /// for tests of the layout): `C[i + j ldc] = sum_l op(A)[i][l] op(B)[l][j]`, where
    /// `op(A)[i][l]` is `A[l + i lda]` when transposed, else `A[i + l lda]` (and B alike).
    pub fn reference(&self, a: &[i8], b: &[i8], c: &mut [i32]) {
        for j in 0..self.n {
            for i in 0..self.m {
                let mut acc = 0i32;
                for l in 0..self.k {
                    let x = if self.transa {
                        a[(l + i * self.lda) as usize]
                    } else {
                        a[(i + l * self.lda) as usize]
                    };
                    let y = if self.transb {
                        b[(j + l * self.ldb) as usize]
                    } else {
                        b[(l + j * self.ldb) as usize]
                    };
                    acc += i32::from(x) * i32::from(y);
                }
                c[(i + j * self.ldc) as usize] = acc;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridlease_workload::merkle::{self, RESULT_LEAF_BYTES};

    #[test]
    fn padding_and_levels() {
        let p = Plan::new(17, 33, 9);
        assert_eq!((p.mp, p.kp, p.np), (32, 48, 16));
        let one = Plan::new(1, 1, 1);
        assert_eq!(
            (
                one.leaves(),
                one.width(),
                one.tree_nodes(),
                one.levels().len()
            ),
            (1, 1, 1, 0)
        );
        // 31 x 47 = 1,457 elements: 5 full leaves and one of 177, padded to 8.
        let p = Plan::new(31, 100, 47);
        assert_eq!((p.leaves(), p.width(), p.tree_nodes()), (6, 8, 15));
        assert_eq!(p.levels(), vec![(0, 8, 4), (8, 12, 2), (12, 14, 1)]);
        assert_eq!(p.levels().last().map(|l| l.1), Some(p.tree_nodes() - 1));
    }

    #[test]
    fn leaves_are_cores_one_kib_leaves() {
        assert_eq!(LEAF_ELEMS * 4, RESULT_LEAF_BYTES as u64);
        for (m, n) in [
            (0, 0),
            (1, 1),
            (16, 16),
            (1, 257),
            (32, 16),
            (33, 65),
            (64, 64),
        ] {
            let p = Plan::new(m, 1, n);
            let bytes = vec![0u8; p.c_bytes() as usize];
            let tree = merkle::MerkleTree::result(&bytes);
            assert_eq!(p.leaves(), tree.leaves(), "{m} x {n}");
            assert_eq!(p.levels().len(), tree.depth(), "{m} x {n}");
        }
    }
}
