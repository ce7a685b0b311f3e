//! Validation of a revision's `data` before it is stored, by the core parser of its kind.
//!
//! The admin API never stores what a client could not read: every write goes through the same
//! parser the clients and `flightdeck validate` use. Each kind's `data` (see `docs/server.md`,
//! "Kinds of item") is wrapped into a one-item document of its format, parsed, and the
//! diagnostics are mapped back to field paths inside `data`, so an error names the field the
//! author sent (`arguments.branches[1].ratio`), not a place in a document they never wrote.

use flightdeck_core::diagnostic::{Diagnostic, FieldPath, PathSegment};
use flightdeck_core::model::{cloudbees, manifest_v1, normandy, testpilot};
use serde::Serialize;
use serde_json::{Map, Value};

/// One problem with a field of the submitted data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    /// The field, as a path into the submitted data (`arguments.slug`, `(root)` for the
    /// whole object).
    pub field: String,
    /// What is wrong, in one sentence.
    pub message: String,
}

/// The outcome of validating one revision's data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Problems that refuse the write.
    pub errors: Vec<FieldProblem>,
    /// Problems worth telling the author that do not refuse the write (an unknown key in a
    /// format that allows them, a rollout and its rollback in one set, …).
    pub warnings: Vec<FieldProblem>,
}

impl Report {
    /// Whether the data may be stored.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldProblem {
            field: field.to_owned(),
            message: message.into(),
        });
    }

    /// Adds the core's diagnostics, with `prefix` (the wrapper's path to the item) removed
    /// from their paths.
    fn add_diagnostics(&mut self, diagnostics: &[Diagnostic], prefix: &[PathSegment]) {
        for diagnostic in diagnostics {
            let problem = FieldProblem {
                field: relative_path(&diagnostic.path, prefix),
                message: diagnostic.message.clone(),
            };
            if diagnostic.is_error() {
                self.errors.push(problem);
            } else {
                self.warnings.push(problem);
            }
        }
    }
}

/// The members a Normandy revision's data may have: Normandy API v3's write fields (with the
/// action by name), and the older `locales`/`countries`/`channels` filters the core compiles.
const NORMANDY_FIELDS: &[&str] = &[
    "name",
    "action",
    "arguments",
    "extra_filter_expression",
    "filter_object",
    "extra_capabilities",
    "experimenter_slug",
    "identicon_seed",
    "locales",
    "countries",
    "channels",
];

/// The file name diagnostics are reported under; it is never shown, only field paths are.
const SUBMITTED: &str = "submitted data";

/// Validates a Normandy recipe revision: Normandy API v3's write fields, with `action` the
/// action's name. Arguments are checked like Normandy's action schemas, filters are compiled,
/// and, as Normandy requires, one of `extra_filter_expression` and `filter_object` is given.
pub fn normandy(data: &Value) -> Report {
    let mut report = Report::default();
    let Some(map) = object(data, &mut report) else {
        return report;
    };
    for key in map.keys() {
        if !NORMANDY_FIELDS.contains(&key.as_str()) {
            report.error(
                key,
                format!(
                    "unknown field; a Normandy recipe has {}",
                    NORMANDY_FIELDS.join(", ")
                ),
            );
        }
    }
    let has_filter = ["extra_filter_expression", "filter_object"]
        .iter()
        .any(|key| map.get(*key).is_some_and(|v| !v.is_null()));
    if !has_filter {
        report.error(
            "extra_filter_expression",
            "one of extra_filter_expression and filter_object is required",
        );
    }
    let parsed = normandy::parse(SUBMITTED, &normandy_document(map));
    report.add_diagnostics(
        &parsed.diagnostics,
        &[PathSegment::Key("latest_revision".to_owned())],
    );
    report
}

/// A v3 recipe read from its latest revision, whose data is `map`: the shape the core compiles
/// filter objects for. The ids are placeholders; the store assigns the real ones.
fn normandy_document(map: &Map<String, Value>) -> String {
    let mut revision = map.clone();
    revision.insert("id".to_owned(), Value::from(1));
    let mut recipe = Map::new();
    recipe.insert("id".to_owned(), Value::from(1));
    recipe.insert("latest_revision".to_owned(), Value::Object(revision));
    Value::Object(recipe).to_string()
}

/// What Normandy derives from a revision's data for its readers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormandyDerived {
    /// The filter expression compiled from `locales`, `countries`, `channels`, the filter
    /// objects and `extra_filter_expression`, as the client evaluates it.
    pub filter_expression: Option<String>,
    /// The capabilities a client needs: `extra_capabilities`, `action.<name>` and the filter
    /// objects' capabilities, sorted.
    pub capabilities: Vec<String>,
}

