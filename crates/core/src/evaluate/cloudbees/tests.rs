use super::*;
use crate::context::ClientContext;
use crate::evaluate::{ClientFacts, NoJsFilter};
use crate::model::cloudbees::{parse_experiment, parse_target_group};

fn config(experiments: &[&str], groups: &[&str]) -> Configuration {
    Configuration {
        experiments: experiments
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let parsed = parse_experiment(&format!("e{i}.yml"), text);
                assert!(!parsed.has_errors(), "{:#?}", parsed.diagnostics);
                parsed.value.unwrap()
            })
            .collect(),
        archived_experiments: Vec::new(),
        rejected: Vec::new(),
        target_groups: groups
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let parsed = parse_target_group(&format!("g{i}.yml"), text);
                assert!(!parsed.has_errors(), "{:#?}", parsed.diagnostics);
                parsed.value.unwrap()
            })
            .collect(),
    }
}

fn context(json: serde_json::Value) -> ClientContext {
    serde_json::from_value(json).unwrap()
}

fn now() -> jiff::Timestamp {
    "2020-07-25T00:00:00Z".parse().unwrap()
}

fn eval_at(config: &Configuration, ctx: &ClientContext, at: jiff::Timestamp) -> Vec<ItemResult> {
    let facts = ClientFacts::default();
    let input = EvalInput {
        context: ctx,
        facts: &facts,
        now: at,
        js_filter: &NoJsFilter,
    };
    evaluate(config, &input)
}

/// `(value, reason, matched)` of the flag `flag`.
fn decide(
    config: &Configuration,
    ctx: &ClientContext,
    flag: &str,
) -> (serde_json::Value, String, bool) {
    decide_at(config, ctx, flag, now())
}

fn decide_at(
    config: &Configuration,
    ctx: &ClientContext,
    flag: &str,
    at: jiff::Timestamp,
) -> (serde_json::Value, String, bool) {
    let results = eval_at(config, ctx, at);
    let r = results.iter().find(|r| r.id == flag).unwrap();
    assert_eq!(r.kind, "flag");
    assert_eq!(r.branch, None);
    (
        r.value.clone().unwrap_or(serde_json::Value::Null),
        r.reason.clone().unwrap(),
        r.matched,
    )
}

fn in_group(config: &Configuration, name: &str, ctx: &ClientContext) -> bool {
    let facts = ClientFacts::default();
    let input = EvalInput {
        context: ctx,
        facts: &facts,
        now: now(),
        js_filter: &NoJsFilter,
    };
    in_target_group(config, name, &input)
}

const DJ: &str = "type: target-group
name: DJ
conditions:
  - operator: is-undefined
    property: plan
  - operator: gte
    property: playlist_count
    operand: 1010
";

const INTERNAL: &str = "type: target-group
name: Internal emp
conditions:
  - {operator: regex, property: email, operand: '@cloudbees\\.com$'}
";

const BAD_VERSIONS: &str = "type: target-group
name: Bad Versions
operator: or
conditions:
  - {operator: semver-eq, property: rox.app_release, operand: 4.6.2}
  - {operator: semver-eq, property: rox.app_release, operand: 4.5.0}
";

#[test]
fn dj_group_golden_case() {
    let config = config(&[], &[DJ]);
    let ctx = context(serde_json::json!({"properties": {"playlist_count": 2000}}));
    assert!(in_group(&config, "DJ", &ctx));
    let ctx = context(serde_json::json!({"properties": {"plan": "x", "playlist_count": 2000}}));
    assert!(!in_group(&config, "DJ", &ctx));
    let ctx = context(serde_json::json!({"properties": {"playlist_count": 1009}}));
    assert!(!in_group(&config, "DJ", &ctx));
    // A numeric string compares as a number; a JSON null is undefined.
    let ctx = context(serde_json::json!({"properties": {"plan": null, "playlist_count": "1010"}}));
    assert!(in_group(&config, "DJ", &ctx));
}

#[test]
fn bad_versions_group_golden_case() {
    let config = config(&[], &[BAD_VERSIONS]);
    let app = |v: &str| context(serde_json::json!({"version": v}));
    assert!(in_group(&config, "Bad Versions", &app("4.5.0")));
    assert!(in_group(&config, "Bad Versions", &app("4.6.2")));
    assert!(!in_group(&config, "Bad Versions", &app("4.5")));
    assert!(!in_group(
        &config,
        "Bad Versions",
        &context(serde_json::json!({}))
    ));
}

