//! Unit tests of the Normandy actions, and the harness the submodules' tests share.

use std::collections::BTreeMap;

use flightdeck_core::model::normandy::{
    ACTION_MULTI_PREFERENCE_EXPERIMENT, ACTION_PREFERENCE_EXPERIMENT, ACTION_PREFERENCE_ROLLOUT,
    Arguments, ExperimentPreference as SpecPreference, JsonMap, MultiPreferenceBranch,
    MultiPreferenceExperimentArguments, PrefBranchType, PrefType, Recipe, RolloutArguments,
    RolloutPreference as SpecRolloutPreference, SinglePreferenceBranch,
    SinglePreferenceExperimentArguments,
};
use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::events::TelemetryEvent;
use crate::prefs::{Branch, MemoryPrefStore, PrefStore, PrefValue};
use crate::state::ClientState;

pub(super) fn int(n: i64) -> PrefValue {
    PrefValue::Int(n)
}

pub(super) struct Harness {
    pub now: Timestamp,
    pub user_id: Option<String>,
    pub prefs: MemoryPrefStore,
    pub state: ClientState,
    pub events: Vec<TelemetryEvent>,
    pub config: NormandyConfig,
}

impl Harness {
    pub fn new() -> Harness {
        Harness {
            now: "2026-03-01T00:00:00Z".parse().unwrap(),
            user_id: Some("user-a".into()),
            prefs: MemoryPrefStore::new(),
            state: ClientState::new(),
            events: Vec::new(),
            config: NormandyConfig::default(),
        }
    }

    pub fn with_session<T>(&mut self, f: impl FnOnce(&mut Session) -> T) -> T {
        let mut session = Session {
            now: self.now,
            user_id: self.user_id.as_deref(),
            prefs: &mut self.prefs,
            state: &mut self.state,
            events: &mut self.events,
            config: &self.config,
        };
        f(&mut session)
    }

    pub fn run(&mut self, recipes: &[RecipeRun]) {
        self.with_session(|s| run(s, recipes, recipes.is_empty()));
    }

    pub fn run_match(&mut self, recipes: &[&Recipe]) {
        let runs: Vec<RecipeRun> = recipes
            .iter()
            .map(|recipe| RecipeRun {
                recipe,
                suitability: Suitability::Match,
            })
            .collect();
        self.with_session(|s| run(s, &runs, false));
    }

    pub fn run_no_recipes(&mut self) {
        self.with_session(|s| run(s, &[], true));
    }

    pub fn startup(&mut self, builtins: &BTreeMap<String, Option<PrefValue>>) {
        self.with_session(|s| startup(s, builtins));
    }

    pub fn methods(&self) -> Vec<&str> {
        self.events.iter().map(|e| e.method.as_str()).collect()
    }

    pub fn advance(&mut self, duration: SignedDuration) {
        self.now = self.now.checked_add(duration).unwrap();
    }
}

pub(super) fn rollout_recipe(slug: &str, prefs: &[(&str, PrefValue)]) -> Recipe {
    let arguments = Arguments::PreferenceRollout(RolloutArguments {
        slug: slug.to_owned(),
        preferences: prefs
            .iter()
            .map(|(name, value)| SpecRolloutPreference {
                preference_name: (*name).to_owned(),
                value: value.clone(),
                extra: JsonMap::new(),
            })
            .collect(),
        extra: JsonMap::new(),
    });
    Recipe::new(1, slug, ACTION_PREFERENCE_ROLLOUT, arguments, None)
}

pub(super) fn single_recipe(
    slug: &str,
    pref: &str,
    branch_type: PrefBranchType,
    values: &[(&str, PrefValue)],
) -> Recipe {
    let preference_type = PrefType::of(&values[0].1);
    let arguments = Arguments::PreferenceExperiment(SinglePreferenceExperimentArguments {
        slug: slug.to_owned(),
        preference_name: pref.to_owned(),
        preference_type,
        preference_branch_type: Some(branch_type),
        branches: values
            .iter()
            .map(|(branch, value)| SinglePreferenceBranch {
                slug: (*branch).to_owned(),
                value: value.clone(),
                ratio: 1,
                extra: JsonMap::new(),
            })
            .collect(),
        is_enrollment_paused: false,
        is_high_population: None,
        experiment_document_url: None,
        extra: JsonMap::new(),
    });
    Recipe::new(2, slug, ACTION_PREFERENCE_EXPERIMENT, arguments, None)
}

