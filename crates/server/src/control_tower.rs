//! The whole server: the store, the snapshots built from it, and every route, started by
//! `flightdeck serve`.
//!
//! [`ControlTower::open`] opens the store (applying migrations), makes the first signing key
//! and the first admin user when there are none, builds every environment's snapshot and
//! starts following changes made by other nodes (PostgreSQL `LISTEN`). [`ControlTower::router`]
//! is the application; [`ControlTower::run`] serves it until a shutdown signal.
//!
//! Snapshots are rebuilt by [`Rebuilder`]: after an admin write that can change what is
//! published (the admin API awaits it, so when an `enable` returns, this node already serves
//! the new manifest), and when another node says so. Rebuilds of one server are serialised;
//! two nodes publishing the same content get the same serial and time from the store and
//! sign byte-identical documents (signatures are deterministic, RFC 6979). Each environment
//! keeps the recipe signatures of its last build, so a rebuild after one change signs that
//! recipe and the document, not every recipe.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use axum::Router;
use flightdeck_client::manifest::SignatureCache;
use flightdeck_client::signature::{KeyId, SigningKey, hex};
use flightdeck_store::{
    Actor, Change, Kind, PublishedItem, Role, SigningKeyRecord, Store, StoreError,
};
use jiff::Timestamp;
use tokio::net::TcpListener;

use crate::ServerConfig;
use crate::admin::bootstrap::BootstrapError;
use crate::admin::{self, AdminState, Clock, HookFuture, PublishHook};
use crate::ofrep::{self, OfrepIndex, OfrepState};
use crate::ops::{self, HealthCheck, HealthFuture, Unhealthy};
use crate::publish::{self, ItemKind, PublishError, PublishedKey, Snapshot, SourceItem};
use crate::state::{AppState, Publisher};

/// Why the server could not start or publish.
#[derive(Debug, thiserror::Error)]
pub enum TowerError {
    /// The store failed.
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// A snapshot could not be built.
    #[error("publishing environment {environment:?}: {source}")]
    Publish {
        /// The environment.
        environment: String,
        /// What failed.
        source: PublishError,
    },
    /// The stored signing key cannot be read.
    #[error("signing key {key_id}: {message}")]
    Key {
        /// The key id.
        key_id: String,
        /// What is wrong.
        message: String,
    },
    /// Something else: a task that panicked, a file that cannot be written, a port in use.
    #[error("{0}")]
    Other(String),
}

/// What the first start made, for `flightdeck serve` to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstStart {
    /// The admin user's name.
    pub username: String,
    /// Its API token, shown once.
    pub token: String,
}

/// The running server's parts.
pub struct ControlTower {
    store: Store,
    publisher: Arc<Publisher>,
    rebuilder: Arc<Rebuilder>,
    clock: Clock,
    config: ServerConfig,
    first_start: Option<FirstStart>,
}

impl fmt::Debug for ControlTower {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControlTower")
            .field("store", &self.store.backend_name())
            .field("publisher", &self.publisher)
            .finish_non_exhaustive()
    }
}

impl ControlTower {
    /// Opens the store of `config`, bootstraps it on the first start, and publishes every
    /// environment.
    pub async fn open(config: ServerConfig, clock: Clock) -> Result<ControlTower, TowerError> {
        let url = config.database_url();
        if url.starts_with("sqlite:") {
            std::fs::create_dir_all(&config.data_dir).map_err(|error| {
                TowerError::Other(format!(
                    "cannot create the data directory {}: {error}",
                    config.data_dir.display()
                ))
            })?;
        }
        let store = Store::open(&url).await?;
        ensure_signing_key(&store, clock()).await?;
        let first_start = ensure_admin(&store, clock()).await?;
        let publisher = Arc::new(Publisher::new());
        let rebuilder = Arc::new(Rebuilder {
            store: store.clone(),
            publisher: Arc::clone(&publisher),
            ofrep: ArcSwap::from_pointee(HashMap::new()),
            clock: Arc::clone(&clock),
            serial: tokio::sync::Mutex::new(()),
            signatures: Arc::new(Mutex::new(HashMap::new())),
        });
        rebuilder.rebuild_all().await?;
        if let Some(subscription) = store.subscribe().await? {
            tokio::spawn(follow_changes(subscription, Arc::clone(&rebuilder)));
        }
        Ok(ControlTower {
            store,
            publisher,
            rebuilder,
            clock,
            config,
            first_start,
        })
    }

