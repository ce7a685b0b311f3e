//! `flightdeck client …`: the reference client, which keeps a device's state in a profile
//! directory so the client runtime can be driven and inspected from the command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use flightdeck_client::RandomSource;
use flightdeck_client::fetch::{HttpClient, HttpError, HttpResponse, ReqwestClient, ReqwestConfig};
use flightdeck_client::install::DirInstaller;
use flightdeck_client::prefs::{Branch, FilePrefStore, PrefStore, PrefValue};
use flightdeck_client::runtime::{self, ClientConfig, ManifestOrigin, Profile, RunEnv};
use flightdeck_client::signature::TrustedKeys;
use flightdeck_client::state::ClientState;
use flightdeck_client::telemetry::UploadPolicy;
use flightdeck_core::context::ClientContext;
use serde_json::{Value, json};

/// The `client` subcommands.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// One run: load state, get and verify the manifest, evaluate, apply, persist. Prints what
    /// changed.
    Run(RunArgs),
    /// Show rollouts, experiments and manifest experiments recorded in the profile.
    Status {
        /// The profile directory.
        #[arg(long)]
        profile: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show every preference the profile holds, with both branches.
    Prefs {
        /// The profile directory.
        #[arg(long)]
        profile: PathBuf,
        /// Print JSON: `{"name": {"default": v|null, "user": v|null}}`.
        #[arg(long)]
        json: bool,
    },
    /// Set a user-branch value, as the application or the user would. An experiment that owns
    /// the preference ends without resetting it.
    SetPref {
        /// The profile directory.
        #[arg(long)]
        profile: PathBuf,
        /// Store the value as a string even if it reads as a boolean or an integer.
        #[arg(long)]
        string: bool,
        /// The evaluation time (RFC 3339 or epoch seconds); default: now.
        #[arg(long)]
        now: Option<String>,
        /// The preference name.
        name: String,
        /// `true`/`false` (boolean), an integer, or any other text (string).
        value: String,
    },
    /// Show the queued telemetry events.
    Events {
        /// The profile directory.
        #[arg(long)]
        profile: PathBuf,
        /// Print JSON: an array of `{method, object, value, extra, timestamp, seq}`.
        #[arg(long)]
        json: bool,
    },
}

/// Arguments of `client run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The profile directory (created if missing).
    #[arg(long)]
    profile: PathBuf,
    /// A manifest file in any accepted format.
    #[arg(long, conflicts_with = "url", required_unless_present = "url")]
    manifest: Option<PathBuf>,
    /// An http(s) URL serving the manifest.
    #[arg(long)]
    url: Option<String>,
    /// The client context document.
    #[arg(long)]
    context: Option<PathBuf>,
    /// A trusted public key (PEM); repeat for key rotation. With at least one, only manifests
    /// signed by one of them are applied.
    #[arg(long = "trust-key")]
    trust_keys: Vec<PathBuf>,
    /// The run's time (RFC 3339 or epoch seconds); default: the context's `now`, else now.
    #[arg(long)]
    now: Option<String>,
    /// Upload queued telemetry to this endpoint after the run.
    #[arg(long)]
    telemetry_url: Option<String>,
    /// Use this value in [0, 1) for every random draw (reproducible runs and tests).
    #[arg(long)]
    fixed_random: Option<f64>,
    /// Turn the Manifest v1 experiments service off (stops the active one).
    #[arg(long)]
    no_manifest_experiments: bool,
    /// Print the run report as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs a `client` subcommand.
pub fn run(command: ClientCommand) -> anyhow::Result<ExitCode> {
    match command {
        ClientCommand::Run(args) => run_once(args),
        ClientCommand::Status { profile, json } => status(&profile, json),
        ClientCommand::Prefs { profile, json } => prefs(&profile, json),
        ClientCommand::SetPref {
            profile,
            string,
            now,
            name,
            value,
        } => set_pref(&profile, &name, &value, string, now.as_deref()),
        ClientCommand::Events { profile, json } => events(&profile, json),
    }
}

/// Uniform values from the operating system's generator.
struct OsRandom;

