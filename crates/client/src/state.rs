//! The client's persistent state: one versioned JSON file, written atomically.
//!
//! Everything the client must remember to undo what it applied lives here: rollout records
//! with each preference's `previousValue`, preference-experiment records with
//! `previousPreferenceValue`, Manifest v1 entries with their random value and start date,
//! the manifest cache metadata, the telemetry queue, and the journal of preference writes in
//! flight. Field names follow the reference systems (`previousValue`, `lastSeen`, …).
//!
//! Writes go to a temporary file in the same directory, are fsynced, then renamed over the
//! old file, and the directory is fsynced: a crash leaves either the old or the new state.
//! A file that cannot be read is moved aside (`state.json.corrupt-<time>`) and reported;
//! it is never silently dropped. A state written by an older version is migrated on load.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::events::QueuedEvent;
use crate::prefs::{Branch, PrefValue, PrefWrite};

/// The state version this build writes. Version 0 is the first layout (files without a
/// `version` key); see [`migrate`].
pub const STATE_VERSION: u32 = 1;

/// Everything the client persists.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientState {
    /// The layout version ([`STATE_VERSION`] when written by this build).
    pub version: u32,
    /// The client's randomization id, used when the context document gives no `userId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Preference rollouts, keyed by slug.
    pub rollouts: BTreeMap<String, RolloutRecord>,
    /// Preference experiments, keyed by slug (active and expired: an expired record is kept
    /// forever so the slug never enrolls again).
    pub experiments: BTreeMap<String, ExperimentRecord>,
    /// Manifest v1 experiment entries, keyed by experiment id.
    pub manifest_experiments: BTreeMap<String, ManifestEntry>,
    /// What the client knows of the manifest it last accepted.
    pub manifest: ManifestCache,
    /// Telemetry events not yet uploaded.
    pub telemetry: TelemetryQueue,
    /// Preference writes of a run that may not have reached the preference store yet. Replayed
    /// (they are absolute values, so replaying is harmless) before anything else reads prefs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub journal: Vec<PrefWrite>,
    /// The sequence number of the last journal written: a preference store that records
    /// journal marks ([`crate::prefs::PrefStore::mark_journal`]) holding this number already
    /// has the journal's writes, so it is not replayed (and may stay in the file until the
    /// next state write).
    #[serde(skip_serializing_if = "is_zero")]
    pub journal_seq: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The state of a rollout record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RolloutState {
    /// The rollout sets its preferences.
    Active,
    /// A rollback ran: previous values were restored, and the slug never runs again.
    RolledBack,
    /// Built-in defaults caught up with the rollout values; it no longer sets anything.
    Graduated,
}

impl RolloutState {
    /// `active`, `rolled-back` or `graduated`.
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutState::Active => "active",
            RolloutState::RolledBack => "rolled-back",
            RolloutState::Graduated => "graduated",
        }
    }
}

/// A stored preference rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutRecord {
    /// The rollout's slug.
    pub slug: String,
    /// Its state.
    pub state: RolloutState,
    /// The preferences it manages.
    pub preferences: Vec<RolloutPreference>,
    /// When it enrolled, if known (records of older versions lack it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolled_at: Option<Timestamp>,
}

/// One preference of a rollout record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutPreference {
    /// The preference name.
    pub preference_name: String,
    /// The value the rollout sets on the default branch.
    pub value: PrefValue,
    /// The built-in default-branch value without the rollout (`null` if none).
    pub previous_value: Option<PrefValue>,
}

/// A stored preference experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentRecord {
    /// The experiment's slug.
    pub slug: String,
    /// The action that enrolled it (`preference-experiment`, `multi-preference-experiment`).
    pub action_name: String,
    /// The chosen branch slug.
    pub branch: String,
    /// Whether it ended. Ended records are kept forever ("previously participated").
    pub expired: bool,
    /// The last time its recipe was seen matching.
    pub last_seen: Timestamp,
    /// After a filter or signature error, the time after which a further error ends it.
    #[serde(default)]
    pub temporary_error_deadline: Option<Timestamp>,
    /// `exp` or `exp-highpop`.
    pub experiment_type: String,
    /// Name shown to the user.
    #[serde(default)]
    pub user_facing_name: String,
    /// Description shown to the user.
    #[serde(default)]
    pub user_facing_description: String,
    /// The preferences it set, keyed by name.
    pub preferences: BTreeMap<String, ExperimentPreference>,
    /// When it enrolled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolled_at: Option<Timestamp>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    /// Why it ended (the `unenroll` event's reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<String>,
}

