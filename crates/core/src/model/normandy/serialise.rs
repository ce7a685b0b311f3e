//! Writing recipes back in the shape they came in.

use serde_json::Value as Json;

use super::arguments::pref_value_json;
use super::{
    Arguments, Container, JsonMap, OtherRevision, Recipe, RecipeSet, RevisionId, Shape, Signature,
};

/// Serialises `set` as pretty JSON, each recipe in the shape it was read in.
pub fn to_json(set: &RecipeSet) -> String {
    let recipes: Vec<Json> = set.recipes.iter().map(recipe_json).collect();
    let document = match &set.container {
        Container::Single => recipes.into_iter().next().unwrap_or(Json::Null),
        Container::Array => Json::Array(recipes),
        Container::Paginated { extra } => listing("results", recipes, extra),
        Container::RemoteSettings { extra } => listing("data", recipes, extra),
    };
    // Serialising a `serde_json::Value` cannot fail (all keys are strings).
    serde_json::to_string_pretty(&document).unwrap_or_default()
}

fn listing(key: &str, recipes: Vec<Json>, extra: &JsonMap) -> Json {
    let mut map = JsonMap::new();
    for (k, v) in extra {
        map.insert(k.clone(), v.clone());
    }
    // `results` is written after `count`/`next`/`previous`, as the API does.
    map.insert(key.to_owned(), Json::Array(recipes));
    Json::Object(map)
}

/// One recipe in its original shape.
pub(crate) fn recipe_json(recipe: &Recipe) -> Json {
    match &recipe.layout.shape {
        Shape::Bare => Json::Object(body_json(recipe, false)),
        Shape::Signed {
            record_id,
            signature_null,
            extra,
        } => {
            let mut map = JsonMap::new();
            if let Some(record_id) = record_id {
                map.insert("id".to_owned(), record_id.clone());
            }
            map.insert("recipe".to_owned(), Json::Object(body_json(recipe, false)));
            insert_signature(&mut map, recipe.signature.as_ref(), *signature_null);
            append(&mut map, extra);
            Json::Object(map)
        }
        Shape::V3 {
            from,
            other,
            signature_null,
            extra,
        } => {
            let mut map = JsonMap::new();
            map.insert("id".to_owned(), Json::from(recipe.id));
            let chosen = Json::Object(body_json(recipe, true));
            let other_value = match other {
                OtherRevision::Absent => None,
                OtherRevision::Null => Some(Json::Null),
                OtherRevision::Same => Some(chosen.clone()),
                OtherRevision::Raw(value) => Some(value.clone()),
            };
            // Latest first, as the API writes them.
            let (latest, approved) = match from {
                super::RevisionSlot::Approved => (other_value, Some(chosen)),
                super::RevisionSlot::Latest => (Some(chosen), other_value),
            };
            if let Some(latest) = latest {
                map.insert("latest_revision".to_owned(), latest);
            }
            if let Some(approved) = approved {
                map.insert("approved_revision".to_owned(), approved);
            }
            insert_signature(&mut map, recipe.signature.as_ref(), *signature_null);
            append(&mut map, extra);
            Json::Object(map)
        }
    }
}

fn insert_signature(map: &mut JsonMap, signature: Option<&Signature>, null: bool) {
    match signature {
        Some(signature) => {
            map.insert("signature".to_owned(), signature_json(signature));
        }
        None if null => {
            map.insert("signature".to_owned(), Json::Null);
        }
        None => {}
    }
}

fn signature_json(signature: &Signature) -> Json {
    let mut map = JsonMap::new();
    map.insert(
        "signature".to_owned(),
        Json::String(signature.signature.clone()),
    );
    for (key, value) in [
        ("timestamp", &signature.timestamp),
        ("x5u", &signature.x5u),
        ("public_key", &signature.public_key),
    ] {
        if let Some(value) = value {
            map.insert(key.to_owned(), Json::String(value.clone()));
        }
    }
    append(&mut map, &signature.extra);
    Json::Object(map)
}

/// The recipe (or, for v3, revision) object.
fn body_json(recipe: &Recipe, v3_revision: bool) -> JsonMap {
    let layout = &recipe.layout;
    let mut map = JsonMap::new();
    let revision_id = recipe.revision_id.as_ref().map(|id| match id {
        RevisionId::Number(n) => Json::from(*n),
        RevisionId::Text(s) => Json::String(s.clone()),
    });
    if v3_revision {
        if let Some(revision_id) = revision_id.clone() {
            map.insert("id".to_owned(), revision_id);
        }
    } else {
        map.insert("id".to_owned(), Json::from(recipe.id));
    }
    map.insert("name".to_owned(), Json::String(recipe.name.clone()));
    if !v3_revision && let Some(revision_id) = revision_id {
        map.insert("revision_id".to_owned(), revision_id);
    }
    let action = match &layout.action_object {
        Some(extra) => {
            let mut object = JsonMap::new();
            object.insert("name".to_owned(), Json::String(recipe.action.clone()));
            append(&mut object, extra);
            Json::Object(object)
        }
        None => Json::String(recipe.action.clone()),
    };
    map.insert("action".to_owned(), action);
    if let Some(arguments) = arguments_json(&recipe.arguments) {
        map.insert("arguments".to_owned(), arguments);
    }
    let source = &layout.filter_source;
    let strings = [
        ("filter_expression", &source.filter_expression),
        ("extra_filter_expression", &source.extra_filter_expression),
    ];
    for (key, value) in strings {
        if let Some(value) = value {
            map.insert(key.to_owned(), Json::String(value.clone()));
        }
    }
    let values = [
        ("filter_object", &source.filter_object),
        ("locales", &source.locales),
        ("countries", &source.countries),
        ("channels", &source.channels),
    ];
    for (key, value) in values {
        if let Some(value) = value {
            map.insert(key.to_owned(), value.clone());
        }
    }
    if layout.capabilities_given {
        map.insert(
            "capabilities".to_owned(),
            Json::Array(
                recipe
                    .capabilities
                    .iter()
                    .map(|c| Json::String(c.clone()))
                    .collect(),
            ),
        );
    }
    append(&mut map, &layout.extra);
    map
}

