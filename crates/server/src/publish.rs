//! Publishing: every client document of one environment, rendered once into an immutable
//! [`Snapshot`].
//!
//! The store hands the server what is approved and enabled as [`SourceItem`]s (one per
//! recipe: its kind, ids and the revision's `data`). [`Snapshot::build`] validates them with
//! the core parsers, signs the Normandy recipes and the unified manifest with the client's own
//! signing code (`flightdeck_client::manifest::sign_manifest`), and renders each client
//! document as bytes, gzip bytes and a strong ETag. Requests then only copy reference-counted
//! bytes out of the snapshot. [`Snapshot::build_with`] does the same reusing the signatures
//! of the recipes that did not change since the last build ([`SignatureCache`]), which is
//! most of the cost of a rebuild after one change.
//!
//! An item that does not validate never breaks a publication: it is left out, logged, and
//! listed in [`Snapshot::skipped`] with the reason, and everything else is published.

mod validate;

use std::fmt;
use std::io::Write as _;
use std::str::FromStr;

use axum::http::HeaderValue;
use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use flightdeck_client::canonical;
use flightdeck_client::manifest::{
    self, ContentHash, Loaded, RecipeSignatureCheck, SignError, SignatureCache, VerifyPolicy,
};
use flightdeck_client::signature::{KeyId, SigningKey, TrustedKeys};
use flightdeck_core::model::cloudbees::Configuration;
use flightdeck_core::model::manifest_v1::Manifest;
use flightdeck_core::model::normandy::{Container, RecipeSet};
use flightdeck_core::model::testpilot::FlightsIndex;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// One published item as the store gives it: an approved and enabled revision of a recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceItem {
    /// The recipe id (stable across revisions); a Normandy recipe's `id`.
    pub recipe_id: i64,
    /// The revision id; a Normandy recipe's `revision_id` (written as a string).
    pub revision_id: i64,
    /// What the item is, and so which parser validates `data` and where it is published.
    pub kind: ItemKind,
    /// The revision's content (see [`ItemKind`] for what each kind holds).
    pub data: Value,
}

/// The kinds of item (`docs/server.md`, "Kinds of item").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ItemKind {
    /// Normandy API v3 write fields (`name`, `action`, `arguments`, `extra_filter_expression`,
    /// `filter_object`, …); published in `/api/v1/recipe/signed/` and the unified manifest.
    Normandy,
    /// One Manifest v1 experiment object; published in the Manifest v1 document and the
    /// unified manifest's `experiments`.
    ManifestV1,
    /// One Test Pilot flight object; published in the control-tower index.
    Flight,
    /// One CloudBees experiment (flag) as JSON; evaluated by OFREP.
    Flag,
    /// One CloudBees target group as JSON; flags refer to it by name.
    TargetGroup,
}

impl ItemKind {
    /// Every kind, in the order documents are built.
    pub const ALL: [ItemKind; 5] = [
        ItemKind::Normandy,
        ItemKind::ManifestV1,
        ItemKind::Flight,
        ItemKind::Flag,
        ItemKind::TargetGroup,
    ];

    /// The kind's name (`normandy`, `manifest-v1`, `flight`, `flag`, `target-group`).
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Normandy => "normandy",
            ItemKind::ManifestV1 => "manifest-v1",
            ItemKind::Flight => "flight",
            ItemKind::Flag => "flag",
            ItemKind::TargetGroup => "target-group",
        }
    }
}

