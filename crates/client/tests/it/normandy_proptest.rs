//! Property: whatever happens over a client's life — recipes present, absent, mismatching,
//! broken or paused; rollout recipes changing; rollbacks; studies switched off; the user
//! changing preferences, seen or unseen by the observer; restarts that rebuild the default
//! branch; time passing — ending every active experiment and rolling back every active
//! rollout gives back exactly the preferences there were before, except those the user
//! changed.

use crate::normandy_support;

use std::collections::{BTreeMap, BTreeSet};

use flightdeck_client::normandy::{self, RollbackOutcome, Suitability};
use flightdeck_client::prefs::{Branch, PrefEntry, PrefStore};
use flightdeck_client::state::RolloutState;
use flightdeck_core::model::normandy::Recipe;
use jiff::SignedDuration;
use normandy_support::{Client, int, multi_branches, rollback, rollout, single_with};
use proptest::prelude::*;
use serde_json::json;

/// Preferences only rollouts touch, then preferences only experiments touch (the reference
/// system has no guard between the two kinds, so they are kept apart here).
const ROLLOUT_PREFS: [&str; 3] = ["r0", "r1", "r2"];
const EXPERIMENT_PREFS: [&str; 4] = ["e0", "e1", "e2", "e3"];
const ROLLOUTS: [&str; 2] = ["ra", "rb"];
const EXPERIMENTS: usize = 4;

fn all_prefs() -> impl Iterator<Item = &'static str> {
    ROLLOUT_PREFS.into_iter().chain(EXPERIMENT_PREFS)
}

/// The experiments, overlapping on purpose (pref conflicts), on both branches.
fn experiment(index: usize, paused: bool) -> Recipe {
    let more = json!({"isEnrollmentPaused": paused});
    let id = 100 + index as u64;
    match index {
        0 => single_with(
            id,
            "x0",
            "e0",
            "default",
            json!({"control": 1, "treatment": 2}),
            more,
        ),
        1 => single_with(
            id,
            "x1",
            "e1",
            "user",
            json!({"control": 1, "treatment": 2}),
            more,
        ),
        2 => multi_branches(
            id,
            "x2",
            json!({"a": [1, {"e0": ["user", 1], "e2": ["default", 2]}],
                   "b": [1, {"e2": ["default", 1], "e3": ["user", 2]}]}),
            more,
        ),
        _ => multi_branches(
            id,
            "x3",
            json!({"only": [1, {"e1": ["default", 2], "e3": ["default", 1]}]}),
            more,
        ),
    }
}

#[derive(Debug, Clone)]
enum Presence {
    Absent,
    Match,
    Paused,
    Mismatch,
    FilterError,
    SignatureError,
    CapabilitiesMismatch,
    ArgumentsInvalid,
}

#[derive(Debug, Clone)]
enum RolloutPresence {
    Absent,
    /// Matching, with these values for `ROLLOUT_PREFS[i]`.
    Match(BTreeMap<usize, i64>),
    Mismatch,
}

#[derive(Debug, Clone)]
enum Step {
    Run {
        experiments: Vec<Presence>,
        rollouts: Vec<RolloutPresence>,
        rollbacks: Vec<bool>,
        rollbacks_first: bool,
        studies: bool,
    },
    UserChange {
        pref: usize,
        value: Option<i64>,
        observed: bool,
    },
    Restart {
        reset_defaults: bool,
    },
    Advance {
        hours: i64,
    },
}

fn presence() -> impl Strategy<Value = Presence> {
    prop_oneof![
        3 => Just(Presence::Match),
        2 => Just(Presence::Absent),
        1 => Just(Presence::Paused),
        1 => Just(Presence::Mismatch),
        2 => Just(Presence::FilterError),
        1 => Just(Presence::SignatureError),
        1 => Just(Presence::CapabilitiesMismatch),
        1 => Just(Presence::ArgumentsInvalid),
    ]
}

