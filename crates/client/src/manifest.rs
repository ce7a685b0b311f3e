//! The manifest a client fetches: reading it, checking its signatures, and signing one.
//!
//! A client accepts these documents ([`load`]):
//!
//! - the **signed unified manifest** (`"format": "flightdeck-manifest"`): Normandy recipes
//!   as signed records `{recipe, signature}`, an optional Experiments Manifest v1 document, a
//!   `serial` that grows with every publication, and a signature over the whole document
//!   (see `docs/manifest-format.md`);
//! - any Normandy recipe document the core reads (an array of recipes in the signed record's
//!   `recipe` shape, an array of `{recipe, signature}` records, API v1/v3 recipes, paginated
//!   or Remote Settings listings);
//! - an Experiments Manifest v1 document.
//!
//! [`verify`] decides whether a loaded document may be used. When trusted keys are configured
//! only a unified manifest with a valid whole-document signature passes, and never one older
//! than the last accepted one (replay). Each recipe's own signature is checked too, at every
//! run as Normandy does; a recipe whose signature fails is reported (its suitability is
//! `signature-error`) without failing the manifest. [`sign_manifest`] writes a unified
//! manifest from loaded documents, every recipe signed; [`sign_manifest_with`] does the same
//! reusing the signatures of unchanged recipes from a [`SignatureCache`].
//!
//! What is signed is always canonical JSON ([`crate::canonical`]) with the content-signature
//! prefix ([`crate::signature`]): the whole document without its top-level `signature`
//! member, and each record's `recipe` object exactly as it is in the document.

mod load;
mod sign;
#[cfg(test)]
mod tests;
mod unified;
mod verify;

use std::fmt;
use std::sync::{Arc, OnceLock};

use flightdeck_core::diagnostic::Diagnostic;
use flightdeck_core::model::manifest_v1::Manifest;
use flightdeck_core::model::normandy::RecipeSet;
use jiff::Timestamp;
use serde_json::Value;

pub use load::{load, load_shared};
pub use sign::{SignError, SignatureCache, sign_manifest, sign_manifest_with};
pub use verify::{
    Freshness, LastAccepted, RecipeSignatureCheck, Verified, VerifyError, VerifyPolicy, verify,
};

/// The `format` of a unified manifest.
pub const FORMAT: &str = "flightdeck-manifest";

/// The only unified manifest `version` this client reads.
pub const VERSION: u64 = 1;

/// The largest `serial`: JavaScript's `Number.MAX_SAFE_INTEGER`, so that every reader (and the
/// canonical form, which writes numbers as doubles) sees the same number.
pub const MAX_SERIAL: u64 = (1 << 53) - 1;

/// Documents larger than this are refused before parsing.
pub const MAX_MANIFEST_BYTES: usize = 64 * 1024 * 1024;

/// A document a client can run, in the format it came in.
#[derive(Debug, Clone)]
pub enum ManifestSource {
    /// Normandy recipes (any recipe shape, one or many); never signed as a whole.
    Normandy(RecipeSet),
    /// An Experiments Manifest v1; never signed.
    ManifestV1(Manifest),
    /// A unified manifest.
    Unified(UnifiedManifest),
}

impl ManifestSource {
    /// A short name of the format, for messages: `normandy`, `manifest-v1` or
    /// `flightdeck-manifest`.
    pub fn format_name(&self) -> &'static str {
        match self {
            ManifestSource::Normandy(_) => "normandy",
            ManifestSource::ManifestV1(_) => "manifest-v1",
            ManifestSource::Unified(_) => FORMAT,
        }
    }

    /// The Normandy recipes, if the document has any.
    pub fn recipes(&self) -> Option<&RecipeSet> {
        match self {
            ManifestSource::Normandy(set) => Some(set),
            ManifestSource::Unified(unified) => Some(&unified.normandy),
            ManifestSource::ManifestV1(_) => None,
        }
    }

    /// The Manifest v1 experiments, if the document has them.
    pub fn experiments(&self) -> Option<&Manifest> {
        match self {
            ManifestSource::ManifestV1(manifest) => Some(manifest),
            ManifestSource::Unified(unified) => unified.experiments.as_ref(),
            ManifestSource::Normandy(_) => None,
        }
    }
}

