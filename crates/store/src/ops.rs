//! The domain operations, written once for both backends.
//!
//! This file is compiled twice, as `sqlite::ops` and `postgres::ops`: `super::Db` names the
//! backend, so every query is monomorphic and sqlx's per-database traits resolve without
//! generic bounds. Where the dialects differ, `super::POSTGRES` picks the SQL at compile time.
//! Every function runs inside the transaction the caller (`Store`) opened and commits.
//!
//! Locking on PostgreSQL: a method that changes a recipe locks its environment row and then
//! the recipe row (`FOR UPDATE`), always in that order, so concurrent changes of one recipe
//! or one environment's published set are serialised and cannot deadlock. SQLite needs no
//! row locks: write transactions start with `BEGIN IMMEDIATE` and so run one at a time.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use jiff::Timestamp;
use serde_json::{Value, json};
use sqlx::Row as _;

use super::{POSTGRES, Row, Tx, notify};
use crate::codec::{
    day_text, json_text, limit_column, micros, optional_timestamp, parse_approval_state, parse_day,
    parse_json, parse_kind, parse_roles, roles_text, same_json, seq_column, timestamp, utc_day,
};
use crate::error::{Conflict, Result, StoreError};
use crate::model::{
    Actor, ApiToken, ApprovalRequest, ApprovalRequestFilter, ApprovalState, AuditEvent,
    AuditFilter, ContentHasher, EnabledState, EnrollmentCount, EnrollmentFilter, Environment,
    IngestEvent, IngestOutcome, Kind, NewSigningKey, Publication, PublishState, PublishedItem,
    Recipe, RecipeFilter, Revision, RevisionFilter, Role, SigningKeyRecord, User,
};

/// `FOR UPDATE` on PostgreSQL; nothing on SQLite, whose write transactions are exclusive.
macro_rules! for_update {
    ($sql:literal) => {
        if POSTGRES {
            concat!($sql, " FOR UPDATE")
        } else {
            $sql
        }
    };
}

macro_rules! user_select {
    () => {
        "SELECT id, username, roles, created_at, disabled FROM users"
    };
}

macro_rules! token_select {
    () => {
        "SELECT id, user_id, name, prefix, created_at, revoked_at FROM api_tokens"
    };
}

macro_rules! environment_select {
    () => {
        "SELECT id, name, peer_approval, created_at FROM environments"
    };
}

macro_rules! recipe_select {
    () => {
        "SELECT r.id, r.kind, e.name AS environment, r.latest_revision_id, \
         r.approved_revision_id, r.enabled, r.created_at, r.updated_at \
         FROM recipes r JOIN environments e ON e.id = r.environment_id"
    };
}

/// An approval request's columns, prefixed so they can sit beside a revision's.
macro_rules! approval_columns {
    () => {
        "ar.id AS ar_id, ar.revision_id AS ar_revision_id, ar.recipe_id AS ar_recipe_id, \
         ar.creator_id AS ar_creator_id, cu.username AS ar_creator, ar.state AS ar_state, \
         ar.approver_id AS ar_approver_id, au.username AS ar_approver, \
         ar.comment AS ar_comment, ar.created_at AS ar_created_at, \
         ar.decided_at AS ar_decided_at"
    };
}

macro_rules! approval_joins {
    () => {
        " LEFT JOIN users cu ON cu.id = ar.creator_id LEFT JOIN users au ON au.id = ar.approver_id"
    };
}

macro_rules! approval_select {
    () => {
        concat!(
            "SELECT ",
            approval_columns!(),
            " FROM approval_requests ar",
            approval_joins!()
        )
    };
}

macro_rules! revision_select {
    () => {
        concat!(
            "SELECT rv.id, rv.recipe_id, rv.parent_id, rv.data, rv.comment, rv.author_id, \
             wu.username AS author, rv.created_at, ",
            approval_columns!(),
            " FROM revisions rv LEFT JOIN users wu ON wu.id = rv.author_id \
             LEFT JOIN approval_requests ar ON ar.revision_id = rv.id",
            approval_joins!()
        )
    };
}

macro_rules! enabled_state_select {
    () => {
        "SELECT s.id, s.recipe_id, s.revision_id, s.enabled, s.creator_id, u.username AS creator, \
         s.created_at, s.carryover_from FROM enabled_states s LEFT JOIN users u ON u.id = s.creator_id"
    };
}

macro_rules! signing_key_select {
    () => {
        "SELECT id, key_id, private_key_pem, public_key_pem, created_at, active, retired_at \
         FROM signing_keys"
    };
}

// ---------------------------------------------------------------------------------------------
// Users

pub(crate) async fn create_user(
    tx: &mut Tx,
    username: &str,
    roles: &[Role],
    actor: Actor,
    now: Timestamp,
) -> Result<User> {
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO users (username, roles, created_at, disabled) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (username) DO NOTHING RETURNING id",
    )
    .bind(username)
    .bind(roles_text(roles))
    .bind(micros(now))
    .bind(false)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(id) = id else {
        return Err(Conflict::UsernameTaken.into());
    };
    let user = user(tx, id).await?;
    let details = json!({ "username": user.username, "roles": user.roles });
    audit(tx, actor, now, "user.create", "user", id, details).await?;
    Ok(user)
}

