//! Preference experiments: the per-suitability table of Normandy's experiment action
//! (normandy-nimbus §3.3), the golden lifecycle and branch vectors of seed-originals §3.3, and
//! the end conditions of seed 002, checked on preferences, records and exact event sequences.

use crate::normandy_support;

use flightdeck_client::normandy::{
    self, EnrollError, StartPreference, StartRequest, StopError, Suitability,
};
use flightdeck_client::prefs::{PrefStore, PrefValue};
use flightdeck_core::context::ClientContext;
use flightdeck_core::evaluate::{ClientFacts, EvalInput, NoJsFilter};
use flightdeck_core::model::normandy::Recipe;
use jiff::{SignedDuration, Timestamp};
use normandy_support::{Client, START, int, multi, multi_branches, recipe, single, single_with};
use serde_json::{Value, json};

fn days(n: i64) -> SignedDuration {
    SignedDuration::from_hours(24 * n)
}

fn at(offset: SignedDuration) -> String {
    let start: Timestamp = START.parse().unwrap();
    start.checked_add(offset).unwrap().to_string()
}

/// The experiment every table row uses: `exp-1` on the default branch of `test.pref`
/// (built-in 0); `user-a` gets `treatment` (golden vector: index 1 of [1, 1]), value 2.
fn exp1() -> Recipe {
    single(
        1,
        "exp-1",
        "test.pref",
        "default",
        json!({"control": 1, "treatment": 2}),
    )
}

fn unenroll(slug: &str, reset: bool, reason: &str) -> Value {
    json!(["unenroll", "preference_study", slug,
        {"didResetValue": reset.to_string(), "branch": "treatment", "reason": reason}])
}

fn enroll(slug: &str, branch: &str, kind: &str) -> Value {
    json!(["enroll", "preference_study", slug, {"branch": branch, "experimentType": kind}])
}

#[derive(Clone, Copy, Debug)]
enum Before {
    NotEnrolled,
    Active,
    Expired,
}

/// The record fields a row checks: `null` when there is no record.
fn record_summary(client: &Client, slug: &str) -> Value {
    match client.state.experiments.get(slug) {
        None => Value::Null,
        Some(r) => json!({
            "expired": r.expired,
            "endReason": r.end_reason,
            "lastSeen": r.last_seen.to_string(),
            "temporaryErrorDeadline": r.temporary_error_deadline.map(|t| t.to_string()),
        }),
    }
}

