//! Revisions and approval requests, shared by every kind: `/api/v3/recipe_revision/` and
//! `/api/v3/approval_request/` (Normandy's routes and shapes).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use flightdeck_store::{ApprovalRequestFilter, ApprovalState, RevisionFilter};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::extract::{Approver, Editor, Id, JsonBody, Params, Viewer};
use super::views::{self, ApprovalRequestView, RevisionView};
use super::{AdminState, ApiError};

/// The filters of a revision list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RevisionQuery {
    /// Only this recipe's revisions.
    pub recipe: Option<i64>,
    /// Only revisions of recipes in this environment.
    pub environment: Option<String>,
    /// At most this many (newest first).
    pub limit: Option<u32>,
}

/// The filters of an approval request list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApprovalRequestQuery {
    /// Only this recipe's requests.
    pub recipe: Option<i64>,
    /// Only requests of recipes in this environment.
    pub environment: Option<String>,
    /// Only `pending`, `approved` or `rejected` requests.
    pub state: Option<String>,
    /// At most this many (newest first).
    pub limit: Option<u32>,
}

/// The body of approve and reject.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Decision {
    /// Why (required, as Normandy requires it).
    pub comment: Option<String>,
}

impl Decision {
    fn comment(&self) -> Result<&str, ApiError> {
        match self.comment.as_deref().map(str::trim) {
            Some(comment) if !comment.is_empty() => Ok(comment),
            _ => Err(ApiError::field("comment", "a comment is required")),
        }
    }
}

/// Lists revisions of every kind, newest first.
#[utoipa::path(
    get, path = "/api/v3/recipe_revision/", tag = "recipe_revision",
    operation_id = "list_recipe_revisions",
    params(RevisionQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The revisions", body = Vec<RevisionView>),
        (status = "4XX", description = "Not authorised, or a bad filter", body = ErrorBody),
    )
)]
async fn list_revisions(
    State(state): State<AdminState>,
    _caller: Viewer,
    Params(query): Params<RevisionQuery>,
) -> Result<Json<Vec<RevisionView>>, ApiError> {
    let revisions = state
        .store
        .list_revisions(&RevisionFilter {
            recipe_id: query.recipe,
            environment: query.environment,
            limit: query.limit,
        })
        .await?;
    Ok(Json(views::revision_views(&state.store, revisions).await?))
}

/// Reads one revision.
#[utoipa::path(
    get, path = "/api/v3/recipe_revision/{id}/", tag = "recipe_revision",
    operation_id = "read_recipe_revision",
    params(("id" = i64, Path, description = "The revision's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The revision", body = RevisionView),
        (status = "4XX", description = "Not authorised, or no such revision", body = ErrorBody),
    )
)]
async fn read_revision(
    State(state): State<AdminState>,
    _caller: Viewer,
    Id(id): Id,
) -> Result<Json<RevisionView>, ApiError> {
    let revision = state.store.revision(id).await?;
    let recipe = state.store.recipe(revision.recipe_id).await?;
    Ok(Json(views::revision_view(&recipe, revision)))
}

/// Asks for approval of a recipe's latest revision (editor role). 409 `not_latest_revision`,
/// `approval_exists`, `rejected_needs_edit`.
#[utoipa::path(
    post, path = "/api/v3/recipe_revision/{id}/request_approval/", tag = "recipe_revision",
    operation_id = "request_approval",
    params(("id" = i64, Path, description = "The revision's id")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new approval request", body = ApprovalRequestView),
        (status = "4XX", description = "Not authorised, no such revision, or a conflict", body = ErrorBody),
    )
)]
async fn request_approval(
    State(state): State<AdminState>,
    caller: Editor,
    Id(id): Id,
) -> Result<(StatusCode, Json<ApprovalRequestView>), ApiError> {
    let request = state
        .store
        .request_approval(id, caller.actor(), state.now())
        .await?;
    Ok((StatusCode::CREATED, Json(request.into())))
}

/// Lists approval requests, newest first.
#[utoipa::path(
    get, path = "/api/v3/approval_request/", tag = "approval_request",
    operation_id = "list_approval_requests",
    params(ApprovalRequestQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The approval requests", body = Vec<ApprovalRequestView>),
        (status = "4XX", description = "Not authorised, or a bad filter", body = ErrorBody),
    )
)]
async fn list_approval_requests(
    State(state): State<AdminState>,
    _caller: Viewer,
    Params(query): Params<ApprovalRequestQuery>,
) -> Result<Json<Vec<ApprovalRequestView>>, ApiError> {
    let approval_state = match query.state.as_deref() {
        None => None,
        Some(name) => Some(ApprovalState::parse(name).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "unknown state `{name}`: expected pending, approved or rejected"
            ))
        })?),
    };
    let requests = state
        .store
        .list_approval_requests(&ApprovalRequestFilter {
            recipe_id: query.recipe,
            environment: query.environment,
            state: approval_state,
            limit: query.limit,
        })
        .await?;
    Ok(Json(requests.into_iter().map(Into::into).collect()))
}

