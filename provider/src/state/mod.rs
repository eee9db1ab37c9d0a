//! What the node must not forget, in SQLite (WAL, synchronous=FULL): its leases and where each
//! job is, the log cursors, and transactions it sent. Every step of a job is a compare-and-set
//! transition (`UPDATE .. WHERE state = from`) in one transaction, so after `kill -9` at any moment
//! a restart resumes each job from its last committed state and no step runs twice.

mod job;
mod store;

pub use job::{Challenge, ChallengeEnd, Job, JobState, SCHEMA_VERSION, StateError};
pub use store::{LogParts, NonceTake, Set, Store};
