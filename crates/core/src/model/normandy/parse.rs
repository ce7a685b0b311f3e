//! Recognising recipe shapes and reading recipe bodies.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::OnceLock;

use serde::de::{self, Deserializer as _, MapAccess, SeqAccess, Visitor};

use crate::diagnostic::{Diagnostic, FieldPath, Position};
use crate::model::Parsed;

use super::json::{Cx, Json, JsonObj, Loc, byte_offset, extras, type_name};
use super::tree::JsonVisitor;
use super::{
    Container, FilterSource, JsonMap, Layout, OtherRevision, Recipe, RecipeSet, RevisionId,
    RevisionSlot, SUPPORTED_ACTIONS, Shape, Signature, action_family, arguments, filter,
};

/// Files larger than this are rejected before parsing (a recipe file is kilobytes; a
/// 1,000-recipe manifest a few megabytes).
pub const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;

/// Parses a Normandy recipe file in any of the accepted shapes (see the module docs).
pub fn parse(file: &str, text: &str) -> Parsed<RecipeSet> {
    if text.len() > MAX_FILE_BYTES {
        return Parsed {
            value: None,
            diagnostics: vec![Diagnostic::error(
                file,
                Position::START,
                FieldPath::root(),
                format!(
                    "the file is {} bytes; recipe files are limited to {MAX_FILE_BYTES} bytes",
                    text.len()
                ),
            )],
        };
    }
    let invalid_json = |error: serde_json::Error| Parsed {
        value: None,
        diagnostics: vec![Diagnostic::error(
            file,
            serde_position(text, &error),
            FieldPath::root(),
            format!("invalid JSON: {error}"),
        )],
    };
    // A bare array (the common shape, and a signed manifest's) is read one recipe at a time:
    // each recipe's tree is dropped once its recipe is built, so a 1,000-recipe manifest never
    // holds the tree of every recipe beside the recipes. What is read before a syntax error
    // further on is dropped: the error is the only diagnostic, as for any other shape.
    // serde_json bounds nesting (128 levels), so hostile input cannot exhaust the stack.
    let mut streamed = Streamed {
        cx: Cx::streaming(file, text),
        parsed: Vec::new(),
    };
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let top = match deserializer
        .deserialize_any(TopVisitor {
            streamed: &mut streamed,
        })
        .and_then(|top| deserializer.end().map(|()| top))
    {
        Ok(top) => top,
        Err(error) => return invalid_json(error),
    };
    let json = match top {
        Top::Streamed => {
            let Streamed { mut cx, parsed } = streamed;
            cross_checks(&mut cx, &parsed);
            return Parsed {
                value: Some(RecipeSet {
                    recipes: parsed.into_iter().map(|entry| entry.recipe).collect(),
                    container: Container::Array,
                }),
                diagnostics: cx.diagnostics,
            };
        }
        Top::Tree(json) => json,
    };
    let mut cx = Cx::with_tree(file, text, &json);
    let root = Loc::Root;
    // The recipes, and the key of the listing that holds them (`None` for a bare array).
    let (container, items, listing_key): (Container, &[Json], Option<&'static str>) = match &json {
        // Arrays are streamed above; this arm only keeps the match whole.
        Json::Array(items) => (Container::Array, items.as_slice(), None),
        Json::Object(map) if is_listing(map, "results") => (
            Container::Paginated {
                extra: extras(map, &["results"]),
            },
            listing_items(map, "results"),
            Some("results"),
        ),
        Json::Object(map) if is_listing(map, "data") => (
            Container::RemoteSettings {
                extra: extras(map, &["data"]),
            },
            listing_items(map, "data"),
            Some("data"),
        ),
        Json::Object(_) => (Container::Single, std::slice::from_ref(&json), None),
        other => {
            cx.error(
                &root,
                format!(
                    "expected a recipe, an array of recipes or a page {{\"results\": [...]}}, \
                     found {}",
                    type_name(other)
                ),
            );
            return Parsed {
                value: None,
                diagnostics: cx.diagnostics,
            };
        }
    };
    let base = match listing_key {
        Some(key) => root.key(key),
        None => Loc::Root,
    };
    let mut parsed = Vec::with_capacity(items.len());
    for (idx, item) in items.iter().enumerate() {
        let path = if matches!(container, Container::Single) {
            Loc::Root
        } else {
            base.index(idx)
        };
        let item_place = ItemPlace {
            listing_key,
            index: (!matches!(container, Container::Single)).then_some(idx),
        };
        if let Some(entry) = parse_item(&mut cx, item, &path, item_place) {
            parsed.push(entry);
        }
    }
    cross_checks(&mut cx, &parsed);
    let value = if matches!(container, Container::Single) && parsed.is_empty() {
        None
    } else {
        Some(RecipeSet {
            recipes: parsed.into_iter().map(|entry| entry.recipe).collect(),
            container,
        })
    };
    Parsed {
        value,
        diagnostics: cx.diagnostics,
    }
}

