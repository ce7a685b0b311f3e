//! Tests of parsing, validation and serialisation over realistic fixtures.

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::context::PrefValue;

const MINIMAL: &str = include_str!("../../../tests/data/normandy/minimal-recipe.json");
const SIGNED: &str = include_str!("../../../tests/data/normandy/signed-records.json");
const V1: &str = include_str!("../../../tests/data/normandy/v1-recipes.json");
const V3: &str = include_str!("../../../tests/data/normandy/v3-recipes.json");
const EXAMPLE: &str = include_str!("../../../../../examples/normandy/recipes.json");

fn parse_ok(file: &str, text: &str) -> RecipeSet {
    let parsed = parse(file, text);
    let errors: Vec<String> = parsed
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(ToString::to_string)
        .collect();
    assert!(errors.is_empty(), "unexpected errors: {errors:#?}");
    parsed.value.expect("a recipe set")
}

fn rendered(file: &str, text: &str) -> Vec<String> {
    parse(file, text)
        .diagnostics
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn minimal_recipe() {
    let set = parse_ok("minimal.json", MINIMAL);
    assert_eq!(set.container, Container::Single);
    let [recipe] = set.recipes.as_slice() else {
        panic!("one recipe expected");
    };
    assert_eq!(recipe.id, 812);
    assert_eq!(recipe.revision_id, Some(RevisionId::Text("2977".into())));
    assert_eq!(recipe.action, "preference-rollout");
    assert_eq!(recipe.capabilities, ["action.preference-rollout"]);
    assert_eq!(recipe.layout.shape, Shape::Bare);
    assert_eq!(
        recipe.layout.extra.get("uses_only_baseline_capabilities"),
        Some(&json!(true))
    );
    let Arguments::PreferenceRollout(args) = &recipe.arguments else {
        panic!("rollout arguments expected, got {:?}", recipe.arguments);
    };
    assert_eq!(args.slug, "bug-1563418-pref-rollout-tls-1-0-1-1-disable");
    assert_eq!(args.preferences.len(), 2);
    assert_eq!(
        args.preferences[0].preference_name,
        "security.tls.version.min"
    );
    assert_eq!(args.preferences[0].value, PrefValue::Int(3));
    assert_eq!(args.preferences[1].value, PrefValue::Bool(false));
    let filter = recipe.filter.as_ref().expect("a filter");
    assert!(filter.expression.starts_with("(normandy.channel in"));
    assert_eq!(recipe.signature, None);
}

#[test]
fn remote_settings_signed_records() {
    let parsed = parse("signed.json", SIGNED);
    assert!(!parsed.has_errors(), "{:#?}", parsed.diagnostics);
    let set = parsed.value.expect("a set");
    assert!(matches!(set.container, Container::RemoteSettings { .. }));
    assert_eq!(set.recipes.len(), 3);

    let rollout = &set.recipes[0];
    assert!(matches!(
        &rollout.layout.shape,
        Shape::Signed { record_id: Some(id), .. } if id == "812"
    ));
    let signature = rollout.signature.as_ref().expect("signed");
    assert!(signature.signature.starts_with("ZBd-c5"));
    assert_eq!(
        signature.timestamp.as_deref(),
        Some("2020-04-09T13:52:00.211719Z")
    );
    assert!(
        signature
            .x5u
            .as_deref()
            .is_some_and(|u| u.ends_with(".chain"))
    );
    assert!(signature.public_key.is_some());

    let experiment = &set.recipes[1];
    let Arguments::MultiPreferenceExperiment(args) = &experiment.arguments else {
        panic!("multi-pref arguments expected");
    };
    assert_eq!(args.slug, "pref-http3-release-77");
    assert!(!args.is_enrollment_paused);
    assert_eq!(args.is_high_population, Some(false));
    assert_eq!(args.branches.len(), 2);
    let treatment = &args.branches[1];
    assert_eq!(treatment.slug, "treatment");
    let priority = &treatment.preferences["network.http.http3.priority"];
    assert_eq!(priority.preference_type, PrefType::Integer);
    assert_eq!(priority.preference_branch_type, None);
    assert_eq!(priority.branch_type(), PrefBranchType::Default);
    assert_eq!(priority.preference_value, PrefValue::Int(2));

    let rollback = &set.recipes[2];
    let Arguments::PreferenceRollback(args) = &rollback.arguments else {
        panic!("rollback arguments expected");
    };
    assert_eq!(args.rollout_slug, "pref-rollout-old-search-ui");
    assert_eq!(
        rollback
            .signature
            .as_ref()
            .and_then(|s| s.public_key.clone()),
        None
    );
}

#[test]
fn api_v1_recipes_with_a_legacy_experiment_and_an_unsupported_action() {
    let text = V1;
    let parsed = parse("v1.json", text);
    assert!(!parsed.has_errors(), "{:#?}", parsed.diagnostics);
    assert_eq!(
        parsed
            .diagnostics
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "v1.json:37:15: warning: [1].action: action \"show-heartbeat\" is not supported by \
          Flightdeck; the recipe is kept but never applies"
        ]
    );
    let set = parsed.value.expect("a set");
    assert_eq!(set.container, Container::Array);
    let experiment = &set.recipes[0];
    assert_eq!(experiment.revision_id, Some(RevisionId::Number(1046)));
    let Arguments::PreferenceExperiment(args) = &experiment.arguments else {
        panic!("single-pref arguments expected");
    };
    assert_eq!(args.preference_name, "layers.async-pan-zoom.enabled");
    assert_eq!(args.preference_type, PrefType::Boolean);
    assert_eq!(args.branch_type(), PrefBranchType::Default);
    assert_eq!(
        args.branches
            .iter()
            .map(|b| (b.slug.as_str(), b.value.clone(), b.ratio))
            .collect::<Vec<_>>(),
        [
            ("control", PrefValue::Bool(false), 1),
            ("treatment", PrefValue::Bool(true), 1)
        ]
    );
    assert_eq!(experiment.layout.extra.get("enabled"), Some(&json!(true)));
    let heartbeat = &set.recipes[1];
    assert!(matches!(
        &heartbeat.arguments,
        Arguments::Other { action, raw } if action == "show-heartbeat" && raw["surveyId"] == "hb-56-satisfaction"
    ));
}

