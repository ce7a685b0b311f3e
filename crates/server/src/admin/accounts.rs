//! Users and API tokens: `/api/v3/me/`, `/api/v3/user/…`, `/api/v3/token/…`.
//!
//! Admins manage users and make tokens; every user may list and revoke their own tokens.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use flightdeck_store::{Role, User};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::bootstrap::{self, BootstrapError};
use super::error::ErrorBody;
use super::extract::{Admin, Caller, Id, JsonBody, Params};
use super::views::{NewTokenView, TokenView, UserView};
use super::{AdminState, ApiError};
use crate::validate::FieldProblem;

/// A new user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Unique login name: 1 to 150 letters, digits and `@.+-_`.
    pub username: String,
    /// Any of `viewer`, `editor`, `approver`, `admin`.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// Changes to a user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    /// The user's roles, replacing the current ones.
    pub roles: Option<Vec<String>>,
    /// Whether the user's tokens stop working.
    pub disabled: Option<bool>,
}

/// A new token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// A label: 1 to 100 characters.
    pub name: String,
}

/// The filter of a token list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// Only this user's tokens (admins; everyone else sees only their own).
    pub user: Option<i64>,
}

fn parse_roles(names: &[String]) -> Result<Vec<Role>, ApiError> {
    let mut roles = Vec::new();
    let mut problems = Vec::new();
    for (index, name) in names.iter().enumerate() {
        match Role::parse(name) {
            Some(role) => roles.push(role),
            None => problems.push(FieldProblem {
                field: format!("roles[{index}]"),
                message: format!(
                    "unknown role `{name}`: expected viewer, editor, approver or admin"
                ),
            }),
        }
    }
    if problems.is_empty() {
        Ok(roles)
    } else {
        Err(ApiError::validation(problems))
    }
}

fn bootstrap_error(error: BootstrapError, field: &str) -> ApiError {
    match error {
        BootstrapError::Invalid(message) => ApiError::field(field, message),
        BootstrapError::Store(error) => error.into(),
        BootstrapError::Random(error) => {
            tracing::error!(%error, "cannot make a token");
            ApiError::Internal
        }
    }
}

/// The caller.
#[utoipa::path(
    get, path = "/api/v3/me/", tag = "user", operation_id = "me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user the token belongs to", body = UserView),
        (status = "4XX", description = "No usable token", body = ErrorBody),
    )
)]
async fn me(caller: Caller) -> Json<UserView> {
    Json(caller.user.into())
}

/// Lists users (admin role).
#[utoipa::path(
    get, path = "/api/v3/user/", tag = "user", operation_id = "list_users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every user", body = Vec<UserView>),
        (status = "4XX", description = "Not authorised", body = ErrorBody),
    )
)]
async fn list_users(
    State(state): State<AdminState>,
    _caller: Admin,
) -> Result<Json<Vec<UserView>>, ApiError> {
    let users = state.store.list_users().await?;
    Ok(Json(users.into_iter().map(Into::into).collect()))
}

/// Creates a user (admin role). 409 `username_taken`.
#[utoipa::path(
    post, path = "/api/v3/user/", tag = "user", operation_id = "create_user",
    request_body = NewUser,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new user", body = UserView),
        (status = "4XX", description = "Not authorised, invalid, or the name is taken", body = ErrorBody),
    )
)]
async fn create_user(
    State(state): State<AdminState>,
    caller: Admin,
    JsonBody(new): JsonBody<NewUser>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    if let Some(problem) = bootstrap::username_problem(&new.username) {
        return Err(ApiError::field("username", problem));
    }
    let roles = parse_roles(&new.roles)?;
    let user = state
        .store
        .create_user(&new.username, &roles, caller.actor(), state.now())
        .await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// Reads a user (admin role).
#[utoipa::path(
    get, path = "/api/v3/user/{id}/", tag = "user", operation_id = "read_user",
    params(("id" = i64, Path, description = "The user's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = UserView),
        (status = "4XX", description = "Not authorised, or no such user", body = ErrorBody),
    )
)]
async fn read_user(
    State(state): State<AdminState>,
    _caller: Admin,
    Id(id): Id,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(state.store.user(id).await?.into()))
}