/// What [`TopVisitor`] read: a bare array's recipes (into [`Streamed`]), or the tree of any
/// other document.
enum Top<'a> {
    Streamed,
    Tree(Json<'a>),
}

/// The recipes of a bare array, read one element at a time, and their diagnostics.
struct Streamed<'a, 't> {
    cx: Cx<'a, 't>,
    parsed: Vec<Entry>,
}

/// Reads a document's top level: the elements of an array one by one into recipes, anything
/// else into a tree (as [`Json`]'s own visitor does).
struct TopVisitor<'s, 'a, 't> {
    streamed: &'s mut Streamed<'a, 't>,
}

impl<'de> Visitor<'de> for TopVisitor<'_, '_, '_> {
    type Value = Top<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Top<'de>, A::Error> {
        let mut index = 0;
        while let Some(item) = seq.next_element::<Json<'de>>()? {
            let path = Loc::Root.index(index);
            let place = ItemPlace {
                listing_key: None,
                index: Some(index),
            };
            if let Some(entry) = parse_item(&mut self.streamed.cx, &item, &path, place) {
                self.streamed.parsed.push(entry);
            }
            index += 1;
        }
        Ok(Top::Streamed)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Top<'de>, A::Error> {
        JsonVisitor.visit_map(map).map(Top::Tree)
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Top<'de>, E> {
        JsonVisitor.visit_bool(value).map(Top::Tree)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Top<'de>, E> {
        JsonVisitor.visit_i64(value).map(Top::Tree)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Top<'de>, E> {
        JsonVisitor.visit_u64(value).map(Top::Tree)
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Top<'de>, E> {
        JsonVisitor.visit_f64(value).map(Top::Tree)
    }

    fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Top<'de>, E> {
        JsonVisitor.visit_borrowed_str(value).map(Top::Tree)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Top<'de>, E> {
        JsonVisitor.visit_str(value).map(Top::Tree)
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Top<'de>, E> {
        JsonVisitor.visit_string(value).map(Top::Tree)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Top<'de>, E> {
        JsonVisitor.visit_unit().map(Top::Tree)
    }
}

/// serde_json's line and column (in bytes) as a character position.
fn serde_position(text: &str, error: &serde_json::Error) -> Position {
    let line = error.line().max(1);
    let line_start = byte_offset(text, Position { line, column: 1 });
    let byte_column = error.column().saturating_sub(1);
    let mut end = (line_start + byte_column).min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let column = text
        .get(line_start..end)
        .map_or(1, |s| s.chars().count() + 1);
    Position { line, column }
}

/// Whether `map` is a listing `{key: [...]}` rather than a recipe.
fn is_listing(map: &JsonObj, key: &str) -> bool {
    matches!(map.get(key), Some(Json::Array(_)))
        && !["recipe", "action", "latest_revision", "approved_revision"]
            .iter()
            .any(|k| map.contains_key(k))
}

fn listing_items<'v, 'j>(map: &'v JsonObj<'j>, key: &str) -> &'v [Json<'j>] {
    match map.get(key) {
        Some(Json::Array(items)) => items,
        _ => &[],
    }
}

/// A parsed recipe with where it was, for cross-recipe checks.
struct Entry {
    recipe: Recipe,
    place: BodyPlace,
}

