//! The plain data the store reads and writes. Nothing here knows about HTTP or SQL.
//!
//! "Who" fields come in pairs, `…_id: Option<i64>` and the username `…: Option<String>`;
//! both are `None` when the system did it ([`Actor::System`]).

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who performs a change: recorded in the audit log and in authored rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Actor {
    /// The server itself, for bootstrap (`flightdeck admin create-user`, seeding).
    System,
    /// A user, by id.
    User(i64),
}

impl Actor {
    /// The user's id, `None` for the system.
    pub fn user_id(self) -> Option<i64> {
        match self {
            Actor::System => None,
            Actor::User(id) => Some(id),
        }
    }
}

/// What a user may do. `admin` holds every role ([`User::has_role`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything.
    Viewer,
    /// Creates and edits recipes, asks for approval.
    Editor,
    /// Approves, rejects, enables and disables.
    Approver,
    /// Manages users, tokens, environments and keys; holds every role.
    Admin,
}

impl Role {
    /// Every role, in order.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Editor, Role::Approver, Role::Admin];

    /// The role's name: `viewer`, `editor`, `approver`, `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    /// The role with this name.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == name)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A person (or robot) who uses the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Id.
    pub id: i64,
    /// Unique login name.
    pub username: String,
    /// Roles, sorted, without duplicates.
    pub roles: Vec<Role>,
    /// When the user was created.
    pub created_at: Timestamp,
    /// A disabled user's tokens no longer authenticate.
    pub disabled: bool,
}

impl User {
    /// Whether the user holds `role`, directly or through `admin`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&Role::Admin) || self.roles.contains(&role)
    }
}

/// An API token of a user. The secret is never stored: only its SHA-256 hex, which the
/// server computes and the store never returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    /// Id.
    pub id: i64,
    /// The user it authenticates.
    pub user_id: i64,
    /// A label chosen by its owner.
    pub name: String,
    /// The first characters of the secret, to recognise it in lists.
    pub prefix: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was revoked; a revoked token no longer authenticates.
    pub revoked_at: Option<Timestamp>,
}

/// A separate set of recipes with its own published manifests and serial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Environment {
    /// Id.
    pub id: i64,
    /// Unique name (`production`, `staging`, …).
    pub name: String,
    /// Whether an approver may not approve their own revision or request.
    pub peer_approval: bool,
    /// When it was created.
    pub created_at: Timestamp,
}

/// The kind of a recipe: which core parser validates its data and where it is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A Normandy recipe (API v3 write fields).
    Normandy,
    /// One Experiments Manifest v1 experiment.
    ManifestV1,
    /// One Test Pilot flight.
    Flight,
    /// One CloudBees experiment (flag).
    Flag,
    /// One CloudBees target group.
    TargetGroup,
}

impl Kind {
    /// Every kind, in order.
    pub const ALL: [Kind; 5] = [
        Kind::Normandy,
        Kind::ManifestV1,
        Kind::Flight,
        Kind::Flag,
        Kind::TargetGroup,
    ];

    /// The kind's name: `normandy`, `manifest-v1`, `flight`, `flag`, `target-group`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Normandy => "normandy",
            Kind::ManifestV1 => "manifest-v1",
            Kind::Flight => "flight",
            Kind::Flag => "flag",
            Kind::TargetGroup => "target-group",
        }
    }

    /// The kind with this name.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authored thing of some kind in one environment; its content lives in its revisions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recipe {
    /// Id.
    pub id: i64,
    /// Kind.
    pub kind: Kind,
    /// The environment's name.
    pub environment: String,
    /// The newest revision (every recipe has one).
    pub latest_revision_id: i64,
    /// The revision last approved, if any: the one published while the recipe is enabled.
    pub approved_revision_id: Option<i64>,
    /// Whether the approved revision is published.
    pub enabled: bool,
    /// When the recipe was created.
    pub created_at: Timestamp,
    /// When it last changed (revision, approval, enabled state).
    pub updated_at: Timestamp,
}

/// One immutable version of a recipe's data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Revision {
    /// Id.
    pub id: i64,
    /// The recipe.
    pub recipe_id: i64,
    /// The revision it replaced, `None` for the first.
    pub parent_id: Option<i64>,
    /// The kind-specific document.
    pub data: Value,
    /// The author's comment.
    pub comment: String,
    /// The author's user id.
    pub author_id: Option<i64>,
    /// The author's username.
    pub author: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// Its approval request, if one was made and not closed.
    pub approval_request: Option<ApprovalRequest>,
}

