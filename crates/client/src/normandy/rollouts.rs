//! Preference rollouts and rollbacks: permanent default-branch changes that end only by a
//! rollback or by graduation.

use std::collections::{BTreeMap, BTreeSet};

use flightdeck_core::model::normandy::RolloutArguments;

use super::{OBJECT_PREFERENCE_ROLLBACK, OBJECT_PREFERENCE_ROLLOUT, Session, type_fits};
use crate::events::TelemetryEvent;
use crate::prefs::{Branch, PrefValue};
use crate::state::{RolloutPreference, RolloutRecord, RolloutState};

/// What a rollback did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollbackOutcome {
    /// The rollout was active: its previous values are back, and it is rolled back for good.
    RolledBack,
    /// The client never had the rollout.
    NotEnrolled,
    /// The rollout was already rolled back.
    AlreadyRolledBack,
}

/// Why a rollback failed (an `unenrollFailed` event was sent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RollbackError {
    /// The build declares the rollout graduated.
    #[error("rollback of {slug:?}: the rollout is in the graduation set (in-graduation-set)")]
    InGraduationSet {
        /// The rollout slug.
        slug: String,
    },
    /// The rollout graduated: its values are the built-in defaults now.
    #[error("rollback of {slug:?}: the rollout graduated (graduated)")]
    Graduated {
        /// The rollout slug.
        slug: String,
    },
}

/// Rolls back the rollout `slug` (the `preference-rollback` action): restores every
/// preference's `previousValue` on the default branch (clearing it when there was none),
/// marks the rollout `rolled-back` and sends `unenroll{reason: rollback}`.
pub fn rollback(session: &mut Session, slug: &str) -> Result<RollbackOutcome, RollbackError> {
    if session.config.graduation_set.contains(slug) {
        session.emit(
            TelemetryEvent::new("unenrollFailed", OBJECT_PREFERENCE_ROLLBACK, slug)
                .with("reason", "in-graduation-set"),
        );
        return Err(RollbackError::InGraduationSet {
            slug: slug.to_owned(),
        });
    }
    let Some(record) = session.state.rollouts.get_mut(slug) else {
        return Ok(RollbackOutcome::NotEnrolled);
    };
    match record.state {
        RolloutState::RolledBack => Ok(RollbackOutcome::AlreadyRolledBack),
        RolloutState::Graduated => {
            session.emit(
                TelemetryEvent::new("unenrollFailed", OBJECT_PREFERENCE_ROLLBACK, slug)
                    .with("reason", "graduated"),
            );
            Err(RollbackError::Graduated {
                slug: slug.to_owned(),
            })
        }
        RolloutState::Active => {
            record.state = RolloutState::RolledBack;
            let restores: Vec<(String, Option<PrefValue>)> = record
                .preferences
                .iter()
                .map(|p| (p.preference_name.clone(), p.previous_value.clone()))
                .collect();
            for (name, previous) in restores {
                session.prefs.set(&name, Branch::Default, previous);
            }
            session.emit(
                TelemetryEvent::new("unenroll", OBJECT_PREFERENCE_ROLLBACK, slug)
                    .with("reason", "rollback"),
            );
            Ok(RollbackOutcome::RolledBack)
        }
    }
}

/// The `preference-rollout` action for a matching recipe.
pub(super) fn run_rollout(session: &mut Session, args: &RolloutArguments) {
    let slug = args.slug.as_str();
    if session.config.graduation_set.contains(slug) {
        return;
    }
    let existing = session.state.rollouts.get(slug).cloned();
    // A rolled-back slug never runs again, even with changed values (PRODUCT.md decision).
    if existing
        .as_ref()
        .is_some_and(|r| r.state == RolloutState::RolledBack)
    {
        return;
    }

    // First writer wins: another active rollout keeps its preferences.
    let managed: BTreeSet<&str> = session
        .state
        .rollouts
        .values()
        .filter(|r| r.state == RolloutState::Active && r.slug != slug)
        .flat_map(|r| r.preferences.iter().map(|p| p.preference_name.as_str()))
        .collect();
    let mut failure = None;
    for pref in &args.preferences {
        let name = pref.preference_name.as_str();
        if managed.contains(name) {
            failure = Some(("conflict", name));
            break;
        }
        if !type_fits(&session.prefs.get(name), &pref.value) {
            failure = Some(("invalid type", name));
            break;
        }
    }
    if let Some((reason, name)) = failure {
        session.emit(
            TelemetryEvent::new("enrollFailed", OBJECT_PREFERENCE_ROLLOUT, slug)
                .with("reason", reason)
                .with("preference", name),
        );
        return;
    }

    match existing {
        Some(existing) => update_rollout(session, args, existing),
        None => enroll_rollout(session, args),
    }
}

