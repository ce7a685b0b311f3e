//! One client run over a 1,000-recipe signed manifest: load the state, read and verify the
//! manifest, evaluate it, apply what applies, persist (with fsync). The issue's target is
//! ≤ 20 ms per run (and ≤ 20 MB resident, measured on the real binary, see
//! `docs/benchmarks.md`).
//!
//! Two cases:
//! - `first_run`: a new profile; every recipe is evaluated and the matching ones enroll (a
//!   third of the filters name the client's channel, two thirds its version, and each samples
//!   10–90 %: 44 rollouts and 20 experiments, 64 preference writes, with their records and
//!   telemetry events);
//! - `steady_run`: the same manifest again on the profile the first run left (what every
//!   later run costs).
//!
//! Run with `cargo bench -p flightdeck-client --bench run`. The bench also leaves the signed
//! manifest, its public key and the context under `target/bench-client/`, for measuring the
//! real binary's resident memory.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use flightdeck_client::FixedRandom;
use flightdeck_client::fetch::ScriptedHttpClient;
use flightdeck_client::install::{DirInstaller, Installer};
use flightdeck_client::manifest;
use flightdeck_client::prefs::FilePrefStore;
use flightdeck_client::runtime::{self, ClientConfig, ManifestOrigin, Profile, RunEnv};
use flightdeck_client::signature::{SigningKey, TrustedKeys};
use flightdeck_core::context::ClientContext;
use flightdeck_core::evaluate::NoJsFilter;
use serde_json::json;

const N_RECIPES: usize = 1_000;

/// The same realistic mix as the core's manifest benchmark: rollouts, multi-preference
/// experiments and rollbacks, each filter with channel, locale, a version range and sampling.
fn recipes() -> serde_json::Value {
    let recipes: Vec<serde_json::Value> = (0..N_RECIPES)
        .map(|idx| {
            let id = 10_000 + idx;
            let channel = ["release", "beta", "nightly"][idx % 3];
            let major = 100 + idx % 30;
            let filter = format!(
                "normandy.channel in ['{channel}', 'beta'] && normandy.locale in ['en-US', 'de', 'fr'] \
                 && normandy.version|versionCompare('{major}.!') >= 0 \
                 && normandy.version|versionCompare('{}.*') < 0 \
                 && [normandy.userId, normandy.recipe.id]|stableSample(0.{})",
                major + 20,
                1 + idx % 9
            );
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
                    json!({"rolloutSlug": format!("rollout-{}", idx - 2)}),
                ),
            };
            json!({
                "id": id,
                "name": format!("Recipe {idx}"),
                "revision_id": format!("{}", 50_000 + idx),
                "action": action,
                "arguments": arguments,
                "filter_expression": filter,
                "capabilities": [format!("action.{action}"), "jexl.transform.stableSample", "jexl.transform.versionCompare"]
            })
        })
        .collect();
    serde_json::Value::Array(recipes)
}

const CONTEXT: &str = r#"{
    "userId": "299eed1e-be6d-457d-9e53-da7b1a03f10d",
    "appName": "Firefox",
    "version": "128.0.1",
    "channel": "release",
    "locale": "en-US",
    "country": "DE",
    "os": "Linux",
    "now": "2026-11-21T12:00:00Z"
}"#;

/// Writes the signed manifest, the public key and the context under `dir`.
fn fixtures(dir: &Path) -> (PathBuf, TrustedKeys) {
    std::fs::create_dir_all(dir).expect("bench directory");
    let key = SigningKey::from_pem(
        "bench-signing-key.pem",
        include_str!("data/bench-signing-key.pem"),
    )
    .expect("bench key");
    let unsigned = serde_json::to_vec(&recipes()).expect("JSON");
    let loaded = manifest::load("recipes.json", &unsigned).expect("valid recipes");
    let published: jiff::Timestamp = "2026-11-21T10:00:00Z".parse().expect("time");
    let signed = manifest::sign_manifest(&[&loaded], &key, 1, published).expect("sign");
    let manifest_path = dir.join("manifest-1000.json");
    std::fs::write(&manifest_path, serde_json::to_vec(&signed).expect("JSON")).expect("write");
    let public = key.public_key().to_spki_pem().expect("PEM");
    std::fs::write(dir.join("public-key.pem"), &public).expect("write key");
    std::fs::write(dir.join("context.json"), CONTEXT).expect("write context");
    let mut trusted = TrustedKeys::new();
    trusted.add_pem("public-key.pem", &public).expect("key");
    (manifest_path, trusted)
}

