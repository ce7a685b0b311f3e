//! The SQLite backend: one file, WAL, `synchronous = FULL`, foreign keys on.
//!
//! Writes go through a pool of one connection and start with `BEGIN IMMEDIATE`: within this
//! process they queue for that connection instead of spinning on SQLite's lock, and against
//! another process on the same file (`flightdeck admin …` while the server runs) they take
//! the write lock up front and wait for it (busy timeout) rather than failing halfway with
//! `SQLITE_BUSY`. Reads use a separate small pool; in WAL mode they never block the writer.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::error::{Result, StoreError};

// Deliberately compiled once per backend (see `ops.rs`).
#[allow(clippy::duplicate_mod)]
#[path = "ops.rs"]
pub(crate) mod ops;

pub(crate) type Row = sqlx::sqlite::SqliteRow;
pub(crate) type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;
pub(crate) const POSTGRES: bool = false;

static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// How long a write waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Read connections (the machine has two cores; reads are short).
const READERS: u32 = 4;

/// The writer and reader pools of one database file.
#[derive(Debug, Clone)]
pub(crate) struct Pools {
    writer: SqlitePool,
    reader: SqlitePool,
}

pub(crate) async fn open(url: &str) -> Result<Pools> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|err| StoreError::InvalidUrl {
            reason: err.to_string(),
        })?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT);
    if url.contains(":memory:") || url.contains("mode=memory") {
        // An in-memory database lives as long as its one connection: keep it open forever,
        // and share it for reads and writes.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        return Ok(Pools {
            writer: pool.clone(),
            reader: pool,
        });
    }
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone())
        .await?;
    MIGRATOR.run(&writer).await?;
    let reader = SqlitePoolOptions::new()
        .max_connections(READERS)
        .connect_with(options)
        .await?;
    Ok(Pools { writer, reader })
}

impl Pools {
    pub(crate) async fn begin_read(&self) -> Result<Tx> {
        Ok(self.reader.begin().await?)
    }

    pub(crate) async fn begin_write(&self) -> Result<Tx> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    pub(crate) async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// SQLite serves one process, which knows its own changes: nothing to tell.
pub(crate) async fn notify(_tx: &mut Tx, _environment: &str) -> Result<()> {
    Ok(())
}
