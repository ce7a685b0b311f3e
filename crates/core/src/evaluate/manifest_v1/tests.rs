use std::cell::RefCell;
use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::context::PrefEntry;
use crate::evaluate::JsFilter;
use crate::model::manifest_v1::{XpiHash, parse};

const ID: &str = "test-experiment";
const HASH: &str = "sha1:cb1eb32b89d86d78b7326f416cf404548c5e0099";
const DAY: i64 = 86_400;

fn ts(text: &str) -> jiff::Timestamp {
    text.parse().unwrap()
}

fn secs(text: &str) -> i64 {
    ts(text).as_second()
}

/// 2014-06-06 12:00 UTC, the "now" of the reference time tests.
fn now() -> jiff::Timestamp {
    ts("2014-06-06T12:00:00Z")
}

/// The test_conditions client: XPCShell on XPCShell, version 1.0, build 2014060601, nightly, en-US.
fn xpcshell() -> ClientContext {
    ClientContext {
        app_name: Some("XPCShell".into()),
        os: Some("XPCShell".into()),
        version: Some("1.0".into()),
        build_id: Some("2014060601".into()),
        channel: Some("nightly".into()),
        locale: Some("en-US".into()),
        ..ClientContext::default()
    }
}

/// Random value 0.5 for every id used in these tests.
fn facts() -> ClientFacts {
    let mut facts = ClientFacts::default();
    for id in [ID, "a", "b", "c", "E1", "E2", "E3", "E4"] {
        facts.random_values.insert(id.to_owned(), 0.5);
    }
    facts
}

/// A fake sandbox: the outcome is looked up by source text, and every context passed is recorded.
#[derive(Default)]
struct FakeJs {
    outcomes: BTreeMap<String, JsFilterOutcome>,
    seen: RefCell<Vec<(String, serde_json::Value)>>,
}

impl FakeJs {
    fn with(pairs: &[(&str, JsFilterOutcome)]) -> FakeJs {
        FakeJs {
            outcomes: pairs
                .iter()
                .map(|(source, outcome)| ((*source).to_owned(), outcome.clone()))
                .collect(),
            seen: RefCell::default(),
        }
    }
}

impl JsFilter for FakeJs {
    fn run(&self, source: &str, context: &serde_json::Value) -> JsFilterOutcome {
        self.seen
            .borrow_mut()
            .push((source.to_owned(), context.clone()));
        self.outcomes
            .get(source)
            .cloned()
            .unwrap_or_else(|| JsFilterOutcome::EvalFailed(format!("unknown source {source}")))
    }
}

/// The base entry of test_conditions with `overrides` applied, parsed from JSON text (so every
/// row also passes validation).
fn entry(overrides: serde_json::Value) -> ManifestExperiment {
    let mut entry = json!({
        "id": ID,
        "xpiURL": "https://example.com/test.xpi",
        "xpiHash": HASH,
        "startTime": secs("2010-01-01T00:00:00Z"),
        "endTime": secs("9001-01-01T00:00:00Z"),
        "maxActiveSeconds": DAY,
        "appName": ["XPCShell"],
        "channel": ["nightly"],
    });
    for (key, value) in overrides.as_object().unwrap() {
        if value.is_null() {
            entry.as_object_mut().unwrap().shift_remove(key);
        } else {
            entry[key] = value.clone();
        }
    }
    let text = serde_json::to_string(&json!({"version": 1, "experiments": [entry]})).unwrap();
    let parsed = parse("test.json", &text);
    assert!(!parsed.has_errors(), "{:?}", parsed.diagnostics);
    parsed.value.unwrap().experiments.remove(0)
}

fn manifest(experiments: Vec<ManifestExperiment>) -> Manifest {
    Manifest {
        version: Some(json!(1)),
        experiments,
        ..Manifest::default()
    }
}

/// Evaluates a one-entry manifest and returns its reason (`None` = matched).
fn outcome(
    experiment: ManifestExperiment,
    context: &ClientContext,
    facts: &ClientFacts,
    now: jiff::Timestamp,
    js: &dyn JsFilter,
) -> Option<String> {
    let input = EvalInput {
        context,
        facts,
        now,
        js_filter: js,
    };
    let [result] = &evaluate(&manifest(vec![experiment]), &input)[..] else {
        panic!("one result expected")
    };
    assert_eq!(result.id, ID);
    assert_eq!(result.kind, KIND);
    assert_eq!(result.branch, None);
    assert_eq!(result.matched, result.reason.is_none());
    assert_eq!(result.matched, result.value.is_some());
    result.reason.clone()
}

#[track_caller]
fn check_rows(field: &str, rows: &[(serde_json::Value, bool)]) {
    for (value, applicable) in rows {
        let e = entry(json!({ field: value }));
        let got = outcome(e, &xpcshell(), &facts(), now(), &FakeJs::default());
        let expected = (!applicable).then(|| field.to_owned());
        assert_eq!(got, expected, "{field} = {value}");
    }
}

// ---- Golden rows of seed-originals §1.3, condition table (test_conditions.js) ----

#[test]
fn golden_app_name() {
    check_rows(
        "appName",
        &[
            (json!([]), false),
            (json!(["foo", "XPCShell-invalid"]), false),
            (json!(["x", "XPCShell"]), true),
        ],
    );
}

