//! gridlease-e2e: the whole market as real processes on a local devnet.
//!
//! - [`market`]: anvil + the deployed suite + four provider nodes with different GPU classes and
//!   prices (one posts wrong products, one withholds its results) + one keeper, each a real
//!   `gridlease-provider` / `gridlease-keeper` process, and the tenant's `gridlease` CLI.
//! - [`scenario`]: the demo: a verifiable `matmul_i8` job (instant order) verified and accepted, a
//!   container job (auctioned) completed after its challenge window, a wrong product proven by the
//!   tenant, and a withheld result challenged and proven unavailable by the keeper.
//! - [`summary`]: what happened, read back from the chain: jobs, winning prices, order -> running
//!   -> result times, what each paid and refunded, which fault was proven by whom, gas per
//!   account, who was paid what, who was slashed.
//!
//! `gridlease-demo` (the README's first command runs it) and the end-to-end tests share all of it;
//! `gridlease-bench` measures the market on the same devnet.

pub mod market;
pub mod scenario;
pub mod summary;

/// Where the workspace's binaries are ([`gridlease_deploy::anvil::workspace_bin`]).
pub use gridlease_deploy::anvil::workspace_bin as bin;
