//! Unit tests of OFREP evaluation over the shared fixture (`tests/data/ofrep`).

use std::collections::BTreeSet;

use flightdeck_core::context::ClientContext;
use flightdeck_core::evaluate::normandy::choose_branch;
use flightdeck_core::evaluate::{ClientFacts, EvalInput, NoJsFilter};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

#[path = "../../tests/data/ofrep/fixture.rs"]
mod fixture;

/// The fixture index, built once for the property tests.
static SHARED: std::sync::LazyLock<OfrepIndex> = std::sync::LazyLock::new(index);

fn index() -> OfrepIndex {
    OfrepIndex::from_documents(fixture::CLOUDBEES, fixture::NORMANDY, "fixture-v1")
        .expect("the fixture reads")
}

fn now() -> jiff::Timestamp {
    "2026-06-01T12:00:00Z".parse().expect("time")
}

fn context(posted: Value) -> ClientContext {
    let Value::Object(map) = posted else {
        panic!("not an object");
    };
    client_context(&map).expect("context maps")
}

fn eval(index: &OfrepIndex, key: &str, posted: Value) -> FlagEvaluation {
    index.evaluate(key, &context(posted), now())
}

fn success(evaluation: FlagEvaluation) -> EvaluationSuccess {
    match evaluation {
        FlagEvaluation::Success(success) => success,
        FlagEvaluation::Failure(failure) => panic!("expected a success, got {failure:?}"),
    }
}

fn failure(evaluation: FlagEvaluation) -> EvaluationFailure {
    match evaluation {
        FlagEvaluation::Failure(failure) => failure,
        FlagEvaluation::Success(success) => panic!("expected a failure, got {success:?}"),
    }
}

fn meta(success: &EvaluationSuccess, key: &str) -> Option<Value> {
    success
        .metadata
        .get(key)
        .map(|value| serde_json::to_value(value).expect("serialises"))
}

#[test]
fn static_flag_and_a_preference_of_the_same_name_is_the_flag() {
    let s = success(eval(&index(), "static-flag", json!({})));
    assert_eq!(s.value, Some(json!(true)));
    assert_eq!(s.reason, Reason::Static);
    assert_eq!(s.variant.as_deref(), Some("true"));
    assert_eq!(meta(&s, "source"), Some(json!("cloudbees")));
    assert_eq!(meta(&s, "rule"), Some(json!("default")));
}

#[test]
fn targeting_match_by_target_group_else_the_default() {
    let index = index();
    let s = success(eval(&index, "banner-text", json!({"plan": "beta"})));
    assert_eq!(
        (s.value.clone(), s.reason, s.variant.as_deref()),
        (Some(json!("fancy")), Reason::TargetingMatch, Some("fancy"))
    );
    assert_eq!(meta(&s, "rule"), Some(json!("condition[0]")));
    // The explicit `properties` object works the same way.
    let s = success(eval(
        &index,
        "banner-text",
        json!({"properties": {"plan": "beta"}}),
    ));
    assert_eq!(s.value, Some(json!("fancy")));
    let s = success(eval(&index, "banner-text", json!({"plan": "free"})));
    assert_eq!(
        (s.value, s.reason, s.variant.as_deref()),
        (Some(json!("plain")), Reason::Default, Some("plain"))
    );
}

#[test]
fn well_known_attributes_are_visible_to_target_groups() {
    let index = index();
    let s = success(eval(&index, "max-items", json!({"country": "NZ"})));
    assert_eq!(
        (s.value, s.reason, s.variant.as_deref()),
        (Some(json!(20)), Reason::TargetingMatch, Some("20"))
    );
    let s = success(eval(&index, "max-items", json!({"country": "AU"})));
    assert_eq!((s.value, s.reason), (Some(json!(10)), Reason::Default));
}

