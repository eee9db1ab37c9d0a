//! The CUDA kernels (`kernels/kernels.cu`) compiled as plain C with `kernels/prelude_c.h`, each
//! launch a loop over thread ids, and held to gridlease-workload's bytes: keccak256, the seeded A and
//! B^T in the padded device layout, the encoded C and its result tree (1 KiB leaves, no index:
//! every leaf length, full, partial and padded trees, the empty and 1-element results),
//! Freivalds' rejected rows. This is what keeps the GPU code honest on machines without a GPU.

use std::{path::PathBuf, sync::OnceLock};

use alloy_primitives::{B256, keccak256};
use gridlease_gpu::plan::{FV_JCHUNK, FV_LANES, LEAF_ELEMS, Plan};
use gridlease_workload::{
    matmul::{self, Matmul},
    merkle::{self, MerkleTree, RESULT_LEAF_BYTES},
};
use libloading::Library;

type U64 = u64;

struct Emu {
    lib: Library,
}

fn kernels_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("kernels")
}

/// Build `host_emul.c` (which includes kernels.cu) into a shared library with the C compiler the
/// `cc` crate finds, once per test process.
fn emu() -> &'static Emu {
    static EMU: OnceLock<Emu> = OnceLock::new();
    EMU.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir").keep();
        let compiler = crate::host_compiler(false, 2, &dir);
        let so = dir.join("libgl_kernels_emul.so");
        let status = compiler
            .to_command()
            .args(["-shared", "-fPIC", "-Wall", "-Wextra", "-Werror", "-x", "c"])
            .arg("-I")
            .arg(kernels_dir())
            .arg(kernels_dir().join("host_emul.c"))
            .arg("-o")
            .arg(&so)
            .status()
            .expect("run the C compiler");
        assert!(status.success(), "kernels.cu does not compile as C");
        // SAFETY: our own library, no initialisers.
        let lib = unsafe { Library::new(&so) }.expect("load the emulated kernels");
        Emu { lib }
    })
}

macro_rules! call {
    ($name:literal, $ty:ty, ($($arg:expr),* $(,)?)) => {{
        // SAFETY: the signature matches host_emul.c; buffers are sized by the callers below.
        unsafe {
            let f = emu().lib.get::<$ty>($name).expect($name);
            f($($arg),*)
        }
    }};
}

fn keccak_many(input: &[u8], len: u32, count: u64) -> Vec<u8> {
    let mut out = vec![0u8; count as usize * 32];
    call!(
        "emu_keccak_many",
        unsafe extern "C" fn(U64, *const u8, u32, U64, *mut u8),
        (count, input.as_ptr(), len, count, out.as_mut_ptr())
    );
    out
}

fn generate(p: &Plan, seed: B256, tag: u8, rows: u64, padded_rows: u64) -> Vec<i8> {
    let mut out = vec![0i8; (padded_rows * p.kp) as usize];
    call!(
        "emu_generate",
        unsafe extern "C" fn(U64, *const u8, u32, U64, U64, U64, *mut i8),
        (
            p.gen_threads(rows),
            seed.as_ptr(),
            u32::from(tag),
            rows * p.k,
            p.k,
            p.kp,
            out.as_mut_ptr()
        )
    );
    out
}

/// C's tree as `CudaMatmul::commit` launches it, from the padded C.
struct Committed {
    /// The root (the last node of the tree buffer).
    root: B256,
    /// The leaf level as `gl_leaves` left it, padding included (width nodes).
    leaves: Vec<B256>,
    /// The encoded C `gl_leaves` wrote (`None` when launched with a null `enc`).
    enc: Option<Vec<u8>>,
}

