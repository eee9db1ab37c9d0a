//! A job row and its state machine ([`JobState`]), the challenges of its result, and the store's
//! errors.

use alloy::primitives::{Address, B256};

/// Schema version (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 5;

/// Where a job is. Transitions are only those of [`JobState::can_become`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum JobState {
    /// A bid was sent on the order.
    #[default]
    Bid,
    /// The lease is ours.
    Won,
    /// The acknowledgement is on chain.
    Acknowledged,
    /// The job runs.
    Running,
    /// The result is computed and stored; its root is known.
    Computed,
    /// The result transaction is being sent (its hash recorded before it leaves).
    Posting,
    /// The result is on chain.
    Posted,
    /// The lease closed.
    Closed,
    /// Another provider won.
    Lost,
    /// Nothing more can be done for the lease (it ended before it started, or its result
    /// deadline passed without the result on chain). A job whose run fails is not `Failed`: its
    /// failure report is posted as its result.
    Failed,
    /// A fault was proven against this lease.
    Faulted,
}

impl JobState {
    /// Every state, for listings.
    pub const ALL: [Self; 11] = [
        Self::Bid,
        Self::Won,
        Self::Acknowledged,
        Self::Running,
        Self::Computed,
        Self::Posting,
        Self::Posted,
        Self::Closed,
        Self::Lost,
        Self::Failed,
        Self::Faulted,
    ];

    /// Its name in the database and the logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bid => "bid",
            Self::Won => "won",
            Self::Acknowledged => "acknowledged",
            Self::Running => "running",
            Self::Computed => "computed",
            Self::Posting => "posting",
            Self::Posted => "posted",
            Self::Closed => "closed",
            Self::Lost => "lost",
            Self::Failed => "failed",
            Self::Faulted => "faulted",
        }
    }

    pub(super) fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.name() == s)
    }

    /// Whether the job's work is over.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Closed | Self::Lost | Self::Failed | Self::Faulted
        )
    }

    /// Whether a job in this state takes one of the node's job slots (a bid reserves one, so the
    /// node never wins more than it can run: PD-01).
    pub fn occupies_slot(self) -> bool {
        use JobState::*;
        matches!(
            self,
            Bid | Won | Acknowledged | Running | Computed | Posting
        )
    }

    /// The legal next states. A lease can close (its tenant accepts, it expires) or be faulted
    /// from any live state; a result transaction that was dropped goes back to `Computed`.
    pub fn can_become(self, to: Self) -> bool {
        use JobState::*;
        if self.is_terminal() {
            // A bid believed lost (its receipt was reorged away, or its broadcast failed) that
            // won after all: the lease must still be served.
            return self == Lost && to == Won;
        }
        if matches!(to, Closed | Faulted) && self != Bid {
            return true;
        }
        matches!(
            (self, to),
            (Bid, Won | Lost)
                | (Won, Acknowledged)
                | (Acknowledged, Running)
                | (Running, Computed)
                | (Won | Acknowledged | Running | Computed | Posting, Failed)
                | (Computed, Posting)
                | (Posting, Posted | Computed)
                // A posted result a reorg removed: its transaction goes out again (PD-04).
                | (Posted, Posting)
        )
    }
}

/// A job row.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Job {
    /// Order / lease id.
    pub id: B256,
    /// Where it is.
    pub state: JobState,
    /// The order's tenant.
    pub tenant: Address,
    /// The order's terms, ABI-encoded `OrderParams` (what `Results` checks the id against).
    pub terms: Vec<u8>,
    /// The run spec's canonical JSON, once known.
    pub spec: Option<String>,
    /// Our price, 18-decimal units per second.
    pub price: u128,
    /// Lease start and end (chain time), once won.
    pub start: u64,
    /// Lease end: the result deadline of a batch job.
    pub end: u64,
    /// Result root, once computed.
    pub root: Option<B256>,
    /// Result size in bytes, once computed (with `root`, what `Results.postResult` takes).
    pub size: u64,
    /// The results module the lease is bound to (`LeaseStarted.module`, resolved), once won.
    pub module: Option<Address>,
    /// The last transaction sent for this job (bid, then result), by hash.
    pub tx: Option<B256>,
    /// Its raw signed bytes, rebroadcast as they are after a crash.
    pub raw: Option<Vec<u8>>,
    /// Process group of a running process job (killed on restart).
    pub pgid: i32,
    /// Why it failed or was lost.
    pub note: Option<String>,
    /// Last change, unix seconds.
    pub updated_at: u64,
}

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// SQLite failed (disk full, corrupt file, permissions).
    #[error("state database: {0}")]
    Db(#[from] rusqlite::Error),
    /// A transition the state machine does not have.
    #[error("job {id}: {from} -> {to} is not a legal transition")]
    Illegal {
        /// The job.
        id: B256,
        /// Its state.
        from: &'static str,
        /// The asked-for state.
        to: &'static str,
    },
    /// The row holds a state this build does not know (a newer node wrote it).
    #[error("job {0}: unknown state \"{1}\" in the database (written by a newer node?)")]
    UnknownState(B256, String),
    /// The file was written by another schema version.
    #[error(
        "state database schema {found}, this node uses {SCHEMA_VERSION}: move the file away (the node rebuilds from the chain) or run the matching node version"
    )]
    Version {
        /// What the file says.
        found: i64,
    },
}

/// A data-availability challenge of chunk `index` of the result of `lease`, to be answered
/// (revealed on chain) by `deadline` (chain time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Challenge {
    /// The lease whose result is challenged.
    pub lease: B256,
    /// The chunk (1 KiB leaf) asked for.
    pub index: u64,
    /// Last second an answer is accepted.
    pub deadline: u64,
}

/// How a challenge ended (its row keeps the name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChallengeEnd {
    /// The node revealed the chunk.
    Answered,
    /// Nothing to answer any more: someone else revealed it, or a reorg removed the challenge.
    Gone,
    /// The response window passed without the node's answer landing.
    Missed,
}

impl ChallengeEnd {
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Gone => "gone",
            Self::Missed => "missed",
        }
    }
}
