//! Hostile inputs: deep nesting and megabytes of noise must give a diagnostic and exit 1, never
//! a crash. (`common::flightdeck_in` itself fails a test whose run died from a signal, such as
//! a stack overflow, or printed a panic.)

mod common;

use common::{Run, TempDir, assert_lines, data_dir, flightdeck_in, flightdeck_in_with_stdin};

/// A small deterministic generator (xorshift64*), so every run sees the same "random" bytes.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// Valid UTF-8 made of JSON punctuation, literals fragments, whitespace and multi-byte
    /// characters, so the JSON parsers get past the first byte.
    fn json_ish_text(&mut self, len: usize) -> String {
        const PIECES: &[&str] = &[
            "[",
            "]",
            "{",
            "}",
            "\"",
            ",",
            ":",
            "0",
            "7",
            "-",
            ".",
            "e",
            "true",
            "null",
            "a",
            "\\",
            "\\u12",
            " ",
            "\n",
            "\t",
            "é",
            "€",
            "😀",
            "\"id\"",
            "\"experiments\"",
        ];
        let mut out = String::with_capacity(len + 8);
        while out.len() < len {
            let idx = (self.next() % PIECES.len() as u64) as usize;
            out.push_str(PIECES[idx]);
        }
        out
    }
}

const TEN_MB: usize = 10 * 1024 * 1024;

/// Runs `validate FILE` and `eval --json --context … FILE` in `dir`; both must exit 1 with the
/// same diagnostics (on stdout for `validate`, on stderr for `eval`) and `eval` must list no
/// item. Returns the `validate` run.
fn validate_and_eval(dir: &TempDir, file: &str) -> Run {
    let context = data_dir().join("eval/context-user-a.json");
    let context = context.to_string_lossy();
    let validate = flightdeck_in(dir.path(), &["validate", file]);
    assert_eq!(validate.code, 1, "{validate:?}");
    assert_eq!(
        validate.stderr_lines().last().copied(),
        Some("1 error(s) in 1 document(s)"),
        "{validate:?}"
    );
    let eval = flightdeck_in(dir.path(), &["eval", "--json", "--context", &context, file]);
    assert_eq!(eval.code, 1, "{eval:?}");
    assert_eq!(eval.stdout, "", "{eval:?}");
    assert_eq!(eval.stderr, validate.stdout, "{eval:?}");
    validate
}

#[test]
fn hundred_thousand_open_brackets_json() {
    let tmp = TempDir::new("deep-json");
    tmp.write("deep.json", "[".repeat(100_000));
    let run = validate_and_eval(&tmp, "deep.json");
    assert_lines(
        &run.stdout,
        &[
            "deep.json:1:128: error: (root): invalid JSON: recursion limit exceeded at line 1 column 128",
        ],
    );
}

