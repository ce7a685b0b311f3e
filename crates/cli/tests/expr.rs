//! `flightdeck expr`: one expression from the command line, or JSON Lines from standard input.

mod common;

use common::{
    assert_lines, data_dir, flightdeck, flightdeck_in, flightdeck_in_with_stdin, workspace_root,
};

#[test]
fn one_shot_without_context() {
    let run = flightdeck(&["expr", "[1, 2] intersect [2, 3]"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_lines(&run.stdout, &[r#"{"value":[2]}"#]);
    assert_eq!(run.stderr, "");
}

#[test]
fn one_shot_undefined_is_not_an_error() {
    // Without a context document the environment has no `channel`.
    let run = flightdeck(&["expr", "normandy.channel"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_lines(&run.stdout, &[r#"{"undefined":true}"#]);
}

#[test]
fn one_shot_with_context() {
    // The README's example.
    let run = flightdeck(&[
        "expr",
        "--context",
        "examples/context.json",
        "normandy.channel == 'release' && normandy.version|versionCompare('120') >= 0",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_lines(&run.stdout, &[r#"{"value":true}"#]);

    // Preferences, `env` as an alias of `normandy`, the derived `os` object and the fixed `now`.
    for (expression, expected) in [
        (
            "'browser.search.suggest.enabled'|preferenceValue",
            r#"{"value":false}"#,
        ),
        (
            "'browser.search.suggest.enabled'|preferenceIsUserSet",
            r#"{"value":true}"#,
        ),
        ("'media.autoplay.default'|preferenceValue", r#"{"value":1}"#),
        ("'no.such.pref'|preferenceExists", r#"{"value":false}"#),
        (
            "env.locale + '/' + normandy.country",
            r#"{"value":"en-US/US"}"#,
        ),
        (
            "[normandy.os.isLinux, normandy.os.isWindows]",
            r#"{"value":[true,false]}"#,
        ),
        (
            "normandy.request_time",
            r#"{"value":"2024-07-15T12:00:00.000Z"}"#,
        ),
        (
            "normandy.addons|keys",
            r#"{"value":["uBlock0@raymondhill.net"]}"#,
        ),
    ] {
        let result = flightdeck(&["expr", "--context", "examples/context.json", expression]);
        assert_eq!(result.code, 0, "{expression}: {result:?}");
        assert_lines(&result.stdout, &[expected]);
    }
}

#[test]
fn one_shot_parse_error_exits_1() {
    let run = flightdeck(&["expr", "1 +"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_lines(
        &run.stdout,
        &[r#"{"error":"parse error at offset 3: unexpected end of expression"}"#],
    );
}

#[test]
fn one_shot_evaluation_error_exits_1() {
    let run = flightdeck(&["expr", "'a'|stableSample(2)"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_lines(
        &run.stdout,
        &[r#"{"error":"stableSample: frac must be between 0 and 1 inclusive (got 2)"}"#],
    );
}

#[test]
fn one_shot_bad_context_document_exits_2() {
    let dir = data_dir().join("validate");
    let run = common::flightdeck_in(
        &dir,
        &["expr", "--context", "context-unknown-key.json", "1"],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .starts_with("flightdeck: context-unknown-key.json:3:10: unknown field `colour`, expected one of `userId`"),
        "{run:?}"
    );
}

#[test]
fn one_shot_missing_context_file_exits_2() {
    let run = flightdeck(&["expr", "--context", "no-such-context.json", "1"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .starts_with("flightdeck: cannot read no-such-context.json: "),
        "{run:?}"
    );
}

/// Each case: one request line and the exact line it must produce.
const JSONL_CASES: &[(&str, &str)] = &[
    // Values, as `JSON.stringify` prints them.
    (
        r#"{"expr": "[1, 2] intersect [2, 3]", "context": {}}"#,
        r#"{"value":[2]}"#,
    ),
    (
        r#"{"expr": "{a: 1, b: [null, 'x', 1.5]}", "context": {}}"#,
        r#"{"value":{"a":1,"b":[null,"x",1.5]}}"#,
    ),
    (r#"{"expr": "1 / 0"}"#, r#"{"value":null}"#),
    (r#"{"expr": "'1' == 1"}"#, r#"{"value":true}"#),
    (r#"{"expr": "'1' + 1"}"#, r#"{"value":"11"}"#),
    (
        r#"{"expr": "0.1 + 0.2"}"#,
        r#"{"value":0.30000000000000004}"#,
    ),
    // Undefined is a result of its own, not null.
    (
        r#"{"expr": "normandy.nothingHere", "context": {}}"#,
        r#"{"undefined":true}"#,
    ),
    // Dates print as ISO strings; `now` may be epoch seconds.
    (
        r#"{"expr": "normandy.request_time", "context": {"now": 0}}"#,
        r#"{"value":"1970-01-01T00:00:00.000Z"}"#,
    ),
    (
        r#"{"expr": "'2024-07-15'|date < normandy.request_time", "context": {"now": "2024-07-16T00:00:00Z"}}"#,
        r#"{"value":true}"#,
    ),
    // Golden sampling vectors (normandy-nimbus.md §2.5).
    (
        r#"{"expr": "['test']|stableSample(1)"}"#,
        r#"{"value":true}"#,
    ),
    (
        r#"{"expr": "['test']|stableSample(0)"}"#,
        r#"{"value":false}"#,
    ),
    (
        r#"{"expr": "['test-1']|stableSample(0.5)"}"#,
        r#"{"value":true}"#,
    ),
    (
        r#"{"expr": "['test-4']|stableSample(0.5)"}"#,
        r#"{"value":false}"#,
    ),
    (
        r#"{"expr": "'test-0'|stableSample(0.5)"}"#,
        r#"{"value":true}"#,
    ),
    (
        r#"{"expr": "'test-1'|stableSample(0.5)"}"#,
        r#"{"value":false}"#,
    ),
    (
        r#"{"expr": "['test-1']|bucketSample(0, 5, 10)"}"#,
        r#"{"value":true}"#,
    ),
    (
        r#"{"expr": "['test-4']|bucketSample(0, 5, 10)"}"#,
        r#"{"value":false}"#,
    ),
    (
        r#"{"expr": "['global-v4', normandy.userId]|bucketSample(0, 5000, 10000)", "context": {"userId": "299eed1e-be6d-457d-9e53-da7b1a03f10d"}}"#,
        r#"{"value":true}"#,
    ),
    (
        r#"{"expr": "['global-v4', normandy.userId]|bucketSample(5000, 5000, 10000)", "context": {"userId": "299eed1e-be6d-457d-9e53-da7b1a03f10d"}}"#,
        r#"{"value":false}"#,
    ),
    // Transform chains.
    (
        r#"{"expr": "normandy.addons|keys|length", "context": {"addons": {"a@x": {"id": "a@x"}, "b@x": {"id": "b@x"}}}}"#,
        r#"{"value":2}"#,
    ),
    (
        r#"{"expr": "normandy.addons|values|mapToProperty('id')", "context": {"addons": {"a@x": {"id": "a@x"}, "b@x": {"id": "b@x"}}}}"#,
        r#"{"value":["a@x","b@x"]}"#,
    ),
    (
        r#"{"expr": "'abc'|regExpMatch('b(c)')"}"#,
        r#"{"value":["bc","c"]}"#,
    ),
    (
        r#"{"expr": "normandy.version|versionCompare('120') >= 0 && normandy.channel in ['release', 'beta']", "context": {"version": "128.0.1", "channel": "release"}}"#,
        r#"{"value":true}"#,
    ),
    // Preferences from the context: the user value wins over the default.
    (
        r#"{"expr": "'x.y'|preferenceValue", "context": {"prefs": {"x.y": {"default": true, "user": false}}}}"#,
        r#"{"value":false}"#,
    ),
    (
        r#"{"expr": "'x.y'|preferenceIsUserSet", "context": {"prefs": {"x.y": {"default": true, "user": false}}}}"#,
        r#"{"value":true}"#,
    ),
    (
        r#"{"expr": "'x.y'|preferenceExists", "context": {"prefs": {"x.y": {"default": 3}}}}"#,
        r#"{"value":true}"#,
    ),
    (
        r#"{"expr": "'x.y'|preferenceValue('fallback')"}"#,
        r#"{"value":"fallback"}"#,
    ),
    // Errors: parse, evaluation, unknown transform.
    (
        r#"{"expr": "1 +", "context": {}}"#,
        r#"{"error":"parse error at offset 3: unexpected end of expression"}"#,
    ),
    (
        r#"{"expr": "'a'|stableSample(2)"}"#,
        r#"{"error":"stableSample: frac must be between 0 and 1 inclusive (got 2)"}"#,
    ),
    (
        r#"{"expr": "'abc'|bogusTransform"}"#,
        r#"{"error":"Transform 'bogusTransform' is not defined."}"#,
    ),
    // Bad request lines name their line number (`@` here) and do not stop the batch.
    (
        "not json at all",
        r#"{"error":"line @: expected ident at line 1 column 2"}"#,
    ),
    (
        r#"{"exp": "1"}"#,
        r#"{"error":"line @: unknown field `exp`, expected `expr` or `context` at line 1 column 6"}"#,
    ),
    (
        r#"{"expr": "1", "context": {"now": "yesterday"}}"#,
        r#"{"error":"line @: context: invalid `now` \"yesterday\": expected an RFC 3339 timestamp (with an offset) or epoch seconds"}"#,
    ),
    (
        r#"{"expr": "1", "context": {"colour": "blue"}}"#,
        r#"{"error":"line @: context: unknown field `colour`, expected one of `userId`, `appName`, `appId`, `version`, `buildId`, `channel`, `locale`, `country`, `os`, `platform`, `distribution`, `isFirstRun`, `now`, `prefs`, `builtinDefaults`, `properties`, `telemetry`, `addons`, `experiments`, `studies`, `rollouts`, `randomValues`"}"#,
    ),
    // The batch goes on after the errors.
    (
        r#"{"expr": "'still' + ' going'"}"#,
        r#"{"value":"still going"}"#,
    ),
];

#[test]
fn jsonl_batch() {
    // A blank line produces no output but still counts as a line.
    let mut input = String::new();
    let mut expected = Vec::new();
    let mut line_number = 0;
    for (idx, (request, response)) in JSONL_CASES.iter().enumerate() {
        if idx == 5 {
            input.push('\n');
            line_number += 1;
        }
        input.push_str(request);
        input.push('\n');
        line_number += 1;
        expected.push(response.replace("line @:", &format!("line {line_number}:")));
    }
    let run = flightdeck_in_with_stdin(&workspace_root(), &["expr", "--jsonl"], &input);
    // Errors are results: the batch itself succeeds.
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stderr, "");
    let actual = run.stdout_lines();
    assert_eq!(actual.len(), expected.len(), "{run:?}");
    for (((request, _), expected), actual) in JSONL_CASES.iter().zip(&expected).zip(&actual) {
        assert_eq!(actual, expected, "for request {request}");
    }
}

#[test]
fn jsonl_empty_input_prints_nothing() {
    let run = flightdeck_in_with_stdin(&workspace_root(), &["expr", "--jsonl"], "");
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "");
}

#[test]
fn jsonl_last_line_without_newline() {
    let run = flightdeck_in_with_stdin(
        &workspace_root(),
        &["expr", "--jsonl"],
        r#"{"expr": "2 * 21"}"#,
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_lines(&run.stdout, &[r#"{"value":42}"#]);
}

#[test]
fn jsonl_conflicts_with_an_expression() {
    let run = flightdeck(&["expr", "--jsonl", "1"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stdout, "");
    assert!(run.stderr.starts_with("error: "), "{run:?}");
}

#[test]
fn one_shot_invalid_now_exits_2() {
    // An unreadable `now` must not fall back to the clock: the result would silently depend on
    // when the test ran.
    let run = flightdeck_in(
        &data_dir(),
        &[
            "expr",
            "--context",
            "context-bad-now.json",
            "normandy.request_time",
        ],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stdout, "");
    assert_lines(
        &run.stderr,
        &[
            "flightdeck: context-bad-now.json:3:10: invalid `now` \"2024-07-15 12:00\": expected an RFC 3339 timestamp (with an offset) or epoch seconds",
        ],
    );
}
