//! gridlease-gpu: the GPUs of a provider host and the built-in `matmul_i8` workload on them.
//!
//! - [`nvml`]: discovery through NVML loaded at runtime (model, UUID, VRAM, SMs, driver and CUDA
//!   versions); [`discover`] adds the SM count from the CUDA driver where NVML does not report it.
//! - [`cuda`]: the workload on a GPU with cudarc (driver, NVRTC, cuBLAS loaded at runtime, checked
//!   with libloading first): seeded inputs and the Merkle commitment by kernels compiled with
//!   NVRTC (`kernels/kernels.cu`), the INT8 GEMM by cuBLAS, Freivalds' check.
//! - [`error`]: why the GPU path cannot run ([`GpuError`]).
//! - [`nvrtc`]: the kernels compiled at run time, as machine code for the device's architecture
//!   (PTX for the driver where that cannot be had).
//! - [`libs`]: where the CUDA libraries are (CUDA 12 or 13, the toolkit or PyTorch's wheels), and
//!   the one run again that makes them loadable ([`libs::reexec_with_cuda`]).
//! - [`plan`]: the padded device layout both of them and the tests share.
//! - [`compute`]: the entry the provider uses: the GPU when one is usable, else the CPU reference
//!   of gridlease-workload, with the same bytes and root either way, and a [`Backend`] saying which
//!   ran and why.
//!
//! Nothing CUDA is needed to build this crate (cudarc with `dynamic-loading` and a fixed
//! `cuda-12080` API version); on a host without a GPU everything reports why and the CPU runs. The
//! kernels also compile as plain C (`kernels/prelude_c.h`); `tests/it/kernels_c.rs` holds them to
//! gridlease-workload's bytes without a GPU.

pub mod cuda;
pub mod error;
pub mod libs;
pub mod nvml;
pub mod nvrtc;
pub mod plan;

use std::{
    fmt,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering::Relaxed},
    },
};

use alloy_primitives::B256;
use gridlease_workload::matmul::{self, Matmul, MatmulData, Operands};

pub use cuda::{CudaMatmul, GpuError};
pub use nvml::NvmlError;
pub use plan::Plan;

/// One GPU as the driver reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpuInfo {
    /// NVML index (PCI bus order).
    pub index: u32,
    /// Model, e.g. "NVIDIA H200".
    pub name: String,
    /// `GPU-...`, the id `CUDA_VISIBLE_DEVICES` accepts.
    pub uuid: String,
    /// Memory, MiB.
    pub vram_mib: u64,
    /// Streaming multiprocessors, when known.
    pub sm_count: Option<u32>,
    /// Compute capability (major, minor), when known.
    pub compute_capability: Option<(u32, u32)>,
    /// Driver version, e.g. "550.54.15".
    pub driver: String,
    /// Highest CUDA version the driver supports, e.g. "12.4".
    pub cuda: String,
}

/// The GPUs NVML sees; SM counts NVML does not give are read from the CUDA driver (matched by
/// UUID) when its libraries are present. An error says why there is no list (no driver, ...).
pub fn discover() -> Result<Vec<GpuInfo>, NvmlError> {
    let mut gpus = nvml::query()?;
    if gpus.iter().any(|g| g.sm_count.is_none()) {
        match cuda::devices() {
            Ok(devs) => {
                for g in &mut gpus {
                    if g.sm_count.is_none() {
                        g.sm_count = devs
                            .iter()
                            .find(|(_, u, _)| u.eq_ignore_ascii_case(&g.uuid))
                            .map(|(_, _, sms)| *sms);
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "SM counts unavailable from CUDA"),
        }
    }
    Ok(gpus)
}

/// Which device [`compute`] should use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Device {
    /// The first visible GPU when one is usable, else the CPU.
    #[default]
    Auto,
    /// Always the CPU reference.
    Cpu,
    /// This visible CUDA ordinal (CPU when it is not usable).
    Ordinal(usize),
    /// The GPU with this UUID (CPU when it is not usable).
    Uuid(String),
}

/// What ran a product.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A GPU.
    Gpu {
        /// Its CUDA ordinal.
        ordinal: usize,
        /// Its model.
        name: String,
        /// Its UUID.
        uuid: String,
    },
    /// The CPU reference, and why not a GPU.
    Cpu {
        /// Why the GPU path was not used.
        reason: String,
    },
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Gpu {
                ordinal,
                name,
                uuid,
            } => write!(f, "GPU {ordinal} ({name}, {uuid})"),
            Self::Cpu { reason } => write!(f, "CPU ({reason})"),
        }
    }
}

