//! Evaluation of Manifest v1 experiments, with the reference client's reasons.
//!
//! [`evaluate`] decides, for every valid entry of a manifest, whether it is the experiment this
//! client should be running. It follows the reference client (Experiments.jsm):
//!
//! 1. A manifest whose version is not `1` is ignored (rule 8): every entry gets
//!    `reason: "manifest-version"`.
//! 2. Each entry is checked on its own by [`check`]: the checks run in the reference order and
//!    the first failing one gives the reason (its name, exactly as the reference logs it).
//! 3. At most one experiment is active. Among the applicable entries, the one that gets
//!    `matched: true` is the currently active experiment (from [`ClientFacts::started_experiments`])
//!    if it is still applicable, otherwise the first applicable entry in manifest order. Every
//!    other applicable entry gets `reason: "priority"`. When the active experiment is missing
//!    from the manifest (removed, or rejected by validation) it keeps running (rule 2), so no
//!    entry matches and every applicable one gets `"priority"`; the client runtime stops it once
//!    its remembered expiry passes.
//!
//! 4. An entry validation rejected ([`Manifest::rejected`]) gets `reason: "invalid: <first
//!    error>"`, in its place in manifest order, whatever the manifest version. It takes no part
//!    in priority. When it is the client's running experiment, the running experiment counts
//!    as missing from the manifest (rule 2 above): it keeps running, and nothing else matches.
//!    Its `id` is the entry's `id` when that is a non-empty string, else `<file>#<index>`
//!    (the 0-based place in `experiments`).
//!
//! The matched entry's `value` is `{"xpiURL": …, "xpiHash": …}` (what the client installs and
//! verifies); `branch` is always `None`.
//!
//! Reasons for the `jsfilter` checks: `"jsfilter-false"` (a falsy result), `"jsfilter-threw:
//! <message>"` (the reference logs `["jsfilter-threw", message]`; here the message follows a
//! colon, or the reason is just `"jsfilter-threw"` when the message is empty) and
//! `"jsfilter-evalfailed"` (the engine's message is not included, as in the reference).

use std::cell::OnceCell;
use std::cmp::Ordering;
use std::fmt;

use crate::context::{ClientContext, PrefValue};
use crate::evaluate::{
    ClientFacts, EvalInput, ItemResult, JsFilterOutcome, StartedExperiment, in_source_order,
    rejected_result, valid_places,
};
use crate::model::manifest_v1::{Manifest, ManifestExperiment};

/// The `kind` of every [`ItemResult`] produced here.
pub const KIND: &str = "manifest-experiment";

/// The preference whose boolean value is passed to `jsfilter` functions as
/// `healthReportSubmissionEnabled`.
pub const HEALTH_REPORT_UPLOAD_PREF: &str = "datareporting.healthreport.uploadEnabled";

/// Why an experiment entry is not the one to run. [`Rejection::reason`] is the reason string of
/// [`ItemResult`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// The manifest's version is not 1, so the whole manifest is ignored.
    ManifestVersion,
    /// The experiment ran on this client before and ended; it never runs twice.
    WasActive,
    /// Its last installation failed (cleared by the client when the XPI changes).
    FailedStart,
    /// `disabled` is true.
    Disabled,
    /// `frozen` is true and the experiment is not already running.
    Frozen,
    /// Too early: now < `startTime`.
    StartTime,
    /// Over: now ≥ `endTime`.
    EndTime,
    /// Not started yet and now > `maxStartTime`.
    MaxStartTime,
    /// Running for longer than `maxActiveSeconds`.
    MaxActiveSeconds,
    /// The application name is not in `appName`.
    AppName,
    /// The build id is below `minBuildID`.
    MinBuildId,
    /// The build id is above `maxBuildID`.
    MaxBuildId,
    /// The build id is not in `buildIDs`.
    BuildIds,
    /// The operating system is not in `os`.
    Os,
    /// The update channel is not in `channel`.
    Channel,
    /// The locale is not in `locale`.
    Locale,
    /// The persisted random value is above `sample`, or there is none.
    Sample,
    /// The application version is not in `version`.
    Version,
    /// The application version is below `minVersion`.
    MinVersion,
    /// The application version is above `maxVersion`.
    MaxVersion,
    /// `filter(context)` returned a falsy value.
    JsfilterFalse,
    /// `filter(context)` threw; the thrown message.
    JsfilterThrew(String),
    /// The `jsfilter` source could not be evaluated; the engine's message (not in the reason).
    JsfilterEvalFailed(String),
    /// Applicable, but another experiment has the single active slot.
    Priority,
}