#[test]
fn golden_os() {
    // The reference row is [42, "abcdef"]; validation rejects a non-string item (see the model
    // tests), so the number is written as a string here.
    check_rows(
        "os",
        &[
            (json!([]), false),
            (json!(["42", "abcdef"]), false),
            (json!(["XPCShell", "plan9"]), true),
        ],
    );
}

#[test]
fn golden_channel() {
    check_rows(
        "channel",
        &[
            (json!([]), false),
            (json!(["foo", "nightly-invalid"]), false),
            (json!(["x", "nightly"]), true),
        ],
    );
}

#[test]
fn golden_locale() {
    check_rows(
        "locale",
        &[
            (json!([]), false),
            (json!(["foo", "en-US-invalid"]), false),
            (json!(["x", "en-US"]), true),
        ],
    );
}

#[test]
fn golden_version_list() {
    check_rows(
        "version",
        &[
            (json!([]), false),
            (
                json!(["-1", "1.0-invalid", "asdf", "0,4", "99.99", "0.1.1.1"]),
                false,
            ),
            (json!(["99999999.999", "-1", "1.0"]), true),
        ],
    );
}

#[test]
fn golden_min_version() {
    check_rows(
        "minVersion",
        &[
            (json!("1.0.1"), false),
            (json!("1.0b1"), true),
            (json!("1.0"), true),
            (json!("0.9"), true),
        ],
    );
}

#[test]
fn golden_max_version() {
    check_rows(
        "maxVersion",
        &[
            (json!("0.1"), false),
            (json!("0.9.9"), false),
            (json!("1.0b1"), false),
            (json!("1.0"), true),
            (json!("1.7pre"), true),
        ],
    );
}

#[test]
fn golden_build_ids() {
    check_rows(
        "buildIDs",
        &[
            (json!([]), false),
            (json!(["x", "2014060601-invalid"]), false),
            (json!(["x", "2014060601"]), true),
        ],
    );
}

#[test]
fn golden_min_build_id() {
    check_rows(
        "minBuildID",
        &[
            (json!("2014060501"), true),
            (json!("2014060601"), true),
            (json!("2014060701"), false),
        ],
    );
}

#[test]
fn golden_max_build_id() {
    check_rows(
        "maxBuildID",
        &[
            (json!("2014010101"), false),
            (json!("2014060601"), true),
            (json!("2014060901"), true),
        ],
    );
}

#[test]
fn golden_sample() {
    check_rows(
        "sample",
        &[
            (json!(0.0), false),
            (json!(0.1), false),
            (json!(0.5), true),
            (json!(0.6), true),
            (json!(1.0), true),
        ],
    );
    // The reference row `sample: -1` does not pass validation; evaluate it built directly.
    let mut e = entry(json!({}));
    e.sample = Some(-1.0);
    let got = outcome(e, &xpcshell(), &facts(), now(), &FakeJs::default());
    assert_eq!(got.as_deref(), Some("sample"));
}

#[test]
fn golden_disabled_and_frozen() {
    check_rows("disabled", &[(json!(true), false), (json!(false), true)]);
    check_rows("frozen", &[(json!(true), false), (json!(false), true)]);
    // (frozen, disabled): disabled is checked first.
    let rows = [
        (true, true, Some("disabled")),
        (true, false, Some("frozen")),
        (false, true, Some("disabled")),
        (false, false, None),
    ];
    for (frozen, disabled, expected) in rows {
        let e = entry(json!({"frozen": frozen, "disabled": disabled}));
        let got = outcome(e, &xpcshell(), &facts(), now(), &FakeJs::default());
        assert_eq!(
            got.as_deref(),
            expected,
            "frozen={frozen} disabled={disabled}"
        );
    }
}

#[test]
fn golden_jsfilter() {
    let js = FakeJs::with(&[
        ("return true", JsFilterOutcome::Truthy),
        ("return 123", JsFilterOutcome::Truthy),
        ("return false", JsFilterOutcome::Falsy),
        ("return ''", JsFilterOutcome::Falsy),
        ("return undefined", JsFilterOutcome::Falsy),
        (
            "throw new Error('some error')",
            JsFilterOutcome::Threw("some error".into()),
        ),
        ("throw ''", JsFilterOutcome::Threw(String::new())),
        (
            "123, this won't work",
            JsFilterOutcome::EvalFailed("SyntaxError: unexpected token: identifier".into()),
        ),
    ]);
    let rows = [
        ("return true", None),
        ("return 123", None),
        ("return false", Some("jsfilter-false")),
        ("return ''", Some("jsfilter-false")),
        ("return undefined", Some("jsfilter-false")),
        (
            "throw new Error('some error')",
            Some("jsfilter-threw: some error"),
        ),
        ("throw ''", Some("jsfilter-threw")),
        ("123, this won't work", Some("jsfilter-evalfailed")),
    ];
    for (source, expected) in rows {
        let e = entry(json!({ "jsfilter": source }));
        let got = outcome(e, &xpcshell(), &facts(), now(), &js);
        assert_eq!(got.as_deref(), expected, "{source}");
    }
    // An empty filter is falsy in JavaScript, so the reference does not run it.
    let e = entry(json!({"jsfilter": ""}));
    assert_eq!(outcome(e, &xpcshell(), &facts(), now(), &js), None);
    assert_eq!(js.seen.borrow().len(), rows.len());
    // The filter runs last: an earlier failure wins and the sandbox is not called.
    let e = entry(json!({"jsfilter": "return true", "locale": []}));
    let got = outcome(e, &xpcshell(), &facts(), now(), &js);
    assert_eq!(got.as_deref(), Some("locale"));
    assert_eq!(js.seen.borrow().len(), rows.len());
}

