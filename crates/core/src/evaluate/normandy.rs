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

use crate::context::{PrefSnapshot, filter_vars};
use crate::evaluate::{EvalInput, ItemResult};
use crate::model::normandy::{Arguments, Recipe, RecipeSet};
use crate::sampling;
use crate::value::{Object, Value};

/// The filter transforms the filter language provides, announced to recipes as
/// `jexl.transform.<name>` capabilities.
pub const TRANSFORMS: [&str; 12] = crate::jexl::TRANSFORM_NAMES;

/// Evaluates every recipe of `recipes` for the client in `input`, in order.
pub fn evaluate(recipes: &RecipeSet, input: &EvalInput) -> Vec<ItemResult> {
    let environment = input.context.filter_environment(input.now);
    let capabilities = Capabilities {
        environment: &environment,
    };
    let user_id = input.context.user_id.as_deref();
    let mut scope = FilterScope::new(&environment);
    recipes
        .recipes
        .iter()
        .map(|recipe| {
            evaluate_recipe(
                recipe,
                &mut scope,
                &capabilities,
                user_id,
                &input.context.prefs,
            )
        })
        .collect()
}

/// The filter variables `{normandy: E', env: E'}` ([`filter_vars`]), reused from recipe to
/// recipe: only `E'.recipe` changes, and it is swapped in place when nothing else holds the
/// objects (the usual case), so a recipe costs no copy of the environment.
struct FilterScope {
    vars: Value,
    /// Positions of `normandy` and `env` in `vars`, and of `recipe` in the environment.
    normandy_idx: usize,
    env_idx: usize,
    recipe_idx: usize,
}

impl FilterScope {
    fn new(environment: &Object) -> FilterScope {
        let vars = filter_vars(environment, Some(Value::Undefined));
        let (normandy_idx, env_idx, recipe_idx) = match &vars {
            Value::Object(outer) => (
                outer.get_index_of("normandy").unwrap_or(usize::MAX),
                outer.get_index_of("env").unwrap_or(usize::MAX),
                match outer.get("normandy") {
                    Some(Value::Object(env)) => env.get_index_of("recipe").unwrap_or(usize::MAX),
                    _ => usize::MAX,
                },
            ),
            _ => (usize::MAX, usize::MAX, usize::MAX),
        };
        FilterScope {
            vars,
            normandy_idx,
            env_idx,
            recipe_idx,
        }
    }

    /// The variables with `recipe` set to `subject`.
    fn with_recipe(&mut self, subject: &Value) -> &Value {
        if !self.swap_in_place(subject) {
            // A previous result still shares the objects: copy them once.
            let environment = match &self.vars {
                Value::Object(outer) => match outer.get("normandy") {
                    Some(Value::Object(env)) => (**env).clone(),
                    _ => Object::new(),
                },
                _ => Object::new(),
            };
            self.vars = filter_vars(&environment, Some(subject.clone()));
        }
        &self.vars
    }

    fn swap_in_place(&mut self, subject: &Value) -> bool {
        let Value::Object(outer) = &mut self.vars else {
            return false;
        };
        let Some(outer) = Arc::get_mut(outer) else {
            return false;
        };
        // Take both references out so the environment object becomes unshared.
        let env = outer
            .get_index_mut(self.env_idx)
            .map(|(_, v)| std::mem::take(v));
        let normandy = outer
            .get_index_mut(self.normandy_idx)
            .map(|(_, v)| std::mem::take(v));
        drop(env);
        let Some(Value::Object(mut shared)) = normandy else {
            return false;
        };
        let swapped = match Arc::get_mut(&mut shared)
            .and_then(|object| object.get_index_mut(self.recipe_idx))
        {
            Some((_, slot)) => {
                *slot = subject.clone();
                true
            }
            None => false,
        };
        if let Some((_, slot)) = outer.get_index_mut(self.normandy_idx) {
            *slot = Value::Object(Arc::clone(&shared));
        }
        if let Some((_, slot)) = outer.get_index_mut(self.env_idx) {
            *slot = Value::Object(shared);
        }
        swapped
    }
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

/// The client capability set of [`client_capabilities`], answered without building it.
struct Capabilities<'e> {
    environment: &'e Object,
}

