//! The JSON shapes the admin API answers with, and how they are made from the store's types.
//!
//! Recipes, revisions and approval requests follow Normandy's v3 read shapes where Normandy
//! has the concept (`latest_revision`, `approved_revision`, `approval_request` with
//! `approved: null|true|false`, `date_created`, `creator`). Every revision carries its
//! kind's document as `data`; a Normandy revision also has the document's fields at the top
//! level, as Normandy's readers expect, with `action` as `{name}`, and the compiled
//! `filter_expression` and `capabilities`.

use std::collections::HashMap;

use flightdeck_store::{
    ApiToken, ApprovalRequest, ApprovalState, AuditEvent, EnrollmentCount, Environment, Kind,
    Recipe, Revision, SigningKeyRecord, Store, User,
};
use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::ApiError;
use super::error::FieldProblemSchema;
use crate::validate::{self, FieldProblem};

/// A user as other objects name them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserRef {
    /// The user's id.
    pub id: i64,
    /// The user's name.
    pub username: String,
}

/// The user of an `…_id`/`…` pair; `None` when the system acted.
pub(crate) fn user_ref(id: Option<i64>, username: Option<String>) -> Option<UserRef> {
    Some(UserRef {
        id: id?,
        username: username.unwrap_or_default(),
    })
}

/// A user.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    /// Id.
    pub id: i64,
    /// Unique login name.
    pub username: String,
    /// `viewer`, `editor`, `approver`, `admin` (`admin` holds every role).
    pub roles: Vec<String>,
    /// When the user was created.
    pub created_at: Timestamp,
    /// A disabled user's tokens do not authenticate.
    pub disabled: bool,
}

impl From<User> for UserView {
    fn from(user: User) -> UserView {
        UserView {
            id: user.id,
            username: user.username,
            roles: user.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            created_at: user.created_at,
            disabled: user.disabled,
        }
    }
}

/// An API token, without its secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenView {
    /// Id.
    pub id: i64,
    /// The user it authenticates.
    pub user_id: i64,
    /// Its label.
    pub name: String,
    /// `fdt_` and the secret's first characters, to recognise it.
    pub prefix: String,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it was revoked.
    pub revoked_at: Option<Timestamp>,
}

impl From<ApiToken> for TokenView {
    fn from(token: ApiToken) -> TokenView {
        TokenView {
            id: token.id,
            user_id: token.user_id,
            name: token.name,
            prefix: token.prefix,
            created_at: token.created_at,
            revoked_at: token.revoked_at,
        }
    }
}

/// A new token, with its secret: the only time the secret is shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NewTokenView {
    /// The token.
    #[serde(flatten)]
    pub token: TokenView,
    /// The secret (`fdt_…`) to send as `Authorization: Bearer …`. Not stored; not shown again.
    #[serde(rename = "token")]
    pub secret: String,
}

/// An environment.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EnvironmentView {
    /// Id.
    pub id: i64,
    /// Unique name, used as `?environment=NAME` by clients.
    pub name: String,
    /// Whether an approver may not approve their own revision or request.
    pub peer_approval: bool,
    /// When it was created.
    pub created_at: Timestamp,
}

impl From<Environment> for EnvironmentView {
    fn from(environment: Environment) -> EnvironmentView {
        EnvironmentView {
            id: environment.id,
            name: environment.name,
            peer_approval: environment.peer_approval,
            created_at: environment.created_at,
        }
    }
}

/// A signing key's public half (private keys never leave the server).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SigningKeyView {
    /// Id.
    pub id: i64,
    /// The key id published with signatures.
    pub key_id: String,
    /// SPKI PEM of the public key.
    pub public_key_pem: String,
    /// Whether new signatures are made with it.
    pub active: bool,
    /// When it was added.
    pub created_at: Timestamp,
    /// When it stopped being the active key.
    pub retired_at: Option<Timestamp>,
}

impl From<SigningKeyRecord> for SigningKeyView {
    fn from(key: SigningKeyRecord) -> SigningKeyView {
        SigningKeyView {
            id: key.id,
            key_id: key.key_id,
            public_key_pem: key.public_key_pem,
            active: key.active,
            created_at: key.created_at,
            retired_at: key.retired_at,
        }
    }
}

/// One audit-log entry.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEventView {
    /// Id (increasing).
    pub id: i64,
    /// When.
    pub at: Timestamp,
    /// Who; `null` for the system (bootstrap).
    pub actor: Option<UserRef>,
    /// What: `recipe.create`, `approval.approve`, `token.revoke`, …
    pub action: String,
    /// `user`, `token`, `environment`, `recipe`, `signing_key`.
    pub object_type: String,
    /// The object's id.
    pub object_id: i64,
    /// Action-specific details.
    #[schema(value_type = Object)]
    pub details: Value,
}

