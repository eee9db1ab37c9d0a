//! The GPU workload: device tests and the kernels compiled as C.
//! One test binary for the crate (one link, one process that runs the tests side by side).

mod device;
mod kernels_c;