#[test]
fn unknown_target_group_is_never_matched() {
    let config = config(&[], &[]);
    assert!(!in_group(
        &config,
        "targetGroup1",
        &context(serde_json::json!({}))
    ));
}

#[test]
fn nor_group_is_none_of() {
    let flag = "type: experiment
flag: f
conditions:
  - group: {operator: nor, name: [DJ, Internal emp]}
    value: true
value: false
";
    let not_flag = flag.replace("nor", "not").replace("flag: f", "flag: g");
    let config = config(&[flag, &not_flag], &[DJ, INTERNAL]);
    let dj = context(serde_json::json!({"properties": {"playlist_count": 2000}}));
    let staff =
        context(serde_json::json!({"properties": {"plan": "x", "email": "a@cloudbees.com"}}));
    let neither =
        context(serde_json::json!({"properties": {"plan": "x", "email": "a@example.com"}}));
    for name in ["f", "g"] {
        assert_eq!(
            decide(&config, &dj, name),
            (false.into(), "default".into(), true)
        );
        assert_eq!(decide(&config, &staff, name).0, false);
        assert_eq!(
            decide(&config, &neither, name),
            (true.into(), "condition[0]".into(), true)
        );
    }
}

#[test]
fn group_and_or_operators() {
    let flag = |op: &str| {
        format!(
            "type: experiment\nflag: {op}\nconditions:\n  - group: {{operator: {op}, name: [DJ, Internal emp]}}\n    value: true\n"
        )
    };
    let config = config(&[&flag("or"), &flag("and")], &[DJ, INTERNAL]);
    let both = context(
        serde_json::json!({"properties": {"playlist_count": 2000, "email": "a@cloudbees.com"}}),
    );
    let one = context(serde_json::json!({"properties": {"playlist_count": 2000}}));
    assert_eq!(decide(&config, &both, "or").0, true);
    assert_eq!(decide(&config, &both, "and").0, true);
    assert_eq!(decide(&config, &one, "or").0, true);
    // No `value` at the root of a boolean flag: false.
    assert_eq!(
        decide(&config, &one, "and"),
        (false.into(), "default".into(), true)
    );
}

#[test]
fn fifty_percent_split_golden_case() {
    let flag = "flag: seed2\ntype: experiment\nvalue:\n  - option: true\n    percentage: 50\n";
    let config = config(&[flag], &[]);
    // bucket("device2.seed2") = 0.187… < 0.5.
    let ctx = context(serde_json::json!({"userId": "device2"}));
    assert_eq!(
        decide(&config, &ctx, "seed2"),
        (true.into(), "default".into(), true)
    );
    let mut trues = 0;
    for i in 0..2000 {
        let ctx = context(serde_json::json!({"userId": format!("user-{i}")}));
        let (value, _, matched) = decide(&config, &ctx, "seed2");
        assert!(matched);
        let seed = format!("user-{i}.seed2");
        assert_eq!(value, crate::sampling::rox_bucket(&seed) < 0.5);
        if value == true {
            trues += 1;
        }
    }
    assert!((900..=1100).contains(&trues), "{trues} of 2000");
}

#[test]
fn split_uses_stickiness_property_and_consecutive_ranges() {
    let flag = "type: experiment
flag: default.theme
stickinessProperty: email
value:
  - {percentage: 33, option: blue}
  - {percentage: 34, option: red}
  - {percentage: 3, option: 'false'}
";
    let config = config(&[flag], &[]);
    let mut counts: HashMap<String, usize> = HashMap::new();
    for i in 0..3000 {
        let email = format!("u{i}@example.com");
        let ctx = context(serde_json::json!({"userId": "same", "properties": {"email": email}}));
        let (value, reason, matched) = decide(&config, &ctx, "default.theme");
        let bucket = crate::sampling::rox_bucket(&format!("{email}.default.theme"));
        let expected = if bucket < 0.33 {
            serde_json::json!("blue")
        } else if bucket < 0.67 {
            serde_json::json!("red")
        } else if bucket < 0.70 {
            serde_json::json!("false")
        } else {
            serde_json::Value::Null
        };
        assert_eq!(value, expected, "bucket {bucket}");
        assert_eq!(matched, !value.is_null());
        assert_eq!(reason, "default");
        *counts.entry(value.to_string()).or_default() += 1;
    }
    // The remainder (30 %) of a string flag is the code default.
    let remainder = counts["null"];
    assert!((800..=1000).contains(&remainder), "{counts:?}");
    // Without the stickiness property the split cannot be decided.
    let ctx = context(serde_json::json!({"userId": "someone"}));
    assert_eq!(
        decide(&config, &ctx, "default.theme"),
        (serde_json::Value::Null, "no-stickiness-value".into(), false)
    );
}

