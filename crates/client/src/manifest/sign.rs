//! Writing a signed unified manifest, reusing the recipe signatures of earlier builds
//! ([`SignatureCache`]).

use std::collections::{BTreeMap, HashMap};

use flightdeck_core::diagnostic::Diagnostic;
use flightdeck_core::model::normandy::{
    self, Container, FilterSource, JsonMap, Layout, Recipe, RecipeSet, RevisionId, Shape,
};
use jiff::Timestamp;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::{FORMAT, Loaded, MAX_SERIAL, ManifestSource, VERSION};
use crate::canonical;
use crate::signature::{ALGORITHM, SignatureError, SigningKey, content_digest};

/// The member of a minimal recipe that the core parser keeps among a recipe's other keys.
const USES_ONLY_BASELINE: &str = "uses_only_baseline_capabilities";

/// Why a manifest could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// An input has errors (a rejected recipe or experiment); fix them first.
    #[error("{first} (fix the errors before signing)")]
    InputErrors {
        /// The first error.
        first: Box<Diagnostic>,
    },
    /// Two inputs hold Manifest v1 experiments.
    #[error("{first} and {second} both hold Manifest v1 experiments; a manifest holds at most one")]
    TwoExperimentManifests {
        /// The first input with experiments.
        first: String,
        /// The second.
        second: String,
    },
    /// Two recipes have the same id.
    #[error("recipe {id} is in {first} and again in {second}")]
    DuplicateRecipe {
        /// The id.
        id: u64,
        /// The input of the first one.
        first: String,
        /// The input of the second.
        second: String,
    },
    /// The serial is too large.
    #[error("serial {0} is above the largest serial {MAX_SERIAL}")]
    Serial(u64),
    /// Signing failed.
    #[error("{0}")]
    Signature(#[from] SignatureError),
}

/// Writes a unified manifest holding every recipe and the experiments of `parts`, each
/// recipe signed on its own and the whole document signed, all with `key`.
///
/// Recipes are written as Normandy's minimal recipe (`{id, name, revision_id, action,
/// arguments, filter_expression, capabilities, uses_only_baseline_capabilities}`, with
/// `revision_id` a string and `capabilities` sorted), built from the parsed recipe whatever
/// shape it came in; other members (API v1's `enabled`, `last_updated`, …) are not carried.
/// A unified manifest's records keep their `recipe` objects as they are (only the
/// signatures are new), so re-signing never changes what a recipe says. The experiments are
/// the Manifest v1 document as read.
///
/// The `normandy` records (nearly all of a manifest) list the keys of every object in
/// canonical order, so that a client writes their canonical form while it reads them instead
/// of sorting them (see `canonical::canonicalize`); the rest keeps the order of the format's
/// description and of the experiments document.
///
/// Inputs with errors are refused, as are two inputs with experiments, a recipe id that
/// appears twice, and a serial above [`MAX_SERIAL`].
///
/// Every signature is made anew; a signer that builds manifests again and again (a server
/// rebuilding after each change) uses [`sign_manifest_with`] to reuse the unchanged recipes'
/// signatures.
pub fn sign_manifest(
    parts: &[&Loaded],
    key: &SigningKey,
    serial: u64,
    published_at: Timestamp,
) -> Result<Value, SignError> {
    sign_manifest_with(parts, key, serial, published_at, &mut SignatureCache::new())
}

/// Recipe signatures already made, by what was signed and the key that signed it, so that a
/// manifest built again signs only the recipes that changed.
///
/// An entry's key is the SHA-256 of the signing key's SPKI DER encoding (the whole key, not
/// its 64-bit [`KeyId`](crate::signature::KeyId)) and the content digest of the recipe's
/// canonical bytes ([`content_digest`]: the SHA-384 that the ECDSA signature itself signs).
/// A signature is therefore reused exactly when it is a valid signature of the recipe by
/// that key: an entry that matched the wrong data would be a SHA-384 collision, which
/// breaks the signature anyway. A different key (a key rotation) finds no entry and signs
/// every recipe again.
///
/// Signatures are deterministic (RFC 6979), so a reused signature is the one signing anew
/// would give and a manifest is byte-identical with or without the cache. The
/// whole-document signature is never cached: it covers the serial and time, which change
/// with every new publication.
///
/// The cache holds only what the last successful build used: [`sign_manifest_with`]
/// replaces its entries with the ones that build looked up, so it never holds more than one
/// manifest's recipes, and a removed recipe's signature goes with it.
#[derive(Debug, Clone, Default)]
pub struct SignatureCache {
    entries: HashMap<CacheKey, String>,
    hits: usize,
    misses: usize,
}

