//! The GPU workload: device tests, the kernels compiled as C, and compiled by a real NVRTC.
//! One test binary for the crate (one link, one process that runs the tests side by side).

mod device;
mod kernels_c;
mod nvrtc;

/// The host's C (or, with `cpp`, C++) compiler as the `cc` crate finds it, writing into `out`.
fn host_compiler(cpp: bool, opt_level: u32, out: &std::path::Path) -> cc::Tool {
    let triple = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    cc::Build::new()
        .cpp(cpp)
        .cargo_metadata(false)
        .target(&triple)
        .host(&triple)
        .opt_level(opt_level)
        .out_dir(out)
        .warnings(true)
        .try_get_compiler()
        .expect("a C/C++ compiler")
}
