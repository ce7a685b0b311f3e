//! The Normandy client actions: preference rollouts, rollbacks and preference experiments
//! (`preference-experiment` with one preference, `multi-preference-experiment`).
//!
//! Pure logic over a [`PrefStore`] and the [`ClientState`]: no file IO, no clock (the time of
//! the run is [`Session::now`]). The runtime loads the state, runs a [`Session`], journals the
//! preference writes and persists the state with the [`TelemetryEvent`]s the session produced.
//!
//! A run has two steps, as in Firefox:
//! - [`startup`] ("browser startup"): re-apply the default-branch values of active rollouts and
//!   experiments, refresh the values they restore from the application's built-in defaults,
//!   graduate rollouts whose values became the built-in defaults, and end experiments whose
//!   preference was changed while the client was not watching.
//! - [`run`]: give each recipe, with its [`Suitability`], to its action, then finalize (end
//!   experiments whose recipe is gone).
//!
//! Between runs the application reports preference changes with [`preference_changed`].
//!
//! Telemetry events follow Normandy's (category `normandy`): `method`, `object`
//! (`preference_study`, `preference_rollout`, `preference_rollback`), `value` (the slug) and
//! string extras, never null.

// Library code never panics, whatever the state file or the recipes say.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use std::collections::{BTreeMap, BTreeSet};

use flightdeck_core::evaluate::ItemResult;
use flightdeck_core::model::normandy::{
    ACTION_MULTI_PREFERENCE_EXPERIMENT, ACTION_PREFERENCE_EXPERIMENT,
    ACTION_SINGLE_PREFERENCE_EXPERIMENT, Arguments, Recipe,
};
use jiff::{SignedDuration, Timestamp};

use crate::events::{Annotation, TelemetryEvent};
use crate::prefs::{PrefStore, PrefValue};
use crate::state::{ClientState, RolloutState};

mod experiments;
mod rollouts;

pub use experiments::{
    EnrollError, StartPreference, StartRequest, StopError, start, studies_opt_out,
};
pub use rollouts::{RollbackError, RollbackOutcome, rollback};

/// Telemetry object of preference experiment events.
pub const OBJECT_PREFERENCE_STUDY: &str = "preference_study";
/// Telemetry object of preference rollout events.
pub const OBJECT_PREFERENCE_ROLLOUT: &str = "preference_rollout";
/// Telemetry object of preference rollback events.
pub const OBJECT_PREFERENCE_ROLLBACK: &str = "preference_rollback";
/// The longest `experimentType`: the telemetry annotation type `normandy-<type>` is limited to
/// 20 characters.
pub const MAX_EXPERIMENT_TYPE_LENGTH: usize = 11;
/// The preference that says whether the user takes part in studies (experiments).
pub const STUDIES_ENABLED_PREF: &str = "app.shield.optoutstudies.enabled";

/// What the Normandy actions are allowed to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormandyConfig {
    /// `app.shield.optoutstudies.enabled`: when false, no experiment enrolls and every active
    /// experiment ends (`general-opt-out`). Rollouts are not studies and are not affected.
    pub studies_enabled: bool,
    /// How long an experiment survives filter errors, signature errors and empty recipe lists
    /// before it ends (7 days in Firefox).
    pub temporary_error_grace: SignedDuration,
    /// Rollout slugs the build declares graduated (Firefox's hard-coded `GRADUATION_SET`).
    pub graduation_set: BTreeSet<String>,
}

impl Default for NormandyConfig {
    fn default() -> NormandyConfig {
        NormandyConfig {
            studies_enabled: true,
            temporary_error_grace: SignedDuration::from_hours(7 * 24),
            graduation_set: BTreeSet::new(),
        }
    }
}

/// Whether a recipe applies to this client, as the actions see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Suitability {
    /// The filter matched (the action decides the rest, e.g. paused enrollment).
    Match,
    /// The filter said no.
    Mismatch,
    /// The filter could not be evaluated: a temporary error for active experiments.
    FilterError(String),
    /// The client lacks a capability the recipe requires.
    CapabilitiesMismatch,
    /// The recipe's arguments are invalid.
    ArgumentsInvalid,
    /// The recipe's signature did not verify: a temporary error for active experiments.
    SignatureError(String),
}

