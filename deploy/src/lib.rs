//! gridlease-deploy: deterministic deployment of the gridlease contracts to any JSON-RPC endpoint,
//! and a local devnet.
//!
//! - [`config`]: the deployment TOML (roles, parameters, tokens).
//! - [`deploy`]: CREATE2 through the standard proxy, then configuration, idempotently.
//! - [`anvil`]: a local anvil from `node_modules` on a free loopback port.
//! - [`devnet`]: anvil + deployment + funded demo accounts with keystores.
//!
//! What only tests use (the RPC fault proxy, the file server, the container engine, fixtures) is
//! in `gridlease-testkit`.

pub mod anvil;
pub mod config;
pub mod deploy;
pub mod devnet;