// ---- Golden rows of seed-originals §1.3, times table (entry not started) ----

#[test]
fn golden_times() {
    let at = |days: i64| json!(now().as_second() + days * DAY);
    let none = serde_json::Value::Null;
    // (startTime, endTime, maxStartTime, maxActiveSeconds, expected reason)
    let rows = [
        (at(-5), at(10), none.clone(), none.clone(), None),
        (at(0), at(10), none.clone(), none.clone(), None),
        (at(5), at(10), none.clone(), none.clone(), Some("startTime")),
        (at(-5), at(-10), none.clone(), none.clone(), Some("endTime")),
        (at(-5), at(-5), none.clone(), none.clone(), Some("endTime")),
        (at(-10), at(10), at(-15), none.clone(), Some("maxStartTime")),
        (at(-10), at(10), at(-1), none.clone(), Some("maxStartTime")),
        (at(-10), at(10), at(-10), none.clone(), Some("maxStartTime")),
        (at(-10), at(10), at(0), none.clone(), None),
        (at(-10), at(10), at(1), none.clone(), None),
        (at(-10), at(10), none.clone(), json!(5 * DAY), None),
        (at(-10), at(10), none.clone(), json!(10 * DAY), None),
        (at(-10), at(10), none.clone(), json!(15 * DAY), None),
        (at(-10), at(10), none.clone(), json!(20 * DAY), None),
    ];
    for (start, end, max_start, max_active, expected) in rows {
        let e = entry(json!({
            "startTime": start, "endTime": end,
            "maxStartTime": max_start, "maxActiveSeconds": max_active,
        }));
        let got = outcome(e, &xpcshell(), &facts(), now(), &FakeJs::default());
        assert_eq!(
            got.as_deref(),
            expected,
            "start {start} end {end} maxStart {max_start} maxActive {max_active}"
        );
    }
}

fn started(facts: &mut ClientFacts, id: &str, start: jiff::Timestamp, active: bool, failed: bool) {
    facts.started_experiments.insert(
        id.to_owned(),
        StartedExperiment {
            start_time: start,
            active,
            failed_start: failed,
        },
    );
}

#[test]
fn started_experiments() {
    let js = FakeJs::default();
    let day = jiff::SignedDuration::from_hours(24);
    let five_days_ago = now().checked_sub(day * 5).unwrap();
    // (case, overrides, the client's record as (active, failed_start), expected reason)
    type Case<'a> = (
        &'a str,
        serde_json::Value,
        Option<(bool, bool)>,
        Option<&'a str>,
    );
    let cases: &[Case] = &[
        // Ended before: never again, even if everything else applies.
        ("ended", json!({}), Some((false, false)), Some("was-active")),
        (
            "ended and disabled",
            json!({"disabled": true}),
            Some((false, false)),
            Some("was-active"),
        ),
        (
            "failed install",
            json!({}),
            Some((false, true)),
            Some("failedStart"),
        ),
        (
            "failed while active",
            json!({}),
            Some((true, true)),
            Some("failedStart"),
        ),
        ("running", json!({}), Some((true, false)), None),
        // frozen blocks only new enrollments.
        (
            "running, frozen",
            json!({"frozen": true}),
            Some((true, false)),
            None,
        ),
        (
            "running, disabled",
            json!({"disabled": true}),
            Some((true, false)),
            Some("disabled"),
        ),
        // maxStartTime only stops new starts.
        (
            "running past maxStartTime",
            json!({"maxStartTime": now().as_second() - DAY}),
            Some((true, false)),
            None,
        ),
        // maxActiveSeconds counts from the client's start, inclusive.
        (
            "running 5 of 4 days",
            json!({"maxActiveSeconds": 4 * DAY}),
            Some((true, false)),
            Some("maxActiveSeconds"),
        ),
        (
            "running 5 of 5 days",
            json!({"maxActiveSeconds": 5 * DAY}),
            Some((true, false)),
            None,
        ),
        (
            "running 5 of 6 days",
            json!({"maxActiveSeconds": 6 * DAY}),
            Some((true, false)),
            None,
        ),
        (
            "running, no maxActiveSeconds",
            json!({"maxActiveSeconds": null}),
            Some((true, false)),
            None,
        ),
        (
            "running past endTime",
            json!({"endTime": now().as_second()}),
            Some((true, false)),
            Some("endTime"),
        ),
        (
            "running, os changed",
            json!({"os": ["Plan9"]}),
            Some((true, false)),
            Some("os"),
        ),
    ];
    for (name, overrides, record, expected) in cases {
        let mut facts = facts();
        if let Some((active, failed)) = record {
            started(&mut facts, ID, five_days_ago, *active, *failed);
        }
        // The base entry's one-day maxActiveSeconds would end every 5-day-old run.
        let mut fields = json!({"maxActiveSeconds": 30 * DAY});
        for (key, value) in overrides.as_object().unwrap() {
            fields[key] = value.clone();
        }
        let got = outcome(entry(fields), &xpcshell(), &facts, now(), &js);
        assert_eq!(got.as_deref(), *expected, "{name}");
    }
}

