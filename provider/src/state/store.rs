//! The SQLite store ([`Store`]): schema, migrations, and one compare-and-set per job step.

use std::path::Path;

use alloy::primitives::{Address, B256};
use gridlease_daemon::db;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter, types::Value};

use super::job::{Challenge, ChallengeEnd, Job, JobState, SCHEMA_VERSION, StateError};

/// The node's database.
pub struct Store {
    conn: Connection,
}

/// An event log as its topics and data.
pub type LogParts = (Vec<B256>, Vec<u8>);

/// What taking an access nonce did ([`Store::take_nonce`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonceTake {
    /// Taken: the request may go on.
    Taken,
    /// Taken before: a replay.
    Replayed,
    /// Over the signer's share, or everyone's.
    Full,
}

/// Added by schema 3 (a version-2 file gets it on open).
const DEFERRED_TABLE: &str = "
CREATE TABLE IF NOT EXISTS deferred (
    id BLOB PRIMARY KEY,
    bidding_end INTEGER NOT NULL,
    topics BLOB NOT NULL,
    data BLOB NOT NULL
);
";

/// Added by schema 4 (protocol v2): the result's size and the lease's results module, the
/// data-availability challenges of the node's results, and closed leases whose collateral the
/// market holds for its fault horizon.
const V4: &str = "
ALTER TABLE jobs ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN module BLOB;
CREATE TABLE IF NOT EXISTS challenges (
    lease BLOB NOT NULL,
    idx INTEGER NOT NULL,
    deadline INTEGER NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (lease, idx, deadline)
);
CREATE TABLE IF NOT EXISTS held (
    lease BLOB PRIMARY KEY,
    closed_at INTEGER NOT NULL
);
";

/// Added by schema 5: the nonces of tenants' access authorisations the node took, until they
/// expire (ACC-01: a replay is refused, after a restart too).
const V5: &str = "
CREATE TABLE IF NOT EXISTS access_nonces (
    signer BLOB NOT NULL,
    nonce BLOB NOT NULL,
    expiry INTEGER NOT NULL,
    PRIMARY KEY (signer, nonce)
);
";

const SCHEMA: &str = "
CREATE TABLE jobs (
    id BLOB PRIMARY KEY,
    state TEXT NOT NULL,
    tenant BLOB NOT NULL,
    terms BLOB NOT NULL,
    spec TEXT,
    price TEXT NOT NULL,
    start_at INTEGER NOT NULL DEFAULT 0,
    end_at INTEGER NOT NULL DEFAULT 0,
    root BLOB,
    tx BLOB,
    raw BLOB,
    pgid INTEGER NOT NULL DEFAULT 0,
    note TEXT,
    updated_at INTEGER NOT NULL
);
CREATE TABLE cursors (
    name TEXT PRIMARY KEY,
    block INTEGER NOT NULL,
    hash BLOB NOT NULL
);
";

/// The terminal states' names as an SQL list (`'closed', 'lost', ...`): the file's own literals,
/// never input.
fn terminal_states() -> String {
    let names: Vec<String> = (JobState::ALL.iter())
        .filter(|s| s.is_terminal())
        .map(|s| format!("'{}'", s.name()))
        .collect();
    names.join(", ")
}

fn b256(v: Option<Vec<u8>>) -> Option<B256> {
    v.filter(|b| b.len() == 32).map(|b| B256::from_slice(&b))
}

/// A column a step may set together with the state.
#[derive(Clone, Debug)]
pub enum Set {
    /// The result's root and size.
    Result(B256, u64),
    /// A transaction: hash and raw bytes.
    Tx(B256, Vec<u8>),
    /// Lease start and end, and its results module.
    Lease(u64, u64, Address),
    /// Why it failed.
    Note(String),
}

impl Set {
    fn sql(&self) -> (&'static str, Vec<Value>) {
        match self {
            Self::Result(r, size) => (
                "root = ?5, size = ?6",
                vec![Value::Blob(r.to_vec()), Value::Integer(*size as i64)],
            ),
            Self::Tx(h, raw) => (
                "tx = ?5, raw = ?6",
                vec![Value::Blob(h.to_vec()), Value::Blob(raw.clone())],
            ),
            Self::Lease(s, e, m) => (
                "start_at = ?5, end_at = ?6, module = ?7",
                vec![
                    Value::Integer(*s as i64),
                    Value::Integer(*e as i64),
                    Value::Blob(m.to_vec()),
                ],
            ),
            Self::Note(n) => ("note = ?5", vec![Value::Text(n.clone())]),
        }
    }
}

