//! What can go wrong in the store, with the stable codes the HTTP layer reports.

use std::fmt;

/// The result of every store operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The object the operation names does not exist.
    #[error("{what} {id} not found")]
    NotFound {
        /// The kind of object: `user`, `token`, `environment`, `recipe`, `revision`,
        /// `approval request`, `signing key`.
        what: &'static str,
        /// Its id or name, as given.
        id: String,
    },
    /// The operation contradicts the current state (the HTTP layer answers 409).
    #[error("{0}")]
    Conflict(Conflict),
    /// The database refused or failed the operation, or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema migrations could not be applied at start-up.
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// `Store::open` was given a URL it cannot use. The URL itself is not repeated, because
    /// it may hold a password.
    #[error("invalid database URL: {reason}")]
    InvalidUrl {
        /// What is wrong with it.
        reason: String,
    },
    /// A stored value could not be read back (a bad time, JSON text or role name), which
    /// means the database was changed behind the store's back.
    #[error("stored {what} is unreadable: {detail}")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// Why it could not be read.
        detail: String,
    },
}

impl StoreError {
    /// The conflict, when this error is one.
    pub fn conflict(&self) -> Option<Conflict> {
        match self {
            StoreError::Conflict(conflict) => Some(*conflict),
            _ => None,
        }
    }

    pub(crate) fn not_found(what: &'static str, id: impl fmt::Display) -> StoreError {
        StoreError::NotFound {
            what,
            id: id.to_string(),
        }
    }
}

impl From<Conflict> for StoreError {
    fn from(conflict: Conflict) -> StoreError {
        StoreError::Conflict(conflict)
    }
}

/// A refused state change; [`Conflict::code`] is stable and goes into API error bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Conflict {
    /// A user with this username exists.
    UsernameTaken,
    /// A token with this secret hash exists (a secret was reused).
    TokenExists,
    /// The token is already revoked.
    AlreadyRevoked,
    /// An environment with this name exists.
    EnvironmentExists,
    /// Approval can only be requested for a recipe's latest revision.
    NotLatestRevision,
    /// The revision already has an approval request (pending or approved).
    ApprovalExists,
    /// The approval request was already approved or rejected.
    NotPending,
    /// The environment requires peer approval and the approver wrote the revision or asked
    /// for its approval.
    SelfApproval,
    /// The recipe has no approved revision, so it cannot be enabled or disabled.
    NotApproved,
    /// The revision's approval was rejected; the recipe must be edited before asking again.
    RejectedNeedsEdit,
    /// A `preference-rollback` and the rollout it names would both be enabled.
    RolloutConflict,
    /// The recipe is already enabled.
    AlreadyEnabled,
    /// The recipe is already disabled.
    AlreadyDisabled,
    /// A signing key with this key id exists.
    SigningKeyExists,
}

impl Conflict {
    /// Every conflict, for tables of codes (documentation, tests).
    pub const ALL: [Conflict; 14] = [
        Conflict::UsernameTaken,
        Conflict::TokenExists,
        Conflict::AlreadyRevoked,
        Conflict::EnvironmentExists,
        Conflict::NotLatestRevision,
        Conflict::ApprovalExists,
        Conflict::NotPending,
        Conflict::SelfApproval,
        Conflict::NotApproved,
        Conflict::RejectedNeedsEdit,
        Conflict::RolloutConflict,
        Conflict::AlreadyEnabled,
        Conflict::AlreadyDisabled,
        Conflict::SigningKeyExists,
    ];

    /// The stable machine-readable code, e.g. `self_approval`.
    pub fn code(self) -> &'static str {
        match self {
            Conflict::UsernameTaken => "username_taken",
            Conflict::TokenExists => "token_exists",
            Conflict::AlreadyRevoked => "already_revoked",
            Conflict::EnvironmentExists => "environment_exists",
            Conflict::NotLatestRevision => "not_latest_revision",
            Conflict::ApprovalExists => "approval_exists",
            Conflict::NotPending => "not_pending",
            Conflict::SelfApproval => "self_approval",
            Conflict::NotApproved => "not_approved",
            Conflict::RejectedNeedsEdit => "rejected_needs_edit",
            Conflict::RolloutConflict => "rollout_conflict",
            Conflict::AlreadyEnabled => "already_enabled",
            Conflict::AlreadyDisabled => "already_disabled",
            Conflict::SigningKeyExists => "signing_key_exists",
        }
    }

    /// A sentence for people.
    pub fn message(self) -> &'static str {
        match self {
            Conflict::UsernameTaken => "a user with this username already exists",
            Conflict::TokenExists => "a token with this secret already exists",
            Conflict::AlreadyRevoked => "the token is already revoked",
            Conflict::EnvironmentExists => "an environment with this name already exists",
            Conflict::NotLatestRevision => {
                "approval can only be requested for the recipe's latest revision"
            }
            Conflict::ApprovalExists => "this revision already has an approval request",
            Conflict::NotPending => "the approval request is no longer pending",
            Conflict::SelfApproval => {
                "this environment requires peer approval: you cannot approve your own revision or request"
            }
            Conflict::NotApproved => "the recipe has no approved revision",
            Conflict::RejectedNeedsEdit => {
                "the revision was rejected; edit the recipe before requesting approval again"
            }
            Conflict::RolloutConflict => {
                "a preference rollback and the rollout it names cannot be enabled at the same time"
            }
            Conflict::AlreadyEnabled => "the recipe is already enabled",
            Conflict::AlreadyDisabled => "the recipe is already disabled",
            Conflict::SigningKeyExists => "a signing key with this key id already exists",
        }
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message(), self.code())
    }
}
