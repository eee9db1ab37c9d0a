//! The built-in verifiable workload `matmul_i8`: C = A x B, A (m x k) and B (k x n) INT8,
//! C (m x n) INT32, exact for k <= 65,536.
//!
//! Everything here is specified to the byte so that Rust, the GPU kernels and the Solidity fraud
//! proof (`MatmulProof.sol`) agree:
//!
//! - **Inputs from a 32-byte seed.** `gen(tag, x)` is byte `x mod 32` of
//!   `keccak256(seed ‖ tag ‖ uint64_be(x / 32))`, read as a two's-complement `i8`.
//!   `A[i][t] = gen('A', i*k + t)` (row-major); `B[t][j] = gen('B', j*k + t)` (B is generated
//!   column by column, so a column of B is contiguous, like a row of A).
//! - **Result.** C row-major, each element a big-endian `int32` (`m*n*4` bytes), committed as a
//!   result tree ([`crate::merkle`]): leaves of [`LEAF_ELEMS`] elements (1 KiB, the last leaf
//!   shorter). The provider posts its root and size.
//! - **Spec hash** of a matmul order: `keccak256(abi.encode(MATMUL_I8_TYPEHASH, seed, m, k, n))`,
//!   so the contract can check the job parameters a fraud proof claims.
//! - **Inputs as data** ([`MatmulData`]): A (row-major, m x k) and B (row-major, k x n) given as
//!   bytes, committed as two positional trees: leaf i of A's is row i of A, leaf j of B's is
//!   column j of B (k bytes each). The spec hash is then
//!   `keccak256(abi.encode(MATMUL_I8_DATA_TYPEHASH, aRoot, bRoot, m, k, n))` and a fraud proof
//!   carries the row and the column with their Merkle proofs.
//! - **Checking.** Freivalds' algorithm over GF(2^61 - 1): `A(B r) == C r` for a random `r`, in
//!   O(mk + kn + mn) instead of O(mkn). A mismatching row is then recomputed exactly to find the
//!   wrong element, from which [`FraudProof`] is built.

use alloy_primitives::{B256, U256, keccak256};
use alloy_sol_types::SolValue;

use crate::merkle::{MerkleTree, RESULT_LEAF_BYTES};

/// Elements of C per Merkle leaf.
pub const LEAF_ELEMS: usize = RESULT_LEAF_BYTES / 4;
/// Largest k for which INT32 accumulation is exact (|a*b| <= 2^14, 2^16 terms).
pub const MAX_K: u32 = 65_536;
/// Tag of A in the generator.
pub const TAG_A: u8 = b'A';
/// Tag of B in the generator.
pub const TAG_B: u8 = b'B';
/// The field of Freivalds' check.
pub const P: u64 = (1 << 61) - 1;

/// `keccak256("gridlease.matmul_i8.v1(bytes32 seed,uint32 m,uint32 k,uint32 n)")`.
pub fn typehash() -> B256 {
    keccak256("gridlease.matmul_i8.v1(bytes32 seed,uint32 m,uint32 k,uint32 n)")
}

/// `keccak256("gridlease.matmul_i8_data.v1(bytes32 aRoot,bytes32 bRoot,uint32 m,uint32 k,uint32 n)")`.
pub fn data_typehash() -> B256 {
    keccak256("gridlease.matmul_i8_data.v1(bytes32 aRoot,bytes32 bRoot,uint32 m,uint32 k,uint32 n)")
}

/// The spec hash of a data job with input roots `a_root` (A by rows) and `b_root` (B by columns).
pub fn data_spec_hash(a_root: B256, b_root: B256, m: u32, k: u32, n: u32) -> B256 {
    keccak256((data_typehash(), a_root, b_root, m, k, n).abi_encode())
}

/// Check a shape: every side at least 1, k small enough for exact INT32 accumulation.
pub fn validate_shape(m: u32, k: u32, n: u32) -> Result<(), String> {
    if m == 0 || k == 0 || n == 0 {
        return Err("m, k and n must be at least 1".into());
    }
    if k > MAX_K {
        return Err(format!(
            "k = {k} is above {MAX_K}: INT32 accumulation would overflow"
        ));
    }
    Ok(())
}

