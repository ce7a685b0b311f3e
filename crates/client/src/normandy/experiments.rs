//! Preference experiments: temporary preference changes on a branch chosen per user, ended
//! when the recipe goes away, stops matching, keeps failing, or the user changes a preference.

use std::collections::{BTreeMap, BTreeSet};

use flightdeck_core::evaluate::normandy::choose_branch;
use flightdeck_core::model::normandy::Arguments;

use super::{
    MAX_EXPERIMENT_TYPE_LENGTH, OBJECT_PREFERENCE_STUDY, RecipeRun, Session, Suitability, type_fits,
};
use crate::events::TelemetryEvent;
use crate::prefs::{Branch, PrefValue};
use crate::state::{ExperimentPreference, ExperimentRecord};

/// One preference of a [`StartRequest`]. Type and branch are spelled as in recipes, so that a
/// request built from any source is checked the way Normandy checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartPreference {
    /// The preference name.
    pub name: String,
    /// The experimental value.
    pub value: PrefValue,
    /// `boolean`, `integer` or `string`.
    pub preference_type: String,
    /// `default` or `user`.
    pub branch_type: String,
}

/// An enrollment in a preference experiment on a chosen branch (Normandy's
/// `PreferenceExperiments.start`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartRequest {
    /// The experiment slug.
    pub slug: String,
    /// The action enrolling it.
    pub action_name: String,
    /// The chosen branch's slug.
    pub branch: String,
    /// The branch's preferences.
    pub preferences: Vec<StartPreference>,
    /// `exp` or `exp-highpop` (at most [`MAX_EXPERIMENT_TYPE_LENGTH`] characters).
    pub experiment_type: String,
    /// Name shown to the user.
    pub user_facing_name: String,
    /// Description shown to the user.
    pub user_facing_description: String,
}

/// Why an enrollment failed (an `enrollFailed` event with [`EnrollError::reason`] was sent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnrollError {
    /// The slug is in the store, active or ended: a slug enrolls once, ever.
    #[error("experiment {slug:?}: the slug was already used on this client (name-conflict)")]
    NameConflict {
        /// The experiment slug.
        slug: String,
    },
    /// A preference is already used by another active experiment.
    #[error(
        "experiment {slug:?}: preference {preference:?} is used by the active experiment {other:?} (pref-conflict)"
    )]
    PrefConflict {
        /// The experiment slug.
        slug: String,
        /// The preference in conflict.
        preference: String,
        /// The active experiment using it.
        other: String,
    },
    /// `experimentType` is too long for the telemetry annotation.
    #[error(
        "experiment {slug:?}: experiment type {experiment_type:?} is longer than {MAX_EXPERIMENT_TYPE_LENGTH} characters (experiment-type-too-long)"
    )]
    ExperimentTypeTooLong {
        /// The experiment slug.
        slug: String,
        /// The type given.
        experiment_type: String,
    },
    /// A preference's branch type is neither `default` nor `user`.
    #[error(
        "experiment {slug:?}: preference {preference:?} has branch type {branch_type:?}, not \"default\" or \"user\" (invalid-branch)"
    )]
    InvalidBranch {
        /// The experiment slug.
        slug: String,
        /// The preference.
        preference: String,
        /// The branch type given.
        branch_type: String,
    },
    /// A preference's type is unknown, does not fit its value, or differs from the type the
    /// preference already has on this client.
    #[error("experiment {slug:?}: preference {preference:?}: {problem} (invalid-type)")]
    InvalidType {
        /// The experiment slug.
        slug: String,
        /// The preference.
        preference: String,
        /// What is wrong.
        problem: String,
    },
}

impl EnrollError {
    /// The `reason` extra of the `enrollFailed` event.
    pub fn reason(&self) -> &'static str {
        match self {
            EnrollError::NameConflict { .. } => "name-conflict",
            EnrollError::PrefConflict { .. } => "pref-conflict",
            EnrollError::ExperimentTypeTooLong { .. } => "experiment-type-too-long",
            EnrollError::InvalidBranch { .. } => "invalid-branch",
            EnrollError::InvalidType { .. } => "invalid-type",
        }
    }
}

