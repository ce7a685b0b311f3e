//! Micro-benchmarks of the core's hot paths: compiling and evaluating Normandy filter
//! expressions, each filter transform on its own, and the hashing and version primitives
//! under them.
//!
//! Run with `cargo bench -p flightdeck-core --bench core` (add `-- --quick` for a fast pass).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use flightdeck_core::context::{PrefEntry, PrefSnapshot, PrefValue};
use flightdeck_core::jexl::Expression;
use flightdeck_core::sampling;
use flightdeck_core::value::{Object, Value};
use flightdeck_core::version;

/// A typical Normandy recipe filter: channel, locale, a minimum major version, 50% sample.
const NORMANDY_FILTER: &str = "normandy.channel in ['release','beta'] \
    && normandy.locale == 'en-US' \
    && normandy.version|versionCompare('100.!') >= 0 \
    && [normandy.userId, normandy.recipe.id]|stableSample(0.5)";

/// The same filter without the sampling clause (no SHA-256 per evaluation).
const NORMANDY_FILTER_WITHOUT_SAMPLE: &str = "normandy.channel in ['release','beta'] \
    && normandy.locale == 'en-US' \
    && normandy.version|versionCompare('100.!') >= 0";

const USER_ID: &str = "299eed1e-be6d-457d-9e53-da7b1a03f10d";

/// The Normandy filter environment of a Firefox 128 release client, as Normandy builds it:
/// the same object under `normandy` and `env`, with the recipe under `normandy.recipe`.
fn normandy_vars() -> Value {
    let environment = serde_json::json!({
        "userId": USER_ID,
        "randomizationId": USER_ID,
        "version": "128.0.1",
        "channel": "release",
        "locale": "en-US",
        "country": "DE",
        "distribution": "default",
        "isFirstRun": false,
        "os": {"name": "WINNT", "isWindows": true, "isMac": false, "isLinux": false},
        "appinfo": {
            "name": "Firefox",
            "ID": "{ec8030f7-c20a-464f-9b0e-13a3a9e97384}",
            "version": "128.0.1",
            "platformVersion": "128.0.1",
            "appBuildID": "20240701123456",
            "platformBuildID": "20240701123456",
            "OS": "WINNT"
        },
        "telemetry": {"main": {"environment": {"build": {"architecture": "x86-64"}}}},
        "addons": {
            "uBlock0@raymondhill.net": {
                "id": "uBlock0@raymondhill.net", "isActive": true, "name": "uBlock Origin",
                "type": "extension", "version": "1.58.0", "installDate": "2023-02-01T10:00:00Z"
            },
            "formautofill@mozilla.org": {
                "id": "formautofill@mozilla.org", "isActive": true, "name": "Form Autofill",
                "type": "extension", "version": "1.0.1", "installDate": "2024-07-01T12:34:56Z"
            },
            "pictureinpicture@mozilla.org": {
                "id": "pictureinpicture@mozilla.org", "isActive": false, "name": "Picture-In-Picture",
                "type": "extension", "version": "1.0.0", "installDate": "2024-07-01T12:34:56Z"
            }
        },
        "experiments": {
            "all": ["pref-flip-search-1", "tab-hover-preview", "pdf-alt-text"],
            "active": ["tab-hover-preview"],
            "expired": ["pref-flip-search-1"]
        },
        "studies": {"pref": {}, "addon": {}},
        "rollouts": {"pref": {}, "addon": {}},
        "recipe": {"id": 42}
    });
    let mut environment = match Value::from_json(&environment) {
        Value::Object(object) => Object::clone(&object),
        _ => Object::new(),
    };
    // `request_time` is a Date in Normandy; JSON cannot carry one.
    environment.insert(Arc::from("request_time"), Value::Date(1_722_000_000_000.0));
    let environment = Value::object(environment);
    Value::object(Object::from_iter([
        (Arc::from("normandy"), environment.clone()),
        (Arc::from("env"), environment),
    ]))
}

fn prefs() -> PrefSnapshot {
    BTreeMap::from([
        (
            "browser.startup.homepage".to_owned(),
            PrefEntry {
                default: Some(PrefValue::String("about:home".to_owned())),
                user: Some(PrefValue::String("https://example.org/".to_owned())),
            },
        ),
        (
            "app.normandy.enabled".to_owned(),
            PrefEntry {
                default: Some(PrefValue::Bool(true)),
                user: None,
            },
        ),
        (
            "browser.search.region".to_owned(),
            PrefEntry {
                default: None,
                user: Some(PrefValue::String("DE".to_owned())),
            },
        ),
    ])
}