/// What a cached signature signed: the signer's SPKI DER SHA-256 and the content digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct CacheKey {
    signer: [u8; 32],
    digest: [u8; 48],
}

impl SignatureCache {
    /// An empty cache.
    pub fn new() -> SignatureCache {
        SignatureCache::default()
    }

    /// How many signatures the cache holds (those of the last build's recipes).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache holds no signature.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many recipe signatures the last successful build took from the cache.
    pub fn hits(&self) -> usize {
        self.hits
    }

    /// How many recipe signatures the last successful build made anew (the whole-document
    /// signature, always made anew, is not counted).
    pub fn misses(&self) -> usize {
        self.misses
    }

    /// Forgets every signature and the counts.
    pub fn clear(&mut self) {
        *self = SignatureCache::default();
    }
}

/// [`sign_manifest`], taking each recipe's signature from `cache` when it holds one made by
/// `key` for the same recipe bytes, and signing the others.
///
/// On success the cache holds exactly the signatures of this manifest's recipes (the others
/// are evicted) and counts its hits and misses; on an error it is left as it was. The
/// document is the one [`sign_manifest`] writes for the same arguments: the records'
/// `signature.timestamp` is `published_at` whether the signature was reused or not, so the
/// output does not depend on what the cache held.
pub fn sign_manifest_with(
    parts: &[&Loaded],
    key: &SigningKey,
    serial: u64,
    published_at: Timestamp,
    cache: &mut SignatureCache,
) -> Result<Value, SignError> {
    if serial > MAX_SERIAL {
        return Err(SignError::Serial(serial));
    }
    let mut recipes: Vec<(Value, &str)> = Vec::new();
    let mut experiments: Option<(Value, &str)> = None;
    for part in parts {
        if let Some(first) = part.diagnostics().iter().find(|d| d.is_error()) {
            return Err(SignError::InputErrors {
                first: Box::new(first.clone()),
            });
        }
        let part_experiments = match part.source() {
            ManifestSource::Normandy(set) => {
                recipes.extend(minimal_recipes(set).into_iter().map(|r| (r, part.name())));
                None
            }
            ManifestSource::ManifestV1(_) => Some(part.document().clone()),
            ManifestSource::Unified(unified) => {
                if let Some(Value::Array(records)) = part.document().get("normandy") {
                    recipes.extend(
                        records
                            .iter()
                            .filter_map(|record| record.get("recipe"))
                            .map(|recipe| (recipe.clone(), part.name())),
                    );
                }
                unified
                    .experiments
                    .as_ref()
                    .and_then(|_| part.document().get("experiments").cloned())
            }
        };
        if let Some(document) = part_experiments {
            if let Some((_, first)) = &experiments {
                return Err(SignError::TwoExperimentManifests {
                    first: (*first).to_owned(),
                    second: part.name().to_owned(),
                });
            }
            experiments = Some((document, part.name()));
        }
    }
    let mut seen: BTreeMap<u64, &str> = BTreeMap::new();
    for (recipe, name) in &recipes {
        if let Some(id) = recipe.get("id").and_then(Value::as_u64)
            && let Some(first) = seen.insert(id, name)
        {
            return Err(SignError::DuplicateRecipe {
                id,
                first: first.to_owned(),
                second: (*name).to_owned(),
            });
        }
    }

    let timestamp = published_at.to_string();
    let public_key = key.public_key().to_base64_der();
    let signer: [u8; 32] = Sha256::digest(key.public_key().spki_der()).into();
    // The entries this build uses: they become the cache when it succeeds.
    let mut used: HashMap<CacheKey, String> = HashMap::with_capacity(recipes.len());
    let (mut hits, mut misses) = (0, 0);
    let mut records = Vec::with_capacity(recipes.len());
    for (recipe, _) in recipes {
        let bytes = canonical::to_vec(&recipe);
        let entry = CacheKey {
            signer,
            digest: content_digest(&bytes),
        };
        let cached = cache
            .entries
            .get(&entry)
            .or_else(|| used.get(&entry))
            .cloned();
        let signature = match cached {
            Some(signature) => {
                hits += 1;
                signature
            }
            None => {
                misses += 1;
                key.sign(&bytes)?
            }
        };
        used.insert(entry, signature.clone());
        let mut signature_object = JsonMap::new();
        signature_object.insert("signature".to_owned(), Value::String(signature));
        signature_object.insert("timestamp".to_owned(), Value::String(timestamp.clone()));
        signature_object.insert("x5u".to_owned(), Value::Null);
        signature_object.insert("public_key".to_owned(), Value::String(public_key.clone()));
        signature_object.insert("keyId".to_owned(), Value::String(key.key_id().to_string()));
        let mut record = JsonMap::new();
        record.insert("recipe".to_owned(), recipe);
        record.insert("signature".to_owned(), Value::Object(signature_object));
        records.push(in_canonical_order(Value::Object(record)));
    }

    let mut document = JsonMap::new();
    document.insert("format".to_owned(), Value::String(FORMAT.to_owned()));
    document.insert("version".to_owned(), Value::from(VERSION));
    document.insert("serial".to_owned(), Value::from(serial));
    document.insert("publishedAt".to_owned(), Value::String(timestamp));
    document.insert("normandy".to_owned(), Value::Array(records));
    if let Some((experiments, _)) = experiments {
        document.insert("experiments".to_owned(), experiments);
    }
    let signature = key.sign(&canonical::to_vec(&Value::Object(document.clone())))?;
    let mut signature_object = JsonMap::new();
    signature_object.insert("signature".to_owned(), Value::String(signature));
    signature_object.insert("keyId".to_owned(), Value::String(key.key_id().to_string()));
    signature_object.insert("alg".to_owned(), Value::String(ALGORITHM.to_owned()));
    document.insert("signature".to_owned(), Value::Object(signature_object));
    *cache = SignatureCache {
        entries: used,
        hits,
        misses,
    };
    Ok(Value::Object(document))
}

