//! gridlease-tests: the contract test suite.
//!
//! - [`evm`]: the in-process chain (revm), the only module that names revm types.
//! - [`fixture`]: a deployed suite with funded accounts and helpers for every protocol step.
//! - [`model`]: a Rust model of the protocol used by the stateful property tests.

pub mod evm;
pub mod fixture;