#[test]
fn suitability_table() {
    let hour = SignedDuration::from_hours(1);
    let enrolled = |expired: bool, reason: Option<&str>, last_seen: &str| {
        json!({"expired": expired, "endReason": reason, "lastSeen": last_seen,
               "temporaryErrorDeadline": null})
    };
    let start = at(SignedDuration::ZERO);
    let later = at(hour);
    let base = json!({"test.pref": {"default": 0}});
    let exp = json!({"test.pref": {"default": 2}});
    // (suitability, state before, record after, prefs after, events of the row's run)
    let rows: Vec<(Suitability, Before, Value, Value, Value)> = vec![
        (
            Suitability::Match,
            Before::NotEnrolled,
            json!({"expired": false, "endReason": null, "lastSeen": later,
                   "temporaryErrorDeadline": null}),
            exp.clone(),
            json!([enroll("exp-1", "treatment", "exp")]),
        ),
        (
            Suitability::Match,
            Before::Active,
            enrolled(false, None, &later),
            exp.clone(),
            json!([]),
        ),
        (
            Suitability::Match,
            Before::Expired,
            enrolled(true, Some("recipe-not-seen"), &start),
            base.clone(),
            json!([]),
        ),
        (
            Suitability::Mismatch,
            Before::NotEnrolled,
            Value::Null,
            base.clone(),
            json!([]),
        ),
        (
            Suitability::Mismatch,
            Before::Active,
            enrolled(true, Some("filter-mismatch"), &start),
            base.clone(),
            json!([unenroll("exp-1", true, "filter-mismatch")]),
        ),
        (
            Suitability::Mismatch,
            Before::Expired,
            enrolled(true, Some("recipe-not-seen"), &start),
            base.clone(),
            json!([]),
        ),
        (
            Suitability::CapabilitiesMismatch,
            Before::NotEnrolled,
            Value::Null,
            base.clone(),
            json!([]),
        ),
        (
            Suitability::CapabilitiesMismatch,
            Before::Active,
            enrolled(true, Some("capability-mismatch"), &start),
            base.clone(),
            json!([unenroll("exp-1", true, "capability-mismatch")]),
        ),
        (
            Suitability::CapabilitiesMismatch,
            Before::Expired,
            enrolled(true, Some("recipe-not-seen"), &start),
            base.clone(),
            json!([]),
        ),
        (
            Suitability::ArgumentsInvalid,
            Before::NotEnrolled,
            Value::Null,
            base.clone(),
            json!([]),
        ),
        (
            Suitability::ArgumentsInvalid,
            Before::Active,
            enrolled(true, Some("arguments-invalid"), &start),
            base.clone(),
            json!([unenroll("exp-1", true, "arguments-invalid")]),
        ),
        (
            Suitability::ArgumentsInvalid,
            Before::Expired,
            enrolled(true, Some("recipe-not-seen"), &start),
            base.clone(),
            json!([]),
        ),
        (
            Suitability::FilterError("x".into()),
            Before::NotEnrolled,
            Value::Null,
            base.clone(),
            json!([]),
        ),
        (
            Suitability::FilterError("x".into()),
            Before::Active,
            json!({"expired": false, "endReason": null, "lastSeen": start,
                   "temporaryErrorDeadline": at(hour + days(7))}),
            exp.clone(),
            json!([]),
        ),
        (
            Suitability::FilterError("x".into()),
            Before::Expired,
            enrolled(true, Some("recipe-not-seen"), &start),
            base.clone(),
            json!([]),
        ),
        (
            Suitability::SignatureError("x".into()),
            Before::NotEnrolled,
            Value::Null,
            base.clone(),
            json!([]),
        ),
        (
            Suitability::SignatureError("x".into()),
            Before::Active,
            json!({"expired": false, "endReason": null, "lastSeen": start,
                   "temporaryErrorDeadline": at(hour + days(7))}),
            exp.clone(),
            json!([]),
        ),
        (
            Suitability::SignatureError("x".into()),
            Before::Expired,
            enrolled(true, Some("recipe-not-seen"), &start),
            base.clone(),
            json!([]),
        ),
    ];
    assert_eq!(rows.len(), 18, "six suitabilities by three states");
    for (suitability, before, record, prefs, events) in rows {
        let label = format!("{suitability:?} / {before:?}");
        let mut client = Client::with(&base, &Value::Null);
        let recipe = exp1();
        match before {
            Before::NotEnrolled => {}
            Before::Active => client.run_match(&[&recipe]),
            Before::Expired => {
                client.run_match(&[&recipe]);
                client.run_match(&[]);
            }
        }
        client.events.clear();
        client.advance(hour);
        client.run(&[(&recipe, suitability)]);
        assert_eq!(record_summary(&client, "exp-1"), record, "{label}: record");
        assert_eq!(client.prefs_json(), prefs, "{label}: prefs");
        assert_eq!(client.events_json(), events, "{label}: events");
    }
}

#[test]
fn golden_lifecycle_enroll_not_seen_never_again() {
    let mut client = Client::with(&json!({"test.pref": {"default": 0}}), &Value::Null);
    let recipe = exp1();
    client.run_match(&[&recipe]);
    assert_eq!(client.prefs.get("test.pref").default, Some(int(2)));
    assert_eq!(
        serde_json::to_value(normandy::annotations(&client.state)).unwrap(),
        json!({"exp-1": {"branch": "treatment", "type": "normandy-exp"}})
    );
    let record = serde_json::to_value(&client.state.experiments["exp-1"]).unwrap();
    assert_eq!(
        record,
        json!({
            "slug": "exp-1", "actionName": "preference-experiment", "branch": "treatment",
            "expired": false, "lastSeen": START, "temporaryErrorDeadline": null,
            "experimentType": "exp", "userFacingName": "", "userFacingDescription": "",
            "preferences": {"test.pref": {
                "preferenceValue": 2, "preferenceType": "integer",
                "preferenceBranchType": "default", "previousPreferenceValue": 0,
                "overridden": false}},
            "enrolledAt": START
        })
    );

    client.advance(days(1));
    client.run_match(&[]);
    assert_eq!(client.prefs.get("test.pref").default, Some(int(0)));
    let record = &client.state.experiments["exp-1"];
    assert!(record.expired);
    assert_eq!(record.ended_at.map(|t| t.to_string()), Some(at(days(1))));
    assert!(normandy::annotations(&client.state).is_empty());

    client.advance(days(1));
    client.run_match(&[&recipe]);
    client.startup(&json!({"test.pref": 0}));
    client.run_match(&[&recipe]);
    assert_eq!(client.prefs.get("test.pref").default, Some(int(0)));
    assert_eq!(
        client.events_json(),
        json!([
            enroll("exp-1", "treatment", "exp"),
            unenroll("exp-1", true, "recipe-not-seen")
        ])
    );
}