#[test]
fn the_bundled_example_is_clean() {
    let parsed = parse("examples/normandy/recipes.json", EXAMPLE);
    assert_eq!(parsed.diagnostics, []);
    let set = parsed.value.expect("a set");
    assert_eq!(
        set.recipes
            .iter()
            .map(|r| (r.id, r.action.as_str(), r.slug()))
            .collect::<Vec<_>>(),
        [
            (101, "preference-rollout", Some("http3-rollout")),
            (102, "preference-rollback", Some("autoplay-block-rollout")),
            (
                103,
                "multi-preference-experiment",
                Some("newtab-preload-exp")
            ),
            (104, "preference-experiment", Some("search-suggest-exp")),
        ]
    );
}

#[test]
fn api_v3_recipes_compile_their_filters() {
    let set = parse_ok("v3.json", V3);
    assert!(matches!(set.container, Container::Paginated { ref extra } if extra["count"] == 2));
    assert_eq!(set.recipes.len(), 2);

    let doh = &set.recipes[0];
    assert_eq!(doh.id, 1011);
    // The approved revision is the one clients run, even though a newer draft exists.
    assert_eq!(doh.revision_id, Some(RevisionId::Number(4100)));
    assert!(matches!(
        &doh.layout.shape,
        Shape::V3 { from: RevisionSlot::Approved, other: OtherRevision::Raw(latest), signature_null: true, .. }
            if latest["id"] == 4120
    ));
    assert_eq!(
        doh.filter.as_ref().map(|f| f.expression.as_str()),
        Some(
            "(normandy.channel in [\"release\"]) && (normandy.locale in [\"en-US\",\"en-CA\"]) && \
             ([normandy.userId,normandy.recipe.id]|stableSample(0.05)) && (!normandy.isFirstRun)"
        )
    );
    assert_eq!(
        doh.capabilities,
        ["action.preference-rollout", "jexl.transform.stableSample"]
    );
    assert!(!doh.layout.capabilities_given);
    assert_eq!(
        doh.layout.action_object.as_ref().map(|a| a["id"].clone()),
        Some(json!(7))
    );

    let tabs = &set.recipes[1];
    assert!(matches!(
        &tabs.layout.shape,
        Shape::V3 {
            from: RevisionSlot::Latest,
            other: OtherRevision::Null,
            ..
        }
    ));
    // An empty extra_filter_expression adds nothing, as on the server.
    assert_eq!(
        tabs.filter.as_ref().map(|f| f.expression.as_str()),
        Some(
            "((env.version|versionCompare(\"85.!\")>=0)&&(env.version|versionCompare(\"86.*\")<0)) && \
             ([\"global-v4\",normandy.userId]|bucketSample(1200,500,10000)) && ((normandy.os.isWindows))"
        )
    );
    assert_eq!(
        tabs.capabilities,
        [
            "action.multi-preference-experiment",
            "jexl.context.env.version",
            "jexl.context.normandy.os",
            "jexl.transform.bucketSample",
            "jexl.transform.versionCompare",
        ]
    );
}

#[test]
fn v3_revision_with_locales_countries_channels_and_an_extra_expression() {
    let text = r#"{"id": 5, "approved_revision": {"id": 9, "name": "n",
        "action": {"name": "preference-rollback"}, "arguments": {"rolloutSlug": "r"},
        "locales": ["en-US", "de"], "countries": [], "channels": ["beta"],
        "extra_filter_expression": "normandy.isDefaultBrowser"}}"#;
    let set = parse_ok("v3.json", text);
    assert_eq!(
        set.recipes[0]
            .filter
            .as_ref()
            .map(|f| f.expression.as_str()),
        Some(
            "(normandy.locale in ['en-US', 'de']) && (normandy.channel in ['beta']) && \
             (normandy.isDefaultBrowser)"
        )
    );
    let single = r#"{"id": 5, "latest_revision": {"name": "n", "action": {"name": "x"},
        "arguments": {}, "extra_filter_expression": "true"}}"#;
    let set = parse_ok("v3.json", single);
    assert_eq!(
        set.recipes[0]
            .filter
            .as_ref()
            .map(|f| f.expression.as_str()),
        Some("true")
    );
}

