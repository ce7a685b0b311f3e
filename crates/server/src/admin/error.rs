//! The admin API's one error type and its JSON body.
//!
//! Every failure answers `{"error": {"code", "message", "fields"?}}`. The codes are stable
//! (clients branch on them); messages are for people and may change. The store's conflicts keep
//! their own codes ([`flightdeck_store::Conflict::code`]).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flightdeck_store::{Conflict, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::validate::FieldProblem;

/// Why an admin API request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// No token, or one that is unknown, revoked, or of a disabled user (401).
    Unauthorized,
    /// The caller lacks the role the route needs (403 `forbidden`).
    Forbidden(String),
    /// The object does not exist (404).
    NotFound(String),
    /// The request is well-formed JSON but its content is refused; `fields` says where (400
    /// `validation_failed`).
    Validation {
        /// A summary.
        message: String,
        /// Each problem, with its field path.
        fields: Vec<FieldProblem>,
    },
    /// The request cannot be read: not JSON, a bad query parameter or path segment (400).
    BadRequest(String),
    /// A telemetry batch that parses but does not have the documented shape (422
    /// `invalid_events`): the client drops it instead of retrying it forever.
    Unprocessable {
        /// A summary.
        message: String,
        /// Each problem, with its field path.
        fields: Vec<FieldProblem>,
    },
    /// The store refused a state change (409 with the conflict's code; `self_approval` is 403).
    Conflict(Conflict),
    /// An admin change that would lock its author out (409 `self_lockout`).
    SelfLockout(String),
    /// The body is larger than the route accepts (413).
    PayloadTooLarge(String),
    /// Something failed inside the server; the details are logged, not returned (500).
    Internal,
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code: `unauthorized`, `forbidden`, `not_found`,
    /// `validation_failed`, `bad_request`, `invalid_events`, `payload_too_large`, `internal`,
    /// `self_lockout`, or one of the store's conflict codes (`not_approved`, `self_approval`, …).
    pub code: String,
    /// A sentence for people.
    pub message: String,
    /// The fields at fault, for `validation_failed` and `invalid_events`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<FieldProblemSchema>>,
}

/// One problem with one field (the schema of [`FieldProblem`]).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldProblemSchema {
    /// The field, as a path into the submitted JSON (`arguments.branches[1].ratio`, `(root)`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl ApiError {
    /// A validation error about one field.
    pub fn field(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::validation(vec![FieldProblem {
            field: field.to_owned(),
            message: message.into(),
        }])
    }

    /// A validation error about these fields.
    pub fn validation(fields: Vec<FieldProblem>) -> ApiError {
        let message = match fields.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        ApiError::Validation { message, fields }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::Conflict(Conflict::SelfApproval) => {
                StatusCode::FORBIDDEN
            }
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Validation { .. } | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict(_) | ApiError::SelfLockout(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Validation { .. } => "validation_failed",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unprocessable { .. } => "invalid_events",
            ApiError::Conflict(conflict) => conflict.code(),
            ApiError::SelfLockout(_) => "self_lockout",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::Internal => "internal",
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::Unauthorized => {
                "a valid API token is required: send `Authorization: Bearer fdt_…`".to_owned()
            }
            ApiError::Forbidden(message)
            | ApiError::NotFound(message)
            | ApiError::BadRequest(message)
            | ApiError::SelfLockout(message)
            | ApiError::PayloadTooLarge(message) => message.clone(),
            ApiError::Validation { message, .. } | ApiError::Unprocessable { message, .. } => {
                message.clone()
            }
            ApiError::Conflict(conflict) => conflict.message().to_owned(),
            ApiError::Internal => "internal error; the server log has the details".to_owned(),
        }
    }

    fn fields(&self) -> Option<Vec<FieldProblemSchema>> {
        match self {
            ApiError::Validation { fields, .. } | ApiError::Unprocessable { fields, .. } => Some(
                fields
                    .iter()
                    .map(|f| FieldProblemSchema {
                        field: f.field.clone(),
                        message: f.message.clone(),
                    })
                    .collect(),
            ),
            _ => None,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.message(),
                fields: self.fields(),
            },
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message(), self.code())
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), Json(self.body())).into_response();
        if self == ApiError::Unauthorized {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"flightdeck\""),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::NotFound { what, id } => {
                ApiError::NotFound(format!("{what} {id} not found"))
            }
            StoreError::Conflict(conflict) => ApiError::Conflict(conflict),
            other => {
                tracing::error!(error = %other, "store operation failed");
                ApiError::Internal
            }
        }
    }
}

impl From<Conflict> for ApiError {
    fn from(conflict: Conflict) -> ApiError {
        ApiError::Conflict(conflict)
    }
}
