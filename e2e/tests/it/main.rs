//! The whole market as real processes.
//! One test binary for the crate (one link, one process that runs the tests side by side).

mod demo;
mod faults;
mod service;
mod signed_bids;
