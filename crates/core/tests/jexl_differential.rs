//! Differential test of the filter-expression language against mozjexl 1.1.6.
//!
//! The cases are JSON Lines written by `tests/differential/generate.mjs` (repository root):
//! an expression, the variables and preferences it is evaluated over, and the result that
//! mozjexl (with Normandy's transforms) produced, in a tagged encoding that is exact for
//! JavaScript values. Every case must give the same value here, or an error on both sides.
//!
//! Where the cases come from:
//! - `FLIGHTDECK_JEXL_ORACLE_CASES=<path>`: a freshly generated file (CI generates 10,000+
//!   cases with `tests/differential/run.sh`);
//! - otherwise the committed corpus `tests/data/jexl-oracle.jsonl`, so the test runs offline.
//!
//! `FLIGHTDECK_JEXL_ORACLE_IDS=3,17` restricts the run to those case ids and prints every
//! result, which helps when investigating a mismatch; `FLIGHTDECK_JEXL_ORACLE_SHOW=500` prints
//! that many mismatches instead of the first 30.

// The purity bans in `crates/core/clippy.toml` protect library code; this harness is a test
// that has to read its corpus and configuration from the outside.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use flightdeck_core::context::PrefSnapshot;
use flightdeck_core::jexl::Expression;
use flightdeck_core::value::{Value, js_number_to_string};
use serde::Deserialize;
use serde_json::json;

/// Mismatches printed in full before the summary, unless `FLIGHTDECK_JEXL_ORACLE_SHOW` says.
const SHOWN_MISMATCHES: usize = 30;

fn shown_mismatches() -> usize {
    std::env::var("FLIGHTDECK_JEXL_ORACLE_SHOW").map_or(SHOWN_MISMATCHES, |n| {
        n.trim()
            .parse()
            .unwrap_or_else(|_| panic!("bad FLIGHTDECK_JEXL_ORACLE_SHOW {n:?}"))
    })
}

#[derive(Deserialize)]
struct Case {
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    cat: Option<String>,
    expr: String,
    vars: serde_json::Value,
    #[serde(default)]
    prefs: PrefSnapshot,
    expected: serde_json::Value,
}

/// A number as JavaScript's `String(n)` writes it, except that `-0` keeps its sign.
fn number_text(n: f64) -> String {
    if n == 0.0 && n.is_sign_negative() {
        "-0".to_owned()
    } else {
        js_number_to_string(n)
    }
}

/// The tagged encoding shared with `tests/differential/oracle.mjs`.
fn encode(value: &Value) -> serde_json::Value {
    match value {
        Value::Undefined => json!({"t": "undefined"}),
        Value::Null => json!({"t": "null"}),
        Value::Bool(b) => json!({"t": "bool", "v": b}),
        Value::Number(n) => json!({"t": "number", "v": number_text(*n)}),
        Value::String(s) => json!({"t": "string", "v": &**s}),
        Value::Array(items) => {
            json!({"t": "array", "v": items.iter().map(encode).collect::<Vec<_>>()})
        }
        Value::Object(map) => json!({
            "t": "object",
            "v": map.iter().map(|(k, v)| json!([&**k, encode(v)])).collect::<Vec<_>>(),
        }),
        Value::Date(ms) => json!({"t": "date", "v": number_text(*ms)}),
    }
}

/// Checks that an expected value only uses tags this test knows, so that a newer generator
/// cannot silently turn comparisons into guaranteed mismatches (or matches).
fn check_tags(expected: &serde_json::Value) -> Result<(), String> {
    let tag = expected.get("t").and_then(serde_json::Value::as_str);
    match tag {
        Some("undefined" | "null" | "error") => Ok(()),
        Some("bool") if expected.get("v").is_some_and(serde_json::Value::is_boolean) => Ok(()),
        Some("number" | "date" | "string")
            if expected.get("v").is_some_and(serde_json::Value::is_string) =>
        {
            Ok(())
        }
        Some("array") => match expected.get("v").and_then(serde_json::Value::as_array) {
            Some(items) => items.iter().try_for_each(check_tags),
            None => Err(format!("array without items: {expected}")),
        },
        Some("object") => match expected.get("v").and_then(serde_json::Value::as_array) {
            Some(pairs) => pairs.iter().try_for_each(|pair| match pair.as_array() {
                Some(kv) if kv.len() == 2 && kv[0].is_string() => check_tags(&kv[1]),
                _ => Err(format!("bad object member: {pair}")),
            }),
            None => Err(format!("object without members: {expected}")),
        },
        _ => Err(format!("unknown tagged value: {expected}")),
    }
}

