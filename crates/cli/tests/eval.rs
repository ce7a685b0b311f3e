//! `flightdeck eval`: every result line of the bundled examples, and small scenarios per format
//! showing that reasons follow the client context (time, random values, user id, platform).

mod common;

use std::path::{Path, PathBuf};

use common::{Run, TempDir, assert_lines, data_dir, flightdeck, flightdeck_in, workspace_root};

/// The fixtures of these scenarios; commands run there so that `file` prints short.
fn eval_dir() -> PathBuf {
    data_dir().join("eval")
}

/// `flightdeck eval --json --context CONTEXT PATHS…` inside `tests/data/eval`.
fn eval_json(context: &str, paths: &[&str]) -> Run {
    let mut args = vec!["eval", "--json", "--context", context];
    args.extend_from_slice(paths);
    flightdeck_in(&eval_dir(), &args)
}

/// Writes a context document into `dir` and returns its path as an argument.
fn context_file(dir: &TempDir, name: &str, json: &str) -> String {
    dir.write(name, json).to_string_lossy().into_owned()
}

#[test]
fn examples_golden() {
    let golden: PathBuf = data_dir().join("examples-eval.jsonl");
    let run = flightdeck(&[
        "eval",
        "--json",
        "--context",
        "examples/context.json",
        "examples/",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stderr, "");
    if std::env::var_os("UPDATE_EXPECT").is_some_and(|v| v == "1") {
        std::fs::write(&golden, &run.stdout).expect("write the golden file");
        return;
    }
    let expected = std::fs::read_to_string(&golden).expect("read the golden file");
    let expected: Vec<&str> = expected.lines().collect();
    // Checked by hand against the reference algorithms (sha256/md5 computed independently):
    // `default.newPlayer` buckets at 0.893, outside the 50 % scheduled for 2024-07-15; recipe 101
    // hashes to 4c53492cee84 < 7fffffffffff (in the 50 % sample); recipe 103's branch input
    // hashes to eb6a736cecea > 7fffffffffff (second branch, `treatment`).
    assert_lines(&run.stdout, &expected);
}

#[test]
fn examples_table() {
    let run = flightdeck(&["eval", "--context", "examples/context.json", "examples/"]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines = run.stdout_lines();
    // A header and one line per item; each column is as wide as its widest cell.
    assert_eq!(lines.len(), 13, "{run:?}");
    assert_eq!(
        lines[0],
        "MATCHED  KIND                         ID                             BRANCH     REASON           VALUE"
    );
    assert!(lines.contains(
        &"yes      multi-preference-experiment  103                            treatment  -                {\"browser.newtab.preload\":false}"
    ), "{run:?}");
    assert!(
        lines.contains(
            &"no       flight                       onboarding-2024                -          killed           -"
        ),
        "{run:?}"
    );
}

#[test]
fn table_for_one_cloudbees_tree() {
    let run = flightdeck_in(
        &eval_dir(),
        &["eval", "--context", "context-android.json", "cloudbees"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_lines(
        &run.stdout,
        &[
            "MATCHED  KIND  ID                   BRANCH  REASON                          VALUE",
            "yes      flag  def                  -       default                         \"first\"",
            "no       flag  default.off          -       disabled                        -",
            "yes      flag  default.perPlatform  -       platform Android: condition[0]  \"other\"",
            "yes      flag  seed2                -       default                         \"high\"",
        ],
    );
}

#[test]
fn table_columns_fit_long_reasons() {
    // The reasons of rejected manifest entries are long; the VALUE column must still start at
    // the same place on every line.
    let run = flightdeck_in(
        &eval_dir(),
        &[
            "eval",
            "--context",
            "context-user-a.json",
            "../validate/manifest-broken.json",
            "flights.json",
        ],
    );
    assert_eq!(run.code, 1, "{run:?}");
    let lines = run.stdout_lines();
    assert_eq!(lines.len(), 1 + 3 + 9, "{run:?}");
    let value_at = lines[0].find("VALUE").expect("a VALUE header");
    for line in &lines[1..] {
        let (before, value) = line.split_at(value_at);
        assert!(before.ends_with("  "), "{line}");
        assert!(!value.starts_with(' '), "{line}");
    }
    assert_eq!(
        lines[2],
        format!(
            "no       manifest-experiment  bad-hash{}  -       invalid: xpiHash: expected `sha1:<40 hex>` or `sha256:<64 hex>`: unsupported hash algorithm `md5`: use `sha1` or `sha256`  -",
            " ".repeat("../validate/manifest-broken.json#2".len() - "bad-hash".len())
        )
    );
}

#[test]
fn manifest_time_window_sample_and_priority() {
    // now = 1721044800 (2024-07-15T12:00:00Z); `sample` admits a persisted value ≤ sample.
    let run = eval_json("context-manifest.json", &["manifest-window.json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_lines(
        &run.stdout,
        &[
            r#"{"id":"not-started-yet","kind":"manifest-experiment","matched":false,"reason":"startTime","branch":null,"value":null,"file":"manifest-window.json"}"#,
            r#"{"id":"already-over","kind":"manifest-experiment","matched":false,"reason":"endTime","branch":null,"value":null,"file":"manifest-window.json"}"#,
            // `endTime` is exclusive.
            r#"{"id":"ends-exactly-now","kind":"manifest-experiment","matched":false,"reason":"endTime","branch":null,"value":null,"file":"manifest-window.json"}"#,
            // Random value 0.5001 > sample 0.5.
            r#"{"id":"sampled-out","kind":"manifest-experiment","matched":false,"reason":"sample","branch":null,"value":null,"file":"manifest-window.json"}"#,
            // No persisted value: the core never draws one.
            r#"{"id":"no-random-value","kind":"manifest-experiment","matched":false,"reason":"sample","branch":null,"value":null,"file":"manifest-window.json"}"#,
            // Random value 0.5 = sample, and `startTime` = now (inclusive).
            r#"{"id":"sampled-in","kind":"manifest-experiment","matched":true,"reason":null,"branch":null,"value":{"xpiURL":"https://experiments.example.com/f.xpi","xpiHash":"sha1:cb1eb32b89d86d78b7326f416cf404548c5e0099"},"file":"manifest-window.json"}"#,
            // Applicable, but only the first applicable experiment runs.
            r#"{"id":"also-applies","kind":"manifest-experiment","matched":false,"reason":"priority","branch":null,"value":null,"file":"manifest-window.json"}"#,
            r#"{"id":"wrong-channel","kind":"manifest-experiment","matched":false,"reason":"channel","branch":null,"value":null,"file":"manifest-window.json"}"#,
        ],
    );
    assert_eq!(run.stderr, "");
}

#[test]
fn manifest_reasons_follow_the_time() {
    let tmp = TempDir::new("eval-manifest-june");
    let context = context_file(
        &tmp,
        "context.json",
        r#"{"appName": "Firefox", "version": "128.0", "channel": "release",
            "now": "2024-06-15T00:00:00Z",
            "randomValues": {"sampled-out": 0.5001, "sampled-in": 0.5}}"#,
    );
    let run = eval_json(&context, &["manifest-window.json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_lines(
        &run.stdout,
        &[
            r#"{"id":"not-started-yet","kind":"manifest-experiment","matched":false,"reason":"startTime","branch":null,"value":null,"file":"manifest-window.json"}"#,
            // A month earlier, the experiment that was over is running, and comes first.
            r#"{"id":"already-over","kind":"manifest-experiment","matched":true,"reason":null,"branch":null,"value":{"xpiURL":"https://experiments.example.com/b.xpi","xpiHash":"sha1:cb1eb32b89d86d78b7326f416cf404548c5e0099"},"file":"manifest-window.json"}"#,
            r#"{"id":"ends-exactly-now","kind":"manifest-experiment","matched":false,"reason":"priority","branch":null,"value":null,"file":"manifest-window.json"}"#,
            // The time window is checked before the sample.
            r#"{"id":"sampled-out","kind":"manifest-experiment","matched":false,"reason":"startTime","branch":null,"value":null,"file":"manifest-window.json"}"#,
            r#"{"id":"no-random-value","kind":"manifest-experiment","matched":false,"reason":"sample","branch":null,"value":null,"file":"manifest-window.json"}"#,
            r#"{"id":"sampled-in","kind":"manifest-experiment","matched":false,"reason":"startTime","branch":null,"value":null,"file":"manifest-window.json"}"#,
            r#"{"id":"also-applies","kind":"manifest-experiment","matched":false,"reason":"priority","branch":null,"value":null,"file":"manifest-window.json"}"#,
            r#"{"id":"wrong-channel","kind":"manifest-experiment","matched":false,"reason":"channel","branch":null,"value":null,"file":"manifest-window.json"}"#,
        ],
    );
}

#[test]
fn manifest_priority_passes_to_the_next_applicable() {
    let tmp = TempDir::new("eval-manifest-priority");
    // `now` as epoch seconds this time; `sampled-in` is now sampled out.
    let context = context_file(
        &tmp,
        "context.json",
        r#"{"appName": "Firefox", "version": "128.0", "channel": "release", "now": 1721044800,
            "randomValues": {"sampled-out": 0.5001, "sampled-in": 0.9}}"#,
    );
    let run = eval_json(&context, &["manifest-window.json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines = run.stdout_lines();
    assert_eq!(lines.len(), 8, "{run:?}");
    assert_eq!(
        lines[5],
        r#"{"id":"sampled-in","kind":"manifest-experiment","matched":false,"reason":"sample","branch":null,"value":null,"file":"manifest-window.json"}"#
    );
    assert_eq!(
        lines[6],
        r#"{"id":"also-applies","kind":"manifest-experiment","matched":true,"reason":null,"branch":null,"value":{"xpiURL":"https://experiments.example.com/g.xpi","xpiHash":"sha1:cb1eb32b89d86d78b7326f416cf404548c5e0099"},"file":"manifest-window.json"}"#
    );
}

#[test]
fn normandy_branches_filters_and_capabilities() {
    // Golden branch vector (seed-originals.md §3.3): input "user-a-exp-1-branch" hashes to
    // ba72586c12c7; ratios [1,1] → index 1, ratios [4,3,2,1] → index 2. The two recipes share
    // the slug `exp-1`, so they live in two files (one file may not use a slug twice).
    let run = eval_json(
        "context-user-a.json",
        &[
            "normandy/branches-2.json",
            "normandy/branches-4.json",
            "normandy/filters.json",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_lines(
        &run.stdout,
        &[
            r#"{"id":"1","kind":"multi-preference-experiment","matched":true,"reason":null,"branch":"treatment","value":{"test.pref":1},"file":"normandy/branches-2.json"}"#,
            r#"{"id":"2","kind":"multi-preference-experiment","matched":true,"reason":null,"branch":"b2","value":{"test.pref":2},"file":"normandy/branches-4.json"}"#,
            // An evaluation error is its own reason, and the next recipes still evaluate.
            r#"{"id":"3","kind":"preference-rollout","matched":false,"reason":"filter-error: stableSample: frac must be between 0 and 1 inclusive (got 2)","branch":null,"value":null,"file":"normandy/filters.json"}"#,
            r#"{"id":"4","kind":"preference-rollout","matched":false,"reason":"filter-mismatch","branch":null,"value":null,"file":"normandy/filters.json"}"#,
            // Reads the `prefs` of the context.
            r#"{"id":"5","kind":"preference-rollout","matched":true,"reason":null,"branch":null,"value":{"test.other":2},"file":"normandy/filters.json"}"#,
            r#"{"id":"6","kind":"preference-rollout","matched":false,"reason":"capabilities-mismatch","branch":null,"value":null,"file":"normandy/filters.json"}"#,
        ],
    );
    assert_eq!(run.stderr, "");
}

#[test]
fn normandy_directory_walk_gives_the_same_lines() {
    let by_files = eval_json(
        "context-user-a.json",
        &[
            "normandy/branches-2.json",
            "normandy/branches-4.json",
            "normandy/filters.json",
        ],
    );
    let by_dir = eval_json("context-user-a.json", &["normandy"]);
    assert_eq!(by_dir.code, 0, "{by_dir:?}");
    assert_eq!(by_dir.stdout, by_files.stdout);
}

#[test]
fn normandy_reasons_follow_the_context() {
    let tmp = TempDir::new("eval-normandy-no-user");
    // No userId: experiments cannot choose a branch; the pref is now user-set; beta channel.
    let context = context_file(
        &tmp,
        "context.json",
        r#"{"channel": "beta", "now": "2024-07-15T12:00:00Z",
            "prefs": {"test.gate": {"default": "open", "user": "open"}}}"#,
    );
    let run = eval_json(&context, &["normandy"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_lines(
        &run.stdout,
        &[
            r#"{"id":"1","kind":"multi-preference-experiment","matched":false,"reason":"no-user-id","branch":null,"value":null,"file":"normandy/branches-2.json"}"#,
            // The filter (`channel == 'release'`) is checked before the user id.
            r#"{"id":"2","kind":"multi-preference-experiment","matched":false,"reason":"filter-mismatch","branch":null,"value":null,"file":"normandy/branches-4.json"}"#,
            r#"{"id":"3","kind":"preference-rollout","matched":false,"reason":"filter-error: stableSample: frac must be between 0 and 1 inclusive (got 2)","branch":null,"value":null,"file":"normandy/filters.json"}"#,
            r#"{"id":"4","kind":"preference-rollout","matched":false,"reason":"filter-mismatch","branch":null,"value":null,"file":"normandy/filters.json"}"#,
            r#"{"id":"5","kind":"preference-rollout","matched":false,"reason":"filter-mismatch","branch":null,"value":null,"file":"normandy/filters.json"}"#,
            r#"{"id":"6","kind":"preference-rollout","matched":false,"reason":"capabilities-mismatch","branch":null,"value":null,"file":"normandy/filters.json"}"#,
        ],
    );
}

#[test]
fn flights_random_deploy_and_filters() {
    // Random values: key-in 0.3, key-edge-ge 0.25, key-edge-lt 0.5, key-out 0.75; every
    // randomDeploy range is [0.25, 0.5).
    let run = eval_json("context-flights.json", &["flights.json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_lines(
        &run.stdout,
        &[
            r#"{"id":"deploy-in","kind":"flight","matched":true,"reason":null,"branch":null,"value":null,"file":"flights.json"}"#,
            r#"{"id":"deploy-lower-edge","kind":"flight","matched":true,"reason":null,"branch":null,"value":null,"file":"flights.json"}"#,
            r#"{"id":"deploy-upper-edge","kind":"flight","matched":false,"reason":"randomDeploy","branch":null,"value":null,"file":"flights.json"}"#,
            r#"{"id":"deploy-out","kind":"flight","matched":false,"reason":"randomDeploy","branch":null,"value":null,"file":"flights.json"}"#,
            r#"{"id":"deploy-no-value","kind":"flight","matched":false,"reason":"randomDeploy","branch":null,"value":null,"file":"flights.json"}"#,
            r#"{"id":"ended","kind":"flight","matched":false,"reason":"endBy","branch":null,"value":null,"file":"flights.json"}"#,
            r#"{"id":"killed","kind":"flight","matched":false,"reason":"killed","branch":null,"value":null,"file":"flights.json"}"#,
            r#"{"id":"wrong-locale","kind":"flight","matched":false,"reason":"filter-locale","branch":null,"value":null,"file":"flights.json"}"#,
            r#"{"id":"expression-false","kind":"flight","matched":false,"reason":"filter-expression","branch":null,"value":null,"file":"flights.json"}"#,
        ],
    );
    assert_eq!(run.stderr, "");
}

#[test]
fn flights_reasons_follow_the_context() {
    let tmp = TempDir::new("eval-flights-later");
    // After every endBy; the other values swapped around.
    let context = context_file(
        &tmp,
        "context.json",
        r#"{"version": "131.0", "channel": "release", "locale": "de", "os": "Linux",
            "now": "2024-08-01T00:00:00Z",
            "randomValues": {"key-in": 0.75, "key-edge-ge": 0.2499, "key-edge-lt": 0.4999, "key-out": 0.3}}"#,
    );
    let run = eval_json(&context, &["flights.json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let reasons: Vec<String> = run
        .stdout_lines()
        .iter()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            format!("{} {}", value["id"], value["reason"])
        })
        .collect();
    assert_eq!(
        reasons,
        [
            r#""deploy-in" "randomDeploy""#,
            r#""deploy-lower-edge" "randomDeploy""#,
            r#""deploy-upper-edge" null"#,
            r#""deploy-out" null"#,
            r#""deploy-no-value" "randomDeploy""#,
            r#""ended" "endBy""#,
            r#""killed" "killed""#,
            r#""wrong-locale" null"#,
            r#""expression-false" null"#,
        ]
    );
}

#[test]
fn cloudbees_disabled_platform_and_split() {
    // Splits bucket `<stickiness value>.<flag>` with MD5 (seed-originals.md §5.4):
    // "device2.seed2" → 0.1872 (just past an 18 % first option), "abc.def" → 0.5157 (inside a
    // 52 % first option; `def` is sticky on the `team` property).
    let run = eval_json("context-android.json", &["cloudbees"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_lines(
        &run.stdout,
        &[
            r#"{"id":"def","kind":"flag","matched":true,"reason":"default","branch":null,"value":"first","file":"cloudbees"}"#,
            r#"{"id":"default.off","kind":"flag","matched":false,"reason":"disabled","branch":null,"value":null,"file":"cloudbees"}"#,
            r#"{"id":"default.perPlatform","kind":"flag","matched":true,"reason":"platform Android: condition[0]","branch":null,"value":"other","file":"cloudbees"}"#,
            r#"{"id":"seed2","kind":"flag","matched":true,"reason":"default","branch":null,"value":"high","file":"cloudbees"}"#,
        ],
    );
    assert_eq!(run.stderr, "");

    // On another platform the root rules apply.
    let run = eval_json("context-browser.json", &["cloudbees"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_lines(
        &run.stdout,
        &[
            r#"{"id":"def","kind":"flag","matched":true,"reason":"default","branch":null,"value":"first","file":"cloudbees"}"#,
            r#"{"id":"default.off","kind":"flag","matched":false,"reason":"disabled","branch":null,"value":null,"file":"cloudbees"}"#,
            r#"{"id":"default.perPlatform","kind":"flag","matched":true,"reason":"default","branch":null,"value":"web","file":"cloudbees"}"#,
            r#"{"id":"seed2","kind":"flag","matched":true,"reason":"default","branch":null,"value":"high","file":"cloudbees"}"#,
        ],
    );

    // Without a user id or properties: not a tester, and no stickiness value for the splits.
    let run = eval_json("context-no-user.json", &["cloudbees"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_lines(
        &run.stdout,
        &[
            r#"{"id":"def","kind":"flag","matched":false,"reason":"no-stickiness-value","branch":null,"value":null,"file":"cloudbees"}"#,
            r#"{"id":"default.off","kind":"flag","matched":false,"reason":"disabled","branch":null,"value":null,"file":"cloudbees"}"#,
            r#"{"id":"default.perPlatform","kind":"flag","matched":true,"reason":"platform Android: default","branch":null,"value":"mobile","file":"cloudbees"}"#,
            r#"{"id":"seed2","kind":"flag","matched":false,"reason":"no-stickiness-value","branch":null,"value":null,"file":"cloudbees"}"#,
        ],
    );
}

#[test]
fn cloudbees_split_on_the_other_side_of_the_bucket() {
    // The same buckets against other percentages: 19 % now covers 0.1872 and 51 % no longer
    // covers 0.5157.
    let tmp = TempDir::new("eval-cloudbees-split");
    for (name, text) in [
        (
            "tree/experiments/seed2.yml",
            "flag: seed2\ntype: experiment\nname: s\nvalue:\n  - option: low\n    percentage: 19\n  - option: high\n    percentage: 81\n",
        ),
        (
            "tree/experiments/def.yml",
            "flag: def\ntype: experiment\nname: d\nstickinessProperty: team\nvalue:\n  - option: first\n    percentage: 51\n  - option: second\n    percentage: 49\n",
        ),
        (
            "tree/target_groups/none.yml",
            "type: target-group\nname: none\nconditions:\n  - operator: is-true\n    property: never\n",
        ),
    ] {
        tmp.write(name, text);
    }
    let context = eval_dir().join("context-android.json");
    let run = flightdeck_in(
        tmp.path(),
        &[
            "eval",
            "--json",
            "--context",
            &context.to_string_lossy(),
            "tree",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_lines(
        &run.stdout,
        &[
            r#"{"id":"def","kind":"flag","matched":true,"reason":"default","branch":null,"value":"second","file":"tree"}"#,
            r#"{"id":"seed2","kind":"flag","matched":true,"reason":"default","branch":null,"value":"low","file":"tree"}"#,
        ],
    );
}

#[test]
fn input_errors_exit_1_but_valid_items_are_evaluated() {
    let run = eval_json(
        "context-user-a.json",
        &[
            "../validate/normandy-broken.json",
            "../validate/manifest-broken.json",
            "../validate/flights-broken.json",
            "normandy/branches-2.json",
        ],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert_lines(
        &run.stdout,
        &[
            // The recipe with the broken filter is still listed, with the parse error as reason.
            r#"{"id":"201","kind":"preference-rollout","matched":false,"reason":"filter-error: unexpected token at `&& normandy.locale == 'e`","branch":null,"value":null,"file":"../validate/normandy-broken.json"}"#,
            r#"{"id":"202","kind":"preference-rollback","matched":true,"reason":null,"branch":null,"value":{"rolloutSlug":"some-rollout"},"file":"../validate/normandy-broken.json"}"#,
            // Invalid manifest entries are listed in their place with the first error as
            // reason (an entry without an id is named by file and index); the valid one is
            // evaluated.
            r#"{"id":"good-one","kind":"manifest-experiment","matched":true,"reason":null,"branch":null,"value":{"xpiURL":"https://experiments.example.com/good.xpi","xpiHash":"sha1:cb1eb32b89d86d78b7326f416cf404548c5e0099"},"file":"../validate/manifest-broken.json"}"#,
            r#"{"id":"bad-hash","kind":"manifest-experiment","matched":false,"reason":"invalid: xpiHash: expected `sha1:<40 hex>` or `sha256:<64 hex>`: unsupported hash algorithm `md5`: use `sha1` or `sha256`","branch":null,"value":null,"file":"../validate/manifest-broken.json"}"#,
            r#"{"id":"../validate/manifest-broken.json#2","kind":"manifest-experiment","matched":false,"reason":"invalid: id: missing required field `id`","branch":null,"value":null,"file":"../validate/manifest-broken.json"}"#,
            // The flight with both `kill` and `stopflight` is listed as invalid.
            r#"{"id":"both-kills","kind":"flight","matched":false,"reason":"invalid: stopflight: give either `kill` or `stopflight`, not both","branch":null,"value":null,"file":"../validate/flights-broken.json"}"#,
            r#"{"id":"1","kind":"multi-preference-experiment","matched":true,"reason":null,"branch":"treatment","value":{"test.pref":1},"file":"normandy/branches-2.json"}"#,
        ],
    );
    // The diagnostics go to standard error, as `validate` prints them.
    assert_lines(
        &run.stderr,
        &[
            r#"../validate/normandy-broken.json:7:15: error: [0].arguments.slug: slug "Not A Slug!" does not match ^[a-z0-9\-_]+$"#,
            "../validate/normandy-broken.json:12:60: error: [0].filter_expression: filter expression syntax error at offset 33: unexpected token at `&& normandy.locale == 'e`",
            "../validate/manifest-broken.json:12:18: error: experiments[1].xpiHash: expected `sha1:<40 hex>` or `sha256:<64 hex>`: unsupported hash algorithm `md5`: use `sha1` or `sha256`",
            "../validate/manifest-broken.json:14:5: error: experiments[2].id: missing required field `id`",
            "../validate/flights-broken.json:7:21: error: flights[0].stopflight: give either `kill` or `stopflight`, not both",
        ],
    );
}

#[test]
fn invalid_manifest_entries_are_listed_with_their_reason() {
    let run = eval_json("context-user-a.json", &["../validate/manifest-broken.json"]);
    // Exit 1 for the input errors, yet every entry has a result line, in manifest order.
    assert_eq!(run.code, 1, "{run:?}");
    assert_lines(
        &run.stdout,
        &[
            r#"{"id":"good-one","kind":"manifest-experiment","matched":true,"reason":null,"branch":null,"value":{"xpiURL":"https://experiments.example.com/good.xpi","xpiHash":"sha1:cb1eb32b89d86d78b7326f416cf404548c5e0099"},"file":"../validate/manifest-broken.json"}"#,
            r#"{"id":"bad-hash","kind":"manifest-experiment","matched":false,"reason":"invalid: xpiHash: expected `sha1:<40 hex>` or `sha256:<64 hex>`: unsupported hash algorithm `md5`: use `sha1` or `sha256`","branch":null,"value":null,"file":"../validate/manifest-broken.json"}"#,
            r#"{"id":"../validate/manifest-broken.json#2","kind":"manifest-experiment","matched":false,"reason":"invalid: id: missing required field `id`","branch":null,"value":null,"file":"../validate/manifest-broken.json"}"#,
        ],
    );
    assert_eq!(run.stderr_lines().len(), 2, "{run:?}");
}

#[test]
fn broken_cloudbees_experiments_are_listed_with_their_reason() {
    // In a tree: the broken file in its place (files in name order), the valid one evaluated
    // (its unknown target group never matches).
    let run = eval_json("context-user-a.json", &["../validate/cloudbees-broken"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_lines(
        &run.stdout,
        &[
            r#"{"id":"default.badOperand","kind":"flag","matched":false,"reason":"invalid: conditions[0].property.operand: operator `gte` needs one number, found a sequence","branch":null,"value":null,"file":"../validate/cloudbees-broken"}"#,
            r#"{"id":"default.unknownGroup","kind":"flag","matched":true,"reason":"default","branch":null,"value":false,"file":"../validate/cloudbees-broken"}"#,
        ],
    );
    // Alone in a directory walk: the broken experiment file is listed, files of other tools
    // are skipped.
    let run = eval_json("context-user-a.json", &["../validate/walk-yaml"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_lines(
        &run.stdout,
        &[
            r#"{"id":"half.written","kind":"flag","matched":false,"reason":"invalid: value[0].percentage: percentage must be a number from 0 to 100","branch":null,"value":null,"file":"../validate/walk-yaml/broken-experiment.yml"}"#,
        ],
    );
}

#[test]
fn warnings_alone_exit_0() {
    let run = eval_json(
        "context-manifest.json",
        &["../validate/manifest-warning.json"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_lines(
        &run.stdout,
        &[
            r#"{"id":"warned","kind":"manifest-experiment","matched":false,"reason":"channel","branch":null,"value":null,"file":"../validate/manifest-warning.json"}"#,
        ],
    );
    assert_eq!(run.stderr.lines().count(), 2, "{run:?}");
}

#[test]
fn context_problems_exit_2() {
    let dir: &Path = &data_dir();
    let run = flightdeck_in(
        dir,
        &[
            "eval",
            "--json",
            "--context",
            "context-bad-now.json",
            "eval/flights.json",
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

    let run = flightdeck_in(
        dir,
        &[
            "eval",
            "--context",
            "validate/context-unknown-key.json",
            "eval/flights.json",
        ],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.starts_with(
            "flightdeck: validate/context-unknown-key.json:3:10: unknown field `colour`"
        ),
        "{run:?}"
    );

    let run = flightdeck_in(
        &workspace_root(),
        &["eval", "--context", "no-such-context.json", "examples/"],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .starts_with("flightdeck: cannot read no-such-context.json: "),
        "{run:?}"
    );
}

#[test]
fn missing_input_path_exits_2() {
    let run = eval_json("context-flights.json", &["flights.json", "no-such-dir"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .starts_with("flightdeck: cannot read no-such-dir: "),
        "{run:?}"
    );
}