/// The operands of a matmul job, wherever they come from.
pub trait Operands {
    /// (m, k, n).
    fn shape(&self) -> (u32, u32, u32);
    /// Row `i` of A (k elements).
    fn a_row(&self, i: u32) -> Vec<i8>;
    /// Column `j` of B (k elements).
    fn b_col(&self, j: u32) -> Vec<i8>;
    /// A, row-major (m x k).
    fn a(&self) -> std::borrow::Cow<'_, [i8]>;
    /// B transposed: row j is column j of B (n x k).
    fn bt(&self) -> std::borrow::Cow<'_, [i8]>;
}

/// A matmul job: shape and seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Matmul {
    /// Input seed.
    pub seed: B256,
    /// Rows of A and C.
    pub m: u32,
    /// Columns of A, rows of B.
    pub k: u32,
    /// Columns of B and C.
    pub n: u32,
}

/// The first wrong element found, and how to prove it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FraudProof {
    /// Row.
    pub i: u32,
    /// Column.
    pub j: u32,
    /// What the result claims at (i, j).
    pub claimed: i32,
    /// The true value.
    pub correct: i32,
    /// Leaf holding (i, j).
    pub leaf_index: u64,
    /// That leaf's bytes.
    pub leaf: Vec<u8>,
    /// Its Merkle proof (bottom-up siblings).
    pub proof: Vec<B256>,
}

/// `count` generator bytes starting at element `start` of stream `tag`.
pub fn generate(seed: B256, tag: u8, start: u64, count: usize) -> Vec<i8> {
    let mut out = Vec::with_capacity(count);
    let mut buf = [0u8; 41];
    buf[..32].copy_from_slice(seed.as_slice());
    buf[32] = tag;
    let mut x = start;
    let end = start + count as u64;
    while x < end {
        let block = x / 32;
        buf[33..].copy_from_slice(&block.to_be_bytes());
        let h = keccak256(buf);
        let from = (x % 32) as usize;
        let to = ((end - block * 32).min(32)) as usize;
        out.extend(h[from..to].iter().map(|&b| b as i8));
        x = block * 32 + to as u64;
    }
    out
}

impl Matmul {
    /// Check the shape.
    pub fn validate(&self) -> Result<(), String> {
        validate_shape(self.m, self.k, self.n)
    }

    /// The order's spec hash.
    pub fn spec_hash(&self) -> B256 {
        keccak256((typehash(), self.seed, self.m, self.k, self.n).abi_encode())
    }

    /// Row `i` of A (k elements).
    pub fn a_row(&self, i: u32) -> Vec<i8> {
        generate(
            self.seed,
            TAG_A,
            u64::from(i) * u64::from(self.k),
            self.k as usize,
        )
    }

    /// Column `j` of B (k elements).
    pub fn b_col(&self, j: u32) -> Vec<i8> {
        generate(
            self.seed,
            TAG_B,
            u64::from(j) * u64::from(self.k),
            self.k as usize,
        )
    }

    /// A, row-major (m x k).
    pub fn a(&self) -> Vec<i8> {
        generate(self.seed, TAG_A, 0, self.m as usize * self.k as usize)
    }

    /// B transposed: row j is column j of B (n x k).
    pub fn bt(&self) -> Vec<i8> {
        generate(self.seed, TAG_B, 0, self.n as usize * self.k as usize)
    }

    /// Leaves of C's tree.
    pub fn leaves(&self) -> u64 {
        (u64::from(self.m) * u64::from(self.n)).div_ceil(LEAF_ELEMS as u64)
    }
}

impl Operands for Matmul {
    fn shape(&self) -> (u32, u32, u32) {
        (self.m, self.k, self.n)
    }
    fn a_row(&self, i: u32) -> Vec<i8> {
        Self::a_row(self, i)
    }
    fn b_col(&self, j: u32) -> Vec<i8> {
        Self::b_col(self, j)
    }
    fn a(&self) -> std::borrow::Cow<'_, [i8]> {
        Self::a(self).into()
    }
    fn bt(&self) -> std::borrow::Cow<'_, [i8]> {
        Self::bt(self).into()
    }
}

