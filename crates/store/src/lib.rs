//! Storage for the Flightdeck server: one [`Store`] over SQLite (the embedded default) or
//! PostgreSQL (several server nodes), whose methods are the domain operations of
//! `docs/server.md` ("Storage").
//!
//! - [`Store::open`] picks the backend from the URL and applies the embedded migrations
//!   (`migrations/sqlite`, `migrations/postgres`).
//! - Each method is one transaction. Every method that changes something takes the
//!   [`Actor`] and the time (`now`: the store never reads the clock) and writes its
//!   [`AuditEvent`] in the same transaction.
//! - [`model`] holds the plain data types, [`error`] the errors and the stable conflict codes.
//! - On PostgreSQL, methods that can change what an environment publishes notify the
//!   `flightdeck_changes` channel in their transaction; [`Store::subscribe`] hears them.
//!
//! The domain code (`ops.rs`) is written once and compiled for each backend (`sqlite`,
//! `postgres` modules), so both run the same logic and, where the dialects agree, the same SQL.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod changes;
mod codec;
pub mod error;
pub mod model;
mod postgres;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

use jiff::Timestamp;
use serde_json::Value;
use sqlx::postgres::{PgListener, PgPool};

pub use crate::changes::{Change, Subscription};
pub use crate::error::{Conflict, Result, StoreError};
pub use crate::model::{
    Actor, ApiToken, ApprovalRequest, ApprovalRequestFilter, ApprovalState, AuditEvent,
    AuditFilter, ContentHasher, EnabledState, EnrollmentCount, EnrollmentFilter, Environment,
    IngestEvent, IngestOutcome, Kind, NewSigningKey, Publication, PublishState, PublishedItem,
    Recipe, RecipeFilter, Revision, RevisionFilter, Role, SigningKeyRecord, User,
};

/// The server's storage. Cheap to clone: clones share the connection pools.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
}

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(sqlite::Pools),
    Postgres(PgPool),
}

/// Runs `ops::$op(tx, args…)` of the store's backend in a read-only transaction.
macro_rules! read_tx {
    ($store:expr, $op:ident($($arg:expr),* $(,)?)) => {
        match &$store.backend {
            Backend::Sqlite(pools) => {
                let mut tx = pools.begin_read().await?;
                let value = sqlite::ops::$op(&mut tx, $($arg),*).await?;
                tx.commit().await?;
                Ok(value)
            }
            Backend::Postgres(pool) => {
                let mut tx = postgres::begin_read(pool).await?;
                let value = postgres::ops::$op(&mut tx, $($arg),*).await?;
                tx.commit().await?;
                Ok(value)
            }
        }
    };
}

/// Runs `ops::$op(tx, args…)` of the store's backend in a write transaction, committed when
/// the operation succeeds and rolled back (on drop) when it fails.
macro_rules! write_tx {
    ($store:expr, $op:ident($($arg:expr),* $(,)?)) => {
        match &$store.backend {
            Backend::Sqlite(pools) => {
                let mut tx = pools.begin_write().await?;
                let value = sqlite::ops::$op(&mut tx, $($arg),*).await?;
                tx.commit().await?;
                Ok(value)
            }
            Backend::Postgres(pool) => {
                let mut tx = postgres::begin_write(pool).await?;
                let value = postgres::ops::$op(&mut tx, $($arg),*).await?;
                tx.commit().await?;
                Ok(value)
            }
        }
    };
}

