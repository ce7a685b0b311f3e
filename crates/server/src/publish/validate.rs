//! Checking the items of a publication with the core parsers, leaving out those that fail.
//!
//! Each kind is checked as the document it is published in (all Normandy recipes as one
//! recipe list, all Manifest v1 experiments as one document, …), so the checks across items
//! (unique ids, slugs, flag names, target group references) run too. An error is traced back
//! to its item through the field path (or, for CloudBees, the file name each item is given);
//! those items are left out and the rest is checked again, until it passes.

use std::collections::{BTreeMap, HashMap};

use flightdeck_client::manifest::{self, Loaded};
use flightdeck_core::diagnostic::{Diagnostic, FieldPath, PathSegment};
use flightdeck_core::model::cloudbees::{self, Configuration, Document as CloudBeesDocument};
use flightdeck_core::model::testpilot::{self, FlightsIndex};
use serde_json::{Map, Value};

use super::{ItemKind, PublishError, SkippedItem, SourceItem};

/// The items that passed, as the documents they are published in.
pub(super) struct Validated {
    /// The Normandy recipes (an array of API v3 recipes), loaded as a client loads them.
    pub normandy: Loaded,
    /// The Experiments Manifest v1 document, loaded.
    pub experiments: Loaded,
    /// The bytes of that document, as published at `/api/v1/experiments/`.
    pub experiments_bytes: Vec<u8>,
    /// The flights index.
    pub flights: FlightsIndex,
    /// The bytes of the index, as published at `/api/v1/flights/`.
    pub flights_bytes: Vec<u8>,
    /// The flags and target groups.
    pub flags: Configuration,
    /// The items left out, in item order.
    pub skipped: Vec<SkippedItem>,
}

/// An item still in the running, with its place among all items and what parsing it alone
/// gave (for CloudBees documents).
struct Candidate<'a, P> {
    index: usize,
    item: &'a SourceItem,
    parsed: P,
}

/// What a failed check blames.
enum Rejection {
    /// The candidate at this position of the checked list.
    Item(usize, String),
    /// Every candidate (an error the check could not trace to one item).
    All(String),
}

/// Items left out so far, by their place among all items.
type Skipped = BTreeMap<usize, SkippedItem>;

pub(super) fn validate(items: &[SourceItem]) -> Result<Validated, PublishError> {
    let mut skipped = Skipped::new();
    let mut by_kind: HashMap<ItemKind, Vec<Candidate<'_, ()>>> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        if item.data.is_object() {
            by_kind.entry(item.kind).or_default().push(Candidate {
                index,
                item,
                parsed: (),
            });
        } else {
            let reason = format!(
                "the data must be a JSON object, found {}",
                json_type(&item.data)
            );
            skip(&mut skipped, index, item, reason);
        }
    }
    let mut take = |kind: ItemKind| by_kind.remove(&kind).unwrap_or_default();
    let normandy_items = take(ItemKind::Normandy);
    let experiment_items = take(ItemKind::ManifestV1);
    let flight_items = take(ItemKind::Flight);
    let mut cloudbees_items = take(ItemKind::Flag);
    cloudbees_items.extend(take(ItemKind::TargetGroup));

    let normandy = settle(
        normandy_items,
        &mut skipped,
        "Normandy recipe list",
        check_normandy,
    )?;
    let (experiments, experiments_bytes) = settle(
        experiment_items,
        &mut skipped,
        "Manifest v1 document",
        check_experiments,
    )?;
    let (flights, flights_bytes) =
        settle(flight_items, &mut skipped, "flights index", check_flights)?;
    let parsed_cloudbees = parse_cloudbees(cloudbees_items, &mut skipped);
    let flags = settle(
        parsed_cloudbees,
        &mut skipped,
        "CloudBees configuration",
        check_cloudbees,
    )?;
    Ok(Validated {
        normandy,
        experiments,
        experiments_bytes,
        flights,
        flights_bytes,
        flags,
        skipped: skipped.into_values().collect(),
    })
}

fn skip(skipped: &mut Skipped, index: usize, item: &SourceItem, reason: String) {
    skipped.entry(index).or_insert_with(|| SkippedItem {
        recipe_id: item.recipe_id,
        revision_id: item.revision_id,
        kind: item.kind,
        reason,
    });
}