pub(crate) async fn user(tx: &mut Tx, id: i64) -> Result<User> {
    let row = sqlx::query(concat!(user_select!(), " WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    match row {
        Some(row) => user_from_row(&row),
        None => Err(StoreError::not_found("user", id)),
    }
}

pub(crate) async fn user_by_name(tx: &mut Tx, username: &str) -> Result<User> {
    let row = sqlx::query(concat!(user_select!(), " WHERE username = $1"))
        .bind(username)
        .fetch_optional(&mut **tx)
        .await?;
    match row {
        Some(row) => user_from_row(&row),
        None => Err(StoreError::not_found("user", username)),
    }
}

pub(crate) async fn list_users(tx: &mut Tx) -> Result<Vec<User>> {
    let rows = sqlx::query(concat!(user_select!(), " ORDER BY id"))
        .fetch_all(&mut **tx)
        .await?;
    rows.iter().map(user_from_row).collect()
}

pub(crate) async fn set_roles(
    tx: &mut Tx,
    user_id: i64,
    roles: &[Role],
    actor: Actor,
    now: Timestamp,
) -> Result<User> {
    let updated = sqlx::query("UPDATE users SET roles = $1 WHERE id = $2")
        .bind(roles_text(roles))
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::not_found("user", user_id));
    }
    let user = user(tx, user_id).await?;
    let details = json!({ "roles": user.roles });
    audit(tx, actor, now, "user.set_roles", "user", user_id, details).await?;
    Ok(user)
}

pub(crate) async fn set_disabled(
    tx: &mut Tx,
    user_id: i64,
    disabled: bool,
    actor: Actor,
    now: Timestamp,
) -> Result<User> {
    let updated = sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
        .bind(disabled)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::not_found("user", user_id));
    }
    let action = if disabled {
        "user.disable"
    } else {
        "user.enable"
    };
    audit(tx, actor, now, action, "user", user_id, json!({})).await?;
    user(tx, user_id).await
}

fn user_from_row(row: &Row) -> Result<User> {
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        roles: parse_roles(row.try_get("roles")?)?,
        created_at: timestamp(row.try_get("created_at")?)?,
        disabled: row.try_get("disabled")?,
    })
}

// ---------------------------------------------------------------------------------------------
// Tokens

pub(crate) async fn create_token(
    tx: &mut Tx,
    user_id: i64,
    name: &str,
    secret_hash: &str,
    prefix: &str,
    actor: Actor,
    now: Timestamp,
) -> Result<ApiToken> {
    user(tx, user_id).await?;
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO api_tokens (user_id, name, secret_hash, prefix, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (secret_hash) DO NOTHING RETURNING id",
    )
    .bind(user_id)
    .bind(name)
    .bind(secret_hash)
    .bind(prefix)
    .bind(micros(now))
    .fetch_optional(&mut **tx)
    .await?;
    let Some(id) = id else {
        return Err(Conflict::TokenExists.into());
    };
    let details = json!({ "user_id": user_id, "name": name, "prefix": prefix });
    audit(tx, actor, now, "token.create", "token", id, details).await?;
    token(tx, id).await
}

pub(crate) async fn authenticate(tx: &mut Tx, secret_hash: &str) -> Result<Option<User>> {
    let row = sqlx::query(
        "SELECT u.id, u.username, u.roles, u.created_at, u.disabled \
         FROM api_tokens t JOIN users u ON u.id = t.user_id \
         WHERE t.secret_hash = $1 AND t.revoked_at IS NULL AND NOT u.disabled",
    )
    .bind(secret_hash)
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(user_from_row).transpose()
}

pub(crate) async fn list_tokens(tx: &mut Tx, user_id: Option<i64>) -> Result<Vec<ApiToken>> {
    let rows = sqlx::query(concat!(
        token_select!(),
        " WHERE ($1 IS NULL OR user_id = $1) ORDER BY id"
    ))
    .bind(user_id)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter().map(token_from_row).collect()
}