/// Why an experiment could not be stopped (an `unenrollFailed` event was sent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StopError {
    /// No experiment has this slug.
    #[error("preference experiment {slug:?} does not exist (does-not-exist)")]
    DoesNotExist {
        /// The slug asked for.
        slug: String,
    },
    /// The experiment already ended.
    #[error("preference experiment {slug:?} already ended (already-unenrolled)")]
    AlreadyUnenrolled {
        /// The slug asked for.
        slug: String,
    },
}

impl StopError {
    /// The `reason` extra of the `unenrollFailed` event.
    pub fn reason(&self) -> &'static str {
        match self {
            StopError::DoesNotExist { .. } => "does-not-exist",
            StopError::AlreadyUnenrolled { .. } => "already-unenrolled",
        }
    }
}

/// Which preferences a stop restores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Reset {
    /// All of them (but user-branch preferences the user overrode).
    All,
    /// None.
    Nothing,
    /// All but these (the ones the user changed).
    AllExcept(BTreeSet<String>),
}

fn branch_of(name: &str) -> Option<Branch> {
    match name {
        "default" => Some(Branch::Default),
        "user" => Some(Branch::User),
        _ => None,
    }
}

fn type_of(name: &str) -> Option<&'static str> {
    ["boolean", "integer", "string"]
        .into_iter()
        .find(|t| *t == name)
}

/// Enrolls in an experiment on the branch given (Normandy's `PreferenceExperiments.start`).
///
/// Checks, in order, each failure sending `enrollFailed{reason}`: the slug is new
/// (`name-conflict`), no preference is used by an active experiment (`pref-conflict`),
/// `experimentType` fits (`experiment-type-too-long`), every branch type is known
/// (`invalid-branch`, with `prefBranch`), every type is known, fits its value and the
/// preference's existing type (`invalid-type`). Then records each preference's value on its
/// branch as `previousPreferenceValue`, writes the values — except on the default branch when
/// the preference has a user value (writing would be invisible; it is marked `overridden` and
/// reported with `expPrefChanged{reason: onEnroll}`) — stores the record and sends `enroll`.
pub fn start(session: &mut Session, request: &StartRequest) -> Result<(), EnrollError> {
    let checked = match check_start(session, request) {
        Ok(checked) => checked,
        Err(error) => {
            let mut event =
                TelemetryEvent::new("enrollFailed", OBJECT_PREFERENCE_STUDY, &request.slug)
                    .with("reason", error.reason());
            if let EnrollError::InvalidBranch { branch_type, .. } = &error {
                event = event.with(
                    "prefBranch",
                    branch_type.chars().take(80).collect::<String>(),
                );
            }
            session.emit(event);
            return Err(error);
        }
    };

    let mut preferences = BTreeMap::new();
    let mut overridden = Vec::new();
    // Read every previous value before the first write.
    for (pref, branch) in &checked {
        let entry = session.prefs.get(&pref.name);
        let previous = match branch {
            Branch::Default => entry.default.clone(),
            Branch::User => entry.user.clone(),
        };
        let is_overridden = *branch == Branch::Default && entry.user.is_some();
        if is_overridden {
            overridden.push(pref.name.clone());
        }
        preferences.insert(
            pref.name.clone(),
            ExperimentPreference {
                preference_value: pref.value.clone(),
                preference_type: pref.preference_type.clone(),
                preference_branch_type: *branch,
                previous_preference_value: previous,
                overridden: is_overridden,
            },
        );
    }
    for (name, pref) in &preferences {
        if !pref.overridden {
            session.prefs.set(
                name,
                pref.preference_branch_type,
                Some(pref.preference_value.clone()),
            );
        }
    }
    session.state.experiments.insert(
        request.slug.clone(),
        ExperimentRecord {
            slug: request.slug.clone(),
            action_name: request.action_name.clone(),
            branch: request.branch.clone(),
            expired: false,
            last_seen: session.now,
            temporary_error_deadline: None,
            experiment_type: request.experiment_type.clone(),
            user_facing_name: request.user_facing_name.clone(),
            user_facing_description: request.user_facing_description.clone(),
            preferences,
            enrolled_at: Some(session.now),
            ended_at: None,
            end_reason: None,
        },
    );
    session.emit(
        TelemetryEvent::new("enroll", OBJECT_PREFERENCE_STUDY, &request.slug)
            .with("branch", request.branch.as_str())
            .with("experimentType", request.experiment_type.as_str()),
    );
    for name in overridden {
        session.emit(
            TelemetryEvent::new("expPrefChanged", OBJECT_PREFERENCE_STUDY, &request.slug)
                .with("preferenceName", name)
                .with("reason", "onEnroll"),
        );
    }
    Ok(())
}

