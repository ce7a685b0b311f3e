//! Normandy recipes: parsing, validation and serialisation.
//!
//! Every shape Normandy and Remote Settings publish is accepted, alone, in a JSON array, in a
//! paginated `{results: [...]}` page or in a Remote Settings `{data: [...]}` listing:
//!
//! | shape | looks like |
//! |---|---|
//! | minimal recipe (the signed bytes) | `{id, name, revision_id, action: "name", arguments, filter_expression, capabilities}` |
//! | API v1 recipe | the same keys plus `enabled`, `last_updated`, `is_approved`, … (kept as extras) |
//! | signed record | `{recipe: <minimal>, signature: {...}}`, with `id` (a string) in Remote Settings |
//! | API v3 recipe | `{id, latest_revision: {...}, approved_revision: {...}, signature}`; revisions carry `action: {name, ...}`, `arguments`, `extra_filter_expression`, `filter_object` |
//!
//! A v3 recipe is read from its approved revision when there is one (that is what clients run),
//! else from its latest. Its `filter_expression` is compiled from `locales`, `countries`,
//! `channels`, `filter_object` and `extra_filter_expression` exactly as the Normandy server does
//! (see [`filter`]).
//!
//! Arguments are validated like Normandy's action JSON schemas; unknown keys are allowed and
//! kept. A recipe with invalid arguments is kept (as [`Arguments::Invalid`]) so evaluation can
//! report `arguments-invalid`; a recipe without an id, name or action is dropped. Every
//! diagnostic carries the file, line, column and field path.
//!
//! [`to_json`] writes a set back in the shape each recipe came in; `parse(to_json(x))` gives a
//! model equal to `x`.

mod arguments;
pub mod filter;
mod json;
mod parse;
mod serialise;
#[cfg(test)]
mod tests;
mod tree;

use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::value::Value;

pub use arguments::{
    Arguments, ExperimentPreference, MultiPreferenceBranch, MultiPreferenceExperimentArguments,
    PrefBranchType, PrefType, RollbackArguments, RolloutArguments, RolloutPreference,
    SinglePreferenceBranch, SinglePreferenceExperimentArguments,
};
pub use filter::Filter;
pub use parse::parse;
pub use serialise::to_json;

/// A JSON object as it appeared in the input (key order kept).
pub type JsonMap = serde_json::Map<String, serde_json::Value>;

/// The `preference-rollout` action.
pub const ACTION_PREFERENCE_ROLLOUT: &str = "preference-rollout";
/// The `preference-rollback` action.
pub const ACTION_PREFERENCE_ROLLBACK: &str = "preference-rollback";
/// The legacy single-preference experiment action (seed 002).
pub const ACTION_PREFERENCE_EXPERIMENT: &str = "preference-experiment";
/// The name newer Firefox schemas give the single-preference experiment action.
pub const ACTION_SINGLE_PREFERENCE_EXPERIMENT: &str = "single-preference-experiment";
/// The current preference experiment action.
pub const ACTION_MULTI_PREFERENCE_EXPERIMENT: &str = "multi-preference-experiment";

/// Every action Flightdeck runs. Other actions are accepted with a warning and never apply.
pub const SUPPORTED_ACTIONS: [&str; 5] = [
    ACTION_PREFERENCE_ROLLOUT,
    ACTION_PREFERENCE_ROLLBACK,
    ACTION_PREFERENCE_EXPERIMENT,
    ACTION_SINGLE_PREFERENCE_EXPERIMENT,
    ACTION_MULTI_PREFERENCE_EXPERIMENT,
];

/// The recipes of one file, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct RecipeSet {
    /// The usable recipes (recipes without an id, name or action are dropped with an error).
    pub recipes: Vec<Recipe>,
    /// How the recipes were wrapped in the file.
    pub container: Container,
}

/// How the recipes of a file were wrapped.
#[derive(Debug, Clone, PartialEq)]
pub enum Container {
    /// The file is one recipe.
    Single,
    /// The file is a JSON array of recipes.
    Array,
    /// A paginated API page `{count, next, previous, results: [...]}`; `extra` holds every key
    /// but `results`.
    Paginated {
        /// The page's other keys.
        extra: JsonMap,
    },
    /// A Remote Settings listing `{data: [...]}`; `extra` holds every key but `data`.
    RemoteSettings {
        /// The listing's other keys.
        extra: JsonMap,
    },
}

