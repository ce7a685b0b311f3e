//! `flightdeck expr`: evaluate filter expressions against client context documents.

use std::io::{self, BufRead, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use flightdeck_core::context::{ClientContext, filter_vars};
use flightdeck_core::jexl::Expression;
use serde_json::json;

/// Evaluates one expression and prints its result line; exits 1 when it is an error.
pub fn run_one(context_path: Option<&Path>, source: &str) -> anyhow::Result<ExitCode> {
    let (context, now) = match context_path {
        Some(path) => crate::read_context(path)?,
        None => {
            let context = ClientContext::default();
            let now = crate::evaluation_time(&context);
            (context, now)
        }
    };
    let line = evaluate(source, &context, now);
    println!("{line}");
    Ok(if line.get("error").is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Reads `{"expr", "context"}` lines from stdin and writes one result line for each.
pub fn run_jsonl() -> anyhow::Result<ExitCode> {
    let stdin = io::stdin().lock();
    let mut stdout = io::BufWriter::new(io::stdout().lock());
    for (idx, line) in stdin.lines().enumerate() {
        let line = line.context("cannot read standard input")?;
        if line.trim().is_empty() {
            continue;
        }
        let result = match parse_request(&line) {
            Ok((source, context, now)) => evaluate(&source, &context, now),
            Err(message) => json!({ "error": format!("line {}: {message}", idx + 1) }),
        };
        writeln!(stdout, "{result}").context("cannot write standard output")?;
    }
    stdout.flush().context("cannot write standard output")?;
    Ok(ExitCode::SUCCESS)
}

fn parse_request(line: &str) -> Result<(String, ClientContext, jiff::Timestamp), String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Request {
        expr: String,
        #[serde(default)]
        context: Option<serde_json::Value>,
    }
    let request: Request = serde_json::from_str(line).map_err(|err| err.to_string())?;
    // Reading the context checks its `now` too (an invalid one is an error line).
    let context = match request.context {
        Some(value) => serde_json::from_value(value).map_err(|err| format!("context: {err}"))?,
        None => ClientContext::default(),
    };
    let now = crate::evaluation_time(&context);
    Ok((request.expr, context, now))
}

/// The result line for one expression: `{"value": V}`, `{"undefined": true}` or `{"error": …}`.
fn evaluate(source: &str, context: &ClientContext, now: jiff::Timestamp) -> serde_json::Value {
    let expression = match Expression::parse(source) {
        Ok(expression) => expression,
        Err(err) => return json!({ "error": format!("parse error {err}") }),
    };
    let environment = context.filter_environment(now);
    let vars = filter_vars(&environment, None);
    match expression.eval(&vars, &context.prefs) {
        Ok(value) => match value.to_json() {
            Some(json) => json!({ "value": json }),
            None => json!({ "undefined": true }),
        },
        Err(err) => json!({ "error": err.to_string() }),
    }
}