fn commit_with(p: &Plan, c_padded: &[i32], bytes: bool) -> Committed {
    assert!(c_padded.len() as u64 >= p.c_len(), "C is mp x np");
    let mut tree = vec![0u8; (p.tree_nodes() * 32) as usize];
    // u32s: the kernel stores each element as one 32-bit word (its big-endian bytes in memory).
    let mut enc = vec![0u32; (p.m * p.n) as usize];
    let enc_ptr = if bytes {
        enc.as_mut_ptr()
    } else {
        std::ptr::null_mut()
    };
    // One thread more than there are leaves: the extra one must leave the padding alone.
    call!(
        "emu_leaves",
        unsafe extern "C" fn(U64, *const i32, U64, U64, U64, U64, *mut u32, *mut u8),
        (
            p.leaves() + 1,
            c_padded.as_ptr(),
            p.m,
            p.n,
            p.np,
            p.leaves(),
            enc_ptr,
            tree.as_mut_ptr()
        )
    );
    let leaves = tree[..(p.width() * 32) as usize]
        .chunks(32)
        .map(B256::from_slice)
        .collect();
    for (below, above, count) in p.levels() {
        let base = tree.as_mut_ptr();
        // SAFETY: offsets are inside `tree` (Plan::levels), and the ranges do not overlap.
        let (b, a) = unsafe {
            (
                base.add((below * 32) as usize),
                base.add((above * 32) as usize),
            )
        };
        call!(
            "emu_level",
            unsafe extern "C" fn(U64, *const u8, U64, *mut u8),
            (count, b.cast_const(), count, a)
        );
    }
    Committed {
        root: B256::from_slice(&tree[tree.len() - 32..]),
        leaves,
        enc: bytes.then(|| enc.iter().flat_map(|w| w.to_ne_bytes()).collect()),
    }
}

/// (root, encoded C) from the padded C, as `CudaMatmul::commit` launches it; the same root without
/// the bytes (a null `enc`) is checked on the way.
fn commit(p: &Plan, c_padded: &[i32]) -> (B256, Vec<u8>) {
    let with = commit_with(p, c_padded, true);
    let without = commit_with(p, c_padded, false);
    assert_eq!(with.root, without.root, "a null enc changes the root");
    (with.root, with.enc.unwrap_or_default())
}

fn freivalds(p: &Plan, a: &[i8], bt: &[i8], c_padded: &[i32], r_seed: B256) -> Vec<usize> {
    let chunks = p.fv_chunks();
    let mut r = vec![0u64; p.n as usize];
    let mut part = vec![0u64; (chunks * p.k) as usize];
    let mut s = vec![0u64; p.k as usize];
    let mut pa = vec![0u64; (p.m * FV_LANES) as usize];
    let mut pc = vec![0u64; (p.m * FV_LANES) as usize];
    let mut bad = vec![0u32; p.m as usize];
    call!(
        "emu_fv_vector",
        unsafe extern "C" fn(U64, *const u8, U64, *mut U64),
        (p.n, r_seed.as_ptr(), p.n, r.as_mut_ptr())
    );
    call!(
        "emu_fv_bt",
        unsafe extern "C" fn(U64, *const i8, U64, U64, U64, *const U64, U64, U64, *mut U64),
        (
            chunks * p.k,
            bt.as_ptr(),
            p.n,
            p.k,
            p.kp,
            r.as_ptr(),
            FV_JCHUNK,
            chunks,
            part.as_mut_ptr()
        )
    );
    call!(
        "emu_fv_sum",
        unsafe extern "C" fn(U64, *const U64, U64, U64, *mut U64),
        (p.k, part.as_ptr(), chunks, p.k, s.as_mut_ptr())
    );
    call!(
        "emu_fv_rows_i8",
        unsafe extern "C" fn(U64, *const i8, U64, U64, U64, *const U64, U64, *mut U64),
        (
            p.m * FV_LANES,
            a.as_ptr(),
            p.m,
            p.k,
            p.kp,
            s.as_ptr(),
            FV_LANES,
            pa.as_mut_ptr()
        )
    );
    call!(
        "emu_fv_rows_i32",
        unsafe extern "C" fn(U64, *const i32, U64, U64, U64, *const U64, U64, *mut U64),
        (
            p.m * FV_LANES,
            c_padded.as_ptr(),
            p.m,
            p.n,
            p.np,
            r.as_ptr(),
            FV_LANES,
            pc.as_mut_ptr()
        )
    );
    call!(
        "emu_fv_compare",
        unsafe extern "C" fn(U64, *const U64, *const U64, U64, U64, *mut u32),
        (
            p.m,
            pa.as_ptr(),
            pc.as_ptr(),
            p.m,
            FV_LANES,
            bad.as_mut_ptr()
        )
    );
    bad.iter()
        .enumerate()
        .filter(|&(_, &f)| f != 0)
        .map(|(i, _)| i)
        .collect()
}