fn check_start<'r>(
    session: &Session,
    request: &'r StartRequest,
) -> Result<Vec<(&'r StartPreference, Branch)>, EnrollError> {
    let slug = || request.slug.clone();
    if session.state.experiments.contains_key(&request.slug) {
        return Err(EnrollError::NameConflict { slug: slug() });
    }
    let active = session.state.active_experiment_prefs();
    for pref in &request.preferences {
        if let Some((other, _)) = active.get(pref.name.as_str()) {
            return Err(EnrollError::PrefConflict {
                slug: slug(),
                preference: pref.name.clone(),
                other: (*other).to_owned(),
            });
        }
    }
    // JavaScript's `length`: UTF-16 code units.
    if request.experiment_type.encode_utf16().count() > MAX_EXPERIMENT_TYPE_LENGTH {
        return Err(EnrollError::ExperimentTypeTooLong {
            slug: slug(),
            experiment_type: request.experiment_type.clone(),
        });
    }
    let mut checked = Vec::with_capacity(request.preferences.len());
    for pref in &request.preferences {
        let Some(branch) = branch_of(&pref.branch_type) else {
            return Err(EnrollError::InvalidBranch {
                slug: slug(),
                preference: pref.name.clone(),
                branch_type: pref.branch_type.clone(),
            });
        };
        let invalid_type = |problem: String| EnrollError::InvalidType {
            slug: slug(),
            preference: pref.name.clone(),
            problem,
        };
        let Some(declared) = type_of(&pref.preference_type) else {
            return Err(invalid_type(format!(
                "unknown preference type {:?}",
                pref.preference_type
            )));
        };
        if pref.value.type_name() != declared {
            return Err(invalid_type(format!(
                "the value is {} but the declared type is {declared}",
                pref.value.type_name()
            )));
        }
        if !type_fits(&session.prefs.get(&pref.name), &pref.value) {
            return Err(invalid_type(format!(
                "the preference already exists with another type than {declared}"
            )));
        }
        checked.push((pref, branch));
    }
    Ok(checked)
}

/// An experiment recipe's branches as enrollment requests need them.
struct Branches {
    paused: bool,
    high_population: bool,
    user_facing_name: String,
    user_facing_description: String,
    /// `(slug, ratio, preferences)` per branch.
    branches: Vec<(String, u64, Vec<StartPreference>)>,
}