impl Store {
    /// Opens `sqlite://PATH` (created if missing; `sqlite::memory:` for a private in-memory
    /// database) or `postgres://…` / `postgresql://…`, and applies the migrations not yet
    /// applied. PostgreSQL URL parameters such as `options=-c search_path=NAME` are honoured.
    pub async fn open(url: &str) -> Result<Store> {
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite(sqlite::open(url).await?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres(postgres::open(url).await?)
        } else {
            return Err(StoreError::InvalidUrl {
                reason: "expected sqlite://PATH or postgres://…".to_owned(),
            });
        };
        Ok(Store { backend })
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Whether the database answers (for `/healthz`).
    pub async fn ping(&self) -> Result<()> {
        read_tx!(self, list_environments()).map(|_: Vec<Environment>| ())
    }

    /// Closes the connections, waiting for those in use to be returned. Later calls fail.
    pub async fn shutdown(&self) {
        match &self.backend {
            Backend::Sqlite(pools) => pools.close().await,
            Backend::Postgres(pool) => pool.close().await,
        }
    }

    /// On PostgreSQL, a listener on the changes that other nodes (and this one) commit; on
    /// SQLite `None`, since only one process serves a database file.
    pub async fn subscribe(&self) -> Result<Option<Subscription>> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(None),
            Backend::Postgres(pool) => {
                let mut listener = PgListener::connect_with(pool).await?;
                listener.listen(postgres::CHANNEL).await?;
                Ok(Some(Subscription { listener }))
            }
        }
    }

    // --- users ---------------------------------------------------------------------------

    /// Creates a user. Conflict `username_taken`.
    pub async fn create_user(
        &self,
        username: &str,
        roles: &[Role],
        actor: Actor,
        now: Timestamp,
    ) -> Result<User> {
        write_tx!(self, create_user(username, roles, actor, now))
    }

    /// The user with this id.
    pub async fn user(&self, id: i64) -> Result<User> {
        read_tx!(self, user(id))
    }

    /// The user with this username.
    pub async fn user_by_name(&self, username: &str) -> Result<User> {
        read_tx!(self, user_by_name(username))
    }

    /// Every user, by id.
    pub async fn list_users(&self) -> Result<Vec<User>> {
        read_tx!(self, list_users())
    }

    /// Replaces a user's roles.
    pub async fn set_roles(
        &self,
        user_id: i64,
        roles: &[Role],
        actor: Actor,
        now: Timestamp,
    ) -> Result<User> {
        write_tx!(self, set_roles(user_id, roles, actor, now))
    }

    /// Disables (or re-enables) a user; a disabled user's tokens do not authenticate.
    pub async fn set_disabled(
        &self,
        user_id: i64,
        disabled: bool,
        actor: Actor,
        now: Timestamp,
    ) -> Result<User> {
        write_tx!(self, set_disabled(user_id, disabled, actor, now))
    }

    // --- tokens --------------------------------------------------------------------------

    /// Stores a token of `user_id`. `secret_hash` is the SHA-256 hex of the secret, which the
    /// store never sees; `prefix` is the secret's first characters, for recognising it.
    /// Conflict `token_exists` if the hash is stored already.
    pub async fn create_token(
        &self,
        user_id: i64,
        name: &str,
        secret_hash: &str,
        prefix: &str,
        actor: Actor,
        now: Timestamp,
    ) -> Result<ApiToken> {
        write_tx!(
            self,
            create_token(user_id, name, secret_hash, prefix, actor, now)
        )
    }

    /// The user a token authenticates: `None` when no token has this hash, it is revoked, or
    /// its user is disabled.
    pub async fn authenticate(&self, secret_hash: &str) -> Result<Option<User>> {
        read_tx!(self, authenticate(secret_hash))
    }

    /// The tokens of one user, or of everyone, by id (revoked ones included).
    pub async fn list_tokens(&self, user_id: Option<i64>) -> Result<Vec<ApiToken>> {
        read_tx!(self, list_tokens(user_id))
    }

    /// The token with this id.
    pub async fn token(&self, id: i64) -> Result<ApiToken> {
        read_tx!(self, token(id))
    }

    /// Revokes a token. Conflict `already_revoked`.
    pub async fn revoke_token(&self, id: i64, actor: Actor, now: Timestamp) -> Result<ApiToken> {
        write_tx!(self, revoke_token(id, actor, now))
    }

    // --- environments --------------------------------------------------------------------

    /// Creates an environment. Conflict `environment_exists`.
    pub async fn create_environment(
        &self,
        name: &str,
        peer_approval: bool,
        actor: Actor,
        now: Timestamp,
    ) -> Result<Environment> {
        write_tx!(self, create_environment(name, peer_approval, actor, now))
    }

    /// The environment with this name.
    pub async fn environment(&self, name: &str) -> Result<Environment> {
        read_tx!(self, environment(name))
    }

    /// Every environment, by id (`production` first).
    pub async fn list_environments(&self) -> Result<Vec<Environment>> {
        read_tx!(self, list_environments())
    }

    // --- recipes -------------------------------------------------------------------------

    /// Creates a recipe with its first revision. The caller has validated `data` for `kind`.
    pub async fn create_recipe(
        &self,
        kind: Kind,
        environment: &str,
        data: &Value,
        comment: &str,
        actor: Actor,
        now: Timestamp,
    ) -> Result<(Recipe, Revision)> {
        write_tx!(
            self,
            create_recipe(kind, environment, data, comment, actor, now)
        )
    }

    /// Creates a new revision when `data` differs from the latest revision's (compared as
    /// canonical JSON), deleting a pending approval request of the previous latest revision.
    /// Returns the recipe, its latest revision, and whether that revision is new.
    pub async fn update_recipe(
        &self,
        recipe_id: i64,
        data: &Value,
        comment: &str,
        actor: Actor,
        now: Timestamp,
    ) -> Result<(Recipe, Revision, bool)> {
        write_tx!(self, update_recipe(recipe_id, data, comment, actor, now))
    }

    /// The recipe with this id.
    pub async fn recipe(&self, id: i64) -> Result<Recipe> {
        read_tx!(self, recipe(id))
    }

    /// Recipes matching `filter`, by id.
    pub async fn list_recipes(&self, filter: &RecipeFilter) -> Result<Vec<Recipe>> {
        read_tx!(self, list_recipes(filter))
    }

    /// The revision with this id, with its approval request.
    pub async fn revision(&self, id: i64) -> Result<Revision> {
        read_tx!(self, revision(id))
    }

    /// Revisions matching `filter`, newest first.
    pub async fn list_revisions(&self, filter: &RevisionFilter) -> Result<Vec<Revision>> {
        read_tx!(self, list_revisions(filter))
    }

    /// Every revision of a recipe, newest first.
    pub async fn history(&self, recipe_id: i64) -> Result<Vec<Revision>> {
        read_tx!(self, history(recipe_id))
    }

    // --- approval ------------------------------------------------------------------------

    /// Asks for approval of a recipe's latest revision. Conflicts `not_latest_revision`,
    /// `approval_exists` (pending or approved), `rejected_needs_edit`.
    pub async fn request_approval(
        &self,
        revision_id: i64,
        actor: Actor,
        now: Timestamp,
    ) -> Result<ApprovalRequest> {
        write_tx!(self, request_approval(revision_id, actor, now))
    }

    /// The approval request with this id.
    pub async fn approval_request(&self, id: i64) -> Result<ApprovalRequest> {
        read_tx!(self, approval_request(id))
    }

    /// Approval requests matching `filter`, newest first.
    pub async fn list_approval_requests(
        &self,
        filter: &ApprovalRequestFilter,
    ) -> Result<Vec<ApprovalRequest>> {
        read_tx!(self, list_approval_requests(filter))
    }

    /// Approves a pending request: the revision becomes the recipe's approved revision, and
    /// if the recipe is enabled the new revision is enabled too (an enabled state with
    /// `carryover_from`). Conflicts `not_pending`, `self_approval` (the environment requires
    /// peer approval and `actor` wrote the revision or made the request), `rollout_conflict`.
    pub async fn approve(
        &self,
        id: i64,
        comment: &str,
        actor: Actor,
        now: Timestamp,
    ) -> Result<ApprovalRequest> {
        write_tx!(self, approve(id, comment, actor, now))
    }

    /// Rejects a pending request; the recipe must be edited before approval is asked again.
    /// Conflict `not_pending`.
    pub async fn reject(
        &self,
        id: i64,
        comment: &str,
        actor: Actor,
        now: Timestamp,
    ) -> Result<ApprovalRequest> {
        write_tx!(self, reject(id, comment, actor, now))
    }

    /// Deletes a pending request, returning it as it was. Conflict `not_pending`.
    pub async fn close(&self, id: i64, actor: Actor, now: Timestamp) -> Result<ApprovalRequest> {
        write_tx!(self, close(id, actor, now))
    }

    // --- enabled state -------------------------------------------------------------------

    /// Enables or disables a recipe's approved revision. Conflicts `not_approved`,
    /// `already_enabled`, `already_disabled`, `rollout_conflict`.
    pub async fn set_enabled(
        &self,
        recipe_id: i64,
        enabled: bool,
        actor: Actor,
        now: Timestamp,
    ) -> Result<Recipe> {
        write_tx!(self, set_enabled(recipe_id, enabled, actor, now))
    }

    /// A recipe's enabled-state changes, newest first.
    pub async fn enabled_states(&self, recipe_id: i64) -> Result<Vec<EnabledState>> {
        read_tx!(self, enabled_states(recipe_id))
    }

    // --- publishing ----------------------------------------------------------------------

    /// The approved revisions of the enabled recipes of an environment, by recipe id.
    pub async fn published_items(&self, environment: &str) -> Result<Vec<PublishedItem>> {
        read_tx!(self, published_items(environment))
    }

    /// Reads what `environment` publishes (its items and the signing keys) and the publication
    /// of that content, in one transaction under the environment's lock: the same rule as
    /// [`Store::publication`] with `content_hash(items, keys)` as the hash.
    ///
    /// Every write that changes what is published takes the same lock, so publications are
    /// made in the order of the states they describe: a node that read an older state can
    /// never give it a newer serial than a newer state already got (which reading first and
    /// calling [`Store::publication`] afterwards could).
    pub async fn publish(
        &self,
        environment: &str,
        now: Timestamp,
        content_hash: &ContentHasher,
    ) -> Result<PublishState> {
        write_tx!(self, publish(environment, now, content_hash))
    }

    /// The serial and time of an environment's content: those of the last publication when
    /// its hash is `content_hash`, else a new publication with the next serial (1 for the
    /// first) at `now`. Nodes publishing at the same time take turns, so equal content gets
    /// equal serials and times everywhere.
    pub async fn publication(
        &self,
        environment: &str,
        content_hash: &str,
        now: Timestamp,
    ) -> Result<Publication> {
        write_tx!(self, publication(environment, content_hash, now))
    }

    // --- signing keys --------------------------------------------------------------------

    /// Every signing key, by id (with private keys: for the signer, not for display).
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>> {
        read_tx!(self, signing_keys())
    }

    /// Stores a key, and when `activate` makes it the active one (the previous active key is
    /// retired). Conflict `signing_key_exists`.
    pub async fn add_signing_key(
        &self,
        key: &NewSigningKey,
        activate: bool,
        actor: Actor,
        now: Timestamp,
    ) -> Result<SigningKeyRecord> {
        write_tx!(self, add_signing_key(key, activate, actor, now))
    }

    /// Makes a stored key the active one, retiring the previous one; nothing changes if it is
    /// active already.
    pub async fn activate_signing_key(
        &self,
        key_id: &str,
        actor: Actor,
        now: Timestamp,
    ) -> Result<SigningKeyRecord> {
        write_tx!(self, activate_signing_key(key_id, actor, now))
    }

    // --- audit ---------------------------------------------------------------------------

    /// Audit events matching `filter`, newest first.
    pub async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>> {
        read_tx!(self, audit_events(filter))
    }

    // --- telemetry -----------------------------------------------------------------------

    /// Stores a client's events, ignoring those already stored (same `client_id` and `seq`,
    /// also within the batch), and adds each new one to its enrollment count, in one
    /// transaction: a retried upload counts once.
    pub async fn ingest(
        &self,
        client_id: &str,
        events: &[IngestEvent],
        now: Timestamp,
    ) -> Result<IngestOutcome> {
        write_tx!(self, ingest(client_id, events, now))
    }

    /// Enrollment counts matching `filter`, by day, object, slug, branch and method.
    pub async fn enrollment_counts(
        &self,
        filter: &EnrollmentFilter,
    ) -> Result<Vec<EnrollmentCount>> {
        read_tx!(self, enrollment_counts(filter))
    }
}