impl Entry {
    /// Path of the recipe's id.
    fn id_path(&self) -> FieldPath {
        let item = self.place.item.path();
        match self.place.body_key {
            Some(key) if !self.place.id_beside_body => item.key(key).key("id"),
            _ => item.key("id"),
        }
    }

    /// Path of the recipe's `arguments`.
    fn arguments_path(&self) -> FieldPath {
        let item = self.place.item.path();
        match self.place.body_key {
            Some(key) => item.key(key).key("arguments"),
            None => item.key("arguments"),
        }
    }
}

/// Where an item of the file is: its index in the listing (`None` for a file that is one
/// recipe). Field paths are built from it only when a cross-recipe check reports something.
#[derive(Debug, Clone, Copy)]
struct ItemPlace {
    listing_key: Option<&'static str>,
    index: Option<usize>,
}

impl ItemPlace {
    fn path(self) -> FieldPath {
        let base = match self.listing_key {
            Some(key) => FieldPath::root().key(key),
            None => FieldPath::root(),
        };
        match self.index {
            Some(idx) => base.index(idx),
            None => base,
        }
    }
}

/// Where a recipe body is within its item.
#[derive(Debug, Clone, Copy)]
struct BodyPlace {
    item: ItemPlace,
    /// The member holding the body (`recipe`, a v3 revision slot), `None` for a bare recipe.
    body_key: Option<&'static str>,
    /// Whether the recipe id sits beside the body rather than in it (API v3).
    id_beside_body: bool,
}

fn parse_item(cx: &mut Cx, item: &Json, path: &Loc, place: ItemPlace) -> Option<Entry> {
    let Some(map) = item.as_object() else {
        cx.error(
            path,
            format!("expected a recipe object, found {}", type_name(item)),
        );
        return None;
    };
    if map.contains_key("recipe") {
        signed_record(cx, map, path, place)
    } else if map.contains_key("latest_revision") || map.contains_key("approved_revision") {
        v3_recipe(cx, map, path, place)
    } else {
        let body = body(cx, map, path, BodyKind::Recipe)?;
        let place = BodyPlace {
            item: place,
            body_key: None,
            id_beside_body: false,
        };
        Some(body.into_entry(Shape::Bare, None, place))
    }
}

fn signed_record(cx: &mut Cx, map: &JsonObj, path: &Loc, place: ItemPlace) -> Option<Entry> {
    let recipe_path = path.key("recipe");
    let recipe_map = cx.expect_object(map.get("recipe")?, &recipe_path)?;
    let body = body(cx, recipe_map, &recipe_path, BodyKind::Recipe)?;
    let (signature, signature_null) = signature_member(cx, map, path, true);
    let record_id = map.get("id");
    if let Some(record_id) = record_id {
        let matches = match record_id {
            Json::String(s) => s.parse::<u64>().ok() == Some(body.id),
            Json::Number(_) => {
                super::json::as_whole_number(record_id) == i64::try_from(body.id).ok()
            }
            _ => false,
        };
        if !matches {
            cx.warning(
                &path.key("id"),
                format!(
                    "record id {} does not match the recipe id {}",
                    record_id.to_value(),
                    body.id
                ),
            );
        }
    }
    let shape = Shape::Signed {
        record_id: record_id.map(Json::to_value),
        signature_null,
        extra: extras(map, &["id", "recipe", "signature"]),
    };
    let place = BodyPlace {
        item: place,
        body_key: Some("recipe"),
        id_beside_body: false,
    };
    Some(body.into_entry(shape, signature, place))
}