#[test]
fn golden_lifecycle_user_change_ends_without_reset() {
    for branch in ["default", "user"] {
        let mut client = Client::with(&json!({"test.pref": {"default": 0}}), &Value::Null);
        let recipe = single(
            1,
            "exp-1",
            "test.pref",
            branch,
            json!({"control": 1, "treatment": 2}),
        );
        client.run_match(&[&recipe]);
        client.user_sets("test.pref", Some(int(7)));
        assert_eq!(
            client.prefs.get("test.pref").effective(),
            Some(&int(7)),
            "{branch}"
        );
        let record = &client.state.experiments["exp-1"];
        assert!(record.expired);
        assert_eq!(
            record.end_reason.as_deref(),
            Some("user-preference-changed")
        );
        // The run after that does not restore anything and does not re-enroll.
        client.run_match(&[&recipe]);
        client.run_match(&[]);
        assert_eq!(client.prefs.get("test.pref").effective(), Some(&int(7)));
        assert_eq!(
            client.events_json(),
            json!([
                enroll("exp-1", "treatment", "exp"),
                ["unenroll", "preference_study", "exp-1",
                    {"didResetValue": "false", "branch": "treatment",
                     "reason": "user-preference-changed", "changedPref": "test.pref"}]
            ]),
            "{branch}"
        );
        // The default branch under the user's value is the original one again (what
        // Firefox shows after its next start).
        assert_eq!(
            client.prefs.get("test.pref").default,
            Some(int(0)),
            "{branch}"
        );
    }
}

#[test]
fn golden_branch_vectors() {
    // seed-originals §3.3 [computed]: the hash of "<userId>-<slug>-branch" picks the branch.
    let cases = [
        ("user-a", "exp-1", json!([1, 1]), "b1"),
        ("user-a", "exp-1", json!([4, 3, 2, 1]), "b2"),
        (
            "11111111-2222-3333-4444-555555555555",
            "pref-exp",
            json!([1, 1]),
            "b1",
        ),
        (
            "11111111-2222-3333-4444-555555555555",
            "pref-exp",
            json!([4, 3, 2, 1]),
            "b2",
        ),
    ];
    for (user, slug, ratios, expected) in cases {
        let mut branches = serde_json::Map::new();
        for (i, ratio) in ratios.as_array().unwrap().iter().enumerate() {
            branches.insert(
                format!("b{i}"),
                json!([ratio, {"test.pref": ["user", i as i64]}]),
            );
        }
        let recipe = multi_branches(1, slug, Value::Object(branches), json!({}));
        let mut client = Client::new();
        client.user_id = Some(user.into());
        client.run_match(&[&recipe]);
        assert_eq!(
            client.state.experiments[slug].branch, expected,
            "{user} {ratios}"
        );
        assert_eq!(client.events_json(), json!([enroll(slug, expected, "exp")]));
    }
}

#[test]
fn a_filter_error_keeps_the_experiment_during_the_grace_period_and_ends_it_after() {
    let mut client = Client::with(&json!({"test.pref": {"default": 0}}), &Value::Null);
    let recipe = exp1();
    client.run_match(&[&recipe]);
    let error = || Suitability::FilterError("classify-client is down".into());
    client.advance(days(1));
    client.run(&[(&recipe, error())]);
    let deadline = client.state.experiments["exp-1"].temporary_error_deadline;
    assert_eq!(deadline.map(|t| t.to_string()), Some(at(days(8))));
    for _ in 0..7 {
        client.advance(days(1));
        client.run(&[(&recipe, error())]);
        assert!(!client.state.experiments["exp-1"].expired);
        assert_eq!(
            client.state.experiments["exp-1"].temporary_error_deadline,
            deadline
        );
        assert_eq!(client.prefs.get("test.pref").default, Some(int(2)));
    }
    client.advance(SignedDuration::from_secs(1));
    client.run(&[(&recipe, error())]);
    assert_eq!(client.prefs.get("test.pref").default, Some(int(0)));
    assert_eq!(
        client.events_json(),
        json!([
            enroll("exp-1", "treatment", "exp"),
            unenroll("exp-1", true, "filter-error")
        ])
    );
    assert_eq!(
        client.state.experiments["exp-1"].temporary_error_deadline,
        None
    );
}