impl RandomSource for OsRandom {
    fn uniform(&mut self) -> f64 {
        let mut bytes = [0u8; 8];
        // Without OS randomness, 0.5 is a neutral draw; the failure is not worth a crash.
        if getrandom::fill(&mut bytes).is_err() {
            return 0.5;
        }
        // 53 random bits give every double in [0, 1) with equal spacing.
        (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The HTTP client, built on first use: a run over a manifest file without a telemetry
/// endpoint never pays for loading the system's root certificates (time and memory).
#[derive(Default)]
struct LazyHttp(std::sync::OnceLock<Result<ReqwestClient, HttpError>>);

impl LazyHttp {
    fn client(&self) -> Result<&ReqwestClient, HttpError> {
        self.0
            .get_or_init(|| ReqwestClient::new(&ReqwestConfig::default()))
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl HttpClient for LazyHttp {
    fn get(
        &self,
        url: &str,
        headers: &[(String, String)],
        timeout: std::time::Duration,
    ) -> Result<HttpResponse, HttpError> {
        self.client()?.get(url, headers, timeout)
    }

    fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        timeout: std::time::Duration,
    ) -> Result<HttpResponse, HttpError> {
        self.client()?.post(url, headers, body, timeout)
    }
}

/// The same value for every draw.
struct Fixed(f64);

impl RandomSource for Fixed {
    fn uniform(&mut self) -> f64 {
        self.0
    }
}

fn parse_time(text: &str) -> anyhow::Result<jiff::Timestamp> {
    let value = match text.parse::<f64>() {
        Ok(n) => json!(n),
        Err(_) => json!(text),
    };
    flightdeck_core::context::ContextTime::from_json(&value)
        .map(|t| t.timestamp())
        .map_err(|e| anyhow::format_err!("--now: {e}"))
}

fn run_once(args: RunArgs) -> anyhow::Result<ExitCode> {
    let (context, context_now) = match &args.context {
        Some(path) => {
            let (context, _) = crate::read_context(path)?;
            let now = context.now();
            (context, now)
        }
        None => (ClientContext::default(), None),
    };
    let now = match &args.now {
        Some(text) => parse_time(text)?,
        None => context_now.unwrap_or_else(jiff::Timestamp::now),
    };
    let trusted_keys = if args.trust_keys.is_empty() {
        None
    } else {
        Some(read_trusted_keys(&args.trust_keys)?)
    };
    let config = ClientConfig {
        trusted_keys,
        upload: args.telemetry_url.clone().map(UploadPolicy::new),
        manifest_experiments_disabled: args.no_manifest_experiments,
        ..ClientConfig::default()
    };
    let origin = match (&args.manifest, &args.url) {
        (Some(path), _) => ManifestOrigin::File(path.clone()),
        (None, Some(url)) => ManifestOrigin::Url(url.clone()),
        (None, None) => anyhow::bail!("give --manifest FILE or --url URL"),
    };
    let profile = Profile::new(&args.profile);
    profile
        .create()
        .with_context(|| format!("cannot create {}", args.profile.display()))?;
    let mut prefs = FilePrefStore::open(&profile.prefs_path())?;
    let http = LazyHttp::default();
    let mut installer = DirInstaller::new(profile.packages_dir());
    let js_filter = flightdeck_jsfilter::QuickJsFilter::default();
    let mut os_random = OsRandom;
    let mut fixed_random = Fixed(args.fixed_random.unwrap_or(0.5));
    let random: &mut dyn RandomSource = if args.fixed_random.is_some() {
        &mut fixed_random
    } else {
        &mut os_random
    };
    let mut env = RunEnv {
        profile: &profile,
        prefs: &mut prefs,
        http: &http,
        installer: &mut installer,
        js_filter: &js_filter,
        random,
        config: &config,
    };
    let report = runtime::run(&mut env, &origin, &context, now)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn read_trusted_keys(paths: &[PathBuf]) -> anyhow::Result<TrustedKeys> {
    Ok(TrustedKeys::read_pem_files(paths)?)
}

fn show(value: &Option<PrefValue>) -> String {
    match value {
        None => "(none)".to_owned(),
        Some(PrefValue::String(s)) => format!("{s:?}"),
        Some(PrefValue::Bool(b)) => b.to_string(),
        Some(PrefValue::Int(n)) => n.to_string(),
    }
}

fn print_report(report: &runtime::RunReport) {
    use flightdeck_client::state::LoadNote;
    match &report.state {
        LoadNote::CorruptKeptAside { kept_at, problem } => println!(
            "state: the state file was unreadable ({problem}); kept at {} and started afresh",
            kept_at.display()
        ),
        LoadNote::Migrated { from } => println!("state: migrated from version {from}"),
        LoadNote::New => println!("state: new profile"),
        LoadNote::Loaded => {}
    }
    if report.replayed_writes > 0 {
        println!(
            "state: replayed {} preference writes of an interrupted run",
            report.replayed_writes
        );
    }
    match &report.manifest {
        runtime::ManifestStatus::Accepted { serial: Some(s) } => {
            println!("manifest: accepted (serial {s})")
        }
        runtime::ManifestStatus::Accepted { serial: None } => println!("manifest: accepted"),
        runtime::ManifestStatus::Unchanged => println!("manifest: unchanged"),
        runtime::ManifestStatus::UsedLastGood { reason } => {
            println!("manifest: {reason}; using the last good manifest")
        }
        runtime::ManifestStatus::Unavailable { reason } => {
            println!("manifest: {reason}; no manifest, nothing ran")
        }
    }
    for write in &report.pref_writes {
        println!(
            "pref {} {} = {}",
            write.branch.as_str(),
            write.name,
            show(&write.value)
        );
    }
    for event in &report.events {
        let extra: Vec<String> = event
            .extra
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!(
            "event {} {} {} {}",
            event.method,
            event.object,
            event.value,
            extra.join(" ")
        )
    }
    if let Some(at) = report.next_wake_up {
        println!("next wake-up: {at}");
    }
    if let Some(upload) = &report.upload {
        println!("telemetry upload: {upload}");
    }
    if report.pref_writes.is_empty() && report.events.is_empty() {
        println!("no changes");
    }
}

fn load_state(profile: &Path) -> anyhow::Result<ClientState> {
    let profile = Profile::new(profile);
    let (state, note) = profile.state_file().load(jiff::Timestamp::now())?;
    if let flightdeck_client::state::LoadNote::CorruptKeptAside { kept_at, problem } = note {
        eprintln!(
            "flightdeck: the state file was unreadable ({problem}); kept at {}",
            kept_at.display()
        );
    }
    Ok(state)
}

fn status(profile: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let state = load_state(profile)?;
    let rollouts: Vec<Value> = state
        .rollouts
        .values()
        .map(|r| {
            json!({
                "slug": r.slug,
                "state": r.state.as_str(),
                "preferences": r.preferences,
                "enrolledAt": r.enrolled_at,
            })
        })
        .collect();
    let experiments: Vec<Value> = state
        .experiments
        .values()
        .map(|e| {
            json!({
                "slug": e.slug,
                "branch": e.branch,
                "expired": e.expired,
                "actionName": e.action_name,
                "experimentType": e.experiment_type,
                "lastSeen": e.last_seen,
                "temporaryErrorDeadline": e.temporary_error_deadline,
                "enrolledAt": e.enrolled_at,
                "endedAt": e.ended_at,
                "endReason": e.end_reason,
                "preferences": e.preferences,
            })
        })
        .collect();
    let manifest_experiments: Vec<Value> = state
        .manifest_experiments
        .values()
        .map(|m| {
            json!({
                "id": m.id,
                "active": m.enabled,
                "startDate": m.start_date,
                "endDate": m.end_date,
                "randomValue": m.random_value,
                "failedStart": m.failed_start,
                "branch": m.branch,
                "installed": m.installed,
            })
        })
        .collect();
    let out = json!({
        "rollouts": rollouts,
        "experiments": experiments,
        "manifestExperiments": manifest_experiments,
        "manifest": state.manifest,
        "annotations": runtime::annotations(&state),
        "queuedEvents": state.telemetry.pending.len(),
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    for r in &state.rollouts {
        println!("rollout {} {}", r.0, r.1.state.as_str());
    }
    for e in state.experiments.values() {
        println!(
            "experiment {} branch {}{}",
            e.slug,
            e.branch,
            if e.expired { " (expired)" } else { "" }
        );
    }
    for m in state.manifest_experiments.values() {
        println!(
            "manifest experiment {}{}",
            m.id,
            if m.enabled { " (active)" } else { "" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn prefs(profile: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let store = FilePrefStore::open(&Profile::new(profile).prefs_path())?;
    let mut out = serde_json::Map::new();
    for (name, entry) in store.entries() {
        out.insert(
            name.clone(),
            json!({"default": entry.default, "user": entry.user}),
        );
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&Value::Object(out))?);
    } else {
        for (name, entry) in store.entries() {
            println!(
                "{name}: default {} user {}",
                show(&entry.default),
                show(&entry.user)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_pref_value(text: &str, string: bool) -> PrefValue {
    if string {
        return PrefValue::String(text.to_owned());
    }
    match text {
        "true" => PrefValue::Bool(true),
        "false" => PrefValue::Bool(false),
        _ => match text.parse::<i64>() {
            Ok(n) => PrefValue::Int(n),
            Err(_) => PrefValue::String(text.to_owned()),
        },
    }
}

fn set_pref(
    profile_dir: &Path,
    name: &str,
    value: &str,
    string: bool,
    now: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let now = match now {
        Some(text) => parse_time(text)?,
        None => jiff::Timestamp::now(),
    };
    let profile = Profile::new(profile_dir);
    profile.create()?;
    let mut store = FilePrefStore::open(&profile.prefs_path())?;
    // Finish an interrupted run before the user's write, so replaying its journal later
    // cannot overwrite the user's value.
    let (state, _, _) = runtime::open_state(&profile, &mut store, now)?;
    profile.state_file().save(&state)?;
    store.set(name, Branch::User, Some(parse_pref_value(value, string)));
    store.flush()?;
    let events =
        runtime::preference_changed(&profile, &mut store, &ClientConfig::default(), name, now)?;
    for event in events {
        println!("event {} {} {}", event.method, event.object, event.value);
    }
    Ok(ExitCode::SUCCESS)
}

fn events(profile: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let state = load_state(profile)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&state.telemetry.pending)?
        );
    } else {
        for queued in &state.telemetry.pending {
            let e = &queued.event;
            println!(
                "{} {} {} {} {:?}",
                queued.timestamp, e.method, e.object, e.value, e.extra
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
