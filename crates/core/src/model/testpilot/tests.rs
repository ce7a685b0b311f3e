use proptest::prelude::*;

use super::*;
use crate::diagnostic::Severity;

fn index(text: &str) -> FlightsIndex {
    let parsed = parse("flights.json", text);
    assert!(
        !parsed.has_errors(),
        "unexpected errors: {:#?}",
        parsed.diagnostics
    );
    parsed.value.unwrap()
}

fn one(text: &str) -> Flight {
    let mut idx = index(text);
    assert_eq!(idx.flights.len(), 1);
    idx.flights.remove(0)
}

/// Diagnostics as `line:col severity path: message`.
fn rendered(text: &str) -> Vec<String> {
    parse("f.json", text)
        .diagnostics
        .iter()
        .map(|d| {
            format!(
                "{}:{} {} {}: {}",
                d.position.line, d.position.column, d.severity, d.path, d.message
            )
        })
        .collect()
}

fn ts(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

fn assert_round_trip(text: &str) {
    let parsed = index(text);
    let json = to_json(&parsed);
    let back = index(&json);
    assert_eq!(back, parsed, "round trip changed the index:\n{json}");
    assert_eq!(to_json(&back), json);
}

#[test]
fn reference_golden_cases() {
    // Valid: {name, end: 30 days in ms}.
    let f = one(r#"[{"name": "a flight plan", "end": 2592000000}]"#);
    assert_eq!(f.studyname, "a flight plan");
    assert_eq!(f.end_by.deadline, Deadline::AfterFirstSeen(2_592_000_000.0));
    assert_eq!(f.spelling.studyname, KeyStyle::Reference);
    assert_eq!(f.spelling.end_by, KeyStyle::Reference);
    // Valid: {name, end: "11 March 2020"} (what JavaScript's Date parses; read as UTC).
    let f = one(r#"[{"name": "a flight plan", "end": "11 March 2020"}]"#);
    assert_eq!(f.end_by.deadline, Deadline::At(ts("2020-03-11T00:00:00Z")));
    // Invalid: name not a string (and no end); name without end.
    assert_eq!(
        rendered(r#"[{"name": 1}]"#),
        [
            "1:11 error [0].name: expected a string, found a number",
            "1:2 error [0]: missing required field `endBy` (or `end`): every flight must say when it ends",
        ]
    );
    assert_eq!(
        rendered(r#"[{"name": "a"}]"#),
        [
            "1:2 error [0]: missing required field `endBy` (or `end`): every flight must say when it ends"
        ]
    );
    // Invalid flights are left out; the index is still there.
    let parsed = parse("f.json", r#"[{"name": "a"}, {"name": "b", "end": 1}]"#);
    let value = parsed.value.unwrap();
    assert_eq!(value.flights.len(), 1);
    assert_eq!(value.flights[0].studyname, "b");
}

/// The reference repository's `example_studies/example.json`, in the reference spelling.
const REFERENCE_EXAMPLE: &str = r#"{"flights": [
  {"name": "trivial example", "end": 86400000, "flightplan": [
    {"action": "wait", "time": 1000},
    {"action": "ask", "type": "warn"}
  ]},
  {"name": "waitforever", "end": 86400000, "flightplan": [
    {"action": "wait", "time": 1e21}
  ]},
  {"name": "ui runthrough", "end": 86400000, "specversion": 1, "stopflight": false,
   "randomsubset": {"key": "ui", "range": [0, 0.25]},
   "filter": {"os": ["WINNT", "Darwin"], "locale": ["en-US"]},
   "flightplan": [
    {"action": "log", "msg": "starting {{studyname}}"},
    {"action": "ask", "type": "warn"},
    {"action": "ask", "type": "survey"},
    {"action": "emitevent", "topic": "tp-done", "subject": "{{personid}}", "data": {"n": 1}},
    {"action": "log", "msg": "done"}
  ]}
]}"#;

#[test]
fn reference_example_file_parses() {
    let idx = index(REFERENCE_EXAMPLE);
    assert_eq!(idx.shape, IndexShape::Object);
    assert_eq!(idx.flights.len(), 3);
    let plan = idx.flights[0].flightplan.as_ref().unwrap();
    assert_eq!(
        plan.steps[0],
        PlanStep::Single(Directive::Wait(Wait::For {
            ms: 1000.0,
            reference_key: true
        }))
    );
    assert_eq!(
        plan.steps[1],
        PlanStep::Single(Directive::Ui {
            action: UiAction::Ask,
            spec: UiDirective {
                kind: Some(UiKind::Warn),
                ..UiDirective::default()
            }
        })
    );
    let third = &idx.flights[2];
    assert_eq!(third.version, Some(SpecVersion::Number(1.0)));
    assert_eq!(third.kill, Some(false));
    assert_eq!(
        third.random_deploy,
        Some(RandomDeploy {
            keyname: "ui".into(),
            ge: 0.0,
            lt: 0.25,
            form: KeyStyle::Reference
        })
    );
    let filter = third.filter.as_ref().unwrap();
    assert_eq!(filter.oses.as_ref().unwrap().style, KeyStyle::Reference);
    assert_eq!(filter.locales.as_ref().unwrap().values, ["en-US"]);
    assert_round_trip(REFERENCE_EXAMPLE);
}

#[test]
fn bundled_example_parses_and_round_trips() {
    let text = include_str!("../../../../../examples/testpilot/flights.json");
    let idx = index(text);
    assert_eq!(idx.flights.len(), 2);
    let first = &idx.flights[0];
    assert_eq!(first.spelling, Spelling::default());
    assert_eq!(
        first.end_by.deadline,
        Deadline::At(ts("2024-09-01T00:00:00Z"))
    );
    let plan = first.flightplan.as_ref().unwrap();
    assert_eq!(plan.steps.len(), 6);
    let PlanStep::Parallel(parallel) = &plan.steps[3] else {
        panic!("expected a parallel step")
    };
    assert_eq!(parallel.len(), 2);
    let PlanStep::Single(Directive::Ping(ping)) = &plan.steps[1] else {
        panic!("expected a ping")
    };
    assert_eq!(ping.url.variables(), ["studyname", "os"]);
    assert_eq!(ping.method, Some(HttpMethod::Post));
    assert!(idx.flights[1].is_killed());
    assert_round_trip(text);
}

#[test]
fn document_spelling_round_trips() {
    assert_round_trip(
        r#"[{"studyname": "s", "author": "a", "description": "d", "infourl": "https://x",
            "version": "1.2", "endBy": 1700000000000, "kill": true,
            "filter": {"channels": ["beta"], "versions": ["128.0"], "expression": "normandy.channel == 'beta'"},
            "randomDeploy": {"keyname": "k", "ge": 0.1, "lt": 0.6},
            "flightplan": [{"action": "wait", "until": "2024-01-01"}, {"action": "wait", "until": 1700000000000},
                           {"action": "addon", "do": "ensure", "id": "x@y", "path": "/tmp/x.xpi", "permission": "warn", "msg": "hi"},
                           {"action": "addon", "do": "uninstall", "id": "x@y"},
                           {"action": "ui", "type": "message", "title": "T", "text": "{{ locale }}", "waitFor": "ok"},
                           {"action": "observe", "subject": "s"}, {"action": "notify", "topic": "t", "data": "{{os}}"},
                           {"action": "status", "msg": "m"}, {"action": "message", "msg": "m"},
                           {"action": "copilot", "studyid": "x", "options": {"a": [1, 2]}},
                           {"action": "ping", "url": "https://x/{{{channel}}}", "data": {"a": 1}}, []]}]"#,
    );
}

#[test]
fn end_by_forms() {
    let cases: &[(&str, Deadline)] = &[
        ("2592000000", Deadline::AfterFirstSeen(2_592_000_000.0)),
        ("99999999999", Deadline::AfterFirstSeen(99_999_999_999.0)),
        (
            "100000000000",
            Deadline::At(jiff::Timestamp::from_millisecond(100_000_000_000).unwrap()),
        ),
        (
            "1720000000000",
            Deadline::At(jiff::Timestamp::from_millisecond(1_720_000_000_000).unwrap()),
        ),
        (
            r#""2012-04-23T18:25:43.511Z""#,
            Deadline::At(ts("2012-04-23T18:25:43.511Z")),
        ),
        (
            r#""2012-04-23T20:25:43+02:00""#,
            Deadline::At(ts("2012-04-23T18:25:43Z")),
        ),
        (r#""2020-03-11""#, Deadline::At(ts("2020-03-11T00:00:00Z"))),
        (
            r#""2020-03-11T10:30""#,
            Deadline::At(ts("2020-03-11T10:30:00Z")),
        ),
        (
            r#""March 11, 2020""#,
            Deadline::At(ts("2020-03-11T00:00:00Z")),
        ),
        (r#""Mar 11 2020""#, Deadline::At(ts("2020-03-11T00:00:00Z"))),
        (
            r#""Wed, 11 Mar 2020 10:00:00 GMT""#,
            Deadline::At(ts("2020-03-11T10:00:00Z")),
        ),
        (
            r#""Wednesday 11 March 2020 10:00""#,
            Deadline::At(ts("2020-03-11T10:00:00Z")),
        ),
        (r#"{"value": 5000}"#, Deadline::AfterFirstSeen(5000.0)),
    ];
    for (json, expected) in cases {
        let f = one(&format!(r#"[{{"studyname": "s", "endBy": {json}}}]"#));
        assert_eq!(f.end_by.deadline, *expected, "for {json}");
    }
    for bad in [
        "0",
        "-5",
        "1e300",
        r#""soon""#,
        r#""31 February 2020""#,
        r#""11 Smarch 2020""#,
        "true",
        r#"{"value": -1}"#,
        "[1]",
    ] {
        let parsed = parse(
            "f.json",
            &format!(r#"[{{"studyname": "s", "endBy": {bad}}}]"#),
        );
        assert!(parsed.has_errors(), "{bad} should be rejected");
        assert_eq!(parsed.diagnostics[0].path.to_string(), "[0].endBy");
        assert!(parsed.value.unwrap().flights.is_empty());
    }
}

#[test]
fn errors_name_line_column_and_path() {
    let cases: &[(&str, &[&str])] = &[
        (
            "[1,",
            &["1:3 error (root): invalid JSON: EOF while parsing a value"],
        ),
        (
            "\"x\"",
            &[
                "1:1 error (root): expected a list of flights or {\"flights\": [...]}, found a string",
            ],
        ),
        (
            "{\"other\": 1}",
            &[
                "1:11 warning other: unknown key `other` is ignored",
                "1:1 error (root): missing `flights`",
            ],
        ),
        (
            "[{\"studyname\": \"s\", \"name\": \"t\", \"end\": 5}]",
            &["1:29 error [0].name: give either `studyname` or `name`, not both"],
        ),
        (
            "[{\"studyname\": \"s\", \"endBy\": 5, \"end\": 6}]",
            &["1:40 error [0].end: give either `endBy` or `end`, not both"],
        ),
        (
            "[{\"studyname\": \"s\", \"endBy\": 5, \"colour\": 6}]",
            &["1:43 warning [0].colour: unknown key `colour` is ignored"],
        ),
        (
            "[{\"studyname\": \"s\", \"endBy\": 5},\n {\"studyname\": \"s\", \"endBy\": 6}]",
            &["2:16 error [1].studyname: flight `s` is defined twice; this one is ignored"],
        ),
        (
            "[{\"studyname\": \"s\", \"endBy\": 5, \"randomDeploy\": {\"keyname\": \"k\", \"ge\": 0.5, \"lt\": 0.5}}]",
            &["1:49 error [0].randomDeploy: `ge` must be less than `lt`"],
        ),
        (
            "[{\"studyname\": \"s\", \"endBy\": 5, \"randomDeploy\": {\"keyname\": \"k\", \"ge\": 1, \"lt\": 1}}]",
            &["1:72 error [0].randomDeploy.ge: `ge` must be a number in [0, 1)"],
        ),
        (
            "[{\"studyname\": \"s\", \"endBy\": 5, \"randomsubset\": {\"key\": \"k\", \"range\": [0.5, 1.5]}}]",
            &["1:71 error [0].randomsubset.range: range must be two numbers with 0 ≤ lo < hi ≤ 1"],
        ),
        (
            "[{\"studyname\": \"s\", \"endBy\": 5, \"randomDeploy\": {\"key\": \"k\", \"ge\": 0}}]",
            &[
                "1:49 error [0].randomDeploy: use either {keyname, ge, lt} or {key, range: [lo, hi]}, not a mix",
            ],
        ),
        (
            "[{\"studyname\": \"s\", \"endBy\": 5, \"filter\": {\"channels\": [\"a\"], \"channel\": [\"b\"]}}]",
            &["1:74 error [0].filter.channel: give either `channels` or `channel`, not both"],
        ),
        (
            "[{\"studyname\": \"s\", \"endBy\": 5, \"filter\": {\"oses\": \"Linux\"}}]",
            &["1:52 error [0].filter.oses: expected a list of strings, found a string"],
        ),
        (
            "[{\"studyname\": \"s\", \"endBy\": 5, \"filter\": {\"locales\": [], \"addon\": [\"x\"]}}]",
            &[
                "1:68 warning [0].filter.addon: unknown key `addon` is ignored",
                "1:55 warning [0].filter.locales: an empty list matches no client",
            ],
        ),
        (
            "[{\"studyname\": \"s\", \"endBy\": 5, \"flightplan\": [{\"action\": \"fly\"}]}]",
            &["1:59 error [0].flightplan[0].action: unknown action `fly`"],
        ),
        (
            "[{\"studyname\": \"s\", \"endBy\": 5, \"flightplan\": [{\"action\": \"wait\"}]}]",
            &[
                "1:48 error [0].flightplan[0]: wait needs exactly one of `until` (a time) and `for` (milliseconds)",
            ],
        ),
        (
            "[{\"studyname\": \"s\", \"endBy\": 5, \"flightplan\": [{\"action\": \"ping\", \"url\": \"https://x/{{os\"}]}]",
            &["1:74 error [0].flightplan[0].url: unclosed template placeholder `{{os`"],
        ),
        (
            "[{\"studyname\": \"s\", \"endBy\": 5, \"flightplan\": [{\"action\": \"ping\", \"url\": \"https://x/{{shoe_size}}\"}]}]",
            &["1:74 warning [0].flightplan[0].url: unknown template variable `{{shoe_size}}`"],
        ),
        (
            "[{\"studyname\": \"s\", \"endBy\": 5, \"flightplan\": [{\"action\": \"ping\", \"url\": \"u\", \"method\": \"get\"}]}]",
            &["1:89 error [0].flightplan[0].method: method must be GET, POST or PUT"],
        ),
        (
            "[{\"studyname\": \"s\", \"endBy\": 5, \"flightplan\": [[{\"action\": \"observe\"}, [{\"action\": \"log\", \"msg\": \"m\"}]]]}]",
            &[
                "1:49 error [0].flightplan[0][0]: observe needs a `topic`, a `subject` or both",
                "1:72 error [0].flightplan[0][1]: parallel steps cannot be nested",
            ],
        ),
        (
            "[{\"studyname\": \"s\", \"endBy\": 5, \"flightplan\": [{\"action\": \"addon\", \"do\": \"uninstall\"}]}]",
            &["1:48 error [0].flightplan[0]: `do: uninstall` needs the add-on `id`"],
        ),
        (
            "[{\"studyname\": \"s\", \"endBy\": 5, \"flightplan\": [{\"action\": \"addon\", \"id\": \"a\"}]}]",
            &["1:48 error [0].flightplan[0]: installing an add-on needs a `url` or a `path`"],
        ),
        (
            "[{\"studyname\": \"s\", \"endBy\": 5, \"flightplan\": [{\"action\": \"notify\", \"data\": 1}]}]",
            &["1:48 error [0].flightplan[0]: missing required field `topic`"],
        ),
        (
            "[{\"studyname\": \"s\", \"endBy\": 5, \"flightplan\": [{\"action\": \"log\", \"msg\": \"m\", \"level\": 3}]}]",
            &[
                "1:87 warning [0].flightplan[0].level: unknown key `level` for action `log` is ignored",
            ],
        ),
        (
            "[{\"studyname\": \"s\", \"endBy\": 5, \"specversion\": \"1\"}]",
            &["1:48 error [0].specversion: expected a number > 0, found a string"],
        ),
    ];
    let mut failures = Vec::new();
    for (text, expected) in cases {
        let got = rendered(text);
        let ok = got.len() == expected.len()
            && got
                .iter()
                .zip(expected.iter())
                .all(|(g, e)| g.starts_with(e));
        if !ok {
            failures.push(format!("for {text}:\n got {got:#?}\nwant {expected:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn warnings_keep_the_flight() {
    let parsed = parse(
        "f.json",
        r#"[{"studyname": "s", "endBy": 5, "flightplan": [{"action": "ping", "url": "{{shoe}}"}]}]"#,
    );
    assert!(!parsed.has_errors());
    assert_eq!(parsed.diagnostics[0].severity, Severity::Warning);
    assert_eq!(parsed.value.unwrap().flights.len(), 1);
}

#[test]
fn rejected_flights_are_recorded_in_place() {
    let text = r#"{"flights": [
  {"studyname": "ok", "endBy": 5},
  {"name": "both", "endBy": 5, "kill": true, "stopflight": false},
  {"endBy": "whenever"},
  {"studyname": "ok", "endBy": 6},
  7
]}"#;
    let parsed = parse("f.json", text);
    let idx = parsed.value.unwrap();
    assert_eq!(idx.flights.len(), 1);
    let rejected: Vec<(Option<&str>, usize, String, &str)> = idx
        .rejected
        .iter()
        .map(|r| {
            assert_eq!(r.file, "f.json");
            (
                r.id.as_deref(),
                r.index,
                format!("{}:{}", r.position.line, r.position.column),
                r.message.as_str(),
            )
        })
        .collect();
    assert_eq!(
        rejected,
        [
            (
                Some("both"),
                1,
                "3:3".to_owned(),
                "stopflight: give either `kill` or `stopflight`, not both"
            ),
            // The first error in source order, not in check order.
            (
                None,
                2,
                "4:3".to_owned(),
                "missing required field `studyname` (or `name`)"
            ),
            (
                Some("ok"),
                3,
                "5:3".to_owned(),
                "studyname: flight `ok` is defined twice; this one is ignored"
            ),
            (
                None,
                4,
                "6:3".to_owned(),
                "expected a flight (an object), found a number"
            ),
        ]
    );
    // Rejected flights are not written back.
    assert!(!to_json(&idx).contains("both"));
}

#[test]
fn templates_render_like_mustache() {
    let vars: std::collections::BTreeMap<String, String> = [("os", "Linux"), ("locale", "de")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(
        render_template("a/{{os}}/{{ locale }}/{{{os}}}/{{missing}}!", &vars),
        "a/Linux/de/Linux/!"
    );
    assert_eq!(
        render_template("no {{ placeholders", &vars),
        "no {{ placeholders"
    );
    assert_eq!(render_template("}} {x} {{", &vars), "}} {x} {{");
    assert_eq!(
        Template("{{a}}{{b}}x{{a}}".into()).variables(),
        ["a", "b", "a"]
    );
    assert!(parse::template_parts("{{}}").is_err());
    assert!(parse::template_parts("{{a b}}").is_err());
    assert_eq!(parse::template_parts("").unwrap(), []);
}

#[test]
fn date_strings() {
    assert_eq!(
        parse_date_string("11 March 2020"),
        Some(ts("2020-03-11T00:00:00Z"))
    );
    assert_eq!(
        parse_date_string("sept 1 2021"),
        Some(ts("2021-09-01T00:00:00Z"))
    );
    assert_eq!(parse_date_string("1 ma 2021"), None);
    assert_eq!(parse_date_string("11 March 20"), None);
    assert_eq!(parse_date_string("11 March 2020 25:00"), None);
    assert_eq!(parse_date_string(""), None);
    assert_eq!(
        parse_deadline(&serde_json::json!(2592000000u64)),
        Ok(Deadline::AfterFirstSeen(2_592_000_000.0))
    );
}

proptest! {
    #[test]
    fn parser_never_panics_on_arbitrary_text(text in "\\PC{0,400}") {
        let _ = parse("p.json", &text);
    }

    #[test]
    fn parser_never_panics_on_json_like_text(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("["), Just("]"), Just("{"), Just("}"), Just(","), Just(":"),
                Just("\"studyname\""), Just("\"name\""), Just("\"endBy\""), Just("\"end\""),
                Just("\"flightplan\""), Just("\"action\""), Just("\"wait\""), Just("\"ping\""),
                Just("\"until\""), Just("\"for\""), Just("\"url\""), Just("\"{{os}}\""), Just("\"{{\""),
                Just("\"randomDeploy\""), Just("\"range\""), Just("\"filter\""), Just("\"channels\""),
                Just("1e21"), Just("-1"), Just("0.5"), Just("2592000000"), Just("\"11 March 2020\""),
                Just("null"), Just("true"), Just("\"addon\""), Just("\"do\""), Just("\"observe\""),
            ],
            0..60,
        )
    ) {
        let text: String = parts.concat();
        if let Some(mut idx) = parse("p.json", &text).value {
            let json = to_json(&idx);
            let back = parse("p.json", &json);
            prop_assert!(!back.has_errors(), "{json}: {:?}", back.diagnostics);
            // Rejected flights are not written back.
            idx.rejected.clear();
            prop_assert_eq!(back.value, Some(idx));
        }
    }
}
