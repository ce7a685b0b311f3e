//! One client run: load state, get and verify the manifest, evaluate, apply, persist.
//!
//! The order of a run, and why:
//!
//! 1. **Load the state** ([`StateFile::load`]); a corrupt file is kept aside and reported.
//! 2. **Replay the journal**: preference writes of an earlier run that may not have reached
//!    the preference store (a crash between the two commits below). They are absolute values,
//!    so replaying them twice is harmless.
//! 3. **Startup**: built-in defaults from the context document replace the default branch of
//!    the preferences they name; active rollouts and default-branch experiments re-apply their
//!    values, rollouts graduate when the built-in defaults caught up, and experiment
//!    preferences changed while the client was not running end their experiment.
//! 4. **Manifest**: from a file or a URL (with ETag, timeout and backoff). A manifest that
//!    cannot be fetched, parsed or verified, or that is older than the last accepted one, is
//!    refused and the last good manifest (kept in the profile) is used instead. A new
//!    manifest is written to a temporary file while it is verified, and becomes the last
//!    good one once accepted.
//! 5. **Evaluate and apply**: Normandy recipes through the core's evaluation and the actions
//!    in [`crate::normandy`]; a Manifest v1 document through [`crate::manifest_v1`]. Every
//!    preference write goes to a [`StagedPrefs`] overlay first.
//! 6. **Commit** in two steps: the state with the run's preference writes in its journal,
//!    then the preference store, then the state again with an empty journal. A crash at any
//!    point leaves a state that records every applied change (and so can undo it). A store
//!    that records journal marks (the reference client's file store) gets the journal's
//!    number with its values, and the third write is left out: the journal stays in the
//!    state, marked as applied. A run that changes nothing but bookkeeping (see
//!    [`ClientState::differs_from_persisted`]) writes nothing.
//! 7. **Upload** queued telemetry when an endpoint is configured.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flightdeck_core::context::{ClientContext, PrefEntry, PrefSnapshot, PrefValue};
use flightdeck_core::evaluate::{ClientFacts, EvalInput, JsFilter};
use flightdeck_core::model::normandy::RecipeSet;
use jiff::Timestamp;

use crate::RandomSource;
use crate::events::{Annotation, TelemetryEvent, enqueue};
use crate::fetch::{FetchOutcome, FetchPolicy, HttpClient};
use crate::install::Installer;
use crate::manifest::{
    self, ContentHash, LastAccepted, RecipeSignatureCheck, Verified, VerifyPolicy,
};
use crate::normandy::{self, NormandyConfig, RecipeRun, Session, Suitability};
use crate::prefs::{Branch, PrefStore, PrefWrite, StagedPrefs};
use crate::signature::TrustedKeys;
use crate::state::{ClientState, LoadNote, StateError, StateFile, stage_file, write_atomically};
use crate::telemetry::{UploadOutcome, UploadPolicy};

/// Where a manifest comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestOrigin {
    /// A file on disk (any accepted format).
    File(PathBuf),
    /// An `http://` or `https://` URL (any static server, or `flightdeck serve`).
    Url(String),
}

impl ManifestOrigin {
    /// How the origin is written in reports and in the state.
    pub fn describe(&self) -> String {
        match self {
            ManifestOrigin::File(path) => path.display().to_string(),
            ManifestOrigin::Url(url) => url.clone(),
        }
    }
}