/// The inputs of a job.
#[derive(Clone, Copy, Debug)]
pub enum Inputs<'a> {
    /// Generated from a seed.
    Seeded(Matmul),
    /// Given as data.
    Data(&'a MatmulData),
}

impl Inputs<'_> {
    /// (m, k, n).
    pub fn shape(&self) -> (u32, u32, u32) {
        match self {
            Self::Seeded(j) => j.shape(),
            Self::Data(d) => d.shape(),
        }
    }
}

/// A computed product as committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Product {
    /// C, row-major big-endian int32s (`gridlease_workload::matmul::encode`).
    pub c_bytes: Vec<u8>,
    /// The result root of `c_bytes` (1 KiB leaves,
    /// `gridlease_workload::merkle::MerkleTree::result`), where it was computed (the GPU path
    /// always does, on the GPU; [`compute`]'s CPU fallback leaves it to the caller, which commits
    /// the result bytes anyway).
    pub root: Option<B256>,
    /// What computed it.
    pub backend: Backend,
}

/// Why a job cannot be computed at all.
#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    /// The shape is invalid (zero side, k too large).
    #[error("invalid shape: {0}")]
    Shape(String),
    /// Stopped by the caller before it finished.
    #[error("stopped before the product was done")]
    Stopped,
}

/// The CPU reference: product, encoding and root from gridlease-workload.
pub fn compute_cpu(inputs: Inputs<'_>, threads: usize, reason: String) -> Product {
    let (m, k, n) = inputs.shape();
    let (a, bt) = operands(inputs);
    let c = matmul::multiply(&a, &bt, m as usize, k as usize, n as usize, threads);
    product(&c, reason, true)
}

fn operands(inputs: Inputs<'_>) -> (std::borrow::Cow<'_, [i8]>, std::borrow::Cow<'_, [i8]>) {
    match inputs {
        Inputs::Seeded(j) => (j.a().into(), j.bt().into()),
        Inputs::Data(d) => (d.a(), d.bt()),
    }
}

fn product(c: &[i32], reason: String, with_root: bool) -> Product {
    let c_bytes = matmul::encode(c);
    let root = with_root.then(|| matmul::commit(c).root());
    Product {
        c_bytes,
        root,
        backend: Backend::Cpu { reason },
    }
}

/// The product on an opened GPU (no fallback).
pub fn compute_gpu(inputs: Inputs<'_>, gpu: &CudaMatmul) -> Result<Product, GpuError> {
    let (m, k, n) = inputs.shape();
    let p = Plan::new(m, k, n);
    let ops = match inputs {
        Inputs::Seeded(j) => gpu.generate(&p, j.seed)?,
        Inputs::Data(d) => gpu.upload(&p, &d.a, &d.bt)?,
    };
    let c = gpu.multiply(&p, &ops)?;
    let (root, bytes) = gpu.commit(&p, &c, true)?;
    gpu.synchronize()?;
    Ok(Product {
        c_bytes: bytes.unwrap_or_default(),
        root: Some(root),
        backend: Backend::Gpu {
            ordinal: gpu.ordinal,
            name: gpu.name.clone(),
            uuid: gpu.uuid.clone(),
        },
    })
}

/// Open the GPU `device` names (`None` for [`Device::Cpu`]).
pub fn open(device: &Device) -> Option<Result<CudaMatmul, GpuError>> {
    match device {
        Device::Cpu => None,
        Device::Auto => Some(CudaMatmul::open(0)),
        Device::Ordinal(i) => Some(CudaMatmul::open(*i)),
        Device::Uuid(u) => Some(CudaMatmul::open_uuid(u)),
    }
}