fn v3_recipe(cx: &mut Cx, map: &JsonObj, path: &Loc, place: ItemPlace) -> Option<Entry> {
    let id = match map.get("id") {
        Some(value) => cx.expect_id(value, &path.key("id")),
        None => {
            cx.error(&path.key("id"), "missing required field \"id\"".to_owned());
            None
        }
    }?;
    let slot_value = |slot: RevisionSlot| map.get(slot.key());
    let is_revision = |value: Option<&Json>| matches!(value, Some(Json::Object(_)));
    let from = if is_revision(slot_value(RevisionSlot::Approved)) {
        RevisionSlot::Approved
    } else if is_revision(slot_value(RevisionSlot::Latest)) {
        RevisionSlot::Latest
    } else {
        for slot in [RevisionSlot::Approved, RevisionSlot::Latest] {
            if let Some(value) = slot_value(slot)
                && !value.is_null()
            {
                cx.error(
                    &path.key(slot.key()),
                    format!("expected a revision object, found {}", type_name(value)),
                );
            }
        }
        cx.error(
            path,
            "this v3 recipe has neither an approved_revision nor a latest_revision object"
                .to_owned(),
        );
        return None;
    };
    let chosen = slot_value(from)?;
    let other = match slot_value(from.other()) {
        None => OtherRevision::Absent,
        Some(Json::Null) => OtherRevision::Null,
        Some(value) if value == chosen => OtherRevision::Same,
        Some(value) => OtherRevision::Raw(value.to_value()),
    };
    let revision_path = path.key(from.key());
    let revision_map = chosen.as_object()?;
    let body = body(
        cx,
        revision_map,
        &revision_path,
        BodyKind::V3Revision { recipe_id: id },
    )?;
    let (signature, signature_null) = signature_member(cx, map, path, false);
    let shape = Shape::V3 {
        from,
        other,
        signature_null,
        extra: extras(
            map,
            &["id", "latest_revision", "approved_revision", "signature"],
        ),
    };
    let place = BodyPlace {
        item: place,
        body_key: Some(from.key()),
        id_beside_body: true,
    };
    Some(body.into_entry(shape, signature, place))
}

/// Reads the `signature` member of `map`; returns the signature and whether it was `null`.
fn signature_member(
    cx: &mut Cx,
    map: &JsonObj,
    path: &Loc,
    expected: bool,
) -> (Option<Signature>, bool) {
    let sig_path = path.key("signature");
    match map.get("signature") {
        None | Some(Json::Null) => {
            if expected {
                cx.warning(
                    &sig_path,
                    "this signed record has no signature; clients reject it".to_owned(),
                );
            }
            (None, matches!(map.get("signature"), Some(Json::Null)))
        }
        Some(value) => {
            let Some(sig_map) = cx.expect_object(value, &sig_path) else {
                return (None, false);
            };
            let signature = cx.required_str(sig_map, &sig_path, "signature");
            // `null` members stay in `extra`, so they are written back as `null`.
            let mut typed = ["signature"; 4];
            let mut n_typed = 1;
            let mut optional = |key: &'static str| match sig_map.get(key) {
                None | Some(Json::Null) => None,
                Some(v) => {
                    if let Some(slot) = typed.get_mut(n_typed) {
                        *slot = key;
                        n_typed += 1;
                    }
                    cx.expect_str(v, &sig_path.key(key)).map(str::to_owned)
                }
            };
            let timestamp = optional("timestamp");
            let x5u = optional("x5u");
            let public_key = optional("public_key");
            let signature = signature.map(|signature| Signature {
                signature: signature.to_owned(),
                timestamp,
                x5u,
                public_key,
                extra: extras(sig_map, typed.get(..n_typed).unwrap_or(&typed)),
            });
            (signature, false)
        }
    }
}

/// What kind of object a recipe body is.
#[derive(Debug, Clone, Copy)]
enum BodyKind {
    /// A minimal or v1 recipe: `id` is the recipe id, `revision_id` the revision.
    Recipe,
    /// A v3 revision: `id` is the revision id; the recipe id comes from outside.
    V3Revision { recipe_id: u64 },
}

const BODY_KEYS: [&str; 12] = [
    "id",
    "revision_id",
    "name",
    "action",
    "arguments",
    "filter_expression",
    "extra_filter_expression",
    "filter_object",
    "locales",
    "countries",
    "channels",
    "capabilities",
];

/// A recipe body read from a recipe or revision object.
struct Body {
    id: u64,
    name: String,
    revision_id: Option<RevisionId>,
    action: String,
    arguments: arguments::Arguments,
    filter: Option<super::Filter>,
    capabilities: Vec<String>,
    layout: Layout,
}

