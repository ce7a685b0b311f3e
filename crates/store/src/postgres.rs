//! The PostgreSQL backend, for several server nodes sharing one database.
//!
//! Write transactions run at READ COMMITTED and take row locks where a check must hold until
//! commit (see `ops`); reads run at REPEATABLE READ, READ ONLY, so a method that reads several
//! tables sees one snapshot. Changes to what is published are announced with `pg_notify` on
//! [`CHANNEL`] inside the changing transaction, so other nodes hear of them only on commit.

use std::str::FromStr;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::error::{Result, StoreError};

// Deliberately compiled once per backend (see `ops.rs`).
#[allow(clippy::duplicate_mod)]
#[path = "ops.rs"]
pub(crate) mod ops;

pub(crate) type Row = sqlx::postgres::PgRow;
pub(crate) type Tx = sqlx::Transaction<'static, sqlx::Postgres>;
pub(crate) const POSTGRES: bool = true;

/// The notification channel; the payload is an environment's name.
pub(crate) const CHANNEL: &str = "flightdeck_changes";

static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// Connections per node.
const CONNECTIONS: u32 = 10;

pub(crate) async fn open(url: &str) -> Result<PgPool> {
    let options = PgConnectOptions::from_str(url).map_err(|err| StoreError::InvalidUrl {
        reason: err.to_string(),
    })?;
    let pool = PgPoolOptions::new()
        .max_connections(CONNECTIONS)
        .connect_with(options)
        .await?;
    // sqlx holds an advisory lock while migrating, so nodes starting together take turns.
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

pub(crate) async fn begin_read(pool: &PgPool) -> Result<Tx> {
    Ok(pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await?)
}

pub(crate) async fn begin_write(pool: &PgPool) -> Result<Tx> {
    Ok(pool.begin().await?)
}

pub(crate) async fn notify(tx: &mut Tx, environment: &str) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(environment)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
