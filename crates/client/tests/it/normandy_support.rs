//! Shared harness of the Normandy action tests: a client (preferences, state, events), recipes
//! parsed from JSON by the core, and compact expectations.
#![allow(dead_code)] // Each test file uses its own part of it.

use std::collections::BTreeMap;

use flightdeck_client::events::TelemetryEvent;
use flightdeck_client::normandy::{self, NormandyConfig, RecipeRun, Session, Suitability};
use flightdeck_client::prefs::{Branch, MemoryPrefStore, PrefEntry, PrefStore, PrefValue};
use flightdeck_client::state::ClientState;
use flightdeck_core::model::normandy::Recipe;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

/// The time every test starts at.
pub const START: &str = "2026-03-01T00:00:00Z";

/// One client.
pub struct Client {
    pub now: Timestamp,
    pub user_id: Option<String>,
    pub prefs: MemoryPrefStore,
    pub state: ClientState,
    pub events: Vec<TelemetryEvent>,
    pub config: NormandyConfig,
}

impl Client {
    pub fn new() -> Client {
        Client {
            now: START.parse().unwrap(),
            user_id: Some("user-a".into()),
            prefs: MemoryPrefStore::new(),
            state: ClientState::new(),
            events: Vec::new(),
            config: NormandyConfig::default(),
        }
    }

    /// A client with `prefs` (`{name: {default?, user?}}`) and `state` (a state document).
    pub fn with(prefs: &Value, state: &Value) -> Client {
        let mut client = Client::new();
        let entries: BTreeMap<String, PrefEntry> = serde_json::from_value(prefs.clone()).unwrap();
        client.prefs = MemoryPrefStore::from_entries(entries);
        if !state.is_null() {
            client.state = serde_json::from_value(state.clone()).unwrap();
        }
        client
    }

    pub fn session<T>(&mut self, f: impl FnOnce(&mut Session) -> T) -> T {
        let mut session = Session {
            now: self.now,
            user_id: self.user_id.as_deref(),
            prefs: &mut self.prefs,
            state: &mut self.state,
            events: &mut self.events,
            config: &self.config,
        };
        f(&mut session)
    }

    /// One run with `recipes` and their suitabilities (an empty list is `no_recipes`).
    pub fn run(&mut self, recipes: &[(&Recipe, Suitability)]) {
        let runs: Vec<RecipeRun> = recipes
            .iter()
            .map(|(recipe, suitability)| RecipeRun {
                recipe,
                suitability: suitability.clone(),
            })
            .collect();
        self.session(|s| normandy::run(s, &runs, runs.is_empty()));
    }

    /// One run where every recipe matches.
    pub fn run_match(&mut self, recipes: &[&Recipe]) {
        let runs: Vec<(&Recipe, Suitability)> =
            recipes.iter().map(|r| (*r, Suitability::Match)).collect();
        if runs.is_empty() {
            // A non-empty list that does not contain the recipes: not `no_recipes`.
            self.session(|s| normandy::run(s, &[], false));
        } else {
            self.run(&runs);
        }
    }

    pub fn startup(&mut self, builtins: &Value) {
        let builtins = builtin_defaults(builtins);
        self.session(|s| normandy::startup(s, &builtins));
    }

    /// The user (or the application) sets `name` on the user branch, and the observer fires.
    pub fn user_sets(&mut self, name: &str, value: Option<PrefValue>) {
        self.prefs.set(name, Branch::User, value);
        self.session(|s| normandy::preference_changed(s, name));
    }

    pub fn advance(&mut self, duration: SignedDuration) {
        self.now = self.now.checked_add(duration).unwrap();
    }

    /// Every preference as `{name: {default?, user?}}`.
    pub fn prefs_json(&self) -> Value {
        serde_json::to_value(self.prefs.entries()).unwrap()
    }

    /// Events as `[method, object, value, {extra}]`.
    pub fn events_json(&self) -> Value {
        events_json(&self.events)
    }

    pub fn take_events(&mut self) -> Value {
        let json = self.events_json();
        self.events.clear();
        json
    }
}

pub fn events_json(events: &[TelemetryEvent]) -> Value {
    Value::Array(
        events
            .iter()
            .map(|e| json!([e.method, e.object, e.value, e.extra]))
            .collect(),
    )
}