impl From<AuditEvent> for AuditEventView {
    fn from(event: AuditEvent) -> AuditEventView {
        AuditEventView {
            id: event.id,
            at: event.at,
            actor: user_ref(event.actor_id, event.actor),
            action: event.action,
            object_type: event.object_type,
            object_id: event.object_id,
            details: event.details,
        }
    }
}

/// Events per UTC day, object, slug, branch and method.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EnrollmentCountView {
    /// The UTC day of the events.
    pub day: Date,
    /// The event object (`preference_study`, …).
    pub object: String,
    /// The slug (the event's value).
    pub slug: String,
    /// `extra.branch`, or empty.
    pub branch: String,
    /// The event method (`enroll`, `unenroll`, …).
    pub method: String,
    /// How many events.
    pub count: i64,
}

impl From<EnrollmentCount> for EnrollmentCountView {
    fn from(count: EnrollmentCount) -> EnrollmentCountView {
        EnrollmentCountView {
            day: count.day,
            object: count.object,
            slug: count.slug,
            branch: count.branch,
            method: count.method,
            count: count.count,
        }
    }
}

/// An approval request (Normandy's shape, with `state` and the ids spelled out).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApprovalRequestView {
    /// Id.
    pub id: i64,
    /// The revision to approve.
    pub revision_id: i64,
    /// Its recipe.
    pub recipe_id: i64,
    /// `pending`, `approved` or `rejected`.
    #[schema(example = "pending")]
    pub state: String,
    /// Normandy's spelling of the state: `null` while pending, then `true` or `false`.
    pub approved: Option<bool>,
    /// Who asked.
    pub creator: Option<UserRef>,
    /// Who decided.
    pub approver: Option<UserRef>,
    /// The decision's comment.
    pub comment: Option<String>,
    /// When approval was asked.
    pub created: Timestamp,
    /// When it was decided.
    pub decided_at: Option<Timestamp>,
}

impl From<ApprovalRequest> for ApprovalRequestView {
    fn from(request: ApprovalRequest) -> ApprovalRequestView {
        ApprovalRequestView {
            id: request.id,
            revision_id: request.revision_id,
            recipe_id: request.recipe_id,
            state: request.state.as_str().to_owned(),
            approved: match request.state {
                ApprovalState::Pending => None,
                ApprovalState::Approved => Some(true),
                ApprovalState::Rejected => Some(false),
            },
            creator: user_ref(request.creator_id, request.creator),
            approver: user_ref(request.approver_id, request.approver),
            comment: request.comment,
            created: request.created_at,
            decided_at: request.decided_at,
        }
    }
}

/// The recipe a revision belongs to.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecipeRef {
    /// The recipe's id.
    pub id: i64,
    /// Its kind: `normandy`, `manifest-v1`, `flight`, `flag`, `target-group`.
    pub kind: String,
    /// Its environment.
    pub environment: String,
}

/// A Normandy action, as Normandy's readers expect it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActionRef {
    /// The action's name (`preference-rollout`, …).
    pub name: String,
}

/// A Normandy revision's fields at the top level, as Normandy's v3 API reads them.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct NormandyFields {
    /// The recipe's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<ActionRef>,
    /// The action's arguments.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub arguments: Option<Value>,
    /// The filter expression as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_filter_expression: Option<String>,
    /// Structured filters.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub filter_object: Option<Value>,
    /// Capabilities the author added.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>)]
    pub extra_capabilities: Option<Value>,
    /// The Experimenter slug.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experimenter_slug: Option<String>,
    /// The identicon seed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identicon_seed: Option<String>,
    /// Older filters: locale codes.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>)]
    pub locales: Option<Value>,
    /// Older filters: country codes.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>)]
    pub countries: Option<Value>,
    /// Older filters: channel slugs.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>)]
    pub channels: Option<Value>,
    /// The filter the client evaluates, compiled from every filter field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter_expression: Option<String>,
    /// The capabilities a client needs to run the recipe.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Vec<String>>,
}

impl NormandyFields {
    fn of(data: &Value) -> NormandyFields {
        let text = |key: &str| data.get(key).and_then(Value::as_str).map(str::to_owned);
        let raw = |key: &str| data.get(key).filter(|v| !v.is_null()).cloned();
        let derived = validate::normandy_derived(data);
        NormandyFields {
            name: text("name"),
            action: text("action").map(|name| ActionRef { name }),
            arguments: raw("arguments"),
            extra_filter_expression: text("extra_filter_expression"),
            filter_object: raw("filter_object"),
            extra_capabilities: raw("extra_capabilities"),
            experimenter_slug: text("experimenter_slug"),
            identicon_seed: text("identicon_seed"),
            locales: raw("locales"),
            countries: raw("countries"),
            channels: raw("channels"),
            filter_expression: derived.as_ref().and_then(|d| d.filter_expression.clone()),
            capabilities: derived.map(|d| d.capabilities),
        }
    }
}

