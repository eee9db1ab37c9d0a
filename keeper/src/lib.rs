//! gridlease-keeper: the market's paid upkeep, on protocol v2 (`docs/protocol.md`).
//!
//! Collectors -> strategies -> executor, as in the provider node:
//! - [`view`]: the keeper's picture of open orders, running leases and closed leases whose
//!   collateral is still held, rebuilt from chain logs (from the deploy block or a saved cursor)
//!   and kept in SQLite ([`store`]).
//! - [`strategy`]: pure functions from that view and the chain's clock to work (award; settle
//!   service leases up to their provider's liveness; close completed results and expired,
//!   exhausted or lapsed service leases; prove no-shows, missed deadlines, stale heartbeats,
//!   wrong and unavailable results; challenge results that cannot be had) and from a priced
//!   transaction to send-or-skip.
//! - [`check`]: downloading a posted result against its commitment, Freivalds for built-in jobs.
//! - [`bids`]: the signed bids provider nodes serve for auctions.
//! - [`engine`] (start-up and the poll loop), [`collect`], [`execute`] and [`send`]: follow the
//!   chain, simulate every transaction, send what pays through the shared
//!   [`gridlease_daemon::txm::TxManager`], and book what it earned; [`shared`] is the state they
//!   all read, [`metrics`] its counters, [`http`] serves them.

pub mod bids;
pub mod check;
pub mod collect;
pub mod config;
pub mod engine;
pub mod execute;
pub mod http;
pub mod metrics;
pub mod send;
pub mod shared;
pub mod store;
pub mod strategy;
pub mod view;

pub use gridlease_daemon::unix_now;