impl Rejection {
    /// The check name, as the reference client logs it (`"startTime"`, `"jsfilter-threw"`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Rejection::ManifestVersion => "manifest-version",
            Rejection::WasActive => "was-active",
            Rejection::FailedStart => "failedStart",
            Rejection::Disabled => "disabled",
            Rejection::Frozen => "frozen",
            Rejection::StartTime => "startTime",
            Rejection::EndTime => "endTime",
            Rejection::MaxStartTime => "maxStartTime",
            Rejection::MaxActiveSeconds => "maxActiveSeconds",
            Rejection::AppName => "appName",
            Rejection::MinBuildId => "minBuildID",
            Rejection::MaxBuildId => "maxBuildID",
            Rejection::BuildIds => "buildIDs",
            Rejection::Os => "os",
            Rejection::Channel => "channel",
            Rejection::Locale => "locale",
            Rejection::Sample => "sample",
            Rejection::Version => "version",
            Rejection::MinVersion => "minVersion",
            Rejection::MaxVersion => "maxVersion",
            Rejection::JsfilterFalse => "jsfilter-false",
            Rejection::JsfilterThrew(_) => "jsfilter-threw",
            Rejection::JsfilterEvalFailed(_) => "jsfilter-evalfailed",
            Rejection::Priority => "priority",
        }
    }

    /// The reason string for [`ItemResult::reason`]: the check name, and for a thrown filter
    /// `jsfilter-threw: <message>`.
    pub fn reason(&self) -> String {
        match self {
            Rejection::JsfilterThrew(message) if !message.is_empty() => {
                format!("jsfilter-threw: {message}")
            }
            other => other.name().to_owned(),
        }
    }

    /// Whether stopping an active experiment for this reason is an expiry (termination kind
    /// `EXPIRED` in the reference) rather than a recheck (`RECHECK`).
    pub fn is_expiry(&self) -> bool {
        matches!(self, Rejection::EndTime | Rejection::MaxActiveSeconds)
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason())
    }
}

/// Evaluates every experiment of `manifest` for one client (see the module documentation for
/// the rules). Results are in manifest order, one per entry, including the entries validation
/// rejected.
pub fn evaluate(manifest: &Manifest, input: &EvalInput<'_>) -> Vec<ItemResult> {
    let valid = evaluate_valid(manifest, input);
    let invalid = manifest
        .rejected
        .iter()
        .map(|item| {
            let result = rejected_result(item, KIND, || format!("{}#{}", item.file, item.index));
            (item.index, result)
        })
        .collect();
    in_source_order(
        valid_places(&manifest.rejected).zip(valid).collect(),
        invalid,
    )
}

/// The results of the valid entries, in manifest order.
fn evaluate_valid(manifest: &Manifest, input: &EvalInput<'_>) -> Vec<ItemResult> {
    if !manifest.is_supported() {
        return manifest
            .experiments
            .iter()
            .map(|e| rejected(e, &Rejection::ManifestVersion))
            .collect();
    }
    let js_context = OnceCell::new();
    let outcomes: Vec<Result<(), Rejection>> = manifest
        .experiments
        .iter()
        .map(|e| check_with(e, input, &js_context))
        .collect();

    // The winner is picked by position, so that even a model with duplicate ids (which
    // `parse` rejects) never matches twice.
    let applicable = || {
        outcomes
            .iter()
            .enumerate()
            .filter(|(_, outcome)| outcome.is_ok())
            .map(|(index, _)| index)
    };
    let is_active = |index: &usize| {
        manifest
            .experiments
            .get(*index)
            .is_some_and(|e| active_entry(input.facts, &e.id).is_some())
    };
    let active_elsewhere = input.facts.started_experiments.iter().any(|(id, started)| {
        started.active && !started.failed_start && manifest.experiment(id).is_none()
    });
    let winner = applicable().find(is_active).or_else(|| {
        if active_elsewhere {
            None
        } else {
            applicable().next()
        }
    });

    manifest
        .experiments
        .iter()
        .zip(outcomes)
        .enumerate()
        .map(|(index, (e, outcome))| match outcome {
            Ok(()) if Some(index) == winner => ItemResult {
                id: e.id.clone(),
                kind: KIND.to_owned(),
                matched: true,
                reason: None,
                branch: None,
                value: Some(serde_json::json!({
                    "xpiURL": e.xpi_url,
                    "xpiHash": e.xpi_hash.to_string(),
                })),
            },
            Ok(()) => rejected(e, &Rejection::Priority),
            Err(rejection) => rejected(e, &rejection),
        })
        .collect()
}

