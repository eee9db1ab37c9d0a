//! The `gridlease` CLI against a real market.
//! One test binary for the crate (one link, one process that runs the tests side by side).

mod e2e;