impl fmt::Display for ItemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not an [`ItemKind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown item kind {0:?}; expected normandy, manifest-v1, flight, flag or target-group")]
pub struct UnknownItemKind(pub String);

impl FromStr for ItemKind {
    type Err = UnknownItemKind;

    fn from_str(text: &str) -> Result<ItemKind, UnknownItemKind> {
        ItemKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| UnknownItemKind(text.to_owned()))
    }
}

/// A public key as `/api/v1/signing_key/` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishedKey {
    /// The key id (16 hex digits of the SHA-256 of the SPKI DER).
    pub key_id: String,
    /// The SPKI PEM text.
    pub public_key_pem: String,
    /// Whether this is the key that signs now.
    pub active: bool,
    /// When the key was made.
    pub created_at: Timestamp,
}

/// An item left out of a snapshot, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedItem {
    /// The recipe id.
    pub recipe_id: i64,
    /// The revision id.
    pub revision_id: i64,
    /// The item's kind.
    pub kind: ItemKind,
    /// The first problem found, as `<field path>: <message>` relative to the item's data.
    pub reason: String,
}

/// The client documents of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    /// The signed unified manifest (`/api/v1/manifest/`).
    Manifest,
    /// Normandy's list of signed records (`/api/v1/recipe/signed/`).
    RecipesSigned,
    /// The Experiments Manifest v1 document (`/api/v1/experiments/`).
    Experiments,
    /// The Test Pilot control-tower index (`/api/v1/flights/`).
    Flights,
    /// The published public keys (`/api/v1/signing_key/`).
    SigningKeys,
}

impl DocumentKind {
    /// Every document kind.
    pub const ALL: [DocumentKind; 5] = [
        DocumentKind::Manifest,
        DocumentKind::RecipesSigned,
        DocumentKind::Experiments,
        DocumentKind::Flights,
        DocumentKind::SigningKeys,
    ];

    /// A short name, for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::Manifest => "manifest",
            DocumentKind::RecipesSigned => "recipe-signed",
            DocumentKind::Experiments => "experiments",
            DocumentKind::Flights => "flights",
            DocumentKind::SigningKeys => "signing-key",
        }
    }
}

/// One rendered document: its bytes, the same bytes gzip-compressed, and its strong ETag.
#[derive(Clone)]
pub struct Document {
    body: Bytes,
    gzip: Bytes,
    etag: HeaderValue,
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("bytes", &self.body.len())
            .field("gzip_bytes", &self.gzip.len())
            .field("etag", &self.etag)
            .finish()
    }
}

impl Document {
    /// Renders `body`: compresses it once (best compression: it is served many times) and
    /// derives its ETag.
    pub fn new(body: Vec<u8>) -> Result<Document, PublishError> {
        let mut encoder =
            GzEncoder::new(Vec::with_capacity(body.len() / 4 + 64), Compression::best());
        encoder
            .write_all(&body)
            .map_err(|error| PublishError::Render(format!("gzip: {error}")))?;
        let gzip = encoder
            .finish()
            .map_err(|error| PublishError::Render(format!("gzip: {error}")))?;
        let etag = HeaderValue::from_str(&etag_of(&body))
            .map_err(|error| PublishError::Render(format!("ETag: {error}")))?;
        Ok(Document {
            body: Bytes::from(body),
            gzip: Bytes::from(gzip),
            etag,
        })
    }

    /// The document's bytes (JSON).
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The same bytes, gzip-compressed.
    pub fn gzip(&self) -> &Bytes {
        &self.gzip
    }

    /// The strong ETag, quotes included (`"<32 hex digits>"`): the first 128 bits of the
    /// SHA-256 of [`Document::body`]. Both encodings share it.
    pub fn etag(&self) -> &HeaderValue {
        &self.etag
    }

    /// [`Document::etag`] as text.
    pub fn etag_str(&self) -> &str {
        // Built from ASCII hex digits and quotes.
        self.etag.to_str().unwrap_or_default()
    }
}

/// The strong ETag of `bytes`: `"` + 32 hex digits of their SHA-256 + `"`.
pub fn etag_of(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut etag = String::with_capacity(34);
    etag.push('"');
    etag.push_str(&flightdeck_client::signature::hex(&digest[..16]));
    etag.push('"');
    etag
}

/// What OFREP and previews evaluate: the published items, parsed and compiled by the core.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The published Normandy recipes (as the unified manifest carries them).
    pub recipes: RecipeSet,
    /// The published Manifest v1 experiments.
    pub experiments: Manifest,
    /// The published Test Pilot flights.
    pub flights: FlightsIndex,
    /// The published CloudBees flags and target groups.
    pub flags: Configuration,
}

/// Why a snapshot could not be built. Invalid items never cause one: they are skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The serial is above what a unified manifest can carry (2^53 − 1).
    #[error("serial {0} is above the largest manifest serial")]
    Serial(u64),
    /// Signing failed.
    #[error("signing the manifest: {0}")]
    Sign(SignError),
    /// A document could not be rendered.
    #[error("rendering a document: {0}")]
    Render(String),
    /// The signed manifest did not pass the client's own checks (a bug, never published).
    #[error("the signed manifest does not verify: {0}")]
    SelfCheck(String),
    /// The task building the snapshot failed (it panicked or was cancelled).
    #[error("building the snapshot: {0}")]
    Task(String),
}

/// The immutable set of client documents of one environment at one publication.
#[derive(Debug)]
pub struct Snapshot {
    environment: String,
    serial: u64,
    published_at: Timestamp,
    content_hash: ContentHash,
    key_id: KeyId,
    manifest: Document,
    recipes_signed: Document,
    experiments: Document,
    flights: Document,
    signing_keys: Document,
    skipped: Vec<SkippedItem>,
    compiled: Compiled,
}

impl Snapshot {
    /// Validates `items`, signs and renders every client document of `environment`.
    ///
    /// `serial` and `published_at` come from the store's publication for
    /// [`content_hash`]`(items, key.key_id())`, so that every node publishing the same
    /// content signs byte-identical documents. Items are published in the order given.
    /// Invalid items are skipped (see [`Snapshot::skipped`]); errors are only about
    /// signing and rendering.
    pub fn build(
        environment: &str,
        items: &[SourceItem],
        key: &SigningKey,
        published_keys: &[PublishedKey],
        serial: u64,
        published_at: Timestamp,
    ) -> Result<Snapshot, PublishError> {
        Snapshot::build_with(
            environment,
            items,
            key,
            published_keys,
            serial,
            published_at,
            &mut SignatureCache::new(),
        )
    }

    /// [`Snapshot::build`], taking the signatures of unchanged recipes from `cache` (one
    /// cache per environment: it keeps only what the last build used). The documents are
    /// byte-identical to the ones [`Snapshot::build`] makes.
    pub fn build_with(
        environment: &str,
        items: &[SourceItem],
        key: &SigningKey,
        published_keys: &[PublishedKey],
        serial: u64,
        published_at: Timestamp,
        cache: &mut SignatureCache,
    ) -> Result<Snapshot, PublishError> {
        if serial > manifest::MAX_SERIAL {
            return Err(PublishError::Serial(serial));
        }
        let validated = validate::validate(items)?;
        for skipped in &validated.skipped {
            tracing::warn!(
                environment,
                recipe_id = skipped.recipe_id,
                revision_id = skipped.revision_id,
                kind = skipped.kind.as_str(),
                reason = skipped.reason.as_str(),
                "item left out of the publication"
            );
        }

        let signed = manifest::sign_manifest_with(
            &[&validated.normandy, &validated.experiments],
            key,
            serial,
            published_at,
            cache,
        )
        .map_err(|error| match error {
            SignError::Serial(serial) => PublishError::Serial(serial),
            other => PublishError::Sign(other),
        })?;
        let manifest_bytes = to_json(&signed)?;
        let records = signed
            .get("normandy")
            .cloned()
            .unwrap_or_else(|| Value::Array(Vec::new()));
        let recipes_bytes = to_json(&records)?;
        drop(signed);

        let checked = self_check(&manifest_bytes, key)?;
        let recipes = checked
            .source()
            .recipes()
            .cloned()
            .unwrap_or_else(|| RecipeSet {
                recipes: Vec::new(),
                container: Container::Array,
            });

        let snapshot = Snapshot {
            environment: environment.to_owned(),
            serial,
            published_at,
            content_hash: content_hash(items, key.key_id()),
            key_id: key.key_id().clone(),
            manifest: Document::new(manifest_bytes)?,
            recipes_signed: Document::new(recipes_bytes)?,
            experiments: Document::new(validated.experiments_bytes)?,
            flights: Document::new(validated.flights_bytes)?,
            signing_keys: Document::new(to_json(published_keys)?)?,
            skipped: validated.skipped,
            compiled: Compiled {
                recipes,
                experiments: validated
                    .experiments
                    .source()
                    .experiments()
                    .cloned()
                    .unwrap_or_default(),
                flights: validated.flights,
                flags: validated.flags,
            },
        };
        Ok(snapshot)
    }

    /// The environment.
    pub fn environment(&self) -> &str {
        &self.environment
    }

    /// The publication's serial.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// The publication's time.
    pub fn published_at(&self) -> Timestamp {
        self.published_at
    }

    /// [`content_hash`] of the items and key this snapshot was built from.
    pub fn content_hash(&self) -> &ContentHash {
        &self.content_hash
    }

    /// The id of the key that signed.
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    /// One client document.
    pub fn document(&self, kind: DocumentKind) -> &Document {
        match kind {
            DocumentKind::Manifest => &self.manifest,
            DocumentKind::RecipesSigned => &self.recipes_signed,
            DocumentKind::Experiments => &self.experiments,
            DocumentKind::Flights => &self.flights,
            DocumentKind::SigningKeys => &self.signing_keys,
        }
    }

    /// The signed unified manifest; its ETag is the one push notices carry.
    pub fn manifest(&self) -> &Document {
        &self.manifest
    }

    /// The items left out, in item order, with their reasons.
    pub fn skipped(&self) -> &[SkippedItem] {
        &self.skipped
    }

    /// The published items, parsed and compiled.
    pub fn compiled(&self) -> &Compiled {
        &self.compiled
    }
}

/// The hash of what a publication is made of: the items (kind, ids, canonical `data`, in
/// order) and the signing key's id. A new key must give a new serial, because a client
/// refuses a second document with the serial it already accepted and other content.
///
/// The store gives a new serial exactly when this hash differs from the last publication's.
pub fn content_hash(items: &[SourceItem], key_id: &KeyId) -> ContentHash {
    let mut hasher = Sha256::new();
    // Every field is length-prefixed, so no two different inputs write the same stream.
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    };
    field(b"flightdeck-publication-v1");
    field(key_id.as_str().as_bytes());
    for item in items {
        field(item.kind.as_str().as_bytes());
        field(&item.recipe_id.to_be_bytes());
        field(&item.revision_id.to_be_bytes());
        field(&canonical::to_vec(&item.data));
    }
    ContentHash(hasher.finalize().into())
}

/// `value` as compact JSON.
fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, PublishError> {
    serde_json::to_vec(value).map_err(|error| PublishError::Render(format!("JSON: {error}")))
}

/// Reads the signed manifest back as a client with `key` trusted would, so that a document
/// no client would accept is never published.
pub(crate) fn self_check(bytes: &[u8], key: &SigningKey) -> Result<Loaded, PublishError> {
    let loaded = manifest::load("manifest", bytes)
        .map_err(|error| PublishError::SelfCheck(error.to_string()))?;
    let mut trusted = TrustedKeys::new();
    trusted.insert(key.public_key().clone());
    let policy = VerifyPolicy {
        require_signature: true,
        // Every record was signed by the same key, a moment ago or (from the signature
        // cache, keyed by the key and the signed digest) in an earlier build; the document
        // signature covers their bytes.
        recipe_signatures: RecipeSignatureCheck::Skip,
        freshness: None,
    };
    let verified = manifest::verify(loaded, &trusted, None, &policy)
        .map_err(|error| PublishError::SelfCheck(error.to_string()))?;
    Ok(verified.into_loaded())
}
