//! Extractors: the authenticated caller with the role a route needs, and JSON bodies, query
//! strings and path ids whose failures answer in the API's error shape.

use std::marker::PhantomData;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use flightdeck_store::{Actor, Role, User};
use serde::de::DeserializeOwned;

use super::{AdminState, ApiError};
use crate::auth;

/// Longer bearer values are refused without a database lookup (a token is 47 characters).
const MAX_TOKEN_LEN: usize = 256;

/// The role a route needs, as a type, so the handler's signature states it.
pub trait RoleRequirement {
    /// `None`: any authenticated user.
    const ROLE: Option<Role>;
}

/// Any authenticated user, whatever their roles.
#[derive(Debug)]
pub struct Authenticated;
/// The `viewer` role (reading).
#[derive(Debug)]
pub struct ViewerRole;
/// The `editor` role (writing recipes, asking for approval).
#[derive(Debug)]
pub struct EditorRole;
/// The `approver` role (approving, rejecting, enabling, disabling).
#[derive(Debug)]
pub struct ApproverRole;
/// The `admin` role (users, tokens, environments, keys).
#[derive(Debug)]
pub struct AdminRole;

impl RoleRequirement for Authenticated {
    const ROLE: Option<Role> = None;
}
impl RoleRequirement for ViewerRole {
    const ROLE: Option<Role> = Some(Role::Viewer);
}
impl RoleRequirement for EditorRole {
    const ROLE: Option<Role> = Some(Role::Editor);
}
impl RoleRequirement for ApproverRole {
    const ROLE: Option<Role> = Some(Role::Approver);
}
impl RoleRequirement for AdminRole {
    const ROLE: Option<Role> = Some(Role::Admin);
}

/// The user a request's bearer token authenticates, holding role `R`: no usable token → 401,
/// a token without the role → 403.
#[derive(Debug)]
pub struct Caller<R = Authenticated> {
    /// The user.
    pub user: User,
    role: PhantomData<fn() -> R>,
}

impl<R> Caller<R> {
    /// The user, as the store's actor.
    pub fn actor(&self) -> Actor {
        Actor::User(self.user.id)
    }
}

/// A caller with the viewer role.
pub type Viewer = Caller<ViewerRole>;
/// A caller with the editor role.
pub type Editor = Caller<EditorRole>;
/// A caller with the approver role.
pub type Approver = Caller<ApproverRole>;
/// A caller with the admin role.
pub type Admin = Caller<AdminRole>;

impl<R: RoleRequirement> FromRequestParts<AdminState> for Caller<R> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AdminState,
    ) -> Result<Caller<R>, ApiError> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(auth::bearer_token)
            .filter(|token| token.len() <= MAX_TOKEN_LEN)
            .ok_or(ApiError::Unauthorized)?;
        let user = state
            .store
            .authenticate(&auth::hash_token(token))
            .await?
            .ok_or(ApiError::Unauthorized)?;
        if let Some(role) = R::ROLE
            && !user.has_role(role)
        {
            return Err(ApiError::Forbidden(format!(
                "this needs the `{role}` role; {} has {}",
                user.username,
                describe_roles(&user.roles)
            )));
        }
        Ok(Caller {
            user,
            role: PhantomData,
        })
    }
}

fn describe_roles(roles: &[Role]) -> String {
    if roles.is_empty() {
        return "no role".to_owned();
    }
    let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    format!("`{}`", names.join("`, `"))
}

/// A JSON body of type `T`. Not JSON → 400 `bad_request` with the line and column; JSON of the
/// wrong shape → 400 `validation_failed` naming the field; too large → 413.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<JsonBody<T>, ApiError> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge("the request body is too large".to_owned())
                } else {
                    ApiError::BadRequest(format!("cannot read the request body: {rejection}"))
                }
            })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses `bytes` as one JSON value of type `T` (see [`JsonBody`] for the errors).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest("a JSON body is required".to_owned()));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = field_path(error.path());
        let inner = error.into_inner();
        if inner.is_data() {
            ApiError::field(&path, strip_position(&inner))
        } else {
            ApiError::BadRequest(format!("the body is not valid JSON: {inner}"))
        }
    })?;
    deserializer
        .end()
        .map_err(|error| ApiError::BadRequest(format!("the body is not valid JSON: {error}")))?;
    Ok(value)
}

/// serde_path_to_error's path (`a.b[0]`, `.` for the root) in the API's spelling.
fn field_path(path: &serde_path_to_error::Path) -> String {
    let text = path.to_string();
    if text == "." || text.is_empty() {
        "(root)".to_owned()
    } else {
        text
    }
}

/// A data error's message without serde_json's " at line L column C" (the field names it).
fn strip_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// The query string as `T`; a bad parameter → 400 `bad_request`.
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Params<T>, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| Params(value))
            .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))
    }
}

/// The `{id}` of a route; one that is not an integer names nothing → 404.
#[derive(Debug, Clone, Copy)]
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Id, ApiError> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(text)) => text
                .parse::<i64>()
                .map(Id)
                .map_err(|_| ApiError::NotFound(format!("no object has the id {text:?}"))),
            Err(rejection) => Err(ApiError::BadRequest(rejection.body_text())),
        }
    }
}
