//! Finding the CUDA libraries wherever a machine keeps them, CUDA 12 or 13.
//!
//! cudarc (built for one CUDA API version, `cuda-12080`) opens its libraries by bare name:
//! `libcublas.so`, `libcublas.so.12`, `.so.11`, ... `.so.1`. Two common installs defeat that:
//!
//! - CUDA 13 names its files `libcublas.so.13`, `libcublasLt.so.13`, `libnvrtc.so.13`;
//! - PyTorch's wheels put the libraries in `site-packages/nvidia/cu13/lib` (CUDA 13) or
//!   `site-packages/nvidia/<part>/lib` (CUDA 12), with no unversioned link and off the loader's
//!   path.
//!
//! [`locate`] looks for each library that does not load as it is ([`unloadable`]) under every name
//! a CUDA 11 to 13 install uses, in the directories such installs use ([`search_dirs`]): the lent
//! GPU machines keep the driver's `libcuda` in `/usr/local/nvidia/lib64` and the rest in the wheels
//! of a virtual environment found only through `PATH`. [`loader_dir`] then links each one found
//! under the name cudarc asks for (`libcublas.so -> .../libcublas.so.13`) in a directory of the
//! process's own, and [`reexec_with_cuda`] runs the program again with that directory (and the
//! libraries' own, for what they load themselves) on `LD_LIBRARY_PATH`: the dynamic loader reads it
//! only at start. The cudarc bindings are CUDA 12.8's; the calls the workload makes
//! (`cuLaunchKernel`, `nvrtcCompileProgram`, `cublasGemmEx`, ...) have the same signatures in
//! CUDA 13, whose driver keeps the older entry points.
//!
//! Nothing here loads a library; a host without CUDA finds nothing and runs on the CPU.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
};

/// The libraries the GPU path needs: cudarc's base name and the file names a CUDA 11 to 13
/// install gives it, most specific first.
pub const NEEDED: [(&str, &[&str]); 4] = [
    ("cuda", &["libcuda.so.1", "libcuda.so"]),
    (
        "nvrtc",
        &[
            "libnvrtc.so",
            "libnvrtc.so.13",
            "libnvrtc.so.12",
            "libnvrtc.so.11.2",
        ],
    ),
    (
        "cublas",
        &[
            "libcublas.so",
            "libcublas.so.13",
            "libcublas.so.12",
            "libcublas.so.11",
        ],
    ),
    (
        "cublasLt",
        &[
            "libcublasLt.so",
            "libcublasLt.so.13",
            "libcublasLt.so.12",
            "libcublasLt.so.11",
        ],
    ),
];

/// Set on the program run again by [`reexec_with_cuda`], so it does not run itself a third time.
pub const REEXEC_MARK: &str = "GRIDLEASE_CUDA_REEXEC";
/// Extra directories to search first (`:`-separated), for installs in unusual places.
pub const DIRS_VAR: &str = "GRIDLEASE_CUDA_LIBS";

/// One library found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// cudarc's base name (`cublas`).
    pub lib: &'static str,
    /// The file (`.../nvidia/cu13/lib/libcublas.so.13`).
    pub path: PathBuf,
}

/// A library found nowhere: what was looked for, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "lib{lib} not found: looked for {} in {} directories ({}{}); install the CUDA libraries (the \
     driver brings libcuda; pip's nvidia-cublas/-cuda-nvrtc or the CUDA toolkit the rest) or name \
     their directory in {DIRS_VAR}",
    names.join(", "),
    dirs.len(),
    dirs.iter().take(4).map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "),
    if dirs.len() > 4 { ", ..." } else { "" }
)]
pub struct Missing {
    /// cudarc's base name.
    pub lib: &'static str,
    /// The file names tried.
    pub names: Vec<&'static str>,
    /// The directories searched.
    pub dirs: Vec<PathBuf>,
}