/// One preference of an experiment record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentPreference {
    /// The experimental value.
    pub preference_value: PrefValue,
    /// `boolean`, `integer` or `string`.
    pub preference_type: String,
    /// The branch the value is written to.
    pub preference_branch_type: Branch,
    /// The value on that branch before enrollment (`null` if none), restored at the end.
    pub previous_preference_value: Option<PrefValue>,
    /// Whether the value was changed by something else (the user), so the experiment does not
    /// own it any more.
    #[serde(default)]
    pub overridden: bool,
}

/// A Manifest v1 experiment as the client tracks it (the reference client's cache entry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestEntry {
    /// The experiment id.
    pub id: String,
    /// Whether it is the active experiment (at most one is).
    pub enabled: bool,
    /// When it was activated.
    #[serde(default)]
    pub start_date: Option<Timestamp>,
    /// When it ended.
    #[serde(default)]
    pub end_date: Option<Timestamp>,
    /// The manifest entry as last seen (raw JSON), kept while the experiment is absent from
    /// the manifest.
    #[serde(default)]
    pub manifest_data: Option<serde_json::Value>,
    /// The uniform random value in [0, 1) drawn when the id was first seen.
    pub random_value: f64,
    /// Whether its last start failed (package download, hash or install).
    #[serde(default)]
    pub failed_start: bool,
    /// Set when an active experiment's package changed and must be re-installed.
    #[serde(default)]
    pub needs_update: bool,
    /// The branch the experiment set for itself, if any.
    #[serde(default)]
    pub branch: Option<String>,
    /// The installed package, while one is installed.
    #[serde(default)]
    pub installed: Option<InstalledPackage>,
    /// The last time the entry was created or changed; history expiry counts from here.
    pub last_changed: Timestamp,
    /// When the entry was last present in the manifest (random values are kept at least
    /// 30 days after an experiment leaves the manifest).
    #[serde(default)]
    pub last_in_manifest: Option<Timestamp>,
}

/// A package installed for a Manifest v1 experiment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstalledPackage {
    /// The URL it was downloaded from.
    pub url: String,
    /// The verified hash (`sha1:<hex>` or `sha256:<hex>`).
    pub hash: String,
    /// Where it was unpacked (relative to the profile for the reference installer).
    pub location: String,
}

/// Metadata of the last accepted manifest. The manifest text itself is kept next to the state
/// (see [`crate::manifest`]) so the state file stays small.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ManifestCache {
    /// The serial of the last accepted signed manifest; an older one is a replay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<u64>,
    /// The content hash (hex SHA-256 of the signed canonical bytes, see
    /// [`crate::manifest::Loaded::content_sha256`]) of the last accepted manifest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The HTTP entity tag of the last accepted manifest, sent as `If-None-Match`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The URL it came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// When it was accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<Timestamp>,
    /// Consecutive failed fetches (drives the backoff).
    pub failures: u32,
    /// No fetch before this time (backoff after failures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_fetch_at: Option<Timestamp>,
    /// The last problem with a fetched or loaded manifest, for `client status`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Telemetry events waiting for upload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TelemetryQueue {
    /// The sequence number the next event gets.
    pub next_seq: u64,
    /// Queued events, oldest first.
    pub pending: Vec<QueuedEvent>,
    /// Consecutive failed uploads (drives the backoff).
    pub failures: u32,
    /// No upload before this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_upload_at: Option<Timestamp>,
}

impl ClientState {
    /// A fresh state of the current version.
    pub fn new() -> ClientState {
        ClientState {
            version: STATE_VERSION,
            ..ClientState::default()
        }
    }