/// Changes a user's roles or disables them (admin role). An admin cannot take their own
/// admin role or disable themselves (409 `self_lockout`), so an admin always remains.
#[utoipa::path(
    patch, path = "/api/v3/user/{id}/", tag = "user", operation_id = "update_user",
    params(("id" = i64, Path, description = "The user's id")),
    request_body = UserChange,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = UserView),
        (status = "4XX", description = "Not authorised, invalid, or no such user", body = ErrorBody),
    )
)]
async fn update_user(
    State(state): State<AdminState>,
    caller: Admin,
    Id(id): Id,
    JsonBody(change): JsonBody<UserChange>,
) -> Result<Json<UserView>, ApiError> {
    let roles = change.roles.as_deref().map(parse_roles).transpose()?;
    if id == caller.user.id {
        if roles.as_ref().is_some_and(|r| !r.contains(&Role::Admin)) {
            return Err(ApiError::SelfLockout(
                "you cannot take away your own admin role; another admin can".to_owned(),
            ));
        }
        if change.disabled == Some(true) {
            return Err(ApiError::SelfLockout(
                "you cannot disable yourself; another admin can".to_owned(),
            ));
        }
    }
    let mut user: User = state.store.user(id).await?;
    if let Some(roles) = roles {
        user = state
            .store
            .set_roles(id, &roles, caller.actor(), state.now())
            .await?;
    }
    if let Some(disabled) = change.disabled
        && disabled != user.disabled
    {
        user = state
            .store
            .set_disabled(id, disabled, caller.actor(), state.now())
            .await?;
    }
    Ok(Json(user.into()))
}

/// Makes a token for a user (admin role). The answer holds the secret; it is never shown
/// again.
#[utoipa::path(
    post, path = "/api/v3/user/{id}/token/", tag = "token", operation_id = "create_token",
    params(("id" = i64, Path, description = "The user's id")),
    request_body = NewToken,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The token, with its secret", body = NewTokenView),
        (status = "4XX", description = "Not authorised, invalid, or no such user", body = ErrorBody),
    )
)]
async fn create_token(
    State(state): State<AdminState>,
    caller: Admin,
    Id(id): Id,
    JsonBody(new): JsonBody<NewToken>,
) -> Result<(StatusCode, Json<NewTokenView>), ApiError> {
    if let Some(problem) = bootstrap::token_name_problem(&new.name) {
        return Err(ApiError::field("name", problem));
    }
    state.store.user(id).await?;
    let (token, secret) =
        bootstrap::issue_token(&state.store, id, &new.name, caller.actor(), state.now())
            .await
            .map_err(|error| bootstrap_error(error, "name"))?;
    Ok((
        StatusCode::CREATED,
        Json(NewTokenView {
            token: token.into(),
            secret,
        }),
    ))
}

/// Lists tokens, without their secrets: an admin's choice of user (or everyone's), anyone
/// else's own.
#[utoipa::path(
    get, path = "/api/v3/token/", tag = "token", operation_id = "list_tokens",
    params(TokenQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The tokens, revoked ones included", body = Vec<TokenView>),
        (status = "4XX", description = "Not authorised", body = ErrorBody),
    )
)]
async fn list_tokens(
    State(state): State<AdminState>,
    caller: Caller,
    Params(query): Params<TokenQuery>,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    let user_id = if caller.user.has_role(Role::Admin) {
        query.user
    } else {
        match query.user {
            Some(user) if user != caller.user.id => {
                return Err(ApiError::Forbidden(
                    "only admins list other users' tokens".to_owned(),
                ));
            }
            _ => Some(caller.user.id),
        }
    };
    let tokens = state.store.list_tokens(user_id).await?;
    Ok(Json(tokens.into_iter().map(Into::into).collect()))
}

/// Revokes a token: an admin any, anyone else their own. 409 `already_revoked`.
#[utoipa::path(
    delete, path = "/api/v3/token/{id}/", tag = "token", operation_id = "revoke_token",
    params(("id" = i64, Path, description = "The token's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The revoked token", body = TokenView),
        (status = "4XX", description = "Not authorised, no such token, or already revoked", body = ErrorBody),
    )
)]
async fn revoke_token(
    State(state): State<AdminState>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<TokenView>, ApiError> {
    let token = state.store.token(id).await?;
    if token.user_id != caller.user.id && !caller.user.has_role(Role::Admin) {
        return Err(ApiError::Forbidden(
            "only admins revoke other users' tokens".to_owned(),
        ));
    }
    let token = state
        .store
        .revoke_token(id, caller.actor(), state.now())
        .await?;
    Ok(Json(token.into()))
}

/// The user and token routes.
pub(super) fn routes() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(list_users, create_user))
        .routes(routes!(read_user, update_user))
        .routes(routes!(create_token))
        .routes(routes!(list_tokens))
        .routes(routes!(revoke_token))
}
