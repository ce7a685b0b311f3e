use proptest::prelude::*;

use super::*;
use crate::diagnostic::Severity;

fn experiment(text: &str) -> Experiment {
    let parsed = parse_experiment("e.yml", text);
    assert!(
        !parsed.has_errors(),
        "unexpected errors: {:#?}",
        parsed.diagnostics
    );
    parsed.value.unwrap()
}

fn group(text: &str) -> TargetGroup {
    let parsed = parse_target_group("g.yml", text);
    assert!(
        !parsed.has_errors(),
        "unexpected errors: {:#?}",
        parsed.diagnostics
    );
    parsed.value.unwrap()
}

/// Diagnostics rendered as `line:col severity path: message`, for compact assertions.
fn rendered(text: &str) -> Vec<String> {
    parse_document("x.yml", text)
        .diagnostics
        .iter()
        .map(|d| {
            format!(
                "{}:{} {} {}: {}",
                d.position.line, d.position.column, d.severity, d.path, d.message
            )
        })
        .collect()
}

fn assert_round_trip_experiment(e: &Experiment) {
    let yaml = to_yaml(e);
    let back = experiment(&yaml);
    assert_eq!(&back, e, "round trip changed the experiment:\n{yaml}");
    assert_eq!(to_yaml(&back), yaml);
}

fn assert_round_trip_group(g: &TargetGroup) {
    let yaml = target_group_to_yaml(g);
    let back = group(&yaml);
    assert_eq!(&back, g, "round trip changed the group:\n{yaml}");
}

const README_FALSE: &str =
    "flag: default.followingView\ntype: experiment\nname: following view\nvalue: false\n";
const README_SPLIT: &str = "flag: default.followingView\ntype: experiment\nname: following view\nvalue:\n  - option: true\n    percentage: 50\n";
const README_GROUPS: &str = "flag: default.followingView
type: experiment
name: following view
conditions:
  - group:
      name:
        - QA
        - beta users
    version:
      operator: semver-gte
      semver: 3.0.1
    value: true
value: false
";
const README_PLATFORM: &str = "flag: default.followingView
type: experiment
name: following view
platforms:
  - name: Android
    value: false
value: true
";

/// Mirrors what the real sound-redux-cac files contain (seed-originals §5.2).
const REALISTIC: &str = "version: 1.0.0
type: experiment
flag: default.playlistSuggestions
name: playlist suggestions
description: ''
enabled: true
labels: growth
availableValues:
  - false
  - true
stickinessProperty: email
platforms:
  - name: Android
    conditions:
      - version:
          operator: semver-gte
          semver: '2121'
        value:
          - percentage: 10
            option: true
    value: false
  - name: iOS
conditions:
  - property:
      name: country
      operator: in-array
      operand: [US, UK, AZ]
    value:
      - {from: 2020-06-17T14:56:19.608Z, percentage: 0, option: true}
      - {from: 2020-06-30T09:00:00.000Z, percentage: 10, option: true}
      - {from: 2020-07-22T09:00:00.000Z, percentage: 50, option: true}
      - {from: 2020-07-31T09:00:00.000Z, percentage: 100, option: true}
  - property:
      name: plan
      operator: is-undefined
    value: false
  - property:
      name: age
      operator: lt
      operand: 18
    value: false
  - group:
      operator: nor
      name: [DJ, Internal emp]
    dependency:
      flag: default.followingView
      value: true
    value: true
  - value: false
value: false
";

const STRING_SPLIT: &str = "type: experiment
flag: default.theme
availableValues: ['', 'false', blue, red]
value:
  - percentage: 33
    option: blue
  - percentage: 34
    option: red
  - percentage: 3
    option: 'false'
";

const ARCHIVED: &str =
    "type: experiment\nflag: default.oldFeed\narchived: true\nenabled: false\nvalue: false\n";

const DJ: &str = "type: target-group
name: DJ
conditions:
  - operator: is-undefined
    property: plan
  - operator: gte
    property: playlist_count
    operand: 1010
description: users with a lot of playlists
";

const BAD_VERSIONS: &str = "type: target-group
name: Bad Versions
operator: or
conditions:
  - operator: semver-eq
    property: rox.app_release
    operand: 4.6.2
  - operator: semver-eq
    property: rox.app_release
    operand: 4.5.0
";

const GLOB: &str = "type: target-group
name: CloudBees staff
operator: or
conditions:
  - operator: regex
    property: email
    operand: '@cloudbees\\.com$'
  - operator: regex
    property: email
    operand: '*@cloudbees.com'
  - operator: regex
    property: name
    operand: ['^ada', 'i']
