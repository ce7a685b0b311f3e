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
/// `None` when the file has no `type` this format knows.
pub fn parse_yaml_document(file: &str, text: &str) -> Option<Parsed<Document>> {
    let parsed = cloudbees::parse_document(file, text);
    let mut configuration = cloudbees::Configuration::default();
    match parsed.value {
        Some(cloudbees::Document::Experiment(experiment)) if experiment.is_archived() => {
            configuration.archived_experiments.push(experiment);
        }
        Some(cloudbees::Document::Experiment(experiment)) => {
            configuration.experiments.push(experiment);
        }
        Some(cloudbees::Document::TargetGroup(group)) => configuration.target_groups.push(group),
        // A YAML file that is not valid YAML, or has no known `type`, is reported with its
        // diagnostics; one that parsed as something else entirely is not ours.
        None if parsed.has_errors() => {
            return Some(Parsed {
                value: None,
                diagnostics: parsed.diagnostics,
            });
        }
        None => return None,
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