#[test]
fn every_filter_object_type_renders_like_the_server() {
    let cases: &[(serde_json::Value, &str)] = &[
        (
            json!({"type": "channel", "channels": ["release", "beta"]}),
            "normandy.channel in [\"release\",\"beta\"]",
        ),
        (
            json!({"type": "country", "countries": ["SV", "MX"]}),
            "normandy.country in [\"SV\",\"MX\"]",
        ),
        (
            json!({"type": "versionRange", "min_version": "72.0b2", "max_version": "75.0a1"}),
            "(env.version|versionCompare(\"72.0b2\")>=0)&&(env.version|versionCompare(\"75.0a1\")<0)",
        ),
        (
            json!({"type": "bucketSample", "input": ["A"], "start": 10, "count": 0.5, "total": 1000}),
            "[A]|bucketSample(10,0.5,1000)",
        ),
        (
            json!({"type": "stableSample", "input": ["A"], "rate": 0.1}),
            "[A]|stableSample(0.1)",
        ),
        (
            json!({"type": "namespaceSample", "namespace": "risky-experiment", "start": 123, "count": 0.5}),
            "[\"risky-experiment\",normandy.userId]|bucketSample(123,0.5,10000)",
        ),
        (
            json!({"type": "jexl", "expression": "2 + 2", "capabilities": [], "comment": "c"}),
            "(2 + 2)",
        ),
        (
            json!({"type": "platform", "platforms": ["all_mac", "all_windows"]}),
            "normandy.os.isMac||normandy.os.isWindows",
        ),
        (
            json!({"type": "preferenceValue", "pref": "browser.urlbar.maxRichResults", "value": 10, "comparison": "equal"}),
            "'browser.urlbar.maxRichResults'|preferenceValue == 10",
        ),
        (
            json!({"type": "preferenceValue", "pref": "p", "value": "default", "comparison": "contains"}),
            "\"default\" in 'p'|preferenceValue",
        ),
        (
            json!({"type": "preferenceExists", "pref": "p", "value": false}),
            "!('p'|preferenceExists)",
        ),
        (
            json!({"type": "preferenceIsUserSet", "pref": "p", "value": true}),
            "'p'|preferenceIsUserSet",
        ),
        (
            json!({"type": "dateRange", "not_before": "2020-02-01T00:00:00Z", "not_after": "2020-03-01T00:00:00Z"}),
            "(normandy.request_time>=\"2020-02-01T00:00:00Z\"|date)&&(normandy.request_time<\"2020-03-01T00:00:00Z\"|date)",
        ),
        (
            json!({"type": "profileCreationDate", "direction": "olderThan", "date": "2020-07-30"}),
            "(normandy.telemetry.main.environment.profile.creationDate<=18473)",
        ),
        (
            json!({"type": "profileCreationDate", "direction": "newerThan", "date": "2020-02-01"}),
            "(!normandy.telemetry.main)||(normandy.telemetry.main.environment.profile.creationDate>18293)",
        ),
        (
            json!({"type": "windowsBuildNumber", "value": 12345, "comparison": "greater_than_equal"}),
            "(normandy.os.isWindows && normandy.os.windowsBuildNumber >= 12345)",
        ),
        (
            json!({"type": "windowsVersion", "versions_list": [6.1]}),
            "(normandy.os.isWindows && normandy.os.windowsVersion in [6.1])",
        ),
        (
            json!({"type": "addonActive", "addons": ["@abcdef", "ghijk@lmnop"], "any_or_all": "all"}),
            "normandy.addons[\"@abcdef\"].isActive&&normandy.addons[\"ghijk@lmnop\"].isActive",
        ),
        (
            json!({"type": "addonInstalled", "addons": ["@abcdef"], "any_or_all": "any"}),
            "normandy.addons[\"@abcdef\"]",
        ),
        (
            json!({"type": "negate", "filter_to_negate": {"type": "channel", "channels": ["release", "beta"]}}),
            "!(normandy.channel in [\"release\",\"beta\"])",
        ),
        (
            json!({"type": "and", "subfilters": [{"type": "channel", "channels": ["release"]}, {"type": "locale", "locales": ["en-US"]}]}),
            "(normandy.channel in [\"release\"]&&normandy.locale in [\"en-US\"])",
        ),
        (
            json!({"type": "or", "subfilters": [{"type": "channel", "channels": ["release"]}]}),
            "(normandy.channel in [\"release\"])",
        ),
        (
            json!({"type": "qaOnly"}),
            "\"my-slug\" in 'app.normandy.testing-for-recipes'|preferenceValue",
        ),
    ];
    for (object, expected) in cases {
        let recipe = json!({"id": 1, "latest_revision": {"name": "n", "action": {"name": "preference-rollout"},
            "arguments": {"slug": "my-slug", "preferences": [{"preferenceName": "p", "value": 1}]},
            "filter_object": [object]}});
        let set = parse_ok("f.json", &recipe.to_string());
        assert_eq!(
            set.recipes[0]
                .filter
                .as_ref()
                .map(|f| f.expression.as_str()),
            Some(*expected),
            "{object}"
        );
    }
    let preset = json!({"id": 1, "latest_revision": {"name": "n", "action": {"name": "x"}, "arguments": {},
        "filter_object": [{"type": "preset", "name": "pocket-1"}]}});
    let set = parse_ok("f.json", &preset.to_string());
    let text = set.recipes[0]
        .filter
        .as_ref()
        .map(|f| f.expression.clone())
        .unwrap_or_default();
    assert!(text.starts_with("((!('browser.newtabpage.enabled'|preferenceIsUserSet)||!('browser.startup.homepage'|preferenceIsUserSet))&&"));
    assert_eq!(text.matches("preferenceIsUserSet").count(), 6);
}

