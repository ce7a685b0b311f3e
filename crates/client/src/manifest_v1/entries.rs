//! The client's entries for Manifest v1 experiments: merging a manifest into them, forgetting
//! old ones, and the facts the core's checks read from them.

use std::collections::{BTreeMap, HashSet};

use flightdeck_core::evaluate::{ClientFacts, StartedExperiment};
use flightdeck_core::model::manifest_v1::{self, Manifest, ManifestExperiment};
use jiff::{SignedDuration, Timestamp};

use crate::RandomSource;
use crate::state::ManifestEntry;

/// How long an experiment that ran is remembered after it was last changed or last seen in the
/// manifest, while the manifest no longer lists it (the reference's `KEEP_HISTORY_N_DAYS`).
pub const HISTORY_RETENTION: SignedDuration = SignedDuration::from_hours(180 * 24);

/// How long the entry (and so the random value) of an experiment that never ran is kept after
/// it left the manifest (rule 7: "at least 30 days").
pub const RANDOM_VALUE_RETENTION: SignedDuration = SignedDuration::from_hours(30 * 24);

/// Merges the valid experiments of a supported manifest into `entries`: a new id gets an entry
/// with a random value drawn now; a known id gets the new manifest data. A known entry whose
/// package (`xpiURL` or `xpiHash`) changed is marked `needs_update` when it is active (rule 10)
/// and loses `failed_start` (a new package may install). Entries the manifest lists but
/// validation rejected keep their last valid data and only count as seen.
pub(super) fn merge(
    manifest: &Manifest,
    entries: &mut BTreeMap<String, ManifestEntry>,
    random: &mut dyn RandomSource,
    now: Timestamp,
) {
    for experiment in &manifest.experiments {
        let data = serde_json::to_value(experiment).ok();
        match entries.get_mut(&experiment.id) {
            Some(entry) => {
                let changed = package_changed(entry.manifest_data.as_ref(), experiment);
                if changed && entry.enabled {
                    entry.needs_update = true;
                }
                if changed {
                    entry.failed_start = false;
                }
                entry.manifest_data = data;
                entry.last_changed = now;
                entry.last_in_manifest = Some(now);
            }
            None => {
                let entry = ManifestEntry {
                    id: experiment.id.clone(),
                    enabled: false,
                    start_date: None,
                    end_date: None,
                    manifest_data: data,
                    random_value: sanitize(random.uniform()),
                    failed_start: false,
                    needs_update: false,
                    branch: None,
                    installed: None,
                    last_changed: now,
                    last_in_manifest: Some(now),
                };
                entries.insert(experiment.id.clone(), entry);
            }
        }
    }
    for id in manifest.rejected.iter().filter_map(|r| r.id.as_deref()) {
        if let Some(entry) = entries.get_mut(id) {
            entry.last_in_manifest = Some(now);
        }
    }
}

/// Whether the manifest changed the package of an entry: another URL, or another hash
/// (hex digits compared without regard to case). Unknown earlier data counts as a change.
fn package_changed(previous: Option<&serde_json::Value>, experiment: &ManifestExperiment) -> bool {
    let Some(previous) = previous else {
        return true;
    };
    let url = previous.get("xpiURL").and_then(serde_json::Value::as_str);
    let hash = previous.get("xpiHash").and_then(serde_json::Value::as_str);
    let same_url = url == Some(experiment.xpi_url.as_str());
    let same_hash = hash.is_some_and(|h| h.eq_ignore_ascii_case(&experiment.xpi_hash.to_string()));
    !(same_url && same_hash)
}

/// A random value from a source that broke its contract still lands in [0, 1] (the reference
/// clamps its test override the same way: NaN or negative → 0, above 1 → 1).
fn sanitize(value: f64) -> f64 {
    if value.is_nan() || value < 0.0 {
        0.0
    } else {
        value.min(1.0)
    }
}

/// Forgets entries nobody needs any more. `manifest` is the supported manifest of this run, if
/// there is one. Never removes the active entry or an entry whose package is still installed
/// (its uninstall is retried first).
///
/// - An experiment that ran (has a start date) is kept while the manifest lists it; otherwise
///   it is dropped [`HISTORY_RETENTION`] after `last_changed`. Without a manifest the same
///   rule applies (the reference drops old history when it loads its cache).
/// - An experiment that never ran is kept while the manifest lists it and for
///   [`RANDOM_VALUE_RETENTION`] after it was last listed. Without a manifest it is kept: that
///   it left the manifest is not known.
pub(super) fn expire(
    manifest: Option<&Manifest>,
    entries: &mut BTreeMap<String, ManifestEntry>,
    now: Timestamp,
) {
    let listed: Option<HashSet<&str>> = manifest.map(listed_ids);
    let elapsed = |since: Timestamp| now.duration_since(since);
    let keep = |id: &str, entry: &ManifestEntry| {
        if entry.enabled || entry.installed.is_some() {
            return true;
        }
        let is_listed = listed.as_ref().map(|ids| ids.contains(id));
        match (entry.start_date, is_listed) {
            (_, Some(true)) => true,
            (Some(_), _) => elapsed(entry.last_changed) <= HISTORY_RETENTION,
            (None, None) => true,
            (None, Some(false)) => {
                let last_seen = entry.last_in_manifest.unwrap_or(entry.last_changed);
                elapsed(last_seen) <= RANDOM_VALUE_RETENTION
            }
        }
    };
    entries.retain(|id, entry| keep(id, entry));
}

