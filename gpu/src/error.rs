//! Why the GPU path cannot run, in words that say what to do.

/// Why the GPU path cannot run.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// A CUDA library is not loadable under the names cudarc opens: `why` says whether it is
    /// anywhere on the machine ([`crate::libs::locate`]) and what to do.
    #[error("lib{lib} not loadable: {why}")]
    MissingLibrary {
        /// cudarc's base name.
        lib: &'static str,
        /// Where it was looked for, or where it is and why that is not enough.
        why: String,
    },
    /// The driver works but sees no GPU (or `CUDA_VISIBLE_DEVICES` hides them all).
    #[error("the CUDA driver sees no GPU")]
    NoDevice,
    /// No visible GPU has this UUID.
    #[error("no visible GPU has UUID {0}")]
    UnknownUuid(String),
    /// A driver call failed.
    #[error("CUDA driver: {0}")]
    Driver(#[from] cudarc::driver::DriverError),
    /// NVRTC rejected the kernels (a bug) or is unusable.
    #[error("NVRTC: {0}")]
    Compile(String),
    /// cuBLAS failed.
    #[error("cuBLAS: {0}")]
    Blas(#[from] cudarc::cublas::result::CublasError),
    /// The shape does not fit the device's integer types.
    #[error("shape too large for the GPU path: {0}")]
    TooLarge(String),
}

/// `lib` did not load under `names`: [`GpuError::MissingLibrary`] saying why.
pub(crate) fn missing_library(lib: &'static str, names: &[String]) -> GpuError {
    GpuError::MissingLibrary {
        lib,
        why: missing_why(lib, names),
    }
}

/// Why `lib` did not load under `names`: not on the machine (where it was looked for), or on it
/// under another name or off the loader's path.
fn missing_why(lib: &str, names: &[String]) -> String {
    let tried = format!(
        "{} names tried, e.g. {}",
        names.len(),
        names.first().map_or("", |n| n)
    );
    match crate::libs::locate(&crate::libs::search_dirs(), &[lib]) {
        Ok(found) => match found.first() {
            Some(f) => format!(
                "it is at {} but not on the loader's path under a name cudarc opens ({tried}); the \
                 gridlease binaries link it at start (gridlease_gpu::libs::reexec_with_cuda), or \
                 put its directory on LD_LIBRARY_PATH with a lib{lib}.so link",
                f.path.display()
            ),
            None => format!("not found ({tried})"),
        },
        Err(missing) => missing
            .first()
            .map_or_else(|| format!("not found ({tried})"), ToString::to_string),
    }
}
