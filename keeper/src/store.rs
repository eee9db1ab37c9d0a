//! The keeper's SQLite state: the view (orders, leases, finished ids) and its log cursor, written
//! together in one transaction per page of logs, so a restart resumes from the cursor with the
//! view that matches it; the journal of sent transactions (written before broadcast, OFF-14);
//! and counters for `status`.

use std::path::Path;

use alloy::primitives::B256;
use gridlease_daemon::db;
use rusqlite::{Connection, OptionalExtension, params};

use crate::view::{Changed, View};

/// 3: protocol v2 (leases keep their result's size, challenges and held closes; the market the
/// state belongs to is recorded). Older stores were built from v1 contracts: refused.
const SCHEMA_VERSION: i64 = 3;

const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE providers (id BLOB PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE cursor (id INTEGER PRIMARY KEY CHECK (id = 1), block INTEGER NOT NULL, hash BLOB NOT NULL);
CREATE TABLE orders (id BLOB PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE leases (id BLOB PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE done (id BLOB PRIMARY KEY, block INTEGER NOT NULL DEFAULT 0);
CREATE TABLE sent (
    hash BLOB PRIMARY KEY, nonce INTEGER NOT NULL, raw BLOB NOT NULL, action TEXT NOT NULL,
    ids TEXT NOT NULL, status TEXT NOT NULL, earned TEXT NOT NULL DEFAULT '0',
    token BLOB, gas_cost TEXT NOT NULL DEFAULT '0', at INTEGER NOT NULL
);
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
";

/// A state error: the database, or a row it cannot read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite.
    #[error("keeper state: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A row that does not decode.
    #[error("keeper state: corrupt row: {0}")]
    Corrupt(String),
    /// Written by another version.
    #[error(
        "keeper state has schema version {found}, this keeper reads {SCHEMA_VERSION}: move the data directory aside to rebuild it from the chain"
    )]
    Version {
        /// What the file has.
        found: i64,
    },
    /// Built from another market's logs.
    #[error(
        "keeper state belongs to the market at {found}, the deployments file names {expected}: use another data.dir, or move this one aside to rebuild it from the chain"
    )]
    OtherMarket {
        /// The market the state was built for.
        found: String,
        /// The market configured now.
        expected: String,
    },
}

/// A journaled transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentTx {
    /// Hash.
    pub hash: B256,
    /// Nonce.
    pub nonce: u64,
    /// Raw signed bytes.
    pub raw: Vec<u8>,
    /// Action name.
    pub action: String,
    /// Ids it touched.
    pub ids: Vec<B256>,
}

/// The database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
}

fn id(bytes: Vec<u8>) -> Result<B256, StoreError> {
    B256::try_from(bytes.as_slice()).map_err(|_| StoreError::Corrupt("id is not 32 bytes".into()))
}

