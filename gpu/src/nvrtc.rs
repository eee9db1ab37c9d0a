//! The kernels (`kernels/kernels.cu`) compiled by NVRTC at run time, for the device they run on.
//!
//! A device gets machine code for its own architecture first (a CUBIN for `sm_90` on an H100 or
//! H200), and PTX for the driver to compile only when NVRTC cannot build that or the driver
//! refuses it ([`load`]). Two reasons:
//!
//! - **A newer NVRTC than the driver.** NVRTC comes from wherever the CUDA libraries are found
//!   (PyTorch's wheels, a toolkit), not with the driver. A driver takes machine code from a newer
//!   release of its own CUDA major version, but it refuses PTX newer than itself
//!   (`CUDA_ERROR_UNSUPPORTED_PTX_VERSION`).
//! - **No compile at load.** The kernels are about 1.1 MB of PTX; the driver would compile them
//!   (about 2 s of ptxas for `sm_90`) on every start where its cache is cold.
//!
//! Only `libnvrtc` is needed to compile (no driver, no GPU): the tests compile the kernels for
//! every architecture the market's GPU classes have, with the NVRTC the lent machines carry.

use std::{
    ffi::{CString, c_char},
    fmt,
    sync::{Arc, Mutex, OnceLock},
};

use cudarc::{
    driver::{CudaContext, CudaModule},
    nvrtc::{
        Ptx,
        result::{self, NvrtcError},
        sys,
    },
};

use crate::error::{GpuError, missing_library};

/// The CUDA source of the kernels as NVRTC compiles it (prelude + kernels).
pub fn kernel_source() -> String {
    [
        include_str!("../kernels/prelude_cuda.h"),
        include_str!("../kernels/kernels.cu"),
    ]
    .concat()
}

/// What NVRTC is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// Machine code for compute capability (major, minor): `sm_90` for (9, 0).
    Sm(u32, u32),
    /// PTX for NVRTC's default virtual architecture, compiled by the driver when loaded.
    Ptx,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sm(major, minor) => write!(f, "sm_{major}{minor}"),
            Self::Ptx => f.write_str("PTX"),
        }
    }
}

/// The kernels, compiled.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// What they were compiled for.
    pub target: Target,
    /// NVRTC's version (major, minor).
    pub nvrtc: (i32, i32),
    /// A CUBIN (an ELF file) for [`Target::Sm`], PTX text for [`Target::Ptx`].
    pub image: Vec<u8>,
    /// NVRTC's log: for machine code, ptxas's registers and spills of each kernel.
    pub log: String,
}

impl Compiled {
    /// `(kernel, bytes spilled)` for each kernel ptxas spilled registers of (stores and loads
    /// together), from the log; empty for PTX, which ptxas has not seen yet.
    pub fn spills(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        let mut kernel = None;
        for line in self.log.lines() {
            if let Some(name) = line.split("Function properties for ").nth(1) {
                kernel = Some(name.trim().to_owned());
            } else if line.contains("spill stores")
                && let Some(k) = kernel.take()
            {
                let bytes: u64 = line
                    .split(',')
                    .filter(|part| part.contains("spill"))
                    .filter_map(|part| part.split_whitespace().find_map(|w| w.parse::<u64>().ok()))
                    .sum();
                if bytes > 0 {
                    out.push((k, bytes));
                }
            }
        }
        out
    }

    /// The most registers a kernel uses, from ptxas's log (`None` for PTX).
    pub fn max_registers(&self) -> Option<u32> {
        self.log
            .lines()
            .filter_map(|l| l.split("Used ").nth(1))
            .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
            .max()
    }
}

/// `libnvrtc` loadable under the names cudarc opens (cudarc panics otherwise), checked once.
fn check_nvrtc() -> Result<(), GpuError> {
    static NVRTC: OnceLock<Result<libloading::Library, Vec<String>>> = OnceLock::new();
    match NVRTC.get_or_init(|| crate::libs::open_as_cudarc("nvrtc")) {
        Ok(_) => Ok(()),
        Err(names) => Err(missing_library("nvrtc", names)),
    }
}

/// NVRTC's version (major, minor).
pub fn version() -> Result<(i32, i32), GpuError> {
    check_nvrtc()?;
    let (mut major, mut minor) = (0, 0);
    // SAFETY: both pointers are to live integers NVRTC writes.
    unsafe { sys::nvrtcVersion(&mut major, &mut minor) }
        .result()
        .map_err(|e| GpuError::Compile(format!("nvrtcVersion: {e:?}")))?;
    Ok((major, minor))
}

/// A program NVRTC holds, destroyed when dropped.
struct Program(sys::nvrtcProgram);

impl Drop for Program {
    fn drop(&mut self) {
        // SAFETY: created by create_program, destroyed only here.
        let _ = unsafe { result::destroy_program(self.0) };
    }
}