/// `value` with the keys of every object in canonical order.
fn in_canonical_order(value: Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(in_canonical_order).collect()),
        Value::Object(map) => {
            let mut members: Vec<(String, Value)> = map.into_iter().collect();
            members.sort_by(|(a, _), (b, _)| canonical::compare_utf16(a, b));
            Value::Object(
                members
                    .into_iter()
                    .map(|(key, item)| (key, in_canonical_order(item)))
                    .collect(),
            )
        }
        other => other,
    }
}

/// The minimal recipe objects of `set`, written by the core serialiser from the parsed
/// recipes (so a v3 recipe gets its compiled `filter_expression` and derived capabilities).
fn minimal_recipes(set: &RecipeSet) -> Vec<Value> {
    let recipes = set.recipes.iter().map(minimal_recipe).collect();
    let minimal = RecipeSet {
        recipes,
        container: Container::Array,
    };
    match serde_json::from_str(&normandy::to_json(&minimal)) {
        Ok(Value::Array(items)) => items,
        // The core writes an array for `Container::Array`.
        _ => Vec::new(),
    }
}

fn minimal_recipe(recipe: &Recipe) -> Recipe {
    let mut minimal = recipe.clone();
    minimal.revision_id = recipe
        .revision_id
        .as_ref()
        .map(|id| RevisionId::Text(id.to_string()));
    minimal.capabilities.sort();
    minimal.signature = None;
    let uses_only_baseline = match &recipe.layout.shape {
        Shape::V3 { extra, .. } => extra.get(USES_ONLY_BASELINE),
        Shape::Bare | Shape::Signed { .. } => recipe.layout.extra.get(USES_ONLY_BASELINE),
    };
    let mut extra = JsonMap::new();
    if let Some(value) = uses_only_baseline {
        extra.insert(USES_ONLY_BASELINE.to_owned(), value.clone());
    }
    minimal.layout = Layout {
        shape: Shape::Bare,
        action_object: None,
        filter_source: FilterSource {
            filter_expression: recipe
                .filter
                .as_ref()
                .map(|filter| filter.expression.clone())
                .or_else(|| recipe.layout.filter_source.filter_expression.clone()),
            ..FilterSource::default()
        },
        capabilities_given: true,
        extra,
    };
    minimal
}
