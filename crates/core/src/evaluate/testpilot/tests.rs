use std::collections::BTreeMap;

use super::*;
use crate::context::ClientContext;
use crate::evaluate::{ClientFacts, NoJsFilter, StartedExperiment};
use crate::model::testpilot::parse;

fn index(text: &str) -> FlightsIndex {
    let parsed = parse("flights.json", text);
    assert!(!parsed.has_errors(), "{:#?}", parsed.diagnostics);
    parsed.value.unwrap()
}

fn ts(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

fn run(
    index: &FlightsIndex,
    context: &ClientContext,
    facts: &ClientFacts,
    now: &str,
) -> Vec<(String, bool, Option<String>)> {
    let input = EvalInput {
        context,
        facts,
        now: ts(now),
        js_filter: &NoJsFilter,
    };
    evaluate(index, &input)
        .into_iter()
        .map(|r| {
            assert_eq!(r.kind, "flight");
            assert_eq!(r.branch, None);
            assert_eq!(r.value, None);
            (r.id, r.matched, r.reason)
        })
        .collect()
}

fn reason(
    text: &str,
    context: serde_json::Value,
    facts: &ClientFacts,
    now: &str,
) -> Option<String> {
    let context: ClientContext = serde_json::from_value(context).unwrap();
    let results = run(&index(text), &context, facts, now);
    assert_eq!(results.len(), 1);
    let (_, matched, reason) = results.into_iter().next().unwrap();
    assert_eq!(matched, reason.is_none());
    reason
}

fn facts(random: &[(&str, f64)]) -> ClientFacts {
    ClientFacts {
        random_values: random.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        started_experiments: BTreeMap::new(),
    }
}

const FULL: &str = r#"[{"studyname": "s", "endBy": "2024-09-01T00:00:00Z",
  "filter": {"channels": ["release", "beta"], "oses": ["Linux"], "locales": ["en-US"], "versions": ["128.0.1"]},
  "randomDeploy": {"keyname": "k", "ge": 0.25, "lt": 0.5}}]"#;

fn client() -> serde_json::Value {
    serde_json::json!({"channel": "release", "os": "Linux", "locale": "en-US", "version": "128.0.1"})
}

#[test]
fn reasons_in_order() {
    let inside = facts(&[("k", 0.3)]);
    let now = "2024-07-15T12:00:00Z";
    assert_eq!(reason(FULL, client(), &inside, now), None);
    let killed = FULL.replace(r#""endBy""#, r#""kill": true, "endBy""#);
    assert_eq!(
        reason(&killed, client(), &inside, "2025-01-01T00:00:00Z").as_deref(),
        Some("killed")
    );
    assert_eq!(
        reason(FULL, client(), &inside, "2024-09-01T00:00:00Z").as_deref(),
        Some("endBy")
    );
    let mut c = client();
    c["channel"] = "nightly".into();
    c["os"] = "WINNT".into();
    assert_eq!(
        reason(FULL, c, &inside, now).as_deref(),
        Some("filter-channel")
    );
    let mut c = client();
    c["os"] = "WINNT".into();
    assert_eq!(reason(FULL, c, &inside, now).as_deref(), Some("filter-os"));
    let mut c = client();
    c["locale"] = "de".into();
    assert_eq!(
        reason(FULL, c, &inside, now).as_deref(),
        Some("filter-locale")
    );
    let mut c = client();
    c["version"] = "128.0".into();
    assert_eq!(
        reason(FULL, c, &inside, now).as_deref(),
        Some("filter-version")
    );
    // A context without the value does not match.
    let mut c = client();
    c.as_object_mut().unwrap().remove("locale");
    assert_eq!(
        reason(FULL, c, &inside, now).as_deref(),
        Some("filter-locale")
    );
    assert_eq!(
        reason(FULL, client(), &facts(&[("k", 0.5)]), now).as_deref(),
        Some("randomDeploy")
    );
    assert_eq!(reason(FULL, client(), &facts(&[("k", 0.25)]), now), None);
    assert_eq!(
        reason(FULL, client(), &facts(&[("other", 0.3)]), now).as_deref(),
        Some("randomDeploy")
    );
    // The context's randomValues are a fallback for the persisted facts.
    let mut c = client();
    c["randomValues"] = serde_json::json!({"k": 0.4});
    assert_eq!(reason(FULL, c, &facts(&[]), now), None);
}

#[test]
fn reference_spelling_evaluates_the_same() {
    let text = r#"[{"name": "s", "end": "2024-09-01T00:00:00Z", "stopflight": false,
      "filter": {"channel": ["release"], "os": ["Linux"]},
      "randomsubset": {"key": "k", "range": [0.25, 0.5]}}]"#;
    let now = "2024-07-15T12:00:00Z";
    assert_eq!(reason(text, client(), &facts(&[("k", 0.3)]), now), None);
    assert_eq!(
        reason(text, client(), &facts(&[("k", 0.1)]), now).as_deref(),
        Some("randomDeploy")
    );
}

