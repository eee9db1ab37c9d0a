//! What the node must not forget, in SQLite (WAL, synchronous=FULL): its leases and where each
//! job is, the log cursors, and transactions it sent. Every step of a job is a compare-and-set
//! transition (`UPDATE .. WHERE state = from`) in one transaction, so after `kill -9` at any moment
//! a restart resumes each job from its last committed state and no step runs twice.

use std::path::Path;

use alloy::primitives::B256;
use rusqlite::{Connection, OptionalExtension, params};

/// Where a job is. Transitions are only those of [`JobState::can_become`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobState {
    /// A bid was sent on the order.
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
    /// The job itself failed (bad image, crash); the lease is closed by the provider.
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

    fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.name() == s)
    }

    /// Whether the job's work is over.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Closed | Self::Lost | Self::Failed | Self::Faulted
        )
    }

    /// The legal next states. A lease can close (its tenant accepts, it expires) or be faulted
    /// from any live state; a result transaction that was dropped goes back to `Computed`.
    pub fn can_become(self, to: Self) -> bool {
        use JobState::*;
        if self.is_terminal() {
            return false;
        }
        if matches!(to, Closed | Faulted) && self != Bid {
            return true;
        }
        matches!(
            (self, to),
            (Bid, Won | Lost)
                | (Won, Acknowledged)
                | (Acknowledged, Running)
                | (Running, Computed | Failed)
                | (Computed, Posting)
                | (Posting, Posted | Computed)
        )
    }
}

/// A job row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// Order / lease id.
    pub id: B256,
    /// Where it is.
    pub state: JobState,
    /// The run spec's canonical JSON, once known.
    pub spec: Option<String>,
    /// Result root, once computed.
    pub root: Option<B256>,
    /// The result transaction's hash, once sent.
    pub tx: Option<B256>,
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
}

/// The node's database.
pub struct Store {
    conn: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id BLOB PRIMARY KEY,
    state TEXT NOT NULL,
    spec TEXT,
    root BLOB,
    tx BLOB,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (
    name TEXT PRIMARY KEY,
    block INTEGER NOT NULL,
    hash BLOB NOT NULL
);
";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn b256(v: Option<Vec<u8>>) -> Option<B256> {
    v.filter(|b| b.len() == 32).map(|b| B256::from_slice(&b))
}

impl Store {
    /// Open (or create) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self { conn })
    }

    /// Record a new job in state `Bid` (or leave an existing one alone). Returns whether it was new.
    pub fn insert_bid(&self, id: B256) -> Result<bool, StateError> {
        let n = self.conn.execute(
            "INSERT OR IGNORE INTO jobs (id, state, updated_at) VALUES (?1, ?2, ?3)",
            params![id.as_slice(), JobState::Bid.name(), now()],
        )?;
        Ok(n == 1)
    }

    /// Move job `id` from `from` to `to` if it is still in `from`; returns false when it is not
    /// (another task or an earlier run moved it), so the caller does not repeat the step.
    pub fn transition(&self, id: B256, from: JobState, to: JobState) -> Result<bool, StateError> {
        self.advance(id, from, to, None)
    }

    /// Store the spec of job `id`.
    pub fn set_spec(&self, id: B256, spec: &str) -> Result<(), StateError> {
        self.conn.execute(
            "UPDATE jobs SET spec = ?1 WHERE id = ?2",
            params![spec, id.as_slice()],
        )?;
        Ok(())
    }

    /// `Running -> Computed` with the result root, atomically.
    pub fn computed(&self, id: B256, root: B256) -> Result<bool, StateError> {
        self.advance(
            id,
            JobState::Running,
            JobState::Computed,
            Some(("root", root)),
        )
    }

    /// `Computed -> Posting` with the hash of the signed result transaction, recorded before it is
    /// broadcast: after a crash the node looks that hash up instead of posting again.
    pub fn posting(&self, id: B256, tx: B256) -> Result<bool, StateError> {
        self.advance(id, JobState::Computed, JobState::Posting, Some(("tx", tx)))
    }

    /// The compare-and-set behind every step: `from -> to` (checked against the state machine),
    /// and in the same statement `column = value` when given.
    fn advance(
        &self,
        id: B256,
        from: JobState,
        to: JobState,
        set: Option<(&'static str, B256)>,
    ) -> Result<bool, StateError> {
        if !from.can_become(to) {
            return Err(StateError::Illegal {
                id,
                from: from.name(),
                to: to.name(),
            });
        }
        // `column` is one of this file's literals, never input.
        let (extra, value) = match set {
            Some((column, v)) => (format!(", {column} = ?5"), Some(v.to_vec())),
            None => (String::new(), None),
        };
        let sql = format!(
            "UPDATE jobs SET state = ?1, updated_at = ?2{extra} WHERE id = ?3 AND state = ?4"
        );
        let n = match value {
            Some(v) => self.conn.execute(
                &sql,
                params![to.name(), now(), id.as_slice(), from.name(), v],
            )?,
            None => self
                .conn
                .execute(&sql, params![to.name(), now(), id.as_slice(), from.name()])?,
        };
        Ok(n == 1)
    }

    /// Job `id`.
    pub fn job(&self, id: B256) -> Result<Option<Job>, StateError> {
        self.conn
            .query_row(
                &format!("{SELECT} WHERE id = ?1"),
                params![id.as_slice()],
                read,
            )
            .optional()?
            .map(row)
            .transpose()
    }

    /// Every job not in a terminal state: what a restart resumes.
    pub fn live(&self) -> Result<Vec<Job>, StateError> {
        let terminal: Vec<String> = (JobState::ALL.iter())
            .filter(|s| s.is_terminal())
            .map(|s| format!("'{}'", s.name()))
            .collect();
        let sql = format!(
            "{SELECT} WHERE state NOT IN ({}) ORDER BY updated_at",
            terminal.join(", ")
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([], read)?;
        rows.map(|r| row(r?)).collect()
    }

    /// How many jobs are in each state.
    pub fn counts(&self) -> Result<Vec<(JobState, u64)>, StateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT state, COUNT(*) FROM jobs GROUP BY state")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)))?;
        let mut out = Vec::new();
        for r in rows {
            let (name, n) = r?;
            let st = JobState::from_name(&name)
                .ok_or_else(|| StateError::UnknownState(B256::ZERO, name.clone()))?;
            out.push((st, n));
        }
        Ok(out)
    }

    /// The log cursor `name`: last processed block and its hash (to detect a reorg below it).
    pub fn cursor(&self, name: &str) -> Result<Option<(u64, B256)>, StateError> {
        let r = self
            .conn
            .query_row(
                "SELECT block, hash FROM cursors WHERE name = ?1",
                params![name],
                |r| Ok((r.get::<_, u64>(0)?, r.get::<_, Vec<u8>>(1)?)),
            )
            .optional()?;
        Ok(r.map(|(b, h)| (b, b256(Some(h)).unwrap_or_default())))
    }

    /// Move cursor `name` to `block` (with its hash).
    pub fn set_cursor(&self, name: &str, block: u64, hash: B256) -> Result<(), StateError> {
        self.conn.execute(
            "INSERT INTO cursors (name, block, hash) VALUES (?1, ?2, ?3) \
             ON CONFLICT(name) DO UPDATE SET block = excluded.block, hash = excluded.hash",
            params![name, block, hash.as_slice()],
        )?;
        Ok(())
    }
}

