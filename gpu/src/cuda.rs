//! The `matmul_i8` workload on an NVIDIA GPU through cudarc, all loaded at runtime: the CUDA
//! driver, NVRTC (the kernels in `kernels/kernels.cu` are compiled for the device's architecture
//! when the first device of it is opened, [`crate::nvrtc`]) and
//! cuBLAS (the INT8 x INT8 -> INT32 GEMM, `cublasGemmEx` with `CUBLAS_COMPUTE_32I`).
//!
//! cudarc panics when a library it needs is missing, so [`check_libraries`] loads each of them
//! with libloading first and every entry point here calls it before touching cudarc.

use std::{
    ffi::c_void,
    sync::{Arc, OnceLock},
};

use alloy_primitives::B256;
use cudarc::{
    cublas::{
        CudaBlas,
        sys::{cublasComputeType_t, cublasGemmAlgo_t, cublasOperation_t, cudaDataType},
    },
    driver::{
        CudaContext, CudaEvent, CudaFunction, CudaModule, CudaSlice, CudaStream, CudaView,
        DevicePtr, DevicePtrMut, LaunchConfig, PinnedHostSlice, PushKernelArg,
    },
};

pub use crate::error::GpuError;
use crate::{
    error::missing_library,
    plan::{FV_JCHUNK, FV_LANES, LEAF_BLOCK, Plan},
};

/// Load every library of [`crate::libs::NEEDED`] once (cached, and kept loaded: cudarc opens the same
/// ones): `Ok` means cudarc will not panic for want of one. [`crate::libs::loaded`] then says
/// which files they are.
pub fn check_libraries() -> Result<(), &'static GpuError> {
    static CHECK: OnceLock<Result<Vec<libloading::Library>, GpuError>> = OnceLock::new();
    CHECK
        .get_or_init(|| {
            let mut held = Vec::new();
            for (lib, _) in crate::libs::NEEDED {
                match crate::libs::open_as_cudarc(lib) {
                    Ok(h) => held.push(h),
                    Err(names) => return Err(missing_library(lib, &names)),
                }
            }
            Ok(held)
        })
        .as_ref()
        .map(|_| ())
}

/// Visible CUDA devices (after the library check).
pub fn device_count() -> Result<usize, GpuError> {
    check_libraries().map_err(clone_err)?;
    cudarc::driver::result::init()?;
    let n = cudarc::driver::result::device::get_count()?;
    Ok(usize::try_from(n).unwrap_or(0))
}

fn clone_err(e: &GpuError) -> GpuError {
    match e {
        GpuError::MissingLibrary { lib, why } => GpuError::MissingLibrary {
            lib,
            why: why.clone(),
        },
        other => GpuError::Compile(other.to_string()),
    }
}