#[test]
fn boolean_split_below_100_gives_the_complement() {
    let flag = "type: experiment\nflag: f\nvalue:\n  - {percentage: 10, option: false}\n";
    let config = config(&[flag], &[]);
    let mut falses = 0;
    for i in 0..1000 {
        let ctx = context(serde_json::json!({"userId": format!("user-{i}")}));
        let (value, _, matched) = decide(&config, &ctx, "f");
        assert!(matched);
        if value == false {
            falses += 1;
        }
    }
    assert!((60..=140).contains(&falses), "{falses}");
}

#[test]
fn splits_that_do_not_depend_on_the_bucket_need_no_stickiness() {
    let flag = "type: experiment\nflag: f\nvalue:\n  - {percentage: 0, option: false}\n  - {option: true}\n";
    let config = config(&[flag], &[]);
    let anonymous = context(serde_json::json!({}));
    assert_eq!(
        decide(&config, &anonymous, "f"),
        (true.into(), "default".into(), true)
    );
}

const SCHEDULED: &str = "type: experiment
flag: rollout
value:
  - {from: 2020-06-17T14:56:19.608Z, percentage: 0, option: true}
  - {from: 2020-06-30T09:00:00.000Z, percentage: 10, option: true}
  - {from: 2020-07-22T09:00:00.000Z, percentage: 50, option: true}
  - {from: 2020-07-31T09:00:00.000Z, percentage: 100, option: true}
";

#[test]
fn scheduled_values_follow_the_latest_entry() {
    let config = config(&[SCHEDULED], &[]);
    let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
    let share = |when: jiff::Timestamp| {
        (0..1000)
            .filter(|i| {
                let ctx = context(serde_json::json!({"userId": format!("user-{i}")}));
                decide_at(&config, &ctx, "rollout", when).0 == true
            })
            .count()
    };
    assert_eq!(share(at("2020-06-01T00:00:00Z")), 0);
    assert_eq!(share(at("2020-06-20T00:00:00Z")), 0);
    let ten = share(at("2020-07-01T00:00:00Z"));
    assert!((60..=140).contains(&ten), "{ten}");
    let half = share(at("2020-07-25T00:00:00Z"));
    assert!((450..=550).contains(&half), "{half}");
    assert_eq!(share(at("2020-08-01T00:00:00Z")), 1000);
    // Users in the 10 % stay in at 50 % (same bucket, growing range).
    for i in 0..200 {
        let ctx = context(serde_json::json!({"userId": format!("user-{i}")}));
        if decide_at(&config, &ctx, "rollout", at("2020-07-01T00:00:00Z")).0 == true {
            assert_eq!(
                decide_at(&config, &ctx, "rollout", at("2020-07-25T00:00:00Z")).0,
                true
            );
        }
    }
    // 0 % and 100 % need no stickiness value; 50 % does.
    let anonymous = context(serde_json::json!({}));
    assert_eq!(
        decide_at(&config, &anonymous, "rollout", at("2020-08-01T00:00:00Z")).0,
        true
    );
    assert_eq!(
        decide_at(&config, &anonymous, "rollout", at("2020-06-01T00:00:00Z")).0,
        false
    );
    assert_eq!(
        decide_at(&config, &anonymous, "rollout", at("2020-07-25T00:00:00Z")).1,
        "no-stickiness-value"
    );
}

#[test]
fn scheduled_option_false_gives_true_to_the_rest() {
    let flag = "type: experiment\nflag: kill\nvalue:\n  - {from: 2020-01-01, percentage: 100, option: false}\n";
    let config = config(&[flag], &[]);
    let ctx = context(serde_json::json!({}));
    assert_eq!(
        decide_at(
            &config,
            &ctx,
            "kill",
            "2019-12-31T00:00:00Z".parse().unwrap()
        )
        .0,
        true
    );
    assert_eq!(decide(&config, &ctx, "kill").0, false);
}