";

#[test]
fn readme_examples_parse() {
    let e = experiment(README_FALSE);
    assert_eq!(e.flag, "default.followingView");
    assert_eq!(e.value, Some(ValueSpec::Single(FlagValue::Bool(false))));
    assert!(e.is_enabled() && !e.is_archived() && e.is_boolean());
    assert_eq!(e.stickiness_property(), "rox.distinct_id");

    let e = experiment(README_SPLIT);
    assert_eq!(
        e.value,
        Some(ValueSpec::Split(vec![SplitValue {
            percentage: Some(50.0),
            option: FlagValue::Bool(true)
        }]))
    );

    let e = experiment(README_GROUPS);
    let conditions = e.conditions.as_ref().unwrap();
    let c = &conditions[0];
    assert_eq!(
        c.group.as_ref().unwrap().name.as_slice(),
        ["QA".to_owned(), "beta users".to_owned()]
    );
    assert_eq!(c.group.as_ref().unwrap().operator, None);
    let v = c.version.as_ref().unwrap();
    assert_eq!(
        (v.operator, v.semver.as_str()),
        (PropertyOperator::SemverGte, "3.0.1")
    );

    let e = experiment(README_PLATFORM);
    let p = &e.platforms.as_ref().unwrap()[0];
    assert_eq!(p.name, "Android");
    assert_eq!(p.value, Some(ValueSpec::Single(FlagValue::Bool(false))));
}

#[test]
fn realistic_file_parses_with_every_legacy_form() {
    let parsed = parse_experiment("e.yml", REALISTIC);
    assert!(!parsed.has_errors(), "{:#?}", parsed.diagnostics);
    // The unquoted-number semver is not in this file; no warnings expected.
    assert!(parsed.diagnostics.is_empty(), "{:#?}", parsed.diagnostics);
    let e = parsed.value.unwrap();
    assert_eq!(e.version.as_deref(), Some("1.0.0"));
    assert_eq!(e.labels, Some(OneOrMany::One("growth".into())));
    assert_eq!(e.description.as_deref(), Some(""));
    let platforms = e.platforms.as_ref().unwrap();
    assert_eq!(platforms.len(), 2);
    assert_eq!(platforms[1].value, None);
    assert_eq!(platforms[1].conditions, None);
    let conditions = e.conditions.as_ref().unwrap();
    let Some(ValueSpec::Scheduled(schedule)) = &conditions[0].value else {
        panic!("expected a schedule")
    };
    assert_eq!(schedule.len(), 4);
    assert_eq!(schedule[1].percentage, Some(10.0));
    assert_eq!(schedule[1].option, Some(true));
    assert_eq!(
        schedule[0].from.at,
        "2020-06-17T14:56:19.608Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
    );
    let property = conditions[0].property.as_ref().unwrap();
    assert_eq!(property.operator, PropertyOperator::InArray);
    assert_eq!(
        property.operand,
        Some(Operand::List(vec![
            OperandValue::String("US".into()),
            OperandValue::String("UK".into()),
            OperandValue::String("AZ".into()),
        ]))
    );
    assert_eq!(conditions[1].property.as_ref().unwrap().operand, None);
    assert_eq!(
        conditions[2].property.as_ref().unwrap().operand,
        Some(Operand::Scalar(OperandValue::Number(18.0)))
    );
    assert_eq!(
        conditions[3].group.as_ref().unwrap().operator,
        Some(GroupOperator::Nor)
    );
    assert!(conditions[4].is_unconditional());
}

#[test]
fn string_split_below_100_and_archived_are_accepted() {
    let e = experiment(STRING_SPLIT);
    assert!(!e.is_boolean());
    let Some(ValueSpec::Split(items)) = &e.value else {
        panic!("expected a split")
    };
    let sum: f64 = items.iter().map(SplitValue::effective_percentage).sum();
    assert_eq!(sum, 70.0);
    assert_eq!(items[2].option, FlagValue::String("false".into()));

    let e = experiment(ARCHIVED);
    assert!(e.is_archived() && !e.is_enabled());
}