#[test]
fn round_trip_keeps_every_shape() {
    for (file, text) in [
        ("minimal.json", MINIMAL),
        ("signed.json", SIGNED),
        ("v1.json", V1),
        ("v3.json", V3),
        ("recipes.json", EXAMPLE),
    ] {
        let first = parse(file, text).value.expect("a set");
        let written = to_json(&first);
        let second = parse(file, &written);
        assert!(!second.has_errors(), "{file}: {:#?}", second.diagnostics);
        assert_eq!(second.value.as_ref(), Some(&first), "{file}:\n{written}");
        // Writing again is stable.
        assert_eq!(
            second.value.as_ref().map(to_json).as_deref(),
            Some(written.as_str())
        );
    }
}

#[test]
fn round_trip_writes_the_same_json_values() {
    // Key order may change, values may not.
    for text in [MINIMAL, SIGNED, V1, V3, EXAMPLE] {
        let set = parse("f.json", text).value.expect("a set");
        let original: serde_json::Value = serde_json::from_str(text).expect("json");
        let written: serde_json::Value = serde_json::from_str(&to_json(&set)).expect("json");
        assert_eq!(written, original);
    }
}

#[test]
fn round_trip_of_invalid_and_programmatic_recipes() {
    let text = r#"[{"id": 1, "name": "bad", "action": "preference-rollout",
        "arguments": {"slug": "Bad Slug", "preferences": []}, "filter_expression": "true"},
        {"id": 2, "name": "no args", "action": "preference-rollback", "filter_expression": "true"}]"#;
    let first = parse("f.json", text).value.expect("a set");
    assert!(matches!(
        first.recipes[0].arguments,
        Arguments::Invalid { raw: Some(_), .. }
    ));
    assert!(matches!(
        first.recipes[1].arguments,
        Arguments::Invalid { raw: None, .. }
    ));
    let second = parse("f.json", &to_json(&first)).value;
    assert_eq!(second.as_ref(), Some(&first));

    let made = RecipeSet {
        recipes: vec![Recipe::new(
            7,
            "made",
            ACTION_PREFERENCE_ROLLBACK,
            Arguments::PreferenceRollback(RollbackArguments {
                rollout_slug: "r".into(),
                extra: JsonMap::new(),
            }),
            Some(Filter::new("true")),
        )],
        container: Container::Array,
    };
    assert_eq!(parse("m.json", &to_json(&made)).value, Some(made));
}

