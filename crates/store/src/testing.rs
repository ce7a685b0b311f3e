//! Test support (feature `testing`): a fresh PostgreSQL schema per test, so that tests of the
//! store, the server and the command line can run at once on one database and leave nothing
//! behind.
//!
//! Tests that need PostgreSQL read its URL from [`POSTGRES_URL_VARIABLE`]; without it they say
//! that they were skipped ([`postgres_url_or_skip`]) and pass, so a machine without PostgreSQL
//! can still run the suite. CI sets the variable.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection as _;

/// The environment variable holding the PostgreSQL URL the tests use (a database in which they
/// may create and drop schemas).
pub const POSTGRES_URL_VARIABLE: &str = "FLIGHTDECK_TEST_POSTGRES_URL";

/// The test database's URL, or `None` after printing that the test is skipped (the variable
/// is unset or empty).
pub fn postgres_url_or_skip() -> Option<String> {
    match std::env::var(POSTGRES_URL_VARIABLE) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            println!("skipped: {POSTGRES_URL_VARIABLE} is not set");
            None
        }
    }
}

/// A schema of its own in the test database. [`PostgresSchema::url`] is the database URL with
/// `search_path` set to it, which is what a store or server under test is given.
#[derive(Debug)]
pub struct PostgresSchema {
    admin_url: String,
    name: String,
    url: String,
}

impl PostgresSchema {
    /// Creates a schema named after `label`, the process id, a counter and the clock's
    /// nanoseconds, so that tests running at once, in one process or several, never share one.
    pub async fn create(admin_url: &str, label: &str) -> Result<PostgresSchema, sqlx::Error> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.subsec_nanos())
            .unwrap_or_default();
        let name = format!(
            "fd_{label}_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        execute(admin_url, &format!("CREATE SCHEMA {name}")).await?;
        let separator = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{separator}options=-c%20search_path%3D{name}");
        Ok(PostgresSchema {
            admin_url: admin_url.to_owned(),
            name,
            url,
        })
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database URL with `search_path` set to the schema.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Drops the schema and everything in it.
    pub async fn drop_schema(self) -> Result<(), sqlx::Error> {
        execute(
            &self.admin_url,
            &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name),
        )
        .await
    }
}

/// Runs `test` with the URL and the name of a fresh schema (see [`PostgresSchema`]) and drops
/// the schema afterwards, also when the test fails; prints that it is skipped when
/// [`POSTGRES_URL_VARIABLE`] is not set.
///
/// # Panics
/// When the schema cannot be created or dropped, and again with the test's own panic: this is
/// a test harness, and a panic is how a test fails.
#[allow(clippy::panic, reason = "a test harness fails the test by panicking")]
pub async fn with_postgres_schema<F, Fut>(label: &str, test: F)
where
    F: FnOnce(String, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(admin_url) = postgres_url_or_skip() else {
        return;
    };
    let schema = match PostgresSchema::create(&admin_url, label).await {
        Ok(schema) => schema,
        Err(error) => panic!("cannot create a test schema at {admin_url}: {error}"),
    };
    let name = schema.name().to_owned();
    // A task of its own, so that a failing test still reaches the drop below.
    let outcome = tokio::spawn(test(schema.url().to_owned(), name.clone())).await;
    if let Err(error) = schema.drop_schema().await {
        panic!("cannot drop the test schema {name}: {error}");
    }
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// Runs one SQL statement on its own connection to `url`.
async fn execute(url: &str, sql: &str) -> Result<(), sqlx::Error> {
    let mut connection = sqlx::PgConnection::connect(url).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut connection)
        .await?;
    connection.close().await
}