/// Runs `check` on the candidates, leaving out the ones it blames, until it passes. Every
/// round leaves out at least one candidate, so this ends; an empty list must pass (`what`
/// names the document in the error when it does not).
fn settle<'a, P, T>(
    mut candidates: Vec<Candidate<'a, P>>,
    skipped: &mut Skipped,
    what: &str,
    mut check: impl FnMut(&[Candidate<'a, P>]) -> Result<T, Vec<Rejection>>,
) -> Result<T, PublishError> {
    loop {
        let rejections = match check(&candidates) {
            Ok(value) => return Ok(value),
            Err(rejections) => rejections,
        };
        if candidates.is_empty() {
            let reason = rejections
                .into_iter()
                .next()
                .map(|rejection| match rejection {
                    Rejection::Item(_, reason) | Rejection::All(reason) => reason,
                })
                .unwrap_or_default();
            return Err(PublishError::Render(format!(
                "the empty {what} does not validate: {reason}"
            )));
        }
        // The first reason blamed on each candidate, by position.
        let mut blamed: BTreeMap<usize, String> = BTreeMap::new();
        for rejection in rejections {
            match rejection {
                Rejection::Item(position, reason) if position < candidates.len() => {
                    blamed.entry(position).or_insert(reason);
                }
                Rejection::Item(_, reason) | Rejection::All(reason) => {
                    for position in 0..candidates.len() {
                        blamed.entry(position).or_insert_with(|| reason.clone());
                    }
                }
            }
        }
        if blamed.is_empty() {
            for position in 0..candidates.len() {
                blamed.insert(position, "rejected by validation".to_owned());
            }
        }
        for (position, reason) in blamed.into_iter().rev() {
            let candidate = candidates.remove(position);
            skip(skipped, candidate.index, candidate.item, reason);
        }
    }
}

/// The error diagnostics as rejections: an error under `list[i]` (then under `body`, a key
/// the server wrapped the item in) blames the `i`-th candidate, with its path relative to the
/// item's data.
fn rejections(diagnostics: &[Diagnostic], list: &[&str], body: Option<&str>) -> Vec<Rejection> {
    diagnostics
        .iter()
        .filter(|diagnostic| diagnostic.is_error())
        .map(|diagnostic| {
            let segments = &diagnostic.path.0;
            let under_list = segments.len() > list.len()
                && list
                    .iter()
                    .zip(segments)
                    .all(|(key, segment)| matches!(segment, PathSegment::Key(k) if k == key));
            match segments.get(list.len()) {
                Some(PathSegment::Index(position)) if under_list => {
                    let mut relative = segments.get(list.len() + 1..).unwrap_or_default();
                    if let (Some(body), Some(PathSegment::Key(first))) = (body, relative.first())
                        && first == body
                    {
                        relative = relative.get(1..).unwrap_or_default();
                    }
                    Rejection::Item(
                        *position,
                        reason(&FieldPath(relative.to_vec()), &diagnostic.message),
                    )
                }
                _ => Rejection::All(reason(&diagnostic.path, &diagnostic.message)),
            }
        })
        .collect()
}

fn reason(path: &FieldPath, message: &str) -> String {
    if path.0.is_empty() {
        message.to_owned()
    } else {
        format!("{path}: {message}")
    }
}

fn render(value: &Value) -> Result<Vec<u8>, Vec<Rejection>> {
    serde_json::to_vec(value).map_err(|error| vec![Rejection::All(format!("JSON: {error}"))])
}

/// The key of the revision a Normandy item is wrapped in.
const REVISION_SLOT: &str = "approved_revision";

/// A Normandy item as the API v3 recipe it is: `{id, approved_revision: {...data, id}}`, the
/// revision's `id` being the revision id. The core reads it as Normandy's server would,
/// compiling `filter_object` and `extra_filter_expression` into the filter expression.
fn normandy_v3(item: &SourceItem) -> Value {
    let mut revision = match &item.data {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    revision.insert("id".to_owned(), Value::from(item.revision_id));
    let mut recipe = Map::new();
    recipe.insert("id".to_owned(), Value::from(item.recipe_id));
    recipe.insert(REVISION_SLOT.to_owned(), Value::Object(revision));
    Value::Object(recipe)
}

fn check_normandy(candidates: &[Candidate<'_, ()>]) -> Result<Loaded, Vec<Rejection>> {
    let list = Value::Array(candidates.iter().map(|c| normandy_v3(c.item)).collect());
    let bytes = render(&list)?;
    match manifest::load("recipes", &bytes) {
        Ok(loaded) if !loaded.has_errors() => Ok(loaded),
        Ok(loaded) => Err(rejections(loaded.diagnostics(), &[], Some(REVISION_SLOT))),
        Err(error) => Err(rejections(&error.diagnostics, &[], Some(REVISION_SLOT))),
    }
}

fn check_experiments(
    candidates: &[Candidate<'_, ()>],
) -> Result<(Loaded, Vec<u8>), Vec<Rejection>> {
    let mut document = Map::new();
    document.insert("version".to_owned(), Value::from(1));
    document.insert(
        "experiments".to_owned(),
        Value::Array(candidates.iter().map(|c| c.item.data.clone()).collect()),
    );
    let bytes = render(&Value::Object(document))?;
    match manifest::load("experiments", &bytes) {
        Ok(loaded) if !loaded.has_errors() => Ok((loaded, bytes)),
        Ok(loaded) => Err(rejections(loaded.diagnostics(), &["experiments"], None)),
        Err(error) => Err(rejections(&error.diagnostics, &["experiments"], None)),
    }
}

fn check_flights(
    candidates: &[Candidate<'_, ()>],
) -> Result<(FlightsIndex, Vec<u8>), Vec<Rejection>> {
    let mut document = Map::new();
    document.insert(
        "flights".to_owned(),
        Value::Array(candidates.iter().map(|c| c.item.data.clone()).collect()),
    );
    let bytes = render(&Value::Object(document))?;
    let text = String::from_utf8_lossy(&bytes);
    let parsed = testpilot::parse("flights", &text);
    match parsed.value {
        Some(index) if !parsed.has_errors() => Ok((index, bytes)),
        _ => Err(rejections(&parsed.diagnostics, &["flights"], None)),
    }
}

/// The name a CloudBees item goes by in diagnostics (the core's checks across files name
/// files): `flag 12`, `target-group 7`.
fn cloudbees_file(item: &SourceItem) -> String {
    format!("{} {}", item.kind, item.recipe_id)
}

/// Parses each flag and target group on its own (JSON is YAML, so the core's YAML reader
/// takes it), leaving out the ones with errors.
fn parse_cloudbees<'a>(
    candidates: Vec<Candidate<'a, ()>>,
    skipped: &mut Skipped,
) -> Vec<Candidate<'a, CloudBeesDocument>> {
    let mut parsed = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        let item = candidate.item;
        let declared = match item.kind {
            ItemKind::TargetGroup => "target-group",
            _ => "experiment",
        };
        let mut data = match &item.data {
            Value::Object(map) => map.clone(),
            _ => Map::new(),
        };
        data.entry("type")
            .or_insert_with(|| Value::String(declared.to_owned()));
        let text = Value::Object(data).to_string();
        let file = cloudbees_file(item);
        let result = match item.kind {
            ItemKind::TargetGroup => {
                let parsed = cloudbees::parse_target_group(&file, &text);
                (
                    parsed.value.map(CloudBeesDocument::TargetGroup),
                    parsed.diagnostics,
                )
            }
            _ => {
                let parsed = cloudbees::parse_experiment(&file, &text);
                (
                    parsed.value.map(CloudBeesDocument::Experiment),
                    parsed.diagnostics,
                )
            }
        };
        match result {
            (Some(document), diagnostics) if !diagnostics.iter().any(Diagnostic::is_error) => {
                parsed.push(Candidate {
                    index: candidate.index,
                    item,
                    parsed: document,
                });
            }
            (_, diagnostics) => {
                let reason = diagnostics.iter().find(|d| d.is_error()).map_or_else(
                    || "rejected by validation".to_owned(),
                    |d| reason(&d.path, &d.message),
                );
                skip(skipped, candidate.index, item, reason);
            }
        }
    }
    parsed
}

fn check_cloudbees(
    candidates: &[Candidate<'_, CloudBeesDocument>],
) -> Result<Configuration, Vec<Rejection>> {
    let mut configuration = Configuration::default();
    let mut positions: HashMap<String, usize> = HashMap::with_capacity(candidates.len());
    for (position, candidate) in candidates.iter().enumerate() {
        positions
            .entry(cloudbees_file(candidate.item))
            .or_insert(position);
        match &candidate.parsed {
            CloudBeesDocument::Experiment(experiment) if experiment.is_archived() => {
                configuration.archived_experiments.push(experiment.clone());
            }
            CloudBeesDocument::Experiment(experiment) => {
                configuration.experiments.push(experiment.clone());
            }
            CloudBeesDocument::TargetGroup(group) => {
                configuration.target_groups.push(group.clone());
            }
        }
    }
    let errors: Vec<Rejection> = cloudbees::validate(&configuration)
        .iter()
        .filter(|d| d.is_error())
        .map(|d| match positions.get(&d.file) {
            Some(position) => Rejection::Item(*position, reason(&d.path, &d.message)),
            None => Rejection::All(format!("{}: {}", d.file, reason(&d.path, &d.message))),
        })
        .collect();
    if errors.is_empty() {
        Ok(configuration)
    } else {
        Err(errors)
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