/// Compile the kernels for `target` (only `libnvrtc` is needed: no driver, no GPU). Every option
/// NVRTC rejects and every error in the source comes back with NVRTC's log.
pub fn compile(target: Target) -> Result<Compiled, GpuError> {
    let nvrtc = version()?;
    let src = CString::new(kernel_source())
        .map_err(|_| GpuError::Compile("a NUL byte in the kernels' source".into()))?;
    let nv = |what: &str, e: NvrtcError| GpuError::Compile(format!("{what}: {e:?}"));
    let prog = Program(
        result::create_program(&src, Some(c"gridlease_kernels.cu"))
            .map_err(|e| nv("nvrtcCreateProgram", e))?,
    );
    let mut options = vec!["--std=c++17".to_owned()];
    if let Target::Sm(..) = target {
        options.push(format!("--gpu-architecture={target}"));
        options.push("--ptxas-options=-v".to_owned());
    }
    // SAFETY: `prog` is live until dropped at the end of this function.
    let compiled = unsafe { result::compile_program(prog.0, &options) };
    // SAFETY: as above.
    let log = unsafe { result::get_program_log(prog.0) }
        .map(|l| c_text(&l))
        .unwrap_or_default();
    if let Err(e) = compiled {
        return Err(GpuError::Compile(format!(
            "NVRTC {}.{} compiling for {target} with {options:?}: {e:?}: {log}",
            nvrtc.0, nvrtc.1
        )));
    }
    let image = match target {
        // SAFETY: as above; the size comes from NVRTC and the buffer is that long.
        Target::Sm(..) => unsafe {
            let mut size = 0usize;
            sys::nvrtcGetCUBINSize(prog.0, &mut size)
                .result()
                .map_err(|e| nv("nvrtcGetCUBINSize", e))?;
            let mut cubin = vec![0u8; size];
            sys::nvrtcGetCUBIN(prog.0, cubin.as_mut_ptr().cast::<c_char>())
                .result()
                .map_err(|e| nv("nvrtcGetCUBIN", e))?;
            cubin
        },
        // SAFETY: as above.
        Target::Ptx => {
            c_text(&unsafe { result::get_ptx(prog.0) }.map_err(|e| nv("nvrtcGetPTX", e))?)
                .into_bytes()
        }
    };
    if image.is_empty() {
        return Err(GpuError::Compile(format!(
            "NVRTC {}.{} gave an empty {target}",
            nvrtc.0, nvrtc.1
        )));
    }
    Ok(Compiled {
        target,
        nvrtc,
        image,
        log,
    })
}

/// A NUL-terminated C string's text.
fn c_text(chars: &[c_char]) -> String {
    let bytes: Vec<u8> = chars
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// [`compile`], once per target and process (every device of one architecture shares it).
pub fn compiled(target: Target) -> Result<Arc<Compiled>, GpuError> {
    static DONE: Mutex<Vec<Arc<Compiled>>> = Mutex::new(Vec::new());
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = done.iter().find(|c| c.target == target) {
        return Ok(c.clone());
    }
    let c = Arc::new(compile(target)?);
    done.push(c.clone());
    Ok(c)
}

/// The kernels loaded on `ctx`'s device: its own machine code, or PTX the driver compiles where
/// that cannot be had (NVRTC without the architecture, or a driver that refuses NVRTC's CUBIN).
/// Also returns how they were built, in words (for logs and `gpu.json`).
pub fn load(ctx: &Arc<CudaContext>) -> Result<(Arc<CudaModule>, String), GpuError> {
    let (major, minor) = ctx.compute_capability()?;
    let sm = Target::Sm(
        u32::try_from(major).unwrap_or(0),
        u32::try_from(minor).unwrap_or(0),
    );
    let why_not = match compiled(sm) {
        Ok(c) => match ctx.load_module(Ptx::from_binary(c.image.clone())) {
            Ok(m) => {
                let spills = c.spills();
                return Ok((
                    m,
                    format!(
                        "{sm} machine code by NVRTC {}.{}, {} ({} registers at most)",
                        c.nvrtc.0,
                        c.nvrtc.1,
                        if spills.is_empty() {
                            "no spills".to_owned()
                        } else {
                            format!("spills {spills:?}")
                        },
                        c.max_registers().unwrap_or(0)
                    ),
                ));
            }
            Err(e) => format!(
                "the driver refused NVRTC {}.{}'s {sm} machine code: {e}",
                c.nvrtc.0, c.nvrtc.1
            ),
        },
        Err(e) => e.to_string(),
    };
    tracing::warn!(why = %why_not, "loading the kernels as PTX for the driver to compile");
    let ptx = compiled(Target::Ptx)?;
    let text = String::from_utf8_lossy(&ptx.image).into_owned();
    let m = ctx.load_module(Ptx::from_src(text))?;
    Ok((
        m,
        format!(
            "PTX by NVRTC {}.{}, compiled by the driver ({why_not})",
            ptx.nvrtc.0, ptx.nvrtc.1
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::{Compiled, Target};

    /// ptxas's `-v` log as NVRTC 13.0 writes it for sm_90 (two kernels, one made to spill).
    #[test]
    fn spills_and_registers_are_read_from_ptxas_log() {
        let log = "\
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'gl_fv_compare' for 'sm_90'
ptxas info    : Function properties for gl_fv_compare
ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 32 registers, used 0 barriers
ptxas info    : Compiling entry function 'gl_leaves' for 'sm_90'
ptxas info    : Function properties for gl_leaves
ptxas         .     48 bytes stack frame, 40 bytes spill stores, 24 bytes spill loads
ptxas info    : Used 138 registers, used 0 barriers
";
        let c = Compiled {
            target: Target::Sm(9, 0),
            nvrtc: (13, 0),
            image: Vec::new(),
            log: log.to_owned(),
        };
        assert_eq!(c.spills(), vec![("gl_leaves".to_owned(), 64)]);
        assert_eq!(c.max_registers(), Some(138));
        let ptx = Compiled {
            target: Target::Ptx,
            log: String::new(),
            ..c
        };
        assert_eq!((ptx.spills(), ptx.max_registers()), (vec![], None));
        assert_eq!(Target::Sm(12, 0).to_string(), "sm_120");
    }
}