/// How the client behaves; the defaults are the reference systems', except that recipe
/// signatures are not re-verified one by one at every run (see
/// [`ClientConfig::recipe_signatures`]).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Preference rollouts and experiments.
    pub normandy: NormandyConfig,
    /// Manifest fetching.
    pub fetch: FetchPolicy,
    /// Telemetry upload; `None` keeps events queued.
    pub upload: Option<UploadPolicy>,
    /// Keys a manifest must be signed with. `None` means verification is not configured and
    /// unsigned manifests are accepted (a signed one is still checked for replay).
    pub trusted_keys: Option<TrustedKeys>,
    /// Whether each recipe's own signature is verified at every run. The default is
    /// [`RecipeSignatureCheck::Skip`]: the whole-manifest signature, verified at every run
    /// (also for the cached copy), already covers every recipe's bytes, and one P-384
    /// verification per recipe would cost about 0.3 s for a 1,000-recipe manifest.
    /// `flightdeck verify-manifest` checks every recipe signature.
    pub recipe_signatures: RecipeSignatureCheck,
    /// Whether the Manifest v1 experiments service is off (`experiments.enabled = false`).
    pub manifest_experiments_disabled: bool,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            normandy: NormandyConfig::default(),
            fetch: FetchPolicy::default(),
            upload: None,
            trusted_keys: None,
            recipe_signatures: RecipeSignatureCheck::Skip,
            manifest_experiments_disabled: false,
        }
    }
}

/// The files of a reference-client profile directory.
#[derive(Debug, Clone)]
pub struct Profile {
    dir: PathBuf,
}

impl Profile {
    /// The profile in `dir` (created on first use).
    pub fn new(dir: impl Into<PathBuf>) -> Profile {
        Profile { dir: dir.into() }
    }

    /// The profile directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The state file.
    pub fn state_file(&self) -> StateFile {
        StateFile::new(self.dir.join(StateFile::FILE_NAME))
    }

    /// The preferences file of [`crate::prefs::FilePrefStore`].
    pub fn prefs_path(&self) -> PathBuf {
        self.dir.join(crate::prefs::FilePrefStore::FILE_NAME)
    }

    /// The last manifest that was accepted, byte for byte.
    pub fn last_good_manifest_path(&self) -> PathBuf {
        self.dir.join("last-good-manifest.json")
    }

    /// Where packages of Manifest v1 experiments are unpacked.
    pub fn packages_dir(&self) -> PathBuf {
        self.dir.join("packages")
    }

    /// Creates the directory if needed.
    pub fn create(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)
    }
}

/// Everything a run needs from its environment.
pub struct RunEnv<'a> {
    /// The profile (state file, last good manifest).
    pub profile: &'a Profile,
    /// The application's preferences.
    pub prefs: &'a mut dyn PrefStore,
    /// HTTP for manifests and telemetry.
    pub http: &'a dyn HttpClient,
    /// Installs packages of Manifest v1 experiments.
    pub installer: &'a mut dyn Installer,
    /// Runs Manifest v1 `jsfilter` functions.
    pub js_filter: &'a dyn JsFilter,
    /// Random values (user id, manifest experiment samples, backoff jitter).
    pub random: &'a mut dyn RandomSource,
    /// Configuration.
    pub config: &'a ClientConfig,
}

impl std::fmt::Debug for RunEnv<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunEnv")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

/// What happened to the manifest in a run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase", tag = "status")]
pub enum ManifestStatus {
    /// A new manifest was accepted.
    Accepted {
        /// Its serial, when it is a signed unified manifest.
        serial: Option<u64>,
    },
    /// The server said it has not changed (or the file is the same); the last good one ran.
    Unchanged,
    /// The new manifest was refused or could not be had; the last good one ran instead.
    UsedLastGood {
        /// Why the new one was not used.
        reason: String,
    },
    /// No manifest could be had and none was cached: nothing ran, nothing was unenrolled.
    Unavailable {
        /// Why.
        reason: String,
    },
}

/// What a run did.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    /// How the state file was found.
    #[serde(serialize_with = "serialize_load_note")]
    pub state: LoadNote,
    /// Journal entries of an interrupted run that were replayed first.
    pub replayed_writes: usize,
    /// What happened to the manifest.
    pub manifest: ManifestStatus,
    /// Preference writes this run made.
    pub pref_writes: Vec<PrefWrite>,
    /// Telemetry events this run queued.
    pub events: Vec<TelemetryEvent>,
    /// When the client should run again for a Manifest v1 experiment to start or end.
    pub next_wake_up: Option<Timestamp>,
    /// The telemetry annotation after the run.
    pub annotations: BTreeMap<String, Annotation>,
    /// The telemetry upload, when one was attempted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload: Option<String>,
}