/// Maps the core's evaluation of a recipe to its [`Suitability`].
///
/// `enrollment-paused` and `no-user-id` are [`Suitability::Match`]: the filter matched, and
/// the experiment action handles pausing (and a missing user id) itself. `unsupported-action`
/// is a capabilities mismatch (the client lacks `action.<name>`), a `branch-error` means the
/// branch ratios cannot be sampled (invalid arguments), and any reason this module does not
/// know is treated as a filter error, the cautious choice: it only ends an experiment after
/// the grace period.
pub fn suitability(result: &ItemResult) -> Suitability {
    if result.matched {
        return Suitability::Match;
    }
    let Some(reason) = result.reason.as_deref() else {
        return Suitability::Mismatch;
    };
    match reason {
        "filter-mismatch" => Suitability::Mismatch,
        "capabilities-mismatch" | "unsupported-action" => Suitability::CapabilitiesMismatch,
        "arguments-invalid" => Suitability::ArgumentsInvalid,
        "enrollment-paused" | "no-user-id" => Suitability::Match,
        _ => {
            if let Some(message) = strip_reason(reason, "filter-error") {
                Suitability::FilterError(message.to_owned())
            } else if let Some(message) = strip_reason(reason, "signature-error") {
                Suitability::SignatureError(message.to_owned())
            } else if strip_reason(reason, "branch-error").is_some() {
                Suitability::ArgumentsInvalid
            } else {
                Suitability::FilterError(reason.to_owned())
            }
        }
    }
}

/// `Some(message)` when `reason` is `prefix` or `prefix: message`.
fn strip_reason<'r>(reason: &'r str, prefix: &str) -> Option<&'r str> {
    let rest = reason.strip_prefix(prefix)?;
    if rest.is_empty() {
        return Some("");
    }
    rest.strip_prefix(": ").or_else(|| rest.strip_prefix(':'))
}

/// One recipe of a run with its suitability.
#[derive(Debug, Clone)]
pub struct RecipeRun<'a> {
    /// The recipe.
    pub recipe: &'a Recipe,
    /// Whether it applies (see [`suitability`]).
    pub suitability: Suitability,
}

/// Everything one run of the actions reads and writes.
pub struct Session<'a> {
    /// The time of the run: `lastSeen`, enrollment and end times, error deadlines.
    pub now: Timestamp,
    /// The client's randomization id, for branch choice. Without one, no experiment enrolls.
    pub user_id: Option<&'a str>,
    /// The application's preferences.
    pub prefs: &'a mut dyn PrefStore,
    /// The persistent records.
    pub state: &'a mut ClientState,
    /// Telemetry events produced, appended in order.
    pub events: &'a mut Vec<TelemetryEvent>,
    /// What the actions may do.
    pub config: &'a NormandyConfig,
}

impl std::fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("now", &self.now)
            .field("user_id", &self.user_id)
            .field("state", &self.state)
            .field("events", &self.events)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Session<'_> {
    fn emit(&mut self, event: TelemetryEvent) {
        self.events.push(event);
    }
}

/// Run-start work, before any recipe runs (Firefox's startup prefs, `recordOriginalValues`,
/// `PreferenceRollouts.init` and `PreferenceExperiments.init`), in this order:
///
/// 1. Write the values of active rollouts, then of active experiments' default-branch
///    preferences (not the overridden ones), onto the default branch. A preference whose
///    built-in default (else its current default) has another type is skipped.
/// 2. Refresh each active rollout's `previousValue` from `builtin_defaults`; a rollout whose
///    values all equal their built-in defaults graduates (`all-prefs-match`). Refresh each
///    active experiment's default-branch `previousPreferenceValue` the same way.
/// 3. Graduate active rollouts of [`NormandyConfig::graduation_set`] (`in-graduation-set`).
/// 4. End every active experiment with a non-overridden preference whose effective value is
///    not the experiment's (`user-preference-changed-sideload`), leaving the changed values.
/// 5. When studies are disabled, end every active experiment (`general-opt-out`).
///
/// `builtin_defaults` holds the built-in default of each preference the application knows
/// (`None`: known to have none). For a preference not in the map the stored previous value is
/// kept, and a rollout with such a preference cannot graduate by `all-prefs-match`.
pub fn startup(session: &mut Session, builtin_defaults: &BTreeMap<String, Option<PrefValue>>) {
    rollouts::apply_startup(session, builtin_defaults);
    experiments::apply_startup(session, builtin_defaults);
    rollouts::record_original_values(session, builtin_defaults);
    experiments::record_original_values(session, builtin_defaults);
    rollouts::graduate_graduation_set(session, builtin_defaults);
    experiments::detect_sideloads(session);
    if !session.config.studies_enabled {
        studies_opt_out(session);
    }
}

/// Runs every recipe with its action, in order, then finalizes the experiment action:
/// every active experiment whose recipe was not in `recipes` ends (`recipe-not-seen`), or,
/// when `no_recipes` (the recipe list was empty), gets a temporary error (`no-recipes`).
///
/// Rollouts and rollbacks act on [`Suitability::Match`] only. When studies are disabled the
/// experiment action is off for the run: active experiments end (`general-opt-out`), no
/// experiment recipe is looked at and nothing is finalized.
pub fn run(session: &mut Session, recipes: &[RecipeRun], no_recipes: bool) {
    let studies = session.config.studies_enabled;
    if !studies {
        studies_opt_out(session);
    }
    let mut seen = BTreeSet::new();
    for item in recipes {
        match &item.recipe.arguments {
            Arguments::PreferenceRollout(args) => {
                if item.suitability == Suitability::Match {
                    rollouts::run_rollout(session, args);
                }
            }
            Arguments::PreferenceRollback(args) => {
                if item.suitability == Suitability::Match {
                    // Failures are reported as telemetry events; the run goes on.
                    let _ = rollback(session, &args.rollout_slug);
                }
            }
            Arguments::PreferenceExperiment(_) | Arguments::MultiPreferenceExperiment(_) => {
                if studies {
                    experiments::process_recipe(session, item, &mut seen);
                }
            }
            Arguments::Invalid { action, .. } if is_experiment_action(action) => {
                if studies {
                    experiments::process_recipe(session, item, &mut seen);
                }
            }
            Arguments::Invalid { .. } | Arguments::Other { .. } => {}
        }
    }
    if studies {
        experiments::finalize(session, &seen, no_recipes);
    }
}