/// A unified manifest, parsed.
#[derive(Debug, Clone)]
pub struct UnifiedManifest {
    /// The publication number; strictly greater for every new publication.
    pub serial: u64,
    /// When it was published.
    pub published_at: Timestamp,
    /// The recipes of the `normandy` records (empty when there are none).
    pub normandy: RecipeSet,
    /// The `experiments` Manifest v1 document, when present.
    pub experiments: Option<Manifest>,
    /// The whole-document signature, when present.
    pub signature: Option<ManifestSignature>,
}

/// The top-level `signature` of a unified manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestSignature {
    /// base64url of the raw P-384 `r ‖ s`.
    pub signature: String,
    /// The id of the key that signed (absent: every trusted key is tried).
    pub key_id: Option<String>,
    /// The algorithm; only `ES384`.
    pub alg: String,
}

/// A document read by [`load`]: what it holds, the problems found, and what verification
/// needs.
#[derive(Debug, Clone)]
pub struct Loaded {
    name: String,
    source: ManifestSource,
    diagnostics: Vec<Diagnostic>,
    /// The document as a `serde_json::Value`: set by [`load`] for the formats it reads
    /// through one, built from `text` on first use for a unified manifest (a client run
    /// never needs it).
    document: OnceLock<Value>,
    /// The document's text, when `document` is built on first use; shared with the caller
    /// when it was loaded with [`load_shared`].
    text: Option<Arc<str>>,
    content_sha256: ContentHash,
    /// The content digest of the signed bytes of a unified manifest
    /// ([`crate::signature::content_digest`]).
    signed_digest: Option<[u8; 48]>,
}

impl Loaded {
    /// The name the document was loaded under (a file name or URL).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the document holds.
    pub fn source(&self) -> &ManifestSource {
        &self.source
    }

    /// What the document holds, taking it.
    pub fn into_source(self) -> ManifestSource {
        self.source
    }

    /// Warnings, and errors that only reject single items (a recipe, an experiment entry).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// Whether any diagnostic is an error (some item was rejected).
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The JSON document as read.
    pub fn document(&self) -> &Value {
        self.document.get_or_init(|| {
            // `load` accepted the text as JSON within serde_json's limits, so this reads it.
            self.text
                .as_deref()
                .and_then(|text| serde_json::from_str(text).ok())
                .unwrap_or(Value::Null)
        })
    }

    /// The SHA-256 of the signed content: the canonical JSON of the document without its
    /// top-level `signature` member (for other formats, of the whole document). Two copies of
    /// one publication have the same hash however they are formatted or re-signed.
    pub fn content_sha256(&self) -> &ContentHash {
        &self.content_sha256
    }

    /// The serial of a unified manifest.
    pub fn serial(&self) -> Option<u64> {
        match &self.source {
            ManifestSource::Unified(unified) => Some(unified.serial),
            _ => None,
        }
    }
}

/// A SHA-256 digest, shown and stored as 64 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    /// Reads 64 hex digits (either case).
    pub fn from_hex(text: &str) -> Option<ContentHash> {
        // `from_str_radix` alone would take a sign (`+1`).
        if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks(2)) {
            let pair = std::str::from_utf8(pair).ok()?;
            *byte = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(ContentHash(bytes))
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::signature::hex(&self.0))
    }
}

/// A document that cannot be used at all: not JSON, not a manifest format, or broken beyond
/// single items. Every diagnostic names file, line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// The problems, errors first in source order, then warnings.
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut errors = self.diagnostics.iter().filter(|d| d.is_error());
        match errors.next() {
            Some(first) => {
                write!(f, "{first}")?;
                let more = errors.count();
                if more > 0 {
                    write!(
                        f,
                        " (and {more} more error{})",
                        if more == 1 { "" } else { "s" }
                    )?;
                }
                Ok(())
            }
            None => f.write_str("the document cannot be used"),
        }
    }
}

impl std::error::Error for ManifestError {}