/// One immutable revision of a recipe.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RevisionView {
    /// Id.
    pub id: i64,
    /// Its recipe.
    pub recipe: RecipeRef,
    /// The revision it replaced.
    pub parent_id: Option<i64>,
    /// The kind's document, as stored.
    #[schema(value_type = Object)]
    pub data: Value,
    /// The author's comment.
    pub comment: String,
    /// The author; `null` for the system.
    pub creator: Option<UserRef>,
    /// When it was made.
    pub date_created: Timestamp,
    /// Its approval request, if one was made and not closed.
    pub approval_request: Option<ApprovalRequestView>,
    /// Normandy revisions only: the document's fields, `filter_expression`, `capabilities`.
    #[serde(flatten)]
    pub normandy: Option<NormandyFields>,
}

/// Builds the view of `revision`, a revision of `recipe`.
pub(crate) fn revision_view(recipe: &Recipe, revision: Revision) -> RevisionView {
    let normandy = (recipe.kind == Kind::Normandy).then(|| NormandyFields::of(&revision.data));
    RevisionView {
        id: revision.id,
        recipe: RecipeRef {
            id: recipe.id,
            kind: recipe.kind.as_str().to_owned(),
            environment: recipe.environment.clone(),
        },
        parent_id: revision.parent_id,
        data: revision.data,
        comment: revision.comment,
        creator: user_ref(revision.author_id, revision.author),
        date_created: revision.created_at,
        approval_request: revision.approval_request.map(ApprovalRequestView::from),
        normandy,
    }
}

/// The views of revisions of any recipes, reading each recipe once.
pub(crate) async fn revision_views(
    store: &Store,
    revisions: Vec<Revision>,
) -> Result<Vec<RevisionView>, ApiError> {
    let mut recipes: HashMap<i64, Recipe> = HashMap::new();
    let mut views = Vec::with_capacity(revisions.len());
    for revision in revisions {
        let recipe = match recipes.get(&revision.recipe_id) {
            Some(recipe) => recipe,
            None => {
                let recipe = store.recipe(revision.recipe_id).await?;
                recipes.entry(recipe.id).or_insert(recipe)
            }
        };
        views.push(revision_view(recipe, revision));
    }
    Ok(views)
}

/// A recipe with its latest and approved revisions.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecipeView {
    /// Id.
    pub id: i64,
    /// `normandy`, `manifest-v1`, `flight`, `flag` or `target-group`.
    pub kind: String,
    /// The environment it belongs to.
    pub environment: String,
    /// Whether the approved revision is published.
    pub enabled: bool,
    /// Whether the latest revision is the approved one.
    pub is_approved: bool,
    /// When the recipe was created.
    pub created_at: Timestamp,
    /// When it last changed (revision, approval, enabled state).
    pub last_updated: Timestamp,
    /// The newest revision.
    pub latest_revision: RevisionView,
    /// The revision published while the recipe is enabled.
    pub approved_revision: Option<RevisionView>,
}

/// Reads `recipe`'s revisions and builds its view.
pub(crate) async fn recipe_view(store: &Store, recipe: Recipe) -> Result<RecipeView, ApiError> {
    let latest = store.revision(recipe.latest_revision_id).await?;
    let approved = match recipe.approved_revision_id {
        None => None,
        Some(id) if id == latest.id => Some(latest.clone()),
        Some(id) => Some(store.revision(id).await?),
    };
    Ok(RecipeView {
        id: recipe.id,
        kind: recipe.kind.as_str().to_owned(),
        environment: recipe.environment.clone(),
        enabled: recipe.enabled,
        is_approved: recipe.approved_revision_id == Some(recipe.latest_revision_id),
        created_at: recipe.created_at,
        last_updated: recipe.updated_at,
        approved_revision: approved.map(|revision| revision_view(&recipe, revision)),
        latest_revision: revision_view(&recipe, latest),
    })
}

/// A recipe after a write, with what validation warned about.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecipeWritten {
    /// The recipe as it is now.
    #[serde(flatten)]
    pub recipe: RecipeView,
    /// Whether the write made a new revision (an update with unchanged data does not).
    pub revision_created: bool,
    /// Problems that did not refuse the write.
    pub warnings: Vec<FieldProblemSchema>,
}

/// `warnings` in the answer's shape.
pub(crate) fn warnings(problems: Vec<FieldProblem>) -> Vec<FieldProblemSchema> {
    problems
        .into_iter()
        .map(|p| FieldProblemSchema {
            field: p.field,
            message: p.message,
        })
        .collect()
}

/// One page of recipes (Normandy's pagination).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecipePage {
    /// How many recipes match.
    pub count: usize,
    /// The next page's URL (path and query), if any.
    pub next: Option<String>,
    /// The previous page's URL, if any.
    pub previous: Option<String>,
    /// This page's recipes.
    pub results: Vec<RecipeView>,
}