fn enroll_rollout(session: &mut Session, args: &RolloutArguments) {
    let preferences: Vec<RolloutPreference> = args
        .preferences
        .iter()
        .map(|p| RolloutPreference {
            preference_name: p.preference_name.clone(),
            value: p.value.clone(),
            previous_value: session.prefs.get(&p.preference_name).default,
        })
        .collect();
    if preferences
        .iter()
        .all(|p| p.previous_value.as_ref() == Some(&p.value))
    {
        session.emit(
            TelemetryEvent::new("enrollFailed", OBJECT_PREFERENCE_ROLLOUT, &args.slug)
                .with("reason", "would-be-no-op"),
        );
        return;
    }
    for pref in &preferences {
        session.prefs.set(
            &pref.preference_name,
            Branch::Default,
            Some(pref.value.clone()),
        );
    }
    session.state.rollouts.insert(
        args.slug.clone(),
        RolloutRecord {
            slug: args.slug.clone(),
            state: RolloutState::Active,
            preferences,
            enrolled_at: Some(session.now),
        },
    );
    session.emit(TelemetryEvent::new(
        "enroll",
        OBJECT_PREFERENCE_ROLLOUT,
        &args.slug,
    ));
}

/// A recipe for a stored (active or graduated) rollout: apply what differs. Preferences the
/// recipe dropped go back to their previous value; `previousValue` is kept from the record
/// (new preferences take the current default).
fn update_rollout(session: &mut Session, args: &RolloutArguments, existing: RolloutRecord) {
    let old: BTreeMap<&str, &RolloutPreference> = existing
        .preferences
        .iter()
        .map(|p| (p.preference_name.as_str(), p))
        .collect();
    let wanted: BTreeSet<&str> = args
        .preferences
        .iter()
        .map(|p| p.preference_name.as_str())
        .collect();
    // Read every previous value before the first write.
    let preferences: Vec<RolloutPreference> = args
        .preferences
        .iter()
        .map(|p| RolloutPreference {
            preference_name: p.preference_name.clone(),
            value: p.value.clone(),
            previous_value: match old.get(p.preference_name.as_str()) {
                Some(o) => o.previous_value.clone(),
                None => session.prefs.get(&p.preference_name).default,
            },
        })
        .collect();

    let mut changed = false;
    for gone in existing
        .preferences
        .iter()
        .filter(|p| !wanted.contains(p.preference_name.as_str()))
    {
        session.prefs.set(
            &gone.preference_name,
            Branch::Default,
            gone.previous_value.clone(),
        );
        changed = true;
    }
    for pref in &preferences {
        let same = old
            .get(pref.preference_name.as_str())
            .is_some_and(|o| o.value == pref.value);
        if !same {
            session.prefs.set(
                &pref.preference_name,
                Branch::Default,
                Some(pref.value.clone()),
            );
            changed = true;
        }
    }
    if !changed {
        return;
    }
    session.state.rollouts.insert(
        args.slug.clone(),
        RolloutRecord {
            slug: args.slug.clone(),
            state: RolloutState::Active,
            preferences,
            enrolled_at: existing.enrolled_at,
        },
    );
    session.emit(
        TelemetryEvent::new("update", OBJECT_PREFERENCE_ROLLOUT, &args.slug)
            .with("previousState", existing.state.as_str()),
    );
}

/// The type a preference has "at startup": its built-in default's when known, else its
/// current default's.
fn startup_type_fits(
    session: &Session,
    builtin_defaults: &BTreeMap<String, Option<PrefValue>>,
    name: &str,
    value: &PrefValue,
) -> bool {
    let default = match builtin_defaults.get(name) {
        Some(builtin) => builtin.clone(),
        None => session.prefs.get(name).default,
    };
    crate::state::same_type(default.as_ref(), Some(value))
}

/// Startup: every active rollout's values onto the default branch.
pub(super) fn apply_startup(
    session: &mut Session,
    builtin_defaults: &BTreeMap<String, Option<PrefValue>>,
) {
    let writes: Vec<(String, PrefValue)> = session
        .state
        .rollouts
        .values()
        .filter(|r| r.state == RolloutState::Active)
        .flat_map(|r| r.preferences.iter())
        .filter(|p| startup_type_fits(session, builtin_defaults, &p.preference_name, &p.value))
        .map(|p| (p.preference_name.clone(), p.value.clone()))
        .collect();
    for (name, value) in writes {
        session.prefs.set(&name, Branch::Default, Some(value));
    }
}