fn branches(arguments: &Arguments) -> Option<Branches> {
    match arguments {
        Arguments::PreferenceExperiment(args) => Some(Branches {
            paused: args.is_enrollment_paused,
            high_population: args.is_high_population.unwrap_or(false),
            user_facing_name: String::new(),
            user_facing_description: String::new(),
            branches: args
                .branches
                .iter()
                .map(|b| {
                    let pref = StartPreference {
                        name: args.preference_name.clone(),
                        value: b.value.clone(),
                        preference_type: args.preference_type.as_str().to_owned(),
                        branch_type: args.branch_type().as_str().to_owned(),
                    };
                    (b.slug.clone(), b.ratio, vec![pref])
                })
                .collect(),
        }),
        Arguments::MultiPreferenceExperiment(args) => Some(Branches {
            paused: args.is_enrollment_paused,
            high_population: args.is_high_population.unwrap_or(false),
            user_facing_name: args.user_facing_name.clone(),
            user_facing_description: args.user_facing_description.clone(),
            branches: args
                .branches
                .iter()
                .map(|b| {
                    let prefs = b
                        .preferences
                        .iter()
                        .map(|(name, spec)| StartPreference {
                            name: name.clone(),
                            value: spec.preference_value.clone(),
                            preference_type: spec.preference_type.as_str().to_owned(),
                            branch_type: spec.branch_type().as_str().to_owned(),
                        })
                        .collect();
                    (b.slug.clone(), b.ratio, prefs)
                })
                .collect(),
        }),
        _ => None,
    }
}

/// One experiment recipe of a run: the per-suitability table of Normandy's
/// `PreferenceExperimentAction`.
pub(super) fn process_recipe(session: &mut Session, item: &RecipeRun, seen: &mut BTreeSet<String>) {
    let arguments = &item.recipe.arguments;
    let Some(slug) = arguments.slug() else {
        return;
    };
    // Present in the list, whatever its suitability: finalize must not call it unseen.
    seen.insert(slug.to_owned());
    let suitability = match &item.suitability {
        Suitability::Match if !arguments.is_valid() => Suitability::ArgumentsInvalid,
        other => other.clone(),
    };
    let expired = session.state.experiments.get(slug).map(|r| r.expired);
    match (suitability, expired) {
        (Suitability::Match, None) => try_enroll(session, item),
        (Suitability::Match, Some(false)) => {
            if let Some(record) = session.state.experiments.get_mut(slug) {
                record.temporary_error_deadline = None;
                record.last_seen = session.now;
            }
        }
        (Suitability::Mismatch, Some(false)) => {
            let _ = stop(session, slug, &Reset::All, "filter-mismatch", None);
        }
        (Suitability::CapabilitiesMismatch, Some(false)) => {
            let _ = stop(session, slug, &Reset::All, "capability-mismatch", None);
        }
        (Suitability::ArgumentsInvalid, Some(false)) => {
            let _ = stop(session, slug, &Reset::All, "arguments-invalid", None);
        }
        (Suitability::FilterError(_), Some(false)) => {
            temporary_error(session, slug, "filter-error")
        }
        (Suitability::SignatureError(_), Some(false)) => {
            temporary_error(session, slug, "signature-error")
        }
        // Never re-enroll an ended experiment; nothing to do for one never enrolled.
        _ => {}
    }
}

fn try_enroll(session: &mut Session, item: &RecipeRun) {
    let Some(slug) = item.recipe.arguments.slug() else {
        return;
    };
    let Some(experiment) = branches(&item.recipe.arguments) else {
        return;
    };
    // "Prevent new enrollment": existing participants continue, nobody new joins.
    if experiment.paused {
        return;
    }
    // Checked over every branch, as Normandy's action does, so the outcome does not depend on
    // the branch this user would get.
    let active = session.state.active_experiment_prefs();
    let conflict = experiment
        .branches
        .iter()
        .flat_map(|(_, _, prefs)| prefs.iter())
        .any(|p| active.contains_key(p.name.as_str()));
    if conflict {
        session.emit(
            TelemetryEvent::new("enrollFailed", OBJECT_PREFERENCE_STUDY, slug)
                .with("reason", "pref-conflict"),
        );
        return;
    }
    let ratios: Vec<f64> = experiment
        .branches
        .iter()
        .map(|(_, ratio, _)| *ratio as f64)
        .collect();
    let Ok(index) = choose_branch(session.user_id, slug, &ratios) else {
        return;
    };
    let Some((branch, _, preferences)) = experiment.branches.into_iter().nth(index) else {
        return;
    };
    let request = StartRequest {
        slug: slug.to_owned(),
        action_name: item.recipe.action.clone(),
        branch,
        preferences,
        experiment_type: if experiment.high_population {
            "exp-highpop"
        } else {
            "exp"
        }
        .to_owned(),
        user_facing_name: experiment.user_facing_name,
        user_facing_description: experiment.user_facing_description,
    };
    // A failure was reported as an `enrollFailed` event.
    let _ = start(session, &request);
}