#[test]
fn absent_and_empty_conditions() {
    let js = FakeJs::default();
    // Only the required fields: every condition is absent and passes.
    let bare = ManifestExperiment::new(ID, "u", XpiHash::parse(HASH).unwrap());
    assert_eq!(
        outcome(
            bare.clone(),
            &ClientContext::default(),
            &ClientFacts::default(),
            now(),
            &js
        ),
        None
    );
    // Empty strings count as absent (JavaScript truthiness), as does maxStartTime 0.
    let e = entry(
        json!({"minVersion": "", "maxVersion": "", "minBuildID": "", "maxBuildID": "", "maxStartTime": 0}),
    );
    assert_eq!(outcome(e, &xpcshell(), &facts(), now(), &js), None);
    // A condition on something the context does not give fails.
    let rows: &[(serde_json::Value, &str)] = &[
        (json!({}), "appName"),
        (json!({"appName": null, "minBuildID": "1"}), "minBuildID"),
        (json!({"appName": null, "maxBuildID": "1"}), "maxBuildID"),
        (json!({"appName": null, "buildIDs": ["1"]}), "buildIDs"),
        (json!({"appName": null, "os": ["Linux"]}), "os"),
        (json!({"appName": null}), "channel"),
        (
            json!({"appName": null, "channel": null, "locale": ["en-US"]}),
            "locale",
        ),
        (
            json!({"appName": null, "channel": null, "version": ["1.0"]}),
            "version",
        ),
        (
            json!({"appName": null, "channel": null, "minVersion": "1"}),
            "minVersion",
        ),
        (
            json!({"appName": null, "channel": null, "maxVersion": "1"}),
            "maxVersion",
        ),
    ];
    for (overrides, expected) in rows {
        let got = outcome(
            entry(overrides.clone()),
            &ClientContext::default(),
            &facts(),
            now(),
            &js,
        );
        assert_eq!(got.as_deref(), Some(*expected), "{overrides}");
    }
}

#[test]
fn sample_needs_a_random_value() {
    let js = FakeJs::default();
    let e = entry(json!({"sample": 1.0}));
    let got = outcome(e.clone(), &xpcshell(), &ClientFacts::default(), now(), &js);
    assert_eq!(got.as_deref(), Some("sample"));
    // No sample: no random value needed.
    let got = outcome(
        entry(json!({})),
        &xpcshell(),
        &ClientFacts::default(),
        now(),
        &js,
    );
    assert_eq!(got, None);
    // The context's randomValues are used when the facts have none; the facts win.
    let mut context = xpcshell();
    context.random_values.insert(ID.into(), 0.9);
    let e = entry(json!({"sample": 0.5}));
    let got = outcome(e.clone(), &context, &ClientFacts::default(), now(), &js);
    assert_eq!(got.as_deref(), Some("sample"));
    assert_eq!(outcome(e, &context, &facts(), now(), &js), None);
}

#[test]
fn check_order_first_failure_wins() {
    // Everything fails; each step removes the failing condition and exposes the next one.
    let mut overrides = json!({
        "disabled": true, "frozen": true,
        "startTime": now().as_second() + DAY, "endTime": now().as_second() - DAY,
        "maxStartTime": now().as_second() - DAY,
        "appName": [], "minBuildID": "9", "maxBuildID": "0", "buildIDs": [], "os": [],
        "channel": [], "locale": [], "sample": 0.0, "version": [], "minVersion": "99",
        "maxVersion": "0", "jsfilter": "return false",
    });
    let order = [
        ("disabled", json!(false)),
        ("frozen", json!(false)),
        ("startTime", json!(0)),
        ("endTime", json!(null)),
        ("maxStartTime", json!(null)),
        ("appName", json!(null)),
        ("minBuildID", json!(null)),
        ("maxBuildID", json!(null)),
        ("buildIDs", json!(null)),
        ("os", json!(null)),
        ("channel", json!(null)),
        ("locale", json!(null)),
        ("sample", json!(null)),
        ("version", json!(null)),
        ("minVersion", json!(null)),
        ("maxVersion", json!(null)),
        ("jsfilter-false", json!(null)),
    ];
    let js = FakeJs::with(&[("return false", JsFilterOutcome::Falsy)]);
    for (reason, fix) in order {
        let got = outcome(entry(overrides.clone()), &xpcshell(), &facts(), now(), &js);
        assert_eq!(got.as_deref(), Some(reason));
        let key = reason.strip_suffix("-false").unwrap_or(reason);
        overrides[key] = fix;
    }
    assert_eq!(
        outcome(entry(overrides), &xpcshell(), &facts(), now(), &js),
        None
    );
}

// ---- Priority: at most one active experiment ----

fn results(
    manifest: &Manifest,
    facts: &ClientFacts,
    now: jiff::Timestamp,
) -> Vec<(String, bool, Option<String>)> {
    let context = xpcshell();
    let input = EvalInput {
        context: &context,
        facts,
        now,
        js_filter: &crate::evaluate::NoJsFilter,
    };
    evaluate(manifest, &input)
        .into_iter()
        .map(|r| (r.id, r.matched, r.reason))
        .collect()
}

fn named(id: &str, overrides: serde_json::Value) -> ManifestExperiment {
    let mut e = entry(overrides);
    e.id = id.to_owned();
    e.xpi_url = format!("https://example.com/{id}.xpi");
    e
}

