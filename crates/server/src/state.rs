//! The server's shared state: the current snapshot of each environment, and change notices.
//!
//! Snapshots sit behind one atomic pointer ([`arc_swap::ArcSwap`]) to an immutable map from
//! environment name to snapshot. A request loads the pointer (no lock, no database) and copies
//! reference-counted bytes out; [`Publisher::install_snapshot`] swaps in a new map and, when
//! the manifest changed, sends a [`ManifestChanged`] notice to every push subscriber.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use flightdeck_client::signature::SigningKey;
use jiff::Timestamp;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use tokio::sync::{broadcast, watch};

use crate::client::DocumentMetrics;
use crate::ops::{AlwaysHealthy, BodyLimits, HealthCheck};
use crate::publish::{PublishError, PublishedKey, Snapshot, SourceItem};

/// How many notices a slow push subscriber may fall behind before it skips to the latest
/// state (it then gets the current notice of every environment it follows).
pub const NOTICE_BUFFER: usize = 64;

/// The push notice `manifest-changed`: an environment's unified manifest has a new ETag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManifestChanged {
    /// The environment.
    pub environment: String,
    /// The new ETag of `/api/v1/manifest/?environment=…`, quotes included.
    pub etag: String,
    /// The new serial.
    pub serial: u64,
}

impl ManifestChanged {
    /// The notice of `snapshot`'s manifest.
    pub fn of(snapshot: &Snapshot) -> ManifestChanged {
        ManifestChanged {
            environment: snapshot.environment().to_owned(),
            etag: snapshot.manifest().etag_str().to_owned(),
            serial: snapshot.serial(),
        }
    }
}

/// What [`Publisher::install_snapshot`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installed {
    /// The snapshot is current and its manifest differs from the previous one: a notice was
    /// sent.
    Changed,
    /// The snapshot is current; its manifest is the one already served (other documents,
    /// such as the key list, may differ), so no notice was sent.
    Unchanged,
    /// The snapshot is older (a lower serial) than the installed one and was dropped: a
    /// rebuild that finished after a newer one.
    Stale,
}

/// The current snapshots and the push channel.
pub struct Publisher {
    snapshots: ArcSwap<HashMap<String, Arc<Snapshot>>>,
    /// Installs are rare; taking this keeps the compare-and-notify of two concurrent
    /// installs in order. Readers never take it.
    install: Mutex<()>,
    notices: broadcast::Sender<Arc<ManifestChanged>>,
    closing: watch::Sender<bool>,
}

impl fmt::Debug for Publisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher")
            .field("environments", &self.environments())
            .finish_non_exhaustive()
    }
}

impl Default for Publisher {
    fn default() -> Publisher {
        Publisher::new()
    }
}

impl Publisher {
    /// A publisher with no environment yet.
    pub fn new() -> Publisher {
        let (notices, _) = broadcast::channel(NOTICE_BUFFER);
        let (closing, _) = watch::channel(false);
        Publisher {
            snapshots: ArcSwap::from_pointee(HashMap::new()),
            install: Mutex::new(()),
            notices,
            closing,
        }
    }

    /// Makes `snapshot` the current one of its environment (creating the environment when it
    /// is new), and sends a `manifest-changed` notice when its manifest's ETag differs from
    /// the previous one. A snapshot with a lower serial than the installed one is dropped.
    pub fn install_snapshot(&self, snapshot: Snapshot) -> Installed {
        // A poisoned lock only means another install panicked; the map itself is always whole.
        let _guard = self
            .install
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = self.snapshots.load_full();
        let previous = current.get(snapshot.environment());
        if let Some(previous) = previous
            && previous.serial() > snapshot.serial()
        {
            tracing::warn!(
                environment = snapshot.environment(),
                installed = previous.serial(),
                dropped = snapshot.serial(),
                "an older snapshot finished building after a newer one; dropped"
            );
            return Installed::Stale;
        }
        let changed = previous
            .is_none_or(|previous| previous.manifest().etag() != snapshot.manifest().etag());
        let notice = ManifestChanged::of(&snapshot);
        record_snapshot_metrics(&snapshot);
        let mut next = HashMap::clone(&current);
        next.insert(snapshot.environment().to_owned(), Arc::new(snapshot));
        self.snapshots.store(Arc::new(next));
        if changed {
            tracing::info!(
                environment = notice.environment.as_str(),
                serial = notice.serial,
                etag = notice.etag.as_str(),
                "published"
            );
            // No subscriber is not an error.
            let _ = self.notices.send(Arc::new(notice));
            Installed::Changed
        } else {
            Installed::Unchanged
        }
    }

    /// Builds the snapshot of `environment` on tokio's blocking pool (signing a large
    /// publication takes a fraction of a second; see [`Snapshot::build`]) and installs it.
    pub async fn publish(
        &self,
        environment: String,
        items: Vec<SourceItem>,
        key: SigningKey,
        published_keys: Vec<PublishedKey>,
        serial: u64,
        published_at: Timestamp,
    ) -> Result<Installed, PublishError> {
        let snapshot = tokio::task::spawn_blocking(move || {
            Snapshot::build(
                &environment,
                &items,
                &key,
                &published_keys,
                serial,
                published_at,
            )
        })
        .await
        .map_err(|error| PublishError::Task(error.to_string()))??;
        Ok(self.install_snapshot(snapshot))
    }

