//! The preference store: typed values on a *default* and a *user* branch (the user branch
//! wins), the application's built-in defaults, and change observation.
//!
//! Applications implement [`PrefStore`] over their own preference system. The reference client
//! uses [`FilePrefStore`], a JSON file in the profile directory; tests use [`MemoryPrefStore`].
//! During a run the runtime wraps the real store in a [`StagedPrefs`] overlay, so that the
//! run's writes can be journaled before they reach the real store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use flightdeck_core::context::{PrefEntry, PrefValue};

use crate::state::write_atomically;

/// A preference branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Branch {
    /// The default branch: what the application ships, plus what rollouts and default-branch
    /// experiments write. Rebuilt at every run start from built-in defaults.
    Default,
    /// The user branch: what the user (or the application on their behalf) set. Wins.
    User,
}

impl Branch {
    /// `default` or `user`, as Normandy spells branch types.
    pub fn as_str(self) -> &'static str {
        match self {
            Branch::Default => "default",
            Branch::User => "user",
        }
    }
}

/// One write to a preference: set (`Some`) or clear (`None`) a value on a branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrefWrite {
    /// The preference name.
    pub name: String,
    /// The branch written.
    pub branch: Branch,
    /// The new value; `None` clears the branch's value.
    pub value: Option<PrefValue>,
}

/// Why a preference store failed.
#[derive(Debug, thiserror::Error)]
pub enum PrefError {
    /// The store's file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The store's file is not a valid preferences document.
    #[error("{path}:{line}:{column}: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// What is wrong.
        message: String,
    },
}

/// A preference system the runtime can read and write.
pub trait PrefStore {
    /// Both branches of `name` (empty when the preference does not exist).
    fn get(&self, name: &str) -> PrefEntry;
    /// Sets (`Some`) or clears (`None`) `name` on `branch`.
    fn set(&mut self, name: &str, branch: Branch, value: Option<PrefValue>);
    /// Every preference name with a value on some branch, sorted.
    fn names(&self) -> Vec<String>;
    /// Makes the writes so far durable. In-memory stores do nothing.
    fn flush(&mut self) -> Result<(), PrefError> {
        Ok(())
    }
    /// Applies one [`PrefWrite`].
    fn apply(&mut self, write: &PrefWrite) {
        self.set(&write.name, write.branch, write.value.clone());
    }
    /// The sequence number of the last journal whose writes this store holds, as recorded by
    /// [`PrefStore::mark_journal`]; `None` for stores that do not record one.
    fn journal_mark(&self) -> Option<u64> {
        None
    }
    /// Records, durably with the writes at the next [`PrefStore::flush`], that this store
    /// holds the writes of journal `seq`. Returns whether the store records marks (the
    /// default does not): the runtime then need not clear the journal with a second state
    /// write after the preferences are flushed, because the mark tells a later run that the
    /// journal was applied (see [`crate::runtime::commit`]).
    fn mark_journal(&mut self, seq: u64) -> bool {
        let _ = seq;
        false
    }
}

/// A change of a preference's effective value, as observers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefChange {
    /// The preference.
    pub name: String,
    /// The effective value before.
    pub before: Option<PrefValue>,
    /// The effective value after.
    pub after: Option<PrefValue>,
}

type Observer = Box<dyn FnMut(&PrefChange) + Send>;

/// An in-memory [`PrefStore`] with change observers. Applications can use it as the runtime's
/// view of their preferences; tests use it directly.
#[derive(Default)]
pub struct MemoryPrefStore {
    prefs: BTreeMap<String, PrefEntry>,
    observers: Vec<Observer>,
}

impl std::fmt::Debug for MemoryPrefStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryPrefStore")
            .field("prefs", &self.prefs)
            .field("observers", &self.observers.len())
            .finish()
    }
}

impl MemoryPrefStore {
    /// An empty store.
    pub fn new() -> MemoryPrefStore {
        MemoryPrefStore::default()
    }

    /// A store holding `prefs`.
    pub fn from_entries(prefs: BTreeMap<String, PrefEntry>) -> MemoryPrefStore {
        MemoryPrefStore {
            prefs,
            observers: Vec::new(),
        }
    }

    /// Calls `observer` after every write that changes a preference's effective value.
    pub fn observe(&mut self, observer: impl FnMut(&PrefChange) + Send + 'static) {
        self.observers.push(Box::new(observer));
    }

    /// Every preference with both branches.
    pub fn entries(&self) -> &BTreeMap<String, PrefEntry> {
        &self.prefs
    }
}

