//! gridlease-daemon: what both daemons (the provider node and the keeper) are built on.
//!
//! - [`config`]: the configuration file with errors that name the key ([`ConfigFile`]), and the
//!   deployment checked against the chain it claims to describe ([`deployment`]); the `[chain]`
//!   and `[wallet]` sections both daemons share ([`ChainSection`], [`WalletSection`]).
//! - [`process`]: structured logs, one process per state directory ([`exclusive`]), signals
//!   ([`on_signals`]), a quiet end on a closed stdout, the wall clock, a poison-tolerant lock.
//! - [`poll`]: the one run loop (tick until a signal, backing off while the chain fails) and
//!   [`drain`], the bounded wait for the work in flight at the end; [`Backoff`], the one retry
//!   delay.
//! - [`db`]: the state database, opened durable and brought to the daemon's schema version.
//! - [`metrics`]: each daemon's own Prometheus registry, through the `metrics` crate.
//! - [`txm`]: the transaction manager (single writer, journal before broadcast, rebroadcast and
//!   fee bumping).

mod backoff;
pub mod config;
pub mod db;
pub mod metrics;
pub mod process;
mod run;
mod sections;
pub mod txm;

pub use backoff::Backoff;
pub use config::{ConfigError, ConfigFile, deployment, parse_toml, read_config, rpc_url};
pub use process::{exclusive, lock, logging, on_signals, quiet_broken_pipe, unix_now};
pub use run::{drain, poll};
pub use sections::{Chain, ChainSection, DEFAULT_LOW_BALANCE, POLL_MS, WalletSection};
