//! gridlease-chain: everything that talks to the chain, for the daemons, the CLI and the tests.
//!
//! - [`Client`]: connect to an RPC endpoint (HTTP with failover, or WebSocket) with an optional
//!   signer; [`send`] simulates, then sends and waits for the receipt.
//! - [`ChainError`]: every failure as a network problem, a decoded revert ([`ContractError`]: the
//!   protocol's errors, the token's, `require` messages, panics) or a user mistake.
//! - [`rpc`]: what the transports share (the per-call timeout, "not served now" codes);
//!   [`failover`]: one logical endpoint over several RPC URLs.
//! - [`logs`]: paged, reorg-aware log collection from a saved cursor.
//! - [`token`]: EIP-2612 permits against the token's real domain.
//! - [`deployments`]: the `deployments/<chainId>.json` file.
//! - [`wallet`]: signer loading (keystore + password source, or `env:VAR`).

mod client;
pub mod deployments;
mod error;
pub mod failover;
pub mod logs;
pub mod rpc;
pub mod token;
pub mod wallet;

pub use client::{Client, RECEIPT_PATIENCE, send, wait_receipt};
pub use error::{
    ChainError, ContractError, Revert, TokenErrors, classify, classify_rpc, decode_revert,
};
pub use rpc::{RPC_TIMEOUT, overloaded};