/// Shapes: tiny, exact multiples of 16, and odd ones that exercise every padding path. In C's
/// tree (256 elements a leaf): one partial leaf (1x1x1 to 17x33x9, 2x1000x3), one full leaf
/// (16x16x16; 256x3x1, whose rows are one element in a row stride of 16), full leaves filling a
/// power of two (32x8x16: 2, 64x64x64: 16), a partial last leaf in a padded tree (31x100x47: 6 of
/// 8, 33x250x65: 9 of 16, 7x9x77: 3 of 4 with rows of 77 in a stride of 80 crossing leaves) or in
/// a full one (1x3x1000: 4), and full leaves padded (48x5x48: 9 of 16).
/// `the_shapes_cover_every_kind_of_tree` checks the kinds.
const SHAPES: [(u32, u32, u32); 15] = [
    (1, 1, 1),
    (3, 17, 5),
    (8, 32, 8),
    (5, 70, 9),
    (16, 16, 16),
    (17, 33, 9),
    (31, 100, 47),
    (64, 64, 64),
    (33, 250, 65),
    (2, 1000, 3),
    (256, 3, 1),
    (32, 8, 16),
    (48, 5, 48),
    (1, 3, 1000),
    (7, 9, 77),
];

fn unpad(v: &[i8], rows: u64, k: u64, stride: u64) -> (Vec<i8>, bool) {
    let mut out = Vec::new();
    let mut padding_zero = true;
    for r in v.chunks(stride as usize).take(rows as usize) {
        out.extend_from_slice(&r[..k as usize]);
        padding_zero &= r[k as usize..].iter().all(|&x| x == 0);
    }
    padding_zero &= v[(rows * stride) as usize..].iter().all(|&x| x == 0);
    (out, padding_zero)
}

fn pad_c(c: &[i32], p: &Plan) -> Vec<i32> {
    let mut out = vec![0i32; p.c_len() as usize];
    for (i, row) in c.chunks(p.n as usize).enumerate() {
        out[i * p.np as usize..i * p.np as usize + row.len()].copy_from_slice(row);
    }
    out
}

#[test]
fn keccak_matches_for_every_short_length() {
    for len in 0u32..=135 {
        let count = 3u64;
        let input: Vec<u8> = (0..len as u64 * count)
            .map(|i| (i * 131 + u64::from(len)) as u8)
            .collect();
        let got = keccak_many(&input, len, count);
        for (i, h) in got.chunks(32).enumerate() {
            let msg = &input[i * len as usize..(i + 1) * len as usize];
            assert_eq!(h, keccak256(msg).as_slice(), "len {len} message {i}");
        }
    }
}

/// C values whose bytes all differ and include sign bits: a byte-order slip cannot hide.
fn scrambled(len: usize) -> Vec<i32> {
    (0..len as u32)
        .map(|x| x.wrapping_mul(0x9e37_79b9).rotate_left(7) as i32)
        .collect()
}

#[test]
fn the_shapes_cover_every_kind_of_tree() {
    let trees: Vec<(u64, u64, bool)> = SHAPES
        .iter()
        .map(|&(m, k, n)| {
            let p = Plan::new(m, k, n);
            let full_last = (p.m * p.n).is_multiple_of(LEAF_ELEMS);
            (p.leaves(), p.width(), full_last)
        })
        .collect();
    let any = |f: &dyn Fn(&(u64, u64, bool)) -> bool| trees.iter().any(f);
    assert!(any(&|&(l, _, full)| l == 1 && !full), "one partial leaf");
    assert!(any(&|&(l, _, full)| l == 1 && full), "one full leaf");
    assert!(
        any(&|&(l, w, full)| l > 1 && l == w && full),
        "full power of two"
    );
    assert!(
        any(&|&(l, w, full)| l < w && !full),
        "partial last leaf, padded"
    );
    assert!(any(&|&(l, w, full)| l < w && full), "full leaves, padded");
}