fn serialize_load_note<S: serde::Serializer>(note: &LoadNote, s: S) -> Result<S::Ok, S::Error> {
    let text = match note {
        LoadNote::New => "new".to_owned(),
        LoadNote::Loaded => "loaded".to_owned(),
        LoadNote::Migrated { from } => format!("migrated from version {from}"),
        LoadNote::CorruptKeptAside { kept_at, problem } => {
            format!("corrupt ({problem}); kept at {}", kept_at.display())
        }
    };
    s.serialize_str(&text)
}

/// Why a run could not complete. Problems with the manifest are not errors (the run goes on
/// with the last good one); only failures to read or write the profile are.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The state could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// The preference store could not be written.
    #[error(transparent)]
    Prefs(#[from] crate::prefs::PrefError),
    /// A profile file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Loads the state and replays its journal into `prefs` (see the module documentation).
/// Returns the state, how it was found, and the number of replayed writes.
pub fn open_state(
    profile: &Profile,
    prefs: &mut dyn PrefStore,
    now: Timestamp,
) -> Result<(ClientState, LoadNote, usize), RunError> {
    let (mut state, note) = profile.state_file().load(now)?;
    if state.journal.is_empty() {
        return Ok((state, note, 0));
    }
    // A store that recorded this journal's mark with its values has them already: the
    // journal was left in the state when its run ended (see `commit`).
    if prefs.journal_mark() == Some(state.journal_seq) {
        state.journal.clear();
        return Ok((state, note, 0));
    }
    let replayed = state.journal.len();
    for write in &state.journal {
        prefs.apply(write);
    }
    prefs.mark_journal(state.journal_seq);
    prefs.flush()?;
    state.journal.clear();
    Ok((state, note, replayed))
}

/// Commits a run: journal the writes in the state, apply them to the store, clear the
/// journal. `events` are queued in the same state write as the journal.
///
/// The state with the journal (and every record that can undo its writes) is durable before
/// any write reaches the store. A store that records journal marks
/// ([`PrefStore::mark_journal`]) gets the journal's number in the same flush as its writes,
/// so the journal need not be cleared by a second state write: it stays in the file, marked
/// as applied, until the next state write. Other stores get the second write.
pub fn commit(
    profile: &Profile,
    state: &mut ClientState,
    prefs: &mut dyn PrefStore,
    writes: &[PrefWrite],
    events: &[TelemetryEvent],
    now: Timestamp,
) -> Result<(), RunError> {
    let file = profile.state_file();
    enqueue(&mut state.telemetry, now, events.iter().cloned());
    if writes.is_empty() {
        file.save(state)?;
        return Ok(());
    }
    state.journal = writes.to_vec();
    state.journal_seq = state.journal_seq.wrapping_add(1);
    file.save(state)?;
    for write in writes {
        prefs.apply(write);
    }
    let marked = prefs.mark_journal(state.journal_seq);
    prefs.flush()?;
    state.journal.clear();
    if !marked {
        file.save(state)?;
    }
    Ok(())
}

/// One run (see the module documentation).
pub fn run(
    env: &mut RunEnv<'_>,
    origin: &ManifestOrigin,
    context: &ClientContext,
    now: Timestamp,
) -> Result<RunReport, RunError> {
    env.profile.create().map_err(|source| RunError::Io {
        path: env.profile.dir().to_owned(),
        source,
    })?;
    let (mut state, load_note, replayed_writes) = open_state(env.profile, env.prefs, now)?;
    // The state as it is on disk, when the run may find nothing to write: a new, migrated or
    // replayed state must be written in any case.
    let persisted = (load_note == LoadNote::Loaded && replayed_writes == 0).then(|| state.clone());
    let user_id = user_id(context, &mut state, env.random);
    let builtins = builtin_defaults(context);

    let (manifest, manifest_status) = obtain_manifest(env, origin, &mut state, now);

    let mut events = Vec::new();
    let (writes, next_wake_up) = {
        let mut staged = StagedPrefs::new(&*env.prefs);
        // Seeded through the overlay so the seed is journaled with the rest of the run.
        seed_user_prefs(&mut staged, context);
        for (name, value) in &builtins {
            if !is_managed(&state, name) {
                staged.set(name, Branch::Default, value.clone());
            }
        }
        let mut session = Session {
            now,
            user_id: Some(user_id.as_str()),
            prefs: &mut staged,
            state: &mut state,
            events: &mut events,
            config: &env.config.normandy,
        };
        normandy::startup(&mut session, &builtins);

        let mut next_wake_up = None;
        if let Some(verified) = &manifest
            && let Some(recipes) = verified.loaded().source().recipes()
        {
            {
                let runs_context = evaluation_context(context, &user_id, &staged, &state);
                run_recipes(
                    recipes,
                    verified,
                    &runs_context,
                    now,
                    env.js_filter,
                    &mut Session {
                        now,
                        user_id: Some(user_id.as_str()),
                        prefs: &mut staged,
                        state: &mut state,
                        events: &mut events,
                        config: &env.config.normandy,
                    },
                );
            }
        }
        let v1 = manifest
            .as_ref()
            .and_then(|verified| verified.loaded().source().experiments());
        if v1.is_some() || !state.manifest_experiments.is_empty() {
            let mut mv1 = crate::manifest_v1::ManifestRun {
                now,
                context,
                entries: &mut state.manifest_experiments,
                installer: env.installer,
                random: env.random,
                js_filter: env.js_filter,
                events: &mut events,
                enabled: !env.config.manifest_experiments_disabled,
            };
            let outcome = crate::manifest_v1::run(v1, &mut mv1);
            next_wake_up = outcome.next_wake_up;
        }
        (staged.writes(), next_wake_up)
    };

    // A run that writes no preference, queues no event and changes nothing else that
    // matters in the state (see `ClientState::differs_from_persisted`) leaves the file as it
    // is: what is on disk already records everything applied.
    let unchanged = writes.is_empty()
        && events.is_empty()
        && persisted.is_some_and(|persisted| !state.differs_from_persisted(persisted));
    if !unchanged {
        commit(env.profile, &mut state, env.prefs, &writes, &events, now)?;
    }

    let upload = match &env.config.upload {
        Some(policy) if !state.telemetry.pending.is_empty() => {
            let outcome = crate::telemetry::upload(
                env.http,
                &mut state.telemetry,
                policy,
                now,
                env.random,
                &user_id,
            );
            env.profile.state_file().save(&state)?;
            Some(describe_upload(&outcome))
        }
        _ => None,
    };

    Ok(RunReport {
        state: load_note,
        replayed_writes,
        manifest: manifest_status,
        pref_writes: writes,
        events,
        next_wake_up,
        annotations: annotations(&state),
        upload,
    })
}

/// The telemetry environment annotation: active experiments, active rollouts and the active
/// manifest experiment.
pub fn annotations(state: &ClientState) -> BTreeMap<String, Annotation> {
    let mut out = normandy::annotations(state);
    out.extend(crate::manifest_v1::annotations(&state.manifest_experiments));
    out
}

/// The observer path: the application (or the user) changed `name`. Experiments that own the
/// preference end without resetting it; the change and the events are committed.
pub fn preference_changed(
    profile: &Profile,
    prefs: &mut dyn PrefStore,
    config: &ClientConfig,
    name: &str,
    now: Timestamp,
) -> Result<Vec<TelemetryEvent>, RunError> {
    let (mut state, _, _) = open_state(profile, prefs, now)?;
    let mut events = Vec::new();
    let user_id = state.user_id.clone();
    let writes = {
        let mut staged = StagedPrefs::new(&*prefs);
        let mut session = Session {
            now,
            user_id: user_id.as_deref(),
            prefs: &mut staged,
            state: &mut state,
            events: &mut events,
            config: &config.normandy,
        };
        normandy::preference_changed(&mut session, name);
        staged.writes()
    };
    commit(profile, &mut state, prefs, &writes, &events, now)?;
    Ok(events)
}

fn describe_upload(outcome: &UploadOutcome) -> String {
    format!("{outcome:?}")
}

/// The user id filters and branch choice use: the context's, else the one the profile drew
/// on its first run (a v4 UUID from the injected random source).
fn user_id(
    context: &ClientContext,
    state: &mut ClientState,
    random: &mut dyn RandomSource,
) -> String {
    if let Some(id) = &context.user_id {
        return id.clone();
    }
    if let Some(id) = &state.user_id {
        return id.clone();
    }
    let mut bits: u128 = 0;
    for _ in 0..4 {
        // 32 random bits per draw; uniform() is in [0, 1).
        let word = (random.uniform().clamp(0.0, 1.0) * 4_294_967_296.0) as u64 & 0xffff_ffff;
        bits = (bits << 32) | u128::from(word);
    }
    // Version 4, variant 1.
    bits = (bits & !(0xf << 76)) | (0x4 << 76);
    bits = (bits & !(0x3 << 62)) | (0x2 << 62);
    let hex = format!("{bits:032x}");
    let id = format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    );
    state.user_id = Some(id.clone());
    id
}