/// Compiles a benchmark expression and checks, untimed, that it evaluates without error, so
/// that no benchmark measures an error path by accident.
fn compile(source: &str, vars: &Value, prefs: &PrefSnapshot) -> (Expression, Value) {
    let expression = Expression::parse(source).expect("benchmark expressions parse");
    let value = expression
        .eval(vars, prefs)
        .unwrap_or_else(|error| panic!("`{source}` fails to evaluate: {error}"));
    (expression, value)
}

/// (a) Parsing and compiling a whole filter, as done once per recipe revision.
fn bench_parse(c: &mut Criterion) {
    c.bench_function("jexl/parse/normandy_filter", |b| {
        b.iter(|| Expression::parse(black_box(NORMANDY_FILTER)))
    });
}

/// (b), (c) Evaluating the compiled filter against one client.
fn bench_eval(c: &mut Criterion) {
    let vars = normandy_vars();
    let prefs = prefs();
    let mut group = c.benchmark_group("jexl/eval");
    for (name, source) in [
        (
            "normandy_filter_without_sample",
            NORMANDY_FILTER_WITHOUT_SAMPLE,
        ),
        ("normandy_filter_with_stable_sample", NORMANDY_FILTER),
    ] {
        let (expression, value) = compile(source, &vars, &prefs);
        assert!(
            matches!(value, Value::Bool(_)),
            "`{source}` gives {value:?}"
        );
        group.bench_function(name, |b| {
            b.iter(|| expression.eval(black_box(&vars), black_box(&prefs)))
        });
    }
    group.finish();
}

/// (d) Each transform in a minimal expression. `mapToProperty` and `length` need an array,
/// which Normandy's environment gives through `values` and `experiments.*`. The regular
/// expression avoids backslashes: mozjexl unescapes only the first `\\` in a string literal.
const TRANSFORMS: &[(&str, &str)] = &[
    (
        "stableSample",
        "[normandy.userId, normandy.recipe.id]|stableSample(0.5)",
    ),
    (
        "bucketSample",
        "[normandy.userId, 'global-v4']|bucketSample(0, 5000, 10000)",
    ),
    ("versionCompare", "normandy.version|versionCompare('100.!')"),
    (
        "preferenceValue",
        "'browser.startup.homepage'|preferenceValue",
    ),
    (
        "preferenceIsUserSet",
        "'browser.startup.homepage'|preferenceIsUserSet",
    ),
    (
        "preferenceExists",
        "'app.normandy.enabled'|preferenceExists",
    ),
    ("keys", "normandy.addons|keys"),
    ("values", "normandy.addons|values"),
    ("length", "normandy.experiments.all|length"),
    (
        "mapToProperty",
        "normandy.addons|values|mapToProperty('id')",
    ),
    (
        "regExpMatch",
        "normandy.version|regExpMatch('^([0-9]+)[.]([0-9]+)')",
    ),
    ("date", "'2024-07-01T12:34:56Z'|date"),
];

fn bench_transforms(c: &mut Criterion) {
    let vars = normandy_vars();
    let prefs = prefs();
    let mut group = c.benchmark_group("jexl/transform");
    for (name, source) in TRANSFORMS {
        let (expression, value) = compile(source, &vars, &prefs);
        assert!(
            !matches!(value, Value::Undefined | Value::Null),
            "`{source}` gives {value:?}"
        );
        group.bench_function(*name, |b| {
            b.iter(|| expression.eval(black_box(&vars), black_box(&prefs)))
        });
    }
    group.finish();
}

/// (e) The primitives under the transforms.
fn bench_primitives(c: &mut Criterion) {
    let sample_input = Value::array(vec![Value::string(USER_ID), Value::Number(42.0)]);
    c.bench_function("sampling/truncated_hash", |b| {
        b.iter(|| sampling::truncated_hash(black_box(&sample_input)))
    });
    c.bench_function("version/compare_toolkit", |b| {
        b.iter(|| version::compare_toolkit(black_box("128.0.1"), black_box("100.!")))
    });
    // CloudBees seeds are `<stickiness value>.<experiment seed>`.
    let rox_seed = format!("{USER_ID}.checkout-redesign");
    c.bench_function("sampling/rox_bucket", |b| {
        b.iter(|| sampling::rox_bucket(black_box(&rox_seed)))
    });
}

criterion_group!(
    benches,
    bench_parse,
    bench_eval,
    bench_transforms,
    bench_primitives
);
criterion_main!(benches);