/// What our engine produced, in the tagged encoding (errors carry their message).
fn run_case(case: &Case) -> serde_json::Value {
    let vars = Value::from_json(&case.vars);
    let outcome = catch_unwind(AssertUnwindSafe(|| match Expression::parse(&case.expr) {
        Err(err) => json!({"t": "error", "message": format!("parse error: {err}")}),
        Ok(expr) => match expr.eval(&vars, &case.prefs) {
            Ok(value) => encode(&value),
            Err(err) => json!({"t": "error", "message": err.to_string()}),
        },
    }));
    outcome.unwrap_or_else(|_| json!({"t": "panic"}))
}

/// Errors match errors whatever the message; everything else must be identical.
fn same(expected: &serde_json::Value, actual: &serde_json::Value) -> bool {
    let is_error =
        |v: &serde_json::Value| v.get("t").and_then(serde_json::Value::as_str) == Some("error");
    if is_error(expected) || is_error(actual) {
        return is_error(expected) && is_error(actual);
    }
    expected == actual
}

fn corpus_path() -> (PathBuf, &'static str) {
    match std::env::var_os("FLIGHTDECK_JEXL_ORACLE_CASES") {
        Some(path) => {
            assert!(
                !path.is_empty(),
                "FLIGHTDECK_JEXL_ORACLE_CASES is set but empty; unset it to use the committed corpus"
            );
            (
                PathBuf::from(path),
                "generated cases from FLIGHTDECK_JEXL_ORACLE_CASES",
            )
        }
        None => (
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/jexl-oracle.jsonl"),
            "the committed corpus (set FLIGHTDECK_JEXL_ORACLE_CASES to use a generated file)",
        ),
    }
}

fn selected_ids() -> Option<Vec<u64>> {
    let ids = std::env::var("FLIGHTDECK_JEXL_ORACLE_IDS").ok()?;
    Some(
        ids.split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("bad case id {s:?} in FLIGHTDECK_JEXL_ORACLE_IDS"))
            })
            .collect(),
    )
}

fn describe(case: &Case, line: usize, actual: &serde_json::Value) -> String {
    format!(
        "case {} (line {line}, {}):\n  expr:     {}\n  vars:     {}\n  prefs:    {}\n  expected: {}\n  actual:   {}\n",
        case.id.map_or_else(|| "?".to_owned(), |id| id.to_string()),
        case.cat.as_deref().unwrap_or("uncategorised"),
        serde_json::to_string(&case.expr).unwrap_or_default(),
        case.vars,
        serde_json::to_string(&case.prefs).unwrap_or_default(),
        case.expected,
        actual,
    )
}

#[test]
fn filter_expressions_match_mozjexl() {
    let (path, origin) = corpus_path();
    eprintln!("jexl differential: reading {} — {origin}", path.display());
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read oracle cases {}: {err}", path.display()));
    let only = selected_ids();
    let show = shown_mismatches();

    let mut total = 0usize;
    let mut mismatches = 0usize;
    let mut shown = String::new();
    let mut by_category: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut by_expected: BTreeMap<String, usize> = BTreeMap::new();

    for (idx, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let line_no = idx + 1;
        let case: Case = serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("{}:{line_no}: not a test case: {err}", path.display()));
        if let Err(msg) = check_tags(&case.expected) {
            panic!("{}:{line_no}: {msg}", path.display());
        }
        if let Some(ids) = &only
            && !case.id.is_some_and(|id| ids.contains(&id))
        {
            continue;
        }
        total += 1;
        let actual = run_case(&case);
        let category = case
            .cat
            .clone()
            .unwrap_or_else(|| "uncategorised".to_owned());
        let entry = by_category.entry(category).or_default();
        entry.0 += 1;
        let ok = same(&case.expected, &actual);
        if only.is_some() {
            eprintln!(
                "{}{}",
                if ok { "MATCH " } else { "DIFF " },
                describe(&case, line_no, &actual)
            );
        }
        if !ok {
            mismatches += 1;
            entry.1 += 1;
            let tag = case
                .expected
                .get("t")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("?");
            *by_expected.entry(tag.to_owned()).or_default() += 1;
            if mismatches <= show {
                shown.push_str(&describe(&case, line_no, &actual));
            }
        }
    }

    assert!(total > 0, "no test cases in {}", path.display());
    eprintln!("jexl differential: {total} cases, {mismatches} mismatches");
    if mismatches > 0 {
        eprintln!("{shown}");
        if mismatches > show {
            eprintln!("... and {} more", mismatches - show);
        }
        eprintln!("mismatches by category (mismatched / cases):");
        for (cat, (n, bad)) in &by_category {
            eprintln!("  {cat:<14} {bad:>6} / {n}");
        }
        eprintln!("mismatches by expected result type:");
        for (tag, n) in &by_expected {
            eprintln!("  {tag:<14} {n:>6}");
        }
        panic!(
            "{mismatches} of {total} cases differ from mozjexl 1.1.6 ({})",
            path.display()
        );
    }
}