/// A matmul job whose inputs are data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatmulData {
    /// Rows of A and C.
    pub m: u32,
    /// Columns of A, rows of B.
    pub k: u32,
    /// Columns of B and C.
    pub n: u32,
    /// A, row-major (m x k).
    pub a: Vec<i8>,
    /// B transposed (n x k): row j is column j of B.
    pub bt: Vec<i8>,
}

/// Row i of A and column j of B of a data job with their Merkle proofs (`MatmulProof.Operands`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputProof {
    /// Row i of A.
    pub a_row: Vec<u8>,
    /// Its proof in A's row tree.
    pub a_proof: Vec<B256>,
    /// Column j of B.
    pub b_col: Vec<u8>,
    /// Its proof in B's column tree.
    pub b_proof: Vec<B256>,
}

fn as_bytes(v: &[i8]) -> Vec<u8> {
    v.iter().map(|&x| x as u8).collect()
}

fn as_i8(v: Vec<u8>) -> Vec<i8> {
    v.into_iter().map(|b| b as i8).collect()
}

impl MatmulData {
    /// A job from the bytes of A (row-major m x k) and B (row-major k x n), as a tenant gives
    /// them; errors name the operand whose size does not fit the shape.
    pub fn from_row_major(m: u32, k: u32, n: u32, a: Vec<u8>, b: &[u8]) -> Result<Self, String> {
        validate_shape(m, k, n)?;
        let (mu, ku, nu) = (m as usize, k as usize, n as usize);
        if a.len() != mu * ku {
            return Err(format!(
                "A has {} bytes; a {m} x {k} INT8 matrix has {}",
                a.len(),
                mu * ku
            ));
        }
        if b.len() != ku * nu {
            return Err(format!(
                "B has {} bytes; a {k} x {n} INT8 matrix has {}",
                b.len(),
                ku * nu
            ));
        }
        let mut bt = vec![0i8; nu * ku];
        for t in 0..ku {
            for j in 0..nu {
                bt[j * ku + t] = b[t * nu + j] as i8;
            }
        }
        Ok(Self {
            m,
            k,
            n,
            a: as_i8(a),
            bt,
        })
    }

    /// A's tree: leaf i is row i.
    pub fn a_tree(&self) -> MerkleTree {
        MerkleTree::from_chunks(&as_bytes(&self.a), self.k as usize)
    }

    /// B's tree: leaf j is column j.
    pub fn b_tree(&self) -> MerkleTree {
        MerkleTree::from_chunks(&as_bytes(&self.bt), self.k as usize)
    }

    /// The order's spec hash.
    pub fn spec_hash(&self) -> B256 {
        data_spec_hash(
            self.a_tree().root(),
            self.b_tree().root(),
            self.m,
            self.k,
            self.n,
        )
    }

    /// Row i of A and column j of B with their proofs.
    pub fn input_proof(&self, i: u32, j: u32) -> InputProof {
        InputProof {
            a_row: as_bytes(&Operands::a_row(self, i)),
            a_proof: self.a_tree().proof(u64::from(i)),
            b_col: as_bytes(&Operands::b_col(self, j)),
            b_proof: self.b_tree().proof(u64::from(j)),
        }
    }
}

impl Operands for MatmulData {
    fn shape(&self) -> (u32, u32, u32) {
        (self.m, self.k, self.n)
    }
    fn a_row(&self, i: u32) -> Vec<i8> {
        let k = self.k as usize;
        self.a[i as usize * k..(i as usize + 1) * k].to_vec()
    }
    fn b_col(&self, j: u32) -> Vec<i8> {
        let k = self.k as usize;
        self.bt[j as usize * k..(j as usize + 1) * k].to_vec()
    }
    fn a(&self) -> std::borrow::Cow<'_, [i8]> {
        (&self.a[..]).into()
    }
    fn bt(&self) -> std::borrow::Cow<'_, [i8]> {
        (&self.bt[..]).into()
    }
}

fn dot(a: &[i8], b: &[i8]) -> i32 {
    // Widening in chunks keeps the compiler's vectoriser on i16 lanes.
    a.chunks(64)
        .zip(b.chunks(64))
        .map(|(x, y)| {
            x.iter()
                .zip(y)
                .map(|(&p, &q)| i32::from(i16::from(p) * i16::from(q)))
                .sum::<i32>()
        })
        .sum()
}