/// `{name: value-or-null}` → built-in defaults.
pub fn builtin_defaults(json: &Value) -> BTreeMap<String, Option<PrefValue>> {
    serde_json::from_value(json.clone()).unwrap()
}

/// Parses one recipe (a minimal recipe object) with the core, insisting it is valid.
pub fn recipe(json: Value) -> Recipe {
    let parsed = flightdeck_core::model::normandy::parse("test.json", &json.to_string());
    assert!(
        !parsed.has_errors(),
        "recipe does not parse: {:?}",
        parsed.diagnostics
    );
    parsed.value.unwrap().recipes.remove(0)
}

pub fn rollout(id: u64, slug: &str, preferences: Value) -> Recipe {
    let preferences: Vec<Value> = preferences
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, value)| json!({"preferenceName": name, "value": value}))
        .collect();
    recipe(json!({
        "id": id, "name": slug, "action": "preference-rollout",
        "arguments": {"slug": slug, "preferences": preferences},
        "filter_expression": "true", "capabilities": ["action.preference-rollout"]
    }))
}

pub fn rollback(id: u64, slug: &str) -> Recipe {
    recipe(json!({
        "id": id, "name": format!("rollback {slug}"), "action": "preference-rollback",
        "arguments": {"rolloutSlug": slug},
        "filter_expression": "true", "capabilities": []
    }))
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Bool(_) => "boolean",
        Value::Number(_) => "integer",
        _ => "string",
    }
}

/// A single-preference experiment (seed 002's `preference-experiment`).
pub fn single(id: u64, slug: &str, pref: &str, branch_type: &str, branches: Value) -> Recipe {
    single_with(id, slug, pref, branch_type, branches, json!({}))
}

/// [`single`] with more arguments (`isEnrollmentPaused`, `isHighPopulation`).
pub fn single_with(
    id: u64,
    slug: &str,
    pref: &str,
    branch_type: &str,
    branches: Value,
    more: Value,
) -> Recipe {
    let branches = branches.as_object().unwrap();
    let first = branches.values().next().unwrap();
    let list: Vec<Value> = branches
        .iter()
        .map(|(slug, value)| json!({"slug": slug, "value": value, "ratio": 1}))
        .collect();
    let mut arguments = json!({
        "slug": slug, "preferenceName": pref, "preferenceType": type_name(first),
        "preferenceBranchType": branch_type, "branches": list, "isEnrollmentPaused": false
    });
    for (key, value) in more.as_object().unwrap() {
        arguments[key] = value.clone();
    }
    recipe(json!({
        "id": id, "name": slug, "action": "preference-experiment", "arguments": arguments,
        "filter_expression": "true", "capabilities": []
    }))
}

/// A multi-preference experiment with one branch `treatment`; `prefs` is
/// `{name: [branchType, value]}`.
pub fn multi(id: u64, slug: &str, prefs: Value) -> Recipe {
    multi_branches(id, slug, json!({"treatment": [1, prefs]}), json!({}))
}

/// A multi-preference experiment; `branches` is `{slug: [ratio, {name: [branchType, value]}]}`.
pub fn multi_branches(id: u64, slug: &str, branches: Value, more: Value) -> Recipe {
    let list: Vec<Value> = branches
        .as_object()
        .unwrap()
        .iter()
        .map(|(branch, spec)| {
            let preferences: serde_json::Map<String, Value> = spec[1]
                .as_object()
                .unwrap()
                .iter()
                .map(|(name, p)| {
                    (
                        name.clone(),
                        json!({"preferenceBranchType": p[0], "preferenceType": type_name(&p[1]),
                               "preferenceValue": p[1]}),
                    )
                })
                .collect();
            json!({"slug": branch, "ratio": spec[0], "preferences": preferences})
        })
        .collect();
    let mut arguments = json!({
        "slug": slug, "userFacingName": format!("{slug} name"),
        "userFacingDescription": format!("{slug} description"),
        "branches": list, "isEnrollmentPaused": false
    });
    for (key, value) in more.as_object().unwrap() {
        arguments[key] = value.clone();
    }
    recipe(json!({
        "id": id, "name": slug, "action": "multi-preference-experiment", "arguments": arguments,
        "filter_expression": "true", "capabilities": []
    }))
}

pub fn int(n: i64) -> PrefValue {
    PrefValue::Int(n)
}