/// (input, expected diagnostics). Inputs are laid out one field per line so positions are
/// easy to check by eye.
const VALIDATION_CASES: &[(&str, &[&str])] = &[
    (
        // Rollout: bad slug, empty preference list.
        "{\"id\": 1, \"name\": \"r\", \"action\": \"preference-rollout\", \"filter_expression\": \"true\",\n\
         \"arguments\": {\n  \"slug\": \"Bad_Slug\",\n  \"preferences\": []\n}}",
        &[
            "t.json:3:11: error: arguments.slug: slug \"Bad_Slug\" does not match ^[a-z0-9\\-_]+$",
            "t.json:4:18: error: arguments.preferences: preferences must list at least one preference",
        ],
    ),
    (
        // Rollout: missing slug, value of the wrong type, missing value, duplicate preference.
        "{\"id\": 1, \"name\": \"r\", \"action\": \"preference-rollout\", \"filter_expression\": \"true\",\n\
         \"arguments\": {\"preferences\": [\n  {\"preferenceName\": \"a\", \"value\": 1.5},\n  \
         {\"preferenceName\": \"b\"},\n  {\"preferenceName\": \"c\", \"value\": \"x\"},\n  \
         {\"preferenceName\": \"c\", \"value\": null}\n]}}",
        &[
            "t.json:2:14: error: arguments.slug: missing required field \"slug\"",
            "t.json:3:36: error: arguments.preferences[0].value: value must be a string, an integer or a boolean, found the number 1.5",
            "t.json:4:3: error: arguments.preferences[1].value: missing required field \"value\"",
            "t.json:6:36: error: arguments.preferences[3].value: value must be a string, an integer or a boolean, found null",
        ],
    ),
    (
        "{\"id\": 1, \"name\": \"r\", \"action\": \"preference-rollout\", \"filter_expression\": \"true\",\n\
         \"arguments\": {\"slug\": \"s\", \"preferences\": [\n  {\"preferenceName\": \"a\", \"value\": 1},\n  \
         {\"preferenceName\": \"a\", \"value\": 2}\n]}}",
        &[
            "t.json:4:22: error: arguments.preferences[1].preferenceName: preference \"a\" is listed twice",
        ],
    ),
    (
        // Rollback with a slug that is not a rollout slug.
        "{\"id\": 1, \"name\": \"r\", \"action\": \"preference-rollback\", \"filter_expression\": \"true\",\n\
         \"arguments\": {\"rolloutSlug\": 12}}",
        &["t.json:2:30: error: arguments.rolloutSlug: expected a string, found a number"],
    ),
    (
        // Single-pref experiment: value inconsistent with the type, ratio 0, duplicate branch
        // slug, bad branch type, missing isEnrollmentPaused.
        "{\"id\": 1, \"name\": \"e\", \"action\": \"preference-experiment\", \"filter_expression\": \"true\",\n\
         \"arguments\": {\"slug\": \"exp-1\", \"preferenceName\": \"p\", \"preferenceType\": \"integer\",\n\
         \"preferenceBranchType\": \"both\",\n\
         \"branches\": [\n  {\"slug\": \"a\", \"value\": \"1\", \"ratio\": 0},\n  \
         {\"slug\": \"b\", \"value\": 2, \"ratio\": 1.5},\n  {\"slug\": \"b\", \"value\": 3, \"ratio\": 1}\n]}}",
        &[
            "t.json:3:25: error: arguments.preferenceBranchType: preferenceBranchType must be \"user\" or \"default\", found \"both\"",
            "t.json:2:14: error: arguments.isEnrollmentPaused: missing required field \"isEnrollmentPaused\"",
            "t.json:5:26: error: arguments.branches[0].value: value \"1\" is a string but preferenceType is \"integer\"",
            "t.json:5:40: error: arguments.branches[0].ratio: ratio must be at least 1, found the number 0",
            "t.json:6:38: error: arguments.branches[1].ratio: ratio must be an integer, found the number 1.5",
            "t.json:7:12: error: arguments.branches[2].slug: branch slug \"b\" is used by an earlier branch",
        ],
    ),
    (
        // Single-pref experiment: branch values must differ; experiment slugs allow capitals.
        "{\"id\": 1, \"name\": \"e\", \"action\": \"preference-experiment\", \"filter_expression\": \"true\",\n\
         \"arguments\": {\"slug\": \"Exp-1\", \"preferenceName\": \"p\", \"preferenceType\": \"boolean\",\n\
         \"isEnrollmentPaused\": false, \"branches\": [\n  {\"slug\": \"a\", \"value\": true, \"ratio\": 1},\n  \
         {\"slug\": \"b\", \"value\": true, \"ratio\": 1}\n]}}",
        &[
            "t.json:5:26: error: arguments.branches[1].value: branch value true is used by an earlier branch",
        ],
    ),
    (
        // Multi-pref experiment: no branches, empty user-facing name, bad slug, wrong types.
        "{\"id\": 1, \"name\": \"e\", \"action\": \"multi-preference-experiment\", \"filter_expression\": \"true\",\n\
         \"arguments\": {\"slug\": \"exp 1\", \"userFacingName\": \"\",\n\
         \"isEnrollmentPaused\": \"no\", \"isHighPopulation\": 1, \"branches\": []}}",
        &[
            "t.json:2:23: error: arguments.slug: slug \"exp 1\" does not match ^[A-Za-z0-9\\-_]+$",
            "t.json:2:50: error: arguments.userFacingName: userFacingName must not be empty",
            "t.json:2:14: error: arguments.userFacingDescription: missing required field \"userFacingDescription\"",
            "t.json:3:23: error: arguments.isEnrollmentPaused: expected a boolean, found a string",
            "t.json:3:49: error: arguments.isHighPopulation: expected a boolean, found a number",
            "t.json:3:64: error: arguments.branches: branches must list at least one branch",
        ],
    ),
    (
        // Multi-pref experiment preferences: type/value checks inside the map.
        "{\"id\": 1, \"name\": \"e\", \"action\": \"multi-preference-experiment\", \"filter_expression\": \"true\",\n\
         \"arguments\": {\"slug\": \"e\", \"userFacingName\": \"E\", \"userFacingDescription\": \"D\",\n\
         \"isEnrollmentPaused\": false, \"branches\": [{\"slug\": \"a\", \"ratio\": 1, \"preferences\": {\n  \
         \"p.one\": {\"preferenceType\": \"bool\", \"preferenceValue\": true},\n  \
         \"p.two\": {\"preferenceType\": \"boolean\", \"preferenceValue\": 1},\n  \
         \"p.three\": {\"preferenceType\": \"string\"},\n  \
         \"p.four\": [],\n  \
         \"p.five\": {\"preferenceType\": \"integer\", \"preferenceBranchType\": \"user\", \"preferenceValue\": 5}\n}}]}}",
        &[
            "t.json:4:31: error: arguments.branches[0].preferences.p.one.preferenceType: preferenceType must be \"string\", \"integer\" or \"boolean\", found \"bool\"",
            "t.json:5:61: error: arguments.branches[0].preferences.p.two.preferenceValue: preferenceValue 1 is an integer but preferenceType is \"boolean\"",
            "t.json:6:14: error: arguments.branches[0].preferences.p.three.preferenceValue: missing required field \"preferenceValue\"",
            "t.json:7:13: error: arguments.branches[0].preferences.p.four: expected an object, found an array",
        ],
    ),
    (
        // Multi-pref experiment: a branch without preferences and a preference typed
        // differently across branches (warnings); a branch missing `preferences` (error).
        "{\"id\": 1, \"name\": \"e\", \"action\": \"multi-preference-experiment\", \"filter_expression\": \"true\",\n\
         \"arguments\": {\"slug\": \"e\", \"userFacingName\": \"E\", \"userFacingDescription\": \"D\",\n\
         \"isEnrollmentPaused\": false, \"branches\": [\n  \
         {\"slug\": \"a\", \"ratio\": 1, \"preferences\": {\"p\": {\"preferenceType\": \"string\", \"preferenceValue\": \"x\"}}},\n  \
         {\"slug\": \"b\", \"ratio\": 1, \"preferences\": {\"p\": {\"preferenceType\": \"integer\", \"preferenceValue\": 1}}},\n  \
         {\"slug\": \"c\", \"ratio\": 1, \"preferences\": {}}\n]}}",
        &[
            "t.json:6:44: warning: arguments.branches[2].preferences: this branch sets no preferences",
            "t.json:5:69: warning: arguments.branches[1].preferences.p.preferenceType: preference \"p\" is \"integer\" here but \"string\" in branch \"a\"",
        ],
    ),
    (
        // Arguments that are not an object.
        "{\"id\": 1, \"name\": \"r\", \"action\": \"preference-rollout\", \"filter_expression\": \"true\",\n\
         \"arguments\": [\"slug\"]}",
        &["t.json:2:14: error: arguments: expected an object, found an array"],
    ),
];