    /// The admin user and token made on the first start (`None` when users existed).
    pub fn first_start(&self) -> Option<&FirstStart> {
        self.first_start.as_ref()
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The snapshots and the push channel.
    pub fn publisher(&self) -> &Arc<Publisher> {
        &self.publisher
    }

    /// The whole application: client endpoints, push, OFREP, telemetry ingest, the admin
    /// API, health and metrics.
    pub fn router(&self, metrics: Option<metrics_exporter_prometheus::PrometheusHandle>) -> Router {
        let mut state = AppState::new(Arc::clone(&self.publisher))
            .with_health(Arc::new(StoreHealth(self.store.clone())))
            .with_limits(self.config.limits());
        if let Some(handle) = metrics {
            state = state.with_metrics(handle);
        }
        let admin_state = AdminState::new(
            self.store.clone(),
            Arc::clone(&self.rebuilder) as Arc<dyn PublishHook>,
        )
        .with_clock(Arc::clone(&self.clock));
        let rebuilder = Arc::clone(&self.rebuilder);
        let ofrep_state = OfrepState {
            indexes: Arc::new(move |environment: &str| rebuilder.ofrep_index(environment)),
            clock: Arc::clone(&self.clock),
        };
        let extra: Router<AppState> = Router::new()
            .merge(admin::router().with_state(admin_state.clone()))
            .merge(admin::telemetry_router().with_state(admin_state))
            .merge(ofrep::router::<OfrepState>().with_state(ofrep_state));
        crate::client::app(state, extra)
    }

    /// Serves on `listener` until `shutdown` completes, then closes push streams, lets open
    /// requests finish and closes the store.
    pub async fn run<F>(
        self,
        listener: TcpListener,
        router: Router,
        shutdown: F,
    ) -> Result<(), TowerError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let publisher = Arc::clone(&self.publisher);
        let result = ops::serve(listener, router, async move {
            shutdown.await;
            publisher.close_streams();
        })
        .await;
        self.store.shutdown().await;
        result.map_err(|error| TowerError::Other(format!("serving: {error}")))
    }
}

/// `/healthz` asks the database.
struct StoreHealth(Store);

impl HealthCheck for StoreHealth {
    fn check(&self) -> HealthFuture<'_> {
        Box::pin(async move {
            self.0
                .ping()
                .await
                .map_err(|error| Unhealthy(format!("database: {error}")))
        })
    }
}

/// Builds snapshots from the store and installs them.
pub struct Rebuilder {
    store: Store,
    publisher: Arc<Publisher>,
    ofrep: ArcSwap<HashMap<String, Arc<OfrepIndex>>>,
    clock: Clock,
    /// One rebuild at a time: a later rebuild always reads a later state of the store.
    serial: tokio::sync::Mutex<()>,
    /// Each environment's recipe signatures from its last build. A build takes its
    /// environment's cache out of the map and its blocking task puts it back, so no two
    /// builds ever share one, even when `serial` no longer holds them apart (a rebuild whose
    /// caller went away releases `serial` while its blocking task still runs); a build that
    /// finds none signs every recipe. The lock is held only to take or put back.
    signatures: Arc<Mutex<HashMap<String, SignatureCache>>>,
}

impl Rebuilder {
    /// The OFREP index of `environment`'s current snapshot.
    pub fn ofrep_index(&self, environment: &str) -> Option<Arc<OfrepIndex>> {
        self.ofrep.load().get(environment).cloned()
    }

    /// Rebuilds every environment.
    pub async fn rebuild_all(&self) -> Result<(), TowerError> {
        for environment in self.store.list_environments().await? {
            self.rebuild(&environment.name).await?;
        }
        Ok(())
    }

