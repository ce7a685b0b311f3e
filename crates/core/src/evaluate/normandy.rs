//! Evaluation of Normandy recipes, with reasons.
//!
//! Each recipe goes through the client's suitability checks in order, and the first that fails
//! gives the reason (signatures are checked by the client runtime before this):
//!
//! | step | outcome |
//! |---|---|
//! | capabilities | a required capability the client lacks → `capabilities-mismatch` |
//! | filter | missing or unparsable filter, or an evaluation error → `filter-error: <message>`; falsy → `filter-mismatch` |
//! | arguments | a supported action with invalid arguments → `arguments-invalid` |
//! | action | an action Flightdeck does not run → `unsupported-action` |
//! | experiments | `isEnrollmentPaused` → `enrollment-paused`; no `userId` → `no-user-id` |
//!
//! A matched rollout gives `value: {prefName: value}`; a rollback `value: {"rolloutSlug": …}`;
//! an experiment its branch slug and `value: {prefName: value}` for that branch, the branch
//! chosen with `ratioSample("<userId>-<slug>-branch", ratios)`.
//!
//! `enrollment-paused` is reported with `matched: false` even though the filter matched: the
//! recipe must not enroll anyone new. The reason is distinct from `filter-mismatch` so that the
//! client runtime keeps existing participants enrolled ("existing participants continue"),
//! which it would not do for a mismatch.
//!
//! The filter environment is built once per call; each recipe only adds its `recipe`
//! (`{id, arguments}`, built once per recipe and cached), so a large set evaluates quickly.

use std::collections::HashSet;
use std::sync::Arc;

use crate::context::PrefSnapshot;
use crate::evaluate::{EvalInput, ItemResult};
use crate::model::normandy::{Arguments, Recipe, RecipeSet};
use crate::sampling;
use crate::value::{Object, Value};

/// The filter transforms the filter language provides, announced to recipes as
/// `jexl.transform.<name>` capabilities.
pub const TRANSFORMS: [&str; 12] = [
    "date",
    "stableSample",
    "bucketSample",
    "preferenceValue",
    "preferenceIsUserSet",
    "preferenceExists",
    "keys",
    "values",
    "length",
    "mapToProperty",
    "regExpMatch",
    "versionCompare",
];

/// Evaluates every recipe of `recipes` for the client in `input`, in order.
pub fn evaluate(recipes: &RecipeSet, input: &EvalInput) -> Vec<ItemResult> {
    let environment = filter_environment(input);
    let capabilities = client_capabilities(&environment);
    let user_id = input.context.user_id.as_deref();
    recipes
        .recipes
        .iter()
        .map(|recipe| {
            evaluate_recipe(
                recipe,
                &environment,
                &capabilities,
                user_id,
                &input.context.prefs,
            )
        })
        .collect()
}

/// The capabilities a client built from this crate has, given its filter environment:
/// `capabilities-v1`, `action.<name>` for each supported action, `jexl.transform.<name>` for
/// each transform, and `jexl.context.{env,normandy}[.<key>]` for each environment key.
pub fn client_capabilities(environment: &Object) -> HashSet<String> {
    let mut set = HashSet::with_capacity(8 + TRANSFORMS.len() + 2 * environment.len());
    set.insert("capabilities-v1".to_owned());
    for action in crate::model::normandy::SUPPORTED_ACTIONS {
        set.insert(format!("action.{action}"));
    }
    for transform in TRANSFORMS {
        set.insert(format!("jexl.transform.{transform}"));
    }
    for root in ["env", "normandy"] {
        set.insert(format!("jexl.context.{root}"));
        for key in environment.keys() {
            set.insert(format!("jexl.context.{root}.{key}"));
        }
        // `recipe` is added per recipe, so it is always there.
        set.insert(format!("jexl.context.{root}.recipe"));
    }
    set
}