    /// Which branch and type each preference managed by an active record is on, for the
    /// conflict checks: `(slug, branch)` per preference name.
    pub fn active_experiment_prefs(&self) -> BTreeMap<&str, (&str, Branch)> {
        let mut out = BTreeMap::new();
        for record in self.experiments.values().filter(|r| !r.expired) {
            for (name, pref) in &record.preferences {
                out.insert(
                    name.as_str(),
                    (record.slug.as_str(), pref.preference_branch_type),
                );
            }
        }
        out
    }
}

/// How far the `lastSeen` of an experiment record on disk may lag behind the one in memory
/// before a run that changed nothing else writes the state (see
/// [`ClientState::differs_from_persisted`]).
pub const LAST_SEEN_RESOLUTION: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

impl ClientState {
    /// Whether this state (at the end of a run) differs from `persisted` (the state the run
    /// loaded, as it is on disk) in anything that must be written.
    ///
    /// Everything counts except an experiment record's `lastSeen` that moved forward by less
    /// than [`LAST_SEEN_RESOLUTION`]: Normandy bumps it each time the recipe is seen, but no
    /// decision reads it (it is shown by `client status`), and Firefox itself writes it with a
    /// deferred save that a crash can lose. So a steady run, whose only change is that
    /// bookkeeping, needs no fsync'd write; the value on disk is at most a day old.
    pub fn differs_from_persisted(&self, mut persisted: ClientState) -> bool {
        for (slug, record) in &mut persisted.experiments {
            if let Some(current) = self.experiments.get(slug)
                && current.last_seen >= record.last_seen
                && current.last_seen.duration_since(record.last_seen) < LAST_SEEN_RESOLUTION
            {
                record.last_seen = current.last_seen;
            }
        }
        persisted != *self
    }
}

/// Why the state could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file could not be read, written or moved.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The state could not be serialised.
    #[error("cannot serialise the client state: {0}")]
    Serialise(#[from] serde_json::Error),
}

/// What [`StateFile::load`] found besides the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadNote {
    /// There was no state file: a new client.
    New,
    /// The file was read as it is.
    Loaded,
    /// The file was written by an older version and was migrated from `from`.
    Migrated {
        /// The version found.
        from: u32,
    },
    /// The file could not be read as a state; it was moved to `kept_at` and the client starts
    /// from an empty state. `problem` says what was wrong (with line and column).
    CorruptKeptAside {
        /// Where the unreadable file now is.
        kept_at: PathBuf,
        /// What was wrong with it.
        problem: String,
    },
}

/// The state file of a profile.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The file name inside a profile directory.
    pub const FILE_NAME: &'static str = "state.json";

    /// The state file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> StateFile {
        StateFile { path: path.into() }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the state. A missing file gives a fresh state; an unreadable one is moved aside
    /// (named with `now`) and reported in the [`LoadNote`], and a fresh state is returned.
    pub fn load(&self, now: Timestamp) -> Result<(ClientState, LoadNote), StateError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((ClientState::new(), LoadNote::New));
            }
            Err(source) => {
                return Err(StateError::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        match parse_state(&bytes) {
            Ok((state, from)) if from == STATE_VERSION => Ok((state, LoadNote::Loaded)),
            Ok((state, from)) => Ok((state, LoadNote::Migrated { from })),
            Err(problem) => {
                let kept_at = self.keep_aside(now)?;
                Ok((
                    ClientState::new(),
                    LoadNote::CorruptKeptAside { kept_at, problem },
                ))
            }
        }
    }

    /// Writes `state` atomically: temporary file, fsync, rename, fsync of the directory.
    pub fn save(&self, state: &ClientState) -> Result<(), StateError> {
        let bytes = serde_json::to_vec(state)?;
        write_atomically(&self.path, &bytes).map_err(|source| StateError::Io {
            path: self.path.clone(),
            source,
        })
    }

    fn keep_aside(&self, now: Timestamp) -> Result<PathBuf, StateError> {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| Self::FILE_NAME.to_owned());
        let stamp = now.strftime("%Y%m%dT%H%M%SZ").to_string();
        let mut kept_at = self.path.with_file_name(format!("{name}.corrupt-{stamp}"));
        let mut n = 1;
        while kept_at.exists() {
            n += 1;
            kept_at = self
                .path
                .with_file_name(format!("{name}.corrupt-{stamp}-{n}"));
        }
        std::fs::rename(&self.path, &kept_at).map_err(|source| StateError::Io {
            path: self.path.clone(),
            source,
        })?;
        Ok(kept_at)
    }
}