/// User-branch values the context reports seed the store for preferences it has never held;
/// after that the store is the truth (the user may have changed them with `set-pref`).
fn seed_user_prefs(prefs: &mut dyn PrefStore, context: &ClientContext) {
    for (name, entry) in &context.prefs {
        if let Some(user) = &entry.user {
            let current = prefs.get(name);
            if current.user.is_none() && current.default.is_none() {
                prefs.set(name, Branch::User, Some(user.clone()));
            }
        }
    }
}

/// The application's built-in defaults for this run: `builtinDefaults`, then the `default` of
/// each entry in `prefs`. A preference the context does not name has an unknown built-in
/// default (its stored previous values are kept).
fn builtin_defaults(context: &ClientContext) -> BTreeMap<String, Option<PrefValue>> {
    let mut out: BTreeMap<String, Option<PrefValue>> = context
        .prefs
        .iter()
        .filter(|(_, e)| e.default.is_some())
        .map(|(n, e)| (n.clone(), e.default.clone()))
        .collect();
    for (name, value) in &context.builtin_defaults {
        out.insert(name.clone(), Some(value.clone()));
    }
    out
}

/// Whether an active rollout or active default-branch experiment manages `name` (its default
/// branch is then the record's business, not the built-in default's).
fn is_managed(state: &ClientState, name: &str) -> bool {
    state.rollouts.values().any(|r| {
        r.state == crate::state::RolloutState::Active
            && r.preferences.iter().any(|p| p.preference_name == name)
    }) || state.experiments.values().any(|e| {
        !e.expired
            && e.preferences
                .get(name)
                .is_some_and(|p| p.preference_branch_type == Branch::Default)
    })
}