/// One Normandy recipe.
///
/// Laid out in declaration order, with what evaluation reads first: a large manifest is
/// evaluated recipe after recipe, and keeping those fields on the same cache lines matters
/// more than the few bytes of padding this may cost.
#[derive(Debug, Clone)]
#[repr(C)]
pub struct Recipe {
    /// The recipe id (stable across revisions).
    pub id: u64,
    /// The action name (`preference-rollout`, …).
    pub action: String,
    /// The filter expression, compiled; `None` when the recipe has none (evaluation then
    /// reports a filter error).
    pub filter: Option<Filter>,
    /// The verdict on `capabilities` when it does not depend on the client (see
    /// [`Recipe::static_capabilities`]).
    static_capabilities: OnceLock<Option<bool>>,
    /// `{id, arguments}` as a filter value, built on first use (see [`Recipe::filter_subject`]).
    subject: OnceLock<Value>,
    /// `{id}` as a filter value, built on first use (see [`Recipe::filter_subject_id`]).
    id_subject: OnceLock<Value>,
    /// Capabilities the client must have to run the recipe.
    pub capabilities: Vec<String>,
    /// The action's arguments, typed for the supported actions.
    pub arguments: Arguments,
    /// The recipe's name.
    pub name: String,
    /// The revision this content comes from, as the file wrote it (a string in signed records).
    pub revision_id: Option<RevisionId>,
    /// The recipe's content signature, when the shape carries one.
    pub signature: Option<Signature>,
    /// Where the fields sat in the input, so [`to_json`] can write the same shape back.
    pub layout: Layout,
}

impl PartialEq for Recipe {
    fn eq(&self, other: &Recipe) -> bool {
        // `subject`, `id_subject` and `static_capabilities` are derived, so they are left out.
        self.id == other.id
            && self.name == other.name
            && self.revision_id == other.revision_id
            && self.action == other.action
            && self.arguments == other.arguments
            && self.filter == other.filter
            && self.capabilities == other.capabilities
            && self.signature == other.signature
            && self.layout == other.layout
    }
}

impl Recipe {
    /// A recipe written as a minimal recipe object, with no capabilities and no signature.
    pub fn new(
        id: u64,
        name: &str,
        action: &str,
        arguments: Arguments,
        filter: Option<Filter>,
    ) -> Recipe {
        let layout = Layout {
            filter_source: FilterSource {
                filter_expression: filter.as_ref().map(|f| f.expression.clone()),
                ..FilterSource::default()
            },
            ..Layout::default()
        };
        Recipe {
            id,
            name: name.to_owned(),
            revision_id: None,
            action: action.to_owned(),
            arguments,
            filter,
            capabilities: Vec::new(),
            signature: None,
            layout,
            subject: OnceLock::new(),
            id_subject: OnceLock::new(),
            static_capabilities: OnceLock::new(),
        }
    }

    /// The value filters see as `normandy.recipe`: `{id, arguments}`.
    ///
    /// Built once per recipe and then shared, so evaluating many clients does not rebuild it.
    /// Do not change `id` or `arguments` after the first evaluation.
    pub fn filter_subject(&self) -> &Value {
        self.subject.get_or_init(|| {
            let arguments = serialise::arguments_json(&self.arguments)
                .map_or(Value::Undefined, |json| Value::from_json(&json));
            let mut object = crate::value::Object::new();
            object.insert(Arc::from("id"), Value::Number(self.id as f64));
            object.insert(Arc::from("arguments"), arguments);
            Value::object(object)
        })
    }

    /// `{id}` as a filter value: what a filter that reads nothing of `normandy.recipe` but its
    /// `id` sees in place of [`Recipe::filter_subject`] (building the arguments as a value
    /// costs far more than such a filter). Built once per recipe and then shared.
    pub(crate) fn filter_subject_id(&self) -> &Value {
        self.id_subject.get_or_init(|| {
            let mut object = crate::value::Object::with_capacity_and_hasher(1, Default::default());
            object.insert(Arc::from("id"), Value::Number(self.id as f64));
            Value::object(object)
        })
    }

    /// Whether every capability is supported, when that is the same for every client: `verdict`
    /// answers for the list (`None` when some capability depends on the client), once.
    ///
    /// Do not change `capabilities` after the first evaluation.
    pub(crate) fn static_capabilities(
        &self,
        verdict: impl FnOnce(&[String]) -> Option<bool>,
    ) -> Option<bool> {
        *self
            .static_capabilities
            .get_or_init(|| verdict(&self.capabilities))
    }

    /// The experiment or rollout slug this recipe is about, if its arguments have one.
    pub fn slug(&self) -> Option<&str> {
        self.arguments.slug()
    }
}

/// A revision id as the file wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevisionId {
    /// A JSON number (API v1 and v3).
    Number(u64),
    /// A JSON string (signed records: telemetry code expects a string).
    Text(String),
}