fn row(id: &str, matched: bool, reason: Option<&str>) -> (String, bool, Option<String>) {
    (id.to_owned(), matched, reason.map(str::to_owned))
}

#[test]
fn first_applicable_in_manifest_order_wins() {
    let m = manifest(vec![
        named("a", json!({"os": []})),
        named("b", json!({})),
        named("c", json!({})),
    ]);
    assert_eq!(
        results(&m, &facts(), now()),
        [
            row("a", false, Some("os")),
            row("b", true, None),
            row("c", false, Some("priority"))
        ]
    );
    let context = xpcshell();
    let input = EvalInput {
        context: &context,
        facts: &facts(),
        now: now(),
        js_filter: &crate::evaluate::NoJsFilter,
    };
    let matched = &evaluate(&m, &input)[1];
    assert_eq!(
        matched.value,
        Some(json!({"xpiURL": "https://example.com/b.xpi", "xpiHash": HASH}))
    );
}

#[test]
fn the_running_experiment_keeps_its_slot() {
    let m = manifest(vec![
        named("a", json!({})),
        named("b", json!({})),
        named("c", json!({})),
    ]);
    let mut f = facts();
    started(&mut f, "c", now(), true, false);
    assert_eq!(
        results(&m, &f, now()),
        [
            row("a", false, Some("priority")),
            row("b", false, Some("priority")),
            row("c", true, None)
        ]
    );
    // Once it no longer applies, the first applicable one takes over.
    let m = manifest(vec![
        named("a", json!({})),
        named("b", json!({})),
        named("c", json!({"os": ["Plan9"]})),
    ]);
    assert_eq!(
        results(&m, &f, now()),
        [
            row("a", true, None),
            row("b", false, Some("priority")),
            row("c", false, Some("os"))
        ]
    );
    // Gone from the manifest (rule 2): it keeps running, nothing else starts.
    let m = manifest(vec![named("a", json!({})), named("b", json!({}))]);
    assert_eq!(
        results(&m, &f, now()),
        [
            row("a", false, Some("priority")),
            row("b", false, Some("priority"))
        ]
    );
    // An ended or failed experiment holds no slot.
    for (active, failed) in [(false, false), (true, true)] {
        let mut f = facts();
        started(&mut f, "gone", now(), active, failed);
        assert_eq!(
            results(&m, &f, now()),
            [row("a", true, None), row("b", false, Some("priority"))]
        );
    }
}

#[test]
fn duplicate_ids_in_a_built_model_match_once() {
    let m = manifest(vec![named("a", json!({})), named("a", json!({}))]);
    assert_eq!(
        results(&m, &facts(), now()),
        [row("a", true, None), row("a", false, Some("priority"))]
    );
}

// ---- Entries validation rejected ----

/// Parses a manifest from JSON text, keeping whatever validation rejects.
fn parsed_manifest(text: &str) -> Manifest {
    let parsed = parse("m.json", text);
    parsed.value.unwrap()
}

#[test]
fn rejected_entries_get_an_invalid_reason_in_their_place() {
    let text = format!(
        r#"{{"version": 1, "experiments": [
            {{"id": "bad-hash", "xpiURL": "https://x/1.xpi", "xpiHash": "md5:00",
              "appName": ["XPCShell"]}},
            {{"id": "a", "xpiURL": "https://x/a.xpi", "xpiHash": "{HASH}"}},
            {{"xpiURL": "https://x/2.xpi", "xpiHash": "{HASH}"}},
            {{"id": "b", "xpiURL": "https://x/b.xpi", "xpiHash": "{HASH}"}},
            {{"id": "a", "xpiURL": "https://x/a2.xpi", "xpiHash": "{HASH}"}}
        ]}}"#
    );
    let m = parsed_manifest(&text);
    assert_eq!(
        results(&m, &facts(), now()),
        [
            row(
                "bad-hash",
                false,
                Some(
                    "invalid: xpiHash: expected `sha1:<40 hex>` or `sha256:<64 hex>`: unsupported hash algorithm `md5`: use `sha1` or `sha256`"
                )
            ),
            // A rejected entry takes no part in priority: the first valid one wins.
            row("a", true, None),
            // No readable id: the file and the place in `experiments` name it.
            row(
                "m.json#2",
                false,
                Some("invalid: id: missing required field `id`")
            ),
            row("b", false, Some("priority")),
            row(
                "a",
                false,
                Some(
                    "invalid: id: duplicate experiment id `a`: this entry is rejected, the first one is kept"
                )
            ),
        ]
    );
    let context = xpcshell();
    let input = EvalInput {
        context: &context,
        facts: &facts(),
        now: now(),
        js_filter: &crate::evaluate::NoJsFilter,
    };
    for result in evaluate(&m, &input) {
        assert_eq!(result.kind, KIND);
        assert_eq!(result.branch, None);
        if result
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("invalid: "))
        {
            assert_eq!(result.value, None);
        }
    }
}