/// The compiled filter expression and capabilities of a Normandy revision's data, by the core
/// parser the clients use; `None` when the data does not parse into a recipe.
pub fn normandy_derived(data: &Value) -> Option<NormandyDerived> {
    let map = data.as_object()?;
    let parsed = normandy::parse(SUBMITTED, &normandy_document(map));
    let recipe = parsed.value?.recipes.into_iter().next()?;
    Some(NormandyDerived {
        filter_expression: recipe.filter.map(|filter| filter.expression),
        capabilities: recipe.capabilities,
    })
}

/// Validates one Experiments Manifest v1 experiment object.
pub fn manifest_v1(data: &Value) -> Report {
    let mut report = Report::default();
    if object(data, &mut report).is_none() {
        return report;
    }
    let document = serde_json::json!({ "version": 1, "experiments": [data] });
    let parsed = manifest_v1::parse(SUBMITTED, &document.to_string());
    report.add_diagnostics(
        &parsed.diagnostics,
        &[
            PathSegment::Key("experiments".to_owned()),
            PathSegment::Index(0),
        ],
    );
    report
}

/// Validates one Test Pilot flight specification.
pub fn flight(data: &Value) -> Report {
    let mut report = Report::default();
    if object(data, &mut report).is_none() {
        return report;
    }
    let document = serde_json::json!({ "flights": [data] });
    let parsed = testpilot::parse(SUBMITTED, &document.to_string());
    report.add_diagnostics(
        &parsed.diagnostics,
        &[
            PathSegment::Key("flights".to_owned()),
            PathSegment::Index(0),
        ],
    );
    report
}

/// Validates one CloudBees experiment (a feature flag): the YAML file's keys as JSON.
/// `type` may be left out; it is `experiment`.
pub fn flag(data: &Value) -> Report {
    cloudbees_document(data, "experiment", |text| {
        cloudbees::parse_experiment(SUBMITTED, text).diagnostics
    })
}

/// Validates one CloudBees target group: the YAML file's keys as JSON, with its `name`.
/// `type` may be left out; it is `target-group`.
pub fn target_group(data: &Value) -> Report {
    cloudbees_document(data, "target-group", |text| {
        cloudbees::parse_target_group(SUBMITTED, text).diagnostics
    })
}

fn cloudbees_document(
    data: &Value,
    type_name: &str,
    parse: impl FnOnce(&str) -> Vec<Diagnostic>,
) -> Report {
    let mut report = Report::default();
    let Some(map) = object(data, &mut report) else {
        return report;
    };
    let mut map = map.clone();
    map.entry("type")
        .or_insert_with(|| Value::String(type_name.to_owned()));
    // JSON is YAML, so the CloudBees reader takes the object as it is.
    let diagnostics = parse(&Value::Object(map).to_string());
    report.add_diagnostics(&diagnostics, &[]);
    report
}

/// The data as an object, or an error in `report`.
fn object<'v>(data: &'v Value, report: &mut Report) -> Option<&'v Map<String, Value>> {
    match data {
        Value::Object(map) => Some(map),
        _ => {
            report.error("(root)", "expected a JSON object");
            None
        }
    }
}