impl Capabilities<'_> {
    /// Whether the client has every capability of `recipe`.
    fn has_all(&self, recipe: &Recipe) -> bool {
        let verdict = recipe.static_capabilities(|list| {
            list.iter()
                .map(|c| static_capability(c))
                .try_fold(true, |all, has| has.map(|has| all && has))
        });
        verdict.unwrap_or_else(|| recipe.capabilities.iter().all(|c| self.has(c)))
    }

    fn has(&self, capability: &str) -> bool {
        if let Some(has) = static_capability(capability) {
            return has;
        }
        if let Some(key) = capability
            .strip_prefix("jexl.context.env.")
            .or_else(|| capability.strip_prefix("jexl.context.normandy."))
        {
            return key == "recipe" || self.environment.contains_key(key);
        }
        false
    }
}

/// Whether every client built from this crate has `capability`; `None` when it depends on the
/// client's environment (`jexl.context.<root>.<key>`).
fn static_capability(capability: &str) -> Option<bool> {
    if let Some(action) = capability.strip_prefix("action.") {
        return Some(crate::model::normandy::SUPPORTED_ACTIONS.contains(&action));
    }
    if let Some(transform) = capability.strip_prefix("jexl.transform.") {
        return Some(TRANSFORMS.contains(&transform));
    }
    if let Some(key) = capability
        .strip_prefix("jexl.context.env.")
        .or_else(|| capability.strip_prefix("jexl.context.normandy."))
    {
        return (key == "recipe").then_some(true);
    }
    Some(matches!(
        capability,
        "capabilities-v1" | "jexl.context.env" | "jexl.context.normandy"
    ))
}