/// The CPU reference product: C (m x n, row-major) from A (m x k) and Bᵀ (n x k), blocked over
/// columns and split by rows across `threads` threads. Bit-identical to every other backend.
pub fn multiply(a: &[i8], bt: &[i8], m: usize, k: usize, n: usize, threads: usize) -> Vec<i32> {
    let never = std::sync::atomic::AtomicBool::new(false);
    // `never` is never set, so the product always completes.
    multiply_until(a, bt, m, k, n, threads, &never).unwrap_or_default()
}

/// [`multiply`] that gives up once `stop` is set: every thread checks it before each row of a
/// column block (64 dot products of length k), so it ends within a fraction of a second.
/// `None` when stopped.
pub fn multiply_until(
    a: &[i8],
    bt: &[i8],
    m: usize,
    k: usize,
    n: usize,
    threads: usize,
    stop: &std::sync::atomic::AtomicBool,
) -> Option<Vec<i32>> {
    use std::sync::atomic::Ordering::Relaxed;
    let mut c = vec![0i32; m * n];
    let threads = threads.clamp(1, m.max(1));
    let rows_per = m.div_ceil(threads);
    std::thread::scope(|s| {
        for (chunk_idx, out) in c.chunks_mut(rows_per * n).enumerate() {
            s.spawn(move || {
                let row0 = chunk_idx * rows_per;
                let rows = out.len() / n;
                const JB: usize = 64;
                for jb in (0..n).step_by(JB) {
                    let jend = (jb + JB).min(n);
                    for r in 0..rows {
                        if stop.load(Relaxed) {
                            return;
                        }
                        let arow = &a[(row0 + r) * k..(row0 + r + 1) * k];
                        for j in jb..jend {
                            out[r * n + j] = dot(arow, &bt[j * k..(j + 1) * k]);
                        }
                    }
                }
            });
        }
    });
    (!stop.load(Relaxed)).then_some(c)
}

/// C as committed: big-endian int32s.
pub fn encode(c: &[i32]) -> Vec<u8> {
    c.iter().flat_map(|v| v.to_be_bytes()).collect()
}

/// The result tree over C.
pub fn commit(c: &[i32]) -> MerkleTree {
    MerkleTree::result(&encode(c))
}

fn reduce(x: i128) -> u64 {
    x.rem_euclid(i128::from(P)) as u64
}

/// Random field vector of length `len` from `r_seed` (the checker picks `r_seed` at random).
fn field_vector(r_seed: B256, len: usize) -> Vec<u64> {
    (0..len as u64)
        .map(|j| {
            let mut buf = [0u8; 40];
            buf[..32].copy_from_slice(r_seed.as_slice());
            buf[32..].copy_from_slice(&j.to_be_bytes());
            let h = U256::from_be_bytes(keccak256(buf).0);
            (h % U256::from(P)).to::<u64>()
        })
        .collect()
}

/// Freivalds' check of `c` against A·B. Returns the rows where `A(B r) != C r` (empty: accept).
/// A correct product is always accepted; a wrong one is missed with probability <= 1/(2^61 - 1).
pub fn freivalds(
    a: &[i8],
    bt: &[i8],
    c: &[i32],
    m: usize,
    k: usize,
    n: usize,
    r_seed: B256,
) -> Vec<usize> {
    let r = field_vector(r_seed, n);
    // s = B r (k entries): B[t][j] = bt[j*k + t].
    let mut s = vec![0i128; k];
    for (j, &rj) in r.iter().enumerate() {
        let rj = i128::from(rj);
        for (acc, &b) in s.iter_mut().zip(&bt[j * k..(j + 1) * k]) {
            *acc += i128::from(b) * rj;
        }
    }
    let s: Vec<i128> = s.into_iter().map(|x| i128::from(reduce(x))).collect();
    let mut bad = Vec::new();
    for i in 0..m {
        let y: i128 = a[i * k..(i + 1) * k]
            .iter()
            .zip(&s)
            .map(|(&x, &sv)| i128::from(x) * sv)
            .sum();
        let z: i128 = c[i * n..(i + 1) * n]
            .iter()
            .zip(&r)
            .map(|(&x, &rv)| i128::from(x) * i128::from(rv))
            .sum();
        if reduce(y) != reduce(z) {
            bad.push(i);
        }
    }
    bad
}

