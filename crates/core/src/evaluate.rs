//! Evaluation with reasons: which recipes, experiments, flights and flags apply to a client.
//!
//! Evaluation never fails as a whole. Each item yields an [`ItemResult`]; an item that cannot be
//! evaluated (a broken filter, a thrown `jsfilter`) yields `matched: false` and a reason saying
//! why, and the other items are still evaluated.
//!
//! The inputs are all explicit: the client context, the client's persisted facts (random values,
//! experiments already started), the evaluation time, and a sandboxed JavaScript runner for
//! Manifest v1 `jsfilter` functions.

pub mod cloudbees;
pub mod manifest_v1;
pub mod normandy;
pub mod testpilot;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::context::ClientContext;
use crate::model::RejectedItem;

/// The decision for one item of a manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemResult {
    /// Recipe id, manifest experiment id, flight name or flag name.
    pub id: String,
    /// What the item is: the Normandy action name (`preference-rollout`, …),
    /// `manifest-experiment`, `flight` or `flag`.
    pub kind: String,
    /// Whether the item applies to this client.
    pub matched: bool,
    /// Why it does not apply (or, for flags, which rule decided); `None` when it simply matched.
    pub reason: Option<String>,
    /// The chosen branch, when the item has branches.
    pub branch: Option<String>,
    /// The value the item gives this client (a flag value, a preference map, …).
    pub value: Option<serde_json::Value>,
}

/// What a client has persisted that evaluation depends on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientFacts {
    /// Uniform values in [0, 1), drawn once by the client and persisted, keyed by
    /// manifest experiment id or flight key name. The core never draws them.
    pub random_values: BTreeMap<String, f64>,
    /// Manifest v1 experiments this client has already started, keyed by experiment id.
    pub started_experiments: BTreeMap<String, StartedExperiment>,
}

/// A Manifest v1 experiment the client has started before.
#[derive(Debug, Clone, PartialEq)]
pub struct StartedExperiment {
    /// When it was activated.
    pub start_time: jiff::Timestamp,
    /// Whether it is still running (false once it ended).
    pub active: bool,
    /// Whether its last installation failed.
    pub failed_start: bool,
}

/// The outcome of running a `jsfilter` function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsFilterOutcome {
    /// `filter(context)` returned a truthy value.
    Truthy,
    /// `filter(context)` returned a falsy value.
    Falsy,
    /// `filter(context)` threw; the message of the thrown value.
    Threw(String),
    /// The source could not be evaluated, defines no `filter` function, or hit a resource limit.
    EvalFailed(String),
}

/// Runs Manifest v1 `jsfilter` source in a sandbox. Implemented outside the core
/// (`flightdeck-jsfilter`), because a JavaScript engine is not pure code.
pub trait JsFilter {
    /// Evaluates `source`, then calls its `filter(context)` with `context` as a JavaScript value.
    fn run(&self, source: &str, context: &serde_json::Value) -> JsFilterOutcome;
}

/// A runner for callers that have no JavaScript engine: every filter fails to evaluate.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoJsFilter;

impl JsFilter for NoJsFilter {
    fn run(&self, _source: &str, _context: &serde_json::Value) -> JsFilterOutcome {
        JsFilterOutcome::EvalFailed("no JavaScript sandbox is configured".to_owned())
    }
}

/// Everything evaluation reads besides the document itself.
pub struct EvalInput<'a> {
    /// The client.
    pub context: &'a ClientContext,
    /// What the client has persisted.
    pub facts: &'a ClientFacts,
    /// The evaluation time.
    pub now: jiff::Timestamp,
    /// The sandbox for `jsfilter` functions.
    pub js_filter: &'a dyn JsFilter,
}

/// The result for an item validation rejected: `matched: false`, reason `invalid: <message>`.
/// `fallback_id` names the item when its own id could not be read.
pub(crate) fn rejected_result(
    item: &RejectedItem,
    kind: &str,
    fallback_id: impl FnOnce() -> String,
) -> ItemResult {
    ItemResult {
        id: item.id.clone().unwrap_or_else(fallback_id),
        kind: kind.to_owned(),
        matched: false,
        reason: Some(format!("invalid: {}", item.message)),
        branch: None,
        value: None,
    }
}

/// The places (ascending) that the valid items of a list occupy, given the places of its
/// rejected items: every place no rejected item takes. Endless; zip it with the valid items.
pub(crate) fn valid_places(rejected: &[RejectedItem]) -> impl Iterator<Item = usize> + use<> {
    let taken: std::collections::HashSet<usize> = rejected.iter().map(|r| r.index).collect();
    (0..).filter(move |place| !taken.contains(place))
}

/// Merges results of valid and rejected items by place (stable; a rejected item comes first
/// on a tie, which only a hand-built model can produce).
pub(crate) fn in_source_order(
    valid: Vec<(usize, ItemResult)>,
    mut rejected: Vec<(usize, ItemResult)>,
) -> Vec<ItemResult> {
    rejected.sort_by_key(|(place, _)| *place);
    let mut out = Vec::with_capacity(valid.len() + rejected.len());
    let mut rejected = rejected.into_iter().peekable();
    for (place, result) in valid {
        while let Some((_, earlier)) = rejected.next_if(|(r, _)| *r <= place) {
            out.push(earlier);
        }
        out.push(result);
    }
    out.extend(rejected.map(|(_, result)| result));
    out
}