#[test]
fn split_by_targeting_key_is_the_cores_bucket_and_sticky() {
    let index = index();
    let mut seen = BTreeSet::new();
    for n in 0..64 {
        let user = format!("user-{n}");
        let s = success(eval(&index, "checkout-flow", json!({"targetingKey": user})));
        assert_eq!(s.reason, Reason::Split);
        let value = s.value.clone().expect("a value");
        assert_eq!(s.variant.as_deref(), value.as_str());
        // The same decision as the core's for that user id, every time.
        let client = ClientContext {
            user_id: Some(user.clone()),
            ..ClientContext::default()
        };
        let facts = ClientFacts::default();
        let input = EvalInput {
            context: &client,
            facts: &facts,
            now: now(),
            js_filter: &NoJsFilter,
        };
        let (file, text) = fixture::CLOUDBEES[3];
        let config = flightdeck_core::model::cloudbees::Configuration {
            experiments: vec![
                flightdeck_core::model::cloudbees::parse_experiment(file, text)
                    .value
                    .expect("parses"),
            ],
            ..Default::default()
        };
        let core =
            flightdeck_core::evaluate::cloudbees::evaluate_flag(&config, "checkout-flow", &input)
                .expect("a result");
        assert_eq!(core.value, Some(value.clone()));
        let again = success(eval(&index, "checkout-flow", json!({"targetingKey": user})));
        assert_eq!(again.value, Some(value.clone()));
        seen.insert(value.as_str().expect("a string").to_owned());
    }
    assert_eq!(
        seen,
        BTreeSet::from(["classic".to_owned(), "express".to_owned()])
    );
}

#[test]
fn split_without_its_stickiness_value_is_an_error() {
    let index = index();
    for posted in [
        json!({}),
        json!({"targetingKey": ""}),
        json!({"targetingKey": null}),
    ] {
        let f = failure(eval(&index, "checkout-flow", posted));
        assert_eq!(f.error_code, ErrorCode::TargetingKeyMissing);
        assert_eq!(f.key, "checkout-flow");
    }
    let f = failure(eval(&index, "account-split", json!({"targetingKey": "u"})));
    assert_eq!(f.error_code, ErrorCode::InvalidContext);
    assert!(f.error_details.contains("account"), "{}", f.error_details);
    // A split on another property needs no targeting key.
    let s = success(eval(&index, "account-split", json!({"account": "acme"})));
    assert_eq!(s.reason, Reason::Split);
    assert!(s.value.is_some());
}

#[test]
fn disabled_and_archived_flags_defer_to_the_code_default() {
    let index = index();
    let s = success(eval(&index, "old-feature", json!({"targetingKey": "u"})));
    assert_eq!(
        (s.value.clone(), s.reason, s.variant.clone()),
        (None, Reason::Disabled, None)
    );
    assert_eq!(meta(&s, "rule"), Some(json!("disabled")));
    let s = success(eval(&index, "retired-feature", json!({})));
    assert_eq!((s.value.clone(), s.reason), (None, Reason::Disabled));
    assert_eq!(meta(&s, "archived"), Some(json!(true)));
}

#[test]
fn a_null_value_is_the_code_default_with_the_rules_reason() {
    let index = index();
    let s = success(eval(&index, "code-default", json!({})));
    assert_eq!((s.value.clone(), s.reason), (None, Reason::Default));
    let body = serde_json::to_value(FlagEvaluation::Success(s)).expect("serialises");
    assert!(body.get("value").is_none(), "{body}");
    let s = success(eval(&index, "code-default", json!({"plan": "beta"})));
    assert_eq!(
        (s.value, s.reason),
        (Some(json!("b")), Reason::TargetingMatch)
    );
}