fn evaluate_recipe(
    recipe: &Recipe,
    environment: &Object,
    capabilities: &HashSet<String>,
    user_id: Option<&str>,
    prefs: &PrefSnapshot,
) -> ItemResult {
    let result = |matched: bool, reason: Option<String>| ItemResult {
        id: recipe.id.to_string(),
        kind: recipe.action.clone(),
        matched,
        reason,
        branch: None,
        value: None,
    };
    let fail = |reason: &str| result(false, Some(reason.to_owned()));

    if !recipe
        .capabilities
        .iter()
        .all(|c| capabilities.contains(c.as_str()))
    {
        return fail("capabilities-mismatch");
    }

    let Some(filter) = &recipe.filter else {
        return fail("filter-error: the recipe has no filter expression");
    };
    let expression = match &filter.compiled {
        Ok(expression) => expression,
        Err(error) => return fail(&format!("filter-error: {}", error.message)),
    };
    let vars = filter_vars(environment, Some(recipe.filter_subject().clone()));
    match expression.eval(&vars, prefs) {
        Err(error) => return fail(&format!("filter-error: {}", error.message)),
        Ok(value) if !value.is_truthy() => return fail("filter-mismatch"),
        Ok(_) => {}
    }

    match &recipe.arguments {
        Arguments::Invalid { .. } => fail("arguments-invalid"),
        Arguments::Other { .. } => fail("unsupported-action"),
        Arguments::PreferenceRollout(args) => {
            let mut value = serde_json::Map::new();
            for pref in &args.preferences {
                value.insert(pref.preference_name.clone(), pref_json(&pref.value));
            }
            ItemResult {
                value: Some(serde_json::Value::Object(value)),
                ..result(true, None)
            }
        }
        Arguments::PreferenceRollback(args) => {
            let mut value = serde_json::Map::new();
            value.insert(
                "rolloutSlug".to_owned(),
                serde_json::Value::String(args.rollout_slug.clone()),
            );
            ItemResult {
                value: Some(serde_json::Value::Object(value)),
                ..result(true, None)
            }
        }
        Arguments::PreferenceExperiment(args) => {
            if args.is_enrollment_paused {
                return fail("enrollment-paused");
            }
            let ratios: Vec<f64> = args.branches.iter().map(|b| b.ratio as f64).collect();
            let chosen = match choose_branch(user_id, &args.slug, &ratios) {
                Ok(idx) => idx,
                Err(reason) => return fail(&reason),
            };
            let Some(branch) = args.branches.get(chosen) else {
                return fail("branch-error: no branch at the chosen index");
            };
            let mut value = serde_json::Map::new();
            value.insert(args.preference_name.clone(), pref_json(&branch.value));
            ItemResult {
                branch: Some(branch.slug.clone()),
                value: Some(serde_json::Value::Object(value)),
                ..result(true, None)
            }
        }
        Arguments::MultiPreferenceExperiment(args) => {
            if args.is_enrollment_paused {
                return fail("enrollment-paused");
            }
            let ratios: Vec<f64> = args.branches.iter().map(|b| b.ratio as f64).collect();
            let chosen = match choose_branch(user_id, &args.slug, &ratios) {
                Ok(idx) => idx,
                Err(reason) => return fail(&reason),
            };
            let Some(branch) = args.branches.get(chosen) else {
                return fail("branch-error: no branch at the chosen index");
            };
            let mut value = serde_json::Map::new();
            for (name, spec) in &branch.preferences {
                value.insert(name.clone(), pref_json(&spec.preference_value));
            }
            ItemResult {
                branch: Some(branch.slug.clone()),
                value: Some(serde_json::Value::Object(value)),
                ..result(true, None)
            }
        }
    }
}

/// The branch index for `user_id` in the experiment `slug`: Normandy's
/// `ratioSample("<userId>-<slug>-branch", ratios)`.
pub fn choose_branch(user_id: Option<&str>, slug: &str, ratios: &[f64]) -> Result<usize, String> {
    let Some(user_id) = user_id else {
        return Err("no-user-id".to_owned());
    };
    let input = Value::String(Arc::from(format!("{user_id}-{slug}-branch")));
    sampling::ratio_sample(&input, ratios).map_err(|e| format!("branch-error: {e}"))
}

fn pref_json(value: &crate::context::PrefValue) -> serde_json::Value {
    use crate::context::PrefValue;
    match value {
        PrefValue::Bool(b) => serde_json::Value::Bool(*b),
        PrefValue::Int(n) => serde_json::Value::from(*n),
        PrefValue::String(s) => serde_json::Value::String(s.clone()),
    }
}

// Until the context module provides the filter environment, a minimal one is built here with
// the same signatures.
fn filter_environment(input: &EvalInput) -> Object {
    let context = input.context;
    let mut env = Object::new();
    let mut put = |key: &str, value: Option<&String>| {
        if let Some(value) = value {
            env.insert(Arc::from(key), Value::string(value));
        }
    };
    put("userId", context.user_id.as_ref());
    put("version", context.version.as_ref());
    put("channel", context.channel.as_ref());
    put("locale", context.locale.as_ref());
    put("country", context.country.as_ref());
    env.insert(
        Arc::from("request_time"),
        Value::Date(input.now.as_millisecond() as f64),
    );
    env
}

fn filter_vars(environment: &Object, recipe: Option<Value>) -> Value {
    let mut env = environment.clone();
    if let Some(recipe) = recipe {
        env.insert(Arc::from("recipe"), recipe);
    }
    let env = Value::object(env);
    let mut vars = Object::new();
    vars.insert(Arc::from("normandy"), env.clone());
    vars.insert(Arc::from("env"), env);
    Value::object(vars)
}
