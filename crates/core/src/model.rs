//! Every input format, parsed into one model.
//!
//! Each format module exposes `parse(file, text) -> Parsed<T>` that reports every problem as a
//! [`Diagnostic`] with file, line, column and field path, and a serialiser back to the same
//! format.

pub mod cloudbees;
pub mod manifest_v1;
pub mod normandy;
pub mod testpilot;

use crate::diagnostic::{Diagnostic, FieldPath, Position};

/// The outcome of parsing one file: the value when it could be built, and every problem found.
///
/// `value` is `None` only when an error made the document unusable; warnings (and errors that
/// only reject single items) come with a value.
#[derive(Debug, Clone)]
pub struct Parsed<T> {
    /// The parsed document, if usable.
    pub value: Option<T>,
    /// Errors and warnings, in source order.
    pub diagnostics: Vec<Diagnostic>,
}

impl<T> Parsed<T> {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// An item of a document (a manifest experiment, a flight, a CloudBees experiment file) that
/// validation rejected. It is kept beside the valid items so that evaluation can still give it
/// a result (`matched: false`, reason `invalid: <message>`) instead of letting it vanish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedItem {
    /// The item's id (experiment id, studyname, flag name) when it could be read.
    pub id: Option<String>,
    /// The file the item is in, as the user named it.
    pub file: String,
    /// The item's place among all items of its list, valid and rejected (0-based), so that
    /// results keep source order.
    pub index: usize,
    /// Where the item starts.
    pub position: Position,
    /// Why it was rejected: the first error in source order, as `<field path>: <message>`
    /// with the path relative to the item (just the message when it is about the whole item).
    pub message: String,
}

impl RejectedItem {
    /// Builds the record of a rejected item from `diagnostics` (those found while checking the
    /// item at `item_path`; warnings and errors of other items may be among them, only errors
    /// under `item_path` count).
    pub fn from_diagnostics(
        id: Option<String>,
        file: &str,
        index: usize,
        position: Position,
        item_path: &FieldPath,
        diagnostics: &[Diagnostic],
    ) -> RejectedItem {
        let first = diagnostics
            .iter()
            .filter(|d| d.is_error() && d.path.0.starts_with(&item_path.0))
            .min_by_key(|d| d.position);
        let message = match first {
            Some(diagnostic) => {
                let relative = FieldPath(
                    diagnostic
                        .path
                        .0
                        .get(item_path.0.len()..)
                        .unwrap_or_default()
                        .to_vec(),
                );
                if relative.0.is_empty() {
                    diagnostic.message.clone()
                } else {
                    format!("{relative}: {}", diagnostic.message)
                }
            }
            // Callers only reject an item after an error; this keeps the reason honest if not.
            None => "rejected by validation".to_owned(),
        };
        RejectedItem {
            id,
            file: file.to_owned(),
            index,
            position,
            message,
        }
    }
}

/// A document of any input format.
#[derive(Debug, Clone)]
pub enum Document {
    /// Normandy recipes (any recipe shape, one or many).
    Normandy(normandy::RecipeSet),
    /// An Experiments Manifest v1.
    ManifestV1(manifest_v1::Manifest),
    /// A Test Pilot flights index.
    Flights(testpilot::FlightsIndex),
    /// CloudBees experiments and target groups (a configuration tree, or single YAML files).
    CloudBees(cloudbees::Configuration),
}

/// The JSON formats, as recognised from a document's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonFormat {
    /// Normandy recipes.
    Normandy,
    /// Experiments Manifest v1.
    ManifestV1,
    /// Test Pilot flights index.
    Flights,
}

/// Keys only a Normandy recipe (in one of its shapes) has at the top level.
const NORMANDY_KEYS: &[&str] = &[
    "recipe",
    "action",
    "latest_revision",
    "approved_revision",
    "filter_expression",
    "revision_id",
];

/// Keys only a Test Pilot flight spec has at the top level.
const FLIGHT_KEYS: &[&str] = &[
    "studyname",
    "flightplan",
    "endBy",
    "end",
    "randomDeploy",
    "randomsubset",
    "stopflight",
];

