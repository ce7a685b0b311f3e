//! What the benchmark examples share: generated items (Normandy recipes, CloudBees flags and
//! target groups) and a store seeded with them through the store's own workflow (created by
//! one user, approved by another, enabled), so that `ControlTower::open` publishes them as it
//! publishes what authors wrote.

#![allow(dead_code)]

use std::path::Path;

use anyhow::Context as _;
use flightdeck_store::{Actor, Kind, Role, Store};
use jiff::Timestamp;
use serde_json::{Value, json};

/// The flag the OFREP benchmark evaluates: a target-group condition serving a three-way split
/// (`scripts/ofrep-post.lua` posts a context in its group).
pub const OFREP_FLAG: &str = "flag-150";

/// The target groups' plans, by group number modulo 3.
const PLANS: [&str; 3] = ["free", "beta", "pro"];

/// Countries the target groups list, a window of five per group.
const COUNTRIES: [&str; 12] = [
    "NZ", "AU", "DE", "FR", "US", "CA", "GB", "JP", "BR", "IN", "ES", "IT",
];

/// `count` Normandy recipes (API v3 write fields) in the mix of the client benchmark: half
/// preference rollouts, a quarter multi-preference experiments, a quarter rollbacks (of
/// rollouts that are not published, since a rollback and its rollout are never enabled
/// together), each filtered by channel, locale, a version range and a sample, written with
/// `filter_object` and `extra_filter_expression`. `first` numbers them, so that two calls
/// make distinct slugs.
pub fn normandy_recipes(first: usize, count: usize) -> Vec<Value> {
    (first..first + count)
        .map(|idx| {
            let channel = ["release", "beta", "nightly"][idx % 3];
            let major = 100 + idx % 30;
            let (action, arguments) = match idx % 4 {
                0 | 1 => (
                    "preference-rollout",
                    json!({
                        "slug": format!("rollout-{idx}"),
                        "preferences": [{"preferenceName": format!("feature.{idx}.enabled"), "value": true}]
                    }),
                ),
                2 => (
                    "multi-preference-experiment",
                    json!({
                        "slug": format!("experiment-{idx}"),
                        "userFacingName": format!("Experiment {idx}"),
                        "userFacingDescription": "A benchmark experiment.",
                        "isEnrollmentPaused": false,
                        "branches": [
                            {"slug": "control", "ratio": 1, "preferences": {format!("feature.{idx}.variant"): {"preferenceType": "string", "preferenceValue": "a"}}},
                            {"slug": "treatment", "ratio": 1, "preferences": {format!("feature.{idx}.variant"): {"preferenceType": "string", "preferenceValue": "b"}}}
                        ]
                    }),
                ),
                _ => (
                    "preference-rollback",
                    json!({"rolloutSlug": format!("retired-rollout-{idx}")}),
                ),
            };
            json!({
                "name": format!("Recipe {idx}"),
                "action": action,
                "arguments": arguments,
                "filter_object": [
                    {"type": "channel", "channels": [channel, "beta"]},
                    {"type": "locale", "locales": ["en-US", "de", "fr"]},
                    {"type": "version", "versions": [major, major + 1]},
                    {"type": "stableSample", "input": ["normandy.userId", "normandy.recipe.id"], "rate": 0.1 + (idx % 9) as f64 / 10.0}
                ],
                "extra_filter_expression": format!("normandy.version|versionCompare('{}.*') < 0", major + 20),
            })
        })
        .collect()
}

/// `count` CloudBees target groups `group-0`, `group-1`, …: a plan and a list of countries.
pub fn target_groups(count: usize) -> Vec<Value> {
    (0..count)
        .map(|g| {
            let countries: Vec<&str> = (0..5)
                .map(|k| COUNTRIES[(g + k) % COUNTRIES.len()])
                .collect();
            json!({
                "name": format!("group-{g}"),
                "description": format!("Benchmark group {g}"),
                "conditions": [
                    {"operator": "eq", "property": "plan", "operand": PLANS[g % PLANS.len()]},
                    {"operator": "in-array", "property": "country", "operand": countries}
                ]
            })
        })
        .collect()
}