/// `GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, as NVML and `nvidia-smi` print a UUID.
pub fn format_uuid(bytes: &[u8; 16]) -> String {
    let h: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "GPU-{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// (ordinal, UUID, SM count) of each visible CUDA device, asked of the driver without creating a
/// context (no GPU memory is taken, busy GPUs are not disturbed).
pub fn devices() -> Result<Vec<(usize, String, u32)>, GpuError> {
    use cudarc::driver::{result::device, sys::CUdevice_attribute};
    let n = device_count()?;
    (0..n)
        .map(|i| {
            let dev = device::get(i as std::ffi::c_int)?;
            let bytes: [u8; 16] = device::get_uuid(dev)?.bytes.map(|b| b as u8);
            // SAFETY: `dev` is a valid device handle from cuDeviceGet.
            let sms = unsafe {
                device::get_attribute(
                    dev,
                    CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
                )
            }?;
            Ok((i, format_uuid(&bytes), u32::try_from(sms).unwrap_or(0)))
        })
        .collect()
}

struct Kernels {
    generate: CudaFunction,
    leaves: CudaFunction,
    level: CudaFunction,
    fv_vector: CudaFunction,
    fv_bt: CudaFunction,
    fv_sum: CudaFunction,
    fv_rows_i8: CudaFunction,
    fv_rows_i32: CudaFunction,
    fv_compare: CudaFunction,
}

impl Kernels {
    fn load(m: &Arc<CudaModule>) -> Result<Self, GpuError> {
        Ok(Self {
            generate: m.load_function("gl_generate")?,
            leaves: m.load_function("gl_leaves")?,
            level: m.load_function("gl_level")?,
            fv_vector: m.load_function("gl_fv_vector")?,
            fv_bt: m.load_function("gl_fv_bt")?,
            fv_sum: m.load_function("gl_fv_sum")?,
            fv_rows_i8: m.load_function("gl_fv_rows_i8")?,
            fv_rows_i32: m.load_function("gl_fv_rows_i32")?,
            fv_compare: m.load_function("gl_fv_compare")?,
        })
    }
}

/// Threads per block of every kernel but `gl_leaves` ([`LEAF_BLOCK`]).
const BLOCK: u64 = 256;

fn cfg(threads: u64) -> Result<LaunchConfig, GpuError> {
    cfg_block(threads, BLOCK)
}

/// `threads` threads (at least one block) in blocks of `block` (at most 1,024).
fn cfg_block(threads: u64, block: u64) -> Result<LaunchConfig, GpuError> {
    // CUDA's grid is at most 2^31 - 1 blocks wide.
    let blocks = u32::try_from(threads.div_ceil(block).max(1))
        .ok()
        .filter(|&b| b <= i32::MAX as u32)
        .ok_or_else(|| GpuError::TooLarge(format!("{threads} threads in one launch")))?;
    Ok(LaunchConfig {
        grid_dim: (blocks, 1, 1),
        // invariant: `block` is BLOCK or LEAF_BLOCK, both <= 1,024.
        block_dim: (block as u32, 1, 1),
        shared_mem_bytes: 0,
    })
}

/// A and B^T of a job on the device, padded per [`Plan`].
pub struct DeviceOperands {
    /// A, mp x kp, row-major.
    pub a: CudaSlice<i8>,
    /// B^T, np x kp, row-major.
    pub bt: CudaSlice<i8>,
}

/// One GPU, opened: context, stream, cuBLAS handle and the compiled kernels.
pub struct CudaMatmul {
    /// CUDA ordinal among the visible devices.
    pub ordinal: usize,
    /// The device's name.
    pub name: String,
    /// Its UUID (`GPU-...`).
    pub uuid: String,
    /// How the kernels were built for it, in words: its own machine code, or PTX the driver
    /// compiled, and why ([`crate::nvrtc::load`]).
    pub kernels: String,
    stream: Arc<CudaStream>,
    blas: CudaBlas,
    k: Kernels,
    /// Freivalds' buffers, kept for the next check of the same shape.
    fv_scratch: std::sync::Mutex<Option<FvScratch>>,
    /// Page-locked host memory C's bytes are copied into (the DMA engine writes it directly; a
    /// pageable `Vec` is staged through a driver buffer), kept and grown across jobs.
    pinned: std::sync::Mutex<Option<PinnedHostSlice<u8>>>,
}

/// The buffers of one Freivalds check (every element is written before it is read).
struct FvScratch {
    /// (m, n, k) they are sized for.
    shape: (u64, u64, u64),
    seed: CudaSlice<u8>,
    r: CudaSlice<u64>,
    part: CudaSlice<u64>,
    sv: CudaSlice<u64>,
    pa: CudaSlice<u64>,
    pc: CudaSlice<u64>,
    bad: CudaSlice<u32>,
}

impl std::fmt::Debug for CudaMatmul {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaMatmul")
            .field("ordinal", &self.ordinal)
            .field("name", &self.name)
            .field("uuid", &self.uuid)
            .finish_non_exhaustive()
    }
}

impl CudaMatmul {
    /// Open visible device `ordinal` (checks the libraries first, compiles the kernels once per
    /// process).
    pub fn open(ordinal: usize) -> Result<Self, GpuError> {
        if device_count()? <= ordinal {
            return Err(GpuError::NoDevice);
        }
        let ctx = CudaContext::new(ordinal)?;
        let name = ctx.name()?;
        let uuid = format_uuid(&ctx.uuid()?.bytes.map(|b| b as u8));
        let (module, kernels) = crate::nvrtc::load(&ctx)?;
        let k = Kernels::load(&module)?;
        let stream = ctx.default_stream();
        let blas = CudaBlas::new(stream.clone())?;
        Ok(Self {
            ordinal,
            name,
            uuid,
            kernels,
            stream,
            blas,
            k,
            fv_scratch: std::sync::Mutex::new(None),
            pinned: std::sync::Mutex::new(None),
        })
    }