/// A filter error, signature error or empty recipe list for an active experiment: the first
/// one starts the grace period, one after its end stops the experiment.
fn temporary_error(session: &mut Session, slug: &str, reason: &str) {
    let now = session.now;
    let grace = session.config.temporary_error_grace;
    let Some(record) = session
        .state
        .experiments
        .get_mut(slug)
        .filter(|r| !r.expired)
    else {
        return;
    };
    match record.temporary_error_deadline {
        None => {
            record.temporary_error_deadline =
                Some(now.checked_add(grace).unwrap_or(jiff::Timestamp::MAX));
        }
        Some(deadline) if now > deadline => {
            let _ = stop(session, slug, &Reset::All, reason, None);
        }
        Some(_) => {}
    }
}

/// After all recipes: every active experiment whose recipe was not in the list ends
/// (`recipe-not-seen`), or gets a temporary error when the list was empty (`no-recipes`).
pub(super) fn finalize(session: &mut Session, seen: &BTreeSet<String>, no_recipes: bool) {
    let unseen: Vec<String> = session
        .state
        .experiments
        .values()
        .filter(|r| !r.expired && !seen.contains(&r.slug))
        .map(|r| r.slug.clone())
        .collect();
    for slug in unseen {
        if no_recipes {
            temporary_error(session, &slug, "no-recipes");
        } else {
            let _ = stop(session, &slug, &Reset::All, "recipe-not-seen", None);
        }
    }
}

/// The user turned studies off (`app.shield.optoutstudies.enabled` is false): every active
/// experiment ends, its preferences restored, with reason `general-opt-out`. Rollouts stay.
pub fn studies_opt_out(session: &mut Session) {
    let active: Vec<String> = session
        .state
        .experiments
        .values()
        .filter(|r| !r.expired)
        .map(|r| r.slug.clone())
        .collect();
    for slug in active {
        let _ = stop(session, &slug, &Reset::All, "general-opt-out", None);
    }
}

/// Ends `slug` (Normandy's `PreferenceExperiments.stop`).
///
/// A preference that is not restored but sits on the default branch under a user value gets
/// its previous default back anyway: the change is invisible now, and it is what Firefox's
/// next start shows (its default branch is not persisted, ours is).
pub(super) fn stop(
    session: &mut Session,
    slug: &str,
    reset: &Reset,
    reason: &str,
    changed_pref: Option<&str>,
) -> Result<(), StopError> {
    let failure = match session.state.experiments.get(slug) {
        None => Some(StopError::DoesNotExist {
            slug: slug.to_owned(),
        }),
        Some(record) if record.expired => Some(StopError::AlreadyUnenrolled {
            slug: slug.to_owned(),
        }),
        Some(_) => None,
    };
    if let Some(error) = failure {
        session.emit(
            TelemetryEvent::new("unenrollFailed", OBJECT_PREFERENCE_STUDY, slug)
                .with("reason", error.reason())
                .with("originalReason", reason),
        );
        return Err(error);
    }
    let Some(record) = session.state.experiments.get_mut(slug) else {
        return Ok(());
    };
    record.expired = true;
    record.temporary_error_deadline = None;
    record.ended_at = Some(session.now);
    record.end_reason = Some(reason.to_owned());
    let branch = record.branch.clone();
    let preferences = record.preferences.clone();

    for (name, pref) in &preferences {
        let restore = match reset {
            Reset::All => true,
            Reset::Nothing => false,
            Reset::AllExcept(kept) => !kept.contains(name),
        };
        let previous = pref.previous_preference_value.clone();
        if restore {
            // Respect the user's choice on a user-branch preference they overrode.
            if pref.overridden && pref.preference_branch_type == Branch::User {
                continue;
            }
            session
                .prefs
                .set(name, pref.preference_branch_type, previous);
        } else if pref.preference_branch_type == Branch::Default {
            let entry = session.prefs.get(name);
            if entry.user.is_some() && entry.default.as_ref() == Some(&pref.preference_value) {
                session.prefs.set(name, Branch::Default, previous);
            }
        }
    }

    let did_reset = matches!(reset, Reset::All);
    let mut event = TelemetryEvent::new("unenroll", OBJECT_PREFERENCE_STUDY, slug)
        .with("didResetValue", if did_reset { "true" } else { "false" })
        .with("branch", branch)
        .with("reason", reason);
    if let Some(changed) = changed_pref {
        event = event.with("changedPref", changed);
    }
    session.emit(event);
    Ok(())
}