#[test]
fn a_match_during_the_grace_period_starts_it_over() {
    let mut client = Client::new();
    let recipe = exp1();
    client.run_match(&[&recipe]);
    client.run(&[(&recipe, Suitability::FilterError("x".into()))]);
    client.advance(days(6));
    client.run_match(&[&recipe]);
    client.advance(days(6));
    client.run(&[(&recipe, Suitability::FilterError("x".into()))]);
    client.advance(days(6));
    client.run(&[(&recipe, Suitability::FilterError("x".into()))]);
    assert!(!client.state.experiments["exp-1"].expired);
    client.advance(days(2));
    client.run(&[(&recipe, Suitability::FilterError("x".into()))]);
    assert!(client.state.experiments["exp-1"].expired);
}

#[test]
fn an_empty_recipe_list_is_a_temporary_error() {
    let mut client = Client::with(&json!({"test.pref": {"default": 0}}), &Value::Null);
    let recipe = exp1();
    client.run_match(&[&recipe]);
    client.run(&[]);
    client.advance(days(7));
    client.run(&[]);
    assert!(!client.state.experiments["exp-1"].expired);
    client.advance(days(1));
    client.run(&[]);
    assert_eq!(client.prefs.get("test.pref").default, Some(int(0)));
    assert_eq!(
        client.events_json(),
        json!([
            enroll("exp-1", "treatment", "exp"),
            unenroll("exp-1", true, "no-recipes")
        ])
    );
}

#[test]
fn recipe_not_seen_restores_both_branches() {
    let prefs = json!({
        "d.set": {"default": "builtin"},
        "u.set": {"default": "builtin", "user": "mine"},
        "u.user-only": {"user": 5}
    });
    let mut client = Client::with(&prefs, &Value::Null);
    let recipe = multi(
        1,
        "multi",
        json!({
            "d.set": ["default", "experiment"],
            "d.new": ["default", true],
            "u.set": ["user", "experiment"],
            "u.new": ["user", 3],
            "u.user-only": ["user", 6]
        }),
    );
    client.run_match(&[&recipe]);
    assert_eq!(
        client.prefs_json(),
        json!({
            "d.new": {"default": true},
            "d.set": {"default": "experiment"},
            "u.new": {"user": 3},
            "u.set": {"default": "builtin", "user": "experiment"},
            "u.user-only": {"user": 6}
        })
    );
    client.run_match(&[]);
    assert_eq!(client.prefs_json(), prefs);
    assert_eq!(
        client.events_json(),
        json!([
            enroll("multi", "treatment", "exp"),
            unenroll("multi", true, "recipe-not-seen")
        ])
    );
}

#[test]
fn paused_enrollment_keeps_participants_and_admits_nobody() {
    let paused = |slug: &str, pref: &str| {
        single_with(
            1,
            slug,
            pref,
            "user",
            json!({"control": 1, "treatment": 2}),
            json!({"isEnrollmentPaused": true}),
        )
    };
    let mut client = Client::new();
    client.run_match(&[&single(
        1,
        "exp-1",
        "test.pref",
        "user",
        json!({"control": 1, "treatment": 2}),
    )]);
    client.advance(days(1));
    client.run_match(&[
        &paused("exp-1", "test.pref"),
        &paused("exp-2", "other.pref"),
    ]);
    assert!(!client.state.experiments["exp-1"].expired);
    assert_eq!(
        client.state.experiments["exp-1"].last_seen.to_string(),
        at(days(1))
    );
    assert!(!client.state.experiments.contains_key("exp-2"));
    assert_eq!(client.prefs.get("other.pref").effective(), None);
    assert_eq!(
        client.events_json(),
        json!([enroll("exp-1", "treatment", "exp")])
    );
}