/// The columns of a job row, in [`RawRow`] order.
const SELECT: &str = "SELECT id, state, spec, root, tx, updated_at FROM jobs";

type RawRow = (
    Vec<u8>,
    String,
    Option<String>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    u64,
);

fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn row((id, state, spec, root, tx, updated_at): RawRow) -> Result<Job, StateError> {
    let id = b256(Some(id)).unwrap_or_default();
    let state = JobState::from_name(&state).ok_or(StateError::UnknownState(id, state))?;
    Ok(Job {
        id,
        state,
        spec,
        root: b256(root),
        tx: b256(tx),
        updated_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobState::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(&dir.path().join("state.db")).expect("open");
        (dir, s)
    }

    #[test]
    fn a_job_walks_the_happy_path_and_each_step_happens_once() {
        let (_dir, s) = store();
        let id = B256::repeat_byte(1);
        assert!(s.insert_bid(id).expect("insert"));
        assert!(
            !s.insert_bid(id).expect("again"),
            "a second bid row is not made"
        );
        for (from, to) in [(Bid, Won), (Won, Acknowledged), (Acknowledged, Running)] {
            assert!(s.transition(id, from, to).expect("legal"));
            assert!(!s.transition(id, from, to).expect("legal"), "not twice");
        }
        assert!(s.computed(id, B256::repeat_byte(2)).expect("computed"));
        assert!(!s.computed(id, B256::repeat_byte(3)).expect("once"));
        assert!(s.posting(id, B256::repeat_byte(4)).expect("posting"));
        assert!(
            !s.posting(id, B256::repeat_byte(5)).expect("once"),
            "never posted twice"
        );
        let j = s.job(id).expect("read").expect("exists");
        assert_eq!(
            (j.state, j.root, j.tx),
            (
                Posting,
                Some(B256::repeat_byte(2)),
                Some(B256::repeat_byte(4))
            )
        );
        assert!(s.transition(id, Posting, Posted).expect("posted"));
        assert!(s.transition(id, Posted, Closed).expect("closed"));
        assert!(s.live().expect("live").is_empty());
    }

    #[test]
    fn illegal_transitions_are_refused() {
        let (_dir, s) = store();
        let id = B256::repeat_byte(1);
        s.insert_bid(id).expect("insert");
        for (from, to) in [
            (Bid, Running),
            (Won, Posted),
            (Closed, Running),
            (Lost, Won),
            (Bid, Closed),
        ] {
            assert!(
                matches!(s.transition(id, from, to), Err(StateError::Illegal { .. })),
                "{from:?} -> {to:?}"
            );
        }
        // Every live state except a bare bid can close or be faulted.
        for st in JobState::ALL
            .into_iter()
            .filter(|s| !s.is_terminal() && *s != Bid)
        {
            assert!(st.can_become(Closed) && st.can_become(Faulted), "{st:?}");
        }
        // A dropped result transaction can be sent again.
        assert!(Posting.can_become(Computed));
    }

    #[test]
    fn state_and_cursors_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.db");
        let id = B256::repeat_byte(9);
        {
            let s = Store::open(&path).expect("open");
            s.insert_bid(id).expect("insert");
            s.transition(id, Bid, Won).expect("won");
            s.set_spec(id, "{\"version\":1}").expect("spec");
            s.set_cursor("orders", 42, B256::repeat_byte(7))
                .expect("cursor");
            s.set_cursor("orders", 43, B256::repeat_byte(8))
                .expect("cursor");
        }
        let s = Store::open(&path).expect("reopen");
        let live = s.live().expect("live");
        assert_eq!(live.len(), 1);
        assert_eq!(
            (live[0].state, live[0].spec.as_deref()),
            (Won, Some("{\"version\":1}"))
        );
        assert_eq!(
            s.cursor("orders").expect("cursor"),
            Some((43, B256::repeat_byte(8)))
        );
        assert_eq!(s.cursor("leases").expect("cursor"), None);
        assert_eq!(s.counts().expect("counts"), vec![(Won, 1)]);
    }
}