fn evaluate_recipe(
    recipe: &Recipe,
    scope: &mut FilterScope,
    capabilities: &Capabilities,
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

    if !capabilities.has_all(recipe) {
        return fail("capabilities-mismatch");
    }

    let Some(filter) = &recipe.filter else {
        return fail("filter-error: the recipe has no filter expression");
    };
    let expression = match &filter.compiled {
        Ok(expression) => expression,
        Err(error) => return result(false, Some(format!("filter-error: {}", error.message))),
    };
    // `eval_bool` keeps no reference to the variables, so the scope stays reusable in place.
    // Most filters read no more of the recipe than `normandy.recipe.id` (the sampling
    // input): for them `{id}` stands in for `{id, arguments}`, whose arguments would cost
    // far more to build than the filter costs to run.
    let subject = if expression.reads_recipe_beyond_id() {
        recipe.filter_subject()
    } else {
        recipe.filter_subject_id()
    };
    let vars = scope.with_recipe(subject);
    match expression.eval_bool(vars, prefs) {
        Err(error) => return result(false, Some(format!("filter-error: {}", error.message))),
        Ok(false) => return fail("filter-mismatch"),
        Ok(true) => {}
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
            let branch = match pick_branch(user_id, &args.slug, &args.branches, |b| b.ratio) {
                Ok(branch) => branch,
                Err(reason) => return result(false, Some(reason)),
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
            let branch = match pick_branch(user_id, &args.slug, &args.branches, |b| b.ratio) {
                Ok(branch) => branch,
                Err(reason) => return result(false, Some(reason)),
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

/// The branch `user_id` gets among `branches` (weighted by `ratio`), or why there is none.
fn pick_branch<'b, B>(
    user_id: Option<&str>,
    slug: &str,
    branches: &'b [B],
    ratio: fn(&B) -> u64,
) -> Result<&'b B, String> {
    let ratios: Vec<f64> = branches.iter().map(|b| ratio(b) as f64).collect();
    let chosen = choose_branch(user_id, slug, &ratios)?;
    branches
        .get(chosen)
        .ok_or_else(|| "branch-error: no branch at the chosen index".to_owned())
}

fn pref_json(value: &crate::context::PrefValue) -> serde_json::Value {
    use crate::context::PrefValue;
    match value {
        PrefValue::Bool(b) => serde_json::Value::Bool(*b),
        PrefValue::Int(n) => serde_json::Value::from(*n),
        PrefValue::String(s) => serde_json::Value::String(s.clone()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::context::{ClientContext, PrefEntry, PrefValue};
    use crate::evaluate::{ClientFacts, NoJsFilter};
    use crate::model::normandy::parse;

    fn context(user_id: Option<&str>) -> ClientContext {
        let mut context = ClientContext {
            user_id: user_id.map(str::to_owned),
            version: Some("128.0.1".into()),
            channel: Some("release".into()),
            locale: Some("en-US".into()),
            country: Some("US".into()),
            ..ClientContext::default()
        };
        context.prefs.insert(
            "browser.search.suggest.enabled".into(),
            PrefEntry {
                default: Some(PrefValue::Bool(true)),
                user: Some(PrefValue::Bool(false)),
            },
        );
        context
    }

    fn run(recipes_json: serde_json::Value, context: &ClientContext) -> Vec<ItemResult> {
        let parsed = parse("r.json", &recipes_json.to_string());
        let set = parsed.value.expect("recipes parse");
        let facts = ClientFacts::default();
        let input = EvalInput {
            context,
            facts: &facts,
            now: "2024-07-15T12:00:00Z".parse().expect("time"),
            js_filter: &NoJsFilter,
        };
        evaluate(&set, &input)
    }

    fn rollout(id: u64, filter: &str, capabilities: &[&str]) -> serde_json::Value {
        json!({"id": id, "name": format!("rollout {id}"), "action": "preference-rollout",
            "arguments": {"slug": format!("rollout-{id}"), "preferences": [
                {"preferenceName": "network.http.http3.enable", "value": true},
                {"preferenceName": "network.trr.mode", "value": 2}]},
            "filter_expression": filter, "capabilities": capabilities})
    }

    fn reason(result: &ItemResult) -> (bool, Option<&str>) {
        (result.matched, result.reason.as_deref())
    }

    #[test]
    fn golden_branch_vectors() {
        // seed-originals §3.3 and normandy-nimbus §2.5.
        let cases: &[(&str, &str, &[f64], usize)] = &[
            ("user-a", "exp-1", &[1.0, 1.0], 1),
            ("user-a", "exp-1", &[4.0, 3.0, 2.0, 1.0], 2),
            (
                "11111111-2222-3333-4444-555555555555",
                "pref-exp",
                &[1.0, 1.0],
                1,
            ),
            (
                "11111111-2222-3333-4444-555555555555",
                "pref-exp",
                &[4.0, 3.0, 2.0, 1.0],
                2,
            ),
            (
                "299eed1e-be6d-457d-9e53-da7b1a03f10d",
                "my-exp",
                &[1.0, 1.0],
                1,
            ),
            (
                "299eed1e-be6d-457d-9e53-da7b1a03f10d",
                "my-exp",
                &[4.0, 3.0, 2.0, 1.0],
                1,
            ),
        ];
        for (user, slug, ratios, expected) in cases {
            assert_eq!(
                choose_branch(Some(user), slug, ratios),
                Ok(*expected),
                "{user}-{slug}-branch {ratios:?}"
            );
        }
        assert_eq!(
            sampling::truncated_hash(&Value::string("user-a-exp-1-branch")),
            0xba72586c12c7
        );
        assert_eq!(
            choose_branch(None, "exp-1", &[1.0]),
            Err("no-user-id".into())
        );
    }

    #[test]
    fn client_capabilities_cover_actions_transforms_and_context_keys() {
        let context = context(Some("u"));
        let env = context.filter_environment("2024-07-15T12:00:00Z".parse().expect("time"));
        let caps = client_capabilities(&env);
        for expected in [
            "capabilities-v1",
            "action.preference-rollout",
            "action.preference-rollback",
            "action.preference-experiment",
            "action.multi-preference-experiment",
            "jexl.transform.stableSample",
            "jexl.transform.versionCompare",
            "jexl.context.env",
            "jexl.context.normandy",
            "jexl.context.normandy.channel",
            "jexl.context.env.version",
            "jexl.context.normandy.recipe",
        ] {
            assert!(caps.contains(expected), "{expected}");
        }
        for absent in [
            "action.show-heartbeat",
            "jexl.transform.nope",
            "jexl.context.normandy.nope",
            "jexl.context",
            "capabilities-v2",
        ] {
            assert!(!caps.contains(absent), "{absent}");
        }
        // The fast check used during evaluation agrees with the set.
        let fast = Capabilities { environment: &env };
        for capability in &caps {
            assert!(fast.has(capability), "{capability}");
        }
        for absent in ["action.show-heartbeat", "jexl.context.env.nope", "x"] {
            assert!(!fast.has(absent), "{absent}");
        }
    }

    #[test]
    fn recipe_capability_checks_agree_with_the_set_for_every_client() {
        let with_channel = context(Some("u"));
        let mut without_channel = context(Some("u"));
        without_channel.channel = None;
        let now = "2024-07-15T12:00:00Z".parse().expect("time");
        let envs = [
            with_channel.filter_environment(now),
            without_channel.filter_environment(now),
        ];
        let lists: &[&[&str]] = &[
            &[],
            &["action.preference-rollout", "jexl.transform.stableSample"],
            &["action.show-heartbeat"],
            &["capabilities-v1", "jexl.context.normandy.recipe"],
            &["jexl.context.normandy.channel"],
            &["action.preference-rollout", "jexl.context.env.channel"],
            &["jexl.context.normandy.channel", "jexl.transform.nope"],
        ];
        for list in lists {
            let arguments = Arguments::Invalid {
                action: "preference-rollout".to_owned(),
                raw: None,
            };
            let mut recipe = Recipe::new(1, "r", "preference-rollout", arguments, None);
            recipe.capabilities = list.iter().map(|c| (*c).to_owned()).collect();
            // The same recipe against both clients: a cached verdict must not leak.
            for env in envs.iter().chain(envs.iter().rev()) {
                let set = client_capabilities(env);
                let expected = list.iter().all(|c| set.contains(*c));
                let checker = Capabilities { environment: env };
                assert_eq!(checker.has_all(&recipe), expected, "{list:?}");
            }
        }
    }

    #[test]
    fn the_filter_scope_matches_filter_vars_and_survives_sharing() {
        let context = context(Some("u"));
        let env = context.filter_environment("2024-07-15T12:00:00Z".parse().expect("time"));
        let mut scope = FilterScope::new(&env);
        let recipe_a = Value::string("a");
        let recipe_b = Value::string("b");
        let expected = |recipe: &Value| {
            filter_vars(&env, Some(recipe.clone()))
                .to_js_json_string()
                .expect("json")
        };
        let first = scope.with_recipe(&recipe_a).to_js_json_string();
        assert_eq!(first.as_deref(), Some(expected(&recipe_a).as_str()));
        // Something still holds the previous variables: the scope copies instead of mutating.
        let held = scope.with_recipe(&recipe_a).clone();
        let second = scope.with_recipe(&recipe_b).to_js_json_string();
        assert_eq!(second.as_deref(), Some(expected(&recipe_b).as_str()));
        assert_eq!(
            held.to_js_json_string().as_deref(),
            Some(expected(&recipe_a).as_str())
        );
        // And goes back to swapping in place afterwards.
        drop(held);
        let third = scope.with_recipe(&recipe_a).to_js_json_string();
        assert_eq!(third.as_deref(), Some(expected(&recipe_a).as_str()));
        let Value::Object(outer) = &scope.vars else {
            panic!("vars are an object");
        };
        let (Some(Value::Object(normandy)), Some(Value::Object(env_alias))) =
            (outer.get("normandy"), outer.get("env"))
        else {
            panic!("normandy and env are objects");
        };
        assert!(Arc::ptr_eq(normandy, env_alias), "normandy and env alias");
    }

    #[test]
    fn capabilities_are_checked_before_the_filter() {
        let results = run(
            json!([
                rollout(1, "this filter would not even parse ((", &["action.preference-rollout", "jexl.transform.fancy"]),
                rollout(2, "true", &["action.preference-rollout", "jexl.context.normandy.unknownGetter"]),
                {"id": 3, "name": "hb", "action": "show-heartbeat", "arguments": {"surveyId": "s"},
                 "filter_expression": "true", "capabilities": ["action.show-heartbeat"]},
            ]),
            &context(Some("u")),
        );
        for result in &results {
            assert_eq!(
                reason(result),
                (false, Some("capabilities-mismatch")),
                "{result:?}"
            );
        }
        assert_eq!(results[0].id, "1");
        assert_eq!(results[0].kind, "preference-rollout");
        assert_eq!(results[2].kind, "show-heartbeat");
    }

    #[test]
    fn a_recipe_without_a_filter_is_a_filter_error() {
        let recipe = json!({"id": 1, "name": "n", "action": "preference-rollback",
            "arguments": {"rolloutSlug": "r"}});
        let set = parse("r.json", &recipe.to_string()).value.expect("kept");
        let context = context(Some("u"));
        let facts = ClientFacts::default();
        let input = EvalInput {
            context: &context,
            facts: &facts,
            now: "2024-07-15T12:00:00Z".parse().expect("time"),
            js_filter: &NoJsFilter,
        };
        let results = evaluate(&set, &input);
        assert_eq!(
            reason(&results[0]),
            (
                false,
                Some("filter-error: the recipe has no filter expression")
            )
        );
    }

    #[test]
    fn syntax_errors_become_filter_errors() {
        let results = run(
            json!([rollout(1, "normandy.channel ==", &[])]),
            &context(Some("u")),
        );
        assert!(
            results[0]
                .reason
                .as_deref()
                .is_some_and(|r| r.starts_with("filter-error: ")),
            "{:?}",
            results[0]
        );
    }
    const EXAMPLE: &str = include_str!("../../../../examples/normandy/recipes.json");
    const EXAMPLE_CONTEXT: &str = include_str!("../../../../examples/context.json");

    fn multi_experiment(id: u64, slug: &str, paused: bool, filter: &str) -> serde_json::Value {
        json!({"id": id, "name": "exp", "action": "multi-preference-experiment",
            "arguments": {"slug": slug, "userFacingName": "E", "userFacingDescription": "D",
                "isEnrollmentPaused": paused, "branches": [
                    {"slug": "control", "ratio": 1, "preferences": {"p.a": {"preferenceType": "boolean", "preferenceValue": false}}},
                    {"slug": "treatment", "ratio": 1, "preferences": {
                        "p.a": {"preferenceType": "boolean", "preferenceValue": true},
                        "p.b": {"preferenceType": "string", "preferenceBranchType": "user", "preferenceValue": "x"}}}]},
            "filter_expression": filter, "capabilities": ["action.multi-preference-experiment"]})
    }

    #[test]
    fn filters_decide_and_matched_rollouts_give_their_preferences() {
        let results = run(
            json!([
                rollout(
                    1,
                    "normandy.channel == 'release' && env.version|versionCompare('115.!') >= 0",
                    &["action.preference-rollout"]
                ),
                rollout(2, "normandy.channel == 'beta'", &[]),
                rollout(
                    3,
                    "normandy.recipe.id == 3 && normandy.recipe.arguments.slug == 'rollout-3'",
                    &[]
                ),
                rollout(4, "1|noSuchTransform", &[]),
            ]),
            &context(Some("u")),
        );
        assert_eq!(
            results[0],
            ItemResult {
                id: "1".into(),
                kind: "preference-rollout".into(),
                matched: true,
                reason: None,
                branch: None,
                value: Some(json!({"network.http.http3.enable": true, "network.trr.mode": 2})),
            }
        );
        assert_eq!(reason(&results[1]), (false, Some("filter-mismatch")));
        assert_eq!(reason(&results[2]), (true, None));
        assert!(
            results[3]
                .reason
                .as_deref()
                .is_some_and(|r| r.starts_with("filter-error: ")),
            "{:?}",
            results[3]
        );
    }

    #[test]
    fn filters_read_preferences() {
        let results = run(
            json!([
                rollout(
                    1,
                    "'browser.search.suggest.enabled'|preferenceIsUserSet",
                    &[]
                ),
                rollout(
                    2,
                    "!('browser.search.suggest.enabled'|preferenceIsUserSet)",
                    &[]
                ),
            ]),
            &context(Some("u")),
        );
        assert_eq!(reason(&results[0]), (true, None));
        assert_eq!(reason(&results[1]), (false, Some("filter-mismatch")));
    }

    #[test]
    fn rollbacks_give_the_rollout_slug() {
        let results = run(
            json!({"recipe": {"id": 9, "name": "rb", "action": "preference-rollback",
                "arguments": {"rolloutSlug": "autoplay-rollout"}, "filter_expression": "true",
                "capabilities": ["action.preference-rollback"]},
                "signature": {"signature": "sig"}}),
            &context(Some("u")),
        );
        assert_eq!(
            results,
            [ItemResult {
                id: "9".into(),
                kind: "preference-rollback".into(),
                matched: true,
                reason: None,
                branch: None,
                value: Some(json!({"rolloutSlug": "autoplay-rollout"})),
            }]
        );
    }

    #[test]
    fn experiments_choose_a_branch_from_the_user_id() {
        // "user-a-exp-1-branch" with ratios [1, 1] gives branch 1 (seed-originals §3.3).
        let results = run(
            json!([
                multi_experiment(1, "exp-1", false, "true"),
                {"id": 2, "name": "legacy", "action": "preference-experiment",
                 "arguments": {"slug": "exp-1", "preferenceName": "p.single", "preferenceType": "integer",
                    "isEnrollmentPaused": false, "branches": [
                        {"slug": "a", "value": 1, "ratio": 4}, {"slug": "b", "value": 2, "ratio": 3},
                        {"slug": "c", "value": 3, "ratio": 2}, {"slug": "d", "value": 4, "ratio": 1}]},
                 "filter_expression": "true"},
            ]),
            &context(Some("user-a")),
        );
        assert_eq!(
            results[0],
            ItemResult {
                id: "1".into(),
                kind: "multi-preference-experiment".into(),
                matched: true,
                reason: None,
                branch: Some("treatment".into()),
                value: Some(json!({"p.a": true, "p.b": "x"})),
            }
        );
        // [4, 3, 2, 1] gives branch 2.
        assert_eq!(results[1].branch.as_deref(), Some("c"));
        assert_eq!(results[1].value, Some(json!({"p.single": 3})));
    }

    #[test]
    fn experiment_reasons_after_the_filter_matched() {
        let results = run(
            json!([
                multi_experiment(1, "paused", true, "true"),
                multi_experiment(2, "paused-and-mismatched", true, "false"),
                multi_experiment(3, "open", false, "true"),
            ]),
            &context(None),
        );
        assert_eq!(reason(&results[0]), (false, Some("enrollment-paused")));
        assert_eq!(results[0].branch, None);
        assert_eq!(reason(&results[1]), (false, Some("filter-mismatch")));
        assert_eq!(reason(&results[2]), (false, Some("no-user-id")));
    }

    #[test]
    fn invalid_arguments_and_unsupported_actions_after_the_filter() {
        let results = run(
            json!([
                {"id": 1, "name": "bad", "action": "preference-rollout",
                 "arguments": {"slug": "Not A Slug", "preferences": []}, "filter_expression": "true"},
                {"id": 2, "name": "bad but mismatched", "action": "preference-rollout",
                 "arguments": {"slug": "Not A Slug", "preferences": []}, "filter_expression": "false"},
                {"id": 3, "name": "hb", "action": "show-heartbeat", "arguments": {"surveyId": "s"},
                 "filter_expression": "true"},
            ]),
            &context(Some("u")),
        );
        assert_eq!(reason(&results[0]), (false, Some("arguments-invalid")));
        assert_eq!(reason(&results[1]), (false, Some("filter-mismatch")));
        assert_eq!(reason(&results[2]), (false, Some("unsupported-action")));
    }

    #[test]
    fn the_bundled_example_evaluates_with_reasons() {
        let set = parse("recipes.json", EXAMPLE)
            .value
            .expect("example parses");
        let context = ClientContext::from_json(EXAMPLE_CONTEXT).expect("context");
        let facts = ClientFacts::default();
        let input = EvalInput {
            context: &context,
            facts: &facts,
            now: context.now().expect("now"),
            js_filter: &NoJsFilter,
        };
        let results = evaluate(&set, &input);
        let summary: Vec<(&str, bool, Option<&str>, Option<&str>)> = results
            .iter()
            .map(|r| {
                (
                    r.id.as_str(),
                    r.matched,
                    r.reason.as_deref(),
                    r.branch.as_deref(),
                )
            })
            .collect();
        // 101: release, 128 ≥ 115, and the stable sample of [userId, 101] at 50%.
        // 102: release. 103: en-US, pref not user-set, bucket of [userId, slug].
        // 104: the pref is user-set, so the filter says no.
        let stable = sampling::stable_sample(
            &Value::array(vec![
                Value::string("299eed1e-be6d-457d-9e53-da7b1a03f10d"),
                Value::Number(101.0),
            ]),
            0.5,
        )
        .expect("sample");
        let bucket = sampling::bucket_sample(
            &Value::array(vec![
                Value::string("299eed1e-be6d-457d-9e53-da7b1a03f10d"),
                Value::string("newtab-preload-exp"),
            ]),
            0.0,
            5000.0,
            10000.0,
        )
        .expect("sample");
        let branch_103 = choose_branch(
            Some("299eed1e-be6d-457d-9e53-da7b1a03f10d"),
            "newtab-preload-exp",
            &[1.0, 1.0],
        )
        .expect("branch");
        let expect = |matched: bool, mismatch: &'static str| {
            if matched {
                (true, None)
            } else {
                (false, Some(mismatch))
            }
        };
        assert_eq!(
            (summary[0].1, summary[0].2),
            expect(stable, "filter-mismatch")
        );
        assert_eq!((summary[1].1, summary[1].2), (true, None));
        assert_eq!(
            (summary[2].1, summary[2].2),
            expect(bucket, "filter-mismatch")
        );
        if bucket {
            let names = ["control", "treatment"];
            assert_eq!(summary[2].3, names.get(branch_103).copied());
        }
        assert_eq!(
            (summary[3].1, summary[3].2),
            (false, Some("filter-mismatch"))
        );
    }

    #[test]
    fn sampling_on_array_literals_matches_the_general_path() {
        // `stableSample(rate, 0)` takes the general path (the extra argument is ignored), so
        // it is the reference for the array-free path of `stableSample(rate)`.
        let vars = Value::from_json(&json!({
            "normandy": {"userId": "299eed1e-be6d-457d-9e53-da7b1a03f10d", "recipe": {"id": 7},
                         "n": null, "list": ["a", "b\"c"], "obj": {"k": 1}}
        }));
        let prefs = PrefSnapshot::default();
        let elements = [
            "normandy.userId, normandy.recipe.id",
            "normandy.userId",
            "-0, normandy.missing, normandy.n, 1.5, true",
            "normandy.list, normandy.obj",
            "'2024-07-01'|date, normandy.userId",
            "normandy.n.x, 1",
            "'x\\ty', 'é', 9007199254740993",
            "normandy.userId, normandy.userId, normandy.userId, normandy.userId",
        ];
        for items in elements {
            for rate in [
                "0.5",
                "0",
                "1",
                "2",
                "'abc'",
                "normandy.recipe.id",
                "normandy.n.x",
            ] {
                let fast = format!("[{items}]|stableSample({rate})");
                let general = format!("[{items}]|stableSample({rate}, 0)");
                let eval = |source: &str| {
                    crate::jexl::Expression::parse(source)
                        .expect("parses")
                        .eval(&vars, &prefs)
                        .map(|value| format!("{value:?}"))
                };
                assert_eq!(eval(&fast), eval(&general), "{fast}");
            }
        }
    }
}
