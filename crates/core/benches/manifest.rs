//! Whole-manifest benchmarks: parsing and evaluating a 1,000-recipe Normandy manifest for one
//! client, the work a client does on every run before applying anything.
//!
//! Run with `cargo bench -p flightdeck-core --bench manifest`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use flightdeck_core::context::ClientContext;
use flightdeck_core::evaluate::{self, ClientFacts, EvalInput, NoJsFilter};
use flightdeck_core::model::normandy;
use serde_json::json;

const N_RECIPES: usize = 1_000;

/// A realistic mix of recipes: rollouts, multi-preference experiments and rollbacks, with the
/// filters such recipes carry (channel, locale, version range, sampling, preferences).
fn manifest_text() -> String {
    let recipes: Vec<serde_json::Value> = (0..N_RECIPES)
        .map(|idx| {
            let id = 10_000 + idx;
            let channel = ["release", "beta", "nightly"][idx % 3];
            let major = 100 + idx % 30;
            let filter = format!(
                "normandy.channel in ['{channel}', 'beta'] && normandy.locale in ['en-US', 'de', 'fr'] \
                 && normandy.version|versionCompare('{major}.!') >= 0 \
                 && normandy.version|versionCompare('{}.*') < 0 \
                 && [normandy.userId, normandy.recipe.id]|stableSample(0.{})",
                major + 20,
                1 + idx % 9
            );
            let (action, arguments) = match idx % 4 {
                0 | 1 => (
                    "preference-rollout",
                    json!({
                        "slug": format!("rollout-{idx}"),
                        "preferences": [{"preferenceName": format!("feature.{idx}.enabled"), "value": true}]
                    }),
                ),
                2 => (
                    "multi-preference-experiment",
                    json!({
                        "slug": format!("experiment-{idx}"),
                        "userFacingName": format!("Experiment {idx}"),
                        "userFacingDescription": "A benchmark experiment.",
                        "isEnrollmentPaused": false,
                        "branches": [
                            {"slug": "control", "ratio": 1, "preferences": {format!("feature.{idx}.variant"): {"preferenceType": "string", "preferenceValue": "a"}}},
                            {"slug": "treatment", "ratio": 1, "preferences": {format!("feature.{idx}.variant"): {"preferenceType": "string", "preferenceValue": "b"}}}
                        ]
                    }),
                ),
                _ => (
                    "preference-rollback",
                    json!({"rolloutSlug": format!("rollout-{}", idx - 3)}),
                ),
            };
            json!({
                "recipe": {
                    "id": id,
                    "name": format!("Recipe {idx}"),
                    "revision_id": format!("{}", 50_000 + idx),
                    "action": action,
                    "arguments": arguments,
                    "filter_expression": filter,
                    "capabilities": [format!("action.{action}"), "jexl.transform.stableSample", "jexl.transform.versionCompare"]
                },
                "signature": {"signature": "", "timestamp": "2024-07-01T10:00:00Z", "x5u": "https://example.com/x5u", "public_key": ""}
            })
        })
        .collect();
    serde_json::to_string(&recipes).unwrap()
}

fn client_context() -> ClientContext {
    ClientContext::from_json(
        r#"{
            "userId": "299eed1e-be6d-457d-9e53-da7b1a03f10d",
            "appName": "Firefox",
            "version": "128.0.1",
            "buildId": "20240701123456",
            "channel": "release",
            "locale": "en-US",
            "country": "DE",
            "os": "WINNT",
            "now": "2024-07-15T12:00:00Z",
            "prefs": {"feature.1.enabled": {"default": false}}
        }"#,
    )
    .unwrap()
}

fn bench_manifest(c: &mut Criterion) {
    let text = manifest_text();
    let parsed = normandy::parse("bench.json", &text);
    assert!(!parsed.has_errors(), "{:?}", parsed.diagnostics.first());
    let recipes = parsed.value.unwrap();
    assert_eq!(recipes.recipes.len(), N_RECIPES);

    let context = client_context();
    let facts = ClientFacts::default();
    let input = EvalInput {
        context: &context,
        facts: &facts,
        now: context.now().unwrap(),
        js_filter: &NoJsFilter,
    };
    // Make sure the benchmark measures real decisions, not a wall of errors.
    let results = evaluate::normandy::evaluate(&recipes, &input);
    let n_matched = results.iter().filter(|r| r.matched).count();
    let n_errors = results
        .iter()
        .filter(|r| {
            r.reason
                .as_deref()
                .is_some_and(|r| r.starts_with("filter-error"))
        })
        .count();
    assert_eq!(n_errors, 0);
    assert!(
        n_matched > 0 && n_matched < N_RECIPES,
        "{n_matched} matched"
    );

    let mut group = c.benchmark_group("manifest");
    group.bench_function("normandy_1000/parse", |b| {
        b.iter(|| normandy::parse("bench.json", black_box(&text)))
    });
    // Two parts of parsing, timed alone to show where parsing time goes: reading the text
    // into a JSON value, and compiling the 1,000 filter expressions.
    group.bench_function("normandy_1000/parse_json_value", |b| {
        b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(&text)))
    });
    let filters: Vec<&str> = recipes
        .recipes
        .iter()
        .filter_map(|r| r.filter.as_ref().map(|f| f.expression.as_str()))
        .collect();
    assert_eq!(filters.len(), N_RECIPES);
    group.bench_function("normandy_1000/compile_filters", |b| {
        b.iter(|| {
            filters
                .iter()
                .map(|f| flightdeck_core::jexl::Expression::parse_normandy(black_box(f)))
                .collect::<Vec<_>>()
        })
    });
    group.bench_function("normandy_1000/evaluate", |b| {
        b.iter(|| evaluate::normandy::evaluate(black_box(&recipes), black_box(&input)))
    });
    group.finish();
}

criterion_group!(benches, bench_manifest);
criterion_main!(benches);