fn is_experiment_action(action: &str) -> bool {
    matches!(
        action,
        ACTION_PREFERENCE_EXPERIMENT
            | ACTION_SINGLE_PREFERENCE_EXPERIMENT
            | ACTION_MULTI_PREFERENCE_EXPERIMENT
    )
}

/// The application (or the user) changed `name`. If an active experiment owns it (and it is
/// not overridden) and its effective value is no longer the experiment's, the experiment ends
/// with reason `user-preference-changed`: the changed value is kept, the experiment's other
/// preferences are restored. Rollouts ignore user changes.
pub fn preference_changed(session: &mut Session, name: &str) {
    experiments::preference_changed(session, name);
}

/// Ends the experiment `slug`: restores its preferences when `reset` (except user-branch
/// preferences the user overrode), marks it expired and sends `unenroll`. Fails, with an
/// `unenrollFailed` event, when there is no such experiment (`does-not-exist`) or it already
/// ended (`already-unenrolled`). Also the path for about:studies' "Remove"
/// (`individual-opt-out`).
pub fn stop_experiment(
    session: &mut Session,
    slug: &str,
    reset: bool,
    reason: &str,
) -> Result<(), StopError> {
    let reset = if reset {
        experiments::Reset::All
    } else {
        experiments::Reset::Nothing
    };
    experiments::stop(session, slug, &reset, reason, None)
}

/// The telemetry environment annotations: every active experiment
/// (`{branch, type: normandy-exp|normandy-exp-highpop}`) and every active rollout
/// (`{branch: "active", type: normandy-prefrollout}`). Should a rollout and an experiment
/// share a slug, the experiment's annotation wins.
pub fn annotations(state: &ClientState) -> BTreeMap<String, Annotation> {
    let mut out = BTreeMap::new();
    for record in state
        .rollouts
        .values()
        .filter(|r| r.state == RolloutState::Active)
    {
        out.insert(
            record.slug.clone(),
            Annotation {
                branch: RolloutState::Active.as_str().to_owned(),
                kind: "normandy-prefrollout".to_owned(),
            },
        );
    }
    for record in state.experiments.values().filter(|r| !r.expired) {
        out.insert(
            record.slug.clone(),
            Annotation {
                branch: record.branch.clone(),
                kind: format!("normandy-{}", record.experiment_type),
            },
        );
    }
    out
}

/// The filter environment's `normandy.experiments` (`{all, active, expired}` slug lists of
/// preference experiments), `normandy.studies` (`{pref: {slug: record}, addon: {}}`, every
/// experiment record, ended ones included) and `normandy.rollouts`
/// (`{pref: {slug: record}, addon: {}}`, every rollout record), as Firefox builds them.
pub fn filter_environment_extras(
    state: &ClientState,
) -> (serde_json::Value, serde_json::Value, serde_json::Value) {
    let mut all = Vec::new();
    let mut active = Vec::new();
    let mut expired = Vec::new();
    let mut studies = serde_json::Map::new();
    for record in state.experiments.values() {
        all.push(record.slug.clone());
        if record.expired {
            expired.push(record.slug.clone());
        } else {
            active.push(record.slug.clone());
        }
        studies.insert(
            record.slug.clone(),
            serde_json::to_value(record).unwrap_or(serde_json::Value::Null),
        );
    }
    let mut rollouts = serde_json::Map::new();
    for record in state.rollouts.values() {
        rollouts.insert(
            record.slug.clone(),
            serde_json::to_value(record).unwrap_or(serde_json::Value::Null),
        );
    }
    (
        serde_json::json!({"all": all, "active": active, "expired": expired}),
        serde_json::json!({"pref": studies, "addon": {}}),
        serde_json::json!({"pref": rollouts, "addon": {}}),
    )
}

/// Whether `value` could be stored in a preference that has `entry`'s values: Firefox
/// preferences have one type, so a value of another type than either branch is rejected.
fn type_fits(entry: &crate::prefs::PrefEntry, value: &PrefValue) -> bool {
    crate::state::same_type(entry.default.as_ref(), Some(value))
        && crate::state::same_type(entry.user.as_ref(), Some(value))
}

#[cfg(test)]
mod tests;
