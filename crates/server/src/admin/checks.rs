//! Checks of a revision against the other recipes of its environment, where Normandy makes
//! them: a slug is used by one recipe of an action family only, and a rollback names an
//! existing rollout. Each other kind has one identifying field (a Manifest v1 experiment's
//! `id`, a flight's `studyname` (or `name`), a flag's `flag`, a target group's `name`), unique in its
//! environment, because clients and OFREP look items up by it.
//!
//! These read the latest and approved revisions of the environment's recipes of the kind, so
//! they are advisory under concurrency (two editors may race); what the store enforces in its
//! transactions (a rollback and its rollout never enabled together) does not depend on them.

use flightdeck_core::model::normandy as core_normandy;
use flightdeck_store::{Kind, RecipeFilter, Store};
use serde_json::Value;

use super::ApiError;
use crate::validate::FieldProblem;

/// Normandy actions whose recipes share one slug space.
fn action_family(action: &str) -> Option<&'static str> {
    match action {
        core_normandy::ACTION_PREFERENCE_ROLLOUT => Some("preference rollouts"),
        core_normandy::ACTION_PREFERENCE_EXPERIMENT
        | core_normandy::ACTION_SINGLE_PREFERENCE_EXPERIMENT
        | core_normandy::ACTION_MULTI_PREFERENCE_EXPERIMENT => Some("preference experiments"),
        _ => None,
    }
}

/// What one recipe's data is identified by, for the checks.
struct Identity<'d> {
    /// The field that holds it, as errors name it.
    field: &'static str,
    value: &'d str,
}

fn identity(kind: Kind, data: &Value) -> Option<Identity<'_>> {
    let (field, value) = match kind {
        Kind::Normandy => {
            let action = data.get("action")?.as_str()?;
            action_family(action)?;
            ("arguments.slug", data.get("arguments")?.get("slug")?)
        }
        Kind::ManifestV1 => ("id", data.get("id")?),
        // The reference implementation spells it `name`.
        Kind::Flight => match data.get("studyname") {
            Some(value) => ("studyname", value),
            None => ("name", data.get("name")?),
        },
        Kind::Flag => ("flag", data.get("flag")?),
        Kind::TargetGroup => ("name", data.get("name")?),
    };
    Some(Identity {
        field,
        value: value.as_str()?,
    })
}

/// Whether two revisions' data are in the same identity space (same kind is given).
fn same_space(kind: Kind, a: &Value, b: &Value) -> bool {
    if kind != Kind::Normandy {
        return true;
    }
    let family = |data: &Value| {
        data.get("action")
            .and_then(Value::as_str)
            .and_then(action_family)
    };
    family(a).is_some() && family(a) == family(b)
}

/// The rollout a `preference-rollback` names, if `data` is one.
fn rollback_target(kind: Kind, data: &Value) -> Option<&str> {
    if kind != Kind::Normandy
        || data.get("action").and_then(Value::as_str)
            != Some(core_normandy::ACTION_PREFERENCE_ROLLBACK)
    {
        return None;
    }
    data.get("arguments")?.get("rolloutSlug")?.as_str()
}

/// The problems of `data` (a revision of a `kind` recipe in `environment`) against the
/// environment's other recipes; `own_id` is the recipe being updated, if any.
pub(crate) async fn against_environment(
    store: &Store,
    kind: Kind,
    environment: &str,
    own_id: Option<i64>,
    data: &Value,
) -> Result<Vec<FieldProblem>, ApiError> {
    let identity = identity(kind, data);
    let rollback_of = rollback_target(kind, data);
    if identity.is_none() && rollback_of.is_none() {
        return Ok(Vec::new());
    }
    let recipes = store
        .list_recipes(&RecipeFilter {
            environment: Some(environment.to_owned()),
            kind: Some(kind),
            ..RecipeFilter::default()
        })
        .await?;
    let mut problems = Vec::new();
    let mut rollout_found = false;
    for recipe in recipes.iter().filter(|r| Some(r.id) != own_id) {
        let mut revision_ids = vec![recipe.latest_revision_id];
        revision_ids.extend(
            recipe
                .approved_revision_id
                .filter(|id| *id != recipe.latest_revision_id),
        );
        for revision_id in revision_ids {
            let other = store.revision(revision_id).await?.data;
            if let Some(identity) = &identity
                && same_space(kind, data, &other)
                && self::identity(kind, &other).is_some_and(|o| o.value == identity.value)
                && !problems
                    .iter()
                    .any(|p: &FieldProblem| p.field == identity.field)
            {
                problems.push(FieldProblem {
                    field: identity.field.to_owned(),
                    message: format!(
                        "`{}` is already used by recipe {} in environment `{environment}`",
                        identity.value, recipe.id
                    ),
                });
            }
            if let Some(slug) = rollback_of
                && other.get("action").and_then(Value::as_str)
                    == Some(core_normandy::ACTION_PREFERENCE_ROLLOUT)
                && other
                    .get("arguments")
                    .and_then(|a| a.get("slug"))
                    .and_then(Value::as_str)
                    == Some(slug)
            {
                rollout_found = true;
            }
        }
    }
    if let Some(slug) = rollback_of
        && !rollout_found
    {
        problems.push(FieldProblem {
            field: "arguments.rolloutSlug".to_owned(),
            message: format!(
                "no preference-rollout recipe with slug `{slug}` exists in environment `{environment}`"
            ),
        });
    }
    Ok(problems)
}
