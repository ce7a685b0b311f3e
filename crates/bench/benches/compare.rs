//! Flightdeck's filter language against Unleash's Yggdrasil engine on an equivalent rule.
//!
//! The rule: channel in [release, beta], locale en-US, version above 100.0.0, and a 50% rollout
//! sticky on the user id. Flightdeck writes it as a Normandy filter expression; Unleash as a
//! `flexibleRollout` strategy with three constraints. Both are compiled once up front, and
//! only evaluation for one client is timed; the client's context is built beforehand too.
//!
//! Run with `cargo bench -p flightdeck-bench --bench compare` (add `-- --quick` for a fast pass).

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use flightdeck_core::context::PrefSnapshot;
use flightdeck_core::jexl::Expression;
use flightdeck_core::value::{Object, Value};
use unleash_yggdrasil::{ClientFeatures, Context, EngineState};

const FLAG: &str = "checkout-redesign";
const USER_ID: &str = "299eed1e-be6d-457d-9e53-da7b1a03f10d";

/// The rule as a Normandy filter. `versionCompare(…) > 0` is the toolkit-version analogue of
/// Unleash's `SEMVER_GT`; `stableSample` hashes `[userId, flag]` as the rollout's stickiness.
const FLIGHTDECK_RULE: &str = "normandy.channel in ['release','beta'] \
    && normandy.locale == 'en-US' \
    && normandy.version|versionCompare('100.0.0') > 0 \
    && [normandy.userId, 'checkout-redesign']|stableSample(0.5)";

/// The rule as an Unleash client-features document (the `/api/client/features` payload).
fn unleash_features() -> ClientFeatures {
    let document = serde_json::json!({
        "version": 2,
        "features": [{
            "name": FLAG,
            "enabled": true,
            "strategies": [{
                "name": "flexibleRollout",
                "parameters": {"rollout": "50", "stickiness": "userId", "groupId": FLAG},
                "constraints": [
                    {"contextName": "channel", "operator": "IN", "values": ["release", "beta"]},
                    {"contextName": "locale", "operator": "IN", "values": ["en-US"]},
                    {"contextName": "version", "operator": "SEMVER_GT", "value": "100.0.0"}
                ]
            }]
        }]
    });
    serde_json::from_value(document).expect("a valid Unleash client-features document")
}

fn unleash_engine() -> EngineState {
    let engine = EngineState::default();
    if let Some(warnings) = engine.apply_client_features(unleash_features()) {
        assert!(
            warnings.is_empty(),
            "Unleash could not compile the rule: {warnings:?}"
        );
    }
    engine
}

fn unleash_context(user_id: &str, channel: &str) -> Context {
    Context {
        user_id: Some(user_id.to_owned()),
        session_id: None,
        environment: None,
        app_name: Some("Firefox".to_owned()),
        current_time: None,
        remote_address: None,
        properties: Some(HashMap::from([
            ("channel".to_owned(), channel.to_owned()),
            ("locale".to_owned(), "en-US".to_owned()),
            ("version".to_owned(), "128.0.1".to_owned()),
        ])),
    }
}

/// The same client as Normandy filter variables: `{normandy: E, env: E}`.
fn flightdeck_vars(user_id: &str, channel: &str) -> Value {
    let environment = Value::from_json(&serde_json::json!({
        "userId": user_id,
        "channel": channel,
        "locale": "en-US",
        "version": "128.0.1",
        "appinfo": {"name": "Firefox"}
    }));
    Value::object(Object::from_iter([
        (Arc::from("normandy"), environment.clone()),
        (Arc::from("env"), environment),
    ]))
}

/// Checks that the Flightdeck rule behaves as intended before timing it, like the Unleash one.
fn check_flightdeck_rule(expression: &Expression, prefs: &PrefSnapshot) {
    let verdict = |user_id: &str, channel: &str| match expression
        .eval(&flightdeck_vars(user_id, channel), prefs)
    {
        Ok(value) => value.is_truthy(),
        Err(error) => panic!("the Flightdeck rule fails to evaluate: {error}"),
    };
    assert!(!verdict(USER_ID, "nightly"));
    let enabled = (0..2000)
        .filter(|n| verdict(&format!("user-{n}"), "release"))
        .count();
    assert!(
        (800..1200).contains(&enabled),
        "{enabled} of 2000 users enabled"
    );
}

/// Checks that the Unleash rule behaves as intended before timing it: constraints gate, and
/// about half of many users are in the rollout.
fn check_unleash_rule(engine: &EngineState) {
    assert!(!engine.is_enabled(FLAG, &unleash_context(USER_ID, "nightly"), &None));
    let enabled = (0..2000)
        .filter(|n| {
            engine.is_enabled(
                FLAG,
                &unleash_context(&format!("user-{n}"), "release"),
                &None,
            )
        })
        .count();
    assert!(
        (800..1200).contains(&enabled),
        "{enabled} of 2000 users enabled"
    );
}

fn bench_compile(c: &mut Criterion) {
    let mut group = c.benchmark_group("compare/compile");
    group.bench_function("flightdeck_jexl", |b| {
        b.iter(|| Expression::parse(black_box(FLIGHTDECK_RULE)))
    });
    let features = unleash_features();
    group.bench_function("unleash_yggdrasil", |b| {
        b.iter(|| {
            let engine = EngineState::default();
            engine.apply_client_features(black_box(features.clone()));
            engine
        })
    });
    group.finish();
}

fn bench_evaluate(c: &mut Criterion) {
    let mut group = c.benchmark_group("compare/evaluate");

    let expression = Expression::parse(FLIGHTDECK_RULE).expect("the rule parses");
    let vars = flightdeck_vars(USER_ID, "release");
    let prefs = PrefSnapshot::new();
    check_flightdeck_rule(&expression, &prefs);
    group.bench_function("flightdeck_jexl", |b| {
        b.iter(|| expression.eval(black_box(&vars), black_box(&prefs)))
    });

    let engine = unleash_engine();
    check_unleash_rule(&engine);
    let context = unleash_context(USER_ID, "release");
    group.bench_function("unleash_yggdrasil", |b| {
        b.iter(|| engine.is_enabled(black_box(FLAG), black_box(&context), &None))
    });

    group.finish();
}

criterion_group!(benches, bench_compile, bench_evaluate);
criterion_main!(benches);