/// Directories that may hold CUDA libraries, in the order searched: [`DIRS_VAR`],
/// `LD_LIBRARY_PATH`, the CUDA toolkit (`/usr/local/cuda*`), the NVIDIA wheels of every Python
/// installation found (`nvidia/cu13/lib`, `nvidia/*/lib`), the driver's folder in NVIDIA's
/// containers (`/usr/local/nvidia/lib64`), the system's library directories, then those the
/// dynamic loader is configured with (`/etc/ld.so.conf`). Only directories that exist, each once.
pub fn search_dirs() -> Vec<PathBuf> {
    search_dirs_in(
        std::env::var_os(DIRS_VAR),
        std::env::var_os("LD_LIBRARY_PATH"),
        &python_prefixes(std::env::var_os("PATH")),
        Path::new("/"),
    )
}

/// Where Python installations live: an active virtual environment or conda, the installation
/// of every `python3` on `PATH` (a virtual environment not activated but first on `PATH`, as
/// `/opt/torch/.venv/bin` on the lent GPU machines, is one), the user's, then the usual places.
fn python_prefixes(path: Option<OsString>) -> Vec<PathBuf> {
    let mut p: Vec<PathBuf> = ["VIRTUAL_ENV", "CONDA_PREFIX"]
        .iter()
        .filter_map(|v| std::env::var_os(v).map(PathBuf::from))
        .collect();
    p.extend(prefixes_on_path(path));
    if let Some(home) = std::env::var_os("HOME") {
        p.push(Path::new(&home).join(".local"));
    }
    p.extend(["/usr", "/usr/local", "/opt/conda"].map(PathBuf::from));
    p
}

/// `<dir>/..` for each directory of `path` that holds a `python3`: the installation's prefix
/// (the directory itself, not where a link leads, so a virtual environment stays itself).
fn prefixes_on_path(path: Option<OsString>) -> Vec<PathBuf> {
    path.iter()
        .flat_map(std::env::split_paths)
        .filter(|d| d.is_absolute() && d.join("python3").exists())
        .filter_map(|d| d.parent().map(Path::to_path_buf))
        .collect()
}

/// [`search_dirs`] with its inputs given (tests use a fake root).
pub fn search_dirs_in(
    extra: Option<OsString>,
    ld_library_path: Option<OsString>,
    python_prefixes: &[PathBuf],
    root: &Path,
) -> Vec<PathBuf> {
    let at = |p: &str| root.join(p.trim_start_matches('/'));
    let mut dirs: Vec<PathBuf> = Vec::new();
    for v in [extra, ld_library_path].into_iter().flatten() {
        dirs.extend(std::env::split_paths(&v).filter(|d| !d.as_os_str().is_empty()));
    }
    dirs.push(at("/usr/local/cuda/lib64"));
    dirs.push(at("/usr/local/cuda/targets/x86_64-linux/lib"));
    dirs.extend(sorted_desc(glob_dirs(&at("/usr/local"), "cuda-", "lib64")));
    for prefix in python_prefixes {
        let prefix = if prefix.is_absolute() && root != Path::new("/") {
            at(&prefix.to_string_lossy())
        } else {
            prefix.clone()
        };
        for lib in ["lib", "lib64"] {
            for py in sorted_desc(glob_dirs(&prefix.join(lib), "python3", "")) {
                for pkgs in ["site-packages", "dist-packages"] {
                    let nvidia = py.join(pkgs).join("nvidia");
                    dirs.push(nvidia.join("cu13").join("lib"));
                    if let Ok(entries) = std::fs::read_dir(&nvidia) {
                        let mut parts: Vec<PathBuf> =
                            entries.flatten().map(|e| e.path().join("lib")).collect();
                        parts.sort();
                        dirs.extend(parts);
                    }
                }
            }
        }
    }
    dirs.extend(
        [
            "/usr/local/nvidia/lib64",
            "/usr/local/nvidia/lib",
            "/usr/lib/x86_64-linux-gnu",
            "/lib/x86_64-linux-gnu",
            "/usr/lib64",
            "/usr/lib",
            "/usr/lib/wsl/lib",
        ]
        .map(at),
    );
    dirs.extend(
        loader_conf_dirs(root, &at("/etc/ld.so.conf"), 0)
            .iter()
            .map(|d| at(&d.to_string_lossy())),
    );
    let mut seen = std::collections::HashSet::new();
    dirs.into_iter()
        .filter(|d| d.is_dir() && seen.insert(d.clone()))
        .collect()
}