/// Startup: refresh `previousValue` from the built-in defaults and graduate the rollouts whose
/// values all became built-in defaults.
pub(super) fn record_original_values(
    session: &mut Session,
    builtin_defaults: &BTreeMap<String, Option<PrefValue>>,
) {
    let mut graduated = Vec::new();
    for record in session
        .state
        .rollouts
        .values_mut()
        .filter(|r| r.state == RolloutState::Active)
    {
        let mut all_match = true;
        for pref in &mut record.preferences {
            match builtin_defaults.get(&pref.preference_name) {
                Some(builtin) => {
                    pref.previous_value = builtin.clone();
                    all_match &= builtin.as_ref() == Some(&pref.value);
                }
                // Unknown built-in default: no graduation decision for this preference.
                None => all_match = false,
            }
        }
        if all_match {
            record.state = RolloutState::Graduated;
            graduated.push(record.slug.clone());
        }
    }
    for slug in graduated {
        session.emit(
            TelemetryEvent::new("graduate", OBJECT_PREFERENCE_ROLLOUT, &slug)
                .with("reason", "all-prefs-match"),
        );
    }
}

/// Startup: graduate the active rollouts the build lists. Firefox stops applying them at the
/// next start, so the default branch gets its built-in value back where that is known (our
/// default branch persists, Firefox's does not).
pub(super) fn graduate_graduation_set(
    session: &mut Session,
    builtin_defaults: &BTreeMap<String, Option<PrefValue>>,
) {
    let slugs: Vec<String> = session
        .state
        .rollouts
        .values()
        .filter(|r| {
            r.state == RolloutState::Active && session.config.graduation_set.contains(&r.slug)
        })
        .map(|r| r.slug.clone())
        .collect();
    for slug in slugs {
        let Some(record) = session.state.rollouts.get_mut(&slug) else {
            continue;
        };
        record.state = RolloutState::Graduated;
        let preferences = record.preferences.clone();
        for pref in preferences {
            let Some(builtin) = builtin_defaults.get(&pref.preference_name) else {
                continue;
            };
            let current = session.prefs.get(&pref.preference_name).default;
            if current.as_ref() == Some(&pref.value) {
                session
                    .prefs
                    .set(&pref.preference_name, Branch::Default, builtin.clone());
            }
        }
        session.emit(
            TelemetryEvent::new("graduate", OBJECT_PREFERENCE_ROLLOUT, &slug)
                .with("reason", "in-graduation-set"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Harness, int, rollout_recipe};
    use super::super::{RecipeRun, Suitability};
    use super::*;
    use crate::prefs::PrefStore;

    #[test]
    fn a_mismatching_rollout_does_nothing_and_a_matching_one_enrolls() {
        let mut h = Harness::new();
        let recipe = rollout_recipe("r", &[("p", int(1))]);
        h.run(&[RecipeRun {
            recipe: &recipe,
            suitability: Suitability::Mismatch,
        }]);
        assert!(h.state.rollouts.is_empty());
        h.run_match(&[&recipe]);
        assert_eq!(h.prefs.get("p").default, Some(int(1)));
        assert_eq!(h.methods(), vec!["enroll"]);
    }

    #[test]
    fn a_rollout_is_not_stopped_by_a_mismatch_or_by_leaving_the_recipe_list() {
        let mut h = Harness::new();
        let recipe = rollout_recipe("r", &[("p", int(1))]);
        h.run_match(&[&recipe]);
        h.run(&[RecipeRun {
            recipe: &recipe,
            suitability: Suitability::Mismatch,
        }]);
        h.run_match(&[]);
        h.run_no_recipes();
        assert_eq!(h.state.rollouts["r"].state, RolloutState::Active);
        assert_eq!(h.prefs.get("p").default, Some(int(1)));
        assert_eq!(h.methods(), vec!["enroll"]);
    }

    #[test]
    fn a_rollout_in_the_graduation_set_never_enrolls() {
        let mut h = Harness::new();
        h.config.graduation_set.insert("r".into());
        let recipe = rollout_recipe("r", &[("p", int(1))]);
        h.run_match(&[&recipe]);
        assert!(h.state.rollouts.is_empty());
        assert!(h.prefs.get("p").default.is_none());
        assert!(h.events.is_empty());
    }

    #[test]
    fn rollouts_ignore_studies_opt_out() {
        let mut h = Harness::new();
        h.config.studies_enabled = false;
        let recipe = rollout_recipe("r", &[("p", int(1))]);
        h.run_match(&[&recipe]);
        assert_eq!(h.state.rollouts["r"].state, RolloutState::Active);
    }

    #[test]
    fn the_type_check_looks_at_the_user_branch_too() {
        let mut h = Harness::new();
        h.prefs
            .set("p", Branch::User, Some(PrefValue::String("x".into())));
        let recipe = rollout_recipe("r", &[("p", int(1))]);
        h.run_match(&[&recipe]);
        assert!(h.state.rollouts.is_empty());
        assert_eq!(h.events[0].extra["reason"], "invalid type");
        assert_eq!(h.events[0].extra["preference"], "p");
    }

    #[test]
    fn a_failed_update_writes_nothing() {
        let mut h = Harness::new();
        h.run_match(&[&rollout_recipe("r", &[("a", int(1))])]);
        h.prefs
            .set("c", Branch::Default, Some(PrefValue::Bool(true)));
        // `b` would be fine, `c` has the wrong type: nothing of the update happens.
        h.run_match(&[&rollout_recipe("r", &[("b", int(2)), ("c", int(3))])]);
        assert_eq!(h.prefs.get("a").default, Some(int(1)));
        assert!(h.prefs.get("b").default.is_none());
        assert_eq!(h.state.rollouts["r"].preferences.len(), 1);
        assert_eq!(h.methods(), vec!["enroll", "enrollFailed"]);
    }

    #[test]
    fn rollback_of_an_unknown_slug_is_silent_and_rolled_back_is_a_no_op() {
        let mut h = Harness::new();
        assert_eq!(
            h.with_session(|s| rollback(s, "nope")),
            Ok(RollbackOutcome::NotEnrolled)
        );
        h.run_match(&[&rollout_recipe("r", &[("p", int(1))])]);
        assert_eq!(
            h.with_session(|s| rollback(s, "r")),
            Ok(RollbackOutcome::RolledBack)
        );
        assert_eq!(
            h.with_session(|s| rollback(s, "r")),
            Ok(RollbackOutcome::AlreadyRolledBack)
        );
        assert_eq!(h.methods(), vec!["enroll", "unenroll"]);
        assert!(h.prefs.get("p").default.is_none());
    }

    #[test]
    fn rollback_in_the_graduation_set_fails() {
        let mut h = Harness::new();
        h.run_match(&[&rollout_recipe("r", &[("p", int(1))])]);
        h.config.graduation_set.insert("r".into());
        assert_eq!(
            h.with_session(|s| rollback(s, "r")),
            Err(RollbackError::InGraduationSet { slug: "r".into() })
        );
        let last = h.events.last().cloned().unwrap();
        assert_eq!(last.object, OBJECT_PREFERENCE_ROLLBACK);
        assert_eq!(last.extra["reason"], "in-graduation-set");
        // Nothing was undone.
        assert_eq!(h.prefs.get("p").default, Some(int(1)));
    }

    #[test]
    fn startup_skips_a_preference_whose_builtin_default_has_another_type() {
        let mut h = Harness::new();
        h.run_match(&[&rollout_recipe("r", &[("p", int(1)), ("q", int(2))])]);
        h.prefs.set("p", Branch::Default, None);
        h.prefs.set("q", Branch::Default, None);
        let builtins = BTreeMap::from([("p".to_owned(), Some(PrefValue::Bool(false)))]);
        h.startup(&builtins);
        assert!(h.prefs.get("p").default.is_none());
        assert_eq!(h.prefs.get("q").default, Some(int(2)));
    }

    #[test]
    fn graduation_set_at_startup_gives_back_known_builtin_defaults() {
        let mut h = Harness::new();
        h.run_match(&[&rollout_recipe("r", &[("p", int(1)), ("q", int(2))])]);
        h.config.graduation_set.insert("r".into());
        let builtins = BTreeMap::from([("p".to_owned(), Some(int(7)))]);
        h.startup(&builtins);
        assert_eq!(h.state.rollouts["r"].state, RolloutState::Graduated);
        assert_eq!(h.prefs.get("p").default, Some(int(7)));
        // Unknown built-in default: left as it is.
        assert_eq!(h.prefs.get("q").default, Some(int(2)));
        let last = h.events.last().cloned().unwrap();
        assert_eq!(
            (last.method.as_str(), last.extra["reason"].as_str()),
            ("graduate", "in-graduation-set")
        );
        // A graduated rollout is not re-applied.
        h.prefs.set("q", Branch::Default, None);
        h.startup(&BTreeMap::new());
        assert!(h.prefs.get("q").default.is_none());
    }

    #[test]
    fn no_graduation_when_a_builtin_default_is_unknown() {
        let mut h = Harness::new();
        h.run_match(&[&rollout_recipe("r", &[("p", int(2)), ("q", int(2))])]);
        let builtins = BTreeMap::from([("p".to_owned(), Some(int(2)))]);
        h.startup(&builtins);
        let record = &h.state.rollouts["r"];
        assert_eq!(record.state, RolloutState::Active);
        assert_eq!(record.preferences[0].previous_value, Some(int(2)));
        // The unknown one keeps its stored previous value.
        assert_eq!(record.preferences[1].previous_value, None);
    }
}