/// A multi-preference experiment with one branch `treatment`.
pub(super) fn multi_recipe(slug: &str, prefs: &[(&str, PrefBranchType, PrefValue)]) -> Recipe {
    let preferences = prefs
        .iter()
        .map(|(name, branch, value)| {
            (
                (*name).to_owned(),
                SpecPreference {
                    preference_type: PrefType::of(value),
                    preference_branch_type: Some(*branch),
                    preference_value: value.clone(),
                    extra: JsonMap::new(),
                },
            )
        })
        .collect();
    let arguments = Arguments::MultiPreferenceExperiment(MultiPreferenceExperimentArguments {
        slug: slug.to_owned(),
        user_facing_name: format!("{slug} name"),
        user_facing_description: format!("{slug} description"),
        branches: vec![MultiPreferenceBranch {
            slug: "treatment".into(),
            ratio: 1,
            preferences,
            extra: JsonMap::new(),
        }],
        is_enrollment_paused: false,
        is_high_population: None,
        experiment_document_url: None,
        extra: JsonMap::new(),
    });
    Recipe::new(3, slug, ACTION_MULTI_PREFERENCE_EXPERIMENT, arguments, None)
}

fn with_args(mut recipe: Recipe, edit: impl FnOnce(&mut Arguments)) -> Recipe {
    edit(&mut recipe.arguments);
    recipe
}

fn item(reason: Option<&str>, matched: bool) -> flightdeck_core::evaluate::ItemResult {
    flightdeck_core::evaluate::ItemResult {
        id: "1".into(),
        kind: "preference-rollout".into(),
        matched,
        reason: reason.map(str::to_owned),
        branch: None,
        value: None,
    }
}

#[test]
fn suitability_maps_every_core_reason() {
    let cases = [
        (None, true, Suitability::Match),
        (Some("enrollment-paused"), false, Suitability::Match),
        (Some("no-user-id"), false, Suitability::Match),
        (Some("filter-mismatch"), false, Suitability::Mismatch),
        (
            Some("capabilities-mismatch"),
            false,
            Suitability::CapabilitiesMismatch,
        ),
        (
            Some("unsupported-action"),
            false,
            Suitability::CapabilitiesMismatch,
        ),
        (
            Some("arguments-invalid"),
            false,
            Suitability::ArgumentsInvalid,
        ),
        (
            Some("branch-error: ratios"),
            false,
            Suitability::ArgumentsInvalid,
        ),
        (
            Some("filter-error: unexpected token"),
            false,
            Suitability::FilterError("unexpected token".into()),
        ),
        (
            Some("signature-error: bad chain"),
            false,
            Suitability::SignatureError("bad chain".into()),
        ),
        (
            Some("something-new"),
            false,
            Suitability::FilterError("something-new".into()),
        ),
        (None, false, Suitability::Mismatch),
    ];
    for (reason, matched, expected) in cases {
        assert_eq!(suitability(&item(reason, matched)), expected, "{reason:?}");
    }
}

#[test]
fn enrollment_writes_the_chosen_branch_and_records_previous_values() {
    let mut h = Harness::new();
    h.prefs.set("p", Branch::Default, Some(int(5)));
    // Golden vector: "user-a-exp-1-branch" with ratios [1, 1] picks index 1.
    let recipe = single_recipe(
        "exp-1",
        "p",
        PrefBranchType::Default,
        &[("control", int(1)), ("treatment", int(2))],
    );
    h.run_match(&[&recipe]);
    let record = &h.state.experiments["exp-1"];
    assert_eq!(record.branch, "treatment");
    assert_eq!(record.action_name, ACTION_PREFERENCE_EXPERIMENT);
    assert_eq!(record.last_seen, h.now);
    assert_eq!(record.enrolled_at, Some(h.now));
    assert_eq!(record.experiment_type, "exp");
    let pref = &record.preferences["p"];
    assert_eq!(pref.previous_preference_value, Some(int(5)));
    assert_eq!(pref.preference_type, "integer");
    assert!(!pref.overridden);
    assert_eq!(h.prefs.get("p").default, Some(int(2)));
    assert_eq!(
        h.events,
        vec![
            TelemetryEvent::new("enroll", "preference_study", "exp-1")
                .with("branch", "treatment")
                .with("experimentType", "exp")
        ]
    );
}