/// The context filters see: the document, with the client's user id, its live preferences and
/// its experiment records.
fn evaluation_context(
    context: &ClientContext,
    user_id: &str,
    prefs: &dyn PrefStore,
    state: &ClientState,
) -> ClientContext {
    let mut cx = context.clone();
    cx.user_id = Some(user_id.to_owned());
    let mut snapshot = PrefSnapshot::new();
    for name in prefs.names() {
        let entry: PrefEntry = prefs.get(&name);
        snapshot.insert(name, entry);
    }
    cx.prefs = snapshot;
    let (experiments, studies, rollouts) = normandy::filter_environment_extras(state);
    cx.experiments = Some(experiments);
    cx.studies = Some(studies);
    cx.rollouts = Some(rollouts);
    cx
}

fn run_recipes(
    recipes: &RecipeSet,
    verified: &Verified,
    context: &ClientContext,
    now: Timestamp,
    js_filter: &dyn JsFilter,
    session: &mut Session<'_>,
) {
    let facts = ClientFacts::default();
    let input = EvalInput {
        context,
        facts: &facts,
        now,
        js_filter,
    };
    let results = flightdeck_core::evaluate::normandy::evaluate(recipes, &input);
    let bad_signatures = verified.bad_recipes();
    let runs: Vec<RecipeRun<'_>> = recipes
        .recipes
        .iter()
        .zip(&results)
        .map(|(recipe, result)| {
            let suitability = match bad_signatures.get(&recipe.id) {
                Some(problem) => Suitability::SignatureError(problem.to_string()),
                None => normandy::suitability(result),
            };
            RecipeRun {
                recipe,
                suitability,
            }
        })
        .collect();
    normandy::run(session, &runs, recipes.recipes.is_empty());
}