    /// The current snapshot of `environment`, if the environment exists.
    pub fn snapshot(&self, environment: &str) -> Option<Arc<Snapshot>> {
        self.snapshots.load().get(environment).cloned()
    }

    /// Whether `environment` has a snapshot.
    pub fn has_environment(&self, environment: &str) -> bool {
        self.snapshots.load().contains_key(environment)
    }

    /// The environments that have a snapshot, sorted.
    pub fn environments(&self) -> Vec<String> {
        let mut names: Vec<String> = self.snapshots.load().keys().cloned().collect();
        names.sort();
        names
    }

    /// The current notice of every environment, or of `environment` alone; sorted by
    /// environment.
    pub fn current_notices(&self, environment: Option<&str>) -> Vec<Arc<ManifestChanged>> {
        let snapshots = self.snapshots.load();
        let mut notices: Vec<Arc<ManifestChanged>> = snapshots
            .values()
            .filter(|snapshot| environment.is_none_or(|name| snapshot.environment() == name))
            .map(|snapshot| Arc::new(ManifestChanged::of(snapshot)))
            .collect();
        notices.sort_by(|a, b| a.environment.cmp(&b.environment));
        notices
    }

    /// A receiver of every notice sent from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<ManifestChanged>> {
        self.notices.subscribe()
    }

    /// Ends every push stream (now, and any opened later), so that a graceful shutdown does
    /// not wait for them.
    pub fn close_streams(&self) {
        self.closing.send_replace(true);
    }

    /// A receiver that turns `true` when [`Publisher::close_streams`] is called.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }
}

fn record_snapshot_metrics(snapshot: &Snapshot) {
    let environment = snapshot.environment().to_owned();
    // Serials stay below 2^53, which an f64 holds exactly.
    metrics::gauge!("flightdeck_publication_serial", "environment" => environment.clone())
        .set(snapshot.serial() as f64);
    metrics::gauge!("flightdeck_publication_skipped_items", "environment" => environment.clone())
        .set(snapshot.skipped().len() as f64);
    metrics::gauge!("flightdeck_manifest_bytes", "environment" => environment)
        .set(snapshot.manifest().body().len() as f64);
}

/// Everything a handler needs: cheap to clone (one reference count).
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    publisher: Arc<Publisher>,
    health: Arc<dyn HealthCheck>,
    metrics: Option<PrometheusHandle>,
    limits: BodyLimits,
    document_metrics: DocumentMetrics,
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("publisher", &self.inner.publisher)
            .field("metrics", &self.inner.metrics.is_some())
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// A state around `publisher`, always healthy, without metrics, with the default body
    /// limits.
    pub fn new(publisher: Arc<Publisher>) -> AppState {
        AppState {
            inner: Arc::new(Inner {
                publisher,
                health: Arc::new(AlwaysHealthy),
                metrics: None,
                limits: BodyLimits::default(),
                document_metrics: DocumentMetrics::register(),
            }),
        }
    }

    /// This state with `health` answering `/healthz` (the store plugs in here).
    pub fn with_health(self, health: Arc<dyn HealthCheck>) -> AppState {
        self.rebuild(|inner| inner.health = health)
    }

    /// This state with `/metrics` rendering `handle` (see [`crate::ops::install_metrics`]).
    pub fn with_metrics(self, handle: PrometheusHandle) -> AppState {
        self.rebuild(|inner| inner.metrics = Some(handle))
    }

    /// This state with other request body limits.
    pub fn with_limits(self, limits: BodyLimits) -> AppState {
        self.rebuild(|inner| inner.limits = limits)
    }

    fn rebuild(self, change: impl FnOnce(&mut Inner)) -> AppState {
        let mut inner = Inner {
            publisher: Arc::clone(&self.inner.publisher),
            health: Arc::clone(&self.inner.health),
            metrics: self.inner.metrics.clone(),
            limits: self.inner.limits,
            // Registered again: a recorder may have been installed since.
            document_metrics: DocumentMetrics::register(),
        };
        change(&mut inner);
        AppState {
            inner: Arc::new(inner),
        }
    }

    /// The snapshots and the push channel.
    pub fn publisher(&self) -> &Arc<Publisher> {
        &self.inner.publisher
    }

    /// The health check.
    pub fn health(&self) -> &Arc<dyn HealthCheck> {
        &self.inner.health
    }

    /// The Prometheus handle, when metrics are installed.
    pub fn metrics(&self) -> Option<&PrometheusHandle> {
        self.inner.metrics.as_ref()
    }

    /// The request body limits.
    pub fn limits(&self) -> BodyLimits {
        self.inner.limits
    }

    /// The document routes' request metrics.
    pub fn document_metrics(&self) -> &DocumentMetrics {
        &self.inner.document_metrics
    }
}