/// Find a wrong element of `c` (Freivalds, then the suspect row recomputed exactly) and build its
/// fraud proof. `None` when `c` is correct. See [`localize_encoded`].
pub fn localize(job: &(impl Operands + ?Sized), c: &[i32], r_seed: B256) -> Option<FraudProof> {
    localize_encoded(job, &encode(c), r_seed)
}

/// Element `e` of C as a result encodes it (big-endian INT32).
fn element(c: &[u8], e: usize) -> i32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&c[e * 4..e * 4 + 4]);
    i32::from_be_bytes(b)
}

/// [`localize`] on C as the result's bytes (`m * n * 4`, checked by the caller), reading A and B
/// a row and a column at a time: besides the result it holds O(k + n) values, where the whole of A
/// and B (up to 1 GiB for a seeded job, generated) and C as integers were held before.
pub fn localize_encoded(
    job: &(impl Operands + ?Sized),
    c: &[u8],
    r_seed: B256,
) -> Option<FraudProof> {
    let (m, k, n) = job.shape();
    let (m32, n32) = (m, n);
    let (m, k, n) = (m as usize, k as usize, n as usize);
    let r = field_vector(r_seed, n);
    // s = B r (k entries), a column of B at a time.
    let mut s = vec![0i128; k];
    for (j, &rj) in (0..n32).zip(&r) {
        let rj = i128::from(rj);
        for (acc, &b) in s.iter_mut().zip(&job.b_col(j)) {
            *acc += i128::from(b) * rj;
        }
    }
    let s: Vec<i128> = s.into_iter().map(|x| i128::from(reduce(x))).collect();
    for (i, row) in (0..m32).zip(c.chunks_exact(n * 4).take(m)) {
        let a = job.a_row(i);
        let y: i128 = a.iter().zip(&s).map(|(&x, &sv)| i128::from(x) * sv).sum();
        let z: i128 = row
            .chunks_exact(4)
            .zip(&r)
            .map(|(b, &rv)| {
                i128::from(i32::from_be_bytes([b[0], b[1], b[2], b[3]])) * i128::from(rv)
            })
            .sum();
        if reduce(y) != reduce(z) {
            let start = i as usize * n;
            let j = (0..n32).find(|&j| dot(&a, &job.b_col(j)) != element(c, start + j as usize))?;
            return Some(proof_for_encoded(job, c, i, j));
        }
    }
    None
}

/// The fraud proof material for element (i, j) of `c` (whether or not it is wrong).
pub fn proof_for(job: &(impl Operands + ?Sized), c: &[i32], i: u32, j: u32) -> FraudProof {
    proof_for_encoded(job, &encode(c), i, j)
}

/// [`proof_for`] on C as the result's bytes.
pub fn proof_for_encoded(job: &(impl Operands + ?Sized), c: &[u8], i: u32, j: u32) -> FraudProof {
    let e = i as usize * job.shape().2 as usize + j as usize;
    let leaf_index = (e / LEAF_ELEMS) as u64;
    let from = leaf_index as usize * LEAF_ELEMS * 4;
    let to = (from + LEAF_ELEMS * 4).min(c.len());
    FraudProof {
        i,
        j,
        claimed: element(c, e),
        correct: dot(&job.a_row(i), &job.b_col(j)),
        leaf_index,
        leaf: c[from..to].to_vec(),
        proof: MerkleTree::result(c).proof(leaf_index),
    }
}