impl Store {
    /// Open (creating) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let schema = db::Schema {
            version: SCHEMA_VERSION,
            create: &[SCHEMA],
            upgrades: &[],
        };
        let conn = db::open(path, &schema).map_err(|e| match e {
            db::DbError::Sqlite(e) => StoreError::Sql(e),
            db::DbError::Version { found } => StoreError::Version { found },
        })?;
        Ok(Self { conn })
    }

    /// Record that this state is built from `market`'s logs, or refuse a state built from
    /// another market's (a redeployed market on the same chain would otherwise be read from a
    /// cursor and a view that are not its own: OFF-15).
    pub fn bind_market(&self, market: alloy::primitives::Address) -> Result<(), StoreError> {
        let expected = market.to_string();
        let found: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'market'", [], |r| {
                r.get(0)
            })
            .optional()?;
        match found {
            Some(found) if found != expected => Err(StoreError::OtherMarket { found, expected }),
            Some(_) => Ok(()),
            None => {
                self.conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('market', ?1)",
                    params![expected],
                )?;
                Ok(())
            }
        }
    }

    /// The view and the cursor it matches.
    pub fn load(&self) -> Result<(View, Option<(u64, B256)>), StoreError> {
        let mut v = View::default();
        let mut q = self.conn.prepare("SELECT id, body FROM orders")?;
        let rows = q.query_map([], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?))
        })?;
        for row in rows {
            let (k, body) = row?;
            let o = serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            v.orders.insert(id(k)?, o);
        }
        let mut q = self.conn.prepare("SELECT id, body FROM leases")?;
        let rows = q.query_map([], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?))
        })?;
        for row in rows {
            let (k, body) = row?;
            let l = serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            v.leases.insert(id(k)?, l);
        }
        let mut q = self.conn.prepare("SELECT id, body FROM providers")?;
        let rows = q.query_map([], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?))
        })?;
        for row in rows {
            let (k, body) = row?;
            let p = serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if k.len() != 20 {
                return Err(StoreError::Corrupt(format!(
                    "provider key of {} bytes",
                    k.len()
                )));
            }
            v.providers
                .insert(alloy::primitives::Address::from_slice(&k), p);
        }
        let mut q = self.conn.prepare("SELECT id, block FROM done")?;
        for row in q.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, u64>(1)?)))? {
            let (k, block) = row?;
            v.done.insert(id(k)?, block);
        }
        Ok((v, self.load_cursor()?))
    }

    /// The log cursor alone.
    pub fn load_cursor(&self) -> Result<Option<(u64, B256)>, StoreError> {
        self.conn
            .query_row("SELECT block, hash FROM cursor WHERE id = 1", [], |r| {
                Ok((r.get::<_, u64>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .optional()?
            .map(|(b, h)| id(h).map(|h| (b, h)))
            .transpose()
    }

    /// Persist one lease of `view` (outside a page of logs: a result check).
    pub fn put_lease(&self, view: &View, k: B256) -> Result<(), StoreError> {
        if let Some(l) = view.leases.get(&k) {
            let body = serde_json::to_string(l).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            self.conn.execute(
                "INSERT OR REPLACE INTO leases (id, body) VALUES (?1, ?2)",
                params![k.as_slice(), body],
            )?;
        }
        Ok(())
    }

    /// Persist the entries of `view` that `changed` names, and the cursor, atomically.
    pub fn commit(
        &mut self,
        view: &View,
        changed: &[Changed],
        cursor: (u64, B256),
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        write(&tx, view, changed)?;
        tx.execute(
            "INSERT OR REPLACE INTO cursor (id, block, hash) VALUES (1, ?1, ?2)",
            params![cursor.0, cursor.1.as_slice()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Persist the entries of `view` that `changed` names (a change not from logs: leases
    /// expired past their fault horizon), atomically.
    pub fn save(&mut self, view: &View, changed: &[Changed]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        write(&tx, view, changed)?;
        tx.commit()?;
        Ok(())
    }

    /// Delete finished ids the view forgot ([`View::forget`]).
    pub fn forget(&mut self, ids: &[B256]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for k in ids {
            tx.execute("DELETE FROM done WHERE id = ?1", params![k.as_slice()])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Journal a signed transaction before it is broadcast.
    pub fn journal(&self, t: &SentTx) -> Result<(), StoreError> {
        let ids = serde_json::to_string(&t.ids).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.conn.execute(
            "INSERT OR REPLACE INTO sent (hash, nonce, raw, action, ids, status, at) \
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6)",
            params![
                t.hash.as_slice(),
                t.nonce,
                t.raw,
                t.action,
                ids,
                crate::unix_now()
            ],
        )?;
        Ok(())
    }

    /// Record how a journaled transaction ended: `status` (mined, reverted, replaced, failed),
    /// what it earned (units of `token`) and what its gas cost (wei).
    pub fn finish(
        &self,
        hash: B256,
        status: &str,
        earned: u128,
        token: Option<alloy::primitives::Address>,
        gas_cost: u128,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE sent SET status = ?2, earned = ?3, token = ?4, gas_cost = ?5 WHERE hash = ?1",
            params![
                hash.as_slice(),
                status,
                earned.to_string(),
                token.map(|t| t.to_vec()),
                gas_cost.to_string()
            ],
        )?;
        Ok(())
    }

    /// Gas paid (wei) by the transactions journaled at or after `since` (unix seconds), with
    /// the time each was journaled: the hourly budget's use carried over a restart.
    pub fn gas_since(&self, since: u64) -> Result<Vec<(u64, u128)>, StoreError> {
        let mut q = self.conn.prepare(
            "SELECT at, gas_cost FROM sent WHERE at >= ?1 AND gas_cost != '0' ORDER BY at",
        )?;
        let rows = q.query_map(params![since], |r| {
            Ok((r.get::<_, u64>(0)?, r.get::<_, String>(1)?))
        })?;
        rows.map(|r| {
            let (at, gas) = r?;
            let gas = gas
                .parse::<u128>()
                .map_err(|e| StoreError::Corrupt(format!("gas_cost {gas:?}: {e}")))?;
            Ok((at, gas))
        })
        .collect()
    }

    /// Every other transaction still pending at the nonce of `hash` is booked as replaced: a fee
    /// bump of the same work (the transaction manager journals each bump under its own hash) or,
    /// when `hash` itself was not mined, everything at a nonce another transaction took. Without
    /// this, a bump that was not the first nor the mined one stayed "pending" until a restart.
    pub fn supersede(&self, hash: B256, mined: bool) -> Result<usize, StoreError> {
        let n = self.conn.execute(
            "UPDATE sent SET status = 'replaced' WHERE status = 'pending'
               AND nonce = (SELECT nonce FROM sent WHERE hash = ?1)
               AND (hash != ?1 OR NOT ?2)",
            params![hash.as_slice(), mined],
        )?;
        Ok(n)
    }

    /// Everything still pending at the nonce of `hash` (it included) is booked as dropped: the
    /// node knows none of it and the nonce is free, so none of it is on chain.
    pub fn drop_nonce(&self, hash: B256) -> Result<usize, StoreError> {
        let n = self.conn.execute(
            "UPDATE sent SET status = 'dropped' WHERE status = 'pending'
               AND nonce = (SELECT nonce FROM sent WHERE hash = ?1)",
            params![hash.as_slice()],
        )?;
        Ok(n)
    }

    /// The hashes still pending at `nonce`: a transaction and its fee bumps.
    pub fn pending_at(&self, nonce: u64) -> Result<Vec<B256>, StoreError> {
        let mut q = self
            .conn
            .prepare("SELECT hash FROM sent WHERE status = 'pending' AND nonce = ?1")?;
        let rows = q.query_map([nonce], |r| r.get::<_, Vec<u8>>(0))?;
        rows.map(|h| id(h?)).collect()
    }

    /// Transactions sent but not known to be finished (to watch after a restart).
    pub fn pending(&self) -> Result<Vec<SentTx>, StoreError> {
        let mut q = self.conn.prepare(
            "SELECT hash, nonce, raw, action, ids FROM sent WHERE status = 'pending' ORDER BY nonce",
        )?;
        let rows = q.query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, u64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (h, nonce, raw, action, ids) = row?;
            out.push(SentTx {
                hash: id(h)?,
                nonce,
                raw,
                action,
                ids: serde_json::from_str(&ids).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            });
        }
        Ok(out)
    }

    /// Per action and status: transactions, earned (per token) and gas spent (wei).
    pub fn ledger(&self) -> Result<Vec<LedgerRow>, StoreError> {
        let mut q = self
            .conn
            .prepare("SELECT action, status, earned, token, gas_cost FROM sent")?;
        let rows = q.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<Vec<u8>>>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        let mut out: Vec<LedgerRow> = Vec::new();
        for row in rows {
            let (action, status, earned, token, gas) = row?;
            let token = token.and_then(|t| alloy::primitives::Address::try_from(t.as_slice()).ok());
            let (earned, gas) = (
                earned.parse::<u128>().unwrap_or(0),
                gas.parse::<u128>().unwrap_or(0),
            );
            match out
                .iter_mut()
                .find(|r| r.action == action && r.status == status && r.token == token)
            {
                Some(r) => {
                    r.count += 1;
                    r.earned += earned;
                    r.gas_cost += gas;
                }
                None => out.push(LedgerRow {
                    action,
                    status,
                    token,
                    count: 1,
                    earned,
                    gas_cost: gas,
                }),
            }
        }
        out.sort_by(|a, b| (&a.action, &a.status).cmp(&(&b.action, &b.status)));
        Ok(out)
    }

    /// Overwrite counters (skips by reason, work found).
    pub fn set_counters(&mut self, counters: &[(String, u64)]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for (name, value) in counters {
            tx.execute(
                "INSERT OR REPLACE INTO counters (name, value) VALUES (?1, ?2)",
                params![name, value],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// All counters.
    pub fn counters(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut q = self
            .conn
            .prepare("SELECT name, value FROM counters ORDER BY name")?;
        let rows = q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Write the entries of `view` that `changed` names in transaction `tx`.
fn write(
    tx: &rusqlite::Transaction<'_>,
    view: &View,
    changed: &[Changed],
) -> Result<(), StoreError> {
    for c in changed {
        match *c {
            Changed::Order(k) => match view.orders.get(&k) {
                Some(o) => {
                    let body =
                        serde_json::to_string(o).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    tx.execute(
                        "INSERT OR REPLACE INTO orders (id, body) VALUES (?1, ?2)",
                        params![k.as_slice(), body],
                    )?;
                }
                None => {
                    tx.execute("DELETE FROM orders WHERE id = ?1", params![k.as_slice()])?;
                }
            },
            Changed::Lease(k) => {
                // A lease replaces its order.
                tx.execute("DELETE FROM orders WHERE id = ?1", params![k.as_slice()])?;
                if let Some(l) = view.leases.get(&k) {
                    let body =
                        serde_json::to_string(l).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    tx.execute(
                        "INSERT OR REPLACE INTO leases (id, body) VALUES (?1, ?2)",
                        params![k.as_slice(), body],
                    )?;
                }
            }
            Changed::Provider(p) => match view.providers.get(&p) {
                Some(r) => {
                    let body =
                        serde_json::to_string(r).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    tx.execute(
                        "INSERT OR REPLACE INTO providers (id, body) VALUES (?1, ?2)",
                        params![p.as_slice(), body],
                    )?;
                }
                None => {
                    tx.execute("DELETE FROM providers WHERE id = ?1", params![p.as_slice()])?;
                }
            },
            Changed::Restored(k) => {
                let id = k.as_slice();
                // The row of `table` for this id as `entry` is, or none.
                let put = |table: &str, entry: Option<String>| -> Result<usize, StoreError> {
                    Ok(match entry {
                        Some(body) => tx.execute(
                            &format!("INSERT OR REPLACE INTO {table} (id, body) VALUES (?1, ?2)"),
                            params![id, body],
                        )?,
                        None => {
                            tx.execute(&format!("DELETE FROM {table} WHERE id = ?1"), params![id])?
                        }
                    })
                };
                let json = |v: Option<Result<String, serde_json::Error>>| {
                    v.transpose()
                        .map_err(|e| StoreError::Corrupt(e.to_string()))
                };
                put(
                    "orders",
                    json(view.orders.get(&k).map(serde_json::to_string))?,
                )?;
                put(
                    "leases",
                    json(view.leases.get(&k).map(serde_json::to_string))?,
                )?;
                match view.done.get(&k) {
                    Some(b) => tx.execute(
                        "INSERT OR REPLACE INTO done (id, block) VALUES (?1, ?2)",
                        params![id, b],
                    )?,
                    None => tx.execute("DELETE FROM done WHERE id = ?1", params![id])?,
                };
            }
            Changed::Done(k) => {
                tx.execute("DELETE FROM orders WHERE id = ?1", params![k.as_slice()])?;
                tx.execute("DELETE FROM leases WHERE id = ?1", params![k.as_slice()])?;
                tx.execute(
                    "INSERT OR IGNORE INTO done (id, block) VALUES (?1, ?2)",
                    params![k.as_slice(), view.done.get(&k).copied().unwrap_or(0)],
                )?;
            }
        }
    }
    Ok(())
}

/// Totals of the transaction journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerRow {
    /// Action name.
    pub action: String,
    /// mined | reverted | pending | replaced | dropped | failed.
    pub status: String,
    /// Token of the earnings.
    pub token: Option<alloy::primitives::Address>,
    /// Transactions.
    pub count: u64,
    /// Earned, token units.
    pub earned: u128,
    /// Gas paid, wei.
    pub gas_cost: u128,
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{Address, Bytes};

    use super::*;
    use crate::view::Order;

    #[test]
    fn view_and_cursor_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("test setup");
        let path = dir.path().join("k.db");
        let mut s = Store::open(&path).expect("test setup");
        let mut v = View::default();
        let a = B256::repeat_byte(1);
        v.orders.insert(
            a,
            Order {
                tenant: Address::repeat_byte(2),
                terms: Bytes::from_static(b"t"),
                instant: false,
                bidding_end: 7,
                bid: Some((Address::repeat_byte(3), 9)),
            },
        );
        v.done.insert(B256::repeat_byte(4), 11);
        // A held lease with an open challenge (integer map keys go through JSON as strings).
        let l = B256::repeat_byte(7);
        v.leases.insert(
            l,
            crate::view::Lease {
                tenant: Address::repeat_byte(2),
                provider: Address::repeat_byte(8),
                terms: Bytes::from_static(b"t"),
                token: Address::repeat_byte(9),
                kind: 0,
                module: 1,
                collateral: 5,
                rate: 6,
                start: 1,
                end: 2,
                keeper_fee_bps: 10,
                settled_at: 1,
                escrow: 3,
                acknowledged: true,
                result: Some(crate::view::Posted {
                    root: B256::repeat_byte(3),
                    size: 2_048,
                    uri: "http://x/r".into(),
                    at: 2,
                }),
                stale_since: None,
                challenges: [(
                    1u64,
                    crate::view::Challenged {
                        challenger: Address::repeat_byte(4),
                        deadline: 9,
                    },
                )]
                .into(),
                answered: false,
                closed: Some(crate::view::Closed {
                    at: 2,
                    reason: crate::view::ACCEPTED,
                    paid: 1,
                }),
                checked: Some(crate::view::Check::Missing {
                    tries: 1,
                    why: "gone".into(),
                    since: 1_700_000_000,
                }),
                ended: true,
            },
        );
        let p = Address::repeat_byte(8);
        v.providers.insert(
            p,
            crate::view::Registered {
                operator: Address::repeat_byte(9),
                uri: "http://127.0.0.1:1".into(),
            },
        );
        s.commit(
            &v,
            &[
                Changed::Order(a),
                Changed::Lease(l),
                Changed::Done(B256::repeat_byte(4)),
                Changed::Provider(p),
            ],
            (12, B256::repeat_byte(5)),
        )
        .expect("test setup");
        let t = SentTx {
            hash: B256::repeat_byte(6),
            nonce: 3,
            raw: vec![1, 2],
            action: "settle".into(),
            ids: vec![a],
        };
        s.journal(&t).expect("test setup");
        drop(s);
        let s = Store::open(&path).expect("test setup");
        let (back, cursor) = s.load().expect("test setup");
        assert_eq!(back, v);
        assert_eq!(cursor, Some((12, B256::repeat_byte(5))));
        assert_eq!(s.pending().expect("test setup"), vec![t.clone()]);
        s.finish(B256::repeat_byte(6), "mined", 5, Some(Address::ZERO), 100)
            .expect("test setup");
        assert!(s.pending().expect("test setup").is_empty());
        // What it paid counts against this hour's budget after a restart, and not the next's.
        let now = crate::unix_now();
        let spent = s.gas_since(now - 3_600).expect("gas");
        assert_eq!(spent.iter().map(|(_, g)| g).collect::<Vec<_>>(), [&100]);
        assert!(spent[0].0 <= now);
        assert!(s.gas_since(now + 10).expect("gas").is_empty());

        // Three fee bumps of one nonce; the third is mined: none of the others stays pending.
        let bump = |b: u8| SentTx {
            hash: B256::repeat_byte(b),
            nonce: 4,
            ..t.clone()
        };
        for b in [7, 8, 9] {
            s.journal(&bump(b)).expect("test setup");
        }
        s.journal(&SentTx {
            hash: B256::repeat_byte(10),
            nonce: 5,
            ..t.clone()
        })
        .expect("test setup");
        s.finish(B256::repeat_byte(9), "mined", 0, None, 1)
            .expect("test setup");
        assert_eq!(
            s.supersede(B256::repeat_byte(9), true).expect("supersede"),
            2
        );
        let left: Vec<u64> = s
            .pending()
            .expect("pending")
            .iter()
            .map(|t| t.nonce)
            .collect();
        assert_eq!(
            left,
            vec![5],
            "only the next nonce's transaction is still pending"
        );
        // A nonce taken by someone else's transaction: everything journaled at it is replaced.
        assert_eq!(
            s.supersede(B256::repeat_byte(10), false)
                .expect("supersede"),
            1
        );
        assert!(s.pending().expect("pending").is_empty());
        let l = s.ledger().expect("test setup");
        assert_eq!((l[0].count, l[0].earned, l[0].gas_cost), (1, 5, 100));
    }

    #[test]
    fn off_15_a_store_of_another_version_or_market_is_refused() {
        let dir = tempfile::tempdir().expect("test setup");
        let path = dir.path().join("k.db");
        {
            // A v1-protocol store (schema 2).
            let c = Connection::open(&path).expect("test setup");
            c.pragma_update(None, "user_version", 2)
                .expect("test setup");
        }
        let e = Store::open(&path).expect_err("refused");
        assert!(matches!(e, StoreError::Version { found: 2 }), "{e}");
        assert!(
            e.to_string().contains("move the data directory aside"),
            "{e}"
        );

        let path = dir.path().join("k3.db");
        let s = Store::open(&path).expect("test setup");
        s.bind_market(Address::repeat_byte(1))
            .expect("first binding");
        s.bind_market(Address::repeat_byte(1))
            .expect("the same market");
        drop(s);
        let s = Store::open(&path).expect("test setup");
        let e = s.bind_market(Address::repeat_byte(2)).expect_err("refused");
        assert!(matches!(e, StoreError::OtherMarket { .. }), "{e}");
    }

    #[test]
    fn finished_ids_are_forgotten_and_a_save_needs_no_cursor() {
        let dir = tempfile::tempdir().expect("test setup");
        let path = dir.path().join("k.db");
        let mut s = Store::open(&path).expect("test setup");
        let mut v = View::default();
        v.done.insert(B256::repeat_byte(4), 77);
        s.save(&v, &[Changed::Done(B256::repeat_byte(4))])
            .expect("test setup");
        let (mut v, cursor) = s.load().expect("test setup");
        assert_eq!(cursor, None);
        assert_eq!(v.done.get(&B256::repeat_byte(4)), Some(&77));
        assert!(v.forget(77).is_empty());
        let old = v.forget(78);
        assert_eq!(old, vec![B256::repeat_byte(4)]);
        s.forget(&old).expect("test setup");
        drop(s);
        let (back, _) = Store::open(&path)
            .expect("test setup")
            .load()
            .expect("test setup");
        assert!(back.done.is_empty());
    }
}