#[test]
fn rejected_entries_are_reported_whatever_the_manifest_version() {
    let text = format!(
        r#"{{"version": 2, "experiments": [
            {{"id": "a", "xpiURL": "https://x/a.xpi", "xpiHash": "{HASH}"}},
            {{"id": "bad", "xpiURL": "https://x/b.xpi", "xpiHash": "{HASH}", "sample": 2}}
        ]}}"#
    );
    assert_eq!(
        results(&parsed_manifest(&text), &facts(), now()),
        [
            row("a", false, Some("manifest-version")),
            row(
                "bad",
                false,
                Some("invalid: sample: `sample` must be between 0 and 1, got 2")
            ),
        ]
    );
}

#[test]
fn a_running_experiment_that_became_invalid_keeps_running() {
    // The client runs `c`; the new manifest has a broken `c`. As for an experiment missing
    // from the manifest (rule 2), it keeps running, so no other entry may start.
    let text = format!(
        r#"{{"version": 1, "experiments": [
            {{"id": "a", "xpiURL": "https://x/a.xpi", "xpiHash": "{HASH}"}},
            {{"id": "c", "xpiURL": "https://x/c.xpi", "xpiHash": "sha1:nope"}}
        ]}}"#
    );
    let mut f = facts();
    started(&mut f, "c", now(), true, false);
    assert_eq!(
        results(&parsed_manifest(&text), &f, now()),
        [
            row("a", false, Some("priority")),
            row(
                "c",
                false,
                Some(
                    "invalid: xpiHash: expected `sha1:<40 hex>` or `sha256:<64 hex>`: a sha1 digest must be 40 hex digits, got `nope`"
                )
            ),
        ]
    );
}

#[test]
fn rejected_entries_of_a_built_model_keep_their_places() {
    use crate::diagnostic::Position;
    use crate::model::RejectedItem;
    let rejected = |index: usize, id: Option<&str>| RejectedItem {
        id: id.map(str::to_owned),
        file: "built".to_owned(),
        index,
        position: Position::START,
        message: "broken".to_owned(),
    };
    // Out of order, and one place beyond the end: each lands where its index says.
    let mut m = manifest(vec![named("a", json!({})), named("b", json!({}))]);
    m.rejected = vec![rejected(7, None), rejected(0, Some("z")), rejected(2, None)];
    assert_eq!(
        results(&m, &facts(), now()),
        [
            row("z", false, Some("invalid: broken")),
            row("a", true, None),
            row("built#2", false, Some("invalid: broken")),
            row("b", false, Some("priority")),
            row("built#7", false, Some("invalid: broken")),
        ]
    );
}

#[test]
fn unsupported_manifest_version_is_ignored() {
    for version in [Some(json!(2)), Some(json!("1")), None] {
        let mut m = manifest(vec![named("a", json!({})), named("b", json!({}))]);
        m.version = version.clone();
        assert_eq!(
            results(&m, &facts(), now()),
            [
                row("a", false, Some("manifest-version")),
                row("b", false, Some("manifest-version"))
            ],
            "{version:?}"
        );
        assert_eq!(next_wake_up(&m, &facts(), now()), None);
    }
}

/// The lifecycle of test_telemetry.js, as evaluation results (the client runtime turns them
/// into the ACTIVATED / REJECTED / EXPIRED / RECHECK log entries).
#[test]
fn lifecycle_sequence() {
    let base = ts("2014-06-01T00:00:00Z");
    let day = jiff::SignedDuration::from_hours(24);
    let at = |days: i64| base.checked_add(day * days as i32).unwrap();
    let e = |id: &str, start: i64, end: i64| {
        named(
            id,
            json!({
                "startTime": at(start).as_second(), "endTime": at(end).as_second(),
                "maxActiveSeconds": 10 * DAY,
            }),
        )
    };
    let mut m = manifest(vec![e("E1", 50, 100), e("E2", 150, 200)]);
    let mut f = facts();

    assert_eq!(
        results(&m, &f, base),
        [
            row("E1", false, Some("startTime")),
            row("E2", false, Some("startTime"))
        ]
    );
    let e1_started = at(55);
    assert_eq!(
        results(&m, &f, e1_started),
        [row("E1", true, None), row("E2", false, Some("startTime"))]
    );
    started(&mut f, "E1", e1_started, true, false);
    let after_end = at(100)
        .checked_add(jiff::SignedDuration::from_secs(1))
        .unwrap();
    assert_eq!(
        results(&m, &f, after_end),
        [
            row("E1", false, Some("endTime")),
            row("E2", false, Some("startTime"))
        ]
    );
    let input_context = xpcshell();
    let input = EvalInput {
        context: &input_context,
        facts: &f,
        now: after_end,
        js_filter: &crate::evaluate::NoJsFilter,
    };
    assert!(check(&m.experiments[0], &input).unwrap_err().is_expiry());
    started(&mut f, "E1", e1_started, false, false);

    // E2 applies; its install fails (bad hash), so the client records a failed start.
    assert_eq!(
        results(&m, &f, at(150)),
        [row("E1", false, Some("was-active")), row("E2", true, None)]
    );
    started(&mut f, "E2", at(150), false, true);
    assert_eq!(
        results(&m, &f, at(151))[1],
        row("E2", false, Some("failedStart"))
    );
    // The hash is fixed and the client clears the failure: E2 starts.
    f.started_experiments.remove("E2");
    assert_eq!(results(&m, &f, at(151))[1], row("E2", true, None));
    started(&mut f, "E2", at(151), true, false);

    // E4 is running; its os changes: not applicable any more, and not an expiry.
    m.experiments.push(named("E4", json!({})));
    started(&mut f, "E2", at(151), false, false);
    started(&mut f, "E4", at(152), true, false);
    assert_eq!(results(&m, &f, at(152))[2], row("E4", true, None));
    m.experiments[2].os = Some(vec!["Plan9".into()]);
    assert_eq!(results(&m, &f, at(153))[2], row("E4", false, Some("os")));
    let input = EvalInput {
        context: &input_context,
        facts: &f,
        now: at(153),
        js_filter: &crate::evaluate::NoJsFilter,
    };
    assert!(!check(&m.experiments[2], &input).unwrap_err().is_expiry());
}