/// The state of an approval request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalState {
    /// Waiting for an approver.
    Pending,
    /// Approved: the revision became the recipe's approved revision.
    Approved,
    /// Rejected: the recipe must be edited before asking again.
    Rejected,
}

impl ApprovalState {
    /// The state's name: `pending`, `approved`, `rejected`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Rejected => "rejected",
        }
    }

    /// The state with this name.
    pub fn parse(name: &str) -> Option<ApprovalState> {
        [
            ApprovalState::Pending,
            ApprovalState::Approved,
            ApprovalState::Rejected,
        ]
        .into_iter()
        .find(|state| state.as_str() == name)
    }
}

/// A request to approve one revision (at most one per revision).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalRequest {
    /// Id.
    pub id: i64,
    /// The revision to approve.
    pub revision_id: i64,
    /// Its recipe.
    pub recipe_id: i64,
    /// Who asked, by id.
    pub creator_id: Option<i64>,
    /// Who asked, by username.
    pub creator: Option<String>,
    /// Pending, approved or rejected.
    pub state: ApprovalState,
    /// Who decided, by id (`None` while pending, or when the system decided).
    pub approver_id: Option<i64>,
    /// Who decided, by username.
    pub approver: Option<String>,
    /// The decision's comment.
    pub comment: Option<String>,
    /// When approval was requested.
    pub created_at: Timestamp,
    /// When it was approved or rejected.
    pub decided_at: Option<Timestamp>,
}

/// One change of a recipe's enabled state, newest last in time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnabledState {
    /// Id.
    pub id: i64,
    /// The recipe.
    pub recipe_id: i64,
    /// The approved revision at the time.
    pub revision_id: i64,
    /// Enabled or disabled.
    pub enabled: bool,
    /// Who changed it, by id.
    pub creator_id: Option<i64>,
    /// Who changed it, by username.
    pub creator: Option<String>,
    /// When.
    pub created_at: Timestamp,
    /// Set when approving a new revision of an enabled recipe carried the enabled state over:
    /// the state it continues.
    pub carryover_from: Option<i64>,
}

/// A key the server signs manifests with.
///
/// `Debug` and `Serialize` leave the private key out, so it cannot end up in a log or an API
/// answer by accident; read the field itself where it is needed.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct SigningKeyRecord {
    /// Id.
    pub id: i64,
    /// The key id published with signatures.
    pub key_id: String,
    /// PKCS#8 PEM of the private key.
    #[serde(skip_serializing)]
    pub private_key_pem: String,
    /// SPKI PEM of the public key.
    pub public_key_pem: String,
    /// When it was added.
    pub created_at: Timestamp,
    /// Whether it is the key new signatures are made with (at most one is).
    pub active: bool,
    /// When it stopped being the active key.
    pub retired_at: Option<Timestamp>,
}

impl fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("id", &self.id)
            .field("key_id", &self.key_id)
            .field("private_key_pem", &"<redacted>")
            .field("public_key_pem", &self.public_key_pem)
            .field("created_at", &self.created_at)
            .field("active", &self.active)
            .field("retired_at", &self.retired_at)
            .finish()
    }
}

/// A signing key to add ([`crate::Store::add_signing_key`]).
#[derive(Clone, PartialEq, Eq)]
pub struct NewSigningKey {
    /// The key id published with signatures (unique).
    pub key_id: String,
    /// PKCS#8 PEM of the private key.
    pub private_key_pem: String,
    /// SPKI PEM of the public key.
    pub public_key_pem: String,
}

impl fmt::Debug for NewSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSigningKey")
            .field("key_id", &self.key_id)
            .field("private_key_pem", &"<redacted>")
            .field("public_key_pem", &self.public_key_pem)
            .finish()
    }
}

/// One entry of the audit log: who did what to which object, when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    /// Id (increasing).
    pub id: i64,
    /// When.
    pub at: Timestamp,
    /// Who, by id.
    pub actor_id: Option<i64>,
    /// Who, by username.
    pub actor: Option<String>,
    /// What, e.g. `recipe.create`, `approval.approve`, `token.revoke`.
    pub action: String,
    /// The object's type: `user`, `token`, `environment`, `recipe`, `signing_key`.
    /// Approval and enabled-state actions are recorded on their recipe.
    pub object_type: String,
    /// The object's id.
    pub object_id: i64,
    /// Action-specific details (revision ids, comments, names).
    pub details: Value,
}