/// `count` CloudBees flags `flag-0`, `flag-1`, … over `groups` target groups, in five shapes
/// by number modulo 5: a group condition serving a three-way split (what [`OFREP_FLAG`]
/// is), a boolean group condition, a boolean percentage split, a version condition, and a
/// single value.
pub fn flags(count: usize, groups: usize) -> Vec<Value> {
    (0..count)
        .map(|i| {
            let name = format!("flag-{i}");
            let group = format!("group-{}", i % groups.max(1));
            match i % 5 {
                0 => json!({
                    "flag": name,
                    "description": "Checkout variants for one target group",
                    "availableValues": ["control", "treatment-a", "treatment-b"],
                    "conditions": [{
                        "group": {"name": group},
                        "value": [
                            {"option": "control", "percentage": 34},
                            {"option": "treatment-a", "percentage": 33},
                            {"option": "treatment-b", "percentage": 33}
                        ]
                    }],
                    "value": "control"
                }),
                1 => json!({
                    "flag": name,
                    "availableValues": [false, true],
                    "conditions": [{"group": {"name": group}, "value": true}],
                    "value": false
                }),
                2 => json!({
                    "flag": name,
                    "value": [{"option": true, "percentage": 20 + i % 60}]
                }),
                3 => json!({
                    "flag": name,
                    "availableValues": [false, true],
                    "conditions": [{
                        "property": {"name": "version", "operator": "semver-gte", "operand": format!("{}.0.0", 100 + i % 30)},
                        "value": true
                    }],
                    "value": false
                }),
                _ => json!({"flag": name, "value": true}),
            }
        })
        .collect()
}

/// A store seeded for a benchmark, and the recipes it holds.
pub struct Seeded {
    /// The store.
    pub store: Store,
    /// The ids of the recipes approved but left disabled, in creation order.
    pub disabled: Vec<i64>,
    /// How many recipes were published (approved and enabled).
    pub enabled: usize,
}

/// The store's URL for the SQLite file in `dir`, as `ServerConfig::database_url` makes it.
pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("flightdeck.db").display())
}

/// Opens the store in `dir` and writes `enabled` (approved and enabled) and `disabled`
/// (approved only) items to `production`, each created by `bench-author` and approved by
/// `bench-approver`, as the admin API would. Also makes the user `bench-admin` (see
/// [`admin_token`]).
pub async fn seed(
    dir: &Path,
    enabled: &[(Kind, Value)],
    disabled: &[(Kind, Value)],
) -> anyhow::Result<Seeded> {
    let store = Store::open(&sqlite_url(dir)).await?;
    let now = Timestamp::now();
    let author = store
        .create_user("bench-author", &[Role::Editor], Actor::System, now)
        .await?;
    let approver = store
        .create_user("bench-approver", &[Role::Approver], Actor::System, now)
        .await?;
    store
        .create_user("bench-admin", &[Role::Admin], Actor::System, now)
        .await?;
    let author = Actor::User(author.id);
    let approver = Actor::User(approver.id);
    let mut disabled_ids = Vec::with_capacity(disabled.len());
    let all = enabled
        .iter()
        .map(|item| (item, true))
        .chain(disabled.iter().map(|item| (item, false)));
    for ((kind, data), enable) in all {
        let (recipe, revision) = store
            .create_recipe(*kind, "production", data, "benchmark", author, now)
            .await
            .with_context(|| format!("creating {data}"))?;
        let request = store.request_approval(revision.id, author, now).await?;
        store.approve(request.id, "", approver, now).await?;
        if enable {
            store
                .set_enabled(recipe.id, true, approver, now)
                .await
                .with_context(|| format!("enabling {data}"))?;
        } else {
            disabled_ids.push(recipe.id);
        }
    }
    Ok(Seeded {
        store,
        disabled: disabled_ids,
        enabled: enabled.len(),
    })
}

/// A new API token of `bench-admin`.
pub async fn admin_token(store: &Store) -> anyhow::Result<String> {
    flightdeck_server::admin::bootstrap::create_token(
        store,
        "bench-admin",
        "benchmark",
        Timestamp::now(),
    )
    .await
    .context("making a token")
}

/// The items of the load benchmark: `recipes` Normandy recipes, then `groups` target groups
/// and `flag_count` flags.
pub fn load_items(recipes: usize, flag_count: usize, groups: usize) -> Vec<(Kind, Value)> {
    let mut items: Vec<(Kind, Value)> = normandy_recipes(0, recipes)
        .into_iter()
        .map(|data| (Kind::Normandy, data))
        .collect();
    if flag_count > 0 {
        items.extend(
            target_groups(groups)
                .into_iter()
                .map(|data| (Kind::TargetGroup, data)),
        );
        items.extend(
            flags(flag_count, groups)
                .into_iter()
                .map(|data| (Kind::Flag, data)),
        );
    }
    items
}