/// GPUs this process has opened, by the [`Device`] that named them. Opening one compiles the
/// kernels and creates a context and a cuBLAS handle (a tenth of a second and more), so each is
/// opened once and kept for the next job. A job holds its GPU's lock for the whole product (one
/// stream, one cuBLAS handle: jobs sharing a GPU take turns). A GPU that fails, or panics, is
/// dropped and opened afresh for the next job.
static OPENED: Mutex<Vec<(Device, Arc<Mutex<CudaMatmul>>)>> = Mutex::new(Vec::new());

/// The GPU `device` names, opened once per process (`None` for [`Device::Cpu`]).
pub fn opened(device: &Device) -> Option<Result<Arc<Mutex<CudaMatmul>>, GpuError>> {
    if *device == Device::Cpu {
        return None;
    }
    let mut cache = OPENED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, gpu)) = cache.iter().find(|(d, _)| d == device) {
        return Some(Ok(gpu.clone()));
    }
    Some(open(device)?.map(|gpu| {
        let gpu = Arc::new(Mutex::new(gpu));
        cache.push((device.clone(), gpu.clone()));
        gpu
    }))
}

/// Drop `device`'s opened GPU: the next job opens it afresh.
pub fn forget(device: &Device) {
    let gone: Vec<_> = {
        let mut cache = OPENED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (gone, kept) = std::mem::take(&mut *cache)
            .into_iter()
            .partition(|(d, _)| d == device);
        *cache = kept;
        gone
    };
    // Closed outside the lock, and a panic caught: after a fault cuBLAS may refuse to destroy
    // its handle, which cudarc unwraps; the job goes on to the CPU all the same.
    for (_, gpu) in gone {
        if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(gpu))) {
            tracing::warn!(panic = %panic_message(p.as_ref()), "closing a failed GPU panicked");
        }
    }
}

/// The text of a caught panic (cudarc panics where a library lacks a symbol its bindings name).
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

/// Open `device` afresh (not the node's cached GPU), compute a small seeded job of odd sides on
/// it and on the CPU reference, and compare the root and every byte of C: what
/// `gridlease-provider check` runs on each GPU, so an operator learns before the first job
/// whether built-in jobs will run on the GPU. `Ok` is one line of what was seen (the time to open,
/// which includes compiling the kernels, and how they were built); `Err` says why the GPU path is
/// unusable there, and then built-in jobs run on the CPU.
pub fn self_test(device: &Device) -> Result<String, String> {
    let job = Matmul {
        seed: B256::repeat_byte(0x5e),
        m: 129,
        k: 257,
        n: 65,
    };
    let cpu = compute_cpu(Inputs::Seeded(job), 1, String::new());
    let run = std::panic::catch_unwind(|| -> Result<String, String> {
        let opening = std::time::Instant::now();
        let gpu = match open(device) {
            None => return Err("CPU requested".to_owned()),
            Some(g) => g.map_err(|e| e.to_string())?,
        };
        let open_s = opening.elapsed().as_secs_f64();
        let computing = std::time::Instant::now();
        let got = compute_gpu(Inputs::Seeded(job), &gpu).map_err(|e| e.to_string())?;
        let compute_s = computing.elapsed().as_secs_f64();
        if got.root != cpu.root || got.c_bytes != cpu.c_bytes {
            return Err(format!(
                "{} computed a {}x{}x{} product that differs from the CPU's (root {:?}, CPU {:?}): \
                 a driver or library fault; built-in jobs would be refused by their tenants",
                got.backend, job.m, job.k, job.n, got.root, cpu.root
            ));
        }
        Ok(format!(
            "{}: a {}x{}x{} product equal to the CPU's, byte for byte; opened in {open_s:.2} s \
             (kernels: {}), computed in {compute_s:.3} s",
            got.backend, job.m, job.k, job.n, gpu.kernels
        ))
    });
    run.unwrap_or_else(|p| {
        Err(format!(
            "the GPU path panicked: {}",
            panic_message(p.as_ref())
        ))
    })
}

/// C = A x B of `inputs` and its commitment: on the GPU `device` names when it is usable, else on
/// the CPU with `threads` threads (also when the GPU fails midway). Same bytes either way; the
/// [`Backend`] says which ran and why.
pub fn compute(
    inputs: Inputs<'_>,
    device: &Device,
    threads: usize,
) -> Result<Product, ComputeError> {
    compute_until(inputs, device, threads, &AtomicBool::new(false))
}

