//! Preference rollouts and rollbacks, replaying the golden cases of the Firefox browser tests
//! (seed-originals §4.3) and the product decisions on top of them. Each case starts from
//! preferences and a state document, runs steps, and checks the preferences, the rollout
//! records, the exact event sequence and the telemetry annotations.

use crate::normandy_support;

use flightdeck_client::normandy::{self, Suitability};
use flightdeck_core::model::normandy::Recipe;
use normandy_support::{Client, START, rollback, rollout};
use serde_json::{Value, json};

enum Step {
    /// One run with these recipes.
    Run(Vec<(Recipe, Suitability)>),
    /// A start of the application: known built-in defaults (`{name: value|null}`).
    Startup(Value),
    /// A start where the application first rebuilt its default branch from its built-in
    /// defaults (Firefox's default branch is not persisted).
    Restart(Value),
}

fn run(recipes: Vec<Recipe>) -> Step {
    Step::Run(
        recipes
            .into_iter()
            .map(|r| (r, Suitability::Match))
            .collect(),
    )
}

struct Case {
    name: &'static str,
    graduation_set: &'static [&'static str],
    prefs: Value,
    state: Value,
    steps: Vec<Step>,
    expect_prefs: Value,
    expect_rollouts: Value,
    expect_events: Value,
    expect_annotations: Value,
}

impl Default for Case {
    fn default() -> Case {
        Case {
            name: "",
            graduation_set: &[],
            prefs: json!({}),
            state: Value::Null,
            steps: Vec::new(),
            expect_prefs: json!({}),
            expect_rollouts: json!({}),
            expect_events: json!([]),
            expect_annotations: json!({}),
        }
    }
}