#[test]
fn rejection_names() {
    assert_eq!(
        Rejection::JsfilterThrew("boom".into()).to_string(),
        "jsfilter-threw: boom"
    );
    assert_eq!(
        Rejection::JsfilterThrew("boom".into()).name(),
        "jsfilter-threw"
    );
    assert_eq!(
        Rejection::JsfilterEvalFailed("SyntaxError".into()).reason(),
        "jsfilter-evalfailed"
    );
    assert_eq!(Rejection::MinBuildId.reason(), "minBuildID");
    assert_eq!(Rejection::BuildIds.reason(), "buildIDs");
    assert_eq!(Rejection::WasActive.reason(), "was-active");
}

#[test]
fn jsfilter_receives_the_context() {
    let mut context = xpcshell();
    context.telemetry = Some(json!({
        "main": {"environment": {"build": {"buildId": "2014060601"}}, "payload": {"info": {}}},
        "healthReport": {"version": 2},
    }));
    context.prefs.insert(
        HEALTH_REPORT_UPLOAD_PREF.to_owned(),
        PrefEntry {
            default: Some(PrefValue::Bool(false)),
            user: Some(PrefValue::Bool(true)),
        },
    );
    let expected = json!({
        "telemetryEnvironment": {"build": {"buildId": "2014060601"}},
        "telemetryPayload": {"environment": {"build": {"buildId": "2014060601"}}, "payload": {"info": {}}},
        "healthReportPayload": {"version": 2},
        "healthReportSubmissionEnabled": true,
    });
    assert_eq!(jsfilter_context(&context), expected);
    assert_eq!(
        jsfilter_context(&ClientContext::default()),
        json!({
            "telemetryEnvironment": {}, "telemetryPayload": {}, "healthReportPayload": {},
            "healthReportSubmissionEnabled": false,
        })
    );

    // evaluate passes it to the sandbox, built once for all filters.
    let js = FakeJs::with(&[("f", JsFilterOutcome::Truthy)]);
    let m = manifest(vec![
        named("a", json!({"jsfilter": "f"})),
        named("b", json!({"jsfilter": "f"})),
    ]);
    let f = facts();
    let input = EvalInput {
        context: &context,
        facts: &f,
        now: now(),
        js_filter: &js,
    };
    let ids: Vec<bool> = evaluate(&m, &input).iter().map(|r| r.matched).collect();
    assert_eq!(ids, [true, false]);
    let seen = js.seen.borrow();
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter()
            .all(|(source, ctx)| source == "f" && *ctx == expected)
    );
}

// ---- Scheduling ----

#[test]
fn next_wake_up_follows_the_reference_scheduler() {
    // test_api: E1 [base+50d, base+100d), E2 [base+150d, base+200d), maxActiveSeconds 10 days.
    let base = ts("2014-06-01T00:00:00Z");
    let day = jiff::SignedDuration::from_hours(24);
    let at = |days: i32| base.checked_add(day * days).unwrap();
    let e = |id: &str, start: i32, end: i32| {
        named(
            id,
            json!({
                "startTime": at(start).as_second(), "endTime": at(end).as_second(),
                "maxActiveSeconds": 10 * DAY,
            }),
        )
    };
    let m = manifest(vec![e("E1", 50, 100), e("E2", 150, 200)]);
    let mut f = facts();

    // Nothing started: the next start time.
    assert_eq!(next_wake_up(&m, &f, base), Some(at(50)));
    // E1 activated at start + 5 days: wake up 10 days (maxActiveSeconds) and one second later,
    // the first whole second at which the inclusive check fails (before endTime).
    started(&mut f, "E1", at(55), true, false);
    let one_second = jiff::SignedDuration::from_secs(1);
    assert_eq!(
        next_wake_up(&m, &f, at(55)),
        Some(at(65).checked_add(one_second).unwrap())
    );
    // With a short endTime, the end comes first.
    let mut short = m.clone();
    short.experiments[0].end_time = Some(at(60).as_second() as u64);
    assert_eq!(next_wake_up(&short, &f, at(55)), Some(at(60)));
    // After E1 ended (now = end + 1 s): E2's start.
    started(&mut f, "E1", at(55), false, false);
    let after = at(100)
        .checked_add(jiff::SignedDuration::from_secs(1))
        .unwrap();
    assert_eq!(next_wake_up(&m, &f, after), Some(at(150)));
    // A failed start waits for its start time like a pending one; times in the past are skipped.
    started(&mut f, "E2", at(150), false, true);
    assert_eq!(next_wake_up(&m, &f, at(149)), Some(at(150)));
    assert_eq!(next_wake_up(&m, &f, at(150)), None);
    // No times at all.
    let bare = manifest(vec![ManifestExperiment::new(
        "x",
        "u",
        XpiHash::parse(HASH).unwrap(),
    )]);
    assert_eq!(next_wake_up(&bare, &ClientFacts::default(), base), None);
}

