//! The provider node against a real anvil (and a real container engine when one is up).
//! One test binary for the crate (one link, one process that runs the tests side by side).

mod access;
mod anvil;
mod common;
mod faults;
mod gpu_libs;
mod heartbeat;
mod hostile;
mod node;
mod push;
mod signed;
mod tls;
mod txm;