#[test]
fn high_population_changes_the_experiment_type_and_annotation() {
    let mut h = Harness::new();
    let recipe = with_args(
        multi_recipe("e", &[("p", PrefBranchType::User, int(1))]),
        |args| {
            if let Arguments::MultiPreferenceExperiment(a) = args {
                a.is_high_population = Some(true);
            }
        },
    );
    h.run_match(&[&recipe]);
    assert_eq!(h.events[0].extra["experimentType"], "exp-highpop");
    assert_eq!(
        annotations(&h.state)["e"],
        crate::events::Annotation {
            branch: "treatment".into(),
            kind: "normandy-exp-highpop".into()
        }
    );
}

#[test]
fn no_user_id_means_no_enrollment_but_existing_experiments_continue() {
    let mut h = Harness::new();
    let a = multi_recipe("a", &[("p", PrefBranchType::User, int(1))]);
    h.run_match(&[&a]);
    h.user_id = None;
    let b = multi_recipe("b", &[("q", PrefBranchType::User, int(1))]);
    h.advance(SignedDuration::from_hours(1));
    h.run_match(&[&a, &b]);
    assert!(!h.state.experiments.contains_key("b"));
    assert_eq!(h.state.experiments["a"].last_seen, h.now);
    assert_eq!(h.methods(), vec!["enroll"]);
}

#[test]
fn a_match_clears_the_error_deadline_and_bumps_last_seen() {
    let mut h = Harness::new();
    let recipe = multi_recipe("e", &[("p", PrefBranchType::User, int(1))]);
    h.run_match(&[&recipe]);
    h.run(&[RecipeRun {
        recipe: &recipe,
        suitability: Suitability::FilterError("x".into()),
    }]);
    assert!(h.state.experiments["e"].temporary_error_deadline.is_some());
    h.advance(SignedDuration::from_hours(2));
    h.run_match(&[&recipe]);
    let record = &h.state.experiments["e"];
    assert_eq!(record.temporary_error_deadline, None);
    assert_eq!(record.last_seen, h.now);
}

#[test]
fn each_stopping_suitability_has_its_reason_and_resets() {
    for (suitability, reason) in [
        (Suitability::Mismatch, "filter-mismatch"),
        (Suitability::CapabilitiesMismatch, "capability-mismatch"),
        (Suitability::ArgumentsInvalid, "arguments-invalid"),
    ] {
        let mut h = Harness::new();
        h.prefs.set("p", Branch::User, Some(int(9)));
        let recipe = multi_recipe("e", &[("p", PrefBranchType::User, int(1))]);
        h.run_match(&[&recipe]);
        assert_eq!(h.prefs.get("p").user, Some(int(1)));
        h.run(&[RecipeRun {
            recipe: &recipe,
            suitability,
        }]);
        assert_eq!(h.prefs.get("p").user, Some(int(9)), "{reason}");
        let last = h.events.last().unwrap();
        assert_eq!(last.method, "unenroll");
        assert_eq!(last.extra["reason"], reason);
        assert_eq!(last.extra["didResetValue"], "true");
        let record = &h.state.experiments["e"];
        assert!(record.expired);
        assert_eq!(record.end_reason.as_deref(), Some(reason));
        assert_eq!(record.ended_at, Some(h.now));
    }
}

#[test]
fn invalid_arguments_for_a_known_slug_stop_it_even_when_the_filter_matched() {
    let mut h = Harness::new();
    let recipe = multi_recipe("e", &[("p", PrefBranchType::User, int(1))]);
    h.run_match(&[&recipe]);
    let broken = Recipe::new(
        3,
        "e",
        ACTION_MULTI_PREFERENCE_EXPERIMENT,
        Arguments::Invalid {
            action: ACTION_MULTI_PREFERENCE_EXPERIMENT.into(),
            raw: Some(serde_json::json!({"slug": "e", "branches": 3})),
        },
        None,
    );
    h.run_match(&[&broken]);
    assert_eq!(
        h.state.experiments["e"].end_reason.as_deref(),
        Some("arguments-invalid")
    );
}

