//! The Manifest v1 client (the reference's Experiments.jsm) as pure logic over the client's
//! entries, with package installation behind [`Installer`].
//!
//! One call of [`run`] is one evaluation loop of the reference client:
//!
//! 1. **Merge** the manifest into the entries (new id → a random value is drawn now and
//!    persisted; known id → its manifest data is replaced; a changed `xpiURL` or `xpiHash`
//!    marks an active experiment for re-installation and clears a failed start). A manifest
//!    whose version is not 1 is ignored as a whole (rule 8): nothing is merged and
//!    [`ManifestOutcome::ignored_reason`] says why; the run goes on as if no manifest were
//!    available.
//! 2. **Clean up**: packages of entries that are not active are uninstalled (retrying earlier
//!    failures); entries nobody needs are dropped (see [`HISTORY_RETENTION`] and
//!    [`RANDOM_VALUE_RETENTION`]).
//! 3. **Re-check the active experiment** against its latest manifest data, which is also what
//!    is kept while the experiment is missing from the manifest (rule 2: it keeps running and
//!    keeps its expiry). Not applicable any more → stopped, termination `EXPIRED` when the
//!    reason is `endTime` or `maxActiveSeconds`, else `RECHECK` with the reason. Service
//!    disabled → stopped with `SERVICE_DISABLED`. Otherwise its package is brought up to date.
//! 4. **Start** (when nothing is active and the service is enabled): walk the manifest in order
//!    (order is priority); every experiment that is not applicable gets an `activation`
//!    `REJECTED` event, except those that ran before (`was-active`: an experiment never runs
//!    twice); the first applicable one is installed (hash verified) and activated. A failed
//!    install marks the entry `failedStart`, logs `INSTALL_FAILURE`, and the walk goes on.
//! 5. **Schedule** the next evaluation ([`ManifestOutcome::next_wake_up`]).
//!
//! Telemetry: object `manifest_experiment`, value the experiment id; method `activation` with
//! extra `kind` (`ACTIVATED`, `INSTALL_FAILURE`, `REJECTED`) and `reason` (the check name or the
//! install error code) and `detail` (the message of a thrown `jsfilter`, or of an install
//! error); method `termination` with `kind` (`EXPIRED`, `RECHECK`, `FROM_API`,
//! `ADDON_UNINSTALLED`, `SERVICE_DISABLED`) and, for `RECHECK`, `reason`.

mod entries;

use std::collections::BTreeMap;

use flightdeck_core::context::ClientContext;
use flightdeck_core::evaluate::manifest_v1::{self as evaluate, Rejection};
use flightdeck_core::evaluate::{EvalInput, JsFilter};
use flightdeck_core::model::manifest_v1::{Manifest, ManifestExperiment};
use jiff::Timestamp;

pub use entries::{HISTORY_RETENTION, RANDOM_VALUE_RETENTION};

pub use crate::install::{InstallError, Installer};

use crate::RandomSource;
use crate::events::{Annotation, TelemetryEvent};
use crate::state::ManifestEntry;

/// The telemetry `object` of every event logged here.
pub const EVENT_OBJECT: &str = "manifest_experiment";

/// The `type` of the telemetry environment annotation of the active experiment.
pub const ANNOTATION_TYPE: &str = "manifest-experiment";

/// The annotation `branch` of an active experiment that did not set a branch for itself.
pub const DEFAULT_BRANCH: &str = "default";

/// Why an active experiment stopped (the reference's `TELEMETRY_LOG.TERMINATION` kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminationKind {
    /// It reached `endTime` or its `maxActiveSeconds`.
    Expired,
    /// A re-check found it no longer applicable (the event carries the reason).
    Recheck,
    /// The experiment asked to stop itself.
    FromApi,
    /// The user removed its package.
    AddonUninstalled,
    /// The service was turned off.
    ServiceDisabled,
}

impl TerminationKind {
    /// The `kind` extra of the `termination` event.
    pub fn as_str(self) -> &'static str {
        match self {
            TerminationKind::Expired => "EXPIRED",
            TerminationKind::Recheck => "RECHECK",
            TerminationKind::FromApi => "FROM_API",
            TerminationKind::AddonUninstalled => "ADDON_UNINSTALLED",
            TerminationKind::ServiceDisabled => "SERVICE_DISABLED",
        }
    }
}

/// What an `activation` event reports (the reference's `TELEMETRY_LOG.ACTIVATION` kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivationKind {
    /// The experiment was installed and started.
    Activated,
    /// Its package could not be installed (or, for the active experiment, updated).
    InstallFailure,
    /// It is not applicable (the event carries the first failing check).
    Rejected,
}

