//! The OFREP response bodies, serialised exactly as the protocol's OpenAPI describes them.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde::Serialize;

/// Why a flag has its value (OpenFeature resolution reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// The value is the same for every context: the flag has no rules.
    Static,
    /// No rule applied: the flag's default (its fallback value, or the code default).
    Default,
    /// A rule about the context decided (a CloudBees condition, a Normandy rollout filter).
    TargetingMatch,
    /// A pseudorandom assignment decided (a percentage split, an experiment branch).
    Split,
    /// The flag is turned off (disabled, archived, or its rollout rolled back).
    Disabled,
    /// The reason is not known.
    Unknown,
}

/// An OFREP error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// The request body is not an evaluation request.
    ParseError,
    /// The flag needs a `targetingKey` to decide, and the context has none.
    TargetingKeyMissing,
    /// The context cannot be read, or lacks an attribute the flag needs.
    InvalidContext,
    /// Anything else (a flag whose configuration cannot be evaluated, an unknown environment).
    General,
    /// No flag has this key.
    FlagNotFound,
}

impl ErrorCode {
    /// The HTTP status of a single-flag evaluation failing with this code: 404 for
    /// `FLAG_NOT_FOUND`, 500 for `GENERAL` (the server's configuration is at fault), 400 for
    /// the others (the request is).
    pub fn http_status(self) -> StatusCode {
        match self {
            ErrorCode::FlagNotFound => StatusCode::NOT_FOUND,
            ErrorCode::General => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::ParseError | ErrorCode::TargetingKeyMissing | ErrorCode::InvalidContext => {
                StatusCode::BAD_REQUEST
            }
        }
    }
}

/// A metadata value: OFREP allows only booleans, strings and numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum MetadataValue {
    /// A boolean.
    Bool(bool),
    /// A string.
    String(String),
    /// A number.
    Number(serde_json::Number),
}

impl From<&str> for MetadataValue {
    fn from(value: &str) -> MetadataValue {
        MetadataValue::String(value.to_owned())
    }
}

impl From<String> for MetadataValue {
    fn from(value: String) -> MetadataValue {
        MetadataValue::String(value)
    }
}

impl From<bool> for MetadataValue {
    fn from(value: bool) -> MetadataValue {
        MetadataValue::Bool(value)
    }
}

impl From<u64> for MetadataValue {
    fn from(value: u64) -> MetadataValue {
        MetadataValue::Number(value.into())
    }
}

/// Flag metadata, in key order.
pub type Metadata = BTreeMap<String, MetadataValue>;

/// A successful evaluation. `value: None` is ADR-0006's "code default": the body has no
/// `value`, and the client uses the default written in its code.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvaluationSuccess {
    /// The flag key.
    pub key: String,
    /// The value; `None` defers to the code default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
    /// Why the flag has this value.
    pub reason: Reason,
    /// A name for the value: the CloudBees value as a string, or the experiment branch slug.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Where the value comes from (`source`, `recipeId`, `slug`, `rule`, …).
    #[serde(skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
}

/// A failed evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationFailure {
    /// The flag key.
    pub key: String,
    /// What went wrong.
    pub error_code: ErrorCode,
    /// A sentence for logs.
    pub error_details: String,
}

/// The evaluation of one flag: the body of a single-flag response, or one item of a bulk one.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum FlagEvaluation {
    /// The flag has a value (or defers to the code default).
    Success(EvaluationSuccess),
    /// The flag could not be evaluated.
    Failure(EvaluationFailure),
}

impl FlagEvaluation {
    /// The flag key.
    pub fn key(&self) -> &str {
        match self {
            FlagEvaluation::Success(success) => &success.key,
            FlagEvaluation::Failure(failure) => &failure.key,
        }
    }

    /// A failure.
    pub fn failure(key: &str, error_code: ErrorCode, error_details: String) -> FlagEvaluation {
        FlagEvaluation::Failure(EvaluationFailure {
            key: key.to_owned(),
            error_code,
            error_details,
        })
    }

    /// The HTTP status of this evaluation as a single-flag response.
    pub fn http_status(&self) -> StatusCode {
        match self {
            FlagEvaluation::Success(_) => StatusCode::OK,
            FlagEvaluation::Failure(failure) => failure.error_code.http_status(),
        }
    }
}

/// The body of a bulk evaluation: every flag, in the index's order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BulkEvaluation {
    /// One evaluation per flag.
    pub flags: Vec<FlagEvaluation>,
}

/// A request-level failure of the bulk endpoint (no `key`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkFailure {
    /// What went wrong.
    pub error_code: ErrorCode,
    /// A sentence for logs.
    pub error_details: String,
}
