//! On a real GPU: the product, its bytes and root, and Freivalds' verdicts equal the CPU
//! reference's for a table of shapes. Skips (passing, with a message) where no GPU is usable, so
//! CI without one stays green, unless `GRIDLEASE_REQUIRE_GPU=1` (set by `scripts/gpu-run.sh` on
//! a GPU machine): then no usable GPU fails. The kernels themselves are checked without a GPU in
//! kernels_c.rs.

use alloy_primitives::B256;
use gridlease_gpu::{CudaMatmul, Inputs, Plan, compute_cpu, compute_gpu};
use gridlease_workload::matmul::{self, Matmul, MatmulData};

fn gpu() -> Option<CudaMatmul> {
    match CudaMatmul::open(0) {
        Ok(g) => Some(g),
        Err(e) if std::env::var_os("GRIDLEASE_REQUIRE_GPU").is_some_and(|v| v == "1") => {
            panic!("GRIDLEASE_REQUIRE_GPU=1 but no usable GPU: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED: no usable GPU ({e})");
            None
        }
    }
}

const SHAPES: [(u32, u32, u32); 8] = [
    (1, 1, 1),
    (3, 17, 5),
    (16, 16, 16),
    (17, 33, 9),
    (64, 64, 64),
    (100, 257, 31),
    (255, 1000, 129),
    (513, 77, 1031),
];

#[test]
fn gpu_product_and_root_equal_the_cpu_reference() {
    let Some(g) = gpu() else { return };
    for (m, k, n) in SHAPES {
        let j = Matmul {
            seed: B256::repeat_byte(0x21),
            m,
            k,
            n,
        };
        let got = compute_gpu(Inputs::Seeded(j), &g).expect("GPU product");
        let want = compute_cpu(Inputs::Seeded(j), 2, String::new());
        assert_eq!(got.c_bytes, want.c_bytes, "bytes of {m}x{k}x{n}");
        assert_eq!(got.root, want.root, "root of {m}x{k}x{n}");
        // The same operands given as data.
        let d = MatmulData {
            m,
            k,
            n,
            a: j.a(),
            bt: j.bt(),
        };
        let data = compute_gpu(Inputs::Data(&d), &g).expect("GPU product of data");
        assert_eq!(data.root, want.root, "data root of {m}x{k}x{n}");
    }
}

#[test]
fn gpu_freivalds_accepts_the_product_and_finds_a_flipped_bit() {
    let Some(g) = gpu() else { return };
    for (m, k, n) in SHAPES {
        let j = Matmul {
            seed: B256::repeat_byte(0x44),
            m,
            k,
            n,
        };
        let p = Plan::new(m, k, n);
        let ops = g.generate(&p, j.seed).expect("generate");
        let c = g.multiply(&p, &ops).expect("multiply");
        let r = B256::repeat_byte(3);
        assert!(g.freivalds(&p, &ops, &c, r).expect("check").is_empty());
        let host = g.download(&p, &c).expect("download");
        let cpu = matmul::multiply(&j.a(), &j.bt(), m as usize, k as usize, n as usize, 2);
        assert_eq!(host, cpu, "{m}x{k}x{n}");
        let e = (m * n / 2) as usize;
        let mut bad = host.clone();
        bad[e] ^= 1 << 9;
        let want = matmul::freivalds(&j.a(), &j.bt(), &bad, m as usize, k as usize, n as usize, r);
        assert_eq!(want, vec![e / n as usize]);
        let bad_d = g.upload_c(&p, &bad).expect("upload");
        assert_eq!(g.freivalds(&p, &ops, &bad_d, r).expect("check"), want);
        let (root, _) = g.commit(&p, &bad_d, false).expect("commit");
        assert_eq!(root, matmul::commit(&bad).root());
    }
}

/// `gridlease-provider check`'s self-test: on a GPU it passes (a product equal to the CPU's, byte
/// for byte); without one it says why instead.
#[test]
fn the_self_test_passes_on_a_gpu_and_says_why_without_one() {
    use gridlease_gpu::{Device, self_test};
    assert_eq!(self_test(&Device::Cpu), Err("CPU requested".to_owned()));
    match (gpu(), self_test(&Device::Auto)) {
        (Some(_), Ok(line)) => assert!(line.contains("equal to the CPU's"), "{line}"),
        (Some(_), Err(why)) => panic!("a usable GPU failed the self-test: {why}"),
        (None, Ok(line)) => panic!("a self-test passed without a usable GPU: {line}"),
        (None, Err(why)) => assert!(
            why.contains("not loadable") || why.contains("CUDA"),
            "{why}"
        ),
    }
}