#[test]
fn target_groups_parse() {
    let g = group(DJ);
    assert_eq!(g.name, "DJ");
    assert_eq!(g.operator, None);
    assert_eq!(g.conditions.len(), 2);
    assert_eq!(g.conditions[0].operator, PropertyOperator::IsUndefined);
    assert_eq!(
        g.conditions[1].operand,
        Some(Operand::Scalar(OperandValue::Number(1010.0)))
    );
    let g = group(BAD_VERSIONS);
    assert_eq!(g.operator, Some(GroupJoin::Or));
    assert_eq!(
        g.conditions[1].operand,
        Some(Operand::Scalar(OperandValue::String("4.5.0".into())))
    );
}

#[test]
fn glob_regex_operand_is_a_warning_and_flags_compile() {
    let parsed = parse_target_group("g.yml", GLOB);
    assert!(!parsed.has_errors(), "{:#?}", parsed.diagnostics);
    let warnings: Vec<_> = parsed.diagnostics.iter().collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(warnings[0].severity, Severity::Warning);
    assert_eq!(warnings[0].path.to_string(), "conditions[1].operand");
    assert_eq!(warnings[0].position.line, 10);
    assert!(warnings[0].message.contains("*@cloudbees.com"));
    let g = parsed.value.unwrap();
    assert!(g.conditions[0].regex.is_some());
    assert!(g.conditions[1].regex.is_none());
    let re = g.conditions[2].regex.as_ref().unwrap();
    assert!(re.0.is_match("ADA LOVELACE"));
}

#[test]
fn semver_written_as_number_keeps_its_spelling() {
    let text = "type: experiment\nflag: f\nconditions:\n  - version: {operator: semver-gte, semver: 1.30}\n    value: true\n";
    let parsed = parse_experiment("e.yml", text);
    assert!(!parsed.has_errors());
    assert_eq!(parsed.diagnostics.len(), 1);
    assert_eq!(parsed.diagnostics[0].severity, Severity::Warning);
    let e = parsed.value.unwrap();
    assert_eq!(
        e.conditions.unwrap()[0].version.as_ref().unwrap().semver,
        "1.30"
    );
}

#[test]
fn errors_name_line_column_and_path() {
    let cases: &[(&str, &[&str])] = &[
        (
            "type: experiment\nflag: f\nconditions:\n  - property:\n      name: x\n      operator: around\n    value: true\n",
            &["6:17 error conditions[0].property.operator: unknown operator `around`"],
        ),
        (
            "type: experiment\nname: no flag\n",
            &["1:1 error (root): missing required field `flag`"],
        ),
        (
            "type: experiment\nflag: f\nvalue: [1, 2\n",
            &["3:8 error (root): invalid YAML: unclosed bracket"],
        ),
        (
            "type: target-group\nname: g\nconditions:\n  - operator: in-array\n    property: id\n    operand: abc\n",
            &[
                "6:14 error conditions[0].operand: operator `in-array` needs a list of strings or numbers, found a string",
            ],
        ),
        (
            "type: target-group\nname: g\nconditions:\n  - {operator: gte, property: n, operand: lots}\n",
            &["4:43 error conditions[0].operand: operator `gte` needs one number, found a string"],
        ),
        (
            "type: target-group\nname: g\nconditions:\n  - {operator: eq, property: n}\n",
            &["4:5 error conditions[0]: operator `eq` needs an `operand`"],
        ),
        (
            "type: target-group\nname: g\nconditions:\n  - {operator: in-array, property: n, operand: [a, b, a]}\n",
            &["4:55 error conditions[0].operand[2]: duplicate `in-array` value"],
        ),
        (
            "type: target-group\nname: g\nconditions:\n  - {operator: regex, property: n, operand: [a, i, x]}\n",
            &[
                "4:45 error conditions[0].operand: operator `regex` needs a pattern, or a list of a pattern and flags",
            ],
        ),
        (
            "type: experiment\nflag: f\nvalue:\n  - {percentage: 60, option: a}\n  - {percentage: 50, option: b}\n",
            &["4:5 error value: split percentages sum to 110, more than 100"],
        ),
        (
            "type: experiment\nflag: f\nvalue:\n  - {percentage: 160, option: a}\n",
            &["4:18 error value[0].percentage: percentage must be a number from 0 to 100"],
        ),
        (
            "type: experiment\nflag: f\nvalue:\n  - {from: 2020-01-01, percentage: 10}\n  - {percentage: 50, option: true}\n",
            &[
                "5:5 error value[1]: missing `from`: a value list must not mix split and scheduled entries",
            ],
        ),
        (
            "type: experiment\nflag: f\navailableValues: [a, b]\nvalue:\n  - {from: 2020-01-01, percentage: 10}\n",
            &["5:3 error value: scheduled values are only allowed for boolean flags"],
        ),
        (
            "type: experiment\nflag: f\nvalue:\n  - {from: next tuesday}\n",
            &["4:12 error value[0].from: `next tuesday` is not an ISO-8601 date or date-time"],
        ),
        (
            "type: experiment\nflag: f\nconditions:\n  - group: {operator: xor, name: a}\n    value: true\n",
            &[
                "4:23 error conditions[0].group.operator: unknown group operator `xor` (expected or, and, not or nor)",
            ],
        ),
        (
            "type: experiment\nflag: f\nenabled: yes\n",
            &["3:10 error enabled: expected true or false, found a string"],
        ),
        (
            "type: experiment\nflag: f\nflavour: vanilla\n",
            &["3:1 warning flavour: unknown key `flavour` is ignored"],
        ),
        (
            "type: experiment\nflag: f\navailableValues: [a, b]\nvalue: c\n",
            &["4:8 warning value: value `c` is not among `availableValues`"],
        ),
        (
            "type: thing\nflag: f\n",
            &["1:7 error type: `type` must be `experiment` or `target-group`"],
        ),
        (
            "- a\n- b\n",
            &[
                "1:1 error (root): expected a mapping (an experiment or target group), found a sequence",
            ],
        ),
        (
            "type: experiment\nflag: f\nflag: g\n",
            &["3:1 error (root): invalid YAML: duplicate mapping key"],
        ),
    ];
    for (text, expected) in cases {
        let got = rendered(text);
        assert_eq!(got.len(), expected.len(), "for {text:?}: {got:#?}");
        for (g, e) in got.iter().zip(expected.iter()) {
            assert!(g.starts_with(e), "for {text:?}:\n got {g}\nwant {e}");
        }
    }
}

