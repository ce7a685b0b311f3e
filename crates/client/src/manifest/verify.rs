//! Deciding whether a loaded manifest may be used.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use super::{ContentHash, Loaded, ManifestSource};
use crate::canonical;
use crate::signature::{ALGORITHM, KeyId, PublicKey, SignatureError, TrustedKeys};

/// What the client remembers of the last manifest it accepted (stored in its state file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastAccepted {
    /// Its serial.
    pub serial: u64,
    /// Its [`Loaded::content_sha256`].
    pub content_sha256: ContentHash,
}

/// How strict [`verify`] is. The default checks signatures when keys are configured,
/// accepts unsigned documents when none are, re-checks every recipe signature, and sets no
/// maximum age.
#[derive(Debug, Clone, Default)]
pub struct VerifyPolicy {
    /// Refuse every document when no key is trusted, instead of accepting it unverified
    /// (guards against a configuration that lost its keys).
    pub require_signature: bool,
    /// Whether each recipe's own signature is checked.
    pub recipe_signatures: RecipeSignatureCheck,
    /// Refuse a manifest published too long ago (a server, or someone in the middle, that
    /// keeps serving an old but validly signed manifest).
    pub freshness: Option<Freshness>,
}

/// Whether [`verify`] checks each recipe's own signature.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RecipeSignatureCheck {
    /// At every run, as Normandy does (a P-384 verification per recipe).
    #[default]
    Always,
    /// Never: the whole-document signature, checked at every run, already covers every
    /// recipe's bytes. For clients that cannot afford one verification per recipe.
    Skip,
}

/// The age limit of [`VerifyPolicy::freshness`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// The current time (passed in: the library reads no clock).
    pub now: Timestamp,
    /// The largest accepted `now - publishedAt`.
    pub max_age: SignedDuration,
}

/// A manifest that passed [`verify`]: only these should be run.
#[derive(Debug, Clone)]
pub struct Verified {
    loaded: Loaded,
    key_id: Option<KeyId>,
    bad_recipes: BTreeMap<u64, SignatureError>,
}

impl Verified {
    /// The document.
    pub fn loaded(&self) -> &Loaded {
        &self.loaded
    }

    /// The document, taking it.
    pub fn into_loaded(self) -> Loaded {
        self.loaded
    }

    /// The key that signed the whole document; `None` when nothing was verified (no trusted
    /// keys, and the policy allowed that).
    pub fn key_id(&self) -> Option<&KeyId> {
        self.key_id.as_ref()
    }

    /// The recipes whose own signature is missing or wrong, by recipe id, with why. Their
    /// suitability is `signature-error`: they must not run. Empty when recipe signatures
    /// were not checked.
    pub fn bad_recipes(&self) -> &BTreeMap<u64, SignatureError> {
        &self.bad_recipes
    }

    /// What to remember so that the next manifest can be checked for replay (`None` for an
    /// unverified document: its serial means nothing).
    pub fn accepted(&self) -> Option<LastAccepted> {
        let serial = self.loaded.serial()?;
        self.key_id.as_ref().map(|_| LastAccepted {
            serial,
            content_sha256: *self.loaded.content_sha256(),
        })
    }
}

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// No trusted keys, and the policy requires signatures.
    #[error("{name}: no trusted keys are configured, so nothing can be verified")]
    NoTrustedKeys {
        /// The document.
        name: String,
    },
    /// Keys are configured but the document has no whole-document signature (it is not a
    /// unified manifest, or its `signature` is missing).
    #[error(
        "{name}: unsigned: a {format} document has no manifest signature; with trusted keys \
         configured only a signed {} is accepted",
        super::FORMAT
    )]
    Unsigned {
        /// The document.
        name: String,
        /// Its format.
        format: &'static str,
    },
    /// The signature names an algorithm other than ES384.
    #[error("{name}: unsupported signature algorithm {alg:?} (only {ALGORITHM})")]
    Algorithm {
        /// The document.
        name: String,
        /// The algorithm named.
        alg: String,
    },
    /// The whole-document signature does not verify (tampered, or signed by an untrusted key).
    #[error("{name}: bad signature: {error}")]
    BadSignature {
        /// The document.
        name: String,
        /// Why.
        error: SignatureError,
    },
    /// The serial is lower than the last accepted one: an old manifest served again.
    #[error(
        "{name}: replayed: serial {serial} is older than the last accepted manifest (serial {last})"
    )]
    Replayed {
        /// The document.
        name: String,
        /// Its serial.
        serial: u64,
        /// The last accepted serial.
        last: u64,
    },
    /// The serial equals the last accepted one but the content differs.
    #[error(
        "{name}: replayed: serial {serial} was already accepted with different content \
         (a new publication needs a higher serial)"
    )]
    SerialReused {
        /// The document.
        name: String,
        /// The serial.
        serial: u64,
    },
    /// Published longer ago than [`Freshness::max_age`].
    #[error("{name}: stale: published at {published_at}, more than {max_age:#} before {now}")]
    Stale {
        /// The document.
        name: String,
        /// Its `publishedAt`.
        published_at: Timestamp,
        /// The limit.
        max_age: SignedDuration,
        /// The time of the check.
        now: Timestamp,
    },
}