fn rejected(experiment: &ManifestExperiment, rejection: &Rejection) -> ItemResult {
    ItemResult {
        id: experiment.id.clone(),
        kind: KIND.to_owned(),
        matched: false,
        reason: Some(rejection.reason()),
        branch: None,
        value: None,
    }
}

/// The client's record of a running (not ended, not failed) experiment.
fn active_entry<'a>(facts: &'a ClientFacts, id: &str) -> Option<&'a StartedExperiment> {
    facts
        .started_experiments
        .get(id)
        .filter(|s| s.active && !s.failed_start)
}

/// Whether one experiment is applicable to the client, ignoring the manifest version and the
/// one-active-experiment rule. The first failing check, in the reference order, is returned.
///
/// Conditions a field does not state pass. As in the reference (JavaScript truthiness), an empty
/// string in `minVersion`, `maxVersion`, `minBuildID`, `maxBuildID` or `jsfilter`, and a
/// `maxStartTime` of 0, count as absent, while an empty list is present and matches nothing.
/// A condition on a client property the context does not give (no `appName`, `version`, …)
/// fails. `sample` needs the persisted random value for the experiment id, taken from
/// [`ClientFacts::random_values`] or else the context's `randomValues`; without one, `sample`
/// fails (the client draws and persists a value when it first sees the id).
pub fn check(experiment: &ManifestExperiment, input: &EvalInput<'_>) -> Result<(), Rejection> {
    check_with(experiment, input, &OnceCell::new())
}

fn check_with(
    e: &ManifestExperiment,
    input: &EvalInput<'_>,
    js_context: &OnceCell<serde_json::Value>,
) -> Result<(), Rejection> {
    let started = input.facts.started_experiments.get(&e.id);
    if started.is_some_and(|s| !s.active && !s.failed_start) {
        return Err(Rejection::WasActive);
    }
    require(
        !started.is_some_and(|s| s.failed_start),
        Rejection::FailedStart,
    )?;
    // From here on, a record means the experiment is running now.
    let running = started;
    require(e.disabled != Some(true), Rejection::Disabled)?;
    require(
        e.frozen != Some(true) || running.is_some(),
        Rejection::Frozen,
    )?;

    let now = input.now.as_nanosecond();
    let at = |seconds: u64| i128::from(seconds) * 1_000_000_000;
    require(
        e.start_time.is_none_or(|start| now >= at(start)),
        Rejection::StartTime,
    )?;
    require(
        e.end_time.is_none_or(|end| now < at(end)),
        Rejection::EndTime,
    )?;
    require(
        running.is_some()
            || e.max_start_time
                .is_none_or(|max| max == 0 || now <= at(max)),
        Rejection::MaxStartTime,
    )?;
    require(
        match (running, e.max_active_seconds) {
            (Some(s), Some(max)) => now <= s.start_time.as_nanosecond() + at(max),
            _ => true,
        },
        Rejection::MaxActiveSeconds,
    )?;

    let client = input.context;
    require(listed(&e.app_name, &client.app_name), Rejection::AppName)?;
    require(
        bound(&e.min_build_id, &client.build_id, |build, min| build >= min),
        Rejection::MinBuildId,
    )?;
    require(
        bound(&e.max_build_id, &client.build_id, |build, max| build <= max),
        Rejection::MaxBuildId,
    )?;
    require(listed(&e.build_ids, &client.build_id), Rejection::BuildIds)?;
    require(listed(&e.os, &client.os), Rejection::Os)?;
    require(listed(&e.channel, &client.channel), Rejection::Channel)?;
    require(listed(&e.locale, &client.locale), Rejection::Locale)?;
    let random_value = input
        .facts
        .random_values
        .get(&e.id)
        .or_else(|| client.random_values.get(&e.id));
    require(
        e.sample.is_none_or(|rate| {
            random_value.is_some_and(|value| crate::sampling::uniform_sample(*value, rate))
        }),
        Rejection::Sample,
    )?;
    require(listed(&e.version, &client.version), Rejection::Version)?;
    require(
        bound(&e.min_version, &client.version, |app, min| {
            crate::version::compare_toolkit(app, min) != Ordering::Less
        }),
        Rejection::MinVersion,
    )?;
    require(
        bound(&e.max_version, &client.version, |app, max| {
            crate::version::compare_toolkit(app, max) != Ordering::Greater
        }),
        Rejection::MaxVersion,
    )?;

    match e.jsfilter.as_deref() {
        None | Some("") => Ok(()),
        Some(source) => {
            let context = js_context.get_or_init(|| jsfilter_context(client));
            match input.js_filter.run(source, context) {
                JsFilterOutcome::Truthy => Ok(()),
                JsFilterOutcome::Falsy => Err(Rejection::JsfilterFalse),
                JsFilterOutcome::Threw(message) => Err(Rejection::JsfilterThrew(message)),
                JsFilterOutcome::EvalFailed(message) => Err(Rejection::JsfilterEvalFailed(message)),
            }
        }
    }
}