#[test]
fn disabled_experiment_serves_the_code_default() {
    let flag = "type: experiment\nflag: f\nenabled: false\nvalue: true\n";
    let config = config(&[flag], &[]);
    assert_eq!(
        decide(&config, &context(serde_json::json!({})), "f"),
        (serde_json::Value::Null, "disabled".into(), false)
    );
}

#[test]
fn archived_experiments_are_not_evaluated() {
    let config = config(
        &[
            "type: experiment\nflag: old\narchived: true\nvalue: true\n",
            "type: experiment\nflag: new\n",
        ],
        &[],
    );
    let results = eval_at(&config, &context(serde_json::json!({})), now());
    let ids: Vec<_> = results.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["new"]);
}

#[test]
fn platform_configuration_replaces_the_root() {
    let flag = "type: experiment
flag: f
platforms:
  - name: Android
    conditions:
      - version: {operator: semver-gte, semver: 2.0.0}
        value: true
    value: false
  - name: iOS
conditions:
  - value: true
value: true
";
    let config = config(&[flag], &[]);
    let on = |platform: &str, version: &str| {
        context(serde_json::json!({"platform": platform, "version": version}))
    };
    assert_eq!(
        decide(&config, &on("Android", "2.1.0"), "f"),
        (true.into(), "platform Android: condition[0]".into(), true)
    );
    assert_eq!(
        decide(&config, &on("Android", "1.9"), "f"),
        (false.into(), "platform Android: default".into(), true)
    );
    assert_eq!(
        decide(&config, &on("iOS", "1.0"), "f"),
        (false.into(), "platform iOS: default".into(), true)
    );
    assert_eq!(
        decide(&config, &on("Browser", "1.0"), "f"),
        (true.into(), "condition[0]".into(), true)
    );
}

#[test]
fn conditions_are_an_if_else_chain_of_and_parts() {
    let flag = "type: experiment
flag: f
availableValues: [a, b, c]
conditions:
  - property: {name: country, operator: in-array, operand: [US, UK]}
    version: {operator: semver-lt, semver: '2.0'}
    value: a
  - property: {name: country, operator: in-array, operand: [US, UK]}
    value: b
value: c
";
    let config = config(&[flag], &[]);
    let ctx = |country: &str, version: &str| {
        context(serde_json::json!({"version": version, "properties": {"country": country}}))
    };
    assert_eq!(
        decide(&config, &ctx("US", "1.5"), "f"),
        ("a".into(), "condition[0]".into(), true)
    );
    assert_eq!(
        decide(&config, &ctx("UK", "2.0"), "f"),
        ("b".into(), "condition[1]".into(), true)
    );
    assert_eq!(
        decide(&config, &ctx("FR", "1.0"), "f"),
        ("c".into(), "default".into(), true)
    );
}

#[test]
fn string_flag_without_value_serves_the_code_default() {
    let flag = "type: experiment\nflag: f\navailableValues: [a, b]\nconditions:\n  - property: {name: x, operator: is-true}\n    value: a\n";
    let config = config(&[flag], &[]);
    assert_eq!(
        decide(&config, &context(serde_json::json!({})), "f"),
        (serde_json::Value::Null, "default".into(), false)
    );
    assert_eq!(
        decide(
            &config,
            &context(serde_json::json!({"properties": {"x": true}})),
            "f"
        ),
        ("a".into(), "condition[0]".into(), true)
    );
}

#[test]
fn dependencies_compare_flag_values_as_strings() {
    // rox golden case: v1 = ifThen(eq("true", flagValue("f1")), "red", "green") with f1 = false.
    let v1 = "type: experiment\nflag: v1\navailableValues: [red, green, blue]\nconditions:\n  - dependency: {flag: f1, value: true}\n    value: red\nvalue: green\n";
    let f1_false = "type: experiment\nflag: f1\nvalue: false\n";
    let f1_true = "type: experiment\nflag: f1\nvalue: true\n";
    let ctx = context(serde_json::json!({}));
    assert_eq!(decide(&config(&[v1, f1_false], &[]), &ctx, "v1").0, "green");
    assert_eq!(decide(&config(&[v1, f1_true], &[]), &ctx, "v1").0, "red");
    // A flag nobody controls reads as "false".
    let on_missing = "type: experiment\nflag: m\nconditions:\n  - dependency: {flag: nowhere, value: false}\n    value: true\n";
    assert_eq!(
        decide(&config(&[on_missing], &[]), &ctx, "m"),
        (true.into(), "condition[0]".into(), true)
    );
    // A string dependency value matches a string flag value.
    let theme = "type: experiment\nflag: theme\nvalue: dark\n";
    let on_theme = "type: experiment\nflag: t\nconditions:\n  - dependency: {flag: theme, value: dark}\n    value: true\n";
    assert_eq!(decide(&config(&[on_theme, theme], &[]), &ctx, "t").0, true);
}