fn rollout_presence() -> impl Strategy<Value = RolloutPresence> {
    prop_oneof![
        3 => prop::collection::btree_map(0..ROLLOUT_PREFS.len(), 0..3i64, 1..=3)
            .prop_map(RolloutPresence::Match),
        2 => Just(RolloutPresence::Absent),
        1 => Just(RolloutPresence::Mismatch),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => (
            prop::collection::vec(presence(), EXPERIMENTS),
            prop::collection::vec(rollout_presence(), ROLLOUTS.len()),
            prop::collection::vec(prop::bool::weighted(0.15), ROLLOUTS.len()),
            any::<bool>(),
            prop::bool::weighted(0.9),
        )
            .prop_map(|(experiments, rollouts, rollbacks, rollbacks_first, studies)| Step::Run {
                experiments,
                rollouts,
                rollbacks,
                rollbacks_first,
                studies,
            }),
        2 => (
            0..ROLLOUT_PREFS.len() + EXPERIMENT_PREFS.len(),
            prop::option::of(0..3i64),
            any::<bool>(),
        )
            .prop_map(|(pref, value, observed)| Step::UserChange { pref, value, observed }),
        1 => any::<bool>().prop_map(|reset_defaults| Step::Restart { reset_defaults }),
        1 => (0..24 * 10i64).prop_map(|hours| Step::Advance { hours }),
    ]
}

fn initial_prefs() -> impl Strategy<Value = Vec<(Option<i64>, Option<i64>)>> {
    prop::collection::vec(
        (prop::option::of(0..3i64), prop::option::of(0..3i64)),
        ROLLOUT_PREFS.len() + EXPERIMENT_PREFS.len(),
    )
}

fn run_step(
    client: &mut Client,
    step: &Step,
    builtins: &serde_json::Value,
    user_changed: &mut BTreeSet<String>,
) {
    match step {
        Step::Run {
            experiments,
            rollouts,
            rollbacks,
            rollbacks_first,
            studies,
        } => {
            client.config.studies_enabled = *studies;
            let mut recipes: Vec<(Recipe, Suitability)> = Vec::new();
            let mut rollback_recipes = Vec::new();
            for (i, wanted) in rollbacks.iter().enumerate() {
                if *wanted {
                    rollback_recipes
                        .push((rollback(50 + i as u64, ROLLOUTS[i]), Suitability::Match));
                }
            }
            if *rollbacks_first {
                recipes.append(&mut rollback_recipes);
            }
            for (i, presence) in rollouts.iter().enumerate() {
                let values = |map: &BTreeMap<usize, i64>| {
                    let mut object = serde_json::Map::new();
                    for (pref, value) in map {
                        object.insert(ROLLOUT_PREFS[*pref].to_owned(), json!(value));
                    }
                    serde_json::Value::Object(object)
                };
                match presence {
                    RolloutPresence::Absent => {}
                    RolloutPresence::Match(map) => recipes.push((
                        rollout(10 + i as u64, ROLLOUTS[i], values(map)),
                        Suitability::Match,
                    )),
                    RolloutPresence::Mismatch => recipes.push((
                        rollout(10 + i as u64, ROLLOUTS[i], json!({"r0": 1})),
                        Suitability::Mismatch,
                    )),
                }
            }
            recipes.append(&mut rollback_recipes);
            for (i, presence) in experiments.iter().enumerate() {
                let suitability = match presence {
                    Presence::Absent => continue,
                    Presence::Match | Presence::Paused => Suitability::Match,
                    Presence::Mismatch => Suitability::Mismatch,
                    Presence::FilterError => Suitability::FilterError("boom".into()),
                    Presence::SignatureError => Suitability::SignatureError("bad".into()),
                    Presence::CapabilitiesMismatch => Suitability::CapabilitiesMismatch,
                    Presence::ArgumentsInvalid => Suitability::ArgumentsInvalid,
                };
                recipes.push((
                    experiment(i, matches!(presence, Presence::Paused)),
                    suitability,
                ));
            }
            let refs: Vec<(&Recipe, Suitability)> =
                recipes.iter().map(|(r, s)| (r, s.clone())).collect();
            client.run(&refs);
        }
        Step::UserChange {
            pref,
            value,
            observed,
        } => {
            let name = all_prefs().nth(*pref).unwrap_or("r0");
            user_changed.insert(name.to_owned());
            client.prefs.set(name, Branch::User, value.map(int));
            if *observed {
                client.session(|s| normandy::preference_changed(s, name));
            }
        }
        Step::Restart { reset_defaults } => {
            if *reset_defaults {
                for (name, value) in normandy_support::builtin_defaults(builtins) {
                    client.prefs.set(&name, Branch::Default, value);
                }
            }
            client.startup(builtins);
        }
        Step::Advance { hours } => client.advance(SignedDuration::from_hours(*hours)),
    }
}

