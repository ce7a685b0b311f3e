//! `flightdeck validate`: exit statuses and the exact `file:line:col: severity: path: message`
//! lines for every input format.

mod common;

use std::path::PathBuf;

use common::{Run, assert_lines, flightdeck, flightdeck_in};

/// Runs `flightdeck validate ARGS…` inside `tests/data/validate`, so file names print short.
fn validate(args: &[&str]) -> Run {
    let dir: PathBuf = common::data_dir().join("validate");
    let mut all = vec!["validate"];
    all.extend_from_slice(args);
    flightdeck_in(&dir, &all)
}

#[test]
fn bundled_examples_are_valid() {
    let run = flightdeck(&["validate", "examples/"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "");
    // The Normandy recipes, the manifest, the flights index and the CloudBees tree; the client
    // context document beside them is not a document to validate and is passed over silently.
    assert_lines(&run.stderr, &["4 document(s) valid"]);
}

#[test]
fn bundled_examples_are_valid_file_by_file() {
    let run = flightdeck(&[
        "validate",
        "examples/normandy/recipes.json",
        "examples/manifest-v1/experiments.json",
        "examples/testpilot/flights.json",
        "examples/cloudbees",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "");
    assert_lines(&run.stderr, &["4 document(s) valid"]);
}

#[test]
fn normandy_bad_slug_and_filter_syntax_error() {
    let run = validate(&["normandy-broken.json"]);
    assert_eq!(run.code, 1, "{run:?}");
    // Line 12 is `    "filter_expression": "normandy.channel == 'release' && && …"`: the
    // expression starts at column 27, and its error at offset 33 is the second `&&` (column 60).
    assert_lines(
        &run.stdout,
        &[
            r#"normandy-broken.json:7:15: error: [0].arguments.slug: slug "Not A Slug!" does not match ^[a-z0-9\-_]+$"#,
            "normandy-broken.json:12:60: error: [0].filter_expression: filter expression syntax error at offset 33: unexpected token at `&& normandy.locale == 'e`",
        ],
    );
    assert_lines(&run.stderr, &["2 error(s) in 1 document(s)"]);
}

#[test]
fn manifest_bad_hash_and_missing_id() {
    let run = validate(&["manifest-broken.json"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_lines(
        &run.stdout,
        &[
            "manifest-broken.json:12:18: error: experiments[1].xpiHash: expected `sha1:<40 hex>` or `sha256:<64 hex>`: unsupported hash algorithm `md5`: use `sha1` or `sha256`",
            // A missing field points at the object that lacks it.
            "manifest-broken.json:14:5: error: experiments[2].id: missing required field `id`",
        ],
    );
    assert_lines(&run.stderr, &["2 error(s) in 1 document(s)"]);
}

#[test]
fn flights_kill_and_stopflight_together() {
    let run = validate(&["flights-broken.json"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_lines(
        &run.stdout,
        &[
            "flights-broken.json:7:21: error: flights[0].stopflight: give either `kill` or `stopflight`, not both",
        ],
    );
    assert_lines(&run.stderr, &["1 error(s) in 1 document(s)"]);
}

#[test]
fn cloudbees_tree_unknown_group_and_bad_operand() {
    let run = validate(&["cloudbees-broken"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_lines(
        &run.stdout,
        &[
            "cloudbees-broken/experiments/default.badOperand.yml:8:16: error: conditions[0].property.operand: operator `gte` needs one number, found a sequence",
            "cloudbees-broken/experiments/default.unknownGroup.yml:6:18: error: conditions[0].group.name[1]: unknown target group `nobody-defined-this`",
        ],
    );
    // The tree is one document.
    assert_lines(&run.stderr, &["2 error(s) in 1 document(s)"]);
}

#[test]
fn single_cloudbees_file_has_no_cross_file_checks() {
    // Read alone, an experiment file cannot know the target groups of its tree, so an unknown
    // group is only reported when the whole tree is validated.
    let run = validate(&["cloudbees-broken/experiments/default.unknownGroup.yml"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "");
    assert_lines(&run.stderr, &["1 document(s) valid"]);
}

#[test]
fn every_broken_format_at_once() {
    let run = validate(&[
        "normandy-broken.json",
        "manifest-broken.json",
        "flights-broken.json",
        "cloudbees-broken",
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    // The same lines as one at a time, in command-line order.
    let one_by_one: String = [
        "normandy-broken.json",
        "manifest-broken.json",
        "flights-broken.json",
        "cloudbees-broken",
    ]
    .iter()
    .map(|path| validate(&[path]).stdout)
    .collect();
    assert_eq!(run.stdout, one_by_one);
    assert_eq!(run.stdout_lines().len(), 7, "{run:?}");
    assert_lines(&run.stderr, &["7 error(s) in 4 document(s)"]);
}

#[test]
fn malformed_json_reports_the_parser_position() {
    let run = validate(&["malformed.json"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_lines(
        &run.stdout,
        &["malformed.json:4:16: error: (root): invalid JSON: trailing comma at line 4 column 16"],
    );
    assert_lines(&run.stderr, &["1 error(s) in 1 document(s)"]);
}

#[test]
fn missing_path_exits_2() {
    let run = validate(&["does-not-exist.json"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stdout, "");
    assert_lines(
        &run.stderr,
        &["flightdeck: cannot read does-not-exist.json: No such file or directory (os error 2)"],
    );
}

#[test]
fn missing_path_among_valid_ones_exits_2() {
    let run = validate(&["manifest-warning.json", "does-not-exist"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .starts_with("flightdeck: cannot read does-not-exist: "),
        "{run:?}"
    );
}

#[test]
fn explicit_json_file_of_unknown_format_exits_2() {
    let run = validate(&["unknown-format.json"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stdout, "");
    assert_lines(
        &run.stderr,
        &[
            "flightdeck: unknown-format.json: not a recognised document (Normandy recipes, Manifest v1, Test Pilot flights or CloudBees YAML)",
        ],
    );
}

#[test]
fn explicit_file_of_unknown_extension_exits_2() {
    let run = validate(&["notes.txt"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stdout, "");
    assert_lines(
        &run.stderr,
        &["flightdeck: notes.txt: not a .json, .yml or .yaml file"],
    );
}

#[test]
fn warnings_alone_exit_0() {
    let run = validate(&["manifest-warning.json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_lines(
        &run.stdout,
        &[
            "manifest-warning.json:8:18: warning: experiments[0].channel: `channel` is an empty list, so the experiment applies to no client",
            "manifest-warning.json:9:17: warning: experiments[0].colour: unknown key `colour` (kept, but ignored by evaluation)",
        ],
    );
    assert_lines(&run.stderr, &["1 document(s) valid"]);
}

#[test]
fn directory_walk_skips_what_is_not_a_document() {
    // `walk/` holds: `.hidden.json` (broken, but hidden), `context.json` (a client context,
    // passed over silently), `readme.txt` (not a document format), `strange.json` (JSON of no
    // known format: a note) and `nested/flights.json` (valid, with one warning).
    let run = validate(&["walk"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_lines(
        &run.stdout,
        &[
            "walk/nested/flights.json:6:45: warning: [0].flightplan[0].msg: unknown template variable `{{planet}}` (known: studyname, studyid, starttime, status, step, personid, os, locale, channel, version, appname)",
        ],
    );
    assert_lines(
        &run.stderr,
        &[
            "note: skipped walk/strange.json: not a recognised document",
            "1 document(s) valid",
        ],
    );
}

#[test]
fn directory_walk_yaml_of_other_tools_is_skipped() {
    // `walk-yaml/` holds: `ci.yml` (a CI workflow: no `type`), `other-type.yaml`
    // (`type: something-else`), both not ours and skipped with a note, and
    // `broken-experiment.yml` (`type: experiment` with a bad percentage), which is ours.
    let run = validate(&["walk-yaml"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_lines(
        &run.stdout,
        &[
            "walk-yaml/broken-experiment.yml:5:17: error: value[0].percentage: percentage must be a number from 0 to 100",
        ],
    );
    assert_lines(
        &run.stderr,
        &[
            "note: skipped walk-yaml/ci.yml: not a recognised document",
            "note: skipped walk-yaml/other-type.yaml: not a recognised document",
            "1 error(s) in 1 document(s)",
        ],
    );
}

#[test]
fn explicit_yaml_file_of_another_tool_exits_2() {
    for file in ["walk-yaml/ci.yml", "walk-yaml/other-type.yaml"] {
        let run = validate(&[file]);
        assert_eq!(run.code, 2, "{run:?}");
        assert_eq!(run.stdout, "");
        assert_lines(
            &run.stderr,
            &[&format!(
                "flightdeck: {file}: not a recognised document (Normandy recipes, Manifest v1, Test Pilot flights or CloudBees YAML)"
            )],
        );
    }
}

#[test]
fn no_path_is_a_usage_error() {
    let run = validate(&[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .starts_with("error: the following required arguments were not provided:"),
        "{run:?}"
    );
}
