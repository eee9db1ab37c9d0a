//! Deployment and the devnet against a real anvil.
//! One test binary for the crate (one link, one process that runs the tests side by side).

mod anvil;
mod config;