impl PrefStore for MemoryPrefStore {
    fn get(&self, name: &str) -> PrefEntry {
        self.prefs.get(name).cloned().unwrap_or_default()
    }

    fn set(&mut self, name: &str, branch: Branch, value: Option<PrefValue>) {
        let entry = self.prefs.entry(name.to_owned()).or_default();
        let before = entry.effective().cloned();
        match branch {
            Branch::Default => entry.default = value,
            Branch::User => entry.user = value,
        }
        let after = entry.effective().cloned();
        if entry.default.is_none() && entry.user.is_none() {
            self.prefs.remove(name);
        }
        if before != after {
            let change = PrefChange {
                name: name.to_owned(),
                before,
                after,
            };
            for observer in &mut self.observers {
                observer(&change);
            }
        }
    }

    fn names(&self) -> Vec<String> {
        self.prefs.keys().cloned().collect()
    }
}

/// The on-disk shape of [`FilePrefStore`].
#[derive(Debug, Default, Serialize, Deserialize)]
struct PrefsDocument {
    version: u32,
    prefs: BTreeMap<String, PrefEntry>,
    /// The journal mark ([`PrefStore::mark_journal`]), written with the values it vouches for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    journal: Option<u64>,
}

/// The version of the preferences file this build writes.
pub const PREFS_FILE_VERSION: u32 = 1;

/// The reference client's [`PrefStore`]: `prefs.json` in the profile directory, holding both
/// branches, written atomically by [`PrefStore::flush`].
#[derive(Debug)]
pub struct FilePrefStore {
    path: PathBuf,
    memory: MemoryPrefStore,
    journal: Option<u64>,
    dirty: bool,
}

impl FilePrefStore {
    /// The file name inside a profile directory.
    pub const FILE_NAME: &'static str = "prefs.json";

