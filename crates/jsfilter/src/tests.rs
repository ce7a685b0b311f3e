use serde_json::json;

use super::*;

fn run(source: &str) -> JsFilterOutcome {
    QuickJsFilter::with_default_limits().run(source, &json!({}))
}

fn run_with(limits: JsFilterLimits, source: &str) -> JsFilterOutcome {
    QuickJsFilter::new(limits).run(source, &json!({}))
}

fn eval_failed(reason: &str) -> JsFilterOutcome {
    JsFilterOutcome::EvalFailed(reason.to_owned())
}

/// Golden rows from Experiments.jsm's test_conditions (seed-originals §1.3).
#[test]
fn golden_return_values() {
    let cases = [
        (
            "function filter(context) { return true; }",
            JsFilterOutcome::Truthy,
        ),
        (
            "function filter(context) { return 123; }",
            JsFilterOutcome::Truthy,
        ),
        (
            "function filter(context) { return false; }",
            JsFilterOutcome::Falsy,
        ),
        (
            "function filter(context) { return ''; }",
            JsFilterOutcome::Falsy,
        ),
        (
            "function filter(context) { return undefined; }",
            JsFilterOutcome::Falsy,
        ),
    ];
    for (source, expected) in cases {
        assert_eq!(run(source), expected, "{source}");
    }
}

#[test]
fn golden_throw_reports_the_error_message() {
    assert_eq!(
        run("function filter(context) { throw new Error('some error'); }"),
        JsFilterOutcome::Threw("some error".to_owned())
    );
}

#[test]
fn golden_unparsable_source_fails_to_evaluate() {
    assert!(matches!(
        run("123, this won't work"),
        JsFilterOutcome::EvalFailed(message) if message.starts_with("SyntaxError")
    ));
}

#[test]
fn more_return_values_follow_javascript_truthiness() {
    let cases = [
        ("function filter() {}", JsFilterOutcome::Falsy),
        ("function filter() { return null; }", JsFilterOutcome::Falsy),
        ("function filter() { return 0; }", JsFilterOutcome::Falsy),
        ("function filter() { return -0; }", JsFilterOutcome::Falsy),
        ("function filter() { return NaN; }", JsFilterOutcome::Falsy),
        (
            "function filter() { return 'false'; }",
            JsFilterOutcome::Truthy,
        ),
        ("function filter() { return {}; }", JsFilterOutcome::Truthy),
        ("function filter() { return []; }", JsFilterOutcome::Truthy),
        (
            "function filter() { return Promise.resolve(false); }",
            JsFilterOutcome::Truthy,
        ),
        (
            "var filter = function () { return 1; };",
            JsFilterOutcome::Truthy,
        ),
        ("let filter = () => true;", JsFilterOutcome::Truthy),
        (
            "const filter = (c) => c === undefined;",
            JsFilterOutcome::Falsy,
        ),
        (
            "globalThis.filter = function () { return true; };",
            JsFilterOutcome::Truthy,
        ),
    ];
    for (source, expected) in cases {
        assert_eq!(run(source), expected, "{source}");
    }
}

#[test]
fn thrown_non_errors_are_reported_as_strings() {
    let cases = [
        (
            "function filter() { throw 'plain reason'; }",
            "plain reason",
        ),
        ("function filter() { throw 42; }", "42"),
        ("function filter() { throw undefined; }", "undefined"),
        (
            "function filter() { throw { toString() { return 'custom'; } }; }",
            "custom",
        ),
        (
            "function filter() { throw new TypeError('bad type'); }",
            "bad type",
        ),
        (
            "function filter(c) { return c.missing.deeper; }",
            "cannot read property 'deeper' of undefined",
        ),
        (
            "function filter() { throw Symbol('s'); }",
            "a value that cannot be converted to a string",
        ),
    ];
    for (source, expected) in cases {
        match run(source) {
            JsFilterOutcome::Threw(message) => {
                assert_eq!(message.to_lowercase(), expected.to_lowercase(), "{source}");
            }
            other => panic!("{source}: expected Threw, got {other:?}"),
        }
    }
}

#[test]
fn sources_without_a_filter_function_fail_to_evaluate() {
    for source in [
        "",
        "var x = 1;",
        "var filter = 3;",
        "function notFilter() { return true; }",
    ] {
        assert_eq!(run(source), eval_failed(NO_FILTER_FUNCTION), "{source:?}");
    }
}