impl ActivationKind {
    /// The `kind` extra of the `activation` event.
    pub fn as_str(self) -> &'static str {
        match self {
            ActivationKind::Activated => "ACTIVATED",
            ActivationKind::InstallFailure => "INSTALL_FAILURE",
            ActivationKind::Rejected => "REJECTED",
        }
    }
}

/// Everything one evaluation reads and changes. Time, randomness, the `jsfilter` sandbox and
/// package installation are passed in, so a run is replayable.
pub struct ManifestRun<'a> {
    /// The evaluation time.
    pub now: Timestamp,
    /// The client.
    pub context: &'a ClientContext,
    /// The client's entries, keyed by experiment id (persisted in the client state).
    pub entries: &'a mut BTreeMap<String, ManifestEntry>,
    /// Installs and removes packages.
    pub installer: &'a mut dyn Installer,
    /// Draws the random value of an experiment id seen for the first time.
    pub random: &'a mut dyn RandomSource,
    /// Runs `jsfilter` functions.
    pub js_filter: &'a dyn JsFilter,
    /// Events of the run are appended here.
    pub events: &'a mut Vec<TelemetryEvent>,
    /// Whether the service is enabled. When it is not, the active experiment is stopped
    /// (`SERVICE_DISABLED`) and nothing starts.
    pub enabled: bool,
}

/// What a run decided besides the entries and events.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ManifestOutcome {
    /// When to evaluate again (an experiment starts or expires then); `None` when nothing is
    /// scheduled.
    pub next_wake_up: Option<Timestamp>,
    /// The active experiment after the run.
    pub active: Option<String>,
    /// Why the given manifest was ignored (an unsupported version), if it was.
    pub ignored_reason: Option<String>,
    /// Package operations that failed and are retried on the next run (uninstalls, updates of
    /// the active package). Start failures are reported as `INSTALL_FAILURE` events instead.
    pub problems: Vec<String>,
}

/// One evaluation loop (see the module documentation). `manifest` is `None` when no manifest
/// is available (the fetch failed and nothing is cached): then only the active experiment is
/// re-checked, against its stored manifest data.
pub fn run(manifest: Option<&Manifest>, run: &mut ManifestRun<'_>) -> ManifestOutcome {
    let mut outcome = ManifestOutcome::default();
    let manifest = match manifest {
        Some(m) if !m.is_supported() => {
            outcome.ignored_reason = Some(unsupported_reason(m));
            None
        }
        other => other,
    };
    if let Some(manifest) = manifest {
        entries::merge(manifest, run.entries, run.random, run.now);
    }
    uninstall_inactive(run, &mut outcome.problems);
    entries::expire(manifest, run.entries, run.now);
    keep_one_active(manifest, run, &mut outcome.problems);
    recheck_active(run, &mut outcome.problems);
    if run.enabled
        && active_id(run.entries).is_none()
        && let Some(manifest) = manifest
    {
        start_first_applicable(manifest, run);
    }
    outcome.active = active_id(run.entries);
    outcome.next_wake_up = next_wake_up(manifest, run);
    outcome
}

/// Stops the active experiment with `kind` (the reference's `disableExperiment`), removing its
/// package. Returns whether an experiment was active. Nothing else is evaluated: the caller
/// runs [`run`] when it wants another experiment to start.
pub fn disable_active(run: &mut ManifestRun<'_>, kind: TerminationKind) -> bool {
    match active_id(run.entries) {
        Some(id) => {
            // A failed uninstall stays recorded on the entry and is retried by the next run.
            let _ = stop(run, &id, kind, None);
            true
        }
        None => false,
    }
}

/// The telemetry environment annotations: the active experiment, if any, as `{branch, type:
/// "manifest-experiment"}`, with the branch it set for itself or [`DEFAULT_BRANCH`].
pub fn annotations(entries: &BTreeMap<String, ManifestEntry>) -> BTreeMap<String, Annotation> {
    entries
        .values()
        .filter(|entry| entry.enabled)
        .map(|entry| {
            let annotation = Annotation {
                branch: entry
                    .branch
                    .clone()
                    .unwrap_or_else(|| DEFAULT_BRANCH.to_owned()),
                kind: ANNOTATION_TYPE.to_owned(),
            };
            (entry.id.clone(), annotation)
        })
        .collect()
}

/// The experiment id is not known to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no manifest experiment `{0}` is known")]
pub struct UnknownExperiment(pub String);

/// Records the branch an experiment chose for itself (the reference's `setExperimentBranch`):
/// it shows in [`annotations`] and survives restarts with the entry.
pub fn set_branch(
    entries: &mut BTreeMap<String, ManifestEntry>,
    id: &str,
    branch: &str,
) -> Result<(), UnknownExperiment> {
    match entries.get_mut(id) {
        Some(entry) => {
            entry.branch = Some(branch.to_owned());
            Ok(())
        }
        None => Err(UnknownExperiment(id.to_owned())),
    }
}