/// What must hold after every step.
fn check_invariants(client: &Client) -> Result<(), TestCaseError> {
    let mut owners = BTreeMap::new();
    for record in client.state.experiments.values().filter(|r| !r.expired) {
        for name in record.preferences.keys() {
            prop_assert!(
                owners.insert(name.clone(), record.slug.clone()).is_none(),
                "two active experiments own {}",
                name
            );
        }
    }
    let mut managed = BTreeSet::new();
    for record in client
        .state
        .rollouts
        .values()
        .filter(|r| r.state == RolloutState::Active)
    {
        for pref in &record.preferences {
            prop_assert!(
                managed.insert(pref.preference_name.clone()),
                "two active rollouts manage {}",
                pref.preference_name
            );
        }
    }
    for event in &client.events {
        prop_assert!(!event.value.is_empty());
        prop_assert!(
            event.extra.contains_key("reason")
                || matches!(event.method.as_str(), "enroll" | "update"),
            "{:?} has no reason",
            event
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn ending_everything_restores_the_preferences_the_user_did_not_change(
        initial in initial_prefs(),
        user in 0u8..16,
        steps in prop::collection::vec(step(), 1..25),
    ) {
        let mut entries = BTreeMap::new();
        let mut builtin = serde_json::Map::new();
        for (name, (default, user_value)) in all_prefs().zip(&initial) {
            builtin.insert(name.to_owned(), json!(default));
            if default.is_some() || user_value.is_some() {
                entries.insert(
                    name.to_owned(),
                    PrefEntry { default: default.map(int), user: user_value.map(int) },
                );
            }
        }
        let builtins = serde_json::Value::Object(builtin);
        let mut client = Client::with(&serde_json::to_value(&entries).unwrap(), &serde_json::Value::Null);
        client.user_id = Some(format!("user-{user}"));
        let mut user_changed = BTreeSet::new();

        for step in &steps {
            run_step(&mut client, step, &builtins, &mut user_changed);
            check_invariants(&client)?;
        }

        let active: Vec<String> = client
            .state
            .experiments
            .values()
            .filter(|r| !r.expired)
            .map(|r| r.slug.clone())
            .collect();
        for slug in active {
            let stopped = client
                .session(|s| normandy::stop_experiment(s, &slug, true, "individual-opt-out"));
            prop_assert_eq!(stopped, Ok(()));
        }
        let active: Vec<String> = client
            .state
            .rollouts
            .values()
            .filter(|r| r.state == RolloutState::Active)
            .map(|r| r.slug.clone())
            .collect();
        for slug in active {
            let rolled_back = client.session(|s| normandy::rollback(s, &slug));
            prop_assert_eq!(rolled_back, Ok(RollbackOutcome::RolledBack));
        }
        prop_assert!(normandy::annotations(&client.state).is_empty());

        for name in all_prefs().filter(|n| !user_changed.contains(*n)) {
            let expected = entries.get(name).cloned().unwrap_or_default();
            prop_assert_eq!(
                client.prefs.get(name),
                expected,
                "{} was not restored; events: {}",
                name,
                client.events_json()
            );
        }
    }
}