    /// Open the visible device with this UUID.
    pub fn open_uuid(uuid: &str) -> Result<Self, GpuError> {
        let ordinal = devices()?
            .into_iter()
            .find(|(_, u, _)| u.eq_ignore_ascii_case(uuid))
            .map(|(i, _, _)| i)
            .ok_or_else(|| GpuError::UnknownUuid(uuid.to_owned()))?;
        Self::open(ordinal)
    }

    /// Wait for everything queued.
    pub fn synchronize(&self) -> Result<(), GpuError> {
        Ok(self.stream.synchronize()?)
    }

    /// Generate A and B^T from `seed` on the device.
    pub fn generate(&self, p: &Plan, seed: B256) -> Result<DeviceOperands, GpuError> {
        let s = &self.stream;
        let seed_d = s.clone_htod(seed.as_slice())?;
        let mut a = s.alloc_zeros::<i8>(p.a_len() as usize)?;
        let mut bt = s.alloc_zeros::<i8>(p.bt_len() as usize)?;
        for (tag, rows, out) in [
            (u32::from(b'A'), p.m, &mut a),
            (u32::from(b'B'), p.n, &mut bt),
        ] {
            let threads = p.gen_threads(rows);
            let count = rows * p.k;
            // SAFETY: gl_generate(const u8*, u32, u64, u64, u64, i8*) writes only below
            // rows * kp bytes of `out`, which holds mp|np * kp.
            unsafe {
                s.launch_builder(&self.k.generate)
                    .arg(&seed_d)
                    .arg(&tag)
                    .arg(&count)
                    .arg(&p.k)
                    .arg(&p.kp)
                    .arg(out)
                    .launch(cfg(threads)?)?;
            }
        }
        Ok(DeviceOperands { a, bt })
    }

    /// Upload operands given as data: A row-major (m x k) and B^T row-major (n x k), padded here.
    pub fn upload(&self, p: &Plan, a: &[i8], bt: &[i8]) -> Result<DeviceOperands, GpuError> {
        let pad = |src: &[i8], rows: u64, padded_rows: u64| {
            let mut out = vec![0i8; (padded_rows * p.kp) as usize];
            for (r, row) in src.chunks(p.k as usize).take(rows as usize).enumerate() {
                out[r * p.kp as usize..r * p.kp as usize + row.len()].copy_from_slice(row);
            }
            out
        };
        Ok(DeviceOperands {
            a: self.stream.clone_htod(&pad(a, p.m, p.mp))?,
            bt: self.stream.clone_htod(&pad(bt, p.n, p.np))?,
        })
    }

    /// C = A x B (mp x np, row-major, INT32) into a new buffer; see [`Self::multiply_into`].
    pub fn multiply(&self, p: &Plan, ops: &DeviceOperands) -> Result<CudaSlice<i32>, GpuError> {
        let mut c = self.stream.alloc_zeros::<i32>(p.c_len() as usize)?;
        self.multiply_into(p, ops, &mut c)?;
        Ok(c)
    }

    /// C = A x B (mp x np, row-major, INT32) through cuBLAS into `c` (at least mp x np):
    /// `C^T = B^T A^T` ("TN", see [`crate::plan`]), INT8 inputs, 32-bit integer compute, exact.
    pub fn multiply_into(
        &self,
        p: &Plan,
        ops: &DeviceOperands,
        c: &mut CudaSlice<i32>,
    ) -> Result<(), GpuError> {
        let g = p.gemm();
        let dim = |v: u64| {
            i32::try_from(v).map_err(|_| GpuError::TooLarge(format!("dimension {v} > i32")))
        };
        let op = |t: bool| {
            if t {
                cublasOperation_t::CUBLAS_OP_T
            } else {
                cublasOperation_t::CUBLAS_OP_N
            }
        };
        if (c.len() as u64) < p.c_len() {
            return Err(GpuError::TooLarge(format!(
                "C buffer of {} elements for {}",
                c.len(),
                p.c_len()
            )));
        }
        let (alpha, beta) = (1i32, 0i32);
        // The raw cuBLAS call binds no context itself (cudarc's calls do), and a provider's job
        // may run on a thread that has not used this GPU yet.
        self.stream.context().bind_to_thread()?;
        {
            let (bt_ptr, _g1) = ops.bt.device_ptr(&self.stream);
            let (a_ptr, _g2) = ops.a.device_ptr(&self.stream);
            let (c_ptr, _g3) = c.device_ptr_mut(&self.stream);
            // SAFETY: the buffers hold np x kp, mp x kp and mp x np elements of the types named,
            // the leading dimensions are kp, kp and np, alpha/beta are i32 as COMPUTE_32I needs.
            unsafe {
                cudarc::cublas::result::gemm_ex(
                    *self.blas.handle(),
                    op(g.transa),
                    op(g.transb),
                    dim(g.m)?,
                    dim(g.n)?,
                    dim(g.k)?,
                    (&raw const alpha).cast::<c_void>(),
                    bt_ptr as *const c_void,
                    cudaDataType::CUDA_R_8I,
                    dim(g.lda)?,
                    a_ptr as *const c_void,
                    cudaDataType::CUDA_R_8I,
                    dim(g.ldb)?,
                    (&raw const beta).cast::<c_void>(),
                    c_ptr as *mut c_void,
                    cudaDataType::CUDA_R_32I,
                    dim(g.ldc)?,
                    cublasComputeType_t::CUBLAS_COMPUTE_32I,
                    cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
                )?;
            }
        }
        Ok(())
    }