impl Store {
    /// Open (or create) the database at `path`; versions 2 to 4 are upgraded in place.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let schema = db::Schema {
            version: SCHEMA_VERSION,
            create: &[SCHEMA, DEFERRED_TABLE, V4, V5],
            upgrades: &[
                (2, &[DEFERRED_TABLE, V4, V5]),
                (3, &[DEFERRED_TABLE, V4, V5]),
                (4, &[V5]),
            ],
        };
        let conn = db::open(path, &schema).map_err(|e| match e {
            db::DbError::Sqlite(e) => StateError::Db(e),
            db::DbError::Version { found } => StateError::Version { found },
        })?;
        Ok(Self { conn })
    }

    /// Record a job we bid on (or leave an existing one alone). Returns whether it was new.
    pub fn insert(&self, job: &Job) -> Result<bool, StateError> {
        let n = self.conn.execute(
            "INSERT OR IGNORE INTO jobs (id, state, tenant, terms, spec, price, start_at, end_at, module, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                job.id.as_slice(),
                job.state.name(),
                job.tenant.as_slice(),
                job.terms,
                job.spec,
                job.price.to_string(),
                job.start as i64,
                job.end as i64,
                job.module.map(|m| m.to_vec()),
                crate::unix_now()
            ],
        )?;
        Ok(n == 1)
    }

    /// Move job `id` from `from` to `to` if it is still in `from`; returns false when it is not
    /// (another task or an earlier run moved it), so the caller does not repeat the step.
    pub fn transition(&self, id: B256, from: JobState, to: JobState) -> Result<bool, StateError> {
        self.advance(id, from, to, None)
    }

    /// `Running -> Computed` with the result's root and size, atomically.
    pub fn computed(&self, id: B256, root: B256, size: u64) -> Result<bool, StateError> {
        self.advance(
            id,
            JobState::Running,
            JobState::Computed,
            Some(Set::Result(root, size)),
        )
    }

    /// `Computed -> Posting` with the signed result transaction, recorded before it is broadcast:
    /// after a crash the node looks that hash up, or rebroadcasts the bytes, instead of posting
    /// again.
    pub fn posting(&self, id: B256, tx: B256, raw: Vec<u8>) -> Result<bool, StateError> {
        self.advance(
            id,
            JobState::Computed,
            JobState::Posting,
            Some(Set::Tx(tx, raw)),
        )
    }

    /// Record a transaction for job `id` without a state change (a bid, or a fee-bumped
    /// replacement of the result transaction).
    pub fn set_tx(&self, id: B256, tx: B256, raw: Vec<u8>) -> Result<(), StateError> {
        self.conn.execute(
            "UPDATE jobs SET tx = ?1, raw = ?2, updated_at = ?3 WHERE id = ?4",
            params![tx.as_slice(), raw, crate::unix_now(), id.as_slice()],
        )?;
        Ok(())
    }

    /// Job `id`'s on-chain bid was mined and did not revert: the market holds its collateral
    /// (until it is outbid or the order is cancelled), so the row no longer
    /// reserves stake of its own. The transaction hash stays; its bytes, never rebroadcast, go.
    pub fn bid_mined(&self, id: B256) -> Result<(), StateError> {
        self.conn.execute(
            "UPDATE jobs SET raw = NULL, updated_at = ?1 WHERE id = ?2",
            params![crate::unix_now(), id.as_slice()],
        )?;
        Ok(())
    }

    /// Record the process group of job `id`'s process (0: none).
    pub fn set_pgid(&self, id: B256, pgid: i32) -> Result<(), StateError> {
        self.conn.execute(
            "UPDATE jobs SET pgid = ?1 WHERE id = ?2",
            params![pgid, id.as_slice()],
        )?;
        Ok(())
    }

    /// The compare-and-set behind every step: `from -> to` (checked against the state machine),
    /// and in the same statement the columns of `set`.
    pub fn advance(
        &self,
        id: B256,
        from: JobState,
        to: JobState,
        set: Option<Set>,
    ) -> Result<bool, StateError> {
        if !from.can_become(to) {
            return Err(StateError::Illegal {
                id,
                from: from.name(),
                to: to.name(),
            });
        }
        // The column names are this file's literals, never input.
        let (extra, mut values) = match &set {
            Some(s) => {
                let (cols, vals) = s.sql();
                (format!(", {cols}"), vals)
            }
            None => (String::new(), Vec::new()),
        };
        let sql = format!(
            "UPDATE jobs SET state = ?1, updated_at = ?2{extra} WHERE id = ?3 AND state = ?4"
        );
        let mut args = vec![
            Value::Text(to.name().to_owned()),
            Value::Integer(crate::unix_now() as i64),
            Value::Blob(id.to_vec()),
            Value::Text(from.name().to_owned()),
        ];
        args.append(&mut values);
        let n = self.conn.execute(&sql, params_from_iter(args))?;
        Ok(n == 1)
    }

    /// Forget job `id` if it is still a bid: one that never left the node (the RPC failed before
    /// it reached a node), so the order can be looked at again. Returns whether it was one.
    pub fn unbid(&self, id: B256) -> Result<bool, StateError> {
        let n = self.conn.execute(
            "DELETE FROM jobs WHERE id = ?1 AND state = ?2",
            params![id.as_slice(), JobState::Bid.name()],
        )?;
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
        let sql = format!(
            "{SELECT} WHERE state NOT IN ({}) ORDER BY updated_at",
            terminal_states()
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([], read)?;
        rows.map(|r| row(r?)).collect()
    }

    /// How many jobs are in each state.
    pub fn counts(&self) -> Result<Vec<(JobState, u64)>, StateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state")?;
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

    /// Keep order `id` (its `OrderCreated` log as topics and data) for another look until its
    /// bid window ends at `bidding_end`, unless `max` are kept already. Returns whether it is kept.
    pub fn defer(
        &self,
        id: B256,
        bidding_end: u64,
        topics: &[B256],
        data: &[u8],
        max: usize,
    ) -> Result<bool, StateError> {
        let topics: Vec<u8> = topics.iter().flat_map(|t| t.0).collect();
        let n = self.conn.execute(
            "INSERT OR REPLACE INTO deferred (id, bidding_end, topics, data)              SELECT ?1, ?2, ?3, ?4 WHERE (SELECT COUNT(*) FROM deferred WHERE id != ?1) < ?5",
            params![id.as_slice(), bidding_end, topics, data, max as i64],
        )?;
        Ok(n == 1)
    }

    /// Forget the orders whose bid window ended before `now` and return the others' logs,
    /// oldest bid window first.
    pub fn deferred(&self, now: u64) -> Result<Vec<LogParts>, StateError> {
        self.conn
            .execute("DELETE FROM deferred WHERE bidding_end < ?1", params![now])?;
        let mut stmt = self
            .conn
            .prepare("SELECT topics, data FROM deferred ORDER BY bidding_end")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        let mut out = Vec::new();
        for r in rows {
            let (topics, data) = r?;
            out.push((
                topics.chunks_exact(32).map(B256::from_slice).collect(),
                data,
            ));
        }
        Ok(out)
    }

    /// Stop keeping order `id` for another look.
    pub fn undefer(&self, id: B256) -> Result<(), StateError> {
        self.conn
            .execute("DELETE FROM deferred WHERE id = ?1", params![id.as_slice()])?;
        Ok(())
    }

    /// The results modules the node's leases are bound to.
    pub fn modules(&self) -> Result<Vec<Address>, StateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT module FROM jobs WHERE module IS NOT NULL")?;
        let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = Vec::new();
        for r in rows {
            let m = r?;
            if m.len() == 20 {
                out.push(Address::from_slice(&m));
            }
        }
        Ok(out)
    }

    /// Record challenge `c` as open unless it is known. Returns whether it is new.
    pub fn challenge(&self, c: &Challenge) -> Result<bool, StateError> {
        let n = self.conn.execute(
            "INSERT OR IGNORE INTO challenges (lease, idx, deadline, state) VALUES (?1, ?2, ?3, 'open')",
            params![c.lease.as_slice(), c.index as i64, c.deadline as i64],
        )?;
        Ok(n == 1)
    }

    /// Close challenge `c` with `end`.
    pub fn challenge_ended(&self, c: &Challenge, end: ChallengeEnd) -> Result<(), StateError> {
        self.conn.execute(
            "UPDATE challenges SET state = ?1 WHERE lease = ?2 AND idx = ?3 AND deadline = ?4",
            params![
                end.name(),
                c.lease.as_slice(),
                c.index as i64,
                c.deadline as i64
            ],
        )?;
        Ok(())
    }

    /// The challenges not answered yet, earliest deadline first.
    pub fn open_challenges(&self) -> Result<Vec<Challenge>, StateError> {
        let mut stmt = self.conn.prepare(
            "SELECT lease, idx, deadline FROM challenges WHERE state = 'open' ORDER BY deadline",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for r in rows {
            let (lease, index, deadline) = r?;
            out.push(Challenge {
                lease: b256(Some(lease)).unwrap_or_default(),
                index: index as u64,
                deadline: deadline as u64,
            });
        }
        Ok(out)
    }

    /// Remember that the market holds the collateral of closed lease `id` (closed at `closed_at`)
    /// until its fault horizon has passed.
    pub fn hold(&self, id: B256, closed_at: u64) -> Result<(), StateError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO held (lease, closed_at) VALUES (?1, ?2)",
            params![id.as_slice(), closed_at as i64],
        )?;
        Ok(())
    }

    /// Take a tenant's access nonce, valid until `expiry`, at `now` (ACC-01): expired ones are
    /// dropped first; then a nonce taken before is [`NonceTake::Replayed`], and one past `signer`'s
    /// `per_signer` unexpired ones, or everyone's `total`, is [`NonceTake::Full`].
    pub fn take_nonce(
        &self,
        (signer, nonce, expiry): (Address, B256, u64),
        now: u64,
        per_signer: usize,
        total: usize,
    ) -> Result<NonceTake, StateError> {
        self.conn.execute(
            "DELETE FROM access_nonces WHERE expiry < ?1",
            params![now as i64],
        )?;
        let taken: Option<i64> = self
            .conn
            .query_row(
                "SELECT 1 FROM access_nonces WHERE signer = ?1 AND nonce = ?2",
                params![signer.as_slice(), nonce.as_slice()],
                |r| r.get(0),
            )
            .optional()?;
        if taken.is_some() {
            return Ok(NonceTake::Replayed);
        }
        let count = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<usize, StateError> {
            let n: i64 = self.conn.query_row(sql, p, |r| r.get(0))?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        };
        if count(
            "SELECT COUNT(*) FROM access_nonces WHERE signer = ?1",
            &[&signer.as_slice()],
        )? >= per_signer
            || count("SELECT COUNT(*) FROM access_nonces", &[])? >= total
        {
            return Ok(NonceTake::Full);
        }
        self.conn.execute(
            "INSERT INTO access_nonces (signer, nonce, expiry) VALUES (?1, ?2, ?3)",
            params![signer.as_slice(), nonce.as_slice(), expiry as i64],
        )?;
        Ok(NonceTake::Taken)
    }

    /// Up to `max` held leases closed at or before `until`, oldest first.
    pub fn held(&self, until: u64, max: usize) -> Result<Vec<B256>, StateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT lease FROM held WHERE closed_at <= ?1 ORDER BY closed_at LIMIT ?2")?;
        let rows = stmt.query_map(params![until as i64, max as i64], |r| {
            r.get::<_, Vec<u8>>(0)
        })?;
        let mut out = Vec::new();
        for r in rows {
            out.extend(b256(Some(r?)));
        }
        Ok(out)
    }

    /// Whether the stored result of lease `id` is needed no more: its job is in a terminal state
    /// (closed, faulted, failed, lost) it reached at or before `until` (unix seconds), and the
    /// market holds none of its collateral, so no challenge or fault of it can come.
    pub fn result_done(&self, id: B256, until: u64) -> Result<bool, StateError> {
        let sql = format!(
            "SELECT COUNT(*) FROM jobs WHERE id = ?1 AND state IN ({}) AND updated_at <= ?2 \
             AND NOT EXISTS (SELECT 1 FROM held WHERE lease = ?1)",
            terminal_states()
        );
        let n: i64 = self
            .conn
            .query_row(&sql, params![id.as_slice(), until as i64], |r| r.get(0))?;
        Ok(n == 1)
    }

    /// Leases whose collateral the market still holds (as far as the node knows).
    pub fn held_count(&self) -> Result<u64, StateError> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM held", [], |r| r.get::<_, i64>(0))? as u64)
    }

    /// The market no longer holds lease `id`'s collateral (released, or slashed).
    pub fn unhold(&self, id: B256) -> Result<(), StateError> {
        self.conn
            .execute("DELETE FROM held WHERE lease = ?1", params![id.as_slice()])?;
        Ok(())
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

/// The columns of a job row, in [`read`] order.
const SELECT: &str = "SELECT id, state, tenant, terms, spec, price, start_at, end_at, root, tx, raw, pgid, note, updated_at, size, module FROM jobs";

type RawRow = (Vec<u8>, String, Job);

fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    let tenant: Vec<u8> = r.get(2)?;
    let price: String = r.get(5)?;
    Ok((
        r.get(0)?,
        r.get(1)?,
        Job {
            tenant: if tenant.len() == 20 {
                Address::from_slice(&tenant)
            } else {
                Address::ZERO
            },
            terms: r.get(3)?,
            spec: r.get(4)?,
            price: price.parse().unwrap_or_default(),
            start: r.get::<_, i64>(6)? as u64,
            end: r.get::<_, i64>(7)? as u64,
            root: b256(r.get(8)?),
            tx: b256(r.get(9)?),
            raw: r.get(10)?,
            pgid: r.get(11)?,
            note: r.get(12)?,
            updated_at: r.get::<_, i64>(13)? as u64,
            size: r.get::<_, i64>(14)? as u64,
            module: r
                .get::<_, Option<Vec<u8>>>(15)?
                .filter(|m| m.len() == 20)
                .map(|m| Address::from_slice(&m)),
            ..Job::default()
        },
    ))
}