/// [`compute`] that gives up ([`ComputeError::Stopped`]) once `stop` is set: checked before the
/// GPU is opened, before the CPU fallback, and between row blocks of the CPU product (so a
/// stopped CPU product ends within a fraction of a second; a GPU product runs to its end).
pub fn compute_until(
    inputs: Inputs<'_>,
    device: &Device,
    threads: usize,
    stop: &AtomicBool,
) -> Result<Product, ComputeError> {
    let (m, k, n) = inputs.shape();
    matmul::validate_shape(m, k, n).map_err(ComputeError::Shape)?;
    if stop.load(Relaxed) {
        return Err(ComputeError::Stopped);
    }
    // cudarc panics where a symbol it wants is missing (a driver older than its API version):
    // the libraries are checked first, and a panic that still happens falls back like an error.
    let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match opened(device) {
        None => Err("CPU requested".to_owned()),
        Some(Err(e)) => Err(format!("no usable GPU: {e}")),
        Some(Ok(slot)) => {
            // A poisoned lock: a product panicked on this GPU; it is dropped below.
            let gpu = slot
                .lock()
                .map_err(|_| "the GPU failed in an earlier job".to_owned())?;
            compute_gpu(inputs, &gpu).map_err(|e| {
                tracing::warn!(gpu = %gpu.uuid, error = %e, "GPU product failed; computing on the CPU");
                format!("GPU {} failed: {e}", gpu.uuid)
            })
        }
    }));
    if !matches!(attempt, Ok(Ok(_))) && *device != Device::Cpu {
        forget(device);
    }
    let reason = match attempt {
        Ok(Ok(p)) => return Ok(p),
        Ok(Err(reason)) => reason,
        Err(panic) => {
            let msg = panic_message(panic.as_ref());
            tracing::warn!(panic = %msg, "the GPU path panicked; computing on the CPU");
            format!("the GPU path panicked: {msg}")
        }
    };
    if stop.load(Relaxed) {
        return Err(ComputeError::Stopped);
    }
    let (a, bt) = operands(inputs);
    let c = matmul::multiply_until(&a, &bt, m as usize, k as usize, n as usize, threads, stop)
        .ok_or(ComputeError::Stopped)?;
    Ok(product(&c, reason, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_gives_the_cpu_reference_bits_with_or_without_a_gpu() {
        for (m, k, n) in [(1, 1, 1), (17, 33, 9), (16, 16, 16), (5, 130, 70)] {
            let job = Matmul {
                seed: B256::repeat_byte(3),
                m,
                k,
                n,
            };
            let want = compute_cpu(Inputs::Seeded(job), 1, String::new());
            let got = compute(Inputs::Seeded(job), &Device::Auto, 2).expect("valid shape");
            assert_eq!(got.c_bytes, want.c_bytes, "{:?}", got.backend);
            if got.root.is_some() {
                assert_eq!(got.root, want.root);
            }
            if let Backend::Cpu { reason } = &got.backend {
                assert!(!reason.is_empty());
            }
        }
        let bad = Matmul {
            seed: B256::ZERO,
            m: 0,
            k: 1,
            n: 1,
        };
        assert!(compute(Inputs::Seeded(bad), &Device::Auto, 1).is_err());
    }

    #[test]
    fn a_stopped_compute_gives_up() {
        let job = Matmul {
            seed: B256::repeat_byte(3),
            m: 17,
            k: 33,
            n: 9,
        };
        let stop = AtomicBool::new(true);
        for device in [Device::Cpu, Device::Auto] {
            let got = compute_until(Inputs::Seeded(job), &device, 2, &stop);
            assert!(matches!(got, Err(ComputeError::Stopped)), "{got:?}");
        }
        let go = AtomicBool::new(false);
        let got = compute_until(Inputs::Seeded(job), &Device::Cpu, 2, &go).expect("computes");
        assert_eq!(
            got.c_bytes,
            compute_cpu(Inputs::Seeded(job), 1, String::new()).c_bytes
        );
    }

    #[test]
    fn discovery_without_a_driver_is_an_error_not_a_panic() {
        match discover() {
            Ok(gpus) => eprintln!("{} GPU(s)", gpus.len()),
            Err(e) => assert!(e.to_string().contains("NVML"), "{e}"),
        }
    }
}
