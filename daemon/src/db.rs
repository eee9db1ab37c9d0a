//! A daemon's state database (SQLite): opened in WAL mode with `synchronous = FULL`, so a step
//! the daemon has recorded survives a crash or a power loss, and brought to the daemon's schema
//! version in one transaction. What the tables hold is each daemon's own (the node's jobs, the
//! keeper's view); how they are opened and versioned is shared.

use std::path::Path;

use rusqlite::Connection;

/// A daemon's schema: the version it reads, the SQL that creates it from nothing, and the SQL
/// that brings each older version it still reads up to date.
#[derive(Clone, Copy, Debug)]
pub struct Schema {
    /// The version this build reads and writes (SQLite's `user_version`).
    pub version: i64,
    /// Creates every table of `version` in an empty database.
    pub create: &'static [&'static str],
    /// For each older version it upgrades, the statements that bring it to `version`.
    pub upgrades: &'static [(i64, &'static [&'static str])],
}

/// Why a state database cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite failed (unreadable file, full disk, ...).
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// A version this build neither reads nor upgrades (newer, or a database of something
    /// else).
    #[error("schema version {found}")]
    Version {
        /// The file's version.
        found: i64,
    },
}

/// Open (creating) the database at `path` at `schema`'s version: an empty file is created, a
/// version listed in `schema.upgrades` is upgraded, both in one transaction; any other version
/// is refused and left untouched.
pub fn open(path: &Path, schema: &Schema) -> Result<Connection, DbError> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found == schema.version {
        return Ok(conn);
    }
    let tables: i64 = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
        [],
        |r| r.get(0),
    )?;
    let steps = match (found, tables) {
        (0, 0) => schema.create,
        _ => schema
            .upgrades
            .iter()
            .find(|(from, _)| *from == found)
            .map(|(_, sql)| *sql)
            .ok_or(DbError::Version { found })?,
    };
    let tx = conn.unchecked_transaction()?;
    for sql in steps {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", schema.version)?;
    tx.commit()?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::{DbError, Schema, open};

    const V1: &str = "CREATE TABLE a (x INTEGER);";
    const V2: &str = "CREATE TABLE b (y INTEGER);";
    const SCHEMA: Schema = Schema {
        version: 2,
        create: &[V1, V2],
        upgrades: &[(1, &[V2])],
    };

    fn version(c: &rusqlite::Connection) -> i64 {
        c.pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("version")
    }

    #[test]
    fn creates_upgrades_and_refuses_what_it_does_not_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fresh = dir.path().join("fresh.sqlite");
        assert_eq!(version(&open(&fresh, &SCHEMA).expect("create")), 2);
        assert_eq!(version(&open(&fresh, &SCHEMA).expect("reopen")), 2);

        let old = dir.path().join("old.sqlite");
        {
            let c = rusqlite::Connection::open(&old).expect("open");
            c.execute_batch(V1).expect("v1");
            c.execute("INSERT INTO a VALUES (7)", []).expect("row");
            c.pragma_update(None, "user_version", 1).expect("set");
        }
        let c = open(&old, &SCHEMA).expect("upgrade");
        assert_eq!(version(&c), 2);
        let x: i64 = c
            .query_row("SELECT x FROM a", [], |r| r.get(0))
            .expect("kept");
        assert_eq!(x, 7, "an upgrade keeps the rows");
        c.execute("INSERT INTO b VALUES (1)", [])
            .expect("new table");

        // A newer version, or tables with no version (someone else's file), are refused as is.
        for (name, setup) in [
            ("newer.sqlite", "PRAGMA user_version = 3;"),
            ("other.sqlite", "CREATE TABLE t (z INTEGER);"),
        ] {
            let p = dir.path().join(name);
            rusqlite::Connection::open(&p)
                .expect("open")
                .execute_batch(setup)
                .expect("setup");
            let e = open(&p, &SCHEMA).expect_err("refused");
            assert!(matches!(e, DbError::Version { .. }), "{e}");
        }
    }
}