/// The arguments as JSON; `None` when the recipe had none.
pub(crate) fn arguments_json(arguments: &Arguments) -> Option<Json> {
    let mut map = JsonMap::new();
    let mut put = |key: &str, value: Json| {
        map.insert(key.to_owned(), value);
    };
    let extra = match arguments {
        Arguments::Other { raw, .. } => return Some(raw.clone()),
        Arguments::Invalid { raw, .. } => return raw.clone(),
        Arguments::PreferenceRollout(args) => {
            put("slug", Json::String(args.slug.clone()));
            let preferences = args
                .preferences
                .iter()
                .map(|pref| {
                    let mut item = JsonMap::new();
                    item.insert(
                        "preferenceName".to_owned(),
                        Json::String(pref.preference_name.clone()),
                    );
                    item.insert("value".to_owned(), pref_value_json(&pref.value));
                    append(&mut item, &pref.extra);
                    Json::Object(item)
                })
                .collect();
            put("preferences", Json::Array(preferences));
            &args.extra
        }
        Arguments::PreferenceRollback(args) => {
            put("rolloutSlug", Json::String(args.rollout_slug.clone()));
            &args.extra
        }
        Arguments::PreferenceExperiment(args) => {
            put("slug", Json::String(args.slug.clone()));
            put("preferenceName", Json::String(args.preference_name.clone()));
            put(
                "preferenceType",
                Json::String(args.preference_type.as_str().to_owned()),
            );
            if let Some(branch_type) = args.preference_branch_type {
                put(
                    "preferenceBranchType",
                    Json::String(branch_type.as_str().to_owned()),
                );
            }
            let branches = args
                .branches
                .iter()
                .map(|branch| {
                    let mut item = JsonMap::new();
                    item.insert("slug".to_owned(), Json::String(branch.slug.clone()));
                    item.insert("value".to_owned(), pref_value_json(&branch.value));
                    item.insert("ratio".to_owned(), Json::from(branch.ratio));
                    append(&mut item, &branch.extra);
                    Json::Object(item)
                })
                .collect();
            put("branches", Json::Array(branches));
            put("isEnrollmentPaused", Json::Bool(args.is_enrollment_paused));
            if let Some(high) = args.is_high_population {
                put("isHighPopulation", Json::Bool(high));
            }
            if let Some(url) = &args.experiment_document_url {
                put("experimentDocumentUrl", Json::String(url.clone()));
            }
            &args.extra
        }
        Arguments::MultiPreferenceExperiment(args) => {
            put("slug", Json::String(args.slug.clone()));
            put(
                "userFacingName",
                Json::String(args.user_facing_name.clone()),
            );
            put(
                "userFacingDescription",
                Json::String(args.user_facing_description.clone()),
            );
            let branches = args
                .branches
                .iter()
                .map(|branch| {
                    let mut item = JsonMap::new();
                    item.insert("slug".to_owned(), Json::String(branch.slug.clone()));
                    item.insert("ratio".to_owned(), Json::from(branch.ratio));
                    let mut preferences = JsonMap::new();
                    for (name, spec) in &branch.preferences {
                        let mut pref = JsonMap::new();
                        pref.insert(
                            "preferenceType".to_owned(),
                            Json::String(spec.preference_type.as_str().to_owned()),
                        );
                        if let Some(branch_type) = spec.preference_branch_type {
                            pref.insert(
                                "preferenceBranchType".to_owned(),
                                Json::String(branch_type.as_str().to_owned()),
                            );
                        }
                        pref.insert(
                            "preferenceValue".to_owned(),
                            pref_value_json(&spec.preference_value),
                        );
                        append(&mut pref, &spec.extra);
                        preferences.insert(name.clone(), Json::Object(pref));
                    }
                    item.insert("preferences".to_owned(), Json::Object(preferences));
                    append(&mut item, &branch.extra);
                    Json::Object(item)
                })
                .collect();
            put("branches", Json::Array(branches));
            put("isEnrollmentPaused", Json::Bool(args.is_enrollment_paused));
            if let Some(high) = args.is_high_population {
                put("isHighPopulation", Json::Bool(high));
            }
            if let Some(url) = &args.experiment_document_url {
                put("experimentDocumentUrl", Json::String(url.clone()));
            }
            &args.extra
        }
    };
    append(&mut map, extra);
    Some(Json::Object(map))
}

/// Appends `extra` to `map` (typed keys win if a key somehow appears in both).
fn append(map: &mut JsonMap, extra: &JsonMap) {
    for (key, value) in extra {
        if !map.contains_key(key) {
            map.insert(key.clone(), value.clone());
        }
    }
}
