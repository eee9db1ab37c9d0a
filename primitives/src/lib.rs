//! gridlease-primitives: the protocol's types, shared by the daemons, the CLI and the tests. No
//! I/O.
//!
//! - [`eip712`]: the typed data a provider signs for an off-chain bid and a tenant signs for an
//!   EIP-2612 permit, byte-for-byte what the contracts verify.
//! - [`units`]: price, amount and duration conversions (18-decimal per-second rates, decimals).
//! - [`gpu`]: GPU class names and their bit positions.
//! - [`protocol`]: the on-chain enums, typed (status, close reason, lease and job kinds).
//! - [`spec`]: job specs (TOML), validation with line/field errors, canonical hash.

pub mod eip712;
pub mod gpu;
pub mod protocol;
pub mod spec;
pub mod units;