#[test]
fn relative_end_counts_from_first_seen() {
    let text = r#"[{"name": "a flight plan", "end": 2592000000}]"#;
    let context = serde_json::json!({});
    // Never seen: it is being seen now, so 30 days remain.
    assert_eq!(
        reason(text, context.clone(), &facts(&[]), "2024-07-15T12:00:00Z"),
        None
    );
    let mut seen = facts(&[]);
    seen.started_experiments.insert(
        "a flight plan".into(),
        StartedExperiment {
            start_time: ts("2024-06-01T00:00:00Z"),
            active: true,
            failed_start: false,
        },
    );
    assert_eq!(
        reason(text, context.clone(), &seen, "2024-06-30T23:59:59Z"),
        None
    );
    assert_eq!(
        reason(text, context, &seen, "2024-07-01T00:00:00Z").as_deref(),
        Some("endBy")
    );
}

#[test]
fn reference_date_string_end() {
    let text = r#"[{"name": "a flight plan", "end": "11 March 2020"}]"#;
    let context = serde_json::json!({});
    assert_eq!(
        reason(text, context.clone(), &facts(&[]), "2020-03-10T23:59:59Z"),
        None
    );
    assert_eq!(
        reason(text, context, &facts(&[]), "2020-03-11T00:00:00Z").as_deref(),
        Some("endBy")
    );
}

#[test]
fn filter_expression_errors_are_reasons() {
    let text = r#"[{"studyname": "s", "endBy": 2592000000, "filter": {"expression": "1|noSuchTransform"}}]"#;
    let got = reason(text, client(), &facts(&[]), "2024-07-15T12:00:00Z").unwrap();
    assert!(got.starts_with("filter-error: "), "{got}");
}

#[test]
fn bundled_example_evaluates() {
    let index = index(include_str!(
        "../../../../../examples/testpilot/flights.json"
    ));
    let context =
        ClientContext::from_json(include_str!("../../../../../examples/context.json")).unwrap();
    let facts = ClientFacts::default();
    let results = run(&index, &context, &facts, "2024-07-15T12:00:00Z");
    assert_eq!(
        results,
        [
            ("search-bar-survey-1-en-US-128".to_owned(), true, None),
            (
                "onboarding-2024".to_owned(),
                false,
                Some("killed".to_owned())
            ),
        ]
    );
}

/// The flight's verdict is the expression's: truthy flies, falsy is `filter-expression`, an
/// error is `filter-error: <message>`. The expected outcome is computed with the filter
/// language itself, with the same variables (`normandy`/`env`, `recipe.id` = studyname).
#[test]
fn filter_expression_outcomes_map_to_reasons() {
    let context: ClientContext = serde_json::from_value(client()).unwrap();
    let now = ts("2024-07-15T12:00:00Z");
    for source in [
        "normandy.channel == 'release'",
        "env.channel == 'beta'",
        "normandy.recipe.id == 's'",
        "normandy.locale in ['en-US', 'de']",
        "1|noSuchTransform",
    ] {
        let text = serde_json::json!([{
            "studyname": "s", "endBy": 2592000000u64, "filter": {"expression": source}
        }])
        .to_string();
        let got = reason(&text, client(), &facts(&[]), "2024-07-15T12:00:00Z");
        let environment = context.filter_environment(now);
        let recipe = Value::object(
            [(std::sync::Arc::from("id"), Value::string("s"))]
                .into_iter()
                .collect(),
        );
        let vars = filter_vars(&environment, Some(recipe));
        let expected = match crate::jexl::Expression::parse(source)
            .unwrap()
            .eval(&vars, &context.prefs)
        {
            Ok(v) if v.is_truthy() => None,
            Ok(_) => Some("filter-expression".to_owned()),
            Err(e) => Some(format!("filter-error: {}", e.message)),
        };
        assert_eq!(got, expected, "for {source}");
    }
}

#[test]
fn rejected_flights_get_an_invalid_reason_in_their_place() {
    let text = r#"[
  {"studyname": "broken", "endBy": "2024-09-01T00:00:00Z", "randomDeploy": {"keyname": "k", "ge": 0.5, "lt": 0.25}},
  {"studyname": "fine", "endBy": "2024-09-01T00:00:00Z"},
  {"endBy": 5}
]"#;
    let parsed = parse("flights.json", text);
    assert!(parsed.has_errors());
    let index = parsed.value.unwrap();
    let results = run(
        &index,
        &ClientContext::default(),
        &facts(&[]),
        "2024-07-15T12:00:00Z",
    );
    assert_eq!(
        results,
        [
            (
                "broken".to_owned(),
                false,
                Some("invalid: randomDeploy: `ge` must be less than `lt`".to_owned())
            ),
            ("fine".to_owned(), true, None),
            (
                "flights.json#2".to_owned(),
                false,
                Some("invalid: missing required field `studyname` (or `name`)".to_owned())
            ),
        ]
    );
}