    /// Rebuilds `environment` from the store and installs the snapshot.
    pub async fn rebuild(&self, environment: &str) -> Result<(), TowerError> {
        let _one_at_a_time = self.serial.lock().await;
        // The items, the keys and the serial are read in one transaction under the
        // environment's lock, so serials follow the order of the states they publish.
        let hasher = |items: &[PublishedItem], keys: &[SigningKeyRecord]| {
            let key_id = keys
                .iter()
                .find(|key| key.active)
                .and_then(|key| KeyId::parse(&key.key_id));
            match key_id {
                Some(key_id) => hex(&publish::content_hash(&source_items(items), &key_id).0),
                // No key to sign with: the build below fails before anything is published.
                None => String::new(),
            }
        };
        let state = self
            .store
            .publish(environment, (self.clock)(), &hasher)
            .await?;
        let items = source_items(&state.items);
        let keys = state.signing_keys;
        let publication = state.publication;
        let active = keys
            .iter()
            .find(|key| key.active)
            .ok_or_else(|| TowerError::Other("no active signing key".to_owned()))?;
        let signing_key = read_key(active)?;
        let published_keys: Vec<PublishedKey> = keys
            .iter()
            .map(|key| PublishedKey {
                key_id: key.key_id.clone(),
                public_key_pem: key.public_key_pem.clone(),
                active: key.active,
                created_at: key.created_at,
            })
            .collect();
        let serial = u64::try_from(publication.serial).map_err(|_| {
            TowerError::Other(format!(
                "the store gave a negative serial {}",
                publication.serial
            ))
        })?;
        let name = environment.to_owned();
        let mut cache = self
            .signatures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(environment)
            .unwrap_or_default();
        let signatures = Arc::clone(&self.signatures);
        // Signing a thousand recipes takes a while: off the async workers.
        let built = tokio::task::spawn_blocking(move || {
            let built = Snapshot::build_with(
                &name,
                &items,
                &signing_key,
                &published_keys,
                serial,
                publication.published_at,
                &mut cache,
            );
            // Whatever the build did to it, every entry is still a valid signature by the
            // key it names.
            signatures
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(name, cache);
            built
        })
        .await
        .map_err(|error| TowerError::Other(format!("snapshot task: {error}")))?;
        let snapshot = built.map_err(|source| TowerError::Publish {
            environment: environment.to_owned(),
            source,
        })?;
        let compiled = snapshot.compiled();
        let index = OfrepIndex::new(
            compiled.flags.clone(),
            compiled.recipes.clone(),
            snapshot.manifest().etag_str(),
        );
        let mut indexes = HashMap::clone(&self.ofrep.load());
        indexes.insert(environment.to_owned(), Arc::new(index));
        self.ofrep.store(Arc::new(indexes));
        self.publisher.install_snapshot(snapshot);
        Ok(())
    }

    async fn rebuild_or_log(&self, environment: Option<&str>) {
        let result = match environment {
            Some(environment) => self.rebuild(environment).await,
            None => self.rebuild_all().await,
        };
        if let Err(error) = result {
            tracing::error!(%error, environment, "rebuilding the published documents failed; the previous ones are still served");
        }
    }
}

impl PublishHook for Rebuilder {
    fn changed<'a>(&'a self, environment: Option<&'a str>) -> HookFuture<'a> {
        Box::pin(self.rebuild_or_log(environment))
    }
}