fn row((id, state, job): RawRow) -> Result<Job, StateError> {
    let id = b256(Some(id)).unwrap_or_default();
    let state = JobState::from_name(&state).ok_or(StateError::UnknownState(id, state))?;
    Ok(Job { id, state, ..job })
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobState::*;

    fn bid(id: B256) -> Job {
        Job {
            id,
            terms: vec![1, 2, 3],
            ..Job::default()
        }
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(&dir.path().join("state.db")).expect("open");
        (dir, s)
    }

    #[test]
    fn deferred_orders_are_kept_until_their_bid_window_ends_and_bounded() {
        let (_dir, s) = store();
        let (a, b, c) = (
            B256::repeat_byte(1),
            B256::repeat_byte(2),
            B256::repeat_byte(3),
        );
        let topics = [B256::repeat_byte(9), a];
        assert!(s.defer(a, 200, &topics, b"a", 2).expect("defer"));
        assert!(s.defer(b, 100, &[b], b"b", 2).expect("defer"));
        assert!(!s.defer(c, 300, &[c], b"c", 2).expect("full"), "at most 2");
        assert!(
            s.defer(a, 200, &topics, b"a", 2).expect("again"),
            "a kept order is kept again at the bound"
        );
        assert_eq!(
            s.deferred(50).expect("read"),
            vec![(vec![b], b"b".to_vec()), (topics.to_vec(), b"a".to_vec())],
            "oldest window first, topics and data as given"
        );
        assert_eq!(
            s.deferred(150).expect("read").len(),
            1,
            "b's window is over"
        );
        s.undefer(a).expect("undefer");
        assert!(s.deferred(0).expect("read").is_empty());
    }

    #[test]
    fn challenges_are_recorded_once_and_held_leases_come_back_oldest_first() {
        let (_dir, s) = store();
        let c = Challenge {
            lease: B256::repeat_byte(1),
            index: 3,
            deadline: 100,
        };
        assert!(s.challenge(&c).expect("new"));
        assert!(
            !s.challenge(&c).expect("seen"),
            "a log read twice is one challenge"
        );
        // The same chunk challenged again after an answer is another challenge.
        let again = Challenge { deadline: 200, ..c };
        assert!(s.challenge(&again).expect("new"));
        assert_eq!(s.open_challenges().expect("open"), vec![c, again]);
        s.challenge_ended(&c, ChallengeEnd::Answered).expect("end");
        assert_eq!(s.open_challenges().expect("open"), vec![again]);

        let (a, b) = (B256::repeat_byte(7), B256::repeat_byte(8));
        s.hold(b, 20).expect("hold");
        s.hold(a, 10).expect("hold");
        assert_eq!(s.held(5, 10).expect("held"), Vec::<B256>::new());
        assert_eq!(s.held(20, 10).expect("held"), vec![a, b]);
        assert_eq!(s.held(20, 1).expect("held"), vec![a], "in batches");
        s.unhold(a).expect("unhold");
        assert_eq!(s.held_count().expect("count"), 1);
    }

    #[test]
    fn a_job_row_keeps_its_lease_module_and_result_size() {
        let (_dir, s) = store();
        let id = B256::repeat_byte(1);
        s.insert(&bid(id)).expect("insert");
        let m = Address::repeat_byte(5);
        assert!(
            s.advance(id, Bid, Won, Some(Set::Lease(10, 20, m)))
                .expect("won")
        );
        let j = s.job(id).expect("read").expect("row");
        assert_eq!((j.start, j.end, j.module, j.size), (10, 20, Some(m), 0));
    }

    #[test]
    fn only_a_bid_is_forgotten_and_then_it_can_be_recorded_again() {
        let (_dir, s) = store();
        let (a, b) = (B256::repeat_byte(1), B256::repeat_byte(2));
        s.insert(&bid(a)).expect("insert");
        s.insert(&bid(b)).expect("insert");
        assert!(s.transition(b, Bid, Won).expect("won"));
        assert!(s.unbid(a).expect("unbid"));
        assert_eq!(s.job(a).expect("read"), None);
        assert!(!s.unbid(a).expect("unbid"), "gone already");
        assert!(!s.unbid(b).expect("unbid"), "a won lease stays");
        assert_eq!(s.job(b).expect("read").expect("row").state, Won);
        assert!(s.insert(&bid(a)).expect("insert"), "a new bid on the order");
    }

    #[test]
    fn a_version_2_store_gains_the_deferred_table_and_keeps_its_jobs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.db");
        {
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch(SCHEMA).expect("v2 tables");
            conn.pragma_update(None, "user_version", 2).expect("v2");
        }
        {
            let s = Store::open(&path).expect("migrated");
            assert!(s.insert(&bid(B256::repeat_byte(1))).expect("insert"));
            assert!(s.defer(B256::ZERO, 1, &[], b"", 10).expect("defer"));
        }
        let s = Store::open(&path).expect("reopened at v4");
        assert_eq!(s.live().expect("live").len(), 1);
        assert!(s.open_challenges().expect("v4 tables").is_empty());
        assert_eq!(s.deferred(0).expect("read").len(), 1);
        let v: i64 = s
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("version");
        assert_eq!(v, SCHEMA_VERSION);
    }

    #[test]
    fn a_job_walks_the_happy_path_and_each_step_happens_once() {
        let (_dir, s) = store();
        let id = B256::repeat_byte(1);
        assert!(s.insert(&bid(id)).expect("insert"));
        assert!(
            !s.insert(&bid(id)).expect("again"),
            "a second bid row is not made"
        );
        for (from, to) in [(Bid, Won), (Won, Acknowledged), (Acknowledged, Running)] {
            assert!(s.transition(id, from, to).expect("legal"));
            assert!(!s.transition(id, from, to).expect("legal"), "not twice");
        }
        assert!(s.computed(id, B256::repeat_byte(2), 7).expect("computed"));
        assert!(!s.computed(id, B256::repeat_byte(3), 8).expect("once"));
        assert!(
            s.posting(id, B256::repeat_byte(4), vec![4])
                .expect("posting")
        );
        assert!(
            !s.posting(id, B256::repeat_byte(5), vec![5]).expect("once"),
            "never posted twice"
        );
        let j = s.job(id).expect("read").expect("exists");
        assert_eq!(
            (j.state, j.root, j.size, j.tx),
            (
                Posting,
                Some(B256::repeat_byte(2)),
                7,
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
        s.insert(&bid(id)).expect("insert");
        for (from, to) in [
            (Bid, Running),
            (Won, Posted),
            (Closed, Running),
            (Failed, Won),
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
            let job = Job {
                spec: Some("{\"version\":1}".into()),
                price: u128::MAX,
                tenant: Address::repeat_byte(3),
                ..bid(id)
            };
            s.insert(&job).expect("insert");
            s.transition(id, Bid, Won).expect("won");
            s.set_cursor("orders", 42, B256::repeat_byte(7))
                .expect("cursor");
            s.set_cursor("orders", 43, B256::repeat_byte(8))
                .expect("cursor");
        }
        let s = Store::open(&path).expect("reopen");
        let live = s.live().expect("live");
        assert_eq!(live.len(), 1);
        assert_eq!(
            (
                live[0].state,
                live[0].spec.as_deref(),
                live[0].price,
                live[0].tenant
            ),
            (
                Won,
                Some("{\"version\":1}"),
                u128::MAX,
                Address::repeat_byte(3)
            )
        );
        assert_eq!(
            s.cursor("orders").expect("cursor"),
            Some((43, B256::repeat_byte(8)))
        );
        assert_eq!(s.cursor("leases").expect("cursor"), None);
        assert_eq!(s.counts().expect("counts"), vec![(Won, 1)]);
    }
}