/// Parses a state file of any known version; returns the state (migrated to the current
/// version) and the version found, or a description of the problem.
fn parse_state(bytes: &[u8]) -> Result<(ClientState, u32), String> {
    // A state this build wrote reads straight into the types (the client loads it at every
    // run); anything else (older versions to migrate, problems to describe) goes through a
    // `serde_json::Value` as below, which gives the same state for a current file.
    if let Ok(state) = serde_json::from_slice::<ClientState>(bytes)
        && state.version == STATE_VERSION
    {
        return Ok((state, STATE_VERSION));
    }
    let mut raw: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| format!("line {} column {}: {e}", e.line(), e.column()))?;
    let Some(object) = raw.as_object() else {
        return Err("the state is not a JSON object".to_owned());
    };
    let found = match object.get("version") {
        None => 0,
        Some(v) => v
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| format!("`version` is not a version number: {v}"))?,
    };
    if found > STATE_VERSION {
        return Err(format!(
            "the state was written by a newer version (state version {found}; this build reads up to {STATE_VERSION})"
        ));
    }
    migrate(&mut raw, found);
    let state: ClientState =
        serde_json::from_value(raw).map_err(|e| format!("state version {found}: {e}"))?;
    Ok((state, found))
}

/// Upgrades a raw state document from version `from` to [`STATE_VERSION`] in place.
///
/// Version 0 stored experiment preferences in Normandy's first single-preference layout
/// (`preferenceName`, `preferenceValue`, `preferenceType`, `preferenceBranchType`,
/// `previousPreferenceValue` on the record itself) and had no `version` key.
pub fn migrate(raw: &mut serde_json::Value, from: u32) {
    if from == 0
        && let Some(experiments) = raw
            .get_mut("experiments")
            .and_then(serde_json::Value::as_object_mut)
    {
        for record in experiments.values_mut() {
            migrate_single_pref_record(record);
        }
    }
    if let Some(object) = raw.as_object_mut() {
        object.insert("version".to_owned(), STATE_VERSION.into());
    }
}

fn migrate_single_pref_record(record: &mut serde_json::Value) {
    let Some(object) = record.as_object_mut() else {
        return;
    };
    if object.contains_key("preferences") {
        return;
    }
    let Some(name) = object
        .remove("preferenceName")
        .and_then(|v| v.as_str().map(str::to_owned))
    else {
        return;
    };
    let mut pref = serde_json::Map::new();
    for key in [
        "preferenceValue",
        "preferenceType",
        "preferenceBranchType",
        "previousPreferenceValue",
    ] {
        if let Some(v) = object.remove(key) {
            pref.insert(key.to_owned(), v);
        }
    }
    pref.entry("previousPreferenceValue")
        .or_insert(serde_json::Value::Null);
    pref.entry("preferenceBranchType")
        .or_insert_with(|| Branch::Default.as_str().into());
    object
        .entry("actionName")
        .or_insert_with(|| "preference-experiment".into());
    object
        .entry("experimentType")
        .or_insert_with(|| "exp".into());
    if let Some(name_field) = object.remove("name") {
        object.entry("slug").or_insert(name_field);
    }
    let mut preferences = serde_json::Map::new();
    preferences.insert(name, serde_json::Value::Object(pref));
    object.insert(
        "preferences".to_owned(),
        serde_json::Value::Object(preferences),
    );
}

/// Writes `bytes` to `path` so that a crash leaves either the old or the new content: write a
/// temporary file in the same directory, fsync it, rename it over `path`, fsync the directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    stage_file(path, bytes)?.put_in_place()
}

/// The first half of [`write_atomically`]: `bytes` written to a temporary file next to
/// `path` and fsynced. [`StagedFile::put_in_place`] does the second half; a staged file that
/// is dropped instead is removed. Staging can run while something else is computed (the
/// client stages a new manifest while it reads and verifies it).
pub fn stage_file(path: &Path, bytes: &[u8]) -> std::io::Result<StagedFile> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staged = StagedFile {
        tmp: dir.join(format!(".{name}.tmp-{}", std::process::id())),
        path: path.to_owned(),
        dir,
        pending: true,
    };
    let mut file = std::fs::File::create(&staged.tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    crash_point::reached();
    Ok(staged)
}