/// Recognises which JSON format `text` is in, from its content; `None` when it is none of
/// them, or is not JSON at all.
pub fn detect_json_format(text: &str) -> Option<JsonFormat> {
    let json: serde_json::Value = serde_json::from_str(text).ok()?;
    let has_any = |object: &serde_json::Map<String, serde_json::Value>, keys: &[&str]| {
        keys.iter().any(|key| object.contains_key(*key))
    };
    match &json {
        serde_json::Value::Object(object) if object.contains_key("experiments") => {
            Some(JsonFormat::ManifestV1)
        }
        serde_json::Value::Object(object) if object.contains_key("flights") => {
            Some(JsonFormat::Flights)
        }
        serde_json::Value::Object(object)
            if object.contains_key("results") || has_any(object, NORMANDY_KEYS) =>
        {
            Some(JsonFormat::Normandy)
        }
        serde_json::Value::Array(items) => match items.first() {
            // An empty list is an empty set of recipes: the most common empty manifest.
            None => Some(JsonFormat::Normandy),
            Some(serde_json::Value::Object(first)) if has_any(first, NORMANDY_KEYS) => {
                Some(JsonFormat::Normandy)
            }
            Some(serde_json::Value::Object(first)) if has_any(first, FLIGHT_KEYS) => {
                Some(JsonFormat::Flights)
            }
            Some(_) => None,
        },
        _ => None,
    }
}

/// Parses a JSON document of any format; `None` when its format is not recognised.
///
/// Text that is not valid JSON at all is reported as a Normandy document, so that the syntax
/// error gets a diagnostic with its position instead of "unrecognised".
pub fn parse_json_document(file: &str, text: &str) -> Option<Parsed<Document>> {
    let format = match detect_json_format(text) {
        Some(format) => format,
        None if serde_json::from_str::<serde::de::IgnoredAny>(text).is_err() => {
            JsonFormat::Normandy
        }
        None => return None,
    };
    Some(match format {
        JsonFormat::Normandy => map_parsed(normandy::parse(file, text), Document::Normandy),
        JsonFormat::ManifestV1 => map_parsed(manifest_v1::parse(file, text), Document::ManifestV1),
        JsonFormat::Flights => map_parsed(testpilot::parse(file, text), Document::Flights),
    })
}

/// Parses one CloudBees YAML file (experiment or target group) as a configuration of its own.
///
/// `None` when the file is not a CloudBees document: YAML whose top level has no `type`, a
/// `type` other than `experiment` and `target-group`, or is not a mapping (a CI workflow,
/// say). Text that is not YAML at all is reported with its diagnostics, since it cannot say
/// what it is. A file that says `type: experiment` but is broken is recorded in
/// [`cloudbees::Configuration::rejected`] (index 0), so that evaluation lists it; a broken
/// target group gives only its diagnostics.
pub fn parse_yaml_document(file: &str, text: &str) -> Option<Parsed<Document>> {
    let (parsed, declared) = cloudbees::read_document(file, text);
    let mut configuration = cloudbees::Configuration::default();
    match parsed.value {
        Some(cloudbees::Document::Experiment(experiment)) if experiment.is_archived() => {
            configuration.archived_experiments.push(experiment);
        }
        Some(cloudbees::Document::Experiment(experiment)) => {
            configuration.experiments.push(experiment);
        }
        Some(cloudbees::Document::TargetGroup(group)) => configuration.target_groups.push(group),
        None => match declared {
            cloudbees::Declared::Foreign => return None,
            cloudbees::Declared::Experiment { .. } => {
                match cloudbees::rejected_as(file, &declared, &parsed.diagnostics, 0) {
                    Some(rejected) => configuration.rejected.push(rejected),
                    // A broken archived experiment is never evaluated.
                    None => {
                        return Some(Parsed {
                            value: None,
                            diagnostics: parsed.diagnostics,
                        });
                    }
                }
            }
            cloudbees::Declared::NotYaml | cloudbees::Declared::TargetGroup => {
                return Some(Parsed {
                    value: None,
                    diagnostics: parsed.diagnostics,
                });
            }
        },
    }
    Some(Parsed {
        value: Some(Document::CloudBees(configuration)),
        diagnostics: parsed.diagnostics,
    })
}