#[test]
fn odd_sources_and_contexts_do_not_panic() {
    let with_nul = "function filter() { return true; }\0";
    // QuickJS takes NUL-terminated source, so the engine binding refuses it up front.
    assert!(matches!(
        run(with_nul),
        JsFilterOutcome::EvalFailed(message) if message.contains("null bytes")
    ));
    let runner = QuickJsFilter::with_default_limits();
    let nul_in_context = "function filter(c) { return c.s === 'a\\u0000b'; }";
    assert_eq!(
        runner.run(nul_in_context, &json!({"s": "a\u{0}b"})),
        JsFilterOutcome::Truthy
    );
}

#[test]
fn throwing_at_top_level_fails_to_evaluate() {
    assert_eq!(
        run("throw new Error('at load'); function filter() { return true; }"),
        eval_failed("Error: at load")
    );
    assert_eq!(run("throw 'raw'"), eval_failed("raw"));
}

#[test]
fn the_context_is_passed_as_plain_data() {
    let context = json!({
        "telemetryEnvironment": {
            "build": {"applicationName": "Firefox", "version": "128.0.1"},
            "settings": {"locale": "en-US"}
        }
    });
    let runner = QuickJsFilter::with_default_limits();
    let firefox =
        "function filter(c){ return c.telemetryEnvironment.build.applicationName == 'Firefox'; }";
    assert_eq!(runner.run(firefox, &context), JsFilterOutcome::Truthy);

    let thunderbird = "function filter(c){ return c.telemetryEnvironment.build.applicationName == 'Thunderbird'; }";
    assert_eq!(runner.run(thunderbird, &context), JsFilterOutcome::Falsy);

    let round_trip = r#"function filter(c) {
        return JSON.stringify(c) === '{"telemetryEnvironment":{"build":{"applicationName":"Firefox","version":"128.0.1"},"settings":{"locale":"en-US"}}}';
    }"#;
    assert_eq!(runner.run(round_trip, &context), JsFilterOutcome::Truthy);

    let scalar = "function filter(c) { return c === 5; }";
    assert_eq!(runner.run(scalar, &json!(5)), JsFilterOutcome::Truthy);
}

#[test]
fn ecmascript_builtins_work() {
    let source = r#"function filter() {
        var checks = [
            typeof Date.now() === 'number',
            new Date(0).toISOString() === '1970-01-01T00:00:00.000Z',
            JSON.parse('{"a":[1,2]}').a[1] === 2,
            Math.max(1, 3, 2) === 3,
            /^fire(fox)?$/i.test('Firefox'),
            new Map([[1, 'x']]).get(1) === 'x',
            [3, 1, 2].sort().join() === '1,2,3',
            'a-b'.split('-').length === 2,
        ];
        return checks.every(function (ok) { return ok; });
    }"#;
    assert_eq!(run(source), JsFilterOutcome::Truthy);
}

#[test]
fn no_host_apis_are_exposed() {
    let names = [
        "require",
        "fetch",
        "process",
        "console",
        "performance",
        "setTimeout",
        "XMLHttpRequest",
        "std",
        "os",
        "print",
        "scriptArgs",
    ];
    for name in names {
        let source = format!("function filter() {{ return typeof {name} === 'undefined'; }}");
        assert_eq!(
            run(&source),
            JsFilterOutcome::Truthy,
            "{name} is visible in the sandbox"
        );
    }
}

#[test]
fn runs_are_isolated_from_each_other() {
    let runner = QuickJsFilter::with_default_limits();
    let polluter =
        "Object.prototype.leak = 1; globalThis.shared = 1; function filter() { return true; }";
    assert_eq!(runner.run(polluter, &json!({})), JsFilterOutcome::Truthy);
    let observer =
        "function filter() { return typeof shared === 'undefined' && ({}).leak === undefined; }";
    assert_eq!(runner.run(observer, &json!({})), JsFilterOutcome::Truthy);
}

#[test]
fn work_scheduled_by_the_filter_never_runs() {
    let source = "function filter() {
        Promise.resolve().then(function () { while (true) {} });
        return true;
    }";
    assert_eq!(run_with(short_limits(), source), JsFilterOutcome::Truthy);
}

fn short_limits() -> JsFilterLimits {
    JsFilterLimits {
        time: Duration::from_millis(50),
        ..JsFilterLimits::default()
    }
}