#[test]
fn leaf_hashes_match_core_for_every_leaf_length() {
    // 1 ..= 2 leaves + 1 element: every length of a last leaf (1 + 4 * count bytes, 1 to 8
    // blocks, the padding at every position the format allows), once in one row and once as a
    // column (one element a row, row stride 16).
    for total in 1..=(2 * LEAF_ELEMS as u32 + 1) {
        let c = scrambled(total as usize);
        let bytes = matmul::encode(&c);
        let want: Vec<B256> = bytes
            .chunks(RESULT_LEAF_BYTES)
            .map(merkle::leaf_hash)
            .collect();
        for (m, n) in [(1, total), (total, 1)] {
            let p = Plan::new(m, 1, n);
            let got = commit_with(&p, &pad_c(&c, &p), true);
            assert_eq!(got.leaves[..want.len()], want[..], "leaves of {m} x {n}");
            assert!(
                got.leaves[want.len()..].iter().all(|h| h.is_zero()),
                "padding of {m} x {n}"
            );
            assert_eq!(got.enc.as_deref(), Some(&bytes[..]), "bytes of {m} x {n}");
            assert_eq!(got.root, MerkleTree::result(&bytes).root(), "{m} x {n}");
        }
    }
}

#[test]
fn an_empty_result_is_one_empty_leaf_and_one_element_one_short_leaf() {
    // Not a valid matmul shape, but the kernel's edge: no element read, no division by n = 0.
    for (m, n) in [(0, 0), (0, 5), (3, 0)] {
        let p = Plan::new(m, 1, n);
        assert_eq!((p.leaves(), p.width()), (1, 1));
        let (root, enc) = commit(&p, &[]);
        assert!(enc.is_empty());
        assert_eq!(root, keccak256([0u8]), "{m} x {n}");
        assert_eq!(root, MerkleTree::result(&[]).root());
    }
    for v in [0, 1, -1, i32::MIN, i32::MAX, 0x0102_0304] {
        let p = Plan::new(1, 1, 1);
        let (root, enc) = commit(&p, &pad_c(&[v], &p));
        assert_eq!(enc, v.to_be_bytes());
        let mut msg = vec![0u8];
        msg.extend_from_slice(&v.to_be_bytes());
        assert_eq!(root, keccak256(&msg), "{v}");
        assert_eq!(root, matmul::commit(&[v]).root());
    }
}

#[test]
fn the_shared_vectors_roots_leaves_and_tampered_roots() {
    // testdata/matmul_vectors.json, which the contract tests read too: from the seed, the kernels'
    // A and B^T, cuBLAS's product (emulated) and the kernels' tree give each case's C, root and
    // proven leaves; the claimed element of its fraud written into C gives the tampered root.
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/matmul_vectors.json");
    let text = std::fs::read_to_string(&path).expect("testdata/matmul_vectors.json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let hex = |x: &serde_json::Value| {
        alloy_primitives::hex::decode(x.as_str().expect("a hex string")).expect("hex")
    };
    let num = |x: &serde_json::Value| x.as_u64().expect("a number");
    let cases = v["cases"].as_array().expect("cases");
    assert!(cases.len() >= 6, "{} cases", cases.len());
    let mut widest = 0;
    for case in cases {
        let (m, k, n) = (num(&case["m"]), num(&case["k"]), num(&case["n"]));
        let seed = B256::from_slice(&hex(&case["seed"]));
        let p = Plan::new(m as u32, k as u32, n as u32);
        let a = generate(&p, seed, b'A', p.m, p.mp);
        let bt = generate(&p, seed, b'B', p.n, p.np);
        let mut c = vec![0i32; p.c_len() as usize];
        p.gemm().reference(&bt, &a, &mut c);
        let (root, enc) = commit(&p, &c);
        let shape = format!("{m}x{k}x{n}");
        assert_eq!(enc, hex(&case["c"]), "C of {shape}");
        assert_eq!(
            root,
            B256::from_slice(&hex(&case["root"])),
            "root of {shape}"
        );
        for e in case["elements"].as_array().expect("elements") {
            let at = num(&e["leafIndex"]) as usize * RESULT_LEAF_BYTES;
            let leaf = &enc[at..(at + RESULT_LEAF_BYTES).min(enc.len())];
            assert_eq!(leaf, &hex(&e["leaf"])[..], "leaf of {shape}");
        }
        let fraud = &case["tampered"]["fraud"];
        let (i, j) = (num(&fraud["i"]), num(&fraud["j"]));
        let claimed = fraud["claimed"].as_i64().expect("claimed") as i32;
        c[(i * p.np + j) as usize] = claimed;
        let want = B256::from_slice(&hex(&case["tampered"]["root"]));
        assert_eq!(commit(&p, &c).0, want, "tampered root of {shape}");
        widest = widest.max(p.leaves());
    }
    assert!(widest > 4, "no case spans a padded tree of several levels");
}