#[test]
fn signature_errors_are_temporary_too() {
    let mut h = Harness::new();
    let recipe = multi_recipe("e", &[("p", PrefBranchType::User, int(1))]);
    h.run_match(&[&recipe]);
    let bad = [RecipeRun {
        recipe: &recipe,
        suitability: Suitability::SignatureError("bad".into()),
    }];
    h.run(&bad);
    h.advance(SignedDuration::from_hours(7 * 24));
    // Exactly at the deadline: still inside the grace period.
    h.run(&bad);
    assert!(!h.state.experiments["e"].expired);
    h.advance(SignedDuration::from_secs(1));
    h.run(&bad);
    assert_eq!(
        h.state.experiments["e"].end_reason.as_deref(),
        Some("signature-error")
    );
    assert_eq!(h.prefs.get("p").user, None);
}

#[test]
fn the_grace_period_is_configurable() {
    let mut h = Harness::new();
    h.config.temporary_error_grace = SignedDuration::from_hours(1);
    let recipe = multi_recipe("e", &[("p", PrefBranchType::User, int(1))]);
    h.run_match(&[&recipe]);
    h.run_no_recipes();
    h.advance(SignedDuration::from_hours(2));
    h.run_no_recipes();
    assert_eq!(
        h.state.experiments["e"].end_reason.as_deref(),
        Some("no-recipes")
    );
}

#[test]
fn start_checks_in_order_and_reports_each_reason() {
    let mut h = Harness::new();
    let request = |slug: &str, prefs: Vec<StartPreference>, kind: &str| StartRequest {
        slug: slug.into(),
        action_name: ACTION_MULTI_PREFERENCE_EXPERIMENT.into(),
        branch: "b".into(),
        preferences: prefs,
        experiment_type: kind.into(),
        user_facing_name: String::new(),
        user_facing_description: String::new(),
    };
    let pref = |name: &str, value: PrefValue, kind: &str, branch: &str| StartPreference {
        name: name.into(),
        value,
        preference_type: kind.into(),
        branch_type: branch.into(),
    };
    h.prefs
        .set("s", Branch::Default, Some(PrefValue::String("x".into())));
    let long_branch = "x".repeat(100);
    let cases = vec![
        (
            request("a", vec![pref("p", int(1), "integer", "user")], "exp"),
            None,
        ),
        (
            request("a", vec![pref("q", int(1), "integer", "user")], "exp"),
            Some("name-conflict"),
        ),
        (
            request("b", vec![pref("p", int(1), "integer", "user")], "exp"),
            Some("pref-conflict"),
        ),
        (
            request(
                "c",
                vec![pref("q", int(1), "integer", "user")],
                "exp-123456789",
            ),
            Some("experiment-type-too-long"),
        ),
        (
            request("d", vec![pref("q", int(1), "integer", &long_branch)], "exp"),
            Some("invalid-branch"),
        ),
        (
            request("e", vec![pref("q", int(1), "float", "user")], "exp"),
            Some("invalid-type"),
        ),
        (
            request("f", vec![pref("q", int(1), "boolean", "user")], "exp"),
            Some("invalid-type"),
        ),
        (
            request("g", vec![pref("s", int(1), "integer", "default")], "exp"),
            Some("invalid-type"),
        ),
    ];
    for (request, expected) in cases {
        h.events.clear();
        let result = h.with_session(|s| start(s, &request));
        match expected {
            None => assert_eq!(result, Ok(())),
            Some(reason) => {
                assert_eq!(result.unwrap_err().reason(), reason);
                assert_eq!(h.events.len(), 1);
                assert_eq!(h.events[0].method, "enrollFailed");
                assert_eq!(h.events[0].extra["reason"], reason);
                if reason == "invalid-branch" {
                    assert_eq!(h.events[0].extra["prefBranch"], "x".repeat(80));
                }
            }
        }
    }
    // Nothing but the first request wrote anything.
    assert_eq!(h.prefs.names(), vec!["p".to_owned(), "s".to_owned()]);
    assert_eq!(h.state.experiments.len(), 1);
}

