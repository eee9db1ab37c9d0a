//! gridlease-provider: the node a GPU owner runs.
//!
//! - [`config`]: `provider.toml`, validated with the failing key's name.
//! - [`gpu`]: GPU discovery (NVML, `nvidia-smi`, else the declared capacity) and allocation.
//! - [`builtin`]: the built-in `matmul_i8` workload (GPU through gridlease-gpu, else CPU).
//! - [`state`]: the SQLite job state machine that makes restarts safe.
//! - [`pricing`]: which orders get a bid, at what price.
//! - [`executor`]: how jobs run (local process, built-in `matmul_i8`); [`docker`]: containers
//!   through the Docker/Podman engine API.
//! - [`node`]: the running node (collect logs -> decide -> act): its start, poll loop and
//!   shutdown; [`shared`] what its tasks share.
//! - [`collect`]: reading the chain's logs from saved cursors and handing each to its handler.
//! - [`bidding`]: the bid decision ([`bidding::decide`], pure) and sending or signing the bid.
//! - [`jobs`]: won leases: the job driver, result posts, service leases and heartbeats.
//! - [`finality`]: the hold after a reorg deeper than the confirmations.
//! - [`tx`]: sending, journaling and confirming the node's transactions.
//! - [`earnings`]: the owner's withdrawable earnings, shown and warned about.
//! - [`metrics`]: the node's counters; [`api`] its HTTP API, [`guard`] the API's rate limit and
//!   in-flight bound; [`specs`]: run specs, downloaded or pushed.
//! - [`modules`]: the results modules' windows; [`results`]: answers to data-availability
//!   challenges.
//! - [`closes`]: closing completed leases, releasing held collateral after the fault horizon.
//! - [`onchain`]: the provider's registration, and what the owner must do.
//! - [`owner`]: the owner's commands (`consent`, `register`, `stake`, `unbond`, `withdraw-stake`).
//! - [`signed`]: signed (EIP-712) bids, kept for keepers to fetch.

pub mod api;
pub mod bidding;
pub mod builtin;
pub mod closes;
pub mod collect;
pub mod config;
pub mod docker;
pub mod earnings;
pub mod executor;
pub mod finality;
pub mod front;
pub mod gpu;
pub mod guard;
pub mod jobs;
pub mod metrics;
pub mod modules;
pub mod node;
pub mod onchain;
pub mod owner;
pub mod pricing;
pub mod results;
pub mod shared;
pub mod signed;
pub mod specs;
pub mod state;
pub mod tx;

pub use gridlease_daemon::unix_now;

/// The lease or order id a file of the node's data directory is named by (`<0x id><ext>`: a
/// result, a pushed spec), if it is one of those.
pub(crate) fn id_named(path: &std::path::Path, ext: &str) -> Option<alloy::primitives::B256> {
    path.file_name()?.to_str()?.strip_suffix(ext)?.parse().ok()
}
