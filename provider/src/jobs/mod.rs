//! The node's leases, once won: each gets one driver task that walks the job's
//! [`crate::state::JobState`] machine (acknowledge, run, commit, post). Every step is a
//! compare-and-set in SQLite and every transaction is journaled before broadcast, so after
//! `kill -9` a restart resumes each job where it was, never running a finished job again nor
//! posting twice (OFF-14, PD-04, PD-07).
//!
//! - [`lease`]: lease events (won, closed, faulted), which start and stop drivers.
//! - [`driver`]: the driver: acknowledging, running the job, committing its result.
//! - [`post`]: posting the result, and reconciling a post after a restart or a reorg.
//! - [`service`]: service leases (run until their end, restarted when they exit) and heartbeats.
//! - [`step`]: how a driver's step ends when it does not advance.

pub mod driver;
pub mod lease;
pub mod post;
pub mod service;
pub mod step;