/// `path` without `prefix`, written as the core writes paths. A path outside `prefix` (the
/// wrapper itself) is the root.
fn relative_path(path: &FieldPath, prefix: &[PathSegment]) -> String {
    let Some(rest) = path.0.strip_prefix(prefix) else {
        return FieldPath::root().to_string();
    };
    // The core names a v3 action object's member; the data gives the action by name.
    if rest
        == [
            PathSegment::Key("action".to_owned()),
            PathSegment::Key("name".to_owned()),
        ]
    {
        return "action".to_owned();
    }
    FieldPath(rest.to_vec()).to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(problems: &[FieldProblem]) -> Vec<&str> {
        problems.iter().map(|p| p.field.as_str()).collect()
    }

    fn rollout() -> Value {
        json!({
            "name": "Block autoplay",
            "action": "preference-rollout",
            "arguments": {
                "slug": "autoplay-block",
                "preferences": [{"preferenceName": "media.autoplay.default", "value": 1}]
            },
            "extra_filter_expression": "normandy.channel == 'release'"
        })
    }

    #[test]
    fn a_valid_rollout_passes() {
        let report = normandy(&rollout());
        assert!(report.is_ok(), "{report:?}");
    }

    #[test]
    fn filter_objects_compile() {
        let mut data = rollout();
        data.as_object_mut()
            .map(|m| m.remove("extra_filter_expression"));
        data["filter_object"] = json!([{"type": "channel", "channels": ["release", "beta"]}]);
        let report = normandy(&data);
        assert!(report.is_ok(), "{report:?}");
    }

    #[test]
    fn argument_errors_name_the_field_inside_the_data() {
        let mut data = rollout();
        data["arguments"]["preferences"][0]
            .as_object_mut()
            .map(|m| m.remove("value"));
        let report = normandy(&data);
        assert!(!report.is_ok());
        assert!(
            fields(&report.errors)
                .iter()
                .any(|f| f.starts_with("arguments.preferences[0]")),
            "{report:?}"
        );
    }

    #[test]
    fn a_filter_syntax_error_names_the_expression() {
        let mut data = rollout();
        data["extra_filter_expression"] = json!("normandy.channel == ");
        let report = normandy(&data);
        assert_eq!(
            fields(&report.errors),
            ["extra_filter_expression"],
            "{report:?}"
        );
    }

    #[test]
    fn normandy_needs_a_filter_and_knows_its_fields() {
        let mut data = rollout();
        let map = data.as_object_mut().expect("object");
        map.remove("extra_filter_expression");
        map.insert("colour".to_owned(), json!("blue"));
        let report = normandy(&data);
        let errors = fields(&report.errors);
        assert!(errors.contains(&"extra_filter_expression"), "{report:?}");
        assert!(errors.contains(&"colour"), "{report:?}");
    }

    #[test]
    fn derived_filter_and_capabilities() {
        let mut data = rollout();
        data["filter_object"] = json!([{"type": "channel", "channels": ["release"]}]);
        let derived = normandy_derived(&data).expect("parses");
        let expression = derived.filter_expression.expect("a filter");
        assert!(
            expression.contains("normandy.channel in [\"release\"]"),
            "{expression}"
        );
        assert!(
            expression.contains("normandy.channel == 'release'"),
            "{expression}"
        );
        assert!(
            derived
                .capabilities
                .contains(&"action.preference-rollout".to_owned()),
            "{:?}",
            derived.capabilities
        );
        assert_eq!(normandy_derived(&json!("not an object")), None);
    }

    #[test]
    fn missing_action_is_named() {
        let mut data = rollout();
        data["action"] = json!({});
        let report = normandy(&data);
        assert!(fields(&report.errors).contains(&"action"), "{report:?}");
    }

    #[test]
    fn not_an_object_is_refused() {
        for check in [normandy, manifest_v1, flight, flag, target_group] {
            let report = check(&json!([1, 2]));
            assert_eq!(fields(&report.errors), ["(root)"]);
        }
    }

    #[test]
    fn manifest_v1_experiment() {
        let good = json!({
            "id": "old-tab@experiments",
            "xpiURL": "https://example.com/old-tab.xpi",
            "xpiHash": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        });
        assert!(manifest_v1(&good).is_ok(), "{:?}", manifest_v1(&good));
        let mut bad = good.clone();
        bad["xpiHash"] = json!("md5:abc");
        let report = manifest_v1(&bad);
        assert_eq!(fields(&report.errors), ["xpiHash"], "{report:?}");
    }

    #[test]
    fn flight_spec() {
        let good = json!({
            "studyname": "pulse",
            "endBy": "2027-01-01",
            "flightplan": [{"action": "log", "msg": "hello"}]
        });
        let report = flight(&good);
        assert!(report.is_ok(), "{report:?}");
        let mut bad = good.clone();
        bad.as_object_mut().map(|m| m.remove("endBy"));
        let report = flight(&bad);
        assert!(
            report.errors.iter().any(|p| p.message.contains("endBy")),
            "{report:?}"
        );
    }

    #[test]
    fn flag_and_target_group() {
        let good_flag = json!({"flag": "new-checkout", "value": true});
        assert!(flag(&good_flag).is_ok(), "{:?}", flag(&good_flag));
        let bad_flag = json!({"flag": "new-checkout", "value": true, "conditions": "nope"});
        let report = flag(&bad_flag);
        assert!(fields(&report.errors).contains(&"conditions"), "{report:?}");

        let group = json!({
            "name": "beta-users",
            "conditions": [{"property": "tier", "operator": "eq", "operand": "beta"}]
        });
        assert!(target_group(&group).is_ok(), "{:?}", target_group(&group));
        let wrong_type = json!({"type": "experiment", "flag": "x", "value": true});
        let report = target_group(&wrong_type);
        assert!(fields(&report.errors).contains(&"type"), "{report:?}");
    }
}