impl VerifyError {
    /// A short stable code for telemetry and status output: `no-trusted-keys`, `unsigned`,
    /// `algorithm`, `bad-signature`, `replayed` or `stale`.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::NoTrustedKeys { .. } => "no-trusted-keys",
            VerifyError::Unsigned { .. } => "unsigned",
            VerifyError::Algorithm { .. } => "algorithm",
            VerifyError::BadSignature { .. } => "bad-signature",
            VerifyError::Replayed { .. } | VerifyError::SerialReused { .. } => "replayed",
            VerifyError::Stale { .. } => "stale",
        }
    }
}

/// Decides whether `loaded` may be used, checking in this order:
///
/// 1. With no trusted keys: refused when the policy requires signatures, else accepted as it
///    is (nothing verified, [`Verified::key_id`] is `None`).
/// 2. With trusted keys, only a unified manifest with a `signature` is accepted; its `alg`
///    must be ES384, and the signature must verify over the canonical document without
///    `signature`, with the key `keyId` names (every trusted key when it names none).
/// 3. Replay: a serial below `last.serial` is refused; the same serial is accepted only for
///    the same content (the same [`Loaded::content_sha256`]).
/// 4. Freshness, when the policy sets it.
/// 5. Each record's own signature over its canonical `recipe` (unless the policy skips it):
///    a missing or bad one puts the recipe id in [`Verified::bad_recipes`] and does not
///    refuse the manifest.
pub fn verify(
    loaded: Loaded,
    trusted: &TrustedKeys,
    last: Option<&LastAccepted>,
    policy: &VerifyPolicy,
) -> Result<Verified, VerifyError> {
    let name = loaded.name().to_owned();
    if trusted.is_empty() {
        if policy.require_signature {
            return Err(VerifyError::NoTrustedKeys { name });
        }
        return Ok(Verified {
            loaded,
            key_id: None,
            bad_recipes: BTreeMap::new(),
        });
    }
    let unified = match loaded.source() {
        ManifestSource::Unified(unified) => unified,
        other => {
            return Err(VerifyError::Unsigned {
                name,
                format: other.format_name(),
            });
        }
    };
    let (Some(signature), Some(digest)) = (&unified.signature, loaded.signed_digest.as_ref())
    else {
        return Err(VerifyError::Unsigned {
            name,
            format: super::FORMAT,
        });
    };
    if signature.alg != ALGORITHM {
        return Err(VerifyError::Algorithm {
            name,
            alg: signature.alg.clone(),
        });
    }
    let key_id = trusted
        .verify_digest_with(digest, &signature.signature, signature.key_id.as_deref())
        .map_err(|error| VerifyError::BadSignature {
            name: name.clone(),
            error,
        })?;

    if let Some(last) = last {
        if unified.serial < last.serial {
            return Err(VerifyError::Replayed {
                name,
                serial: unified.serial,
                last: last.serial,
            });
        }
        if unified.serial == last.serial && *loaded.content_sha256() != last.content_sha256 {
            return Err(VerifyError::SerialReused {
                name,
                serial: unified.serial,
            });
        }
    }
    if let Some(freshness) = policy.freshness
        && freshness.now.duration_since(unified.published_at) > freshness.max_age
    {
        return Err(VerifyError::Stale {
            name,
            published_at: unified.published_at,
            max_age: freshness.max_age,
            now: freshness.now,
        });
    }

    let bad_recipes = match policy.recipe_signatures {
        RecipeSignatureCheck::Always => {
            bad_recipe_signatures(loaded.document().get("normandy"), trusted)
        }
        RecipeSignatureCheck::Skip => BTreeMap::new(),
    };
    Ok(Verified {
        loaded,
        key_id: Some(key_id),
        bad_recipes,
    })
}

/// Checks every `{recipe, signature}` record; returns the ids of the recipes that fail.
fn bad_recipe_signatures(
    records: Option<&Value>,
    trusted: &TrustedKeys,
) -> BTreeMap<u64, SignatureError> {
    let mut bad = BTreeMap::new();
    let Some(Value::Array(records)) = records else {
        return bad;
    };
    for record in records {
        let Some(recipe) = record.get("recipe") else {
            continue;
        };
        // A recipe without a usable id is not run at all (the parser dropped it).
        let Some(id) = recipe.get("id").and_then(Value::as_u64) else {
            continue;
        };
        if let Err(error) = check_recipe(recipe, record.get("signature"), trusted) {
            // With duplicate ids, one bad record is enough to distrust the id.
            bad.entry(id).or_insert(error);
        }
    }
    bad
}

/// Verifies one record's signature over its canonical `recipe`.
///
/// The key is the one `keyId` names; without `keyId`, the one whose SPKI `public_key` is
/// (it must be trusted); without either, every trusted key is tried.
fn check_recipe(
    recipe: &Value,
    signature: Option<&Value>,
    trusted: &TrustedKeys,
) -> Result<KeyId, SignatureError> {
    let signature = signature.ok_or(SignatureError::Missing)?;
    let text = signature
        .get("signature")
        .and_then(Value::as_str)
        .filter(|text| !text.is_empty())
        .ok_or(SignatureError::Missing)?;
    let key_id = match signature.get("keyId").and_then(Value::as_str) {
        Some(id) => Some(id.to_owned()),
        None => signature
            .get("public_key")
            .and_then(Value::as_str)
            .and_then(|b64| PublicKey::from_base64_der("public_key", b64).ok())
            .map(|key| key.id().to_string()),
    };
    trusted.verify_with(&canonical::to_vec(recipe), text, key_id.as_deref())
}