#[test]
fn errors_make_the_value_unusable_but_warnings_do_not() {
    let parsed = parse_experiment("e.yml", "type: experiment\nflag: f\nvalue: {a: 1}\n");
    assert!(parsed.value.is_none() && parsed.has_errors());
    let parsed = parse_experiment("e.yml", "type: experiment\nflag: f\nextra: 1\n");
    assert!(parsed.value.is_some() && !parsed.has_errors());
    let parsed = parse_experiment("e.yml", "type: target-group\nname: g\nconditions: []\n");
    assert!(parsed.value.is_none());
    assert!(
        parsed.diagnostics[0]
            .message
            .contains("expected `type: experiment`")
    );
}

#[test]
fn round_trips_through_yaml() {
    for text in [
        README_FALSE,
        README_SPLIT,
        README_GROUPS,
        README_PLATFORM,
        REALISTIC,
        STRING_SPLIT,
        ARCHIVED,
        "type: experiment\nflag: f\nvalue: null\nlabels: [a, 'true']\n",
        "type: experiment\nflag: f\nvalue: []\n",
        "type: experiment\nflag: n\nvalue: 2.5\nconditions:\n  - value: 3\n",
        "type: experiment\nflag: f\nconditions:\n  - group: {operator: not, name: QA}\n    value: true\n",
    ] {
        assert_round_trip_experiment(&experiment(text));
    }
    for text in [DJ, BAD_VERSIONS, GLOB] {
        assert_round_trip_group(&group(text));
    }
}

#[test]
fn example_repository_parses_and_round_trips() {
    let experiments = [
        include_str!("../../../../../examples/cloudbees/experiments/default.followingView.yml"),
        include_str!("../../../../../examples/cloudbees/experiments/default.newPlayer.yml"),
        include_str!("../../../../../examples/cloudbees/experiments/default.theme.yml"),
        include_str!("../../../../../examples/cloudbees/experiments/archived/default.oldFeed.yml"),
    ];
    for text in experiments {
        assert_round_trip_experiment(&experiment(text));
    }
    for text in [
        include_str!("../../../../../examples/cloudbees/target_groups/DJ.yml"),
        include_str!("../../../../../examples/cloudbees/target_groups/QA.yml"),
        include_str!("../../../../../examples/cloudbees/target_groups/beta_users.yml"),
    ] {
        assert_round_trip_group(&group(text));
    }
}

#[test]
fn yaml_output_quotes_strings_that_look_like_other_types() {
    let e = experiment(STRING_SPLIT);
    let yaml = to_yaml(&e);
    assert!(yaml.contains("option: \"false\""), "{yaml}");
    assert!(yaml.contains("- \"\""), "{yaml}");
    assert!(
        yaml.starts_with("type: experiment\nflag: default.theme\n"),
        "{yaml}"
    );
}

