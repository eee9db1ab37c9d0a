//! The contracts in revm: every suite, the gas snapshot and the adversarial property runs.
//! One test binary for the crate (one link, one process that runs the tests side by side).

mod adversary;
mod auction;
mod escrow;
mod faults;
mod gas;
mod governance;
mod invariants;
mod matmul;
mod natspec;
mod results;
mod service;
mod staking;
mod tokens;