/// Reads one approval request.
#[utoipa::path(
    get, path = "/api/v3/approval_request/{id}/", tag = "approval_request",
    operation_id = "read_approval_request",
    params(("id" = i64, Path, description = "The approval request's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The approval request", body = ApprovalRequestView),
        (status = "4XX", description = "Not authorised, or no such request", body = ErrorBody),
    )
)]
async fn read_approval_request(
    State(state): State<AdminState>,
    _caller: Viewer,
    Id(id): Id,
) -> Result<Json<ApprovalRequestView>, ApiError> {
    Ok(Json(state.store.approval_request(id).await?.into()))
}

/// Approves a pending request (approver role): the revision becomes the approved one, and
/// stays enabled if the recipe was. 403 `self_approval` where the environment requires peer
/// approval and the caller wrote the revision or asked for approval; 409 `not_pending`,
/// `rollout_conflict`.
#[utoipa::path(
    post, path = "/api/v3/approval_request/{id}/approve/", tag = "approval_request",
    operation_id = "approve",
    params(("id" = i64, Path, description = "The approval request's id")),
    request_body = Decision,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The approved request", body = ApprovalRequestView),
        (status = "4XX", description = "Not authorised, self-approval, no comment, or a conflict", body = ErrorBody),
    )
)]
async fn approve(
    State(state): State<AdminState>,
    caller: Approver,
    Id(id): Id,
    JsonBody(decision): JsonBody<Decision>,
) -> Result<Json<ApprovalRequestView>, ApiError> {
    let comment = decision.comment()?;
    let request = state
        .store
        .approve(id, comment, caller.actor(), state.now())
        .await?;
    // Approving a revision of an enabled recipe changes what is published. The approval is
    // committed: if the recipe cannot be read back, every environment is rebuilt rather
    // than the answer failing.
    match state.store.recipe(request.recipe_id).await {
        Ok(recipe) if recipe.enabled => state.hooks.changed(Some(&recipe.environment)).await,
        Ok(_) => {}
        Err(error) => {
            tracing::warn!(%error, recipe = request.recipe_id, "cannot read an approved recipe back");
            state.hooks.changed(None).await;
        }
    }
    Ok(Json(request.into()))
}

/// Rejects a pending request (approver role); the recipe must be edited before approval is
/// asked again. 409 `not_pending`.
#[utoipa::path(
    post, path = "/api/v3/approval_request/{id}/reject/", tag = "approval_request",
    operation_id = "reject",
    params(("id" = i64, Path, description = "The approval request's id")),
    request_body = Decision,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The rejected request", body = ApprovalRequestView),
        (status = "4XX", description = "Not authorised, no comment, or a conflict", body = ErrorBody),
    )
)]
async fn reject(
    State(state): State<AdminState>,
    caller: Approver,
    Id(id): Id,
    JsonBody(decision): JsonBody<Decision>,
) -> Result<Json<ApprovalRequestView>, ApiError> {
    let comment = decision.comment()?;
    let request = state
        .store
        .reject(id, comment, caller.actor(), state.now())
        .await?;
    Ok(Json(request.into()))
}

/// Withdraws a pending request (editor role). 409 `not_pending`.
#[utoipa::path(
    post, path = "/api/v3/approval_request/{id}/close/", tag = "approval_request",
    operation_id = "close",
    params(("id" = i64, Path, description = "The approval request's id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The request is deleted"),
        (status = "4XX", description = "Not authorised, no such request, or a conflict", body = ErrorBody),
    )
)]
async fn close(
    State(state): State<AdminState>,
    caller: Editor,
    Id(id): Id,
) -> Result<StatusCode, ApiError> {
    state.store.close(id, caller.actor(), state.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The revision and approval request routes.
pub(super) fn routes() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new()
        .routes(routes!(list_revisions))
        .routes(routes!(read_revision))
        .routes(routes!(request_approval))
        .routes(routes!(list_approval_requests))
        .routes(routes!(read_approval_request))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(close))
}