fn map_parsed<T>(parsed: Parsed<T>, wrap: fn(T) -> Document) -> Parsed<Document> {
    Parsed {
        value: parsed.value.map(wrap),
        diagnostics: parsed.diagnostics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configuration(parsed: Parsed<Document>) -> cloudbees::Configuration {
        match parsed.value {
            Some(Document::CloudBees(configuration)) => configuration,
            other => panic!("expected a CloudBees configuration, got {other:?}"),
        }
    }

    #[test]
    fn yaml_that_is_not_a_cloudbees_document_is_not_ours() {
        for text in [
            // A CI workflow: no `type`.
            "name: CI\non: [push]\njobs:\n  test:\n    runs-on: ubuntu-latest\n",
            // Someone else's `type`.
            "type: something-else\nflag: x\n",
            "type: 3\n",
            // Not a mapping at all.
            "- a\n- b\n",
            "just text\n",
            "",
        ] {
            assert!(parse_yaml_document("x.yml", text).is_none(), "{text:?}");
        }
    }

    #[test]
    fn yaml_that_is_not_yaml_is_reported() {
        let parsed = parse_yaml_document("x.yml", "a: [1, 2\nb: c\n").unwrap();
        assert!(parsed.value.is_none());
        assert!(parsed.has_errors());
    }

    #[test]
    fn a_broken_experiment_is_ours_and_recorded_as_rejected() {
        let text = "type: experiment\nflag: my.flag\nvalue:\n  - option: a\n    percentage: 150\n";
        let parsed = parse_yaml_document("e.yml", text).unwrap();
        assert!(parsed.has_errors());
        let first_error = parsed
            .diagnostics
            .iter()
            .find(|d| d.is_error())
            .map(|d| format!("{}: {}", d.path, d.message))
            .unwrap();
        let configuration = configuration(parsed);
        assert!(configuration.experiments.is_empty());
        assert_eq!(
            configuration.rejected,
            [RejectedItem {
                id: Some("my.flag".to_owned()),
                file: "e.yml".to_owned(),
                index: 0,
                position: Position::START,
                message: first_error,
            }]
        );

        // Without a readable flag there is no id; an archived one is never evaluated.
        let parsed = parse_yaml_document("e.yml", "type: experiment\nflag: [1]\n").unwrap();
        assert_eq!(configuration_of_rejected_id(parsed), None);
        let parsed =
            parse_yaml_document("e.yml", "type: experiment\narchived: true\nenabled: 3\n").unwrap();
        assert!(parsed.value.is_none() && parsed.has_errors());
    }

    fn configuration_of_rejected_id(parsed: Parsed<Document>) -> Option<String> {
        let configuration = configuration(parsed);
        assert_eq!(configuration.rejected.len(), 1);
        configuration.rejected.into_iter().next().and_then(|r| r.id)
    }

    #[test]
    fn a_broken_target_group_is_ours_but_only_diagnostics() {
        let parsed =
            parse_yaml_document("g.yml", "type: target-group\nname: g\nconditions: 5\n").unwrap();
        assert!(parsed.value.is_none());
        assert!(parsed.has_errors());
    }

    #[test]
    fn rejected_item_message_is_the_first_error_in_source_order_relative_to_the_item() {
        let item = FieldPath::root().key("experiments").index(2);
        let at = |line, column| Position { line, column };
        let diagnostics = [
            Diagnostic::warning("f", at(1, 1), item.key("w"), "a warning".to_owned()),
            Diagnostic::error("f", at(3, 9), item.key("b"), "later".to_owned()),
            Diagnostic::error("f", at(3, 2), item.key("a").index(1), "earlier".to_owned()),
            Diagnostic::error(
                "f",
                at(1, 1),
                FieldPath::root().key("x"),
                "other item".to_owned(),
            ),
        ];
        let rejected = RejectedItem::from_diagnostics(None, "f", 2, at(3, 1), &item, &diagnostics);
        assert_eq!(rejected.message, "a[1]: earlier");
        let whole = [Diagnostic::error(
            "f",
            at(3, 1),
            item.clone(),
            "not an object".to_owned(),
        )];
        let rejected = RejectedItem::from_diagnostics(None, "f", 2, at(3, 1), &item, &whole);
        assert_eq!(rejected.message, "not an object");
    }
}