fn active() -> Value {
    json!({"branch": "active", "type": "normandy-prefrollout"})
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "new rollout: every preference on the default branch, re-applied at start",
            steps: vec![
                run(vec![rollout(
                    1,
                    "test-rollout",
                    json!({"test.pref1": 1, "test.pref2": true, "test.pref3": "it works"}),
                )]),
                Step::Restart(json!({"test.pref1": null, "test.pref2": null, "test.pref3": null})),
            ],
            expect_prefs: json!({
                "test.pref1": {"default": 1}, "test.pref2": {"default": true},
                "test.pref3": {"default": "it works"}
            }),
            expect_rollouts: json!({"test-rollout": {
            "slug": "test-rollout", "state": "active", "enrolledAt": START,
            "preferences": [
                {"preferenceName": "test.pref1", "value": 1, "previousValue": null},
                {"preferenceName": "test.pref2", "value": true, "previousValue": null},
                {"preferenceName": "test.pref3", "value": "it works", "previousValue": null}
            ]}}),
            expect_events: json!([["enroll", "preference_rollout", "test-rollout", {}]]),
            expect_annotations: json!({"test-rollout": active()}),
            ..Case::default()
        },
        Case {
            name: "update: a dropped preference is reset, changed and added ones written",
            steps: vec![
                run(vec![rollout(
                    1,
                    "test-rollout",
                    json!({"test.pref1": 1, "test.pref2": 1}),
                )]),
                run(vec![rollout(
                    1,
                    "test-rollout",
                    json!({"test.pref2": 2, "test.pref3": 2}),
                )]),
                Step::Restart(json!({"test.pref1": null, "test.pref2": null, "test.pref3": null})),
            ],
            expect_prefs: json!({"test.pref2": {"default": 2}, "test.pref3": {"default": 2}}),
            expect_rollouts: json!({"test-rollout": {
            "slug": "test-rollout", "state": "active", "enrolledAt": START,
            "preferences": [
                {"preferenceName": "test.pref2", "value": 2, "previousValue": null},
                {"preferenceName": "test.pref3", "value": 2, "previousValue": null}
            ]}}),
            expect_events: json!([
                ["enroll", "preference_rollout", "test-rollout", {}],
                ["update", "preference_rollout", "test-rollout", {"previousState": "active"}]
            ]),
            expect_annotations: json!({"test-rollout": active()}),
            ..Case::default()
        },
        Case {
            name: "update: a dropped preference gets its non-null previous value back",
            prefs: json!({"test.pref1": {"default": 5}}),
            steps: vec![
                run(vec![rollout(
                    1,
                    "test-rollout",
                    json!({"test.pref1": 1, "test.pref2": 1}),
                )]),
                run(vec![rollout(1, "test-rollout", json!({"test.pref2": 1}))]),
            ],
            expect_prefs: json!({"test.pref1": {"default": 5}, "test.pref2": {"default": 1}}),
            expect_rollouts: json!({"test-rollout": {
            "slug": "test-rollout", "state": "active", "enrolledAt": START,
            "preferences": [
                {"preferenceName": "test.pref2", "value": 1, "previousValue": null}
            ]}}),
            expect_events: json!([
                ["enroll", "preference_rollout", "test-rollout", {}],
                ["update", "preference_rollout", "test-rollout", {"previousState": "active"}]
            ]),
            expect_annotations: json!({"test-rollout": active()}),
            ..Case::default()
        },
        Case {
            name: "a graduated rollout whose recipe changes becomes active again",
            prefs: json!({"test.pref": {"default": 1}}),
            state: json!({"rollouts": {"test-rollout": {
                "slug": "test-rollout", "state": "graduated",
                "preferences": [{"preferenceName": "test.pref", "value": 1, "previousValue": 1}]
            }}}),
            steps: vec![run(vec![rollout(
                1,
                "test-rollout",
                json!({"test.pref": 2}),
            )])],
            expect_prefs: json!({"test.pref": {"default": 2}}),
            expect_rollouts: json!({"test-rollout": {
                "slug": "test-rollout", "state": "active",
                "preferences": [{"preferenceName": "test.pref", "value": 2, "previousValue": 1}]
            }}),
            expect_events: json!([
                ["update", "preference_rollout", "test-rollout", {"previousState": "graduated"}]
            ]),
            expect_annotations: json!({"test-rollout": active()}),
            ..Case::default()
        },
        Case {
            name: "a graduated rollout whose recipe is unchanged stays graduated",
            prefs: json!({"test.pref": {"default": 1}}),
            state: json!({"rollouts": {"test-rollout": {
                "slug": "test-rollout", "state": "graduated",
                "preferences": [{"preferenceName": "test.pref", "value": 1, "previousValue": 1}]
            }}}),
            steps: vec![run(vec![rollout(
                1,
                "test-rollout",
                json!({"test.pref": 1}),
            )])],
            expect_prefs: json!({"test.pref": {"default": 1}}),
            expect_rollouts: json!({"test-rollout": {
                "slug": "test-rollout", "state": "graduated",
                "preferences": [{"preferenceName": "test.pref", "value": 1, "previousValue": 1}]
            }}),
            ..Case::default()
        },
        Case {
            name: "two rollouts share a preference: the first wins, the second fails every run",
            steps: vec![
                run(vec![
                    rollout(1, "rollout-1", json!({"test.pref1": 1, "test.pref2": 1})),
                    rollout(2, "rollout-2", json!({"test.pref1": 2, "test.pref3": 2})),
                ]),
                run(vec![
                    rollout(1, "rollout-1", json!({"test.pref1": 1, "test.pref2": 1})),
                    rollout(2, "rollout-2", json!({"test.pref1": 2, "test.pref3": 2})),
                ]),
            ],
            expect_prefs: json!({"test.pref1": {"default": 1}, "test.pref2": {"default": 1}}),
            expect_rollouts: json!({"rollout-1": {
            "slug": "rollout-1", "state": "active", "enrolledAt": START,
            "preferences": [
                {"preferenceName": "test.pref1", "value": 1, "previousValue": null},
                {"preferenceName": "test.pref2", "value": 1, "previousValue": null}
            ]}}),
            expect_events: json!([
                ["enroll", "preference_rollout", "rollout-1", {}],
                ["enrollFailed", "preference_rollout", "rollout-2",
                    {"reason": "conflict", "preference": "test.pref1"}],
                ["enrollFailed", "preference_rollout", "rollout-2",
                    {"reason": "conflict", "preference": "test.pref1"}]
            ]),
            expect_annotations: json!({"rollout-1": active()}),
            ..Case::default()
        },
        Case {
            name: "a preference of another type: nothing changed or stored",
            prefs: json!({"test.pref": {"default": "a string"}}),
            steps: vec![run(vec![rollout(
                1,
                "test-rollout",
                json!({"test.pref": 1}),
            )])],
            expect_prefs: json!({"test.pref": {"default": "a string"}}),
            expect_events: json!([["enrollFailed", "preference_rollout", "test-rollout",
                {"reason": "invalid type", "preference": "test.pref"}]]),
            ..Case::default()
        },
        Case {
            name: "a user value keeps winning; the built-in default is the previous value",
            prefs: json!({"test.pref": {"default": "builtin value", "user": "user value"}}),
            steps: vec![run(vec![rollout(
                1,
                "test-rollout",
                json!({"test.pref": "rollout value"}),
            )])],
            expect_prefs: json!({"test.pref": {"default": "rollout value", "user": "user value"}}),
            expect_rollouts: json!({"test-rollout": {
                "slug": "test-rollout", "state": "active", "enrolledAt": START,
                "preferences": [{"preferenceName": "test.pref", "value": "rollout value",
                                 "previousValue": "builtin value"}]}}),
            expect_events: json!([["enroll", "preference_rollout", "test-rollout", {}]]),
            expect_annotations: json!({"test-rollout": active()}),
            ..Case::default()
        },
        Case {
            name: "only a user value: the default branch gets the rollout value, also at start",
            prefs: json!({"test.pref": {"user": 2}}),
            steps: vec![
                run(vec![rollout(1, "test-rollout", json!({"test.pref": 1}))]),
                Step::Restart(json!({"test.pref": null})),
            ],
            expect_prefs: json!({"test.pref": {"default": 1, "user": 2}}),
            expect_rollouts: json!({"test-rollout": {
                "slug": "test-rollout", "state": "active", "enrolledAt": START,
                "preferences": [{"preferenceName": "test.pref", "value": 1, "previousValue": null}]
            }}),
            expect_events: json!([["enroll", "preference_rollout", "test-rollout", {}]]),
            expect_annotations: json!({"test-rollout": active()}),
            ..Case::default()
        },
        Case {
            name: "the same recipe twice enrolls once and keeps a null previous value",
            steps: vec![
                run(vec![rollout(1, "test-rollout", json!({"test.pref": 1}))]),
                run(vec![rollout(1, "test-rollout", json!({"test.pref": 1}))]),
            ],
            expect_prefs: json!({"test.pref": {"default": 1}}),
            expect_rollouts: json!({"test-rollout": {
                "slug": "test-rollout", "state": "active", "enrolledAt": START,
                "preferences": [{"preferenceName": "test.pref", "value": 1, "previousValue": null}]
            }}),
            expect_events: json!([["enroll", "preference_rollout", "test-rollout", {}]]),
            expect_annotations: json!({"test-rollout": active()}),
            ..Case::default()
        },
        Case {
            name: "a new rollout that changes nothing fails as would-be-no-op",
            prefs: json!({"test.pref": {"default": 1}}),
            steps: vec![run(vec![rollout(
                1,
                "test-rollout",
                json!({"test.pref": 1}),
            )])],
            expect_prefs: json!({"test.pref": {"default": 1}}),
            expect_events: json!([["enrollFailed", "preference_rollout", "test-rollout",
                {"reason": "would-be-no-op"}]]),
            ..Case::default()
        },
        Case {
            name: "recording original values refreshes previousValue and keeps it active",
            prefs: json!({"test.pref": {"default": 2}}),
            state: json!({"rollouts": {"test-rollout": {
                "slug": "test-rollout", "state": "active",
                "preferences": [{"preferenceName": "test.pref", "value": 2, "previousValue": null}]
            }}}),
            steps: vec![Step::Startup(json!({"test.pref": 1}))],
            expect_prefs: json!({"test.pref": {"default": 2}}),
            expect_rollouts: json!({"test-rollout": {
                "slug": "test-rollout", "state": "active",
                "preferences": [{"preferenceName": "test.pref", "value": 2, "previousValue": 1}]
            }}),
            expect_annotations: json!({"test-rollout": active()}),
            ..Case::default()
        },
        Case {
            name: "graduation when every built-in default caught up",
            prefs: json!({"test.pref1": {"default": 2}, "test.pref2": {"default": 2}}),
            state: json!({"rollouts": {"test-rollout": {
            "slug": "test-rollout", "state": "active",
            "preferences": [
                {"preferenceName": "test.pref1", "value": 2, "previousValue": null},
                {"preferenceName": "test.pref2", "value": 2, "previousValue": null}
            ]}}}),
            steps: vec![
                Step::Startup(json!({"test.pref1": 1, "test.pref2": 2})),
                Step::Startup(json!({"test.pref1": 2, "test.pref2": 2})),
            ],
            expect_prefs: json!({"test.pref1": {"default": 2}, "test.pref2": {"default": 2}}),
            expect_rollouts: json!({"test-rollout": {
            "slug": "test-rollout", "state": "graduated",
            "preferences": [
                {"preferenceName": "test.pref1", "value": 2, "previousValue": 2},
                {"preferenceName": "test.pref2", "value": 2, "previousValue": 2}
            ]}}),
            expect_events: json!([["graduate", "preference_rollout", "test-rollout",
                {"reason": "all-prefs-match"}]]),
            ..Case::default()
        },
        Case {
            name: "only active rollouts are annotated",
            prefs: json!({"p1": {"default": 1}, "p2": {"default": 1}}),
            state: json!({"rollouts": {
                "a1": {"slug": "a1", "state": "active",
                       "preferences": [{"preferenceName": "p1", "value": 1, "previousValue": null}]},
                "a2": {"slug": "a2", "state": "active",
                       "preferences": [{"preferenceName": "p2", "value": 1, "previousValue": null}]},
                "rb": {"slug": "rb", "state": "rolled-back",
                       "preferences": [{"preferenceName": "p3", "value": 1, "previousValue": null}]},
                "gr": {"slug": "gr", "state": "graduated",
                       "preferences": [{"preferenceName": "p4", "value": 1, "previousValue": 1}]}
            }}),
            steps: vec![Step::Startup(json!({}))],
            expect_prefs: json!({"p1": {"default": 1}, "p2": {"default": 1}}),
            expect_rollouts: json!({
                "a1": {"slug": "a1", "state": "active",
                       "preferences": [{"preferenceName": "p1", "value": 1, "previousValue": null}]},
                "a2": {"slug": "a2", "state": "active",
                       "preferences": [{"preferenceName": "p2", "value": 1, "previousValue": null}]},
                "gr": {"slug": "gr", "state": "graduated",
                       "preferences": [{"preferenceName": "p4", "value": 1, "previousValue": 1}]},
                "rb": {"slug": "rb", "state": "rolled-back",
                       "preferences": [{"preferenceName": "p3", "value": 1, "previousValue": null}]}
            }),
            expect_annotations: json!({"a1": active(), "a2": active()}),
            ..Case::default()
        },
        Case {
            name: "rollback of an active rollout restores the previous values",
            prefs: json!({"test.pref": {"default": "rollout"}}),
            state: json!({"rollouts": {"test-rollout": {
                "slug": "test-rollout", "state": "active",
                "preferences": [{"preferenceName": "test.pref", "value": "rollout",
                                 "previousValue": "builtin"}]
            }}}),
            steps: vec![run(vec![rollback(9, "test-rollout")])],
            expect_prefs: json!({"test.pref": {"default": "builtin"}}),
            expect_rollouts: json!({"test-rollout": {
                "slug": "test-rollout", "state": "rolled-back",
                "preferences": [{"preferenceName": "test.pref", "value": "rollout",
                                 "previousValue": "builtin"}]
            }}),
            expect_events: json!([["unenroll", "preference_rollback", "test-rollout",
                {"reason": "rollback"}]]),
            ..Case::default()
        },
        Case {
            name: "rollback of a graduated rollout fails",
            prefs: json!({"test.pref": {"default": 1}}),
            state: json!({"rollouts": {"test-rollout": {
                "slug": "test-rollout", "state": "graduated",
                "preferences": [{"preferenceName": "test.pref", "value": 1, "previousValue": 1}]
            }}}),
            steps: vec![run(vec![rollback(9, "test-rollout")])],
            expect_prefs: json!({"test.pref": {"default": 1}}),
            expect_rollouts: json!({"test-rollout": {
                "slug": "test-rollout", "state": "graduated",
                "preferences": [{"preferenceName": "test.pref", "value": 1, "previousValue": 1}]
            }}),
            expect_events: json!([["unenrollFailed", "preference_rollback", "test-rollout",
                {"reason": "graduated"}]]),
            ..Case::default()
        },
        Case {
            name: "rollback of an unknown slug does nothing",
            prefs: json!({"test.pref": {"default": 1}}),
            steps: vec![run(vec![rollback(9, "test-rollout")])],
            expect_prefs: json!({"test.pref": {"default": 1}}),
            ..Case::default()
        },
        Case {
            name: "a rolled-back rollout never runs again, even with changed values",
            prefs: json!({"test.pref": {"default": 0}}),
            steps: vec![
                run(vec![rollout(1, "test-rollout", json!({"test.pref": 1}))]),
                run(vec![rollback(9, "test-rollout")]),
                run(vec![rollout(1, "test-rollout", json!({"test.pref": 1}))]),
                run(vec![rollout(
                    1,
                    "test-rollout",
                    json!({"test.pref": 2, "other": 3}),
                )]),
                run(vec![rollback(9, "test-rollout")]),
                Step::Restart(json!({"test.pref": 0})),
            ],
            expect_prefs: json!({"test.pref": {"default": 0}}),
            expect_rollouts: json!({"test-rollout": {
                "slug": "test-rollout", "state": "rolled-back", "enrolledAt": START,
                "preferences": [{"preferenceName": "test.pref", "value": 1, "previousValue": 0}]
            }}),
            expect_events: json!([
                ["enroll", "preference_rollout", "test-rollout", {}],
                ["unenroll", "preference_rollback", "test-rollout", {"reason": "rollback"}]
            ]),
            ..Case::default()
        },
        Case {
            name: "a rollback frees the preference for another rollout",
            steps: vec![
                run(vec![rollout(1, "one", json!({"test.pref": 1}))]),
                run(vec![
                    rollback(9, "one"),
                    rollout(2, "two", json!({"test.pref": 2})),
                ]),
            ],
            expect_prefs: json!({"test.pref": {"default": 2}}),
            expect_rollouts: json!({
                "one": {"slug": "one", "state": "rolled-back", "enrolledAt": START,
                        "preferences": [{"preferenceName": "test.pref", "value": 1, "previousValue": null}]},
                "two": {"slug": "two", "state": "active", "enrolledAt": START,
                        "preferences": [{"preferenceName": "test.pref", "value": 2, "previousValue": null}]}
            }),
            expect_events: json!([
                ["enroll", "preference_rollout", "one", {}],
                ["unenroll", "preference_rollback", "one", {"reason": "rollback"}],
                ["enroll", "preference_rollout", "two", {}]
            ]),
            expect_annotations: json!({"two": active()}),
            ..Case::default()
        },
        Case {
            name: "rollouts are permanent: mismatch, other suitabilities and absence change nothing",
            steps: vec![
                run(vec![rollout(1, "test-rollout", json!({"test.pref": 1}))]),
                Step::Run(vec![(
                    rollout(1, "test-rollout", json!({"test.pref": 1})),
                    Suitability::Mismatch,
                )]),
                Step::Run(vec![(
                    rollout(1, "test-rollout", json!({"test.pref": 2})),
                    Suitability::FilterError("boom".into()),
                )]),
                Step::Run(vec![(
                    rollout(1, "test-rollout", json!({"test.pref": 2})),
                    Suitability::CapabilitiesMismatch,
                )]),
                Step::Run(vec![]),
                run(vec![rollout(2, "other", json!({"other.pref": 1}))]),
            ],
            expect_prefs: json!({"other.pref": {"default": 1}, "test.pref": {"default": 1}}),
            expect_rollouts: json!({
                "other": {"slug": "other", "state": "active", "enrolledAt": START,
                          "preferences": [{"preferenceName": "other.pref", "value": 1, "previousValue": null}]},
                "test-rollout": {"slug": "test-rollout", "state": "active", "enrolledAt": START,
                          "preferences": [{"preferenceName": "test.pref", "value": 1, "previousValue": null}]}
            }),
            expect_events: json!([
                ["enroll", "preference_rollout", "test-rollout", {}],
                ["enroll", "preference_rollout", "other", {}]
            ]),
            expect_annotations: json!({"other": active(), "test-rollout": active()}),
            ..Case::default()
        },
        Case {
            name: "a rollback that does not match does nothing",
            steps: vec![
                run(vec![rollout(1, "test-rollout", json!({"test.pref": 1}))]),
                Step::Run(vec![(rollback(9, "test-rollout"), Suitability::Mismatch)]),
            ],
            expect_prefs: json!({"test.pref": {"default": 1}}),
            expect_rollouts: json!({"test-rollout": {
                "slug": "test-rollout", "state": "active", "enrolledAt": START,
                "preferences": [{"preferenceName": "test.pref", "value": 1, "previousValue": null}]
            }}),
            expect_events: json!([["enroll", "preference_rollout", "test-rollout", {}]]),
            expect_annotations: json!({"test-rollout": active()}),
            ..Case::default()
        },
        Case {
            name: "graduation set: no enrollment, rollback refused, active ones graduate at start",
            graduation_set: &["listed", "stored"],
            prefs: json!({"stored.pref": {"default": 5}}),
            state: json!({"rollouts": {"stored": {
                "slug": "stored", "state": "active",
                "preferences": [{"preferenceName": "stored.pref", "value": 5, "previousValue": 1}]
            }}}),
            steps: vec![
                run(vec![
                    rollout(1, "listed", json!({"listed.pref": 1})),
                    rollback(9, "listed"),
                ]),
                Step::Startup(json!({"stored.pref": 1})),
            ],
            expect_prefs: json!({"stored.pref": {"default": 1}}),
            expect_rollouts: json!({"stored": {
                "slug": "stored", "state": "graduated",
                "preferences": [{"preferenceName": "stored.pref", "value": 5, "previousValue": 1}]
            }}),
            expect_events: json!([
                ["unenrollFailed", "preference_rollback", "listed", {"reason": "in-graduation-set"}],
                ["graduate", "preference_rollout", "stored", {"reason": "in-graduation-set"}]
            ]),
            ..Case::default()
        },
    ]
}