impl fmt::Display for RevisionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RevisionId::Number(n) => write!(f, "{n}"),
            RevisionId::Text(s) => f.write_str(s),
        }
    }
}

/// A recipe's content signature (verified by the client, not here).
#[derive(Debug, Clone, PartialEq)]
pub struct Signature {
    /// The base64url ECDSA P-384 signature.
    pub signature: String,
    /// When it was made.
    pub timestamp: Option<String>,
    /// Where the certificate chain is.
    pub x5u: Option<String>,
    /// The signer's public key.
    pub public_key: Option<String>,
    /// Any other keys, kept for serialisation.
    pub extra: JsonMap,
}

/// Where a recipe's fields sat in the input.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layout {
    /// The outer shape.
    pub shape: Shape,
    /// `Some(other keys of the action object)` when `action` was an object `{name, ...}`
    /// (API v3), `None` when it was a plain name.
    pub action_object: Option<JsonMap>,
    /// The filter fields exactly as given.
    pub filter_source: FilterSource,
    /// Whether `capabilities` was in the input (a v3 revision without it gets them derived).
    pub capabilities_given: bool,
    /// The recipe (or revision) object's other keys.
    pub extra: JsonMap,
}

/// The outer shape a recipe came in.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Shape {
    /// A bare recipe object: the minimal (signed) recipe or an API v1 recipe.
    #[default]
    Bare,
    /// A signed record `{id?, recipe, signature}`.
    Signed {
        /// The record's own `id` (a string in Remote Settings), when present.
        record_id: Option<serde_json::Value>,
        /// Whether `signature` was written as `null` (rather than absent or an object).
        signature_null: bool,
        /// The record's other keys (e.g. `last_modified`).
        extra: JsonMap,
    },
    /// An API v3 recipe `{id, latest_revision, approved_revision, signature}`.
    V3 {
        /// Which revision the recipe was read from.
        from: RevisionSlot,
        /// What the other revision slot held.
        other: OtherRevision,
        /// Whether `signature` was written as `null`.
        signature_null: bool,
        /// The recipe's other top-level keys (e.g. `uses_only_baseline_capabilities`).
        extra: JsonMap,
    },
}

/// A revision slot of an API v3 recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevisionSlot {
    /// `approved_revision`.
    Approved,
    /// `latest_revision`.
    Latest,
}

impl RevisionSlot {
    /// The JSON key of the slot.
    pub fn key(self) -> &'static str {
        match self {
            RevisionSlot::Approved => "approved_revision",
            RevisionSlot::Latest => "latest_revision",
        }
    }

    /// The other slot.
    pub fn other(self) -> RevisionSlot {
        match self {
            RevisionSlot::Approved => RevisionSlot::Latest,
            RevisionSlot::Latest => RevisionSlot::Approved,
        }
    }
}

/// What the revision slot a recipe was not read from held.
#[derive(Debug, Clone, PartialEq)]
pub enum OtherRevision {
    /// The key was absent.
    Absent,
    /// The key was `null` (e.g. no approved revision yet).
    Null,
    /// The same revision as the one read (the usual case once approved).
    Same,
    /// A different revision (a draft newer than the approved one), kept unparsed.
    Raw(serde_json::Value),
}

/// The filter fields of a recipe or revision, exactly as given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FilterSource {
    /// `filter_expression` (the compiled expression in minimal, v1 and v3 output).
    pub filter_expression: Option<String>,
    /// `extra_filter_expression` (v3).
    pub extra_filter_expression: Option<String>,
    /// `filter_object` (v3): structured filters.
    pub filter_object: Option<serde_json::Value>,
    /// `locales` (older v3 revisions).
    pub locales: Option<serde_json::Value>,
    /// `countries` (older v3 revisions).
    pub countries: Option<serde_json::Value>,
    /// `channels` (older v3 revisions).
    pub channels: Option<serde_json::Value>,
}

impl FilterSource {
    /// Whether any field the server compiles into `filter_expression` is present.
    pub fn has_structured_parts(&self) -> bool {
        self.extra_filter_expression.is_some()
            || self.filter_object.is_some()
            || self.locales.is_some()
            || self.countries.is_some()
            || self.channels.is_some()
    }
}

/// Groups of actions whose slugs share one namespace on the client.
pub(crate) fn action_family(action: &str) -> Option<&'static str> {
    match action {
        ACTION_PREFERENCE_ROLLOUT => Some("preference-rollout"),
        ACTION_PREFERENCE_EXPERIMENT
        | ACTION_SINGLE_PREFERENCE_EXPERIMENT
        | ACTION_MULTI_PREFERENCE_EXPERIMENT => Some("preference-experiment"),
        _ => None,
    }
}