#[test]
fn generated_inputs_match_core_in_the_padded_layout() {
    for (m, k, n) in SHAPES {
        let job = Matmul {
            seed: B256::repeat_byte(0x5a),
            m,
            k,
            n,
        };
        let p = Plan::new(m, k, n);
        let a = generate(&p, job.seed, b'A', p.m, p.mp);
        let bt = generate(&p, job.seed, b'B', p.n, p.np);
        let (a_u, a_zero) = unpad(&a, p.m, p.k, p.kp);
        let (bt_u, bt_zero) = unpad(&bt, p.n, p.k, p.kp);
        assert_eq!(a_u, job.a(), "A of {m}x{k}x{n}");
        assert_eq!(bt_u, job.bt(), "B^T of {m}x{k}x{n}");
        assert!(a_zero && bt_zero, "padding of {m}x{k}x{n} is zero");
    }
}

#[test]
fn encoded_c_and_merkle_root_match_core() {
    for (m, k, n) in SHAPES {
        let job = Matmul {
            seed: B256::repeat_byte(0x11),
            m,
            k,
            n,
        };
        let c = matmul::multiply(&job.a(), &job.bt(), m as usize, k as usize, n as usize, 1);
        let p = Plan::new(m, k, n);
        let (root, enc) = commit(&p, &pad_c(&c, &p));
        assert_eq!(enc, matmul::encode(&c), "bytes of {m}x{k}x{n}");
        assert_eq!(root, matmul::commit(&c).root(), "root of {m}x{k}x{n}");
    }
}

#[test]
fn freivalds_rejects_the_same_rows_as_core() {
    for (m, k, n) in SHAPES {
        let job = Matmul {
            seed: B256::repeat_byte(0x77),
            m,
            k,
            n,
        };
        let p = Plan::new(m, k, n);
        let (a, bt) = (
            generate(&p, job.seed, b'A', p.m, p.mp),
            generate(&p, job.seed, b'B', p.n, p.np),
        );
        let c = matmul::multiply(&job.a(), &job.bt(), m as usize, k as usize, n as usize, 1);
        let r = B256::repeat_byte(0x3c);
        let cpu = |c: &[i32]| {
            matmul::freivalds(
                &job.a(),
                &job.bt(),
                c,
                m as usize,
                k as usize,
                n as usize,
                r,
            )
        };
        assert!(
            freivalds(&p, &a, &bt, &pad_c(&c, &p), r).is_empty(),
            "{m}x{k}x{n}"
        );
        let total = (m * n) as usize;
        for (e, bit) in [(0, 0), (total / 2, 17), (total - 1, 31)] {
            let mut bad = c.clone();
            bad[e] ^= 1 << bit;
            let want = cpu(&bad);
            assert_eq!(want, vec![e / n as usize]);
            assert_eq!(
                freivalds(&p, &a, &bt, &pad_c(&bad, &p), r),
                want,
                "{m}x{k}x{n} flipped bit {bit} of element {e}"
            );
        }
    }
}

#[test]
fn freivalds_vector_is_the_hash_reduced_mod_p() {
    use alloy_primitives::U256;
    let r_seed = B256::repeat_byte(0xc3);
    let n = 500u64;
    let mut r = vec![0u64; n as usize];
    call!(
        "emu_fv_vector",
        unsafe extern "C" fn(U64, *const u8, U64, *mut U64),
        (n, r_seed.as_ptr(), n, r.as_mut_ptr())
    );
    for (j, &got) in r.iter().enumerate() {
        let mut buf = [0u8; 40];
        buf[..32].copy_from_slice(r_seed.as_slice());
        buf[32..].copy_from_slice(&(j as u64).to_be_bytes());
        let h = U256::from_be_bytes(keccak256(buf).0);
        let want = (h % U256::from(matmul::P)).to::<u64>();
        assert_eq!(got, want, "r[{j}]");
    }
}

