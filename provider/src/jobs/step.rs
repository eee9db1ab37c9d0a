//! How a step of a job's driver ends when it does not advance ([`Step`]).

use gridlease_bindings::IMarket::OrderParams;
use gridlease_chain::ChainError;

use crate::{
    shared::terms,
    state::{Job, StateError},
};

/// How a step ended when it did not advance.
pub(crate) enum Step {
    /// Transient (RPC, the state database): try again.
    Retry(String),
    /// Nothing more can be done for this job.
    Fail(String),
    /// Shutting down.
    Stop,
}

impl From<StateError> for Step {
    fn from(e: StateError) -> Self {
        match e {
            // PD-07: the database failing (locked past its busy timeout, a full disk, I/O) is not the
            // job's fault, and the lease's time runs on: the step is tried again until it works.
            StateError::Db(_) => Self::Retry(e.to_string()),
            _ => Self::Fail(e.to_string()),
        }
    }
}

impl From<ChainError> for Step {
    fn from(e: ChainError) -> Self {
        Self::Retry(e.to_string())
    }
}

pub(crate) fn job_terms(job: &Job) -> Result<OrderParams, Step> {
    terms(job).ok_or_else(|| Step::Fail("the stored order terms do not decode".into()))
}