/// The ids a manifest lists, valid or rejected by validation.
fn listed_ids(manifest: &Manifest) -> HashSet<&str> {
    manifest
        .experiments
        .iter()
        .map(|e| e.id.as_str())
        .chain(manifest.rejected.iter().filter_map(|r| r.id.as_deref()))
        .collect()
}

/// What the core's checks read from the entries: every random value, and every experiment that
/// ran, runs or failed to start. An entry that ran counts as ended even if a later start failed,
/// so it can never start again.
pub(super) fn facts(entries: &BTreeMap<String, ManifestEntry>) -> ClientFacts {
    let mut facts = ClientFacts::default();
    for (id, entry) in entries {
        facts.random_values.insert(id.clone(), entry.random_value);
        if entry.enabled || entry.start_date.is_some() || entry.failed_start {
            facts.started_experiments.insert(
                id.clone(),
                StartedExperiment {
                    start_time: entry.start_date.unwrap_or(entry.last_changed),
                    active: entry.enabled,
                    failed_start: entry.failed_start && entry.start_date.is_none(),
                },
            );
        }
    }
    facts
}

/// The experiment as last seen in a manifest, read back from the entry's stored data. `None`
/// when the entry has none or it is no longer a valid experiment.
pub(super) fn stored_experiment(entry: &ManifestEntry) -> Option<ManifestExperiment> {
    let data = entry.manifest_data.as_ref()?;
    // The model has a single parser, for whole documents: wrap the entry in one.
    let text = serde_json::json!({"version": 1, "experiments": [data]}).to_string();
    let parsed = manifest_v1::parse(&format!("state:{}", entry.id), &text);
    let mut experiments = parsed.value?.experiments;
    match experiments.len() {
        1 => experiments.pop(),
        _ => None,
    }
}

/// When an experiment activated at `start` stops by itself: the earlier of `endTime` and
/// start + `maxActiveSeconds`.
pub(super) fn expiry(experiment: &ManifestExperiment, start: Timestamp) -> Option<Timestamp> {
    let end = experiment
        .end_time
        .and_then(|s| i64::try_from(s).ok())
        .and_then(|s| Timestamp::from_second(s).ok());
    // Inclusive check: still active at start + max, expired one second later.
    let max_active = experiment
        .max_active_seconds
        .and_then(|s| i64::try_from(s).ok())
        .and_then(|s| s.checked_add(1))
        .and_then(|s| start.checked_add(SignedDuration::from_secs(s)).ok());
    match (end, max_active) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FixedRandom;
    use flightdeck_core::model::manifest_v1::XpiHash;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn experiment(id: &str, url: &str, hash: &str) -> ManifestExperiment {
        ManifestExperiment::new(id, url, XpiHash::parse(hash).unwrap())
    }

    const H1: &str = "sha1:cb1eb32b89d86d78b7326f416cf404548c5e0099";
    const H2: &str = "sha1:0000000000000000000000000000000000000001";

    fn manifest(experiments: Vec<ManifestExperiment>) -> Manifest {
        Manifest {
            version: Some(1.into()),
            experiments,
            ..Manifest::default()
        }
    }

    #[test]
    fn package_change_detection() {
        let e = experiment("a", "https://x/a.xpi", H1);
        let data = serde_json::to_value(&e).unwrap();
        assert!(!package_changed(Some(&data), &e));
        let upper = experiment(
            "a",
            "https://x/a.xpi",
            &H1.to_ascii_uppercase().replace("SHA1", "sha1"),
        );
        assert!(!package_changed(Some(&data), &upper));
        assert!(package_changed(
            Some(&data),
            &experiment("a", "https://x/b.xpi", H1)
        ));
        assert!(package_changed(
            Some(&data),
            &experiment("a", "https://x/a.xpi", H2)
        ));
        assert!(package_changed(None, &e));
    }

    #[test]
    fn stored_data_round_trips() {
        let mut e = experiment("a", "https://x/a.xpi", H1);
        e.end_time = Some(2_000_000_000);
        e.os = Some(vec!["Linux".into()]);
        e.extra.insert("future".into(), 1.into());
        let mut entries = BTreeMap::new();
        merge(
            &manifest(vec![e.clone()]),
            &mut entries,
            &mut FixedRandom::new(vec![0.25]),
            ts("2026-01-01T00:00:00Z"),
        );
        let entry = &entries["a"];
        assert_eq!(entry.random_value, 0.25);
        assert_eq!(stored_experiment(entry), Some(e));
    }

    #[test]
    fn broken_random_sources_are_clamped() {
        assert_eq!(sanitize(f64::NAN), 0.0);
        assert_eq!(sanitize(-0.5), 0.0);
        assert_eq!(sanitize(7.0), 1.0);
        assert_eq!(sanitize(0.5), 0.5);
    }

    #[test]
    fn expiry_is_the_earlier_limit() {
        let start = ts("2026-01-01T00:00:00Z");
        let mut e = experiment("a", "u", H1);
        assert_eq!(expiry(&e, start), None);
        e.max_active_seconds = Some(86_400);
        assert_eq!(expiry(&e, start), Some(ts("2026-01-02T00:00:01Z")));
        e.end_time = Some(u64::try_from(ts("2026-01-01T12:00:00Z").as_second()).unwrap());
        assert_eq!(expiry(&e, start), Some(ts("2026-01-01T12:00:00Z")));
    }
}