/// A fetched or read manifest document: text, which the loaded manifest can share, or bytes
/// that are not UTF-8 (refused by the loader, with the place named).
enum Document {
    Text(Arc<str>),
    Bytes(Vec<u8>),
}

impl Document {
    fn bytes(&self) -> &[u8] {
        match self {
            Document::Text(text) => text.as_bytes(),
            Document::Bytes(bytes) => bytes,
        }
    }
}

/// Gets the manifest for this run: the new one if it can be had and is acceptable, else the
/// last good one.
fn obtain_manifest(
    env: &mut RunEnv<'_>,
    origin: &ManifestOrigin,
    state: &mut ClientState,
    now: Timestamp,
) -> (Option<Verified>, ManifestStatus) {
    let (bytes, etag) = match origin {
        ManifestOrigin::File(path) => match std::fs::read(path) {
            Ok(bytes) => (bytes, None),
            Err(e) => {
                return fall_back(env, state, format!("{}: {e}", path.display()));
            }
        },
        ManifestOrigin::Url(url) => {
            match crate::fetch::fetch_manifest(
                env.http,
                url,
                &mut state.manifest,
                &env.config.fetch,
                now,
                env.random,
            ) {
                FetchOutcome::NotModified => {
                    return match last_good(env) {
                        Some(verified) => (Some(verified), ManifestStatus::Unchanged),
                        None => {
                            // The server thinks we have it, but the cached copy is gone or
                            // no longer verifies: fetch it in full next time.
                            state.manifest.etag = None;
                            (
                                None,
                                ManifestStatus::Unavailable {
                                    reason: "not modified, but the cached manifest is missing"
                                        .to_owned(),
                                },
                            )
                        }
                    };
                }
                FetchOutcome::Fetched { body, etag } => (body, etag),
                FetchOutcome::Skipped { until } => {
                    // Nothing was tried: `last_error` keeps the failure that started the
                    // backoff, which is what `client status` must show while it lasts.
                    return use_last_good(env, format!("backing off until {until}"));
                }
                FetchOutcome::Failed { error, .. } => return fall_back(env, state, error),
            }
        }
    };

    let refuse = |env: &mut RunEnv<'_>, state: &mut ClientState, reason: String| {
        if let ManifestOrigin::Url(_) = origin {
            crate::fetch::record_failure(
                &mut state.manifest,
                &reason,
                &env.config.fetch,
                now,
                env.random,
            );
        }
        fall_back(env, state, reason)
    };
    // Text (nearly always): kept once, shared by the loaded manifest and the writes below,
    // rather than copied into the loaded manifest (a megabyte at 1,000 recipes).
    let document = match String::from_utf8(bytes) {
        Ok(text) => Document::Text(Arc::from(text)),
        Err(error) => Document::Bytes(error.into_bytes()),
    };
    let bytes = document.bytes();
    let path = env.profile.last_good_manifest_path();
    // A manifest that is not the last good one byte for byte (a first run, a new
    // publication) is written to a temporary file while it is read and verified, so that
    // its fsync overlaps that work; it is put in place only once it is accepted, and removed
    // otherwise. (Same length is taken as "probably the same": such a manifest is written
    // after verification if it is new after all.)
    let stage = std::fs::metadata(&path).map_or(true, |m| m.len() != bytes.len() as u64);
    let last = last_accepted(state);
    let (checked, staged) = std::thread::scope(|scope| {
        let stager = stage
            .then(|| {
                std::thread::Builder::new()
                    .name("flightdeck-stage".to_owned())
                    .spawn_scoped(scope, || stage_file(&path, bytes))
                    .ok()
            })
            .flatten();
        let loaded = match &document {
            Document::Text(text) => manifest::load_shared(&origin.describe(), text),
            Document::Bytes(bytes) => manifest::load(&origin.describe(), bytes),
        };
        let checked = loaded.map_err(|e| e.to_string()).and_then(|loaded| {
            manifest::verify(loaded, trusted_keys(env), last.as_ref(), &policy(env))
                .map_err(|e| format!("refused: {e}"))
        });
        (checked, stager.and_then(|stager| stager.join().ok()))
    });
    let verified = match checked {
        Ok(verified) => verified,
        // A staged file is removed when dropped.
        Err(reason) => return refuse(env, state, reason),
    };
    let digest = verified.loaded().content_sha256().to_string();
    let unchanged = state.manifest.sha256.as_deref() == Some(digest.as_str());
    state.manifest.last_error = None;
    if !unchanged || !path.exists() {
        let written = match staged {
            Some(Ok(staged)) => staged.put_in_place(),
            // Not staged (or staging failed): written here.
            _ => write_atomically(&path, bytes),
        };
        if let Err(e) = written {
            // The manifest is still good for this run; the next run gets it again.
            state.manifest.last_error = Some(format!("{}: {e}", path.display()));
        }
    }
    if let Some(accepted) = verified.accepted() {
        state.manifest.serial = Some(accepted.serial);
    } else if env.config.trusted_keys.is_none() {
        state.manifest.serial = None;
    }
    state.manifest.sha256 = Some(digest);
    state.manifest.source = Some(origin.describe());
    if let ManifestOrigin::Url(_) = origin {
        crate::fetch::record_accepted(&mut state.manifest, etag, now);
    }
    if unchanged {
        return (Some(verified), ManifestStatus::Unchanged);
    }
    state.manifest.accepted_at = Some(now);
    let serial = verified.loaded().serial();
    (Some(verified), ManifestStatus::Accepted { serial })
}