impl Body {
    fn into_entry(self, shape: Shape, signature: Option<Signature>, place: BodyPlace) -> Entry {
        Entry {
            recipe: Recipe {
                id: self.id,
                name: self.name,
                revision_id: self.revision_id,
                action: self.action,
                arguments: self.arguments,
                filter: self.filter,
                capabilities: self.capabilities,
                signature,
                layout: Layout {
                    shape,
                    ..self.layout
                },
                subject: OnceLock::new(),
                id_subject: OnceLock::new(),
                static_capabilities: OnceLock::new(),
            },
            place,
        }
    }
}

fn body(cx: &mut Cx, map: &JsonObj, path: &Loc, kind: BodyKind) -> Option<Body> {
    let (id, revision_id) = match kind {
        BodyKind::Recipe => {
            let id_loc = path.key("id");
            let id = match map.get("id") {
                Some(value) => cx.expect_id(value, &id_loc),
                None => {
                    cx.error(&id_loc, "missing required field \"id\"".to_owned());
                    None
                }
            };
            let revision_id = revision_id(cx, map.get("revision_id"), &path.key("revision_id"));
            (id, revision_id)
        }
        BodyKind::V3Revision { recipe_id } => {
            let revision_id = revision_id(cx, map.get("id"), &path.key("id"));
            (Some(recipe_id), revision_id)
        }
    };
    let name = cx.required_str(map, path, "name").map(str::to_owned);
    let (action, action_object) = action_member(cx, map, path);
    let arguments_path = path.key("arguments");
    let (id, name, action) = (id?, name?, action?);
    if !SUPPORTED_ACTIONS.contains(&action.as_str()) {
        cx.warning(
            &path.key("action"),
            format!(
                "action {} is not supported by Flightdeck; the recipe is kept but never applies",
                serde_json::Value::from(action.as_str())
            ),
        );
    }
    let arguments = arguments::parse(cx, &action, map.get("arguments"), &arguments_path);

    let string_member = |cx: &mut Cx, key: &str| match map.get(key) {
        None | Some(Json::Null) => None,
        Some(value) => cx.expect_str(value, &path.key(key)).map(str::to_owned),
    };
    let filter_source = FilterSource {
        filter_expression: string_member(cx, "filter_expression"),
        extra_filter_expression: string_member(cx, "extra_filter_expression"),
        filter_object: map
            .get("filter_object")
            .filter(|v| !v.is_null())
            .map(Json::to_value),
        locales: map.get("locales").map(Json::to_value),
        countries: map.get("countries").map(Json::to_value),
        channels: map.get("channels").map(Json::to_value),
    };
    let outcome = filter::build(cx, &filter_source, path, arguments_slug(map));

    let capabilities_given = map.contains_key("capabilities");
    let capabilities = if capabilities_given {
        capability_list(cx, map.get("capabilities"), &path.key("capabilities"))
    } else if matches!(kind, BodyKind::V3Revision { .. }) {
        derived_capabilities(cx, map, path, &action, outcome.capabilities)
    } else {
        Vec::new()
    };

    let mut known: Vec<&str> = BODY_KEYS.to_vec();
    if matches!(kind, BodyKind::V3Revision { .. }) {
        known.retain(|k| *k != "revision_id");
    }
    Some(Body {
        id,
        name,
        revision_id,
        action,
        arguments,
        filter: outcome.filter,
        capabilities,
        layout: Layout {
            shape: Shape::Bare,
            action_object,
            filter_source,
            capabilities_given,
            extra: extras(map, &known),
        },
    })
}

/// The slug the `qaOnly` filter object checks (Normandy uses `surveyId` for heartbeats).
fn arguments_slug<'v>(map: &'v JsonObj) -> Option<&'v str> {
    let arguments = map.get("arguments")?;
    ["slug", "rolloutSlug", "surveyId", "name"]
        .iter()
        .find_map(|key| arguments.get(key).and_then(Json::as_str))
}

fn revision_id(cx: &mut Cx, value: Option<&Json>, path: &Loc) -> Option<RevisionId> {
    match value? {
        Json::Null => None,
        Json::String(s) => Some(RevisionId::Text(s.as_ref().to_owned())),
        other => cx.expect_id(other, path).map(RevisionId::Number),
    }
}

