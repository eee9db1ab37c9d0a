//! gridlease-keeper: the market's paid upkeep.
//!
//! Collectors -> strategies -> executor, as in the provider node:
//! - [`view`]: the keeper's picture of open orders and running leases, rebuilt from chain logs
//!   (from the deploy block or a saved cursor) and kept in SQLite ([`store`]).
//! - [`strategy`]: pure functions from that view and the chain's clock to work (award, settle,
//!   close, prove no-show / missed deadline / stale heartbeat, check built-in results) and from a
//!   priced transaction to send-or-skip.
//! - [`engine`]: follows the chain, simulates every transaction, sends what pays through the
//!   shared [`gridlease_core::txm::TxManager`], and books what it earned.

pub mod config;
pub mod engine;
pub mod http;
pub mod store;
pub mod strategy;
pub mod view;

pub use gridlease_core::daemon::unix_now;