fn unsupported_reason(manifest: &Manifest) -> String {
    match &manifest.version {
        Some(version) => format!("unsupported manifest version {version}"),
        None => "the manifest has no version".to_owned(),
    }
}

fn active_id(entries: &BTreeMap<String, ManifestEntry>) -> Option<String> {
    entries.values().find(|e| e.enabled).map(|e| e.id.clone())
}

/// Packages of entries that are not active are leftovers (a failed uninstall, a state written
/// half-way): remove them before anything new is installed.
fn uninstall_inactive(run: &mut ManifestRun<'_>, problems: &mut Vec<String>) {
    for entry in run.entries.values_mut().filter(|e| !e.enabled) {
        let Some(package) = entry.installed.take() else {
            continue;
        };
        if let Err(e) = run.installer.uninstall(&entry.id, &package) {
            problems.push(format!(
                "cannot uninstall the package of `{}`: {e}",
                entry.id
            ));
            entry.installed = Some(package);
        }
    }
}

/// Only a corrupted or hand-edited state can have more than one active entry (the reference
/// treats it as a fatal error). Keep the one with the highest priority (earliest in the
/// manifest, then lowest id) and stop the others with `RECHECK`.
fn keep_one_active(
    manifest: Option<&Manifest>,
    run: &mut ManifestRun<'_>,
    problems: &mut Vec<String>,
) {
    let position = |id: &str| {
        manifest
            .and_then(|m| m.experiments.iter().position(|e| e.id == id))
            .unwrap_or(usize::MAX)
    };
    let mut active: Vec<String> = run
        .entries
        .values()
        .filter(|e| e.enabled)
        .map(|e| e.id.clone())
        .collect();
    if active.len() < 2 {
        return;
    }
    active.sort_by_key(|id| position(id));
    for id in active.iter().skip(1) {
        let reason = ("another-experiment-active", None);
        stop_noting(run, id, TerminationKind::Recheck, Some(reason), problems);
    }
}

fn recheck_active(run: &mut ManifestRun<'_>, problems: &mut Vec<String>) {
    let Some(id) = active_id(run.entries) else {
        return;
    };
    let experiment = run.entries.get(&id).and_then(entries::stored_experiment);
    let Some(experiment) = experiment else {
        // Without valid data neither its conditions nor its expiry are known; running it on
        // would be unbounded.
        let reason = ("manifest-data", None);
        stop_noting(run, &id, TerminationKind::Recheck, Some(reason), problems);
        return;
    };
    let facts = entries::facts(run.entries);
    let input = EvalInput {
        context: run.context,
        facts: &facts,
        now: run.now,
        js_filter: run.js_filter,
    };
    if let Err(rejection) = evaluate::check(&experiment, &input) {
        let (kind, reason) = if rejection.is_expiry() {
            (TerminationKind::Expired, None)
        } else {
            (TerminationKind::Recheck, Some(rejection_reason(&rejection)))
        };
        stop_noting(run, &id, kind, reason, problems);
        return;
    }
    if !run.enabled {
        stop_noting(run, &id, TerminationKind::ServiceDisabled, None, problems);
        return;
    }
    update_package(run, &id, &experiment, problems);
}

/// Brings the active experiment's package in line with its manifest data (rule 10: a changed
/// `xpiURL` or `xpiHash` re-installs). The installer replaces the old package only once the
/// new one is downloaded, verified and unpacked; if that fails the old package keeps running
/// and the update is retried on the next run.
fn update_package(
    run: &mut ManifestRun<'_>,
    id: &str,
    experiment: &ManifestExperiment,
    problems: &mut Vec<String>,
) {
    let hash = experiment.xpi_hash.to_string();
    let Some(entry) = run.entries.get_mut(id) else {
        return;
    };
    let up_to_date = !entry.needs_update
        && entry
            .installed
            .as_ref()
            .is_some_and(|p| p.url == experiment.xpi_url && p.hash.eq_ignore_ascii_case(&hash));
    if up_to_date {
        return;
    }
    match run.installer.install(id, &experiment.xpi_url, &hash) {
        Ok(package) => {
            let old = entry.installed.replace(package);
            entry.needs_update = false;
            entry.last_changed = run.now;
            let new_location = entry.installed.as_ref().map(|p| p.location.as_str());
            if let Some(old) = old
                && Some(old.location.as_str()) != new_location
                && let Err(e) = run.installer.uninstall(id, &old)
            {
                problems.push(format!("cannot uninstall the old package of `{id}`: {e}"));
            }
        }
        Err(e) => {
            problems.push(format!("cannot update the package of `{id}`: {e}"));
            run.events.push(install_failure_event(id, &e));
        }
    }
}

