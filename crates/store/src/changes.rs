//! Hearing about changes made by other server nodes (PostgreSQL only).

use sqlx::postgres::PgListener;

use crate::error::Result;

/// What a [`Subscription`] delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// What this environment publishes may have changed (a recipe was approved, enabled or
    /// disabled, or a signing key changed): rebuild it.
    Environment(String),
    /// The connection to the database was lost and is being re-established: notifications
    /// sent meanwhile are gone, so rebuild every environment.
    Missed,
}

/// A listener on the changes channel, from [`crate::Store::subscribe`].
#[derive(Debug)]
pub struct Subscription {
    pub(crate) listener: PgListener,
}

impl Subscription {
    /// Waits for the next change. Listening is already in place when `subscribe` returns, so
    /// every change committed after that is delivered (unless [`Change::Missed`] says so).
    pub async fn recv(&mut self) -> Result<Change> {
        match self.listener.try_recv().await? {
            Some(notification) => Ok(Change::Environment(notification.payload().to_owned())),
            None => Ok(Change::Missed),
        }
    }
}
