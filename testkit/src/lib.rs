//! gridlease-testkit: what the tests of the provider node, the keeper, the CLI and the whole market
//! share, so no harness is written twice. Not published; a dev-dependency (and the demo's).
//!
//! - [`market`]: a market on a fresh anvil with one registered, staked provider and a funded
//!   tenant that approved the market.
//! - [`proxy`]: a fault-injecting JSON-RPC proxy (429, 5xx, hangs, dropped connections, lost
//!   answers, refused log ranges, stale heads, geth's replacement rule).
//! - [`files`]: a static file server on loopback, for job inputs and results named by URL.
//! - [`echo`]: a TCP echo service on loopback, to put behind a service lease's TLS front.
//! - [`governance`]: a call made through the Timelock, its delay warped past.
//! - [`engine`]: the container engine the test command starts (`scripts/podman.sh`).
//! - [`metrics`]: reading one value off a daemon's Prometheus `/metrics`.
//! - [`process`]: a daemon process that is killed when the test ends, pass or fail.
//!
//! The anvil wrapper itself stays in `gridlease-deploy` (its `devnet` command runs one).

pub mod echo;
pub mod engine;
pub mod files;
pub mod governance;
pub mod market;
pub mod metrics;
pub mod process;
pub mod proxy;

pub use gridlease_deploy::anvil::{ANVIL_KEYS, Anvil, free_port};
