//! GPU discovery through NVML, the driver's management library, loaded at runtime with
//! `libloading` (`libnvidia-ml.so.1`, which ships with the driver): nothing is needed at build
//! time, only the symbols used here are resolved, and every failure is an [`NvmlError`], never a
//! panic. A host without the driver gets [`NvmlError::Library`].

use std::ffi::{c_char, c_int, c_uint, c_void};

use libloading::Library;

use crate::GpuInfo;

/// Names tried for the NVML library, in order.
pub const LIBRARY_NAMES: [&str; 2] = ["libnvidia-ml.so.1", "libnvidia-ml.so"];

/// Why NVML could not report the GPUs.
#[derive(Debug, thiserror::Error)]
pub enum NvmlError {
    /// The library is not installed (no NVIDIA driver) or cannot be loaded.
    #[error("NVML not loadable (tried {tried:?}): {reason}; is the NVIDIA driver installed?")]
    Library {
        /// File names tried.
        tried: Vec<&'static str>,
        /// The loader's last error.
        reason: String,
    },
    /// The library lacks a symbol (a driver older than NVML v2).
    #[error("NVML has no {name}: {reason} (driver too old?)")]
    Symbol {
        /// The symbol.
        name: &'static str,
        /// The loader's error.
        reason: String,
    },
    /// A call returned an error code.
    #[error("{call} failed: NVML error {code} ({message})")]
    Call {
        /// The function.
        call: &'static str,
        /// `nvmlReturn_t`.
        code: c_int,
        /// `nvmlErrorString` of it.
        message: String,
    },
}

/// `nvmlReturn_t`: 0 is success.
type Ret = c_int;
/// `nvmlDevice_t`.
type Device = *mut c_void;

#[repr(C)]
#[derive(Default)]
struct Memory {
    total: u64,
    free: u64,
    used: u64,
}

#[repr(C)]
#[derive(Default)]
struct Attributes {
    multiprocessor_count: c_uint,
    shared_copy_engine_count: c_uint,
    shared_decoder_count: c_uint,
    shared_encoder_count: c_uint,
    shared_jpeg_count: c_uint,
    shared_ofa_count: c_uint,
    gpu_instance_slice_count: c_uint,
    compute_instance_slice_count: c_uint,
    memory_size_mb: u64,
}

/// NVML, loaded and initialised; shut down on drop.
struct Nvml {
    shutdown: unsafe extern "C" fn() -> Ret,
    error_string: unsafe extern "C" fn(Ret) -> *const c_char,
    // Keeps the symbols above valid; dropped last.
    _lib: Library,
}

impl Drop for Nvml {
    fn drop(&mut self) {
        // SAFETY: nvmlInit_v2 succeeded when this value was built; shutdown pairs with it.
        unsafe {
            (self.shutdown)();
        }
    }
}

fn load() -> Result<Library, NvmlError> {
    let mut reason = String::new();
    for name in LIBRARY_NAMES {
        // SAFETY: loading NVML runs its initialisers, which have no preconditions.
        match unsafe { Library::new(name) } {
            Ok(lib) => return Ok(lib),
            Err(e) => reason = e.to_string(),
        }
    }
    Err(NvmlError::Library {
        tried: LIBRARY_NAMES.to_vec(),
        reason,
    })
}

/// Resolve `name` as a function pointer of type `T`.
///
/// # Safety
/// `T` must be the symbol's C signature, and the pointer must not outlive `lib`.
unsafe fn sym<T: Copy>(lib: &Library, name: &'static str) -> Result<T, NvmlError> {
    // SAFETY: the caller names the right signature.
    unsafe { lib.get::<T>(name) }
        .map(|s| *s)
        .map_err(|e| NvmlError::Symbol {
            name,
            reason: e.to_string(),
        })
}

fn c_string(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).trim().to_owned()
}

impl Nvml {
    fn check(&self, call: &'static str, code: Ret) -> Result<(), NvmlError> {
        if code == 0 {
            return Ok(());
        }
        // SAFETY: nvmlErrorString returns a static string for any code (or null).
        let p = unsafe { (self.error_string)(code) };
        let message = if p.is_null() {
            String::from("unknown")
        } else {
            // SAFETY: non-null, NUL-terminated, static.
            unsafe { std::ffi::CStr::from_ptr(p) }
                .to_string_lossy()
                .into_owned()
        };
        Err(NvmlError::Call {
            call,
            code,
            message,
        })
    }
}

/// `12040` -> `"12.4"`.
pub fn cuda_version_string(v: c_int) -> String {
    format!("{}.{}", v / 1000, (v % 1000) / 10)
}

