//! gridlease-core: protocol types shared by the daemons, the CLI and the tests.
//!
//! - [`eip712`]: the typed data a provider signs for an off-chain bid and a tenant signs for an
//!   EIP-2612 permit, byte-for-byte what the contracts verify.
//! - [`units`]: price, amount and duration conversions (18-decimal per-second rates, decimals).
//! - [`gpu`]: GPU class names and their bit positions.
//! - [`matmul`]: the built-in verifiable workload (generator, reference, Freivalds, fraud proofs).
//! - [`merkle`]: positional keccak Merkle trees.
//! - [`protocol`]: the on-chain enums, typed (status, close reason, lease and job kinds).
//! - [`spec`]: job specs (TOML), validation with line/field errors, canonical hash.
//! - [`wallet`]: signer loading (keystore + password source, or `env:VAR`).
//! - [`chain`]: RPC client, simulate-then-send, decoded reverts.
//! - [`rpc`]: what the JSON-RPC transports share (the per-call timeout, "not served now" codes).
//! - [`fetch`]: downloads of inputs, specs and results (http(s) with an address guard; `data:`
//!   for specs; never `file:`).
//! - [`daemon`]: what the provider node and the keeper both need to start: logs, the checked
//!   deployment, the one-process-per-state-directory lock, the clock.
//! - [`logs`]: paged, reorg-aware log collection from a saved cursor.
//! - [`deployments`]: the `deployments/<chainId>.json` file.
//! - [`token`]: EIP-2612 permits against the token's real domain.
//! - [`verify`]: checking a built-in result and building its fraud proof.
//! - [`txm`]: the daemons' transaction manager (single writer, journal before broadcast, rebroadcast
//!   and fee bumping).

pub mod chain;
pub mod daemon;
pub mod deployments;
pub mod eip712;
pub mod failover;
pub mod fetch;
pub mod gpu;
#[cfg(test)]
mod hostile_input;
pub mod logs;
pub mod matmul;
pub mod merkle;
pub mod protocol;
pub mod rpc;
pub mod spec;
pub mod token;
pub mod txm;
pub mod units;
pub mod verify;
pub mod wallet;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Signing failed (the signer refused or the key is unusable).
    #[error("signing failed: {0}")]
    Signing(#[from] alloy::signers::Error),
    /// A value does not fit the on-chain field it is meant for.
    #[error("{field} = {value} does not fit in {bits} bits")]
    OutOfRange {
        /// The field's name.
        field: &'static str,
        /// The offending value, printed.
        value: String,
        /// Width of the on-chain field.
        bits: u32,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