/// The directories a dynamic loader configuration file names, with the files it `include`s
/// (`include /etc/ld.so.conf.d/*.conf`: a `*` in the last part only, as every distribution
/// writes it), absolute ones read under `root`. Paths as written (absolute); a file that cannot
/// be read names none.
fn loader_conf_dirs(root: &Path, file: &Path, depth: u8) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return Vec::new();
    };
    let mut dirs = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(pattern) = line.strip_prefix("include").map(str::trim) {
            if depth >= 4 || pattern.is_empty() {
                continue;
            }
            // Relative includes are relative to the including file's directory.
            let pattern = match pattern.strip_prefix('/') {
                Some(abs) => root.join(abs),
                None => file.parent().unwrap_or(root).join(pattern),
            };
            let (Some(dir), Some(name)) = (pattern.parent(), pattern.file_name()) else {
                continue;
            };
            let name = name.to_string_lossy();
            let mut files: Vec<PathBuf> = match name.split_once('*') {
                None => vec![pattern.clone()],
                Some((head, tail)) => std::fs::read_dir(dir)
                    .map(|d| {
                        d.flatten()
                            .map(|e| e.path())
                            .filter(|p| {
                                let n = p.file_name().unwrap_or_default().to_string_lossy();
                                n.len() >= head.len() + tail.len()
                                    && n.starts_with(head)
                                    && n.ends_with(tail)
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            files.sort();
            for f in files {
                dirs.extend(loader_conf_dirs(root, &f, depth + 1));
            }
        } else if line.starts_with('/') {
            dirs.push(PathBuf::from(line));
        }
    }
    dirs
}

/// Subdirectories `<parent>/<prefix>*/<sub>` that exist.
fn glob_dirs(parent: &Path, prefix: &str, sub: &str) -> Vec<PathBuf> {
    std::fs::read_dir(parent)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .map(|e| e.path().join(sub))
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default()
}

/// Newest version first (`cuda-13.0` before `cuda-12.8`, `python3.12` before `python3.9`).
fn sorted_desc(mut v: Vec<PathBuf>) -> Vec<PathBuf> {
    let key = |p: &PathBuf| -> Vec<u32> {
        p.components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .find(|c| c.starts_with("cuda-") || c.starts_with("python3"))
            .unwrap_or_default()
            .split(|ch: char| !ch.is_ascii_digit())
            .filter_map(|n| n.parse().ok())
            .collect()
    };
    v.sort_by_key(|p| std::cmp::Reverse(key(p)));
    v
}

/// The libraries of [`NEEDED`] that do not load as they are, under the names cudarc opens
/// (those that do, through `LD_LIBRARY_PATH` or the loader's own configuration, need no link).
pub fn unloadable() -> Vec<&'static str> {
    NEEDED
        .iter()
        .map(|(lib, _)| *lib)
        .filter(|lib| open_as_cudarc(lib).is_err())
        .collect()
}

/// Each library of [`NEEDED`] named in `libs`, in `dirs`: the first directory holding any of its
/// names wins, and in it the first name. Every library is looked for, so the error lists each
/// one missing.
pub fn locate(dirs: &[PathBuf], libs: &[&str]) -> Result<Vec<Found>, Vec<Missing>> {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for (lib, names) in NEEDED.into_iter().filter(|(lib, _)| libs.contains(lib)) {
        let hit = dirs
            .iter()
            .find_map(|d| names.iter().map(|n| d.join(n)).find(|p| p.exists()));
        match hit {
            Some(path) => found.push(Found { lib, path }),
            None => missing.push(Missing {
                lib,
                names: names.to_vec(),
                dirs: dirs.to_vec(),
            }),
        }
    }
    if missing.is_empty() {
        Ok(found)
    } else {
        Err(missing)
    }
}

/// Make `found` loadable under cudarc's names: in `dir` (created), `lib<name>.so` links to each
/// library's file. Returns what `LD_LIBRARY_PATH` should start with: `dir`, then each library's
/// own directory (where it finds what it loads itself: `libcublasLt`, `libnvrtc-builtins`).
pub fn loader_dir(found: &[Found], dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut path = vec![dir.to_path_buf()];
    for f in found {
        let link = dir.join(format!("lib{}.so", f.lib));
        match std::fs::symlink_metadata(&link) {
            Ok(_) => std::fs::remove_file(&link)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        std::os::unix::fs::symlink(&f.path, &link)?;
        if let Some(parent) = f.path.parent()
            && !path.iter().any(|p| p == parent)
        {
            path.push(parent.to_path_buf());
        }
    }
    Ok(path)
}

/// `lib` opened under one of the names cudarc opens it by (its loader's search, as cudarc's own
/// load will do); on failure, the names tried.
pub fn open_as_cudarc(lib: &str) -> Result<libloading::Library, Vec<String>> {
    let names = cudarc::get_lib_name_candidates(lib);
    // SAFETY: loading a CUDA library runs its initialisers, which have no preconditions.
    names
        .iter()
        .find_map(|name| unsafe { libloading::Library::new(name) }.ok())
        .ok_or(names)
}

/// What [`reexec_with_cuda`] decided.
#[derive(Debug)]
pub enum Reexec {
    /// The libraries load as they are (or this is the program run again): nothing to do.
    NotNeeded,
    /// Not every library was found; the GPU path reports it when asked and the CPU runs.
    NotFound(Vec<Missing>),
    /// Found, but the program could not be run again (the error says why).
    Failed(String),
}

/// Call first thing in `main`, before any thread starts: when some CUDA libraries are not loadable
/// under the names cudarc tries ([`unloadable`]) but each of them is found elsewhere ([`locate`]),
/// link those under cudarc's names in `<runtime dir>/gridlease-cuda-<uid>` and replace this process
/// with the same program, arguments and environment plus that `LD_LIBRARY_PATH` (and
/// [`REEXEC_MARK`]); the libraries that load as they are stay as they are. Returns only when no run
/// again is needed or possible, saying which. On a host without CUDA it finds nothing and returns
/// [`Reexec::NotFound`] at once.
pub fn reexec_with_cuda() -> Reexec {
    if std::env::var_os(REEXEC_MARK).is_some() {
        return Reexec::NotNeeded;
    }
    let wanted = unloadable();
    if wanted.is_empty() {
        return Reexec::NotNeeded;
    }
    let found = match locate(&search_dirs(), &wanted) {
        Ok(f) => f,
        Err(missing) => return Reexec::NotFound(missing),
    };
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let dir = base.join(format!("gridlease-cuda-{uid}"));
    let mut path = match loader_dir(&found, &dir) {
        Ok(p) => p,
        Err(e) => {
            return Reexec::Failed(format!(
                "cannot link the CUDA libraries in {}: {e}",
                dir.display()
            ));
        }
    };
    if let Some(old) = std::env::var_os("LD_LIBRARY_PATH") {
        path.extend(std::env::split_paths(&old));
    }
    let joined = match std::env::join_paths(&path) {
        Ok(j) => j,
        Err(e) => return Reexec::Failed(format!("LD_LIBRARY_PATH: {e}")),
    };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return Reexec::Failed(format!("cannot find this program to run it again: {e}")),
    };
    use std::os::unix::process::CommandExt as _;
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("LD_LIBRARY_PATH", joined)
        .env(REEXEC_MARK, "1")
        .exec();
    Reexec::Failed(format!(
        "cannot run this program again with the CUDA libraries: {err}"
    ))
}

/// The files of [`NEEDED`] this process has loaded, read from `/proc/self/maps` (for `check` and
/// the bench's log: which CUDA the GPU path really uses).
pub fn loaded() -> Vec<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let mut out: Vec<PathBuf> = Vec::new();
    for line in maps.lines() {
        let Some(path) = line.split_whitespace().nth(5) else {
            continue;
        };
        let name = Path::new(path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ours = NEEDED
            .iter()
            .any(|(lib, _)| name.starts_with(&format!("lib{lib}.so")));
        if ours && !out.iter().any(|p| p == Path::new(path)) {
            out.push(PathBuf::from(path));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::{NEEDED, loader_dir, locate, search_dirs_in};

    /// Every library of [`NEEDED`].
    fn all() -> [&'static str; 4] {
        NEEDED.map(|(lib, _)| lib)
    }

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, b"").expect("touch");
    }

    /// PyTorch's CUDA 13 wheel folder: versioned names only.
    fn cu13_wheel(wheel: &Path) {
        for f in ["libcublas.so.13", "libcublasLt.so.13", "libnvrtc.so.13"] {
            touch(&wheel.join(f));
        }
    }

    /// A machine laid out like the lent H200s: the driver's libcuda in the system directory,
    /// the rest from PyTorch's CUDA 13 wheels, versioned names only, off the loader's path.
    #[test]
    fn cuda_13_wheels_are_found_and_linked_under_cudarcs_names() {
        let root = tempfile::tempdir().expect("tempdir");
        let r = root.path();
        touch(&r.join("usr/lib/x86_64-linux-gnu/libcuda.so.1"));
        let wheel = r.join("usr/local/lib/python3.12/dist-packages/nvidia/cu13/lib");
        cu13_wheel(&wheel);
        // Another Python's CUDA 12 wheels: searched after the newer Python's, so not taken.
        touch(&r.join("usr/local/lib/python3.9/site-packages/nvidia/cublas/lib/libcublas.so.12"));

        let dirs = search_dirs_in(None, None, &[PathBuf::from("/usr/local")], r);
        let found = locate(&dirs, &all()).expect("all found");
        let by = |lib: &str| {
            found
                .iter()
                .find(|f| f.lib == lib)
                .map(|f| f.path.clone())
                .expect("found")
        };
        assert_eq!(by("cublas"), wheel.join("libcublas.so.13"));
        assert_eq!(by("nvrtc"), wheel.join("libnvrtc.so.13"));
        assert_eq!(by("cuda"), r.join("usr/lib/x86_64-linux-gnu/libcuda.so.1"));

        let links = r.join("run/gridlease-cuda-0");
        let path = loader_dir(&found, &links).expect("links");
        assert_eq!(path[0], links);
        assert!(
            path.contains(&wheel),
            "the wheel's own directory follows: {path:?}"
        );
        for (lib, _) in NEEDED {
            let link = links.join(format!("lib{lib}.so"));
            assert_eq!(std::fs::read_link(&link).expect("a link"), by(lib));
        }
        // Linking again (a second start) replaces the links.
        loader_dir(&found, &links).expect("again");
    }

    /// The lent machines as their notes describe them: PyTorch's CUDA 13 wheels in a virtual
    /// environment that is not activated, only first on `PATH` (`/opt/torch/.venv/bin`), and
    /// the driver's folder mounted at `/usr/local/nvidia`.
    #[test]
    fn a_venv_found_through_path_and_the_containers_driver_folder() {
        let root = tempfile::tempdir().expect("tempdir");
        let r = root.path();
        let venv = r.join("opt/torch/.venv");
        touch(&venv.join("bin/python3"));
        std::fs::create_dir_all(r.join("usr/local/bin")).expect("mkdir");
        let path = std::env::join_paths([r.join("usr/local/bin"), venv.join("bin")]).expect("PATH");
        assert_eq!(
            super::prefixes_on_path(Some(path)),
            vec![venv.clone()],
            "the directory holding a python3, up one; the one without none"
        );

        let wheel = r.join("opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib");
        cu13_wheel(&wheel);
        touch(&r.join("usr/local/nvidia/lib64/libcuda.so.1"));
        let dirs = search_dirs_in(None, None, &[PathBuf::from("/opt/torch/.venv")], r);
        let found = locate(&dirs, &all()).expect("all found");
        assert_eq!(found[0].path, r.join("usr/local/nvidia/lib64/libcuda.so.1"));
        assert!(
            found[1..].iter().all(|f| f.path.starts_with(&wheel)),
            "{found:?}"
        );

        // What loads as it is (here the driver, through the loader's own configuration) is
        // neither looked for nor linked.
        let only = locate(&dirs, &["nvrtc", "cublas"]).expect("found");
        assert_eq!(
            only.iter().map(|f| f.lib).collect::<Vec<_>>(),
            ["nvrtc", "cublas"]
        );
    }

    /// A driver installed where only the dynamic loader's configuration says
    /// (`/etc/ld.so.conf.d/*.conf`, as distributions' driver packages do).
    #[test]
    fn the_loaders_configured_directories_are_searched() {
        let root = tempfile::tempdir().expect("tempdir");
        let r = root.path();
        let write = |p: &str, text: &str| {
            let p = r.join(p);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        };
        write(
            "etc/ld.so.conf",
            "# the usual\ninclude /etc/ld.so.conf.d/*.conf\n",
        );
        write(
            "etc/ld.so.conf.d/nvidia.conf",
            "/opt/nvidia-580/lib64 # the driver\n",
        );
        write("etc/ld.so.conf.d/zz.conf", "include more.d/*.conf\n");
        write("etc/ld.so.conf.d/more.d/x.conf", "/opt/more\n");
        write("etc/ld.so.conf.d/ignored.txt", "/opt/not-a-conf\n");
        for d in ["opt/more", "opt/not-a-conf"] {
            std::fs::create_dir_all(r.join(d)).expect("mkdir");
        }
        touch(&r.join("opt/nvidia-580/lib64/libcuda.so.1"));

        let dirs = search_dirs_in(None, None, &[], r);
        assert!(
            dirs.contains(&r.join("opt/more")),
            "a relative include: {dirs:?}"
        );
        assert!(!dirs.contains(&r.join("opt/not-a-conf")), "{dirs:?}");
        let found = locate(&dirs, &["cuda"]).expect("the driver");
        assert_eq!(found[0].path, r.join("opt/nvidia-580/lib64/libcuda.so.1"));
    }

    #[test]
    fn a_missing_library_names_what_was_looked_for_and_where() {
        let root = tempfile::tempdir().expect("tempdir");
        let r = root.path();
        touch(&r.join("usr/local/cuda/lib64/libcublas.so.12"));
        touch(&r.join("usr/local/cuda/lib64/libcublasLt.so.12"));
        let extra = r.join("opt/mine");
        touch(&extra.join("libnvrtc.so.12"));
        let dirs = search_dirs_in(Some(extra.clone().into_os_string()), None, &[], r);
        assert_eq!(
            dirs[0],
            extra,
            "{}'s directories come first",
            super::DIRS_VAR
        );
        let missing = locate(&dirs, &all()).expect_err("no driver");
        assert_eq!(missing.len(), 1);
        let e = missing[0].to_string();
        assert!(e.starts_with("libcuda not found"), "{e}");
        assert!(
            e.contains("libcuda.so.1") && e.contains("GRIDLEASE_CUDA_LIBS"),
            "{e}"
        );
        assert!(
            e.contains(&r.join("usr/local/cuda/lib64").display().to_string()),
            "{e}"
        );
    }
}