/// `action`: a name, or (API v3) an object with a `name`.
fn action_member(cx: &mut Cx, map: &JsonObj, path: &Loc) -> (Option<String>, Option<JsonMap>) {
    let action_path = path.key("action");
    match map.get("action") {
        None => {
            cx.error(&action_path, "missing required field \"action\"".to_owned());
            (None, None)
        }
        Some(Json::String(name)) if !name.is_empty() => (Some(name.as_ref().to_owned()), None),
        Some(Json::Object(object)) => {
            let name = cx
                .required_str(object, &action_path, "name")
                .map(str::to_owned);
            (name, Some(extras(object, &["name"])))
        }
        Some(other) => {
            cx.error(
                &action_path,
                format!(
                    "expected an action name or an action object {{\"name\": ...}}, found {}",
                    describe_action(other)
                ),
            );
            (None, None)
        }
    }
}

fn describe_action(value: &Json) -> String {
    match value {
        Json::String(_) => "an empty string".to_owned(),
        other => type_name(other).to_owned(),
    }
}

fn capability_list(cx: &mut Cx, value: Option<&Json>, path: &Loc) -> Vec<String> {
    let Some(value) = value else {
        return Vec::new();
    };
    let Some(items) = cx.expect_array(value, path) else {
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| cx.expect_str(item, &path.index(i)).map(str::to_owned))
        .collect()
}

/// A v3 revision without `capabilities`: the server's rule, `extra_capabilities` ∪
/// `action.<name>` ∪ the filter objects' capabilities, sorted. (The server also adds
/// `capabilities-v1` when the set leaves its baseline; every client we serve has it, so it
/// changes no outcome and is left out.)
fn derived_capabilities(
    cx: &mut Cx,
    map: &JsonObj,
    path: &Loc,
    action: &str,
    from_filters: BTreeSet<String>,
) -> Vec<String> {
    let mut all = from_filters;
    all.insert(format!("action.{action}"));
    if let Some(extra) = map.get("extra_capabilities") {
        all.extend(capability_list(
            cx,
            Some(extra),
            &path.key("extra_capabilities"),
        ));
    }
    all.into_iter().collect()
}

/// Checks that need every recipe: unique ids, unique slugs per action family, and rollbacks
/// published together with the rollout they undo.
fn cross_checks(cx: &mut Cx, entries: &[Entry]) {
    // The first recipe with each id / slug, with its 0-based position.
    let mut ids: HashMap<u64, (usize, &Recipe)> = HashMap::with_capacity(entries.len());
    let mut slugs: HashMap<(&str, &str), &Recipe> = HashMap::with_capacity(entries.len());
    for (idx, entry) in entries.iter().enumerate() {
        let recipe = &entry.recipe;
        if let Some((first_idx, first)) = ids.get(&recipe.id) {
            cx.error_path(
                entry.id_path(),
                format!(
                    "recipe id {} is already used by the recipe {} (entry {})",
                    recipe.id,
                    serde_json::Value::from(first.name.as_str()),
                    first_idx + 1
                ),
            );
        } else {
            ids.insert(recipe.id, (idx, recipe));
        }
        let (Some(family), Some(slug)) = (action_family(&recipe.action), recipe.slug()) else {
            continue;
        };
        if let Some(first) = slugs.get(&(family, slug)) {
            cx.error_path(
                entry.arguments_path().key("slug"),
                format!(
                    "slug {} is already used by recipe {} ({} action family)",
                    serde_json::Value::from(slug),
                    first.id,
                    family
                ),
            );
        } else {
            slugs.insert((family, slug), recipe);
        }
    }
    for entry in entries {
        let recipe = &entry.recipe;
        if let super::Arguments::PreferenceRollback(rollback) = &recipe.arguments
            && let Some(rollout) =
                slugs.get(&("preference-rollout", rollback.rollout_slug.as_str()))
        {
            cx.warning_path(
                entry.arguments_path().key("rolloutSlug"),
                format!(
                    "the rollout {} (recipe {}) is in the same set; a rollout and its rollback \
                     must never be enabled together",
                    serde_json::Value::from(rollback.rollout_slug.as_str()),
                    rollout.id
                ),
            );
        }
    }
}