pub(crate) async fn token(tx: &mut Tx, id: i64) -> Result<ApiToken> {
    let row = sqlx::query(concat!(token_select!(), " WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    match row {
        Some(row) => token_from_row(&row),
        None => Err(StoreError::not_found("token", id)),
    }
}

pub(crate) async fn revoke_token(
    tx: &mut Tx,
    id: i64,
    actor: Actor,
    now: Timestamp,
) -> Result<ApiToken> {
    let token_before = token(tx, id).await?;
    if token_before.revoked_at.is_some() {
        return Err(Conflict::AlreadyRevoked.into());
    }
    // The `revoked_at IS NULL` guard makes a concurrent second revocation a conflict too.
    let updated =
        sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(micros(now))
            .bind(id)
            .execute(&mut **tx)
            .await?;
    if updated.rows_affected() == 0 {
        return Err(Conflict::AlreadyRevoked.into());
    }
    let details = json!({ "user_id": token_before.user_id, "name": token_before.name });
    audit(tx, actor, now, "token.revoke", "token", id, details).await?;
    token(tx, id).await
}

fn token_from_row(row: &Row) -> Result<ApiToken> {
    Ok(ApiToken {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        created_at: timestamp(row.try_get("created_at")?)?,
        revoked_at: optional_timestamp(row.try_get("revoked_at")?)?,
    })
}

// ---------------------------------------------------------------------------------------------
// Environments

pub(crate) async fn create_environment(
    tx: &mut Tx,
    name: &str,
    peer_approval: bool,
    actor: Actor,
    now: Timestamp,
) -> Result<Environment> {
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO environments (name, peer_approval, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO NOTHING RETURNING id",
    )
    .bind(name)
    .bind(peer_approval)
    .bind(micros(now))
    .fetch_optional(&mut **tx)
    .await?;
    let Some(id) = id else {
        return Err(Conflict::EnvironmentExists.into());
    };
    let details = json!({ "name": name, "peer_approval": peer_approval });
    audit(
        tx,
        actor,
        now,
        "environment.create",
        "environment",
        id,
        details,
    )
    .await?;
    environment(tx, name).await
}

pub(crate) async fn environment(tx: &mut Tx, name: &str) -> Result<Environment> {
    let row = sqlx::query(concat!(environment_select!(), " WHERE name = $1"))
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?;
    match row {
        Some(row) => environment_from_row(&row),
        None => Err(StoreError::not_found("environment", name)),
    }
}

pub(crate) async fn list_environments(tx: &mut Tx) -> Result<Vec<Environment>> {
    let rows = sqlx::query(concat!(environment_select!(), " ORDER BY id"))
        .fetch_all(&mut **tx)
        .await?;
    rows.iter().map(environment_from_row).collect()
}

/// The environment, locked against concurrent changes of what it publishes.
async fn lock_environment(tx: &mut Tx, name: &str) -> Result<Environment> {
    let row = sqlx::query(for_update!(
        "SELECT id, name, peer_approval, created_at FROM environments WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(&mut **tx)
    .await?;
    match row {
        Some(row) => environment_from_row(&row),
        None => Err(StoreError::not_found("environment", name)),
    }
}

fn environment_from_row(row: &Row) -> Result<Environment> {
    Ok(Environment {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        peer_approval: row.try_get("peer_approval")?,
        created_at: timestamp(row.try_get("created_at")?)?,
    })
}

/// Every environment is told: signing keys are shared by all of them.
async fn notify_all(tx: &mut Tx) -> Result<()> {
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM environments ORDER BY id")
        .fetch_all(&mut **tx)
        .await?;
    for name in names {
        notify(tx, &name).await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Recipes and revisions

/// A recipe row and its environment, both locked (see the module docs).
struct LockedRecipe {
    id: i64,
    kind: Kind,
    environment: Environment,
    latest_revision_id: i64,
    approved_revision_id: Option<i64>,
    enabled: bool,
}

async fn lock_recipe(tx: &mut Tx, recipe_id: i64) -> Result<LockedRecipe> {
    let environment_name: Option<String> = sqlx::query_scalar(
        "SELECT e.name FROM recipes r JOIN environments e ON e.id = r.environment_id \
         WHERE r.id = $1",
    )
    .bind(recipe_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(environment_name) = environment_name else {
        return Err(StoreError::not_found("recipe", recipe_id));
    };
    let environment = lock_environment(tx, &environment_name).await?;
    let row = sqlx::query(for_update!(
        "SELECT id, kind, latest_revision_id, approved_revision_id, enabled FROM recipes \
         WHERE id = $1"
    ))
    .bind(recipe_id)
    .fetch_one(&mut **tx)
    .await?;
    let latest_revision_id: Option<i64> = row.try_get("latest_revision_id")?;
    Ok(LockedRecipe {
        id: row.try_get("id")?,
        kind: parse_kind(row.try_get("kind")?)?,
        environment,
        latest_revision_id: latest_revision_id.ok_or_else(|| missing_revision(recipe_id))?,
        approved_revision_id: row.try_get("approved_revision_id")?,
        enabled: row.try_get("enabled")?,
    })
}

fn missing_revision(recipe_id: i64) -> StoreError {
    StoreError::Corrupt {
        what: "recipe",
        detail: format!("recipe {recipe_id} has no revision"),
    }
}

pub(crate) async fn create_recipe(
    tx: &mut Tx,
    kind: Kind,
    environment_name: &str,
    data: &Value,
    comment: &str,
    actor: Actor,
    now: Timestamp,
) -> Result<(Recipe, Revision)> {
    let environment = environment(tx, environment_name).await?;
    let recipe_id: i64 = sqlx::query_scalar(
        "INSERT INTO recipes (kind, environment_id, enabled, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $4) RETURNING id",
    )
    .bind(kind.as_str())
    .bind(environment.id)
    .bind(false)
    .bind(micros(now))
    .fetch_one(&mut **tx)
    .await?;
    let revision_id = insert_revision(tx, recipe_id, None, data, comment, actor, now).await?;
    sqlx::query("UPDATE recipes SET latest_revision_id = $1 WHERE id = $2")
        .bind(revision_id)
        .bind(recipe_id)
        .execute(&mut **tx)
        .await?;
    let details = json!({
        "kind": kind.as_str(),
        "environment": environment.name,
        "revision_id": revision_id,
        "comment": comment,
    });
    audit(
        tx,
        actor,
        now,
        "recipe.create",
        "recipe",
        recipe_id,
        details,
    )
    .await?;
    Ok((
        recipe(tx, recipe_id).await?,
        revision(tx, revision_id).await?,
    ))
}

async fn insert_revision(
    tx: &mut Tx,
    recipe_id: i64,
    parent_id: Option<i64>,
    data: &Value,
    comment: &str,
    actor: Actor,
    now: Timestamp,
) -> Result<i64> {
    let id = sqlx::query_scalar(
        "INSERT INTO revisions (recipe_id, parent_id, data, comment, author_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(recipe_id)
    .bind(parent_id)
    .bind(json_text(data)?)
    .bind(comment)
    .bind(actor.user_id())
    .bind(micros(now))
    .fetch_one(&mut **tx)
    .await?;
    Ok(id)
}

pub(crate) async fn update_recipe(
    tx: &mut Tx,
    recipe_id: i64,
    data: &Value,
    comment: &str,
    actor: Actor,
    now: Timestamp,
) -> Result<(Recipe, Revision, bool)> {
    let locked = lock_recipe(tx, recipe_id).await?;
    let latest = revision(tx, locked.latest_revision_id).await?;
    if same_json(&latest.data, data) {
        return Ok((recipe(tx, recipe_id).await?, latest, false));
    }
    // A pending request asked about data that is no longer the latest.
    let closed_request: Option<i64> = sqlx::query_scalar(
        "DELETE FROM approval_requests WHERE revision_id = $1 AND state = 'pending' RETURNING id",
    )
    .bind(latest.id)
    .fetch_optional(&mut **tx)
    .await?;
    let revision_id =
        insert_revision(tx, recipe_id, Some(latest.id), data, comment, actor, now).await?;
    sqlx::query("UPDATE recipes SET latest_revision_id = $1, updated_at = $2 WHERE id = $3")
        .bind(revision_id)
        .bind(micros(now))
        .bind(recipe_id)
        .execute(&mut **tx)
        .await?;
    let details = json!({
        "revision_id": revision_id,
        "parent_id": latest.id,
        "comment": comment,
        "closed_approval_request_id": closed_request,
    });
    audit(
        tx,
        actor,
        now,
        "recipe.update",
        "recipe",
        recipe_id,
        details,
    )
    .await?;
    Ok((
        recipe(tx, recipe_id).await?,
        revision(tx, revision_id).await?,
        true,
    ))
}

pub(crate) async fn recipe(tx: &mut Tx, id: i64) -> Result<Recipe> {
    let row = sqlx::query(concat!(recipe_select!(), " WHERE r.id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    match row {
        Some(row) => recipe_from_row(&row),
        None => Err(StoreError::not_found("recipe", id)),
    }
}

pub(crate) async fn list_recipes(tx: &mut Tx, filter: &RecipeFilter) -> Result<Vec<Recipe>> {
    let rows = sqlx::query(concat!(
        recipe_select!(),
        " WHERE ($1 IS NULL OR e.name = $1) AND ($2 IS NULL OR r.kind = $2) \
         AND ($3 IS NULL OR r.enabled = $3) ORDER BY r.id LIMIT $4"
    ))
    .bind(filter.environment.as_deref())
    .bind(filter.kind.map(Kind::as_str))
    .bind(filter.enabled)
    .bind(limit_column(filter.limit))
    .fetch_all(&mut **tx)
    .await?;
    rows.iter().map(recipe_from_row).collect()
}

fn recipe_from_row(row: &Row) -> Result<Recipe> {
    let id = row.try_get("id")?;
    let latest_revision_id: Option<i64> = row.try_get("latest_revision_id")?;
    Ok(Recipe {
        id,
        kind: parse_kind(row.try_get("kind")?)?,
        environment: row.try_get("environment")?,
        latest_revision_id: latest_revision_id.ok_or_else(|| missing_revision(id))?,
        approved_revision_id: row.try_get("approved_revision_id")?,
        enabled: row.try_get("enabled")?,
        created_at: timestamp(row.try_get("created_at")?)?,
        updated_at: timestamp(row.try_get("updated_at")?)?,
    })
}

pub(crate) async fn revision(tx: &mut Tx, id: i64) -> Result<Revision> {
    let row = sqlx::query(concat!(revision_select!(), " WHERE rv.id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    match row {
        Some(row) => revision_from_row(&row),
        None => Err(StoreError::not_found("revision", id)),
    }
}

pub(crate) async fn list_revisions(tx: &mut Tx, filter: &RevisionFilter) -> Result<Vec<Revision>> {
    let rows = sqlx::query(concat!(
        revision_select!(),
        " WHERE ($1 IS NULL OR rv.recipe_id = $1) AND ($2 IS NULL OR rv.recipe_id IN \
         (SELECT r.id FROM recipes r JOIN environments e ON e.id = r.environment_id \
         WHERE e.name = $2)) ORDER BY rv.id DESC LIMIT $3"
    ))
    .bind(filter.recipe_id)
    .bind(filter.environment.as_deref())
    .bind(limit_column(filter.limit))
    .fetch_all(&mut **tx)
    .await?;
    rows.iter().map(revision_from_row).collect()
}

pub(crate) async fn history(tx: &mut Tx, recipe_id: i64) -> Result<Vec<Revision>> {
    recipe(tx, recipe_id).await?;
    let filter = RevisionFilter {
        recipe_id: Some(recipe_id),
        ..RevisionFilter::default()
    };
    list_revisions(tx, &filter).await
}

fn revision_from_row(row: &Row) -> Result<Revision> {
    Ok(Revision {
        id: row.try_get("id")?,
        recipe_id: row.try_get("recipe_id")?,
        parent_id: row.try_get("parent_id")?,
        data: parse_json(row.try_get("data")?)?,
        comment: row.try_get("comment")?,
        author_id: row.try_get("author_id")?,
        author: row.try_get("author")?,
        created_at: timestamp(row.try_get("created_at")?)?,
        approval_request: approval_from_row(row)?,
    })
}

// ---------------------------------------------------------------------------------------------
// Approval

pub(crate) async fn request_approval(
    tx: &mut Tx,
    revision_id: i64,
    actor: Actor,
    now: Timestamp,
) -> Result<ApprovalRequest> {
    let recipe_id: Option<i64> =
        sqlx::query_scalar("SELECT recipe_id FROM revisions WHERE id = $1")
            .bind(revision_id)
            .fetch_optional(&mut **tx)
            .await?;
    let Some(recipe_id) = recipe_id else {
        return Err(StoreError::not_found("revision", revision_id));
    };
    let locked = lock_recipe(tx, recipe_id).await?;
    if locked.latest_revision_id != revision_id {
        return Err(Conflict::NotLatestRevision.into());
    }
    let existing: Option<String> =
        sqlx::query_scalar("SELECT state FROM approval_requests WHERE revision_id = $1")
            .bind(revision_id)
            .fetch_optional(&mut **tx)
            .await?;
    match existing.as_deref().map(parse_approval_state).transpose()? {
        Some(ApprovalState::Rejected) => return Err(Conflict::RejectedNeedsEdit.into()),
        Some(ApprovalState::Pending | ApprovalState::Approved) => {
            return Err(Conflict::ApprovalExists.into());
        }
        None => (),
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO approval_requests (revision_id, recipe_id, creator_id, state, created_at) \
         VALUES ($1, $2, $3, 'pending', $4) RETURNING id",
    )
    .bind(revision_id)
    .bind(recipe_id)
    .bind(actor.user_id())
    .bind(micros(now))
    .fetch_one(&mut **tx)
    .await?;
    let details = json!({ "approval_request_id": id, "revision_id": revision_id });
    audit(
        tx,
        actor,
        now,
        "approval.request",
        "recipe",
        recipe_id,
        details,
    )
    .await?;
    approval_request(tx, id).await
}

pub(crate) async fn approval_request(tx: &mut Tx, id: i64) -> Result<ApprovalRequest> {
    let row = sqlx::query(concat!(approval_select!(), " WHERE ar.id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    let request = row.as_ref().map(approval_from_row).transpose()?.flatten();
    request.ok_or_else(|| StoreError::not_found("approval request", id))
}

pub(crate) async fn list_approval_requests(
    tx: &mut Tx,
    filter: &ApprovalRequestFilter,
) -> Result<Vec<ApprovalRequest>> {
    let rows = sqlx::query(concat!(
        approval_select!(),
        " WHERE ($1 IS NULL OR ar.recipe_id = $1) AND ($2 IS NULL OR ar.state = $2) \
         AND ($3 IS NULL OR ar.recipe_id IN (SELECT r.id FROM recipes r \
         JOIN environments e ON e.id = r.environment_id WHERE e.name = $3)) \
         ORDER BY ar.id DESC LIMIT $4"
    ))
    .bind(filter.recipe_id)
    .bind(filter.state.map(ApprovalState::as_str))
    .bind(filter.environment.as_deref())
    .bind(limit_column(filter.limit))
    .fetch_all(&mut **tx)
    .await?;
    let mut requests = Vec::with_capacity(rows.len());
    for row in &rows {
        requests.extend(approval_from_row(row)?);
    }
    Ok(requests)
}

/// The pending request `id` with its recipe locked: what approve, reject and close act on.
async fn lock_pending_request(tx: &mut Tx, id: i64) -> Result<(ApprovalRequest, LockedRecipe)> {
    let request = approval_request(tx, id).await?;
    let locked = lock_recipe(tx, request.recipe_id).await?;
    // Read again under the lock: a concurrent decision may have committed meanwhile.
    let request = approval_request(tx, id).await?;
    if request.state != ApprovalState::Pending {
        return Err(Conflict::NotPending.into());
    }
    Ok((request, locked))
}

pub(crate) async fn approve(
    tx: &mut Tx,
    id: i64,
    comment: &str,
    actor: Actor,
    now: Timestamp,
) -> Result<ApprovalRequest> {
    let (request, locked) = lock_pending_request(tx, id).await?;
    let revision = revision(tx, request.revision_id).await?;
    if locked.environment.peer_approval
        && (actor.user_id() == revision.author_id || actor.user_id() == request.creator_id)
    {
        return Err(Conflict::SelfApproval.into());
    }
    if locked.enabled {
        check_rollout_conflict(tx, &locked, &revision.data).await?;
    }
    sqlx::query(
        "UPDATE approval_requests SET state = 'approved', approver_id = $1, comment = $2, \
         decided_at = $3 WHERE id = $4",
    )
    .bind(actor.user_id())
    .bind(comment)
    .bind(micros(now))
    .bind(id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE recipes SET approved_revision_id = $1, updated_at = $2 WHERE id = $3")
        .bind(revision.id)
        .bind(micros(now))
        .bind(locked.id)
        .execute(&mut **tx)
        .await?;
    let mut carried_over = None;
    if locked.enabled {
        let previous: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM enabled_states WHERE recipe_id = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(locked.id)
        .fetch_optional(&mut **tx)
        .await?;
        let state_id =
            insert_enabled_state(tx, &locked, revision.id, true, previous, actor, now).await?;
        carried_over = Some(state_id);
    }
    let details = json!({
        "approval_request_id": id,
        "revision_id": revision.id,
        "comment": comment,
        "enabled_state_id": carried_over,
    });
    audit(
        tx,
        actor,
        now,
        "approval.approve",
        "recipe",
        locked.id,
        details,
    )
    .await?;
    notify(tx, &locked.environment.name).await?;
    approval_request(tx, id).await
}

pub(crate) async fn reject(
    tx: &mut Tx,
    id: i64,
    comment: &str,
    actor: Actor,
    now: Timestamp,
) -> Result<ApprovalRequest> {
    let (request, locked) = lock_pending_request(tx, id).await?;
    sqlx::query(
        "UPDATE approval_requests SET state = 'rejected', approver_id = $1, comment = $2, \
         decided_at = $3 WHERE id = $4",
    )
    .bind(actor.user_id())
    .bind(comment)
    .bind(micros(now))
    .bind(id)
    .execute(&mut **tx)
    .await?;
    let details = json!({
        "approval_request_id": id,
        "revision_id": request.revision_id,
        "comment": comment,
    });
    audit(
        tx,
        actor,
        now,
        "approval.reject",
        "recipe",
        locked.id,
        details,
    )
    .await?;
    approval_request(tx, id).await
}

pub(crate) async fn close(
    tx: &mut Tx,
    id: i64,
    actor: Actor,
    now: Timestamp,
) -> Result<ApprovalRequest> {
    let (request, locked) = lock_pending_request(tx, id).await?;
    sqlx::query("DELETE FROM approval_requests WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    let details = json!({ "approval_request_id": id, "revision_id": request.revision_id });
    audit(
        tx,
        actor,
        now,
        "approval.close",
        "recipe",
        locked.id,
        details,
    )
    .await?;
    Ok(request)
}

/// The approval request in a row of `approval_select!` or `revision_select!`; `None` when the
/// revision has none.
fn approval_from_row(row: &Row) -> Result<Option<ApprovalRequest>> {
    let id: Option<i64> = row.try_get("ar_id")?;
    let Some(id) = id else {
        return Ok(None);
    };
    Ok(Some(ApprovalRequest {
        id,
        revision_id: row.try_get("ar_revision_id")?,
        recipe_id: row.try_get("ar_recipe_id")?,
        creator_id: row.try_get("ar_creator_id")?,
        creator: row.try_get("ar_creator")?,
        state: parse_approval_state(row.try_get("ar_state")?)?,
        approver_id: row.try_get("ar_approver_id")?,
        approver: row.try_get("ar_approver")?,
        comment: row.try_get("ar_comment")?,
        created_at: timestamp(row.try_get("ar_created_at")?)?,
        decided_at: optional_timestamp(row.try_get("ar_decided_at")?)?,
    }))
}

// ---------------------------------------------------------------------------------------------
// Enabled state

pub(crate) async fn set_enabled(
    tx: &mut Tx,
    recipe_id: i64,
    enabled: bool,
    actor: Actor,
    now: Timestamp,
) -> Result<Recipe> {
    let locked = lock_recipe(tx, recipe_id).await?;
    let Some(approved_revision_id) = locked.approved_revision_id else {
        return Err(Conflict::NotApproved.into());
    };
    match (locked.enabled, enabled) {
        (true, true) => return Err(Conflict::AlreadyEnabled.into()),
        (false, false) => return Err(Conflict::AlreadyDisabled.into()),
        _ => (),
    }
    if enabled {
        let approved = revision(tx, approved_revision_id).await?;
        check_rollout_conflict(tx, &locked, &approved.data).await?;
    }
    sqlx::query("UPDATE recipes SET enabled = $1, updated_at = $2 WHERE id = $3")
        .bind(enabled)
        .bind(micros(now))
        .bind(recipe_id)
        .execute(&mut **tx)
        .await?;
    let state_id =
        insert_enabled_state(tx, &locked, approved_revision_id, enabled, None, actor, now).await?;
    let action = if enabled {
        "recipe.enable"
    } else {
        "recipe.disable"
    };
    let details = json!({ "revision_id": approved_revision_id, "enabled_state_id": state_id });
    audit(tx, actor, now, action, "recipe", recipe_id, details).await?;
    notify(tx, &locked.environment.name).await?;
    recipe(tx, recipe_id).await
}

async fn insert_enabled_state(
    tx: &mut Tx,
    locked: &LockedRecipe,
    revision_id: i64,
    enabled: bool,
    carryover_from: Option<i64>,
    actor: Actor,
    now: Timestamp,
) -> Result<i64> {
    let id = sqlx::query_scalar(
        "INSERT INTO enabled_states \
         (recipe_id, revision_id, enabled, creator_id, created_at, carryover_from) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(locked.id)
    .bind(revision_id)
    .bind(enabled)
    .bind(actor.user_id())
    .bind(micros(now))
    .bind(carryover_from)
    .fetch_one(&mut **tx)
    .await?;
    Ok(id)
}

pub(crate) async fn enabled_states(tx: &mut Tx, recipe_id: i64) -> Result<Vec<EnabledState>> {
    recipe(tx, recipe_id).await?;
    let rows = sqlx::query(concat!(
        enabled_state_select!(),
        " WHERE s.recipe_id = $1 ORDER BY s.id DESC"
    ))
    .bind(recipe_id)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(EnabledState {
                id: row.try_get("id")?,
                recipe_id: row.try_get("recipe_id")?,
                revision_id: row.try_get("revision_id")?,
                enabled: row.try_get("enabled")?,
                creator_id: row.try_get("creator_id")?,
                creator: row.try_get("creator")?,
                created_at: timestamp(row.try_get("created_at")?)?,
                carryover_from: row.try_get("carryover_from")?,
            })
        })
        .collect()
}

/// Which side of a rollout/rollback pair a Normandy recipe is, and the rollout slug.
enum RolloutLink<'a> {
    Rollout(&'a str),
    Rollback(&'a str),
}

fn rollout_link(data: &Value) -> Option<RolloutLink<'_>> {
    let arguments = data.get("arguments")?;
    match data.get("action")?.as_str()? {
        "preference-rollout" => Some(RolloutLink::Rollout(arguments.get("slug")?.as_str()?)),
        "preference-rollback" => Some(RolloutLink::Rollback(
            arguments.get("rolloutSlug")?.as_str()?,
        )),
        _ => None,
    }
}

/// Refuses to have a rollback and the rollout it names enabled at once in one environment.
/// The environment is locked, so no concurrent enable can slip between check and write.
async fn check_rollout_conflict(tx: &mut Tx, locked: &LockedRecipe, data: &Value) -> Result<()> {
    if locked.kind != Kind::Normandy {
        return Ok(());
    }
    let Some(link) = rollout_link(data) else {
        return Ok(());
    };
    let others: Vec<String> = sqlx::query_scalar(
        "SELECT rv.data FROM recipes r JOIN revisions rv ON rv.id = r.approved_revision_id \
         WHERE r.environment_id = $1 AND r.enabled AND r.kind = $2 AND r.id <> $3",
    )
    .bind(locked.environment.id)
    .bind(Kind::Normandy.as_str())
    .bind(locked.id)
    .fetch_all(&mut **tx)
    .await?;
    for other in others {
        let other = parse_json(&other)?;
        let conflicting = match (&link, rollout_link(&other)) {
            (RolloutLink::Rollout(slug), Some(RolloutLink::Rollback(other_slug)))
            | (RolloutLink::Rollback(slug), Some(RolloutLink::Rollout(other_slug))) => {
                *slug == other_slug
            }
            _ => false,
        };
        if conflicting {
            return Err(Conflict::RolloutConflict.into());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Publishing

pub(crate) async fn published_items(
    tx: &mut Tx,
    environment_name: &str,
) -> Result<Vec<PublishedItem>> {
    let environment = environment(tx, environment_name).await?;
    let rows = sqlx::query(
        "SELECT r.id AS recipe_id, rv.id AS revision_id, r.kind, rv.data \
         FROM recipes r JOIN revisions rv ON rv.id = r.approved_revision_id \
         WHERE r.environment_id = $1 AND r.enabled ORDER BY r.id",
    )
    .bind(environment.id)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(PublishedItem {
                recipe_id: row.try_get("recipe_id")?,
                revision_id: row.try_get("revision_id")?,
                kind: parse_kind(row.try_get("kind")?)?,
                data: parse_json(row.try_get("data")?)?,
            })
        })
        .collect()
}

pub(crate) async fn publish(
    tx: &mut Tx,
    environment_name: &str,
    now: Timestamp,
    content_hash: &ContentHasher,
) -> Result<PublishState> {
    // Writers that change what is published lock the environment row first; holding it, this
    // reads a state no concurrent write is halfway through, and publishes it in turn.
    lock_environment(tx, environment_name).await?;
    let items = published_items(tx, environment_name).await?;
    let signing_keys = signing_keys(tx).await?;
    let hash = content_hash(&items, &signing_keys);
    let publication = publication(tx, environment_name, &hash, now).await?;
    Ok(PublishState {
        items,
        signing_keys,
        publication,
    })
}

pub(crate) async fn publication(
    tx: &mut Tx,
    environment_name: &str,
    content_hash: &str,
    now: Timestamp,
) -> Result<Publication> {
    // The lock makes nodes publishing at once take turns: the second sees the first's row.
    let environment = lock_environment(tx, environment_name).await?;
    let last = sqlx::query(
        "SELECT serial, published_at, content_hash FROM publications \
         WHERE environment_id = $1 ORDER BY serial DESC LIMIT 1",
    )
    .bind(environment.id)
    .fetch_optional(&mut **tx)
    .await?;
    let mut serial = 1;
    if let Some(last) = last {
        let last = Publication {
            serial: last.try_get("serial")?,
            published_at: timestamp(last.try_get("published_at")?)?,
            content_hash: last.try_get("content_hash")?,
        };
        if last.content_hash == content_hash {
            return Ok(last);
        }
        serial = last.serial + 1;
    }
    sqlx::query(
        "INSERT INTO publications (environment_id, serial, published_at, content_hash) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(environment.id)
    .bind(serial)
    .bind(micros(now))
    .bind(content_hash)
    .execute(&mut **tx)
    .await?;
    Ok(Publication {
        serial,
        published_at: timestamp(micros(now))?,
        content_hash: content_hash.to_owned(),
    })
}

// ---------------------------------------------------------------------------------------------
// Signing keys

pub(crate) async fn signing_keys(tx: &mut Tx) -> Result<Vec<SigningKeyRecord>> {
    let rows = sqlx::query(concat!(signing_key_select!(), " ORDER BY id"))
        .fetch_all(&mut **tx)
        .await?;
    rows.iter().map(signing_key_from_row).collect()
}

async fn signing_key(tx: &mut Tx, key_id: &str) -> Result<Option<SigningKeyRecord>> {
    let row = sqlx::query(concat!(signing_key_select!(), " WHERE key_id = $1"))
        .bind(key_id)
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(signing_key_from_row).transpose()
}

/// Serialises key changes on PostgreSQL, so two rotations cannot both leave an active key.
async fn lock_signing_keys(tx: &mut Tx) -> Result<()> {
    if POSTGRES {
        sqlx::query("LOCK TABLE signing_keys IN EXCLUSIVE MODE")
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

async fn retire_active_key(tx: &mut Tx, now: Timestamp) -> Result<()> {
    sqlx::query("UPDATE signing_keys SET active = $1, retired_at = $2 WHERE active")
        .bind(false)
        .bind(micros(now))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(crate) async fn add_signing_key(
    tx: &mut Tx,
    key: &NewSigningKey,
    activate: bool,
    actor: Actor,
    now: Timestamp,
) -> Result<SigningKeyRecord> {
    lock_signing_keys(tx).await?;
    if signing_key(tx, &key.key_id).await?.is_some() {
        return Err(Conflict::SigningKeyExists.into());
    }
    if activate {
        retire_active_key(tx, now).await?;
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO signing_keys (key_id, private_key_pem, public_key_pem, created_at, active) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(&key.key_id)
    .bind(&key.private_key_pem)
    .bind(&key.public_key_pem)
    .bind(micros(now))
    .bind(activate)
    .fetch_one(&mut **tx)
    .await?;
    let details = json!({ "key_id": key.key_id, "active": activate });
    audit(
        tx,
        actor,
        now,
        "signing_key.add",
        "signing_key",
        id,
        details,
    )
    .await?;
    notify_all(tx).await?;
    signing_key(tx, &key.key_id)
        .await?
        .ok_or_else(|| StoreError::not_found("signing key", &key.key_id))
}

pub(crate) async fn activate_signing_key(
    tx: &mut Tx,
    key_id: &str,
    actor: Actor,
    now: Timestamp,
) -> Result<SigningKeyRecord> {
    lock_signing_keys(tx).await?;
    let Some(key) = signing_key(tx, key_id).await? else {
        return Err(StoreError::not_found("signing key", key_id));
    };
    if key.active {
        return Ok(key);
    }
    retire_active_key(tx, now).await?;
    sqlx::query("UPDATE signing_keys SET active = $1, retired_at = NULL WHERE id = $2")
        .bind(true)
        .bind(key.id)
        .execute(&mut **tx)
        .await?;
    let details = json!({ "key_id": key_id });
    audit(
        tx,
        actor,
        now,
        "signing_key.activate",
        "signing_key",
        key.id,
        details,
    )
    .await?;
    notify_all(tx).await?;
    signing_key(tx, key_id)
        .await?
        .ok_or_else(|| StoreError::not_found("signing key", key_id))
}

fn signing_key_from_row(row: &Row) -> Result<SigningKeyRecord> {
    Ok(SigningKeyRecord {
        id: row.try_get("id")?,
        key_id: row.try_get("key_id")?,
        private_key_pem: row.try_get("private_key_pem")?,
        public_key_pem: row.try_get("public_key_pem")?,
        created_at: timestamp(row.try_get("created_at")?)?,
        active: row.try_get("active")?,
        retired_at: optional_timestamp(row.try_get("retired_at")?)?,
    })
}

// ---------------------------------------------------------------------------------------------
// Audit

async fn audit(
    tx: &mut Tx,
    actor: Actor,
    now: Timestamp,
    action: &str,
    object_type: &str,
    object_id: i64,
    details: Value,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_events (created_at, actor_id, action, object_type, object_id, details) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(micros(now))
    .bind(actor.user_id())
    .bind(action)
    .bind(object_type)
    .bind(object_id)
    .bind(json_text(&details)?)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) async fn audit_events(tx: &mut Tx, filter: &AuditFilter) -> Result<Vec<AuditEvent>> {
    let rows = sqlx::query(
        "SELECT a.id, a.created_at, a.actor_id, u.username AS actor, a.action, a.object_type, \
         a.object_id, a.details FROM audit_events a LEFT JOIN users u ON u.id = a.actor_id \
         WHERE ($1 IS NULL OR a.object_type = $1) AND ($2 IS NULL OR a.object_id = $2) \
         AND ($3 IS NULL OR a.actor_id = $3) AND ($4 IS NULL OR a.action = $4) \
         AND ($5 IS NULL OR a.created_at >= $5) AND ($6 IS NULL OR a.created_at < $6) \
         ORDER BY a.id DESC LIMIT $7",
    )
    .bind(filter.object_type.as_deref())
    .bind(filter.object_id)
    .bind(filter.actor_id)
    .bind(filter.action.as_deref())
    .bind(filter.since.map(micros))
    .bind(filter.until.map(micros))
    .bind(limit_column(filter.limit))
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(AuditEvent {
                id: row.try_get("id")?,
                at: timestamp(row.try_get("created_at")?)?,
                actor_id: row.try_get("actor_id")?,
                actor: row.try_get("actor")?,
                action: row.try_get("action")?,
                object_type: row.try_get("object_type")?,
                object_id: row.try_get("object_id")?,
                details: parse_json(row.try_get("details")?)?,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Telemetry

/// The key of one enrollment count.
type CountKey<'a> = (String, &'a str, &'a str, &'a str, &'a str);

pub(crate) async fn ingest(
    tx: &mut Tx,
    client_id: &str,
    events: &[IngestEvent],
    now: Timestamp,
) -> Result<IngestOutcome> {
    // Events are inserted in sequence order and counts updated in key order, so concurrent
    // uploads on PostgreSQL take their row locks in one global order and cannot deadlock.
    // Within a batch, as across batches, the first event with a sequence number wins.
    let mut by_seq: BTreeMap<u64, &IngestEvent> = BTreeMap::new();
    let mut duplicates = 0;
    for event in events {
        match by_seq.entry(event.seq) {
            Entry::Vacant(entry) => {
                entry.insert(event);
            }
            Entry::Occupied(_) => duplicates += 1,
        }
    }
    let mut accepted = 0;
    let mut counts: BTreeMap<CountKey<'_>, i64> = BTreeMap::new();
    for (seq, event) in by_seq {
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO telemetry_events \
             (client_id, seq, occurred_at, method, object, value, extra, received_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (client_id, seq) DO NOTHING RETURNING id",
        )
        .bind(client_id)
        .bind(seq_column(seq))
        .bind(micros(event.timestamp))
        .bind(&event.method)
        .bind(&event.object)
        .bind(&event.value)
        .bind(
            serde_json::to_string(&event.extra).map_err(|err| StoreError::Corrupt {
                what: "event extra",
                detail: err.to_string(),
            })?,
        )
        .bind(micros(now))
        .fetch_optional(&mut **tx)
        .await?;
        if inserted.is_none() {
            duplicates += 1;
            continue;
        }
        accepted += 1;
        let branch = event.extra.get("branch").map_or("", String::as_str);
        let key = (
            utc_day(event.timestamp),
            event.object.as_str(),
            event.value.as_str(),
            branch,
            event.method.as_str(),
        );
        *counts.entry(key).or_default() += 1;
    }
    for ((day, object, slug, branch, method), count) in counts {
        sqlx::query(
            "INSERT INTO enrollment_counts (day, object, slug, branch, method, count) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (day, object, slug, branch, method) \
             DO UPDATE SET count = enrollment_counts.count + excluded.count",
        )
        .bind(day)
        .bind(object)
        .bind(slug)
        .bind(branch)
        .bind(method)
        .bind(count)
        .execute(&mut **tx)
        .await?;
    }
    Ok(IngestOutcome {
        accepted,
        duplicates,
    })
}

pub(crate) async fn enrollment_counts(
    tx: &mut Tx,
    filter: &EnrollmentFilter,
) -> Result<Vec<EnrollmentCount>> {
    let rows = sqlx::query(
        "SELECT day, object, slug, branch, method, count FROM enrollment_counts \
         WHERE ($1 IS NULL OR object = $1) AND ($2 IS NULL OR slug = $2) \
         AND ($3 IS NULL OR branch = $3) AND ($4 IS NULL OR method = $4) \
         AND ($5 IS NULL OR day >= $5) AND ($6 IS NULL OR day <= $6) \
         ORDER BY day, object, slug, branch, method LIMIT $7",
    )
    .bind(filter.object.as_deref())
    .bind(filter.slug.as_deref())
    .bind(filter.branch.as_deref())
    .bind(filter.method.as_deref())
    .bind(filter.from.map(day_text))
    .bind(filter.to.map(day_text))
    .bind(limit_column(filter.limit))
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(EnrollmentCount {
                day: parse_day(row.try_get("day")?)?,
                object: row.try_get("object")?,
                slug: row.try_get("slug")?,
                branch: row.try_get("branch")?,
                method: row.try_get("method")?,
                count: row.try_get("count")?,
            })
        })
        .collect()
}