#[test]
fn bundled_example() {
    let parsed = parse(
        "experiments.json",
        include_str!("../../../../../examples/manifest-v1/experiments.json"),
    );
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    let manifest = parsed.value.unwrap();
    let context =
        ClientContext::from_json(include_str!("../../../../../examples/context.json")).unwrap();
    let now = context.now().unwrap();
    let source = manifest.experiments[1].jsfilter.clone().unwrap();
    let js = FakeJs::with(&[(source.as_str(), JsFilterOutcome::Truthy)]);
    // The random values come from the context document's `randomValues`.
    let facts = ClientFacts::default();
    let input = EvalInput {
        context: &context,
        facts: &facts,
        now,
        js_filter: &js,
    };
    let got: Vec<(String, bool, Option<String>)> = evaluate(&manifest, &input)
        .into_iter()
        .map(|r| (r.id, r.matched, r.reason))
        .collect();
    assert_eq!(
        got,
        [
            row("5a0c9b9e-old-tab-experiment", false, Some("endTime")),
            row("d2a3f1e0-http3-rollout-study", true, None),
            row("frozen-legacy-study", false, Some("frozen")),
        ]
    );
    assert_eq!(
        js.seen.borrow()[0].1["telemetryEnvironment"],
        json!({"profile": {"creationDate": 18000}})
    );
    // Without a sandbox the filter cannot run.
    let input = EvalInput {
        js_filter: &crate::evaluate::NoJsFilter,
        ..input
    };
    assert_eq!(
        evaluate(&manifest, &input)[1].reason.as_deref(),
        Some("jsfilter-evalfailed")
    );
    // Every start time is past and nothing runs: no wake-up is scheduled.
    assert_eq!(next_wake_up(&manifest, &facts, now), None);
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn arb_list() -> impl Strategy<Value = Option<Vec<String>>> {
        prop::option::of(prop::collection::vec(
            prop_oneof![
                Just("XPCShell".to_owned()),
                Just("nightly".to_owned()),
                "[a-z0-9.]{0,4}"
            ],
            0..3,
        ))
    }

    fn arb_experiment() -> impl Strategy<Value = ManifestExperiment> {
        // Few ids, so that records and duplicates (which parse would reject) are common.
        let id = prop_oneof![Just("a"), Just("b"), Just("c"), Just("d")];
        let time = prop::option::of(prop_oneof![0..=MAX_TIME, Just(u64::MAX >> 11)]);
        let text = prop::option::of("[0-9a-z.*+]{0,6}");
        (
            (id, time.clone(), time.clone(), time.clone(), time),
            (arb_list(), arb_list(), arb_list(), arb_list()),
            (text.clone(), text.clone(), text.clone(), text),
            (
                prop::option::of(-1.0..2.0f64),
                prop::option::of(any::<bool>()),
                prop::option::of(any::<bool>()),
            ),
        )
            .prop_map(
                |(
                    (id, start, max_start, end, max_active),
                    (apps, os, channels, versions),
                    (min_v, max_v, min_b, max_b),
                    (sample, disabled, frozen),
                )| {
                    let mut e = ManifestExperiment::new(id, "u", XpiHash::parse(HASH).unwrap());
                    e.start_time = start;
                    e.max_start_time = max_start;
                    e.end_time = end;
                    e.max_active_seconds = max_active;
                    e.app_name = apps;
                    e.os = os;
                    e.channel = channels;
                    e.version = versions;
                    e.min_version = min_v;
                    e.max_version = max_v;
                    e.min_build_id = min_b;
                    e.max_build_id = max_b;
                    e.sample = sample;
                    e.disabled = disabled;
                    e.frozen = frozen;
                    e.jsfilter = disabled.map(|_| "f".to_owned());
                    e
                },
            )
    }

    /// Seconds up to the year 9999, jiff's limit.
    const MAX_TIME: u64 = 253_402_300_799;

    proptest! {
        #[test]
        fn evaluation_never_panics_and_matches_at_most_one(
            experiments in prop::collection::vec(arb_experiment(), 0..6),
            records in prop::collection::vec((prop_oneof![Just("a"), Just("b"), Just("z")], 0..MAX_TIME as i64, any::<bool>(), any::<bool>()), 0..3),
            now_secs in 0..MAX_TIME as i64,
            random in prop::option::of(0.0..1.0f64),
        ) {
            let m = manifest(experiments);
            let mut f = ClientFacts::default();
            for (id, start, active, failed) in records {
                started(&mut f, id, jiff::Timestamp::from_second(start).unwrap(), active, failed);
            }
            if let Some(value) = random {
                f.random_values.insert("a".into(), value);
            }
            let now = jiff::Timestamp::from_second(now_secs).unwrap();
            let js = FakeJs::with(&[("f", JsFilterOutcome::Threw("no".into()))]);
            let context = xpcshell();
            let input = EvalInput { context: &context, facts: &f, now, js_filter: &js };
            let results = evaluate(&m, &input);
            prop_assert_eq!(results.len(), m.experiments.len());
            prop_assert!(results.iter().filter(|r| r.matched).count() <= 1);
            if let Some(at) = next_wake_up(&m, &f, now) {
                prop_assert!(at > now);
            }
        }
    }
}