fn require(passes: bool, rejection: Rejection) -> Result<(), Rejection> {
    if passes { Ok(()) } else { Err(rejection) }
}

/// An allow-list condition: absent passes; present (even empty) needs the client's value in it.
fn listed(list: &Option<Vec<String>>, client: &Option<String>) -> bool {
    match (list, client) {
        (None, _) => true,
        (Some(list), Some(value)) => list.iter().any(|item| item == value),
        (Some(_), None) => false,
    }
}

/// A bound condition: absent or empty passes; otherwise the client's value must satisfy it.
fn bound(limit: &Option<String>, client: &Option<String>, ok: impl Fn(&str, &str) -> bool) -> bool {
    match (limit.as_deref(), client.as_deref()) {
        (None | Some(""), _) => true,
        (Some(limit), Some(value)) => ok(value, limit),
        (Some(_), None) => false,
    }
}

/// The object passed to `filter(context)`, built from the client context:
///
/// | key | source | when missing |
/// |---|---|---|
/// | `telemetryEnvironment` | `telemetry.main.environment` (the late reference client's only key) | `{}` |
/// | `telemetryPayload` | `telemetry.main` (the main ping, as the early client passed it) | `{}` |
/// | `healthReportPayload` | `telemetry.healthReport` (there is no Health Report any more) | `{}` |
/// | `healthReportSubmissionEnabled` | preference `datareporting.healthreport.uploadEnabled` is `true` | `false` |
pub fn jsfilter_context(context: &ClientContext) -> serde_json::Value {
    let telemetry = context.telemetry.as_ref();
    let main = telemetry.and_then(|t| t.get("main"));
    let or_empty = |value: Option<&serde_json::Value>| {
        value
            .cloned()
            .unwrap_or_else(|| serde_json::Value::Object(serde_json::Map::new()))
    };
    let upload_enabled = context
        .prefs
        .get(HEALTH_REPORT_UPLOAD_PREF)
        .and_then(|entry| entry.effective())
        == Some(&PrefValue::Bool(true));
    serde_json::json!({
        "telemetryEnvironment": or_empty(main.and_then(|m| m.get("environment"))),
        "telemetryPayload": or_empty(main),
        "healthReportPayload": or_empty(telemetry.and_then(|t| t.get("healthReport"))),
        "healthReportSubmissionEnabled": upload_enabled,
    })
}

/// When the client should evaluate the manifest again, following the reference scheduler: the
/// earliest of these per-entry times that is later than `now`:
///
/// - a running experiment: `endTime`, or its start + `maxActiveSeconds`, whichever is first;
/// - an experiment that has not started (or failed to start): `startTime`;
/// - an experiment that ended: nothing (it never runs again).
///
/// `None` when nothing is scheduled, including for a manifest that is ignored because of its
/// version. Experiments missing from the manifest are not considered: their expiry is only
/// known to the client runtime, which schedules it itself.
pub fn next_wake_up(
    manifest: &Manifest,
    facts: &ClientFacts,
    now: jiff::Timestamp,
) -> Option<jiff::Timestamp> {
    if !manifest.is_supported() {
        return None;
    }
    let seconds = |s: u64| {
        i64::try_from(s)
            .ok()
            .and_then(|s| jiff::Timestamp::from_second(s).ok())
    };
    manifest
        .experiments
        .iter()
        .filter_map(|e| match facts.started_experiments.get(&e.id) {
            Some(s) if s.active && !s.failed_start => {
                // The `maxActiveSeconds` check is inclusive (still active at start + max),
                // so the experiment expires one second later: wake up then, or a host that
                // runs only at the reported time would see no change and nothing further.
                let expiry = e.max_active_seconds.and_then(|max| {
                    let max = jiff::SignedDuration::from_secs(i64::try_from(max).ok()?);
                    s.start_time
                        .checked_add(max)
                        .ok()?
                        .checked_add(jiff::SignedDuration::from_secs(1))
                        .ok()
                });
                let end = e.end_time.and_then(seconds);
                match (end, expiry) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            Some(s) if !s.failed_start => None,
            _ => e.start_time.and_then(seconds),
        })
        .filter(|&at| at > now)
        .min()
}

#[cfg(test)]
mod tests;
