//! gridlease-e2e: the whole market as real processes on a local devnet.
//!
//! - [`market`]: anvil + the deployed suite + three provider nodes with different GPU classes and
//!   prices + one keeper, each a real `gridlease-provider` / `gridlease-keeper` process, and the
//!   tenant's `gridlease` CLI.
//! - [`scenario`]: the demo: a verifiable `matmul_i8` job (instant order), a container job
//!   (auctioned), a provider that cheats on a `matmul_i8` job and gets slashed on the keeper's proof.
//! - [`summary`]: what happened, read back from the chain: jobs, winning prices, order -> running
//!   -> result times, gas per account, who was paid what, who was slashed.
//!
//! `gridlease-demo` (the README's first command runs it) and the end-to-end tests share all of it;
//! `gridlease-bench` measures the market on the same devnet.

pub mod market;
pub mod scenario;
pub mod summary;

/// Where the workspace's binaries are ([`gridlease_deploy::anvil::workspace_bin`]).
pub use gridlease_deploy::anvil::workspace_bin as bin;