    /// Opens (or starts) the store at `path`. A missing file is an empty store.
    pub fn open(path: &Path) -> Result<FilePrefStore, PrefError> {
        let document = match std::fs::read(path) {
            Ok(bytes) => {
                let document: PrefsDocument =
                    serde_json::from_slice(&bytes).map_err(|e| PrefError::Corrupt {
                        path: path.to_owned(),
                        line: e.line(),
                        column: e.column(),
                        message: e.to_string(),
                    })?;
                document
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => PrefsDocument::default(),
            Err(source) => {
                return Err(PrefError::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        Ok(FilePrefStore {
            path: path.to_owned(),
            memory: MemoryPrefStore::from_entries(document.prefs),
            journal: document.journal,
            dirty: false,
        })
    }

    /// Every preference with both branches.
    pub fn entries(&self) -> &BTreeMap<String, PrefEntry> {
        self.memory.entries()
    }
}

impl PrefStore for FilePrefStore {
    fn get(&self, name: &str) -> PrefEntry {
        self.memory.get(name)
    }

    fn set(&mut self, name: &str, branch: Branch, value: Option<PrefValue>) {
        self.dirty = true;
        self.memory.set(name, branch, value);
    }

    fn names(&self) -> Vec<String> {
        self.memory.names()
    }

    fn journal_mark(&self) -> Option<u64> {
        self.journal
    }

    fn mark_journal(&mut self, seq: u64) -> bool {
        if self.journal != Some(seq) {
            self.journal = Some(seq);
            self.dirty = true;
        }
        true
    }

    fn flush(&mut self) -> Result<(), PrefError> {
        if !self.dirty {
            return Ok(());
        }
        let document = PrefsDocument {
            version: PREFS_FILE_VERSION,
            prefs: self.memory.entries().clone(),
            journal: self.journal,
        };
        let bytes = serde_json::to_vec_pretty(&document).map_err(|e| PrefError::Io {
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        write_atomically(&self.path, &bytes).map_err(|source| PrefError::Io {
            path: self.path.clone(),
            source,
        })?;
        self.dirty = false;
        Ok(())
    }
}

/// An overlay over a [`PrefStore`] that keeps a run's writes in memory. Reads see the writes;
/// [`StagedPrefs::writes`] lists them (last write per preference and branch, in first-write
/// order) for the journal.
pub struct StagedPrefs<'a> {
    base: &'a dyn PrefStore,
    staged: BTreeMap<(String, Branch), Option<PrefValue>>,
    order: Vec<(String, Branch)>,
}

impl std::fmt::Debug for StagedPrefs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedPrefs")
            .field("staged", &self.staged)
            .finish()
    }
}

impl<'a> StagedPrefs<'a> {
    /// An overlay with no writes yet.
    pub fn new(base: &'a dyn PrefStore) -> StagedPrefs<'a> {
        StagedPrefs {
            base,
            staged: BTreeMap::new(),
            order: Vec::new(),
        }
    }

    /// The staged writes that change something in the base store.
    pub fn writes(&self) -> Vec<PrefWrite> {
        self.order
            .iter()
            .filter_map(|key| {
                let value = self.staged.get(key)?.clone();
                let current = self.base.get(&key.0);
                let now = match key.1 {
                    Branch::Default => current.default,
                    Branch::User => current.user,
                };
                (now != value).then(|| PrefWrite {
                    name: key.0.clone(),
                    branch: key.1,
                    value,
                })
            })
            .collect()
    }
}

impl PrefStore for StagedPrefs<'_> {
    fn get(&self, name: &str) -> PrefEntry {
        let mut entry = self.base.get(name);
        if let Some(value) = self.staged.get(&(name.to_owned(), Branch::Default)) {
            entry.default = value.clone();
        }
        if let Some(value) = self.staged.get(&(name.to_owned(), Branch::User)) {
            entry.user = value.clone();
        }
        entry
    }

    fn set(&mut self, name: &str, branch: Branch, value: Option<PrefValue>) {
        let key = (name.to_owned(), branch);
        if self.staged.insert(key.clone(), value).is_none() {
            self.order.push(key);
        }
    }

    fn names(&self) -> Vec<String> {
        let mut names: std::collections::BTreeSet<String> = self.base.names().into_iter().collect();
        for (name, _) in self.staged.keys() {
            names.insert(name.clone());
        }
        names
            .into_iter()
            .filter(|name| {
                let entry = self.get(name);
                entry.default.is_some() || entry.user.is_some()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn int(n: i64) -> Option<PrefValue> {
        Some(PrefValue::Int(n))
    }

    #[test]
    fn user_branch_wins_and_clearing_both_removes_the_pref() {
        let mut store = MemoryPrefStore::new();
        store.set("a", Branch::Default, int(1));
        store.set("a", Branch::User, int(2));
        assert_eq!(store.get("a").effective(), int(2).as_ref());
        store.set("a", Branch::User, None);
        assert_eq!(store.get("a").effective(), int(1).as_ref());
        store.set("a", Branch::Default, None);
        assert!(store.names().is_empty());
    }

    #[test]
    fn observers_see_effective_changes_only() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut store = MemoryPrefStore::new();
        let sink = Arc::clone(&seen);
        store.observe(move |c| sink.lock().unwrap().push(c.clone()));
        store.set("a", Branch::User, int(2));
        // A default-branch write under a user value changes nothing visible.
        store.set("a", Branch::Default, int(1));
        store.set("a", Branch::User, None);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].after, int(2));
        assert_eq!(seen[1].before, int(2));
        assert_eq!(seen[1].after, int(1));
    }

    #[test]
    fn staged_writes_are_visible_and_listed_once() {
        let mut base = MemoryPrefStore::new();
        base.set("a", Branch::Default, int(1));
        let mut staged = StagedPrefs::new(&base);
        staged.set("a", Branch::Default, int(5));
        staged.set("b", Branch::User, int(7));
        staged.set("a", Branch::Default, int(6));
        // Writing back what the base has is not a change.
        staged.set("c", Branch::User, None);
        assert_eq!(staged.get("a").default, int(6));
        assert_eq!(staged.names(), vec!["a".to_owned(), "b".to_owned()]);
        let writes = staged.writes();
        assert_eq!(
            writes,
            vec![
                PrefWrite {
                    name: "a".into(),
                    branch: Branch::Default,
                    value: int(6)
                },
                PrefWrite {
                    name: "b".into(),
                    branch: Branch::User,
                    value: int(7)
                },
            ]
        );
    }

    #[test]
    fn file_store_round_trips_and_reports_corruption_with_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FilePrefStore::FILE_NAME);
        let mut store = FilePrefStore::open(&path).unwrap();
        store.set("s", Branch::User, Some(PrefValue::String("x".into())));
        store.set("b", Branch::Default, Some(PrefValue::Bool(true)));
        store.flush().unwrap();
        let again = FilePrefStore::open(&path).unwrap();
        assert_eq!(again.entries(), store.entries());

        std::fs::write(&path, "{\"version\": 1,\n \"prefs\": [}").unwrap();
        match FilePrefStore::open(&path) {
            Err(PrefError::Corrupt { line, .. }) => assert_eq!(line, 2),
            other => panic!("expected a corrupt-file error, got {other:?}"),
        }
    }
}