/// The shared test vectors (`testdata/matmul_vectors.json`), consumed by the Rust unit tests and
/// the revm contract tests so both sides are held to the same bytes.
pub fn test_vectors() -> serde_json::Value {
    use serde_json::json;
    let hex = |b: &[u8]| format!("0x{}", alloy_primitives::hex::encode(b));
    let bytes = |v: &[i8]| v.iter().map(|&x| x as u8).collect::<Vec<u8>>();
    let element = |p: &FraudProof| {
        json!({
            "i": p.i, "j": p.j, "leafIndex": p.leaf_index, "leaf": hex(&p.leaf),
            "proof": p.proof, "claimed": p.claimed, "correct": p.correct,
        })
    };
    // Small shapes fit in one leaf; the larger ones span 3, 5 and 9 leaves (a padded tree).
    let shapes = [
        (1u32, 1u32, 1u32, 1u8),
        (3, 17, 5, 2),
        (5, 70, 9, 4),
        (20, 64, 33, 7),
        (40, 17, 30, 6),
        (48, 8, 48, 9),
    ];
    let cases: Vec<serde_json::Value> = shapes
        .iter()
        .map(|&(m, k, n, s)| {
            let job = Matmul {
                seed: B256::repeat_byte(s),
                m,
                k,
                n,
            };
            let (a, bt) = (job.a(), job.bt());
            let c = multiply(&a, &bt, m as usize, k as usize, n as usize, 1);
            let last = (m - 1, n - 1);
            let picks = [(0, 0), (m / 2, n / 2), last];
            let elements: Vec<_> = picks
                .iter()
                .map(|&(i, j)| element(&proof_for(&job, &c, i, j)))
                .collect();
            let mut bad = c.clone();
            let e = (m * n / 2) as usize;
            bad[e] ^= 1 << 5;
            let fraud =
                localize(&job, &bad, B256::repeat_byte(0xee)).expect("a flipped bit is found");
            json!({
                "seed": job.seed, "m": m, "k": k, "n": n, "specHash": job.spec_hash(),
                "a": hex(&bytes(&a)), "bt": hex(&bytes(&bt)), "c": hex(&encode(&c)),
                "root": commit(&c).root(), "elements": elements,
                "tampered": { "root": commit(&bad).root(), "fraud": element(&fraud) },
            })
        })
        .collect();
    json!({
        "about": "gridlease matmul_i8 vectors: generator bytes, products, Merkle roots and proofs (workload/src/matmul.rs)",
        "typehash": typehash(),
        "cases": cases,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle;

    #[test]
    fn shared_vectors_file_is_current() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../testdata/matmul_vectors.json"
        );
        let want = serde_json::to_string_pretty(&test_vectors()).expect("json") + "\n";
        if std::env::var_os("GRIDLEASE_WRITE_VECTORS").is_some() {
            std::fs::write(path, &want).expect("write vectors");
        }
        let got = std::fs::read_to_string(path).expect("testdata/matmul_vectors.json exists");
        assert!(
            got == want,
            "testdata/matmul_vectors.json is stale: rerun with GRIDLEASE_WRITE_VECTORS=1"
        );
    }

    fn job(m: u32, k: u32, n: u32, s: u8) -> Matmul {
        Matmul {
            seed: B256::repeat_byte(s),
            m,
            k,
            n,
        }
    }

    fn naive(j: &Matmul) -> Vec<i32> {
        let (a, bt) = (j.a(), j.bt());
        let (m, k, n) = (j.m as usize, j.k as usize, j.n as usize);
        let mut c = vec![0; m * n];
        for i in 0..m {
            for jj in 0..n {
                c[i * n + jj] = (0..k)
                    .map(|t| i32::from(a[i * k + t]) * i32::from(bt[jj * k + t]))
                    .sum();
            }
        }
        c
    }

    #[test]
    fn data_job_commits_rows_and_columns_and_localises_a_wrong_element() {
        let (m, k, n) = (5u32, 37u32, 3u32);
        let a: Vec<u8> = (0..m * k).map(|x| (x * 7 + 3) as u8).collect();
        let b: Vec<u8> = (0..k * n).map(|x| (x * 13 + 250) as u8).collect();
        let d = MatmulData::from_row_major(m, k, n, a.clone(), &b).expect("shape fits");
        // Column j of B is B[t][j] for every t.
        let col1: Vec<i8> = (0..k as usize)
            .map(|t| b[t * n as usize + 1] as i8)
            .collect();
        assert_eq!(Operands::b_col(&d, 1), col1);
        let c = multiply(&d.a, &d.bt, m as usize, k as usize, n as usize, 2);
        assert_eq!(localize(&d, &c, B256::repeat_byte(1)), None);
        let mut bad = c.clone();
        bad[2 * n as usize + 2] += 1;
        let f = localize(&d, &bad, B256::repeat_byte(1)).expect("found");
        assert_eq!((f.i, f.j, f.claimed, f.correct), (2, 2, bad[8], c[8]));
        let p = d.input_proof(f.i, f.j);
        let (ra, rb) = (d.a_tree().root(), d.b_tree().root());
        assert!(merkle::verify(ra, u64::from(m), 2, &p.a_row, &p.a_proof));
        assert!(merkle::verify(rb, u64::from(n), 2, &p.b_col, &p.b_proof));
        assert_eq!(d.spec_hash(), data_spec_hash(ra, rb, m, k, n));
        let short =
            MatmulData::from_row_major(m, k, n, a, &b[1..]).expect_err("B is one byte short");
        assert!(short.contains("B has"), "{short}");
    }

    #[test]
    fn a_stopped_product_gives_up() {
        use std::sync::atomic::AtomicBool;
        let j = Matmul {
            seed: B256::repeat_byte(1),
            m: 70,
            k: 33,
            n: 130,
        };
        let (a, bt) = (j.a(), j.bt());
        let full = multiply(&a, &bt, 70, 33, 130, 3);
        let go = AtomicBool::new(false);
        assert_eq!(multiply_until(&a, &bt, 70, 33, 130, 3, &go), Some(full));
        let stop = AtomicBool::new(true);
        assert_eq!(multiply_until(&a, &bt, 70, 33, 130, 3, &stop), None);
    }

    #[test]
    fn generator_is_contiguous_across_blocks() {
        let seed = B256::repeat_byte(7);
        let all = generate(seed, TAG_A, 0, 100);
        for start in [0u64, 1, 31, 32, 33, 63, 64, 70] {
            let part = generate(seed, TAG_A, start, 30);
            assert_eq!(part, all[start as usize..start as usize + 30]);
        }
        assert_ne!(generate(seed, TAG_A, 0, 32), generate(seed, TAG_B, 0, 32));
    }

    #[test]
    fn reference_matches_naive_on_odd_shapes_and_thread_counts() {
        for (m, k, n) in [
            (1, 1, 1),
            (3, 17, 5),
            (16, 16, 16),
            (17, 33, 9),
            (5, 130, 70),
        ] {
            let j = job(m, k, n, 3);
            let want = naive(&j);
            for threads in [1, 2, 3, 8] {
                let got = multiply(&j.a(), &j.bt(), m as usize, k as usize, n as usize, threads);
                assert_eq!(got, want, "{m}x{k}x{n} on {threads} threads");
            }
        }
    }

    #[test]
    fn freivalds_accepts_correct_and_localises_a_flipped_bit() {
        for (m, k, n) in [(1, 1, 1), (7, 19, 13), (16, 64, 16), (33, 17, 31)] {
            let j = job(m, k, n, 9);
            let c = naive(&j);
            let r = B256::repeat_byte(1);
            assert!(
                freivalds(&j.a(), &j.bt(), &c, m as usize, k as usize, n as usize, r).is_empty()
            );
            assert_eq!(localize(&j, &c, r), None);
            for e in [0usize, (m * n / 2) as usize, (m * n - 1) as usize] {
                for bit in [0u32, 17, 31] {
                    let mut bad = c.clone();
                    bad[e] ^= 1 << bit;
                    let p = localize(&j, &bad, r).expect("found");
                    assert_eq!((p.i as usize * n as usize + p.j as usize), e);
                    assert_eq!((p.claimed, p.correct), (bad[e], c[e]));
                    let root = commit(&bad).root();
                    assert!(merkle::verify(
                        root,
                        j.leaves(),
                        p.leaf_index,
                        &p.leaf,
                        &p.proof
                    ));
                }
            }
        }
    }

    // SECURITY.md PIN-05: a claimed shape never panics the parser or gets past it inexactly.
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn pin_05_matrices_of_any_claimed_shape_are_refused_or_exact(
            m in 0u32..40, k in 0u32..40, n in 0u32..40,
            a_len in 0usize..2000, b_len in 0usize..2000,
            huge in any::<bool>(),
        ) {
            let (m, k, n) = if huge { (u32::MAX, u32::MAX, u32::MAX) } else { (m, k, n) };
            let got = MatmulData::from_row_major(m, k, n, vec![1; a_len], &vec![2; b_len]);
            let fits = m > 0 && k > 0 && n > 0 && !huge
                && a_len == (m * k) as usize && b_len == (k * n) as usize;
            prop_assert_eq!(got.is_ok(), fits);
        }
    }
}