#[test]
fn the_exact_nvrtc_source_type_checks_as_cuda_cpp() {
    // What NVRTC compiles (prelude_cuda.h + kernels.cu), behind a mock of CUDA's built-ins, through
    // the host C++ compiler: catches C++-only errors of the GPU path without a GPU.
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("nvrtc_source.cpp");
    let mock = std::fs::read_to_string(kernels_dir().join("cuda_mock.h")).expect("mock");
    std::fs::write(&src, mock + &gridlease_gpu::nvrtc::kernel_source()).expect("write");
    let compiler = crate::host_compiler(true, 0, dir.path());
    let status = compiler
        .to_command()
        .args(["-std=c++17", "-fsyntax-only", "-Wall", "-Wextra", "-Werror"])
        .arg("-Wno-unknown-pragmas")
        .arg(&src)
        .status()
        .expect("run the C++ compiler");
    assert!(status.success(), "the NVRTC source does not type-check");
}

#[test]
fn the_whole_device_pipeline_with_cublas_semantics_gives_cores_root() {
    // generate -> cublasGemmEx (emulated from its documented column-major semantics with the
    // exact arguments CudaMatmul passes) -> leaves/levels: the root and bytes of gridlease-workload.
    for (m, k, n) in SHAPES {
        let job = Matmul {
            seed: B256::repeat_byte(0x99),
            m,
            k,
            n,
        };
        let p = Plan::new(m, k, n);
        let a = generate(&p, job.seed, b'A', p.m, p.mp);
        let bt = generate(&p, job.seed, b'B', p.n, p.np);
        let mut c = vec![i32::MIN; p.c_len() as usize];
        // cuBLAS's A is the B^T buffer, its B the A buffer.
        p.gemm().reference(&bt, &a, &mut c);
        let want = matmul::multiply(&job.a(), &job.bt(), m as usize, k as usize, n as usize, 1);
        let (root, enc) = commit(&p, &c);
        assert_eq!(enc, matmul::encode(&want), "bytes of {m}x{k}x{n}");
        assert_eq!(root, matmul::commit(&want).root(), "root of {m}x{k}x{n}");
        assert!(freivalds(&p, &a, &bt, &c, B256::repeat_byte(1)).is_empty());
    }
}