fn config() -> Configuration {
    let exp = |file: &str, text: &str| parse_experiment(file, text).value.unwrap();
    let tg = |file: &str, text: &str| parse_target_group(file, text).value.unwrap();
    Configuration {
        experiments: vec![
            exp(
                "experiments/a.yml",
                "type: experiment\nflag: a\nconditions:\n  - group: {name: [DJ, Missing]}\n    value: true\n  - dependency: {flag: b, value: true}\n    value: true\n",
            ),
            exp(
                "experiments/b.yml",
                "type: experiment\nflag: b\nconditions:\n  - dependency: {flag: a, value: true}\n    value: true\n",
            ),
            exp(
                "experiments/c.yml",
                "type: experiment\nflag: c\nconditions:\n  - dependency: {flag: ghost, value: true}\n    value: true\n  - dependency: {flag: old, value: true}\n    value: true\n",
            ),
            exp("experiments/c2.yml", "type: experiment\nflag: c\n"),
        ],
        archived_experiments: vec![exp(
            "experiments/archived/old.yml",
            "type: experiment\nflag: old\narchived: true\n",
        )],
        target_groups: vec![
            tg("target_groups/DJ.yml", DJ),
            tg("target_groups/DJ2.yml", DJ),
        ],
        rejected: Vec::new(),
    }
}

#[test]
fn cross_file_validation() {
    let diagnostics = validate(&config());
    let got: Vec<String> = diagnostics
        .iter()
        .map(|d| {
            format!(
                "{}:{}:{} {} {}: {}",
                d.file, d.position.line, d.position.column, d.severity, d.path, d.message
            )
        })
        .collect();
    let expected = [
        "experiments/c2.yml:2:7 error flag: flag `c` is already controlled by experiments/c.yml",
        "target_groups/DJ2.yml:2:7 error name: target group `DJ` is already defined in target_groups/DJ.yml",
        "experiments/a.yml:4:24 error conditions[0].group.name[1]: unknown target group `Missing`",
        "experiments/c.yml:4:24 warning conditions[0].dependency.flag: no experiment controls flag `ghost`",
        "experiments/c.yml:6:24 warning conditions[1].dependency.flag: flag `old` is only controlled by an archived experiment",
        "experiments/a.yml:6:24 error conditions[1].dependency.flag: dependency cycle: a -> b -> a",
    ];
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    for (g, e) in got.iter().zip(expected) {
        assert!(g.starts_with(e), "\n got {g}\nwant {e}");
    }
}

#[test]
fn self_dependency_is_a_cycle() {
    let e = parse_experiment(
        "experiments/s.yml",
        "type: experiment\nflag: s\nconditions:\n  - dependency: {flag: s, value: true}\n    value: true\n",
    )
    .value
    .unwrap();
    let config = Configuration {
        experiments: vec![e],
        ..Configuration::default()
    };
    let diagnostics = validate(&config);
    assert_eq!(diagnostics.len(), 1);
    assert_eq!(diagnostics[0].message, "dependency cycle: s -> s");
}

proptest! {
    #[test]
    fn parser_never_panics_on_arbitrary_text(text in "\\PC{0,400}") {
        let _ = parse_document("p.yml", &text);
    }

    #[test]
    fn parser_never_panics_on_yaml_like_text(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("type: experiment\n"), Just("type: target-group\n"), Just("flag: f\n"),
                Just("name: n\n"), Just("value:\n"), Just("  - "), Just("{percentage: 50, option: true}\n"),
                Just("conditions:\n"), Just("  - property: {name: a, operator: regex, operand: '('}\n"),
                Just("    value: "), Just("[a, b]\n"), Just("true\n"), Just("operand: 1e400\n"),
                Just("  - {from: 2020-01-01, percentage: 10}\n"), Just("&a [*a]\n"), Just(": :\n"),
                Just("  - group: {operator: nor, name: [x]}\n"), Just("platforms:\n"), Just("- name: A\n"),
                Just("'\n"), Just("\t"), Just("---\n"), Just("? [a]\n: b\n"), Just("!!binary aGk=\n"),
            ],
            0..30,
        )
    ) {
        let text: String = parts.concat();
        let parsed = parse_document("p.yml", &text);
        if let Some(Document::Experiment(e)) = &parsed.value {
            let _ = to_yaml(e);
        }
    }
}