#[test]
fn validation_errors_name_file_line_column_and_path() {
    for (text, expected) in VALIDATION_CASES {
        assert_eq!(rendered("t.json", text), *expected, "input:\n{text}");
        let set = parse("t.json", text).value.expect("the recipe is kept");
        let errors = expected.iter().any(|e| e.contains(": error: "));
        assert_eq!(
            set.recipes[0].arguments.is_valid(),
            !errors,
            "input:\n{text}"
        );
    }
}

/// A bare array is read one recipe at a time; a listing is read as one tree. Both give the
/// same recipes, and the same diagnostics at the places the text scanner finds.
#[test]
fn a_streamed_array_reads_as_a_listing_does() {
    let items: Vec<&str> = VALIDATION_CASES.iter().map(|(text, _)| *text).collect();
    let array = format!("[\n{}\n]", items.join(",\n"));
    let listing = format!("{{\"results\": [\n{}\n]}}", items.join(",\n"));
    let streamed = parse("a.json", &array);
    let whole = parse("a.json", &listing);
    let (Some(streamed_set), Some(whole_set)) = (&streamed.value, &whole.value) else {
        panic!("both documents are read");
    };
    assert_eq!(streamed_set.recipes, whole_set.recipes);
    assert_eq!(streamed_set.container, Container::Array);
    // Every case's own diagnostics, and cross-recipe ones (the cases share ids).
    let own: usize = VALIDATION_CASES.iter().map(|(_, e)| e.len()).sum();
    assert!(streamed.diagnostics.len() > own);
    assert_eq!(streamed.diagnostics.len(), whole.diagnostics.len());
    for (from_array, from_listing) in streamed.diagnostics.iter().zip(&whole.diagnostics) {
        assert_eq!(from_array.message, from_listing.message);
        assert_eq!(
            format!("results{}", from_array.path),
            from_listing.path.to_string()
        );
        let located = crate::diagnostic::locate_json(&array, &from_array.path);
        assert_eq!(from_array.position, located, "{}", from_array.message);
    }
}

/// A streamed array whose text breaks after a recipe with errors reports the syntax error
/// alone, as a whole-document read does.
#[test]
fn a_syntax_error_after_streamed_recipes_is_the_only_diagnostic() {
    let text = format!("[\n{},\n{{\"id\": ]", VALIDATION_CASES[0].0);
    let parsed = parse("b.json", &text);
    assert!(parsed.value.is_none());
    let rendered: Vec<String> = parsed.diagnostics.iter().map(ToString::to_string).collect();
    assert_eq!(rendered.len(), 1, "{rendered:?}");
    assert!(rendered[0].contains("invalid JSON"), "{rendered:?}");
    assert!(rendered[0].starts_with("b.json:7:"), "{rendered:?}");
}