/// The Freivalds partial sums accumulate exactly in 64-bit limbs and reduce once (or every 1,024
/// terms): at the extremes of every element type (INT8 -128 and 127, INT32's minimum and
/// maximum), with vector elements near P, over rows long enough to fold several times, each
/// partial equals the sum mod P computed in 128-bit arithmetic.
#[test]
fn freivalds_partials_are_exact_at_the_extremes_and_across_folds() {
    const P: u128 = (1 << 61) - 1;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let rows = 3u64;
    // 1,024 terms a lane fold once per 1,024: 2,500 terms a lane fold twice, then a remainder.
    let cols = FV_LANES * 2_500 + 77;
    // Mostly P - 1 (every limb at its largest), so the sums of a row of one sign grow to their
    // bound; some random elements.
    let v: Vec<u64> = (0..cols)
        .map(|t| match t % 7 {
            6 => next() % P as u64,
            _ => (P - 1) as u64,
        })
        .collect();
    let residue = |sum: i128| sum.rem_euclid(P as i128) as u64;
    // Lane l of a row sums the groups of four elements g = l, l + lanes, ... (t = 4g .. 4g + 3).
    let want = |elem: &dyn Fn(u64, u64) -> i64| -> Vec<u64> {
        let mut out = vec![0u64; (rows * FV_LANES) as usize];
        for i in 0..rows {
            for l in 0..FV_LANES {
                let mut s: i128 = 0;
                let mut g = l;
                while 4 * g < cols {
                    for t in 4 * g..(4 * g + 4).min(cols) {
                        s = (s + i128::from(elem(i, t)) * i128::from(v[t as usize])) % P as i128;
                    }
                    g += FV_LANES;
                }
                out[(l * rows + i) as usize] = residue(s);
            }
        }
        out
    };
    // A row-major matrix of `rows` x `cols` at row stride `stride`, in 16-byte-aligned storage
    // (the kernels load four elements at once when the stride is a multiple of four).
    fn aligned<T: Copy + Default>(
        rows: u64,
        cols: u64,
        stride: u64,
        f: impl Fn(u64, u64) -> T,
    ) -> Vec<u128> {
        let bytes = (rows * stride) as usize * size_of::<T>();
        let mut store = vec![0u128; bytes.div_ceil(16)];
        // SAFETY: `store` holds at least rows * stride elements of T, and is 16-byte aligned.
        let m = unsafe {
            std::slice::from_raw_parts_mut(store.as_mut_ptr().cast::<T>(), (rows * stride) as usize)
        };
        for i in 0..rows {
            for t in 0..cols {
                m[(i * stride + t) as usize] = f(i, t);
            }
        }
        store
    }

    // Row 0 all INT32's minimum, row 1 all its maximum (sums of one sign: without the folds
    // they pass 2^63), row 2 mixed.
    let i32_elem = |i: u64, t: u64| -> i64 {
        match (i, t % 3) {
            (0, _) => i64::from(i32::MIN),
            (1, _) => i64::from(i32::MAX),
            (_, 0) => i64::from(i32::MIN + 1),
            _ => i64::from((t as i32).wrapping_mul(2_654_435_761u32 as i32)),
        }
    };
    let mut got = vec![0u64; (rows * FV_LANES) as usize];
    // cols is odd: at stride cols the rows are read an element at a time; at a stride rounded
    // up to 4 (and 16 with the plan's padding) four at a time. Both give the same partials.
    macro_rules! rows_at_every_stride {
        ($kernel:literal, $t:ty, $elem:expr, $what:literal) => {
            for stride in [cols, cols.next_multiple_of(4), cols.next_multiple_of(16)] {
                let m = aligned(rows, cols, stride, |i, t| $elem(i, t) as $t);
                call!(
                    $kernel,
                    unsafe extern "C" fn(U64, *const $t, U64, U64, U64, *const U64, U64, *mut U64),
                    (
                        rows * FV_LANES,
                        m.as_ptr().cast::<$t>(),
                        rows,
                        cols,
                        stride,
                        v.as_ptr(),
                        FV_LANES,
                        got.as_mut_ptr()
                    )
                );
                assert!(got == want(&$elem), "{} rows at stride {stride}", $what);
            }
        };
    }
    rows_at_every_stride!("emu_fv_rows_i32", i32, i32_elem, "INT32");

    let i8_elem = |i: u64, t: u64| -> i64 {
        match (i, t % 3) {
            (0, _) => -128,
            (1, _) => 127,
            (_, 0) => -128,
            _ => i64::from((t as u8) as i8),
        }
    };
    rows_at_every_stride!("emu_fv_rows_i8", i8, i8_elem, "INT8");

    // B r in chunks of FV_JCHUNK rows of B^T (n x k: row j is column j of B).
    let (n, k) = (FV_JCHUNK * 3 + 5, 4u64);
    let bt: Vec<i8> = (0..n)
        .flat_map(|j| (0..k).map(move |t| i8_elem(t, j) as i8))
        .collect();
    let chunks = n.div_ceil(FV_JCHUNK);
    let mut part = vec![0u64; (chunks * k) as usize];
    call!(
        "emu_fv_bt",
        unsafe extern "C" fn(U64, *const i8, U64, U64, U64, *const U64, U64, U64, *mut U64),
        (
            chunks * k,
            bt.as_ptr(),
            n,
            k,
            k,
            v.as_ptr(),
            FV_JCHUNK,
            chunks,
            part.as_mut_ptr()
        )
    );
    for c in 0..chunks {
        for t in 0..k {
            let mut s: i128 = 0;
            for j in c * FV_JCHUNK..((c + 1) * FV_JCHUNK).min(n) {
                s += i128::from(i8_elem(t, j)) * i128::from(v[j as usize]);
            }
            assert_eq!(
                part[(c * k + t) as usize],
                residue(s),
                "B r, chunk {c}, column {t}"
            );
        }
    }
}