/// A reason for an event: the name, and a detail (a thrown filter's message).
type Reason<'r> = (&'r str, Option<String>);

fn rejection_reason(rejection: &Rejection) -> Reason<'static> {
    let detail = match rejection {
        Rejection::JsfilterThrew(message) if !message.is_empty() => Some(message.clone()),
        _ => None,
    };
    (rejection.name(), detail)
}

/// [`stop`], noting a failed uninstall among the run's problems.
fn stop_noting(
    run: &mut ManifestRun<'_>,
    id: &str,
    kind: TerminationKind,
    reason: Option<Reason<'_>>,
    problems: &mut Vec<String>,
) {
    if let Err(e) = stop(run, id, kind, reason) {
        problems.push(format!("cannot uninstall the package of `{id}`: {e}"));
    }
}

/// Stops an active entry: uninstalls its package (a failure leaves it recorded for a retry),
/// records the end, logs the termination.
fn stop(
    run: &mut ManifestRun<'_>,
    id: &str,
    kind: TerminationKind,
    reason: Option<Reason<'_>>,
) -> Result<(), InstallError> {
    let Some(entry) = run.entries.get_mut(id) else {
        return Ok(());
    };
    entry.enabled = false;
    entry.needs_update = false;
    entry.end_date = Some(run.now);
    entry.last_changed = run.now;
    let mut result = Ok(());
    if let Some(package) = entry.installed.take()
        && let Err(e) = run.installer.uninstall(id, &package)
    {
        entry.installed = Some(package);
        result = Err(e);
    }
    let mut event =
        TelemetryEvent::new("termination", EVENT_OBJECT, id).with("kind", kind.as_str());
    if let Some((name, detail)) = reason {
        event = event.with("reason", name);
        if let Some(detail) = detail {
            event = event.with("detail", detail);
        }
    }
    run.events.push(event);
    result
}

fn start_first_applicable(manifest: &Manifest, run: &mut ManifestRun<'_>) {
    let facts = entries::facts(run.entries);
    for experiment in &manifest.experiments {
        let input = EvalInput {
            context: run.context,
            facts: &facts,
            now: run.now,
            js_filter: run.js_filter,
        };
        match evaluate::check(experiment, &input) {
            Ok(()) => {}
            Err(Rejection::WasActive) => continue,
            Err(rejection) => {
                let (name, detail) = rejection_reason(&rejection);
                let mut event =
                    activation_event(&experiment.id, ActivationKind::Rejected).with("reason", name);
                if let Some(detail) = detail {
                    event = event.with("detail", detail);
                }
                run.events.push(event);
                continue;
            }
        }
        let Some(entry) = run.entries.get_mut(&experiment.id) else {
            continue;
        };
        let hash = experiment.xpi_hash.to_string();
        match run
            .installer
            .install(&experiment.id, &experiment.xpi_url, &hash)
        {
            Ok(package) => {
                entry.enabled = true;
                entry.start_date = Some(run.now);
                entry.end_date = None;
                entry.failed_start = false;
                entry.needs_update = false;
                entry.installed = Some(package);
                entry.last_changed = run.now;
                run.events
                    .push(activation_event(&experiment.id, ActivationKind::Activated));
                return;
            }
            Err(e) => {
                entry.failed_start = true;
                entry.last_changed = run.now;
                run.events.push(install_failure_event(&experiment.id, &e));
            }
        }
    }
}

fn activation_event(id: &str, kind: ActivationKind) -> TelemetryEvent {
    TelemetryEvent::new("activation", EVENT_OBJECT, id).with("kind", kind.as_str())
}

fn install_failure_event(id: &str, error: &InstallError) -> TelemetryEvent {
    activation_event(id, ActivationKind::InstallFailure)
        .with("reason", error.code())
        .with("detail", error.to_string())
}

/// The reference scheduler (the core's [`evaluate::next_wake_up`] over the manifest), plus the
/// expiry of an active experiment the manifest does not list, which only the client knows.
/// Nothing is scheduled while the service is disabled.
fn next_wake_up(manifest: Option<&Manifest>, run: &ManifestRun<'_>) -> Option<Timestamp> {
    if !run.enabled {
        return None;
    }
    let facts = entries::facts(run.entries);
    let from_manifest = manifest.and_then(|m| evaluate::next_wake_up(m, &facts, run.now));
    let unlisted_expiry = run
        .entries
        .values()
        .filter(|e| e.enabled && manifest.is_none_or(|m| m.experiment(&e.id).is_none()))
        .filter_map(|e| {
            let experiment = entries::stored_experiment(e)?;
            entries::expiry(&experiment, e.start_date.unwrap_or(e.last_changed))
        })
        .filter(|&at| at > run.now);
    from_manifest.into_iter().chain(unlisted_expiry).min()
}
