//! Environments, signing keys and the audit log.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use flightdeck_store::{AuditFilter, NewSigningKey};
use jiff::Timestamp;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::extract::{Admin, JsonBody, Params, Viewer};
use super::views::{AuditEventView, EnvironmentView, SigningKeyView};
use super::{AdminState, ApiError};

/// The longest environment name.
const MAX_ENVIRONMENT_NAME_LEN: usize = 64;
/// Audit events per answer unless `limit` says otherwise.
const DEFAULT_AUDIT_LIMIT: u32 = 100;
/// The largest `limit` of an audit query.
const MAX_AUDIT_LIMIT: u32 = 10_000;

/// A new environment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEnvironment {
    /// Unique name: lowercase letters, digits, `-` and `_`, starting with a letter or digit,
    /// at most 64 characters (clients send it as `?environment=NAME`).
    pub name: String,
    /// Whether an approver may not approve their own revision (default true; `false` is
    /// Normandy's staging setting).
    #[serde(default = "default_peer_approval", alias = "peerApproval")]
    pub peer_approval: bool,
}

fn default_peer_approval() -> bool {
    true
}

/// Why `name` is not acceptable as an environment name.
fn environment_name_problem(name: &str) -> Option<String> {
    let valid = !name.is_empty()
        && name.len() <= MAX_ENVIRONMENT_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (!valid).then(|| {
        format!(
            "an environment name has 1 to {MAX_ENVIRONMENT_NAME_LEN} lowercase letters, digits, \
             `-` and `_`, and starts with a letter or digit"
        )
    })
}

/// The filters of an audit query.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only about objects of this type: `user`, `token`, `environment`, `recipe`,
    /// `signing_key`.
    pub object_type: Option<String>,
    /// Only about the object with this id.
    pub object_id: Option<i64>,
    /// Only by this user (id).
    pub actor: Option<i64>,
    /// Only this action (`recipe.create`, `approval.approve`, …).
    pub action: Option<String>,
    /// Only at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<Timestamp>,
    /// Only before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub until: Option<Timestamp>,
    /// At most this many, newest first (default 100, at most 10000).
    pub limit: Option<u32>,
}

/// Lists environments.
#[utoipa::path(
    get, path = "/api/v3/environment/", tag = "environment", operation_id = "list_environments",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every environment, `production` first", body = Vec<EnvironmentView>),
        (status = "4XX", description = "Not authorised", body = ErrorBody),
    )
)]
async fn list_environments(
    State(state): State<AdminState>,
    _caller: Viewer,
) -> Result<Json<Vec<EnvironmentView>>, ApiError> {
    let environments = state.store.list_environments().await?;
    Ok(Json(environments.into_iter().map(Into::into).collect()))
}

/// Creates an environment (admin role). 409 `environment_exists`.
#[utoipa::path(
    post, path = "/api/v3/environment/", tag = "environment", operation_id = "create_environment",
    request_body = NewEnvironment,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new environment", body = EnvironmentView),
        (status = "4XX", description = "Not authorised, invalid, or the name is taken", body = ErrorBody),
    )
)]
async fn create_environment(
    State(state): State<AdminState>,
    caller: Admin,
    JsonBody(new): JsonBody<NewEnvironment>,
) -> Result<(StatusCode, Json<EnvironmentView>), ApiError> {
    if let Some(problem) = environment_name_problem(&new.name) {
        return Err(ApiError::field("name", problem));
    }
    let environment = state
        .store
        .create_environment(&new.name, new.peer_approval, caller.actor(), state.now())
        .await?;
    // A new environment publishes (empty) documents from now on.
    state.hooks.changed(Some(&environment.name)).await;
    Ok((StatusCode::CREATED, Json(environment.into())))
}

/// Lists the signing keys' public halves.
#[utoipa::path(
    get, path = "/api/v3/signing_key/", tag = "signing_key", operation_id = "list_signing_keys",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every signing key, without private keys", body = Vec<SigningKeyView>),
        (status = "4XX", description = "Not authorised", body = ErrorBody),
    )
)]
async fn list_signing_keys(
    State(state): State<AdminState>,
    _caller: Viewer,
) -> Result<Json<Vec<SigningKeyView>>, ApiError> {
    let keys = state.store.signing_keys().await?;
    Ok(Json(keys.into_iter().map(Into::into).collect()))
}

/// Makes a new P-384 signing key and makes it the active one (admin role); the previous key
/// is retired but still published, so clients keep verifying what it signed.
#[utoipa::path(
    post, path = "/api/v3/signing_key/rotate/", tag = "signing_key", operation_id = "rotate_signing_key",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new active key (public half)", body = SigningKeyView),
        (status = "4XX", description = "Not authorised", body = ErrorBody),
    )
)]
async fn rotate_signing_key(
    State(state): State<AdminState>,
    caller: Admin,
) -> Result<(StatusCode, Json<SigningKeyView>), ApiError> {
    let new_key = generate_key()?;
    let record = state
        .store
        .add_signing_key(&new_key, true, caller.actor(), state.now())
        .await?;
    state.hooks.changed(None).await;
    Ok((StatusCode::CREATED, Json(record.into())))
}

fn generate_key() -> Result<NewSigningKey, ApiError> {
    super::bootstrap::new_signing_key().map_err(|error| {
        tracing::error!(%error, "cannot make a signing key");
        ApiError::Internal
    })
}

/// Reads the audit log, newest first.
#[utoipa::path(
    get, path = "/api/v3/audit/", tag = "audit", operation_id = "list_audit_events",
    params(AuditQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Audit events, newest first", body = Vec<AuditEventView>),
        (status = "4XX", description = "Not authorised, or a bad filter", body = ErrorBody),
    )
)]
async fn list_audit_events(
    State(state): State<AdminState>,
    _caller: Viewer,
    Params(query): Params<AuditQuery>,
) -> Result<Json<Vec<AuditEventView>>, ApiError> {
    let events = state
        .store
        .audit_events(&AuditFilter {
            object_type: query.object_type,
            object_id: query.object_id,
            actor_id: query.actor,
            action: query.action,
            since: query.since,
            until: query.until,
            limit: Some(
                query
                    .limit
                    .unwrap_or(DEFAULT_AUDIT_LIMIT)
                    .clamp(1, MAX_AUDIT_LIMIT),
            ),
        })
        .await?;
    Ok(Json(events.into_iter().map(Into::into).collect()))
}

/// The environment, signing key and audit routes.
pub(super) fn routes() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new()
        .routes(routes!(list_environments, create_environment))
        .routes(routes!(list_signing_keys))
        .routes(routes!(rotate_signing_key))
        .routes(routes!(list_audit_events))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_names() {
        for good in ["production", "staging", "eu-west_2", "0day"] {
            assert_eq!(environment_name_problem(good), None, "{good}");
        }
        for bad in ["", "Prod", "-x", "a b", "é", &"x".repeat(65)] {
            assert!(environment_name_problem(bad).is_some(), "{bad}");
        }
    }
}