#[test]
fn an_overridden_default_branch_pref_is_not_written_and_reported_on_enroll() {
    let mut h = Harness::new();
    h.prefs.set("p", Branch::Default, Some(int(1)));
    h.prefs.set("p", Branch::User, Some(int(2)));
    let recipe = multi_recipe(
        "e",
        &[
            ("p", PrefBranchType::Default, int(3)),
            ("q", PrefBranchType::Default, int(4)),
        ],
    );
    h.run_match(&[&recipe]);
    assert_eq!(h.prefs.get("p").default, Some(int(1)));
    assert_eq!(h.prefs.get("q").default, Some(int(4)));
    let record = &h.state.experiments["e"];
    assert!(record.preferences["p"].overridden);
    assert!(!record.preferences["q"].overridden);
    assert_eq!(
        h.events[1],
        TelemetryEvent::new("expPrefChanged", "preference_study", "e")
            .with("preferenceName", "p")
            .with("reason", "onEnroll")
    );
    // Changing the overridden preference does not end the experiment: it does not own it.
    h.prefs.set("p", Branch::User, Some(int(7)));
    h.with_session(|s| preference_changed(s, "p"));
    assert!(!h.state.experiments["e"].expired);
    // Startup does not write it either, and does not call it a sideload.
    h.startup(&BTreeMap::new());
    assert_eq!(h.prefs.get("p").default, Some(int(1)));
    assert!(!h.state.experiments["e"].expired);
}

#[test]
fn stopping_skips_an_overridden_user_branch_pref() {
    let mut h = Harness::new();
    let recipe = multi_recipe(
        "e",
        &[
            ("p", PrefBranchType::User, int(1)),
            ("q", PrefBranchType::User, int(2)),
        ],
    );
    h.run_match(&[&recipe]);
    // Marked overridden by an older client (the observer of current Firefox does this).
    h.state
        .experiments
        .get_mut("e")
        .unwrap()
        .preferences
        .get_mut("p")
        .unwrap()
        .overridden = true;
    h.prefs.set("p", Branch::User, Some(int(8)));
    assert_eq!(
        h.with_session(|s| stop_experiment(s, "e", true, "individual-opt-out")),
        Ok(())
    );
    assert_eq!(h.prefs.get("p").user, Some(int(8)));
    assert_eq!(h.prefs.get("q").user, None);
    let last = h.events.last().unwrap();
    assert_eq!(last.extra["reason"], "individual-opt-out");
    assert_eq!(last.extra["branch"], "treatment");
    assert!(!last.extra.contains_key("changedPref"));
}