/// The trusted keys (an empty set when verification is not configured).
fn trusted_keys<'a>(env: &'a RunEnv<'_>) -> &'a TrustedKeys {
    static NONE: std::sync::OnceLock<TrustedKeys> = std::sync::OnceLock::new();
    match &env.config.trusted_keys {
        Some(keys) => keys,
        None => NONE.get_or_init(TrustedKeys::new),
    }
}

fn policy(env: &RunEnv<'_>) -> VerifyPolicy {
    VerifyPolicy {
        recipe_signatures: env.config.recipe_signatures,
        ..VerifyPolicy::default()
    }
}

/// What the state remembers of the last accepted signed manifest, for the replay check.
fn last_accepted(state: &ClientState) -> Option<LastAccepted> {
    Some(LastAccepted {
        serial: state.manifest.serial?,
        content_sha256: ContentHash::from_hex(state.manifest.sha256.as_deref()?)?,
    })
}

/// The last good manifest from the profile, verified again: the profile is not trusted more
/// than the network.
fn last_good(env: &RunEnv<'_>) -> Option<Verified> {
    let path = env.profile.last_good_manifest_path();
    let bytes = std::fs::read(&path).ok()?;
    let loaded = manifest::load(&path.display().to_string(), &bytes).ok()?;
    manifest::verify(loaded, trusted_keys(env), None, &policy(env)).ok()
}

/// Falls back to the last good manifest after `reason` kept the new one from being used.
fn fall_back(
    env: &RunEnv<'_>,
    state: &mut ClientState,
    reason: String,
) -> (Option<Verified>, ManifestStatus) {
    state.manifest.last_error = Some(reason.clone());
    use_last_good(env, reason)
}

/// The last good manifest, used because of `reason`, or nothing when there is none.
fn use_last_good(env: &RunEnv<'_>, reason: String) -> (Option<Verified>, ManifestStatus) {
    match last_good(env) {
        Some(verified) => (Some(verified), ManifestStatus::UsedLastGood { reason }),
        None => (None, ManifestStatus::Unavailable { reason }),
    }
}