#[test]
fn recipe_level_errors() {
    let cases: &[(&str, &[&str])] = &[
        (
            "[\n  {\"name\": \"no id\", \"action\": \"x\", \"arguments\": {}, \"filter_expression\": \"1\"},\n  \
             {\"id\": -4, \"name\": \"neg\", \"action\": \"x\", \"arguments\": {}, \"filter_expression\": \"1\"},\n  \
             {\"id\": 3, \"action\": \"x\", \"arguments\": {}, \"filter_expression\": \"1\"},\n  \
             {\"id\": 4, \"name\": \"n\", \"action\": 5, \"arguments\": {}, \"filter_expression\": \"1\"},\n  \
             7\n]",
            &[
                "t.json:2:3: error: [0].id: missing required field \"id\"",
                "t.json:3:10: error: [1].id: expected a non-negative integer, found the number -4",
                "t.json:4:3: error: [2].name: missing required field \"name\"",
                "t.json:5:36: error: [3].action: expected an action name or an action object {\"name\": ...}, found a number",
                "t.json:6:3: error: [4]: expected a recipe object, found a number",
            ],
        ),
        (
            "{\"id\": 1, \"name\": \"n\", \"action\": \"preference-rollback\",\n \"arguments\": {\"rolloutSlug\": \"r\"}}",
            &[
                "t.json:1:1: error: filter_expression: missing filter: give filter_expression (or, in API v3, filter_object or extra_filter_expression)",
            ],
        ),
        (
            "{\"id\": 1, \"recipe\": {\"id\": 2, \"name\": \"n\", \"action\": \"preference-rollback\",\n \"arguments\": {\"rolloutSlug\": \"r\"}, \"filter_expression\": \"true\",\n \"capabilities\": [\"a\", 3]}, \"signature\": {\"x5u\": \"u\"}}",
            &[
                "t.json:3:24: error: recipe.capabilities[1]: expected a string, found a number",
                "t.json:3:42: error: signature.signature: missing required field \"signature\"",
                "t.json:1:8: warning: id: record id 1 does not match the recipe id 2",
            ],
        ),
        (
            "{\"id\": 1, \"latest_revision\": 3, \"approved_revision\": null}",
            &[
                "t.json:1:30: error: latest_revision: expected a revision object, found a number",
                "t.json:1:1: error: (root): this v3 recipe has neither an approved_revision nor a latest_revision object",
            ],
        ),
        (
            "{\"id\": 1, \"latest_revision\": {\"name\": \"n\", \"action\": {\"name\": \"x\"}, \"arguments\": {},\n \
             \"filter_object\": [{\"type\": \"channel\"}, {\"type\": \"stableSample\", \"input\": [\"a\"], \"rate\": 2},\n \
             {\"type\": \"nope\"}, {\"channels\": []}]}}",
            &[
                "t.json:2:20: error: latest_revision.filter_object[0].channels: missing required field \"channels\"",
                "t.json:2:90: error: latest_revision.filter_object[1].rate: rate must be between 0 and 1, found 2",
                "t.json:3:11: error: latest_revision.filter_object[2].type: unknown filter object type \"nope\"",
                "t.json:3:20: error: latest_revision.filter_object[3].type: missing required field \"type\"",
            ],
        ),
        (
            "{\"id\": 1, \"latest_revision\": {\"name\": \"n\", \"action\": {\"name\": \"x\"}, \"arguments\": {},\n \
             \"filter_object\": [], \"extra_filter_expression\": \"\"}}",
            &[
                "t.json:2:19: error: latest_revision.filter_object: one of extra_filter_expression or filter_object is required",
            ],
        ),
        (
            "true",
            &[
                "t.json:1:1: error: (root): expected a recipe, an array of recipes or a page {\"results\": [...]}, found a boolean",
            ],
        ),
    ];
    for (text, expected) in cases {
        let expected: Vec<String> = expected.iter().map(|s| (*s).to_owned()).collect();
        let mut got = rendered("t.json", text);
        // Unsupported-action warnings are covered elsewhere.
        got.retain(|d| !d.contains("is not supported by Flightdeck"));
        assert_eq!(got, expected, "input:\n{text}");
    }
}

#[test]
fn filter_syntax_errors_are_positioned_inside_the_file() {
    // Two escaped quotes precede the error, which sits at offset 35 of the decoded expression.
    let text = "{\"id\": 1, \"name\": \"r\", \"action\": \"preference-rollback\", \"arguments\": {\"rolloutSlug\": \"r\"},\n \
                \"filter_expression\": \"normandy.channel in [\\\"release\\\"] && && true\"}";
    assert_eq!(
        rendered("f.json", text),
        [
            "f.json:2:61: error: filter_expression: filter expression syntax error at offset 35: \
          unexpected token at `&& true`"
        ]
    );
    // The recipe is kept; evaluation reports the filter error.
    let set = parse("f.json", text).value.expect("kept");
    assert!(
        set.recipes[0]
            .filter
            .as_ref()
            .is_some_and(|f| f.compiled.is_err())
    );

    // In a v3 revision the compiled expression's offset is mapped back to the part it came from.
    let v3 = "{\"id\": 1, \"latest_revision\": {\"name\": \"n\", \"action\": {\"name\": \"preference-rollback\"},\n \
              \"arguments\": {\"rolloutSlug\": \"r\"}, \"filter_object\": [{\"type\": \"channel\", \"channels\": [\"beta\"]}],\n \
              \"extra_filter_expression\": \"x == = y\"}}";
    assert_eq!(
        rendered("g.json", v3),
        [
            "g.json:3:35: error: latest_revision.extra_filter_expression: filter expression syntax \
          error at offset 40: invalid expression token: ="
        ]
    );
}

#[test]
fn json_syntax_errors_use_the_parser_position() {
    assert_eq!(
        rendered("bad.json", "[\n  {\"id\": 1,\n   \"name\": \"é\" \"x\"}\n]"),
        ["bad.json:3:16: error: (root): invalid JSON: expected `,` or `}` at line 3 column 17"]
    );
    let parsed = parse("empty.json", "");
    assert!(parsed.value.is_none());
    assert_eq!(
        parsed.diagnostics[0].to_string(),
        "empty.json:1:1: error: (root): invalid JSON: EOF while parsing a value at line 1 column 0"
    );
}