/// A file written and fsynced under a temporary name (see [`stage_file`]).
#[derive(Debug)]
pub struct StagedFile {
    tmp: PathBuf,
    path: PathBuf,
    dir: PathBuf,
    /// Whether the temporary file is still there to remove.
    pending: bool,
}

impl StagedFile {
    /// Renames the file over its destination and fsyncs the directory: a crash leaves either
    /// the old or the new content.
    pub fn put_in_place(mut self) -> std::io::Result<()> {
        std::fs::rename(&self.tmp, &self.path)?;
        self.pending = false;
        // The rename is durable only once the directory entry is.
        std::fs::File::open(&self.dir)?.sync_all()?;
        crash_point::reached();
        Ok(())
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if self.pending {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Deterministic crash points for the crash tests: with the `crash-points` feature, the process
/// aborts (as abruptly as SIGKILL: no destructors, no flushing) when it reaches the N-th point,
/// N taken from the environment variable `FLIGHTDECK_CRASH_POINT`. Each atomic write has two
/// points: the temporary file written but not renamed, and the rename done. Without the feature
/// (every normal build) this is nothing.
mod crash_point {
    #[cfg(feature = "crash-points")]
    pub(super) fn reached() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static REACHED: AtomicU64 = AtomicU64::new(0);
        let n = REACHED.fetch_add(1, Ordering::SeqCst) + 1;
        let target = std::env::var("FLIGHTDECK_CRASH_POINT")
            .ok()
            .and_then(|v| v.parse::<u64>().ok());
        if target == Some(n) {
            std::process::abort();
        }
    }

    #[cfg(not(feature = "crash-points"))]
    pub(super) fn reached() {}
}

/// Whether two optional preference values have the same type (an absent value matches all).
pub fn same_type(a: Option<&PrefValue>, b: Option<&PrefValue>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => std::mem::discriminant(a) == std::mem::discriminant(b),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn sample_state() -> ClientState {
        let mut state = ClientState::new();
        state.user_id = Some("u-1".into());
        state.rollouts.insert(
            "r".into(),
            RolloutRecord {
                slug: "r".into(),
                state: RolloutState::Active,
                preferences: vec![RolloutPreference {
                    preference_name: "p".into(),
                    value: PrefValue::Int(2),
                    previous_value: None,
                }],
                enrolled_at: Some(ts("2026-01-01T00:00:00Z")),
            },
        );
        state.journal.push(PrefWrite {
            name: "p".into(),
            branch: Branch::Default,
            value: Some(PrefValue::Int(2)),
        });
        state
    }

    #[test]
    fn save_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path().join(StateFile::FILE_NAME));
        let now = ts("2026-01-02T00:00:00Z");
        assert_eq!(file.load(now).unwrap().1, LoadNote::New);
        let state = sample_state();
        file.save(&state).unwrap();
        let (loaded, note) = file.load(now).unwrap();
        assert_eq!(note, LoadNote::Loaded);
        assert_eq!(loaded, state);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(StateFile::FILE_NAME)]);
    }

    #[test]
    fn only_a_recent_last_seen_is_not_worth_a_write() {
        let mut persisted = ClientState::new();
        persisted.experiments.insert(
            "e".into(),
            ExperimentRecord {
                slug: "e".into(),
                action_name: "multi-preference-experiment".into(),
                branch: "b".into(),
                expired: false,
                last_seen: ts("2026-01-01T00:00:00Z"),
                temporary_error_deadline: None,
                experiment_type: "exp".into(),
                user_facing_name: String::new(),
                user_facing_description: String::new(),
                preferences: BTreeMap::new(),
                enrolled_at: None,
                ended_at: None,
                end_reason: None,
            },
        );
        let seen_at = |time: &str| {
            let mut state = persisted.clone();
            if let Some(record) = state.experiments.get_mut("e") {
                record.last_seen = ts(time);
            }
            state
        };
        assert!(!persisted.differs_from_persisted(persisted.clone()));
        assert!(!seen_at("2026-01-01T23:59:59Z").differs_from_persisted(persisted.clone()));
        assert!(seen_at("2026-01-02T00:00:00Z").differs_from_persisted(persisted.clone()));
        assert!(seen_at("2025-12-31T23:00:00Z").differs_from_persisted(persisted.clone()));
        let mut other = seen_at("2026-01-01T01:00:00Z");
        if let Some(record) = other.experiments.get_mut("e") {
            record.temporary_error_deadline = Some(ts("2026-01-08T00:00:00Z"));
        }
        assert!(other.differs_from_persisted(persisted.clone()));
        let mut other = seen_at("2026-01-01T01:00:00Z");
        other.telemetry.next_seq = 1;
        assert!(other.differs_from_persisted(persisted.clone()));
        let mut other = ClientState::new();
        other.experiments = persisted.experiments.clone();
        other
            .experiments
            .insert("f".into(), persisted.experiments["e"].clone());
        assert!(other.differs_from_persisted(persisted));
    }

    #[test]
    fn a_current_state_reads_the_same_straight_or_through_a_value() {
        let mut state = sample_state();
        state.journal_seq = 7;
        let bytes = serde_json::to_vec(&state).unwrap();
        let (direct, version) = parse_state(&bytes).unwrap();
        assert_eq!(version, STATE_VERSION);
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let through_value: ClientState = serde_json::from_value(value).unwrap();
        assert_eq!(direct, through_value);
        assert_eq!(direct, state);
        // A repeated key is refused by the typed reading and read as before (last value).
        let repeated = br#"{"version": 1, "userId": "a", "userId": "b"}"#;
        assert_eq!(
            parse_state(repeated).unwrap().0.user_id.as_deref(),
            Some("b")
        );
    }

    #[test]
    fn a_corrupt_file_is_kept_aside_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(StateFile::FILE_NAME);
        std::fs::write(&path, b"{\"version\": 1, \"rollouts\": {\n  oops").unwrap();
        let file = StateFile::new(&path);
        let (state, note) = file.load(ts("2026-01-02T03:04:05Z")).unwrap();
        assert_eq!(state, ClientState::new());
        let LoadNote::CorruptKeptAside { kept_at, problem } = note else {
            panic!("expected the file to be kept aside, got {note:?}");
        };
        assert!(problem.contains("line 2"), "{problem}");
        assert!(kept_at.ends_with("state.json.corrupt-20260102T030405Z"));
        assert_eq!(
            std::fs::read(&kept_at).unwrap(),
            b"{\"version\": 1, \"rollouts\": {\n  oops"
        );
        assert!(!path.exists());
    }

    #[test]
    fn a_state_from_a_newer_version_is_not_misread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(StateFile::FILE_NAME);
        std::fs::write(&path, br#"{"version": 99}"#).unwrap();
        let (_, note) = StateFile::new(&path)
            .load(ts("2026-01-02T00:00:00Z"))
            .unwrap();
        assert!(
            matches!(&note, LoadNote::CorruptKeptAside { problem, .. } if problem.contains("newer")),
            "{note:?}"
        );
    }

    #[test]
    fn a_version_0_state_with_single_pref_experiments_is_migrated() {
        let v0 = r#"{
          "experiments": {
            "exp-1": {"name": "exp-1", "branch": "control", "expired": false,
                      "lastSeen": "2017-06-01T00:00:00Z",
                      "preferenceName": "browser.foo", "preferenceValue": true,
                      "preferenceType": "boolean", "previousPreferenceValue": false,
                      "preferenceBranchType": "user"}
          },
          "rollouts": {}
        }"#;
        let (state, from) = parse_state(v0.as_bytes()).unwrap();
        assert_eq!(from, 0);
        assert_eq!(state.version, STATE_VERSION);
        let record = &state.experiments["exp-1"];
        assert_eq!(record.slug, "exp-1");
        assert_eq!(record.experiment_type, "exp");
        let pref = &record.preferences["browser.foo"];
        assert_eq!(pref.preference_branch_type, Branch::User);
        assert_eq!(pref.previous_preference_value, Some(PrefValue::Bool(false)));
        assert!(!pref.overridden);
    }
}