#[test]
fn endless_loops_hit_the_time_limit() {
    let sources = [
        "function filter() { while (true) {} }",
        "while (true) {} function filter() { return true; }",
        // Catching the interrupt does not help: it is uncatchable.
        "function filter() { for (;;) { try { while (true) {} } catch (e) {} } }",
        "function filter() { throw { toString() { for (;;) {} } }; }",
    ];
    for source in sources {
        assert_eq!(
            run_with(short_limits(), source),
            eval_failed(TIME_LIMIT_EXCEEDED),
            "{source}"
        );
    }
}

#[test]
fn allocation_bombs_hit_the_memory_limit() {
    let sources = [
        "function filter() { let a = []; for (;;) a.push(new Array(1e6).fill(1)); }",
        "function filter() { let parts = []; for (;;) parts.push('x'.repeat(1e5) + parts.length); }",
        "let a = []; for (;;) a.push({ n: a.length }); function filter() { return true; }",
        "function filter() { let a = []; for (;;) a.push([a.length, 1, 2]); }",
        "function filter() { let o = {}; for (let i = 0; ; i++) o['k' + i] = i; }",
    ];
    let limits = JsFilterLimits {
        // Generous, so the memory limit (not the clock) stops these on a slow machine.
        time: Duration::from_secs(30),
        memory_bytes: 8 * 1024 * 1024,
        ..JsFilterLimits::default()
    };
    for source in sources {
        assert_eq!(
            run_with(limits, source),
            eval_failed(MEMORY_LIMIT_EXCEEDED),
            "{source}"
        );
    }
}

#[test]
fn a_memory_limit_too_small_for_the_builtins_fails_cleanly() {
    let limits = JsFilterLimits {
        memory_bytes: 4 * 1024,
        ..JsFilterLimits::default()
    };
    assert_eq!(
        run_with(limits, "function filter() { return true; }"),
        eval_failed(MEMORY_LIMIT_EXCEEDED)
    );
}

#[test]
fn a_thrown_null_is_taken_for_memory_exhaustion() {
    assert_eq!(
        run("function filter() { throw null; }"),
        eval_failed(MEMORY_LIMIT_EXCEEDED)
    );
}

#[test]
fn deep_recursion_hits_the_stack_limit() {
    let sources = [
        "function filter() { return filter(); }",
        "function f(n) { return f(n + 1) + 1; } f(0); function filter() { return true; }",
        "function filter() { return JSON.stringify(deep(30000)).length > 0; }
         function deep(n) { var o = {}; for (var i = 0; i < n; i++) o = {o: o}; return o; }",
    ];
    let limits = JsFilterLimits {
        time: Duration::from_secs(30),
        ..JsFilterLimits::default()
    };
    for source in sources {
        assert_eq!(
            run_with(limits, source),
            eval_failed(STACK_LIMIT_EXCEEDED),
            "{source}"
        );
    }
}

#[test]
fn a_deeply_nested_context_does_not_crash() {
    // serde_json refuses to parse JSON nested deeper than 128, so that is as deep as a context
    // gets; a small stack limit makes the engine's JSON parser the part that runs out.
    let mut context = json!(1);
    for _ in 0..127 {
        context = json!([context]);
    }
    let limits = JsFilterLimits {
        stack_bytes: 16 * 1024,
        ..JsFilterLimits::default()
    };
    let outcome = QuickJsFilter::new(limits).run("function filter() { return true; }", &context);
    assert!(
        matches!(
            outcome,
            JsFilterOutcome::Truthy | JsFilterOutcome::EvalFailed(_)
        ),
        "{outcome:?}"
    );
}

#[test]
fn limits_are_configurable() {
    let limits = JsFilterLimits {
        time: Duration::from_millis(5),
        memory_bytes: 1 << 20,
        stack_bytes: 64 * 1024,
    };
    let runner = QuickJsFilter::new(limits);
    assert_eq!(runner.limits(), limits);
    assert_eq!(
        QuickJsFilter::with_default_limits().limits(),
        JsFilterLimits::default()
    );
    assert_eq!(
        runner.run("function filter() { return 1; }", &json!(null)),
        JsFilterOutcome::Truthy
    );
}

#[test]
fn usable_as_a_trait_object() {
    let runner: &dyn JsFilter = &QuickJsFilter::with_default_limits();
    assert_eq!(
        runner.run("function filter(c) { return c.on; }", &json!({"on": true})),
        JsFilterOutcome::Truthy
    );
}