    /// The result root of C: 1 KiB leaves over C's bytes, as gridlease-workload's
    /// `MerkleTree::result` (and, with `bytes`, those bytes: C as committed, big-endian int32s).
    /// One `gl_leaves` thread per leaf ([`LEAF_BLOCK`] per block), then one `gl_level` launch per
    /// level.
    pub fn commit(
        &self,
        p: &Plan,
        c: &CudaSlice<i32>,
        bytes: bool,
    ) -> Result<(B256, Option<Vec<u8>>), GpuError> {
        self.commit_marked(p, c, bytes, None)
    }

    /// A timing event recorded on the stream now: the time between two is the GPU's, not the
    /// host's ([`CudaEvent::elapsed_ms`]).
    pub fn mark(&self) -> Result<CudaEvent, GpuError> {
        Ok(self
            .stream
            .record_event(Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT))?)
    }

    /// [`Self::commit`], with a [`Self::mark`] recorded into `leaves_done` between the leaf
    /// kernel and the level kernels (the bench times the two apart).
    pub fn commit_marked(
        &self,
        p: &Plan,
        c: &CudaSlice<i32>,
        bytes: bool,
        leaves_done: Option<&mut Option<CudaEvent>>,
    ) -> Result<(B256, Option<Vec<u8>>), GpuError> {
        let s = &self.stream;
        let leaves = p.leaves();
        // SAFETY: every byte is written before it is read: the leaves by gl_leaves, the padding
        // up to the width zeroed here, each level by gl_level, the first c_bytes of `enc` (the
        // only ones read) by gl_leaves.
        let mut tree = unsafe { s.alloc::<u8>((p.tree_nodes() * 32) as usize) }?;
        if p.width() > leaves {
            s.memset_zeros(&mut tree.slice_mut((leaves * 32) as usize..(p.width() * 32) as usize))?;
        }
        // At least 4 bytes: an empty C (or no `bytes`) still passes a valid buffer.
        let enc_len = if bytes { p.c_bytes().max(4) } else { 4 };
        // SAFETY: as above.
        let mut enc = unsafe { s.alloc::<u8>(enc_len as usize) }?;
        {
            let mut level0 = tree.slice_mut(0..(p.width() * 32) as usize);
            let null = 0u64;
            let mut b = s.launch_builder(&self.k.leaves);
            b.arg(c).arg(&p.m).arg(&p.n).arg(&p.np).arg(&leaves);
            if bytes {
                b.arg(&mut enc);
            } else {
                // A null `enc`: the kernel writes no bytes.
                b.arg(&null);
            }
            b.arg(&mut level0);
            // SAFETY: gl_leaves(const i32*, u64, u64, u64, u64, u32*, u8*): C holds mp x np
            // (read below row m only), enc m*n*4 bytes from cudaMalloc (4-byte aligned for the
            // kernel's u32 stores) or null, level0 width * 32 bytes; threads past `leaves` return.
            unsafe { b.launch(cfg_block(leaves, LEAF_BLOCK)?)? };
        }
        if let Some(slot) = leaves_done {
            *slot = Some(self.mark()?);
        }
        for (below, above, count) in p.levels() {
            let (lo, mut hi) = tree.split_at_mut((above * 32) as usize);
            let below_v = lo.slice((below * 32) as usize..);
            let mut above_v = hi.slice_mut(0..(count * 32) as usize);
            // SAFETY: gl_level(const u8*, u64, u8*) reads 2 * count nodes below and writes count
            // nodes above; both ranges are inside `tree` and do not overlap.
            unsafe {
                s.launch_builder(&self.k.level)
                    .arg(&below_v)
                    .arg(&count)
                    .arg(&mut above_v)
                    .launch(cfg(count)?)?;
            }
        }
        let root_at = ((p.tree_nodes() - 1) * 32) as usize;
        let root = s.clone_dtoh(&tree.slice(root_at..root_at + 32))?;
        let out = match (bytes, p.c_bytes() as usize) {
            (false, _) => None,
            (true, 0) => Some(Vec::new()),
            (true, len) => Some(self.bytes_to_host(&enc.slice(0..len))?),
        };
        Ok((B256::from_slice(&root), out))
    }

    /// `src` copied to the host through the pinned staging buffer (grown to fit, kept for the
    /// next job), or, when page-locked memory cannot be had, straight into pageable memory.
    fn bytes_to_host(&self, src: &CudaView<'_, u8>) -> Result<Vec<u8>, GpuError> {
        let s = &self.stream;
        let len = src.len();
        let mut guard = self.pinned.lock().unwrap_or_else(|e| e.into_inner());
        if guard.as_ref().is_none_or(|p| p.len() < len) {
            // The old buffer first: its memory is free for the new one.
            *guard = None;
            // Flags 0: cached, not write-combined (the host reads these bytes; write-combined
            // memory, cudarc's default for `alloc_pinned`, is slow to read).
            // SAFETY: the buffer is written by the copy below before any byte is read.
            match unsafe { s.context().alloc_pinned_with_flags::<u8>(len.max(1), 0) } {
                Ok(p) => *guard = Some(p),
                Err(e) => {
                    tracing::debug!(error = %e, bytes = len, "no page-locked memory: copying C to pageable memory");
                    return Ok(s.clone_dtoh(src)?);
                }
            }
        }
        let pinned = guard.as_mut().ok_or(GpuError::NoDevice)?;
        // Exactly `len` bytes: cudarc copies as many bytes as the host slice holds, and the
        // buffer may be longer (kept from a larger job), which would read past `src`.
        let host = &mut pinned.as_mut_slice()?[..len];
        s.memcpy_dtoh(src, host)?;
        // A copy into page-locked memory returns before it is done, and on this one stream
        // cudarc records no event for it to wait on (it does only once a context has several
        // streams): wait for the stream before reading a byte.
        s.synchronize()?;
        Ok(host.to_vec())
    }

    /// Freivalds' check of C against A x B with the vector drawn from `r_seed`, exactly as
    /// `gridlease_workload::matmul::freivalds`: the rows where `A (B r) != C r` (empty: accept).
    pub fn freivalds(
        &self,
        p: &Plan,
        ops: &DeviceOperands,
        c: &CudaSlice<i32>,
        r_seed: B256,
    ) -> Result<Vec<usize>, GpuError> {
        self.freivalds_marked(p, ops, c, r_seed, None)
    }

    /// [`Self::freivalds`], with a [`Self::mark`] recorded into `kernels` just before its first
    /// kernel and just after its last (the bench times the kernels apart from the copies of the
    /// vector's seed up and the flags down, which wait for the host).
    pub fn freivalds_marked(
        &self,
        p: &Plan,
        ops: &DeviceOperands,
        c: &CudaSlice<i32>,
        r_seed: B256,
        kernels: Option<&mut Option<(CudaEvent, CudaEvent)>>,
    ) -> Result<Vec<usize>, GpuError> {
        let s = &self.stream;
        let chunks = p.fv_chunks();
        let mut guard = self
            .fv_scratch
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let shape = (p.m, p.n, p.k);
        if guard.as_ref().is_none_or(|b| b.shape != shape) {
            // Dropped first: the old buffers' memory is free for the new ones.
            *guard = None;
            *guard = Some(FvScratch {
                shape,
                seed: s.alloc_zeros::<u8>(32)?,
                r: s.alloc_zeros::<u64>(p.n as usize)?,
                part: s.alloc_zeros::<u64>((chunks * p.k) as usize)?,
                sv: s.alloc_zeros::<u64>(p.k as usize)?,
                pa: s.alloc_zeros::<u64>((p.m * FV_LANES) as usize)?,
                pc: s.alloc_zeros::<u64>((p.m * FV_LANES) as usize)?,
                bad: s.alloc_zeros::<u32>(p.m as usize)?,
            });
        }
        let FvScratch {
            seed: seed_d,
            r,
            part,
            sv,
            pa,
            pc,
            bad,
            ..
        } = guard.as_mut().ok_or(GpuError::NoDevice)?;
        s.memcpy_htod(r_seed.as_slice(), seed_d)?;
        let first = match kernels {
            Some(_) => Some(self.mark()?),
            None => None,
        };
        let (jchunk, lanes) = (FV_JCHUNK, FV_LANES);
        // SAFETY (all launches): signatures as in kernels.cu, buffers sized above.
        unsafe {
            s.launch_builder(&self.k.fv_vector)
                .arg(&*seed_d)
                .arg(&p.n)
                .arg(&mut *r)
                .launch(cfg(p.n)?)?;
            s.launch_builder(&self.k.fv_bt)
                .arg(&ops.bt)
                .arg(&p.n)
                .arg(&p.k)
                .arg(&p.kp)
                .arg(&*r)
                .arg(&jchunk)
                .arg(&chunks)
                .arg(&mut *part)
                .launch(cfg(chunks * p.k)?)?;
            s.launch_builder(&self.k.fv_sum)
                .arg(&*part)
                .arg(&chunks)
                .arg(&p.k)
                .arg(&mut *sv)
                .launch(cfg(p.k)?)?;
            s.launch_builder(&self.k.fv_rows_i8)
                .arg(&ops.a)
                .arg(&p.m)
                .arg(&p.k)
                .arg(&p.kp)
                .arg(&*sv)
                .arg(&lanes)
                .arg(&mut *pa)
                .launch(cfg(p.m * lanes)?)?;
            s.launch_builder(&self.k.fv_rows_i32)
                .arg(c)
                .arg(&p.m)
                .arg(&p.n)
                .arg(&p.np)
                .arg(&*r)
                .arg(&lanes)
                .arg(&mut *pc)
                .launch(cfg(p.m * lanes)?)?;
            s.launch_builder(&self.k.fv_compare)
                .arg(&*pa)
                .arg(&*pc)
                .arg(&p.m)
                .arg(&lanes)
                .arg(&mut *bad)
                .launch(cfg(p.m)?)?;
        }
        if let (Some(slot), Some(first)) = (kernels, first) {
            *slot = Some((first, self.mark()?));
        }
        let flags = s.clone_dtoh(&*bad)?;
        Ok(flags
            .iter()
            .enumerate()
            .filter(|&(_, &f)| f != 0)
            .map(|(i, _)| i)
            .collect())
    }

    /// Upload a claimed C (m x n, row-major) into the padded layout, to check it with
    /// [`Self::freivalds`] or commit it.
    pub fn upload_c(&self, p: &Plan, c: &[i32]) -> Result<CudaSlice<i32>, GpuError> {
        let mut out = vec![0i32; p.c_len() as usize];
        for (i, row) in c.chunks(p.n as usize).take(p.m as usize).enumerate() {
            let at = i * p.np as usize;
            out[at..at + row.len()].copy_from_slice(row);
        }
        Ok(self.stream.clone_htod(&out)?)
    }

    /// Copy C (the m x n corner) to the host, row-major.
    pub fn download(&self, p: &Plan, c: &CudaSlice<i32>) -> Result<Vec<i32>, GpuError> {
        let all = self.stream.clone_dtoh(c)?;
        Ok(all
            .chunks(p.np as usize)
            .take(p.m as usize)
            .flat_map(|row| row[..p.n as usize].iter().copied())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_is_formatted_as_nvml_prints_it() {
        let b: [u8; 16] = [
            0x5f, 0x1c, 0x2b, 0x7e, 0x00, 0x00, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x44, 0x44,
            0x55, 0x55,
        ];
        assert_eq!(format_uuid(&b), "GPU-5f1c2b7e-0000-1111-2222-333344445555");
    }

    #[test]
    fn without_the_libraries_every_entry_is_an_error_not_a_panic() {
        if check_libraries().is_ok() {
            eprintln!("CUDA libraries present: nothing to check here");
            return;
        }
        assert!(device_count().is_err());
        assert!(devices().is_err());
        assert!(CudaMatmul::open(0).is_err());
        assert!(CudaMatmul::open_uuid("GPU-0").is_err());
    }
}
