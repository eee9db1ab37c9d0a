//! The kernels compiled by a real NVRTC, without a GPU (NVRTC needs no driver): machine code for
//! the architecture of every GPU class the market sells, with no register spilled, and the PTX
//! the driver falls back to. `scripts/test.sh` installs the NVRTC of CUDA 13.0 (the one the lent
//! H100/H200 machines' PyTorch carries) from PyPI and sets `GRIDLEASE_REQUIRE_NVRTC=1`; where
//! libnvrtc does not load and that is not set, the test says so and checks nothing.

use gridlease_gpu::nvrtc::{self, Target};

/// The kernels' entry points: each must be in every image.
const KERNELS: [&str; 9] = [
    "gl_generate",
    "gl_leaves",
    "gl_level",
    "gl_fv_vector",
    "gl_fv_bt",
    "gl_fv_sum",
    "gl_fv_rows_i8",
    "gl_fv_rows_i32",
    "gl_fv_compare",
];

/// Compute capabilities of the GPU classes (`primitives::gpu`): t4; a100; a10, rtx3090; l4,
/// l40s, rtx4090; h100, h200, gh200; b200; rtx5090.
const ARCHS: [(u32, u32); 7] = [(7, 5), (8, 0), (8, 6), (8, 9), (9, 0), (10, 0), (12, 0)];

fn nvrtc_or_skip() -> Option<(i32, i32)> {
    match nvrtc::version() {
        Ok(v) => Some(v),
        Err(e) if std::env::var_os("GRIDLEASE_REQUIRE_NVRTC").is_some_and(|v| v == "1") => {
            panic!("GRIDLEASE_REQUIRE_NVRTC=1 but NVRTC does not load: {e}")
        }
        Err(e) => {
            eprintln!("no NVRTC here ({e}): nothing compiled");
            None
        }
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn kernels_compile_to_machine_code_for_every_gpu_class_without_spills() {
    let Some(v) = nvrtc_or_skip() else { return };
    eprintln!("NVRTC {}.{}", v.0, v.1);
    for (major, minor) in ARCHS {
        let target = Target::Sm(major, minor);
        let c = nvrtc::compile(target).unwrap_or_else(|e| panic!("{target}: {e}"));
        assert!(
            c.image.starts_with(b"\x7fELF"),
            "{target}: a CUBIN is an ELF file"
        );
        for k in KERNELS {
            assert!(contains(&c.image, k), "{target}: {k} missing");
        }
        assert_eq!(c.spills(), vec![], "{target}: registers spilled\n{}", c.log);
        // No block is wider than 256 threads (gl_leaves: 64), and 65,536 registers / 256 = 256 a
        // thread is above ptxas's own ceiling of 255: any count ptxas gives launches, so only
        // spills are checked; the count is reported.
        let regs = c.max_registers().expect("ptxas reported registers");
        eprintln!(
            "{target}: {} bytes, {regs} registers at most",
            c.image.len()
        );
    }
}

#[test]
fn the_ptx_the_driver_falls_back_to_holds_every_kernel() {
    let Some(_) = nvrtc_or_skip() else { return };
    let c = nvrtc::compile(Target::Ptx).expect("PTX");
    let text = String::from_utf8(c.image.clone()).expect("PTX is text");
    assert!(
        text.contains(".version") && text.contains(".target"),
        "a PTX module"
    );
    for k in KERNELS {
        assert!(text.contains(&format!(".entry {k}(")), "{k} missing");
    }
    // Compiled once a process: a second device of the same architecture shares it.
    let a = nvrtc::compiled(Target::Ptx).expect("once");
    let b = nvrtc::compiled(Target::Ptx).expect("cached");
    assert!(std::sync::Arc::ptr_eq(&a, &b));
}
