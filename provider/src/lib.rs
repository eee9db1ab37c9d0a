//! gridlease-provider: the node a GPU owner runs.
//!
//! - [`config`]: `provider.toml`, validated with the failing key's name.
//! - [`gpu`]: GPU discovery (NVML, `nvidia-smi`, else the declared capacity) and allocation.
//! - [`builtin`]: the built-in `matmul_i8` workload (GPU through gridlease-gpu, else CPU).
//! - [`state`]: the SQLite job state machine that makes restarts safe.
//! - [`pricing`]: which orders get a bid, at what price.
//! - [`executor`]: how jobs run (local process, built-in `matmul_i8`); [`docker`]: containers
//!   through the Docker/Podman engine API.
//! - [`engine`]: the running node (collect logs -> decide -> act), [`http`] its API, [`guard`]
//!   the API's rate limit and in-flight bound.
//! - [`results`]: the results modules' windows, and answers to data-availability challenges.
//! - [`closes`]: closing completed leases, releasing held collateral after the fault horizon.
//! - [`onchain`]: the provider's registration, and what the owner must do.
//! - [`owner`]: the owner's commands (`consent`, `register`, `stake`, `unbond`, `withdraw-stake`).
//! - [`signed`]: signed (EIP-712) bids, kept for keepers to fetch.

pub mod builtin;
pub mod closes;
pub mod config;
pub mod docker;
pub mod engine;
pub mod executor;
pub mod gpu;
pub mod guard;
pub mod http;
pub mod onchain;
pub mod owner;
pub mod pricing;
pub mod results;
pub mod signed;
pub mod state;

pub use gridlease_core::daemon::unix_now;