/// The non-overridden preferences of an active record whose effective value is not the
/// experiment's.
fn changed_prefs(session: &Session, record: &ExperimentRecord) -> BTreeSet<String> {
    record
        .preferences
        .iter()
        .filter(|(name, pref)| {
            !pref.overridden && session.prefs.get(name).effective() != Some(&pref.preference_value)
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// The observer path: `name` changed outside the actions.
pub(super) fn preference_changed(session: &mut Session, name: &str) {
    let owner = session
        .state
        .experiments
        .values()
        .find(|r| !r.expired && r.preferences.get(name).is_some_and(|p| !p.overridden));
    let Some(record) = owner else {
        return;
    };
    let changed = changed_prefs(session, record);
    if !changed.contains(name) {
        return;
    }
    let slug = record.slug.clone();
    let _ = stop(
        session,
        &slug,
        &Reset::AllExcept(changed),
        "user-preference-changed",
        Some(name),
    );
}

/// Startup: the default-branch values of active experiments back onto the default branch
/// (not the overridden ones: enrollment did not write them either).
pub(super) fn apply_startup(
    session: &mut Session,
    builtin_defaults: &BTreeMap<String, Option<PrefValue>>,
) {
    let mut writes = Vec::new();
    for record in session.state.experiments.values().filter(|r| !r.expired) {
        for (name, pref) in &record.preferences {
            if pref.preference_branch_type != Branch::Default || pref.overridden {
                continue;
            }
            let default = match builtin_defaults.get(name) {
                Some(builtin) => builtin.clone(),
                None => session.prefs.get(name).default,
            };
            if crate::state::same_type(default.as_ref(), Some(&pref.preference_value)) {
                writes.push((name.clone(), pref.preference_value.clone()));
            }
        }
    }
    for (name, value) in writes {
        session.prefs.set(&name, Branch::Default, Some(value));
    }
}

/// Startup: default-branch experiments restore the built-in default known now, not the value
/// seen at enrollment (the Screenshots 55→56 incident).
pub(super) fn record_original_values(
    session: &mut Session,
    builtin_defaults: &BTreeMap<String, Option<PrefValue>>,
) {
    for record in session
        .state
        .experiments
        .values_mut()
        .filter(|r| !r.expired)
    {
        for (name, pref) in record.preferences.iter_mut() {
            if pref.preference_branch_type != Branch::Default {
                continue;
            }
            if let Some(builtin) = builtin_defaults.get(name) {
                pref.previous_preference_value = builtin.clone();
            }
        }
    }
}

/// Startup: a preference changed while the client was not watching ends its experiment
/// (`user-preference-changed-sideload`), keeping the changed values.
pub(super) fn detect_sideloads(session: &mut Session) {
    let mut stops = Vec::new();
    for record in session.state.experiments.values().filter(|r| !r.expired) {
        let changed = changed_prefs(session, record);
        if let Some(first) = changed.first().cloned() {
            stops.push((record.slug.clone(), changed, first));
        }
    }
    for (slug, changed, first) in stops {
        let _ = stop(
            session,
            &slug,
            &Reset::AllExcept(changed),
            "user-preference-changed-sideload",
            Some(&first),
        );
    }
}
