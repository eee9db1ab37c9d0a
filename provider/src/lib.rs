//! gridlease-provider: the node a GPU owner runs.
//!
//! - [`config`]: `provider.toml`, validated with the failing key's name.
//! - [`gpu`]: GPU discovery (`nvidia-smi`, else the declared capacity).
//! - [`state`]: the SQLite job state machine that makes restarts safe.
//!
//! The engine that bids, runs and posts (collectors -> strategies -> executors) builds on these.

pub mod config;
pub mod gpu;
pub mod state;
