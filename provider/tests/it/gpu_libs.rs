//! The lent GPU machines' CUDA layout, end to end through `gridlease-provider check`, without a
//! GPU: stand-in libraries (C, built here) named and placed as there. CUDA 13's wheels
//! (`libcublas.so.13`, `libcublasLt.so.13`, `libnvrtc.so.13`, no unversioned names) sit in a
//! virtual environment that is not activated, only first on `PATH` (`/opt/torch/.venv/bin`
//! there); the driver's `libcuda.so.1` loads as it is (there through the loader's configuration,
//! here `LD_LIBRARY_PATH`). The node must link the three wheel libraries, not the driver, run
//! itself again with them on the loader's path, and load all four.

use std::{path::Path, process::Command};

/// Build a shared library `name` (its soname too) from C source `src` into `dir`, with the C
/// compiler the `cc` crate finds.
fn stand_in(dir: &Path, name: &str, src: &str) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, src).expect("write");
    let triple = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let status = cc::Build::new()
        .cargo_metadata(false)
        .target(&triple)
        .host(&triple)
        .opt_level(0)
        .out_dir(dir)
        .try_get_compiler()
        .expect("a C compiler")
        .to_command()
        .args(["-shared", "-fPIC", "-x", "c"])
        .arg(&c)
        .arg(format!("-Wl,-soname,{name}"))
        .arg("-o")
        .arg(dir.join(name))
        .status()
        .expect("run the C compiler");
    assert!(status.success(), "{name} does not build");
    std::fs::remove_file(c).expect("rm");
}

#[test]
fn check_links_a_lent_machines_wheels_runs_again_and_loads_all_four() {
    let root = tempfile::tempdir().expect("tempdir");
    let r = root.path();
    let venv = r.join("opt/torch/.venv");
    let wheel = venv.join("lib/python3.12/site-packages/nvidia/cu13/lib");
    for lib in ["libcublas.so.13", "libcublasLt.so.13"] {
        stand_in(&wheel, lib, "int gl_stand_in(void) { return 0; }\n");
    }
    stand_in(
        &wheel,
        "libnvrtc.so.13",
        "int nvrtcVersion(int *major, int *minor) { *major = 13; *minor = 0; return 0; }\n",
    );
    let driver = r.join("usr/local/nvidia/lib64");
    stand_in(
        &driver,
        "libcuda.so.1",
        "int cuInit(unsigned f) { (void)f; return 100; }\n",
    );
    std::fs::create_dir_all(venv.join("bin")).expect("mkdir");
    std::os::unix::fs::symlink("/usr/bin/python3", venv.join("bin/python3")).expect("link");
    let runtime = r.join("run");
    std::fs::create_dir_all(&runtime).expect("mkdir");
    let node = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_gridlease-provider"))
            .args(args)
            .current_dir(r)
            .env_clear()
            .env(
                "PATH",
                std::env::join_paths([
                    venv.join("bin").as_path(),
                    Path::new("/usr/bin"),
                    Path::new("/bin"),
                ])
                .expect("PATH"),
            )
            .env("LD_LIBRARY_PATH", &driver)
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("HOME", r)
            .output()
            .expect("gridlease-provider runs");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    node(&["init"]);
    // No operator key: `check` stops after the CUDA lines, which are what this test reads.
    let out = node(&["check", "--config", "provider.toml"]);
    let cuda: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("cuda "))
        .take_while(|l| !l.starts_with("state "))
        .collect();
    assert_eq!(
        cuda.first().copied(),
        Some("cuda       the GPU path's libraries load:"),
        "{out}"
    );
    let loaded: Vec<&str> = cuda.iter().skip(1).map(|l| l.trim()).collect();
    for file in ["libcublas.so.13", "libcublasLt.so.13", "libnvrtc.so.13"] {
        let path = wheel.join(file).display().to_string();
        assert!(
            loaded.contains(&path.as_str()),
            "{file} from the wheel: {out}"
        );
    }
    let driver_file = driver.join("libcuda.so.1").display().to_string();
    assert!(loaded.contains(&driver_file.as_str()), "the driver: {out}");
    assert!(
        out.contains("NVRTC 13.0 compiles the kernels for each GPU's architecture"),
        "{out}"
    );

    // SAFETY: getuid has no preconditions and cannot fail.
    let links = runtime.join(format!("gridlease-cuda-{}", unsafe { libc::getuid() }));
    let mut linked: Vec<String> = std::fs::read_dir(&links)
        .expect("the links the node made")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    linked.sort();
    assert_eq!(
        linked,
        ["libcublas.so", "libcublasLt.so", "libnvrtc.so"],
        "the wheels' libraries, under the names the GPU path opens; the driver loads as it is"
    );
    assert_eq!(
        std::fs::read_link(links.join("libnvrtc.so")).expect("a link"),
        wheel.join("libnvrtc.so.13")
    );
}