/// An approved and enabled revision of an environment: what gets published.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublishedItem {
    /// The recipe.
    pub recipe_id: i64,
    /// Its approved revision.
    pub revision_id: i64,
    /// The recipe's kind.
    pub kind: Kind,
    /// The approved revision's data.
    pub data: Value,
}

/// The serial and time under which an environment's content is published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Publication {
    /// Starts at 1, grows by 1 each time the content changes.
    pub serial: i64,
    /// When this content was first published.
    pub published_at: Timestamp,
    /// The hash of the content, as the server computed it.
    pub content_hash: String,
}

/// What an environment publishes and the publication it is served under, read together under
/// the environment's lock (see `Store::publish`).
#[derive(Debug, Clone)]
pub struct PublishState {
    /// The approved revisions of the enabled recipes, by recipe id.
    pub items: Vec<PublishedItem>,
    /// Every signing key (the active one signs).
    pub signing_keys: Vec<SigningKeyRecord>,
    /// The serial and time of this content.
    pub publication: Publication,
}

/// The function that hashes what an environment publishes (the server's content hash).
pub type ContentHasher = dyn Fn(&[PublishedItem], &[SigningKeyRecord]) -> String + Send + Sync;

/// One telemetry event uploaded by a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestEvent {
    /// The client's sequence number; `(client_id, seq)` identifies the event.
    pub seq: u64,
    /// When it happened on the client.
    pub timestamp: Timestamp,
    /// What happened (`enroll`, `unenroll`, …).
    pub method: String,
    /// What it happened to (`preference_study`, …).
    pub object: String,
    /// The slug.
    pub value: String,
    /// Details; `branch` goes into the enrollment counts.
    #[serde(default)]
    pub extra: BTreeMap<String, String>,
}

/// How many events of an upload were new.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IngestOutcome {
    /// Events stored now.
    pub accepted: u64,
    /// Events already stored (same client and sequence number), ignored.
    pub duplicates: u64,
}

/// The number of events per UTC day, object, slug, branch and method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnrollmentCount {
    /// The UTC day of the events' timestamps.
    pub day: Date,
    /// The event object.
    pub object: String,
    /// The event value (the slug).
    pub slug: String,
    /// `extra.branch`, or empty.
    pub branch: String,
    /// The event method.
    pub method: String,
    /// How many events.
    pub count: i64,
}

/// Which recipes [`crate::Store::list_recipes`] returns (by id, oldest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecipeFilter {
    /// Only this environment.
    pub environment: Option<String>,
    /// Only this kind.
    pub kind: Option<Kind>,
    /// Only enabled (or disabled) recipes.
    pub enabled: Option<bool>,
    /// At most this many.
    pub limit: Option<u32>,
}

/// Which revisions [`crate::Store::list_revisions`] returns (newest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevisionFilter {
    /// Only this recipe's.
    pub recipe_id: Option<i64>,
    /// Only of recipes in this environment.
    pub environment: Option<String>,
    /// At most this many.
    pub limit: Option<u32>,
}

/// Which approval requests [`crate::Store::list_approval_requests`] returns (newest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApprovalRequestFilter {
    /// Only this recipe's.
    pub recipe_id: Option<i64>,
    /// Only of recipes in this environment.
    pub environment: Option<String>,
    /// Only in this state.
    pub state: Option<ApprovalState>,
    /// At most this many.
    pub limit: Option<u32>,
}

/// Which audit events [`crate::Store::audit_events`] returns (newest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only about objects of this type.
    pub object_type: Option<String>,
    /// Only about the object with this id.
    pub object_id: Option<i64>,
    /// Only by this user.
    pub actor_id: Option<i64>,
    /// Only this action.
    pub action: Option<String>,
    /// Only at or after this time.
    pub since: Option<Timestamp>,
    /// Only before this time.
    pub until: Option<Timestamp>,
    /// At most this many.
    pub limit: Option<u32>,
}

/// Which counts [`crate::Store::enrollment_counts`] returns (by day, object, slug, branch,
/// method).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnrollmentFilter {
    /// Only this object.
    pub object: Option<String>,
    /// Only this slug.
    pub slug: Option<String>,
    /// Only this branch.
    pub branch: Option<String>,
    /// Only this method.
    pub method: Option<String>,
    /// Only from this day on.
    pub from: Option<Date>,
    /// Only up to and including this day.
    pub to: Option<Date>,
    /// At most this many.
    pub limit: Option<u32>,
}