/// Evaluates `recipes` with the core for `client` (its preferences and its experiments in the
/// filter environment), maps each result with [`normandy::suitability`] and runs them.
fn evaluate_and_run(client: &mut Client, recipes: Value) {
    let parsed = flightdeck_core::model::normandy::parse("recipes.json", &recipes.to_string());
    assert!(!parsed.has_errors(), "{:?}", parsed.diagnostics);
    let set = parsed.value.unwrap();
    let (experiments, studies, rollouts) = normandy::filter_environment_extras(&client.state);
    let context = ClientContext {
        user_id: client.user_id.clone(),
        channel: Some("release".into()),
        version: Some("130.0".into()),
        prefs: client.prefs.entries().clone(),
        experiments: Some(experiments),
        studies: Some(studies),
        rollouts: Some(rollouts),
        ..ClientContext::default()
    };
    let facts = ClientFacts::default();
    let input = EvalInput {
        context: &context,
        facts: &facts,
        now: client.now,
        js_filter: &NoJsFilter,
    };
    let results = flightdeck_core::evaluate::normandy::evaluate(&set, &input);
    let runs: Vec<(&Recipe, Suitability)> = set
        .recipes
        .iter()
        .zip(&results)
        .map(|(recipe, result)| (recipe, normandy::suitability(result)))
        .collect();
    client.run(&runs);
}

fn experiment_json(slug: &str, pref: &str, filter: &str, paused: bool) -> Value {
    json!({
        "id": 1, "name": slug, "action": "preference-experiment",
        "arguments": {"slug": slug, "preferenceName": pref, "preferenceType": "boolean",
            "preferenceBranchType": "default", "isEnrollmentPaused": paused,
            "branches": [{"slug": "control", "value": false, "ratio": 1},
                         {"slug": "treatment", "value": true, "ratio": 1}]},
        "filter_expression": filter, "capabilities": []
    })
}

#[test]
fn end_to_end_with_core_evaluation() {
    let mut client = Client::with(&json!({"b.pref": {"default": false}}), &Value::Null);
    let filter = "normandy.channel == 'release' && !('b.pref'|preferenceIsUserSet)";
    // Paused before anyone enrolled: the core says `enrollment-paused`, nobody joins.
    evaluate_and_run(
        &mut client,
        json!([experiment_json("e2e", "b.pref", filter, true)]),
    );
    assert!(client.state.experiments.is_empty());
    // Unpaused: enrolls, and the filter environment now lists it.
    evaluate_and_run(
        &mut client,
        json!([experiment_json("e2e", "b.pref", filter, false)]),
    );
    let (experiments, studies, _) = normandy::filter_environment_extras(&client.state);
    assert_eq!(experiments["active"], json!(["e2e"]));
    assert_eq!(
        studies["pref"]["e2e"]["branch"],
        client.state.experiments["e2e"].branch
    );
    // Paused again: existing participants continue.
    evaluate_and_run(
        &mut client,
        json!([experiment_json("e2e", "b.pref", filter, true)]),
    );
    assert!(!client.state.experiments["e2e"].expired);
    // A filter that cannot be evaluated is a temporary error, not an unenrollment.
    evaluate_and_run(
        &mut client,
        json!([experiment_json("e2e", "b.pref", "1|noSuchTransform", false)]),
    );
    assert!(
        client.state.experiments["e2e"]
            .temporary_error_deadline
            .is_some()
    );
    // A filter that says no ends it, and the value is reset.
    evaluate_and_run(
        &mut client,
        json!([experiment_json(
            "e2e",
            "b.pref",
            "normandy.channel == 'beta'",
            false
        )]),
    );
    assert_eq!(
        client.state.experiments["e2e"].end_reason.as_deref(),
        Some("filter-mismatch")
    );
    assert_eq!(
        client.prefs.get("b.pref").default,
        Some(PrefValue::Bool(false))
    );
    // Recipes can target people who took part, through `normandy.experiments`.
    evaluate_and_run(
        &mut client,
        json!([{
            "id": 2, "name": "follow-up", "action": "preference-rollout",
            "arguments": {"slug": "follow-up",
                          "preferences": [{"preferenceName": "f.pref", "value": 1}]},
            "filter_expression": "'e2e' in normandy.experiments.expired",
            "capabilities": []
        }]),
    );
    assert_eq!(client.prefs.get("f.pref").default, Some(int(1)));
}