fn builtin_restart(client: &mut Client, builtins: &Value) {
    use flightdeck_client::prefs::{Branch, PrefStore};
    for (name, value) in normandy_support::builtin_defaults(builtins) {
        client.prefs.set(&name, Branch::Default, value);
    }
    client.startup(builtins);
}

#[test]
fn golden_rollout_cases() {
    for case in cases() {
        let mut client = Client::with(&case.prefs, &case.state);
        for slug in case.graduation_set {
            client.config.graduation_set.insert((*slug).to_owned());
        }
        for step in &case.steps {
            match step {
                Step::Run(recipes) => {
                    let refs: Vec<(&Recipe, Suitability)> =
                        recipes.iter().map(|(r, s)| (r, s.clone())).collect();
                    client.run(&refs);
                }
                Step::Startup(builtins) => client.startup(builtins),
                Step::Restart(builtins) => builtin_restart(&mut client, builtins),
            }
        }
        assert_eq!(
            client.prefs_json(),
            case.expect_prefs,
            "{}: prefs",
            case.name
        );
        assert_eq!(
            serde_json::to_value(&client.state.rollouts).unwrap(),
            case.expect_rollouts,
            "{}: records",
            case.name
        );
        assert_eq!(
            client.events_json(),
            case.expect_events,
            "{}: events",
            case.name
        );
        assert_eq!(
            serde_json::to_value(normandy::annotations(&client.state)).unwrap(),
            case.expect_annotations,
            "{}: annotations",
            case.name
        );
        // Experiments are untouched by every rollout case.
        assert!(client.state.experiments.is_empty(), "{}", case.name);
    }
}

#[test]
fn rollout_records_reach_the_filter_environment() {
    let mut client = Client::new();
    client.run_match(&[&rollout(1, "test-rollout", json!({"test.pref": 1}))]);
    let (_, _, rollouts) = normandy::filter_environment_extras(&client.state);
    assert_eq!(
        rollouts,
        json!({"pref": {"test-rollout": {
            "slug": "test-rollout", "state": "active", "enrolledAt": START,
            "preferences": [{"preferenceName": "test.pref", "value": 1, "previousValue": null}]
        }}, "addon": {}})
    );
}