#[test]
fn schedules_are_split_only_while_between_0_and_100_percent() {
    let index = index();
    let at = |time: &str| {
        success(index.evaluate(
            "scheduled-launch",
            &context(json!({"targetingKey": "user-7"})),
            time.parse().expect("time"),
        ))
    };
    let before = at("2029-12-31T00:00:00Z");
    assert_eq!(
        (before.value, before.reason),
        (Some(json!(false)), Reason::Static)
    );
    let during = at("2030-01-15T00:00:00Z");
    assert_eq!(during.reason, Reason::Split);
    let after = at("2030-03-01T00:00:00Z");
    assert_eq!(
        (after.value, after.reason),
        (Some(json!(true)), Reason::Static)
    );
}

#[test]
fn unknown_keys_and_broken_flags() {
    let index = index();
    let f = failure(eval(&index, "no-such-flag", json!({})));
    assert_eq!(f.error_code, ErrorCode::FlagNotFound);
    assert_eq!(
        FlagEvaluation::Failure(f).http_status(),
        StatusCode::NOT_FOUND
    );
    let f = failure(eval(&index, "cycle-a", json!({})));
    assert_eq!(f.error_code, ErrorCode::General);
    assert!(f.error_details.contains("dependency-cycle"));
    assert_eq!(
        FlagEvaluation::Failure(f).http_status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

#[test]
fn preferences_from_rollouts_first_rollout_wins_a_conflict() {
    let index = index();
    let release = json!({"targetingKey": "u1", "channel": "release"});
    let s = success(eval(&index, "network.http.http3.enable", release.clone()));
    assert_eq!(
        (s.value.clone(), s.reason, s.variant.clone()),
        (Some(json!(true)), Reason::TargetingMatch, None)
    );
    assert_eq!(meta(&s, "source"), Some(json!("normandy")));
    assert_eq!(meta(&s, "recipeId"), Some(json!(1)));
    assert_eq!(meta(&s, "slug"), Some(json!("http3-rollout")));
    assert_eq!(meta(&s, "action"), Some(json!("preference-rollout")));
    let s = success(eval(&index, "network.trr.mode", release.clone()));
    assert_eq!(s.value, Some(json!(2)));
    // The later rollout shares `network.trr.mode` with the first, so none of it applies.
    let s = success(eval(&index, "network.trr.uri", release));
    assert_eq!((s.value, s.reason), (None, Reason::Default));

    let beta = json!({"targetingKey": "u1", "channel": "beta"});
    let s = success(eval(&index, "network.trr.mode", beta.clone()));
    assert_eq!(
        (s.value.clone(), meta(&s, "recipeId")),
        (Some(json!(3)), Some(json!(2)))
    );
    let s = success(eval(&index, "network.trr.uri", beta.clone()));
    assert_eq!(s.value, Some(json!("https://dns.example.com/")));
    let s = success(eval(&index, "network.http.http3.enable", beta));
    assert_eq!((s.value, s.reason), (None, Reason::Default));
}

#[test]
fn preferences_from_an_experiment_branch() {
    let index = index();
    let mut branches = BTreeSet::new();
    for n in 0..32 {
        let user = format!("user-{n}");
        let s = success(eval(
            &index,
            "browser.newtab.preload",
            json!({"targetingKey": user, "locale": "en-US"}),
        ));
        let chosen = choose_branch(Some(&user), "newtab-exp", &[1.0, 1.0]).expect("a branch");
        let (branch, value) = [("control", true), ("treatment", false)][chosen];
        assert_eq!(
            (s.value.clone(), s.reason, s.variant.as_deref()),
            (Some(json!(value)), Reason::Split, Some(branch))
        );
        assert_eq!(meta(&s, "recipeId"), Some(json!(5)));
        assert_eq!(meta(&s, "slug"), Some(json!("newtab-exp")));
        branches.insert(branch);
    }
    assert_eq!(branches.len(), 2);
    let s = success(eval(
        &index,
        "browser.newtab.preload",
        json!({"targetingKey": "u", "locale": "de"}),
    ));
    assert_eq!((s.value, s.reason), (None, Reason::Default));
}

#[test]
fn an_experiment_wins_over_a_rollout_of_the_same_preference() {
    let index = index();
    let user = "user-3";
    let s = success(eval(
        &index,
        "network.http.http3.enable",
        json!({"targetingKey": user, "channel": "release", "country": "DE"}),
    ));
    let chosen = choose_branch(Some(user), "http3-exp", &[1.0, 1.0]).expect("a branch");
    let (branch, value) = [("on", true), ("off", false)][chosen];
    assert_eq!(
        (s.value.clone(), s.reason, s.variant.as_deref()),
        (Some(json!(value)), Reason::Split, Some(branch))
    );
    assert_eq!(meta(&s, "recipeId"), Some(json!(6)));
}

#[test]
fn an_experiment_needs_a_targeting_key() {
    let index = index();
    let f = failure(eval(
        &index,
        "browser.newtab.preload",
        json!({"locale": "en-US"}),
    ));
    assert_eq!(f.error_code, ErrorCode::TargetingKeyMissing);
    assert!(
        f.error_details.contains("newtab-exp"),
        "{}",
        f.error_details
    );
    // Rollouts do not need one.
    let s = success(eval(
        &index,
        "network.http.http3.enable",
        json!({"channel": "release"}),
    ));
    assert_eq!(s.value, Some(json!(true)));
}

#[test]
fn a_matching_rollback_suppresses_its_rollout() {
    let index = index();
    let s = success(eval(
        &index,
        "media.autoplay.default",
        json!({"targetingKey": "u", "channel": "release"}),
    ));
    assert_eq!((s.value.clone(), s.reason), (None, Reason::Disabled));
    assert_eq!(meta(&s, "recipeId"), Some(json!(4)));
    assert_eq!(meta(&s, "slug"), Some(json!("autoplay-rollout")));
    let s = success(eval(
        &index,
        "media.autoplay.default",
        json!({"targetingKey": "u", "channel": "beta"}),
    ));
    assert_eq!(
        (s.value, s.reason),
        (Some(json!(1)), Reason::TargetingMatch)
    );
}

#[test]
fn a_paused_experiment_enrolls_nobody() {
    let s = success(eval(&index(), "paused.pref", json!({"targetingKey": "u"})));
    assert_eq!((s.value, s.reason), (None, Reason::Default));
}

#[test]
fn keys_in_bulk_order() {
    let index = index();
    let keys: Vec<&str> = index.keys().collect();
    assert_eq!(
        keys,
        [
            "static-flag",
            "banner-text",
            "max-items",
            "checkout-flow",
            "old-feature",
            "account-split",
            "scheduled-launch",
            "code-default",
            "cycle-a",
            "cycle-b",
            "retired-feature",
            "network.http.http3.enable",
            "network.trr.mode",
            "network.trr.uri",
            "media.autoplay.default",
            "browser.newtab.preload",
            "paused.pref",
        ]
    );
}

#[test]
fn bulk_is_the_single_evaluations_in_key_order() {
    let index = index();
    for posted in [
        json!({}),
        json!({"targetingKey": "user-1", "channel": "release", "country": "DE", "plan": "beta"}),
        json!({"targetingKey": "user-2", "channel": "beta", "locale": "en-US", "account": "a"}),
    ] {
        let client = context(posted);
        let all = index.evaluate_all(&client, now());
        let one_by_one: Vec<FlagEvaluation> = index
            .keys()
            .map(|key| index.evaluate(key, &client, now()))
            .collect();
        assert_eq!(all, one_by_one);
    }
}

#[test]
fn bulk_etag_changes_with_context_content_and_results_only() {
    let index = index();
    let map = |value: Value| match value {
        Value::Object(map) => map,
        _ => panic!("not an object"),
    };
    let body = br#"{"flags":[]}"#;
    let a = index.bulk_etag(&map(json!({"targetingKey": "u", "plan": "beta"})), body);
    let same = index.bulk_etag(&map(json!({"plan": "beta", "targetingKey": "u"})), body);
    assert_eq!(a, same, "key order does not matter");
    assert!(
        a.starts_with('"') && a.ends_with('"') && a.len() == 34,
        "{a}"
    );
    let other_context = index.bulk_etag(&map(json!({"targetingKey": "v", "plan": "beta"})), body);
    assert_ne!(a, other_context);
    let other_body = index.bulk_etag(&map(json!({"targetingKey": "u", "plan": "beta"})), b"{}");
    assert_ne!(a, other_body);
    let republished =
        OfrepIndex::from_documents(fixture::CLOUDBEES, fixture::NORMANDY, "fixture-v2")
            .expect("reads");
    let other_content =
        republished.bulk_etag(&map(json!({"targetingKey": "u", "plan": "beta"})), body);
    assert_ne!(a, other_content);
    assert_ne!(index.content_digest(), republished.content_digest());
}

#[test]
fn response_bodies_have_the_protocols_shape() {
    let index = index();
    let body = serde_json::to_value(eval(&index, "banner-text", json!({"plan": "beta"})))
        .expect("serialises");
    assert_eq!(
        body,
        json!({"key": "banner-text", "value": "fancy", "reason": "TARGETING_MATCH",
            "variant": "fancy", "metadata": {"rule": "condition[0]", "source": "cloudbees"}})
    );
    let body = serde_json::to_value(eval(&index, "nope", json!({}))).expect("serialises");
    assert_eq!(
        body,
        json!({"key": "nope", "errorCode": "FLAG_NOT_FOUND",
            "errorDetails": "no flag or preference is named \"nope\""})
    );
}

#[test]
fn an_empty_index_knows_no_key() {
    let index = OfrepIndex::empty("nothing");
    assert_eq!(index.keys().count(), 0);
    assert!(
        index
            .evaluate_all(&ClientContext::default(), now())
            .is_empty()
    );
    assert_eq!(
        failure(index.evaluate("x", &ClientContext::default(), now())).error_code,
        ErrorCode::FlagNotFound
    );
}

#[test]
fn unreadable_documents_are_refused_by_the_convenience_constructor() {
    let err = OfrepIndex::from_documents(&[("bad.yml", "type: experiment\n")], &[], "s")
        .expect_err("refused");
    assert_eq!(err.file, "bad.yml");
    let err = OfrepIndex::from_documents(&[], &[("r.json", "{")], "s").expect_err("refused");
    assert_eq!(err.file, "r.json");
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        "[a-zA-Z0-9 .:_-]{0,12}".prop_map(Value::String),
        prop::sample::select(vec![
            "release", "beta", "en-US", "DE", "NZ", "beta", "128.0"
        ])
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn attribute_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "targetingKey",
            "userId",
            "channel",
            "locale",
            "country",
            "version",
            "platform",
            "isFirstRun",
            "prefs",
            "properties",
            "telemetry",
            "randomValues",
            "builtinDefaults",
            "plan",
            "account",
            "now",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z]{1,8}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_body_is_answered_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let index = &*SHARED;
        if let Ok(request) = parse_request(&bytes) {
            let _ = index.evaluate_all(&request.context, now());
        }
    }

    #[test]
    fn any_context_is_evaluated_or_refused_without_panicking(
        attributes in prop::collection::btree_map(attribute_name(), json_value(), 0..8)
    ) {
        let index = &*SHARED;
        let body = serde_json::to_vec(&json!({"context": attributes})).expect("serialises");
        match parse_request(&body) {
            Ok(request) => {
                let all = index.evaluate_all(&request.context, now());
                prop_assert_eq!(all.len(), index.keys().count());
                let body = serde_json::to_vec(&BulkEvaluation { flags: all }).expect("serialises");
                let _ = index.bulk_etag(&request.posted, &body);
            }
            Err(err) => prop_assert_eq!(err.code, ErrorCode::InvalidContext),
        }
    }
}