/// Rebuilds what other nodes changed, for as long as the server runs.
async fn follow_changes(
    mut subscription: flightdeck_store::Subscription,
    rebuilder: Arc<Rebuilder>,
) {
    loop {
        match subscription.recv().await {
            Ok(Change::Environment(environment)) => {
                rebuilder.rebuild_or_log(Some(&environment)).await;
            }
            Ok(Change::Missed) => rebuilder.rebuild_or_log(None).await,
            Err(error) => {
                tracing::error!(%error, "listening for changes from other nodes failed; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}

/// The store's published items as the publisher takes them.
fn source_items(items: &[PublishedItem]) -> Vec<SourceItem> {
    items
        .iter()
        .map(|item| SourceItem {
            recipe_id: item.recipe_id,
            revision_id: item.revision_id,
            kind: item_kind(item.kind),
            data: item.data.clone(),
        })
        .collect()
}

fn item_kind(kind: Kind) -> ItemKind {
    match kind {
        Kind::Normandy => ItemKind::Normandy,
        Kind::ManifestV1 => ItemKind::ManifestV1,
        Kind::Flight => ItemKind::Flight,
        Kind::Flag => ItemKind::Flag,
        Kind::TargetGroup => ItemKind::TargetGroup,
    }
}

fn read_key(record: &SigningKeyRecord) -> Result<SigningKey, TowerError> {
    SigningKey::from_pem(&record.key_id, &record.private_key_pem).map_err(|error| TowerError::Key {
        key_id: record.key_id.clone(),
        message: error.to_string(),
    })
}

/// Makes and activates a signing key when the store has none.
async fn ensure_signing_key(store: &Store, now: Timestamp) -> Result<(), TowerError> {
    if store.signing_keys().await?.iter().any(|key| key.active) {
        return Ok(());
    }
    let new = admin::bootstrap::new_signing_key()
        .map_err(|error| TowerError::Other(format!("making a signing key: {error}")))?;
    match store.add_signing_key(&new, true, Actor::System, now).await {
        Ok(_) => Ok(()),
        // Another node made one at the same time.
        Err(error) if error.conflict().is_some() => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// Makes the user `admin` with a token when the store has no user.
async fn ensure_admin(store: &Store, now: Timestamp) -> Result<Option<FirstStart>, TowerError> {
    if !store.list_users().await?.is_empty() {
        return Ok(None);
    }
    let username = "admin";
    let bootstrap_error = |error: BootstrapError| match error {
        BootstrapError::Store(error) => TowerError::Store(error),
        other => TowerError::Other(format!("making the first admin: {other}")),
    };
    match admin::bootstrap::create_user(store, username, &[Role::Admin], now).await {
        Ok(_) => {}
        // Another node made it at the same time; that node shows the token.
        Err(BootstrapError::Store(error)) if error.conflict().is_some() => return Ok(None),
        Err(error) => return Err(bootstrap_error(error)),
    }
    let token = admin::bootstrap::create_token(store, username, "first start", now)
        .await
        .map_err(bootstrap_error)?;
    Ok(Some(FirstStart {
        username: username.to_owned(),
        token,
    }))
}

#[cfg(test)]
mod tests {
    use flightdeck_client::manifest::{self, RecipeSignatureCheck, VerifyPolicy};
    use flightdeck_client::signature::TrustedKeys;
    use serde_json::{Value, json};

    use super::*;

    fn now() -> Timestamp {
        "2026-11-21T10:00:00Z".parse().unwrap()
    }

    fn rollout(slug: &str) -> Value {
        json!({
            "name": format!("Roll out {slug}"),
            "action": "preference-rollout",
            "arguments": {
                "slug": slug,
                "preferences": [{"preferenceName": format!("{slug}.enabled"), "value": true}]
            },
            "filter_object": [{"type": "channel", "channels": ["release", "beta"]}],
            "extra_filter_expression": "normandy.locale == 'en-US'"
        })
    }

    /// `(hits, misses, entries)` of `environment`'s signature cache.
    fn cache_counts(rebuilder: &Rebuilder, environment: &str) -> (usize, usize, usize) {
        let caches = rebuilder.signatures.lock().unwrap();
        let cache = &caches[environment];
        (cache.hits(), cache.misses(), cache.len())
    }

    /// The published manifest passes the server's self-check and a client's default
    /// verification, which checks every recipe's own signature too.
    fn check_manifest(publisher: &Publisher, key: &SigningKey) -> Arc<Snapshot> {
        let snapshot = publisher.snapshot("production").unwrap();
        let body = snapshot.manifest().body();
        publish::self_check(body, key).unwrap();
        let mut trusted = TrustedKeys::new();
        trusted.insert(key.public_key().clone());
        let loaded = manifest::load("manifest", body).unwrap();
        let policy = VerifyPolicy {
            require_signature: true,
            recipe_signatures: RecipeSignatureCheck::Always,
            freshness: None,
        };
        let verified = manifest::verify(loaded, &trusted, None, &policy).unwrap();
        assert!(verified.bad_recipes().is_empty());
        snapshot
    }

    async fn active_key(store: &Store) -> SigningKey {
        let keys = store.signing_keys().await.unwrap();
        read_key(keys.iter().find(|key| key.active).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn a_rebuild_signs_only_the_changed_recipe_again() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("flightdeck.db").display());
        let store = Store::open(&url).await.unwrap();
        ensure_signing_key(&store, now()).await.unwrap();
        let user = |name: &'static str, role| {
            let store = store.clone();
            async move {
                let roles = [role];
                let user = store.create_user(name, &roles, Actor::System, now());
                Actor::User(user.await.unwrap().id)
            }
        };
        let author = user("author", Role::Editor).await;
        let approver = user("approver", Role::Approver).await;
        let approve = |revision_id| {
            let store = store.clone();
            async move {
                let request = store.request_approval(revision_id, author, now()).await;
                let request = request.unwrap();
                store
                    .approve(request.id, "", approver, now())
                    .await
                    .unwrap();
            }
        };
        let mut recipe_ids = Vec::new();
        for n in 0..5 {
            let (recipe, revision) = store
                .create_recipe(
                    Kind::Normandy,
                    "production",
                    &rollout(&format!("r{n}")),
                    "",
                    author,
                    now(),
                )
                .await
                .unwrap();
            approve(revision.id).await;
            store
                .set_enabled(recipe.id, true, approver, now())
                .await
                .unwrap();
            recipe_ids.push(recipe.id);
        }
        let publisher = Arc::new(Publisher::new());
        let rebuilder = Rebuilder {
            store: store.clone(),
            publisher: Arc::clone(&publisher),
            ofrep: ArcSwap::from_pointee(HashMap::new()),
            clock: Arc::new(now),
            serial: tokio::sync::Mutex::new(()),
            signatures: Arc::new(Mutex::new(HashMap::new())),
        };

        rebuilder.rebuild("production").await.unwrap();
        assert_eq!(cache_counts(&rebuilder, "production"), (0, 5, 5));
        let key = active_key(&store).await;
        let first = check_manifest(&publisher, &key);

        // One recipe changes (a new approved revision): only it is signed again.
        let (_, revision, new) = store
            .update_recipe(recipe_ids[2], &rollout("changed"), "", author, now())
            .await
            .unwrap();
        assert!(new);
        approve(revision.id).await;
        rebuilder.rebuild("production").await.unwrap();
        assert_eq!(cache_counts(&rebuilder, "production"), (4, 1, 5));
        let second = check_manifest(&publisher, &key);
        assert!(second.serial() > first.serial());
        assert_ne!(second.manifest().etag(), first.manifest().etag());

        // Concurrent rebuilds of one environment each hold the cache alone, and leave it
        // whole.
        let (a, b) = tokio::join!(
            rebuilder.rebuild("production"),
            rebuilder.rebuild("production")
        );
        a.unwrap();
        b.unwrap();
        assert_eq!(cache_counts(&rebuilder, "production"), (5, 0, 5));
        let third = check_manifest(&publisher, &key);
        assert_eq!(third.manifest().body(), second.manifest().body());

        // A new key signs every recipe again.
        let rotated = admin::bootstrap::new_signing_key().unwrap();
        store
            .add_signing_key(&rotated, true, Actor::System, now())
            .await
            .unwrap();
        rebuilder.rebuild("production").await.unwrap();
        assert_eq!(cache_counts(&rebuilder, "production"), (0, 5, 5));
        let new_key = active_key(&store).await;
        assert_ne!(new_key.key_id(), key.key_id());
        check_manifest(&publisher, &new_key);
        store.shutdown().await;
    }
}