#[test]
fn dependency_cycles_are_reported() {
    let a = "type: experiment\nflag: a\nconditions:\n  - dependency: {flag: b, value: true}\n    value: true\nvalue: false\n";
    let b = "type: experiment\nflag: b\nconditions:\n  - dependency: {flag: a, value: true}\n    value: true\nvalue: false\n";
    let c = "type: experiment\nflag: c\nconditions:\n  - dependency: {flag: a, value: false}\n    value: true\n";
    let config = config(&[a, b, c], &[]);
    let ctx = context(serde_json::json!({}));
    for flag in ["a", "b", "c"] {
        assert_eq!(
            decide(&config, &ctx, flag),
            (serde_json::Value::Null, "dependency-cycle".into(), false)
        );
    }
}

#[test]
fn long_dependency_chains_stop() {
    let texts: Vec<String> = (0..100)
        .map(|i| {
            format!(
                "type: experiment\nflag: f{i}\nconditions:\n  - dependency: {{flag: f{}, value: false}}\n    value: true\n",
                i + 1
            )
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let config = config(&refs, &[]);
    let results = eval_at(&config, &context(serde_json::json!({})), now());
    assert_eq!(results[0].reason.as_deref(), Some("dependency-too-deep"));
    assert_eq!(results[99].value, Some(serde_json::json!(true)));
}

/// Property-condition semantics, including the rox golden cases of seed-originals §5.4.
#[test]
fn operator_semantics() {
    use PropertyOperator as Op;
    let cond = |op: Op, operand: Option<Operand>| PropertyCondition::new("p".into(), op, operand);
    let num = |n: f64| Some(Operand::Scalar(OperandValue::Number(n)));
    let text = |s: &str| Some(Operand::Scalar(OperandValue::String(s.into())));
    let regex = |p: &str, f: &str| {
        Some(Operand::List(vec![
            OperandValue::String(p.into()),
            OperandValue::String(f.into()),
        ]))
    };
    let n = Value::Number;
    let s = Value::string;
    let u = Value::Undefined;
    let cases: Vec<(PropertyCondition, Value, bool)> = vec![
        (cond(Op::Lt, num(100.0)), n(500.0), false),
        (cond(Op::Lt, num(500.0)), n(500.0), false),
        (cond(Op::Lt, num(500.54)), n(500.0), true),
        (cond(Op::Lt, text("500.54")), s("500"), true),
        (cond(Op::Gte, num(500.0)), s("500"), true),
        (cond(Op::Gte, num(500.0)), u.clone(), false),
        (cond(Op::Lt, num(500.0)), u.clone(), false),
        (cond(Op::Gt, num(0.92)), n(0.93), true),
        (cond(Op::Lte, num(1.0)), s("abc"), false),
        (cond(Op::Eq, num(500.0)), s("500"), false),
        (cond(Op::Eq, num(500.0)), n(500.0), true),
        (cond(Op::Eq, text("World")), s("World"), true),
        (cond(Op::Ne, text("World")), s("World"), false),
        (cond(Op::Ne, text("World")), u.clone(), true),
        (cond(Op::Eq, text("false")), Value::Bool(false), false),
        (cond(Op::IsTrue, None), Value::Bool(true), true),
        (cond(Op::IsTrue, None), s("true"), false),
        (cond(Op::IsFalse, None), Value::Bool(false), true),
        (cond(Op::IsFalse, None), u.clone(), true),
        (cond(Op::SemverLt, text("1.1")), s("1.1.0"), false),
        (cond(Op::SemverGte, text("1.1")), s("1.1.0"), true),
        (cond(Op::SemverEq, text("1")), s("1.0.0"), false),
        (cond(Op::SemverNe, text("1.0.0.1")), s("1.0.1"), true),
        (cond(Op::SemverLt, text("1.2")), s("1.1"), true),
        (cond(Op::SemverGt, text("1.2")), s("1.1.1"), false),
        (cond(Op::SemverGt, text("1.2")), s("1.2.1"), true),
        (cond(Op::SemverGte, text("1.1")), u.clone(), false),
        (cond(Op::SemverLt, text("100.0.5")), n(3.0), false),
        (cond(Op::IsUndefined, None), u.clone(), true),
        (cond(Op::IsUndefined, None), n(123123.0), false),
        (cond(Op::IsUndefined, None), s("undefined"), false),
        (cond(Op::Regex, text("^2*$")), s("22222"), true),
        (cond(Op::Regex, text("222")), s(".*"), false),
        (cond(Op::Regex, regex("(IL|US)", "")), s("Us"), false),
        (cond(Op::Regex, regex("(IL|US)", "i")), s("uS"), true),
        (
            cond(Op::Regex, text(".*jet\\.com$")),
            s("test@jet.com"),
            true,
        ),
        (cond(Op::Regex, regex(".", "s")), s("\n"), true),
        (cond(Op::Regex, text("\\d")), n(5.0), false),
        (
            cond(Op::Regex, text("*@cloudbees.com")),
            s("a@cloudbees.com"),
            false,
        ),
        (
            cond(
                Op::InArray,
                Some(Operand::List(vec![
                    OperandValue::String("a".into()),
                    OperandValue::Number(5.0),
                ])),
            ),
            n(5.0),
            true,
        ),
        (
            cond(
                Op::InArray,
                Some(Operand::List(vec![OperandValue::String("5".into())])),
            ),
            n(5.0),
            false,
        ),
        (
            cond(
                Op::InArray,
                Some(Operand::List(vec![OperandValue::String("a".into())])),
            ),
            u.clone(),
            false,
        ),
    ];
    for (condition, value, expected) in cases {
        assert_eq!(
            operator_holds(&condition, &value),
            expected,
            "{} {:?} with {:?}",
            condition.operator.as_str(),
            condition.operand,
            value
        );
    }
}

#[test]
fn built_in_properties() {
    let group = "type: target-group
name: builtins
conditions:
  - {operator: eq, property: rox.distinct_id, operand: u1}
  - {operator: semver-gte, property: rox.app_release, operand: 3.0.1}
  - {operator: eq, property: rox.platform, operand: Android}
  - {operator: gte, property: rox.now, operand: 1595635200000}
";
    let config = config(&[], &[group]);
    let ctx = context(serde_json::json!({"userId": "u1", "version": "3.1", "platform": "Android"}));
    assert!(in_group(&config, "builtins", &ctx));
    // An explicit property wins over the built-in.
    let ctx = context(
        serde_json::json!({"userId": "u1", "version": "3.1", "platform": "Android", "properties": {"rox.platform": "iOS"}}),
    );
    assert!(!in_group(&config, "builtins", &ctx));
}

#[test]
fn example_repository_evaluates() {
    let read = |file: &str, text: &str| parse_experiment(file, text).value.unwrap();
    let tg = |file: &str, text: &str| parse_target_group(file, text).value.unwrap();
    let config = Configuration {
        experiments: vec![
            read(
                "a",
                include_str!(
                    "../../../../../examples/cloudbees/experiments/default.followingView.yml"
                ),
            ),
            read(
                "b",
                include_str!("../../../../../examples/cloudbees/experiments/default.newPlayer.yml"),
            ),
            read(
                "c",
                include_str!("../../../../../examples/cloudbees/experiments/default.theme.yml"),
            ),
        ],
        archived_experiments: vec![read(
            "d",
            include_str!(
                "../../../../../examples/cloudbees/experiments/archived/default.oldFeed.yml"
            ),
        )],
        target_groups: vec![
            tg(
                "DJ",
                include_str!("../../../../../examples/cloudbees/target_groups/DJ.yml"),
            ),
            tg(
                "QA",
                include_str!("../../../../../examples/cloudbees/target_groups/QA.yml"),
            ),
            tg(
                "beta",
                include_str!("../../../../../examples/cloudbees/target_groups/beta_users.yml"),
            ),
        ],
        rejected: Vec::new(),
    };
    assert!(crate::model::cloudbees::validate(&config).is_empty());
    let ctx =
        ClientContext::from_json(include_str!("../../../../../examples/context.json")).unwrap();
    let at = ctx.now().unwrap();
    let results = eval_at(&config, &ctx, at);
    let got: Vec<(String, serde_json::Value, String)> = results
        .into_iter()
        .map(|r| (r.id, r.value.unwrap_or_default(), r.reason.unwrap()))
        .collect();
    // email ada@example.com is in QA (regex), version 128.0.1 ≥ 3.0.1 → condition[0].
    assert_eq!(
        got[0],
        (
            "default.followingView".into(),
            true.into(),
            "condition[0]".into()
        )
    );
    // Country US on 2024-07-15: the 10 % entry of the schedule applies.
    let bucket =
        crate::sampling::rox_bucket("299eed1e-be6d-457d-9e53-da7b1a03f10d.default.newPlayer");
    assert_eq!(got[1].1, serde_json::json!(bucket < 0.10));
    assert_eq!(got[1].2, "condition[0]");
    // theme depends on followingView = true → red.
    assert_eq!(
        got[2],
        ("default.theme".into(), "red".into(), "condition[0]".into())
    );
    assert_eq!(got.len(), 3);
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn json_scalar() -> impl Strategy<Value = serde_json::Value> {
        prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(serde_json::Value::from),
            (-1e12f64..1e12).prop_map(serde_json::Value::from),
            "[a-zA-Z0-9.@ -]{0,12}".prop_map(serde_json::Value::String),
            Just(serde_json::json!([1, "a"])),
            Just(serde_json::json!({"x": 1})),
        ]
    }

    proptest! {
        /// Evaluation decides every flag for any context, and `matched` agrees with `value`.
        #[test]
        fn evaluation_never_panics(
            props in proptest::collection::btree_map(
                prop_oneof![Just("plan"), Just("playlist_count"), Just("email"), Just("country"), Just("age"), Just("rox.distinct_id")],
                json_scalar(),
                0..6,
            ),
            version in proptest::option::of("[0-9v.a-z-]{0,10}"),
            platform in proptest::option::of(prop_oneof![Just("Android"), Just("iOS"), Just("x")]),
            user in proptest::option::of("[a-z0-9]{0,8}"),
            seconds in 0i64..4_000_000_000,
        ) {
            let flags = [
                "type: experiment\nflag: a\nstickinessProperty: email\nconditions:\n  - group: {operator: nor, name: [DJ, Bad Versions]}\n    property: {name: age, operator: lt, operand: 18}\n    value: [{percentage: 30, option: true}]\n  - dependency: {flag: b, value: red}\n    value: true\nplatforms:\n  - name: Android\n    value: [{from: 2020-06-01, percentage: 50}]\n",
                "type: experiment\nflag: b\navailableValues: [red, blue]\nconditions:\n  - property: {name: country, operator: in-array, operand: [US, UK]}\n    version: {operator: semver-gte, semver: 1.2.0}\n    value: red\nvalue: [{percentage: 40, option: red}, {percentage: 40, option: blue}]\n",
            ];
            let config = config(&flags, &[DJ, INTERNAL, BAD_VERSIONS]);
            let mut context = ClientContext {
                version,
                platform: platform.map(str::to_owned),
                user_id: user,
                ..ClientContext::default()
            };
            for (k, v) in props {
                context.properties.insert(k.to_owned(), v);
            }
            let at = jiff::Timestamp::from_second(seconds).unwrap();
            let results = eval_at(&config, &context, at);
            prop_assert_eq!(results.len(), 2);
            for r in results {
                prop_assert_eq!(r.matched, r.value.is_some());
                prop_assert!(r.reason.is_some());
            }
        }
    }
}

#[test]
fn rejected_experiment_files_are_listed_in_file_order() {
    use crate::model::cloudbees::rejected_experiment;
    // Files of `experiments/` in order: a valid one, a broken one (bad percentage), a valid one
    // that depends on the broken flag, and a broken one whose flag cannot be read.
    let files = [
        (
            "experiments/a.yml",
            "type: experiment\nflag: a\nvalue: true\n",
        ),
        (
            "experiments/b.yml",
            "type: experiment\nflag: broken\nvalue:\n  - option: true\n    percentage: 101\n",
        ),
        (
            "experiments/c.yml",
            "type: experiment\nflag: c\nconditions:\n  - dependency: {flag: broken, value: false}\n    value: true\nvalue: false\n",
        ),
        ("experiments/d.yml", "type: experiment\nflag: {x: 1}\n"),
    ];
    let mut config = Configuration::default();
    for (place, (file, text)) in files.into_iter().enumerate() {
        let parsed = parse_experiment(file, text);
        match parsed.value {
            Some(experiment) => config.experiments.push(experiment),
            None => {
                config
                    .rejected
                    .extend(rejected_experiment(file, text, &parsed.diagnostics, place))
            }
        }
    }
    assert_eq!(config.rejected.len(), 2);
    let results: Vec<(String, bool, Option<String>, Option<serde_json::Value>)> =
        eval_at(&config, &context(serde_json::json!({"userId": "u"})), now())
            .into_iter()
            .map(|r| {
                assert_eq!(r.kind, "flag");
                (r.id, r.matched, r.reason, r.value)
            })
            .collect();
    assert_eq!(
        results,
        [
            (
                "a".to_owned(),
                true,
                Some("default".to_owned()),
                Some(serde_json::json!(true))
            ),
            (
                "broken".to_owned(),
                false,
                Some(
                    "invalid: value[0].percentage: percentage must be a number from 0 to 100"
                        .to_owned()
                ),
                None
            ),
            // A dependency on a rejected flag reads it as uncontrolled: "false".
            (
                "c".to_owned(),
                true,
                Some("condition[0]".to_owned()),
                Some(serde_json::json!(true))
            ),
            (
                "experiments/d.yml".to_owned(),
                false,
                Some("invalid: flag: expected a string, found a mapping".to_owned()),
                None
            ),
        ]
    );
}

/// A lookup built once gives what building it per call gives, for every kind of flag:
/// groups, dependencies, cycles, splits, a flag controlled twice (the first file decides),
/// an archived experiment and an unknown name.
#[test]
fn evaluate_flag_with_a_prebuilt_lookup_agrees_with_evaluate_flag() {
    let on_group = "type: experiment\nflag: g\nconditions:\n  - group: {name: beta}\n    value: [{option: a, percentage: 50}, {option: b, percentage: 50}]\nvalue: c\n";
    let depends = "type: experiment\nflag: d\nconditions:\n  - dependency: {flag: g, value: a}\n    value: true\nvalue: false\n";
    let cycle_a = "type: experiment\nflag: ca\nconditions:\n  - dependency: {flag: cb, value: true}\n    value: true\n";
    let cycle_b = "type: experiment\nflag: cb\nconditions:\n  - dependency: {flag: ca, value: true}\n    value: true\n";
    let twice_first = "type: experiment\nflag: t\nvalue: first\n";
    let twice_second = "type: experiment\nflag: t\nvalue: second\n";
    let archived = "type: experiment\nflag: old\narchived: true\nvalue: true\n";
    let beta = "type: target-group\nname: beta\nconditions:\n  - {operator: eq, property: plan, operand: beta}\n";
    let config = config(
        &[
            on_group,
            depends,
            cycle_a,
            cycle_b,
            twice_first,
            twice_second,
            archived,
        ],
        &[beta],
    );
    let lookup = Lookup::new(&config);
    let contexts = [
        serde_json::json!({"userId": "u1", "properties": {"plan": "beta"}}),
        serde_json::json!({"userId": "u2", "properties": {"plan": "beta"}}),
        serde_json::json!({"userId": "u3", "properties": {"plan": "free"}}),
        serde_json::json!({"properties": {"plan": "beta"}}),
    ];
    for json in contexts {
        let ctx = context(json);
        let facts = ClientFacts::default();
        let input = EvalInput {
            context: &ctx,
            facts: &facts,
            now: now(),
            js_filter: &NoJsFilter,
        };
        let all = evaluate(&config, &input);
        for flag in ["g", "d", "ca", "cb", "t", "old", "nowhere"] {
            let with = evaluate_flag_with(&config, &lookup, flag, &input);
            assert_eq!(with, evaluate_flag(&config, flag, &input), "{flag}");
            assert_eq!(with.as_ref(), all.iter().find(|r| r.id == flag), "{flag}");
        }
    }
    let first = evaluate_flag_with(
        &config,
        &lookup,
        "t",
        &EvalInput {
            context: &context(serde_json::json!({})),
            facts: &ClientFacts::default(),
            now: now(),
            js_filter: &NoJsFilter,
        },
    );
    assert_eq!(first.and_then(|r| r.value), Some("first".into()));
}