#[test]
fn name_conflict_for_a_slug_already_in_the_store() {
    let mut client = Client::new();
    let recipe = exp1();
    client.run_match(&[&recipe]);
    let request = StartRequest {
        slug: "exp-1".into(),
        action_name: "preference-experiment".into(),
        branch: "control".into(),
        preferences: vec![StartPreference {
            name: "unrelated.pref".into(),
            value: int(1),
            preference_type: "integer".into(),
            branch_type: "user".into(),
        }],
        experiment_type: "exp".into(),
        user_facing_name: String::new(),
        user_facing_description: String::new(),
    };
    // Active, then expired: both are "previously participated".
    for _ in 0..2 {
        let result = client.session(|s| normandy::start(s, &request));
        assert_eq!(
            result,
            Err(EnrollError::NameConflict {
                slug: "exp-1".into()
            })
        );
        client.run_match(&[]);
    }
    assert_eq!(client.prefs.get("unrelated.pref").effective(), None);
    assert_eq!(
        client.events_json(),
        json!([
            enroll("exp-1", "treatment", "exp"),
            ["enrollFailed", "preference_study", "exp-1", {"reason": "name-conflict"}],
            unenroll("exp-1", true, "recipe-not-seen"),
            ["enrollFailed", "preference_study", "exp-1", {"reason": "name-conflict"}]
        ])
    );
}

#[test]
fn pref_conflict_until_the_other_experiment_ends() {
    let mut client = Client::new();
    let first = multi(1, "first", json!({"shared.pref": ["user", 1]}));
    // The conflict is checked over every branch, not just the one this user would get.
    let second = multi_branches(
        2,
        "second",
        json!({"a": [1, {"own.pref": ["user", 1]}], "b": [1, {"shared.pref": ["user", 2]}]}),
        json!({}),
    );
    client.run_match(&[&first, &second]);
    client.run_match(&[&first, &second]);
    assert!(!client.state.experiments.contains_key("second"));
    // `first` leaves the recipe list: it ends, and `second` can enroll in the same run after.
    client.run_match(&[&second]);
    client.run_match(&[&second]);
    assert!(!client.state.experiments["second"].expired);
    let events = client.events_json();
    assert_eq!(
        events,
        json!([
            enroll("first", "treatment", "exp"),
            ["enrollFailed", "preference_study", "second", {"reason": "pref-conflict"}],
            ["enrollFailed", "preference_study", "second", {"reason": "pref-conflict"}],
            ["enrollFailed", "preference_study", "second", {"reason": "pref-conflict"}],
            unenroll("first", true, "recipe-not-seen"),
            enroll("second", &client.state.experiments["second"].branch.clone(), "exp")
        ])
    );
}

#[test]
fn type_mismatch_disqualifies() {
    let mut client = Client::with(&json!({"test.pref": {"default": "text"}}), &Value::Null);
    client.run_match(&[&exp1()]);
    assert!(client.state.experiments.is_empty());
    assert_eq!(
        client.events_json(),
        json!([["enrollFailed", "preference_study", "exp-1", {"reason": "invalid-type"}]])
    );
}

#[test]
fn several_experiments_at_once() {
    let mut client = Client::with(
        &json!({"a.pref": {"default": 0}, "b.pref": {"user": "x"}}),
        &Value::Null,
    );
    let a = single(
        1,
        "a",
        "a.pref",
        "default",
        json!({"control": 1, "treatment": 2}),
    );
    let b = single(
        2,
        "b",
        "b.pref",
        "user",
        json!({"control": "c", "treatment": "t"}),
    );
    let c = multi_branches(
        3,
        "c",
        json!({"treatment": [1, {"c.one": ["default", true], "c.two": ["user", 5]}]}),
        json!({"isHighPopulation": true}),
    );
    client.run_match(&[&a, &b, &c]);
    assert_eq!(
        serde_json::to_value(normandy::annotations(&client.state)).unwrap(),
        json!({
            "a": {"branch": "treatment", "type": "normandy-exp"},
            "b": {"branch": client.state.experiments["b"].branch, "type": "normandy-exp"},
            "c": {"branch": "treatment", "type": "normandy-exp-highpop"}
        })
    );
    // `b` leaves; the others stay.
    client.run_match(&[&a, &c]);
    assert_eq!(
        client.prefs_json(),
        json!({
            "a.pref": {"default": 2}, "b.pref": {"user": "x"},
            "c.one": {"default": true}, "c.two": {"user": 5}
        })
    );
    // The user changes one preference of `c`: `c` ends, the other one is restored.
    client.user_sets("c.two", Some(int(9)));
    assert_eq!(
        client.prefs_json(),
        json!({"a.pref": {"default": 2}, "b.pref": {"user": "x"}, "c.two": {"user": 9}})
    );
    assert!(!client.state.experiments["a"].expired);
    let (experiments, _, _) = normandy::filter_environment_extras(&client.state);
    assert_eq!(
        experiments,
        json!({"all": ["a", "b", "c"], "active": ["a"], "expired": ["b", "c"]})
    );
}