/// Every GPU NVML sees, in NVML's (PCI bus) order. `sm_count` is filled where NVML reports it
/// (`nvmlDeviceGetAttributes_v2`; see [`crate::discover`] for the CUDA fallback).
pub fn query() -> Result<Vec<GpuInfo>, NvmlError> {
    let lib = load()?;
    // SAFETY: each signature below is NVML's documented C prototype; the pointers are used only
    // while `lib` is alive (it moves into `nvml`, which lives to the end of this function).
    unsafe {
        let init: unsafe extern "C" fn() -> Ret = sym(&lib, "nvmlInit_v2")?;
        let shutdown = sym(&lib, "nvmlShutdown")?;
        let error_string: unsafe extern "C" fn(Ret) -> *const c_char =
            sym(&lib, "nvmlErrorString")?;
        let count_fn: unsafe extern "C" fn(*mut c_uint) -> Ret =
            sym(&lib, "nvmlDeviceGetCount_v2")?;
        let handle_fn: unsafe extern "C" fn(c_uint, *mut Device) -> Ret =
            sym(&lib, "nvmlDeviceGetHandleByIndex_v2")?;
        let name_fn: unsafe extern "C" fn(Device, *mut c_char, c_uint) -> Ret =
            sym(&lib, "nvmlDeviceGetName")?;
        let uuid_fn: unsafe extern "C" fn(Device, *mut c_char, c_uint) -> Ret =
            sym(&lib, "nvmlDeviceGetUUID")?;
        let mem_fn: unsafe extern "C" fn(Device, *mut Memory) -> Ret =
            sym(&lib, "nvmlDeviceGetMemoryInfo")?;
        let driver_fn: unsafe extern "C" fn(*mut c_char, c_uint) -> Ret =
            sym(&lib, "nvmlSystemGetDriverVersion")?;
        let cuda_fn: unsafe extern "C" fn(*mut c_int) -> Ret =
            sym(&lib, "nvmlSystemGetCudaDriverVersion_v2")?;
        // Optional: older drivers lack them, MIG-less GPUs may refuse attributes.
        let cc_fn: Option<unsafe extern "C" fn(Device, *mut c_int, *mut c_int) -> Ret> =
            sym(&lib, "nvmlDeviceGetCudaComputeCapability").ok();
        let attr_fn: Option<unsafe extern "C" fn(Device, *mut Attributes) -> Ret> =
            sym(&lib, "nvmlDeviceGetAttributes_v2").ok();

        let code = init();
        if code != 0 {
            // Not initialised: no shutdown, but the error text needs the library.
            let p = error_string(code);
            let message = if p.is_null() {
                String::from("unknown")
            } else {
                std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
            };
            return Err(NvmlError::Call {
                call: "nvmlInit_v2",
                code,
                message,
            });
        }
        let nvml = Nvml {
            shutdown,
            error_string,
            _lib: lib,
        };
        let mut buf = [0u8; 96];
        nvml.check(
            "nvmlSystemGetDriverVersion",
            driver_fn(buf.as_mut_ptr().cast(), buf.len() as c_uint),
        )?;
        let driver = c_string(&buf);
        let mut cuda: c_int = 0;
        nvml.check("nvmlSystemGetCudaDriverVersion_v2", cuda_fn(&mut cuda))?;
        let cuda = cuda_version_string(cuda);
        let mut count: c_uint = 0;
        nvml.check("nvmlDeviceGetCount_v2", count_fn(&mut count))?;
        let mut out = Vec::with_capacity(count as usize);
        for index in 0..count {
            let mut dev: Device = std::ptr::null_mut();
            nvml.check("nvmlDeviceGetHandleByIndex_v2", handle_fn(index, &mut dev))?;
            let mut buf = [0u8; 96];
            nvml.check(
                "nvmlDeviceGetName",
                name_fn(dev, buf.as_mut_ptr().cast(), buf.len() as c_uint),
            )?;
            let name = c_string(&buf);
            let mut buf = [0u8; 96];
            nvml.check(
                "nvmlDeviceGetUUID",
                uuid_fn(dev, buf.as_mut_ptr().cast(), buf.len() as c_uint),
            )?;
            let uuid = c_string(&buf);
            let mut mem = Memory::default();
            nvml.check("nvmlDeviceGetMemoryInfo", mem_fn(dev, &mut mem))?;
            let compute_capability = cc_fn.and_then(|f| {
                let (mut major, mut minor) = (0, 0);
                (f(dev, &mut major, &mut minor) == 0).then_some((major as u32, minor as u32))
            });
            let sm_count = attr_fn.and_then(|f| {
                let mut a = Attributes::default();
                (f(dev, &mut a) == 0 && a.multiprocessor_count > 0)
                    .then_some(a.multiprocessor_count)
            });
            out.push(GpuInfo {
                index,
                name,
                uuid,
                vram_mib: mem.total >> 20,
                sm_count,
                compute_capability,
                driver: driver.clone(),
                cuda: cuda.clone(),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_strings() {
        assert_eq!(cuda_version_string(12040), "12.4");
        assert_eq!(cuda_version_string(13000), "13.0");
        assert_eq!(c_string(b"NVIDIA H200\0junk"), "NVIDIA H200");
        assert_eq!(c_string(b"no nul"), "no nul");
    }

    #[test]
    fn a_host_without_the_driver_gets_an_error_not_a_panic() {
        match query() {
            Ok(gpus) => eprintln!("NVML present: {} GPU(s)", gpus.len()),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
}
