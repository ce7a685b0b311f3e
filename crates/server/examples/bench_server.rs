//! The server of the loopback load benchmark (`scripts/load-bench.sh`): `flightdeck serve`'s
//! own assembly over a store seeded with generated items, served until SIGINT or SIGTERM.
//!
//! ```console
//! $ cargo run --release -p flightdeck-server --example bench_server -- \
//!     --listen 127.0.0.1:8089 --recipes 1000 --flags 300 [--groups 20] [--workers 2] \
//!     [--data-dir DIR]
//! ```
//!
//! The items are written to a SQLite store (in a new temporary directory unless `--data-dir`
//! names an empty one) through the store's workflow: created by one user, approved by
//! another, enabled. Then [`ControlTower::open`] publishes them exactly as it publishes what
//! authors wrote, and [`ControlTower::router`] is what is served, so the benchmark measures
//! the real router: client documents, push, OFREP, admin API and telemetry ingest, with
//! metrics installed.
//!
//! The Normandy recipes are API v3 write fields in the mix of the client benchmark; the
//! CloudBees flags come in five shapes over `--groups` target groups (see
//! `support::flags`); the OFREP benchmark evaluates [`support::OFREP_FLAG`].

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use flightdeck_server::ops::{self, spawn_metrics_upkeep};
use flightdeck_server::{ControlTower, ServerConfig};

struct Options {
    listen: String,
    recipes: usize,
    flags: usize,
    groups: usize,
    workers: Option<usize>,
    data_dir: Option<PathBuf>,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        listen: "127.0.0.1:8089".to_owned(),
        recipes: 1000,
        flags: 300,
        groups: 20,
        workers: None,
        data_dir: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--listen" => options.listen = value()?,
            "--recipes" => options.recipes = value()?.parse().context("--recipes")?,
            "--flags" => options.flags = value()?.parse().context("--flags")?,
            "--groups" => options.groups = value()?.parse().context("--groups")?,
            "--workers" => options.workers = Some(value()?.parse().context("--workers")?),
            "--data-dir" => options.data_dir = Some(PathBuf::from(value()?)),
            other => bail!("unknown argument {other}"),
        }
    }
    if options.groups == 0 {
        bail!("--groups must be at least 1");
    }
    Ok(options)
}

fn main() -> anyhow::Result<()> {
    let options = options()?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = options.workers {
        runtime.worker_threads(workers);
    }
    runtime.enable_all().build()?.block_on(run(options))
}

async fn run(options: Options) -> anyhow::Result<()> {
    ops::init_tracing(flightdeck_server::config::LogFormat::Text)?;
    let temporary;
    let data_dir = match &options.data_dir {
        Some(dir) => dir.clone(),
        None => {
            temporary = tempfile::tempdir()?;
            temporary.path().to_path_buf()
        }
    };

    let items = support::load_items(options.recipes, options.flags, options.groups);
    let started = Instant::now();
    let seeded = support::seed(&data_dir, &items, &[]).await?;
    seeded.store.shutdown().await;
    println!(
        "seeded: {} items in {:.1} s ({})",
        seeded.enabled,
        started.elapsed().as_secs_f64(),
        data_dir.display()
    );

    let config = ServerConfig {
        data_dir: data_dir.clone(),
        ..ServerConfig::default()
    };
    let started = Instant::now();
    let tower = ControlTower::open(config, Arc::new(jiff::Timestamp::now)).await?;
    let opened = started.elapsed();
    let snapshot = tower
        .publisher()
        .snapshot("production")
        .context("no production snapshot")?;
    let manifest = snapshot.manifest();
    println!(
        "snapshot: {} recipes, {} flags, {} target groups ({} skipped) published in {:.0} ms \
         (store opened, snapshots built); manifest {} bytes, gzip {} bytes, ETag {}",
        snapshot.compiled().recipes.recipes.len(),
        snapshot.compiled().flags.experiments.len(),
        snapshot.compiled().flags.target_groups.len(),
        snapshot.skipped().len(),
        opened.as_secs_f64() * 1000.0,
        manifest.body().len(),
        manifest.gzip().len(),
        manifest.etag_str(),
    );
    for skipped in snapshot.skipped() {
        println!(
            "skipped: {} {}: {}",
            skipped.kind, skipped.recipe_id, skipped.reason
        );
    }
    println!("ofrep: flag {}", support::OFREP_FLAG);
    drop(snapshot);

    let metrics = ops::install_metrics()?;
    spawn_metrics_upkeep(metrics.clone(), Duration::from_secs(5));
    let router = tower.router(Some(metrics));
    let listener = tokio::net::TcpListener::bind(&options.listen)
        .await
        .with_context(|| format!("binding {}", options.listen))?;
    println!("listening on http://{}", listener.local_addr()?);
    tower
        .run(listener, router, flightdeck_server::shutdown_signal())
        .await?;
    Ok(())
}