/// One run on `profile_dir`.
fn one_run(
    profile_dir: &Path,
    origin: &ManifestOrigin,
    context: &ClientContext,
    config: &ClientConfig,
) {
    let profile = Profile::new(profile_dir);
    let mut prefs = FilePrefStore::open(&profile.prefs_path()).expect("prefs");
    let http = ScriptedHttpClient::new(Vec::new());
    let mut installer = DirInstaller::new(profile.packages_dir());
    let installer: &mut dyn Installer = &mut installer;
    let mut random = FixedRandom::new(vec![0.25]);
    let mut env = RunEnv {
        profile: &profile,
        prefs: &mut prefs,
        http: &http,
        installer,
        js_filter: &NoJsFilter,
        random: &mut random,
        config,
    };
    let now = context.now().expect("context has now");
    let report = runtime::run(&mut env, origin, context, now).expect("run");
    black_box(report);
}

fn copy_profile(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).expect("profile");
    for entry in std::fs::read_dir(from).expect("read profile") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("type").is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }
}

fn bench_run(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-client");
    let (manifest_path, trusted) = fixtures(&dir);
    let origin = ManifestOrigin::File(manifest_path);
    let context = ClientContext::from_json(CONTEXT).expect("context");
    let config = ClientConfig {
        trusted_keys: Some(trusted),
        ..ClientConfig::default()
    };

    // A first run, checked: it must enroll what the filters select (44 rollouts and 20
    // experiments with this context).
    let settled = dir.join("settled-profile");
    let _ = std::fs::remove_dir_all(&settled);
    one_run(&settled, &origin, &context, &config);
    let state = std::fs::read_to_string(settled.join("state.json")).expect("state");
    assert!(
        state.matches("\"state\":\"active\"").count() >= 40,
        "the first run enrolled too few rollouts"
    );
    assert!(
        state.matches("\"expired\":false").count() >= 15,
        "the first run enrolled too few experiments"
    );

    let work = dir.join("work-profile");
    let empty = dir.join("empty-profile");
    let _ = std::fs::remove_dir_all(&empty);
    std::fs::create_dir_all(&empty).expect("empty profile");

    let mut group = c.benchmark_group("client_run/1000_signed");
    group.sample_size(30);
    group.bench_function("first_run", |b| {
        b.iter_batched(
            || copy_profile(&empty, &work),
            |()| one_run(&work, &origin, &context, &config),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("steady_run", |b| {
        b.iter_batched(
            || copy_profile(&settled, &work),
            |()| one_run(&work, &origin, &context, &config),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// The two manifest steps of a run on their own: reading the signed manifest (parse, check,
/// canonical form, hashes, the core's recipe parser) and verifying it (one P-384 signature;
/// and, as `verify-manifest` does, every recipe's signature too).
fn bench_manifest(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-client");
    let (manifest_path, trusted) = fixtures(&dir);
    let bytes = std::fs::read(&manifest_path).expect("manifest");
    let skip = manifest::VerifyPolicy {
        recipe_signatures: manifest::RecipeSignatureCheck::Skip,
        ..manifest::VerifyPolicy::default()
    };
    let loaded = manifest::load("manifest-1000.json", &bytes).expect("load");
    assert!(manifest::verify(loaded.clone(), &trusted, None, &skip).is_ok());

    let mut group = c.benchmark_group("manifest/1000_signed");
    group.sample_size(30);
    group.bench_function("load", |b| {
        b.iter(|| manifest::load("manifest-1000.json", black_box(&bytes)).expect("load"))
    });
    group.bench_function("verify", |b| {
        b.iter_batched(
            || loaded.clone(),
            |loaded| manifest::verify(loaded, &trusted, None, &skip).expect("verify"),
            BatchSize::LargeInput,
        )
    });
    // What `flightdeck verify-manifest` (and a client with `recipe_signatures: Always`) pays:
    // the whole-document signature and then one per recipe.
    let every_recipe = manifest::VerifyPolicy::default();
    group.sample_size(10);
    group.bench_function("verify_every_recipe", |b| {
        b.iter_batched(
            || loaded.clone(),
            |loaded| manifest::verify(loaded, &trusted, None, &every_recipe).expect("verify"),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_run, bench_manifest);
criterion_main!(benches);
