//! How long an admin write that changes what is published takes, end to end: `POST
//! /api/v3/recipe/{id}/enable/` through [`ControlTower::router`] (in-process, no socket),
//! whose answer waits for the environment's snapshot to be rebuilt.
//!
//! ```console
//! $ cargo run --release -p flightdeck-server --example rebuild_time -- \
//!     [--recipes 1000] [--rounds 10] [--data-dir DIR]
//! ```
//!
//! A SQLite store (in a new temporary directory unless `--data-dir` names an empty one) gets
//! `--recipes` published Normandy recipes and `--rounds` more, approved but disabled. The
//! server opens it (the first build, timed), then enables the disabled recipes one request at
//! a time, printing each request's time and the median: each enable publishes one more
//! recipe in an environment of `--recipes`.

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use flightdeck_server::{ControlTower, ServerConfig};
use flightdeck_store::Kind;
use tower::ServiceExt as _;

struct Options {
    recipes: usize,
    rounds: usize,
    data_dir: Option<PathBuf>,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        recipes: 1000,
        rounds: 10,
        data_dir: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--recipes" => options.recipes = value()?.parse().context("--recipes")?,
            "--rounds" => options.rounds = value()?.parse().context("--rounds")?,
            "--data-dir" => options.data_dir = Some(PathBuf::from(value()?)),
            other => bail!("unknown argument {other}"),
        }
    }
    ensure!(options.rounds > 0, "--rounds must be at least 1");
    Ok(options)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = options()?;
    let temporary;
    let data_dir = match &options.data_dir {
        Some(dir) => dir.clone(),
        None => {
            temporary = tempfile::tempdir()?;
            temporary.path().to_path_buf()
        }
    };
    let normandy = |first, count| -> Vec<(Kind, serde_json::Value)> {
        support::normandy_recipes(first, count)
            .into_iter()
            .map(|data| (Kind::Normandy, data))
            .collect()
    };
    let seeded = support::seed(
        &data_dir,
        &normandy(0, options.recipes),
        &normandy(options.recipes, options.rounds),
    )
    .await?;
    let token = support::admin_token(&seeded.store).await?;
    seeded.store.shutdown().await;

    let config = ServerConfig {
        data_dir: data_dir.clone(),
        ..ServerConfig::default()
    };
    let started = Instant::now();
    let tower = ControlTower::open(config, Arc::new(jiff::Timestamp::now)).await?;
    println!(
        "first build: {} published recipes in {:.0} ms (store opened, snapshots built)",
        published(&tower)?,
        started.elapsed().as_secs_f64() * 1000.0
    );
    let router = tower.router(None);

    let mut times: Vec<Duration> = Vec::with_capacity(seeded.disabled.len());
    for recipe_id in &seeded.disabled {
        let before = published(&tower)?;
        let request = Request::post(format!("/api/v3/recipe/{recipe_id}/enable/"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())?;
        let started = Instant::now();
        let response = router.clone().oneshot(request).await?;
        let took = started.elapsed();
        ensure!(
            response.status() == StatusCode::OK,
            "enabling recipe {recipe_id}: {}",
            response.status()
        );
        let after = published(&tower)?;
        ensure!(
            after == before + 1,
            "{before} recipes before, {after} after"
        );
        println!(
            "enable recipe {recipe_id}: {before} → {after} published recipes, {:.1} ms",
            took.as_secs_f64() * 1000.0
        );
        times.push(took);
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "enable + rebuild, {} rounds: median {:.1} ms, min {:.1} ms, max {:.1} ms",
        times.len(),
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1])
    );
    tower.store().shutdown().await;
    Ok(())
}

/// How many Normandy recipes `production` publishes now.
fn published(tower: &ControlTower) -> anyhow::Result<usize> {
    Ok(tower
        .publisher()
        .snapshot("production")
        .context("no production snapshot")?
        .compiled()
        .recipes
        .recipes
        .len())
}