#[test]
fn hundred_thousand_nested_objects_json() {
    let tmp = TempDir::new("deep-objects");
    tmp.write("deep.json", r#"{"experiments":"#.repeat(100_000));
    let run = validate_and_eval(&tmp, "deep.json");
    assert_lines(
        &run.stdout,
        &[
            "deep.json:1:1906: error: (root): invalid JSON: recursion limit exceeded at line 1 column 1906",
        ],
    );
}

#[test]
fn hundred_thousand_open_brackets_yaml() {
    let tmp = TempDir::new("deep-yaml");
    tmp.write("deep.yml", "[".repeat(100_000));
    let run = validate_and_eval(&tmp, "deep.yml");
    assert_lines(
        &run.stdout,
        &["deep.yml:1:25: error: (root): invalid YAML: nesting deeper than 24 levels"],
    );
}

#[test]
fn hundred_thousand_open_brackets_in_a_cloudbees_tree() {
    let tmp = TempDir::new("deep-tree");
    tmp.write("tree/experiments/deep.yml", "[".repeat(100_000));
    tmp.write("tree/target_groups/deep.yaml", "- ".repeat(100_000));
    let validate = flightdeck_in(tmp.path(), &["validate", "tree"]);
    assert_eq!(validate.code, 1, "{validate:?}");
    assert_lines(
        &validate.stdout,
        &[
            // Flow and block nesting give the same message.
            "tree/experiments/deep.yml:1:25: error: (root): invalid YAML: nesting deeper than 24 levels",
            "tree/target_groups/deep.yaml:1:49: error: (root): invalid YAML: nesting deeper than 24 levels",
        ],
    );
}

#[test]
fn ten_megabytes_of_random_bytes() {
    let tmp = TempDir::new("random-bytes");
    let bytes = Noise(0x9E37_79B9_7F4A_7C15).bytes(TEN_MB);
    // What `std` itself says about these bytes, to compare with the diagnostic.
    let valid_up_to = match std::str::from_utf8(&bytes) {
        Ok(_) => panic!("the noise happens to be UTF-8; pick another seed"),
        Err(err) => err.valid_up_to(),
    };
    let prefix = std::str::from_utf8(&bytes[..valid_up_to]).expect("valid prefix");
    let line = prefix.matches('\n').count() + 1;
    let column = prefix.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    tmp.write("random.json", &bytes);
    let run = validate_and_eval(&tmp, "random.json");
    assert_lines(
        &run.stdout,
        &[&format!(
            "random.json:{line}:{column}: error: (root): not UTF-8 text (invalid byte at offset {valid_up_to})"
        )],
    );
}

#[test]
fn random_bytes_after_a_valid_start() {
    // The bad byte is deep in the file, after a line break: the position points at it.
    let tmp = TempDir::new("random-late");
    let mut bytes = b"{\n  \"version\": 1,\n  \"experiments\": [".to_vec();
    // A lead byte followed by something that is not a continuation byte.
    bytes.extend_from_slice(&[0xC3, b'(']);
    bytes.extend(Noise(7).bytes(TEN_MB));
    tmp.write("late.json", &bytes);
    let run = validate_and_eval(&tmp, "late.json");
    assert_lines(
        &run.stdout,
        &["late.json:3:19: error: (root): not UTF-8 text (invalid byte at offset 36)"],
    );
}

#[test]
fn ten_megabytes_of_json_looking_noise() {
    let tmp = TempDir::new("random-text");
    let mut text = String::from("{\"version\": 1, \"experiments\": [");
    text.push_str(&Noise(42).json_ish_text(TEN_MB));
    tmp.write("noise.json", &text);
    let run = validate_and_eval(&tmp, "noise.json");
    let lines = run.stdout_lines();
    assert_eq!(lines.len(), 1, "{run:?}");
    assert!(
        lines[0].starts_with("noise.json:1:")
            && lines[0].contains(": error: (root): invalid JSON: "),
        "{run:?}"
    );
}

#[test]
fn deeply_nested_filter_expressions() {
    // Valid JSON documents whose filter expressions nest 30,000 deep in different ways, just
    // under the 64 KiB expression limit: the filter language refuses them with a diagnostic.
    let n = 30_000;
    let cases = [
        (
            "parens",
            format!("{}1{}", "(".repeat(n), ")".repeat(n)),
            128,
        ),
        ("arrays", "[".repeat(n), 128),
        ("nots", format!("{}1", "!".repeat(2 * n)), 0),
        ("sums", format!("1{}", "+1".repeat(n)), 59999),
        ("members", format!("a{}", ".b".repeat(n)), 60000),
        (
            "ternaries",
            format!("{}1{}", "1?".repeat(n / 2), ":1".repeat(n / 2)),
            0,
        ),
    ];
    let tmp = TempDir::new("deep-filters");
    for (name, expression, _) in &cases {
        let recipe = serde_json::json!([{
            "id": 1,
            "name": name,
            "action": "preference-rollback",
            "arguments": {"rolloutSlug": "x"},
            "filter_expression": expression,
            "capabilities": [],
        }]);
        let file = format!("{name}.json");
        tmp.write(&file, recipe.to_string());
        let validate = flightdeck_in(tmp.path(), &["validate", &file]);
        assert_eq!(validate.code, 1, "{name}: {validate:?}");
        let lines = validate.stdout_lines();
        assert_eq!(lines.len(), 1, "{name}: {validate:?}");
        assert!(
            lines[0].contains(
                ": error: [0].filter_expression: filter expression syntax error at offset "
            ) && lines[0].contains("expression is nested too deeply"),
            "{name}: {validate:?}"
        );

        let context = data_dir().join("eval/context-user-a.json");
        let eval = flightdeck_in(
            tmp.path(),
            &[
                "eval",
                "--json",
                "--context",
                &context.to_string_lossy(),
                &file,
            ],
        );
        assert_eq!(eval.code, 1, "{name}: {eval:?}");
        let value: serde_json::Value =
            serde_json::from_str(eval.stdout.trim()).expect("one JSON line");
        assert_eq!(value["matched"], false, "{name}: {eval:?}");
        assert!(
            value["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("filter-error: expression is nested too deeply")),
            "{name}: {eval:?}"
        );
    }
}

#[test]
fn expr_survives_deep_and_huge_requests() {
    let n = 30_000;
    let requests = [
        serde_json::json!({"expr": format!("{}1{}", "(".repeat(n), ")".repeat(n))}),
        serde_json::json!({"expr": "[".repeat(n)}),
        serde_json::json!({"expr": format!("{}1", "-".repeat(2 * n))}),
        serde_json::json!({"expr": format!("a{}", "[0]".repeat(n / 2))}),
        serde_json::json!({"expr": "x".repeat(1 << 20)}),
        serde_json::json!({"expr": "1", "context": {"telemetry": serde_json::Value::String("t".repeat(1 << 20))}}),
    ];
    let mut input: String = requests.iter().map(|r| format!("{r}\n")).collect();
    // Deep JSON on the request line itself, and inside its context.
    input.push_str(&"[".repeat(100_000));
    input.push('\n');
    input.push_str(&format!(
        "{{\"expr\": \"1\", \"context\": {{\"telemetry\": {}}}}}\n",
        "[".repeat(100_000)
    ));
    input.push_str("{\"expr\": \"'done'\"}\n");
    let run = flightdeck_in_with_stdin(&data_dir(), &["expr", "--jsonl"], &input);
    assert_eq!(run.code, 0, "{run:?}");
    let lines = run.stdout_lines();
    assert_eq!(lines.len(), 9, "{run:?}");
    for line in &lines[..2] {
        assert!(
            line.starts_with(
                r#"{"error":"parse error at offset 128: expression is nested too deeply"#
            ),
            "{line}"
        );
    }
    // As in mozjexl, a run of `-` before a number only negates it once (the lexer folds every
    // `-` that cannot be binary into the literal).
    assert_eq!(lines[2], r#"{"value":-1}"#);
    assert_eq!(
        lines[3],
        r#"{"error":"parse error at offset 45000: expression is nested too deeply (depth 15001, limit 256)"}"#
    );
    assert_eq!(
        lines[4],
        r#"{"error":"parse error at offset 65536: expression is longer than 65536 bytes"}"#
    );
    assert_eq!(lines[5], r#"{"value":1}"#);
    // A request line that is a deep array is refused for its type before its depth.
    assert_eq!(
        lines[6],
        r#"{"error":"line 7: invalid type: sequence, expected a string at line 1 column 1"}"#
    );
    assert_eq!(
        lines[7],
        r#"{"error":"line 8: recursion limit exceeded at line 1 column 165"}"#
    );
    assert_eq!(lines[8], r#"{"value":"done"}"#);
}

#[test]
fn deep_context_document_exits_2() {
    let tmp = TempDir::new("deep-context");
    tmp.write(
        "context.json",
        format!("{{\"telemetry\": {}", "[".repeat(100_000)),
    );
    let flights = data_dir().join("eval/flights.json");
    let run = flightdeck_in(
        tmp.path(),
        &[
            "eval",
            "--context",
            "context.json",
            &flights.to_string_lossy(),
        ],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stdout, "");
    assert_lines(
        &run.stderr,
        &["flightdeck: context.json:1:141: recursion limit exceeded at line 1 column 141"],
    );
}

#[test]
fn noise_in_a_directory_walk_and_a_cloudbees_tree() {
    // A file that claims to be a document but is not text spoils neither its neighbours nor the
    // tree it sits in.
    let tmp = TempDir::new("noise-walk");
    tmp.write("docs/a-noise.json", [0xFF, 0xFE, b'{']);
    let flights = std::fs::read(data_dir().join("eval/flights.json")).expect("read fixture");
    tmp.write("docs/b-flights.json", flights);
    tmp.write("docs/tree/experiments/noise.yml", b"flag: x\n\xC0\n");
    tmp.write(
        "docs/tree/experiments/ok.yml",
        "flag: ok\ntype: experiment\nname: ok\nvalue: true\n",
    );
    let validate = flightdeck_in(tmp.path(), &["validate", "docs"]);
    assert_eq!(validate.code, 1, "{validate:?}");
    assert_lines(
        &validate.stdout,
        &[
            "docs/a-noise.json:1:1: error: (root): not UTF-8 text (invalid byte at offset 0)",
            "docs/tree/experiments/noise.yml:2:1: error: (root): not UTF-8 text (invalid byte at offset 8)",
        ],
    );
    assert_lines(&validate.stderr, &["2 error(s) in 3 document(s)"]);

    let context = data_dir().join("eval/context-flights.json");
    let eval = flightdeck_in(
        tmp.path(),
        &[
            "eval",
            "--json",
            "--context",
            &context.to_string_lossy(),
            "docs",
        ],
    );
    assert_eq!(eval.code, 1, "{eval:?}");
    let ids: Vec<String> = eval
        .stdout_lines()
        .iter()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            format!("{} {}", value["id"], value["file"])
        })
        .collect();
    assert_eq!(ids.len(), 11, "{eval:?}");
    assert_eq!(ids[0], r#""deploy-in" "docs/b-flights.json""#);
    // The experiment file that is not text is listed as invalid, named by its file, in file
    // order before `ok.yml`.
    assert_eq!(ids[9], r#""docs/tree/experiments/noise.yml" "docs/tree""#);
    assert_eq!(ids[10], r#""ok" "docs/tree""#);
    assert!(
        eval.stdout_lines()[9]
            .contains(r#""reason":"invalid: not UTF-8 text (invalid byte at offset 8)""#),
        "{eval:?}"
    );
    assert_eq!(eval.stderr, validate.stdout);
}