#[test]
fn stop_without_reset_leaves_values_and_failures_are_reported() {
    let mut h = Harness::new();
    let recipe = multi_recipe("e", &[("p", PrefBranchType::User, int(1))]);
    h.run_match(&[&recipe]);
    assert_eq!(
        h.with_session(|s| stop_experiment(s, "e", false, "unknown")),
        Ok(())
    );
    assert_eq!(h.prefs.get("p").user, Some(int(1)));
    assert_eq!(h.events.last().unwrap().extra["didResetValue"], "false");
    assert_eq!(
        h.with_session(|s| stop_experiment(s, "e", true, "individual-opt-out")),
        Err(StopError::AlreadyUnenrolled { slug: "e".into() })
    );
    assert_eq!(
        h.with_session(|s| stop_experiment(s, "nope", true, "individual-opt-out")),
        Err(StopError::DoesNotExist {
            slug: "nope".into()
        })
    );
    let failures: Vec<_> = h.events[2..]
        .iter()
        .map(|e| {
            (
                e.method.as_str(),
                e.value.as_str(),
                e.extra["reason"].as_str(),
                e.extra["originalReason"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        failures,
        vec![
            (
                "unenrollFailed",
                "e",
                "already-unenrolled",
                "individual-opt-out"
            ),
            (
                "unenrollFailed",
                "nope",
                "does-not-exist",
                "individual-opt-out"
            ),
        ]
    );
}

#[test]
fn a_user_change_of_one_pref_restores_the_others_and_keeps_it() {
    let mut h = Harness::new();
    h.prefs.set("p", Branch::Default, Some(int(10)));
    h.prefs.set("q", Branch::Default, Some(int(20)));
    let recipe = multi_recipe(
        "e",
        &[
            ("p", PrefBranchType::Default, int(1)),
            ("q", PrefBranchType::Default, int(2)),
        ],
    );
    h.run_match(&[&recipe]);
    h.prefs.set("p", Branch::User, Some(int(5)));
    h.with_session(|s| preference_changed(s, "p"));
    // The user's value stays; the invisible default under it is back to the original.
    assert_eq!(h.prefs.get("p").user, Some(int(5)));
    assert_eq!(h.prefs.get("p").default, Some(int(10)));
    // The untouched preference is restored.
    assert_eq!(h.prefs.get("q").default, Some(int(20)));
    assert_eq!(
        h.events.last().unwrap(),
        &TelemetryEvent::new("unenroll", "preference_study", "e")
            .with("didResetValue", "false")
            .with("branch", "treatment")
            .with("reason", "user-preference-changed")
            .with("changedPref", "p")
    );
}

#[test]
fn an_unrelated_or_equal_change_does_not_stop() {
    let mut h = Harness::new();
    let recipe = multi_recipe("e", &[("p", PrefBranchType::User, int(1))]);
    h.run_match(&[&recipe]);
    h.with_session(|s| preference_changed(s, "p"));
    h.prefs.set("z", Branch::User, Some(int(1)));
    h.with_session(|s| preference_changed(s, "z"));
    assert!(!h.state.experiments["e"].expired);
    assert_eq!(h.events.len(), 1);
}

#[test]
fn rollouts_ignore_user_changes() {
    let mut h = Harness::new();
    h.run_match(&[&rollout_recipe("r", &[("p", int(1))])]);
    h.prefs.set("p", Branch::User, Some(int(3)));
    h.with_session(|s| preference_changed(s, "p"));
    h.startup(&BTreeMap::new());
    assert_eq!(h.state.rollouts["r"].state, RolloutState::Active);
    assert_eq!(h.prefs.get("p").default, Some(int(1)));
    assert_eq!(h.methods(), vec!["enroll"]);
}

#[test]
fn startup_reapplies_default_branch_values_only() {
    let mut h = Harness::new();
    let recipe = multi_recipe(
        "e",
        &[
            ("d", PrefBranchType::Default, int(1)),
            ("u", PrefBranchType::User, int(2)),
        ],
    );
    h.run_match(&[&recipe]);
    h.run_match(&[&recipe, &rollout_recipe("r", &[("r", int(3))])]);
    // The application rebuilt its default branch.
    for name in ["d", "r"] {
        h.prefs.set(name, Branch::Default, None);
    }
    h.startup(&BTreeMap::new());
    assert_eq!(h.prefs.get("d").default, Some(int(1)));
    assert_eq!(h.prefs.get("r").default, Some(int(3)));
    assert_eq!(h.prefs.get("u").default, None);
    assert!(!h.state.experiments["e"].expired);
}

#[test]
fn startup_refreshes_the_default_branch_previous_value_from_the_builtin_default() {
    let mut h = Harness::new();
    h.prefs.set("d", Branch::Default, Some(int(55)));
    h.prefs.set("u", Branch::User, Some(int(7)));
    let recipe = multi_recipe(
        "e",
        &[
            ("d", PrefBranchType::Default, int(1)),
            ("u", PrefBranchType::User, int(2)),
        ],
    );
    h.run_match(&[&recipe]);
    // The application was updated: its built-in default is now 56.
    let builtins = BTreeMap::from([
        ("d".to_owned(), Some(int(56))),
        ("u".to_owned(), Some(int(0))),
    ]);
    h.startup(&builtins);
    let record = &h.state.experiments["e"];
    assert_eq!(
        record.preferences["d"].previous_preference_value,
        Some(int(56))
    );
    // A user-branch preference keeps the user value it backed up.
    assert_eq!(
        record.preferences["u"].previous_preference_value,
        Some(int(7))
    );
    h.with_session(|s| stop_experiment(s, "e", true, "individual-opt-out"))
        .unwrap();
    assert_eq!(h.prefs.get("d").default, Some(int(56)));
    assert_eq!(h.prefs.get("u").user, Some(int(7)));
}

#[test]
fn a_sideloaded_change_ends_the_experiment_at_startup_without_reset() {
    let mut h = Harness::new();
    let recipe = multi_recipe("e", &[("u", PrefBranchType::User, int(2))]);
    h.run_match(&[&recipe]);
    // Changed while the client was not running: no observer call.
    h.prefs.set("u", Branch::User, Some(int(4)));
    h.startup(&BTreeMap::new());
    assert_eq!(h.prefs.get("u").user, Some(int(4)));
    assert_eq!(
        h.events.last().unwrap(),
        &TelemetryEvent::new("unenroll", "preference_study", "e")
            .with("didResetValue", "false")
            .with("branch", "treatment")
            .with("reason", "user-preference-changed-sideload")
            .with("changedPref", "u")
    );
}

#[test]
fn opting_out_of_studies_ends_experiments_at_startup_and_blocks_enrollment() {
    let mut h = Harness::new();
    let a = multi_recipe("a", &[("p", PrefBranchType::User, int(1))]);
    h.run_match(&[&a]);
    h.config.studies_enabled = false;
    h.startup(&BTreeMap::new());
    assert_eq!(
        h.state.experiments["a"].end_reason.as_deref(),
        Some("general-opt-out")
    );
    assert_eq!(h.prefs.get("p").user, None);
    let b = multi_recipe("b", &[("q", PrefBranchType::User, int(1))]);
    h.run_match(&[&a, &b]);
    assert!(!h.state.experiments.contains_key("b"));
    assert_eq!(h.methods(), vec!["enroll", "unenroll"]);
}

#[test]
fn opting_out_at_run_time_ends_experiments_too() {
    let mut h = Harness::new();
    let a = multi_recipe("a", &[("p", PrefBranchType::User, int(1))]);
    h.run_match(&[&a]);
    h.config.studies_enabled = false;
    h.run_match(&[&a]);
    let last = h.events.last().unwrap();
    assert_eq!(last.extra["reason"], "general-opt-out");
    assert_eq!(last.extra["didResetValue"], "true");
}

#[test]
fn annotations_and_filter_extras_list_what_is_active() {
    let mut h = Harness::new();
    let a = multi_recipe("a", &[("p", PrefBranchType::User, int(1))]);
    let b = multi_recipe("b", &[("q", PrefBranchType::User, int(1))]);
    let r = rollout_recipe("r", &[("x", int(1))]);
    let g = rollout_recipe("g", &[("y", int(1))]);
    h.run_match(&[&a, &b, &r, &g]);
    h.with_session(|s| stop_experiment(s, "b", true, "individual-opt-out"))
        .unwrap();
    h.state.rollouts.get_mut("g").unwrap().state = RolloutState::Graduated;
    let annotations = annotations(&h.state);
    assert_eq!(
        annotations.keys().collect::<Vec<_>>(),
        vec!["a", "r"],
        "only active experiments and rollouts"
    );
    assert_eq!(annotations["a"].kind, "normandy-exp");
    assert_eq!(annotations["r"].branch, "active");
    assert_eq!(annotations["r"].kind, "normandy-prefrollout");

    let (experiments, studies, rollouts) = filter_environment_extras(&h.state);
    assert_eq!(
        experiments,
        serde_json::json!({"all": ["a", "b"], "active": ["a"], "expired": ["b"]})
    );
    assert_eq!(studies["pref"]["b"]["expired"], true);
    assert_eq!(studies["pref"]["a"]["branch"], "treatment");
    assert_eq!(studies["addon"], serde_json::json!({}));
    assert_eq!(rollouts["pref"]["g"]["state"], "graduated");
    assert_eq!(
        rollouts["pref"]["r"]["preferences"][0]["preferenceName"],
        "x"
    );
    assert_eq!(rollouts["addon"], serde_json::json!({}));
}

#[test]
fn extras_are_never_empty_strings_for_required_keys() {
    // Every event of a busy lifecycle carries the keys its method requires.
    let mut h = Harness::new();
    let e = multi_recipe("e", &[("p", PrefBranchType::User, int(1))]);
    let r = rollout_recipe("r", &[("x", int(1))]);
    h.run_match(&[&e, &r]);
    h.run_match(&[&rollout_recipe("r", &[("x", int(2))])]);
    h.with_session(|s| rollback(s, "r")).unwrap();
    let required: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("enroll", &["branch", "experimentType"][..]),
        ("unenroll", &["didResetValue", "branch", "reason"][..]),
        ("update", &["previousState"][..]),
    ]);
    for event in &h.events {
        if event.object == OBJECT_PREFERENCE_STUDY || event.method == "update" {
            for key in required.get(event.method.as_str()).copied().unwrap_or(&[]) {
                assert!(
                    event.extra.get(*key).is_some_and(|v| !v.is_empty()),
                    "{event:?} lacks {key}"
                );
            }
        }
    }
    assert_eq!(
        h.methods(),
        vec!["enroll", "enroll", "update", "unenroll", "unenroll"]
    );
}