#[test]
fn individual_opt_out_and_stop_errors() {
    let mut client = Client::with(&json!({"test.pref": {"default": 0}}), &Value::Null);
    client.run_match(&[&exp1()]);
    let stop = |client: &mut Client, slug: &str| {
        client.session(|s| normandy::stop_experiment(s, slug, true, "individual-opt-out"))
    };
    assert_eq!(stop(&mut client, "exp-1"), Ok(()));
    assert_eq!(
        stop(&mut client, "exp-1"),
        Err(StopError::AlreadyUnenrolled {
            slug: "exp-1".into()
        })
    );
    assert_eq!(
        stop(&mut client, "missing"),
        Err(StopError::DoesNotExist {
            slug: "missing".into()
        })
    );
    assert_eq!(client.prefs.get("test.pref").default, Some(int(0)));
    assert_eq!(
        client.events_json(),
        json!([
            enroll("exp-1", "treatment", "exp"),
            unenroll("exp-1", true, "individual-opt-out"),
            ["unenrollFailed", "preference_study", "exp-1",
                {"reason": "already-unenrolled", "originalReason": "individual-opt-out"}],
            ["unenrollFailed", "preference_study", "missing",
                {"reason": "does-not-exist", "originalReason": "individual-opt-out"}]
        ])
    );
}

#[test]
fn studies_opt_out_ends_experiments_and_leaves_rollouts() {
    let mut client = Client::with(&json!({"test.pref": {"default": 0}}), &Value::Null);
    let rollout = normandy_support::rollout(5, "r", json!({"r.pref": 1}));
    client.run_match(&[&exp1(), &rollout]);
    client.config.studies_enabled = false;
    client.run_match(&[&exp1(), &rollout]);
    client.run_match(&[&exp1(), &rollout]);
    assert_eq!(
        client.prefs_json(),
        json!({"r.pref": {"default": 1}, "test.pref": {"default": 0}})
    );
    assert_eq!(
        client.events_json(),
        json!([
            enroll("exp-1", "treatment", "exp"),
            ["enroll", "preference_rollout", "r", {}],
            unenroll("exp-1", true, "general-opt-out")
        ])
    );
    // Opting back in does not bring an ended experiment back.
    client.config.studies_enabled = true;
    client.run_match(&[&exp1(), &rollout]);
    assert!(client.state.experiments["exp-1"].expired);
}

#[test]
fn the_state_round_trips_through_json_between_runs() {
    // The runtime persists the state between runs; nothing the actions rely on is lost.
    let mut client = Client::with(&json!({"test.pref": {"default": 0}}), &Value::Null);
    let exp = exp1();
    client.run_match(&[&exp]);
    client.run(&[(&exp, Suitability::FilterError("x".into()))]);
    let text = serde_json::to_string(&client.state).unwrap();
    client.state = serde_json::from_str(&text).unwrap();
    client.advance(days(8));
    client.run(&[(&exp, Suitability::FilterError("x".into()))]);
    assert_eq!(
        client.state.experiments["exp-1"].end_reason.as_deref(),
        Some("filter-error")
    );
    // A record from the first (single-preference) layout works the same.
    let legacy = json!({"experiments": {"old": {
        "name": "old", "branch": "treatment", "expired": false,
        "lastSeen": START, "preferenceName": "old.pref", "preferenceValue": true,
        "preferenceType": "boolean", "previousPreferenceValue": null,
        "preferenceBranchType": "user"}}});
    let migrated = {
        let mut raw = legacy.clone();
        flightdeck_client::state::migrate(&mut raw, 0);
        raw
    };
    let mut client = Client::with(&json!({"old.pref": {"user": true}}), &migrated);
    client.run_match(&[&recipe(json!({
        "id": 7, "name": "other", "action": "preference-rollout",
        "arguments": {"slug": "other", "preferences": [{"preferenceName": "o", "value": 1}]},
        "filter_expression": "true", "capabilities": []
    }))]);
    assert_eq!(client.prefs.get("old.pref").user, None);
    assert_eq!(
        client.state.experiments["old"].end_reason.as_deref(),
        Some("recipe-not-seen")
    );
}