#[test]
fn cross_recipe_checks() {
    let text = "[\n\
        {\"id\": 1, \"name\": \"a\", \"action\": \"preference-rollout\", \"filter_expression\": \"true\", \"arguments\": {\"slug\": \"s\", \"preferences\": [{\"preferenceName\": \"p\", \"value\": 1}]}},\n\
        {\"id\": 1, \"name\": \"b\", \"action\": \"preference-rollback\", \"filter_expression\": \"true\", \"arguments\": {\"rolloutSlug\": \"s\"}},\n\
        {\"id\": 3, \"name\": \"c\", \"action\": \"preference-rollout\", \"filter_expression\": \"true\", \"arguments\": {\"slug\": \"s\", \"preferences\": [{\"preferenceName\": \"q\", \"value\": 1}]}},\n\
        {\"id\": 4, \"name\": \"d\", \"action\": \"multi-preference-experiment\", \"filter_expression\": \"true\", \"arguments\": {\"slug\": \"s\", \"userFacingName\": \"D\", \"userFacingDescription\": \"D\", \"isEnrollmentPaused\": false, \"branches\": [{\"slug\": \"x\", \"ratio\": 1, \"preferences\": {}}]}},\n\
        {\"id\": 5, \"name\": \"e\", \"action\": \"preference-experiment\", \"filter_expression\": \"true\", \"arguments\": {\"slug\": \"s\", \"preferenceName\": \"p\", \"preferenceType\": \"string\", \"isEnrollmentPaused\": false, \"branches\": [{\"slug\": \"x\", \"value\": \"v\", \"ratio\": 1}]}}\n\
        ]";
    let mut got = rendered("x.json", text);
    got.retain(|d| !d.contains("sets no preferences"));
    assert_eq!(
        got,
        [
            "x.json:3:8: error: [1].id: recipe id 1 is already used by the recipe \"a\" (entry 1)",
            "x.json:4:107: error: [2].arguments.slug: slug \"s\" is already used by recipe 1 (preference-rollout action family)",
            "x.json:6:110: error: [4].arguments.slug: slug \"s\" is already used by recipe 4 (preference-experiment action family)",
            "x.json:3:115: warning: [1].arguments.rolloutSlug: the rollout \"s\" (recipe 1) is in the same set; a rollout and its rollback must never be enabled together",
        ]
    );
}

#[test]
fn cross_recipe_checks_name_the_field_in_every_shape() {
    let rollout = |id: u64| {
        json!({"id": id, "name": "r", "action": "preference-rollout", "filter_expression": "true",
               "arguments": {"slug": "s", "preferences": [{"preferenceName": "p", "value": 1}]}})
    };
    let signed = json!({"data": [
        {"id": "1", "recipe": rollout(1), "signature": null},
        {"id": "1", "recipe": rollout(1), "signature": null},
    ]});
    let revision = |id: u64| {
        let mut revision = rollout(id);
        revision["id"] = json!(100 + id);
        revision
    };
    let v3 = json!({"results": [
        {"id": 7, "approved_revision": revision(7), "latest_revision": revision(7)},
        {"id": 7, "latest_revision": revision(8)},
    ]});
    for (document, expected) in [
        (
            signed,
            ["data[1].recipe.id", "data[1].recipe.arguments.slug"],
        ),
        (
            v3,
            ["results[1].id", "results[1].latest_revision.arguments.slug"],
        ),
    ] {
        let text = serde_json::to_string_pretty(&document).unwrap();
        let parsed = parse("x.json", &text);
        let checks: Vec<&crate::diagnostic::Diagnostic> = parsed
            .diagnostics
            .iter()
            .filter(|d| d.message.contains("already used"))
            .collect();
        let paths: Vec<String> = checks.iter().map(|d| d.path.to_string()).collect();
        assert_eq!(paths, expected);
        for d in checks {
            assert_eq!(d.position, crate::diagnostic::locate_json(&text, &d.path));
        }
    }
}

#[test]
fn oversized_files_are_rejected_without_parsing() {
    let text = " ".repeat(parse::MAX_FILE_BYTES + 1);
    let parsed = parse("big.json", &text);
    assert!(parsed.value.is_none());
    assert!(parsed.diagnostics[0].message.contains("limited to"));
}

/// JSON values that often look like recipes: keys come from the vocabulary the parser knows.
fn recipe_like_json() -> impl Strategy<Value = serde_json::Value> {
    let keys = prop::sample::select(vec![
        "id",
        "name",
        "action",
        "arguments",
        "filter_expression",
        "capabilities",
        "recipe",
        "signature",
        "latest_revision",
        "approved_revision",
        "results",
        "data",
        "slug",
        "preferences",
        "preferenceName",
        "value",
        "branches",
        "ratio",
        "preferenceType",
        "preferenceBranchType",
        "preferenceValue",
        "isEnrollmentPaused",
        "rolloutSlug",
        "userFacingName",
        "userFacingDescription",
        "filter_object",
        "type",
        "channels",
        "extra_filter_expression",
        "locales",
        "input",
        "rate",
        "versions",
        "subfilters",
        "filter_to_negate",
        "expression",
        "comment",
        "revision_id",
        "extra_capabilities",
        "preference-rollout",
        "multi-preference-experiment",
    ]);
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number)),
        prop::sample::select(vec![
            "preference-rollout",
            "preference-rollback",
            "preference-experiment",
            "multi-preference-experiment",
            "show-heartbeat",
            "true",
            "s",
            "Bad Slug",
            "integer",
            "boolean",
            "string",
            "user",
            "default",
            "channel",
            "jexl",
            "and",
            "negate",
            "version",
            "stableSample",
            "qaOnly",
            "(",
        ])
        .prop_map(|s| serde_json::Value::String(s.to_owned())),
        ".*".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..8).prop_map(|members| {
                serde_json::Value::Object(
                    members
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect(),
                )
            }),
        ]
    })
}

proptest! {
    #[test]
    fn parse_never_panics_on_text(text in ".{0,400}") {
        let _ = parse("p.json", &text);
    }

    #[test]
    fn parse_never_panics_on_json(value in recipe_like_json()) {
        let text = serde_json::to_string_pretty(&value).unwrap_or_default();
        let parsed = parse("p.json", &text);
        // Whatever parses also survives a round trip.
        if let Some(set) = parsed.value {
            let again = parse("p.json", &to_json(&set));
            prop_assert_eq!(again.value, Some(set));
        }
    }
}
