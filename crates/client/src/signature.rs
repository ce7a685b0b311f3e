//! Mozilla content signatures: ECDSA P-384 with SHA-384 over `"Content-Signature:\0" ‖ data`.
//!
//! This is the primitive Normandy and Remote Settings use (Autograph's `contentsignature`
//! signer, Firefox's `nsIContentSignatureVerifier`): the signature is the raw 96-byte
//! `r ‖ s` (two big-endian 48-byte integers), written in base64url without padding (padded
//! input is accepted too). Signing is deterministic (RFC 6979), so the same key and data
//! always give the same signature.
//!
//! Keys are plain key pairs, not certificate chains: a [`SigningKey`] is read from and written
//! to a PKCS#8 PEM file, a [`PublicKey`] from an SPKI PEM file (`-----BEGIN PUBLIC KEY-----`).
//! A client trusts a set of public keys ([`TrustedKeys`]), so a publisher can rotate keys by
//! shipping the new public key to clients before signing with it. Keys are named by their
//! [`KeyId`]: the first 16 hex digits of the SHA-256 of the SPKI DER encoding.
//!
//! Keys are read, written and used for signing with RustCrypto's `p384`; signatures are
//! verified with `aws-lc-rs` (assembly P-384, about four times faster, which matters because a
//! client verifies its manifest at every run). Both accept exactly the signatures OpenSSL
//! accepts (see `tests/it/signature_openssl.rs`).

use std::fmt;
use std::path::Path;

use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED, ParsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD, URL_SAFE_NO_PAD_INDIFFERENT};
use p384::ecdsa::signature::MultipartSigner as _;
use p384::elliptic_curve::Generate as _;
use p384::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePrivateKey as _};
use p384::pkcs8::{EncodePublicKey as _, LineEnding};
use sha2::{Digest as _, Sha256, Sha384};

/// The random number generator traits key generation takes (rand_core 0.10).
pub use p384::elliptic_curve::rand_core;
/// A string that is wiped from memory when dropped (private key PEM text).
pub use p384::elliptic_curve::zeroize::Zeroizing;

/// What every signed message starts with (the NUL is part of it).
pub const CONTENT_SIGNATURE_PREFIX: &[u8] = b"Content-Signature:\x00";

/// The JOSE name of the algorithm, as written in a manifest's `signature.alg`.
pub const ALGORITHM: &str = "ES384";

/// Length of a raw P-384 signature, `r ‖ s`.
pub const SIGNATURE_BYTES: usize = 96;

/// Length of a key id in hex digits.
pub const KEY_ID_DIGITS: usize = 16;

/// The name of a public key: the first 16 lowercase hex digits of the SHA-256 of its SPKI
/// DER encoding (so `openssl pkey -pubin -outform DER | sha256sum | cut -c1-16` gives it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(String);

impl KeyId {
    /// The id of the public key whose SubjectPublicKeyInfo DER encoding is `spki_der`.
    pub fn of_spki_der(spki_der: &[u8]) -> KeyId {
        let digest = Sha256::digest(spki_der);
        let mut id = hex(&digest);
        id.truncate(KEY_ID_DIGITS);
        KeyId(id)
    }

    /// Reads a key id as written in a manifest: exactly 16 hex digits (upper case is
    /// accepted and lowered).
    pub fn parse(text: &str) -> Option<KeyId> {
        (text.len() == KEY_ID_DIGITS && text.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| KeyId(text.to_ascii_lowercase()))
    }

    /// The 16 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a content signature of `data` signs: SHA-384 of `"Content-Signature:\0" ‖ data`.
///
/// Computing it once lets a caller that must hash anyway (a manifest hashed while it is read)
/// verify without walking the data again ([`TrustedKeys::verify_digest_with`]).
pub fn content_digest(data: &[u8]) -> [u8; 48] {
    let mut hasher = ContentDigest::new();
    hasher.update(data);
    hasher.finalize()
}

/// [`content_digest`] of data given in pieces.
#[derive(Debug, Clone)]
pub struct ContentDigest(Sha384);

impl ContentDigest {
    /// The digest of nothing yet (the prefix is already in).
    pub fn new() -> ContentDigest {
        let mut hasher = Sha384::new();
        hasher.update(CONTENT_SIGNATURE_PREFIX);
        ContentDigest(hasher)
    }

    /// Adds the next piece of the data.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The digest of the data given so far.
    pub fn finalize(self) -> [u8; 48] {
        self.0.finalize().into()
    }
}

impl Default for ContentDigest {
    fn default() -> ContentDigest {
        ContentDigest::new()
    }
}

/// Lowercase hex of `bytes` (sha2 0.11 digests no longer format with `{:x}`).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    text
}

/// A problem reading, writing or generating a key. `source_name` is the file (or other
/// source) the key came from, as the user named it.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read.
    #[error("{source_name}: cannot read the key file: {error}")]
    Read {
        /// The file.
        source_name: String,
        /// Why.
        error: std::io::Error,
    },
    /// The text is not a key of the expected kind.
    #[error("{source_name}: {message}")]
    Invalid {
        /// Where the text came from.
        source_name: String,
        /// What is wrong.
        message: String,
    },
    /// A key could not be encoded (does not happen with well-formed keys).
    #[error("cannot encode the key: {0}")]
    Encode(String),
    /// The operating system's random source failed.
    #[error("the operating system's random source failed: {0}")]
    Random(String),
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No trusted keys are configured, so nothing can be verified.
    #[error("no trusted keys are configured")]
    NoTrustedKeys,
    /// There is no signature where one is required.
    #[error("there is no signature")]
    Missing,
    /// The signature text is not base64url.
    #[error("the signature is not base64url: {0}")]
    Encoding(String),
    /// The signature does not decode to 96 bytes.
    #[error("the signature is {0} bytes; a P-384 signature r||s is 96 bytes")]
    Length(usize),
    /// The signature names a key id that is not trusted.
    #[error("signed with key {0}, which is not a trusted key")]
    UnknownKey(String),
    /// The signature does not verify with the key(s) it could be from.
    #[error("the signature does not match the data (tried key {})", join_ids(.tried))]
    Mismatch {
        /// The keys tried.
        tried: Vec<KeyId>,
    },
    /// Signing failed (an RFC 6979 nonce gave r = 0 or s = 0: probability about 2^-384).
    #[error("signing failed: {0}")]
    Signing(String),
}

fn join_ids(ids: &[KeyId]) -> String {
    let ids: Vec<&str> = ids.iter().map(KeyId::as_str).collect();
    ids.join(", ")
}

/// A private key that signs content signatures.
#[derive(Clone)]
pub struct SigningKey {
    inner: p384::ecdsa::SigningKey,
    public: PublicKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret scalar.
        f.debug_struct("SigningKey")
            .field("key_id", &self.public.id)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new random key drawn from `rng`.
    pub fn generate<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Result<SigningKey, KeyError> {
        SigningKey::from_inner(p384::ecdsa::SigningKey::generate_from_rng(rng))
    }

    /// A new random key drawn from the operating system's random source. Only for tools
    /// (the `flightdeck keys generate` command): the client runtime takes randomness as an
    /// input.
    #[cfg(feature = "os-rng")]
    pub fn generate_from_os() -> Result<SigningKey, KeyError> {
        let inner = p384::ecdsa::SigningKey::try_generate()
            .map_err(|error| KeyError::Random(error.to_string()))?;
        SigningKey::from_inner(inner)
    }

    /// Reads a P-384 private key from PEM text: PKCS#8 (`BEGIN PRIVATE KEY`, what
    /// [`SigningKey::to_pkcs8_pem`] and `openssl genpkey` write) or SEC1 (`BEGIN EC PRIVATE
    /// KEY`, what `openssl ecparam -genkey` writes). `source_name` names the text in errors.
    pub fn from_pem(source_name: &str, text: &str) -> Result<SigningKey, KeyError> {
        let invalid = |message: String| KeyError::Invalid {
            source_name: source_name.to_owned(),
            message,
        };
        let inner = if text.contains("-----BEGIN EC PRIVATE KEY-----") {
            p384::SecretKey::from_sec1_pem(text)
                .map(p384::ecdsa::SigningKey::from)
                .map_err(|error| invalid(format!("not a SEC1 P-384 private key: {error}")))?
        } else if text.contains("-----BEGIN PRIVATE KEY-----") {
            p384::ecdsa::SigningKey::from_pkcs8_pem(text.trim()).map_err(|error| {
                invalid(format!("not a PKCS#8 P-384 (ECDSA) private key: {error}"))
            })?
        } else if text.contains("-----BEGIN PUBLIC KEY-----") {
            return Err(invalid(
                "this is a public key; signing needs the private key".to_owned(),
            ));
        } else {
            return Err(invalid(
                "no PEM private key (`-----BEGIN PRIVATE KEY-----`) found".to_owned(),
            ));
        };
        SigningKey::from_inner(inner)
    }

    /// Reads a private key file (see [`SigningKey::from_pem`]).
    pub fn read_pem_file(path: &Path) -> Result<SigningKey, KeyError> {
        let name = path.display().to_string();
        let text =
            Zeroizing::new(
                std::fs::read_to_string(path).map_err(|error| KeyError::Read {
                    source_name: name.clone(),
                    error,
                })?,
            );
        SigningKey::from_pem(&name, &text)
    }

    /// The key as PKCS#8 PEM text (`-----BEGIN PRIVATE KEY-----`, LF line endings).
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        self.inner
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|error| KeyError::Encode(error.to_string()))
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The id of the matching public key.
    pub fn key_id(&self) -> &KeyId {
        &self.public.id
    }

    /// The content signature of `data`: base64url (no padding) of the raw `r ‖ s`.
    pub fn sign(&self, data: &[u8]) -> Result<String, SignatureError> {
        let signature: p384::ecdsa::Signature = self
            .inner
            .try_multipart_sign(&[CONTENT_SIGNATURE_PREFIX, data])
            .map_err(|error| SignatureError::Signing(error.to_string()))?;
        Ok(URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    fn from_inner(inner: p384::ecdsa::SigningKey) -> Result<SigningKey, KeyError> {
        let public = PublicKey::from_inner(*inner.verifying_key())?;
        Ok(SigningKey { inner, public })
    }
}

/// A public key that verifies content signatures.
#[derive(Clone)]
pub struct PublicKey {
    inner: p384::ecdsa::VerifyingKey,
    /// The same key, ready for `aws-lc-rs` to verify with.
    verifier: ParsedPublicKey,
    spki_der: Vec<u8>,
    id: KeyId,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &PublicKey) -> bool {
        // The SPKI encoding is the key.
        self.spki_der == other.spki_der
    }
}

impl Eq for PublicKey {}

impl PublicKey {
    /// Reads one P-384 public key from SPKI PEM text (`-----BEGIN PUBLIC KEY-----`).
    pub fn from_spki_pem(source_name: &str, text: &str) -> Result<PublicKey, KeyError> {
        let inner =
            p384::ecdsa::VerifyingKey::from_public_key_pem(text.trim()).map_err(|error| {
                KeyError::Invalid {
                    source_name: source_name.to_owned(),
                    message: format!("not an SPKI P-384 public key: {error}"),
                }
            })?;
        PublicKey::from_inner(inner)
    }

    /// Reads a P-384 public key from its SPKI DER encoding.
    pub fn from_spki_der(source_name: &str, der: &[u8]) -> Result<PublicKey, KeyError> {
        let inner = p384::ecdsa::VerifyingKey::from_public_key_der(der).map_err(|error| {
            KeyError::Invalid {
                source_name: source_name.to_owned(),
                message: format!("not an SPKI P-384 public key: {error}"),
            }
        })?;
        PublicKey::from_inner(inner)
    }

    /// Reads a public key written as standard base64 of its SPKI DER (the `public_key` field
    /// of a Normandy signature, as Autograph returns it).
    pub fn from_base64_der(source_name: &str, text: &str) -> Result<PublicKey, KeyError> {
        let der = STANDARD
            .decode(text.trim())
            .map_err(|error| KeyError::Invalid {
                source_name: source_name.to_owned(),
                message: format!("not base64: {error}"),
            })?;
        PublicKey::from_spki_der(source_name, &der)
    }

    /// The key as SPKI PEM text (`-----BEGIN PUBLIC KEY-----`, LF line endings).
    pub fn to_spki_pem(&self) -> Result<String, KeyError> {
        self.inner
            .to_public_key_pem(LineEnding::LF)
            .map_err(|error| KeyError::Encode(error.to_string()))
    }

    /// The SPKI DER encoding.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// Standard base64 of the SPKI DER encoding (see [`PublicKey::from_base64_der`]).
    pub fn to_base64_der(&self) -> String {
        STANDARD.encode(&self.spki_der)
    }

    /// The key's id.
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// Checks that `signature` (base64url of `r ‖ s`) is this key's signature of `data`.
    pub fn verify(&self, data: &[u8], signature: &str) -> Result<(), SignatureError> {
        let signature = decode_signature(signature)?;
        self.verify_decoded(&content_digest(data), &signature)
    }

    fn verify_decoded(
        &self,
        digest: &[u8; 48],
        signature: &[u8; SIGNATURE_BYTES],
    ) -> Result<(), SignatureError> {
        let mismatch = || SignatureError::Mismatch {
            tried: vec![self.id.clone()],
        };
        let digest =
            aws_lc_rs::digest::Digest::import_less_safe(digest, &aws_lc_rs::digest::SHA384)
                .map_err(|_| mismatch())?;
        self.verifier
            .verify_digest_sig(&digest, signature)
            .map_err(|_| mismatch())
    }

    fn from_inner(inner: p384::ecdsa::VerifyingKey) -> Result<PublicKey, KeyError> {
        let spki_der = inner
            .to_public_key_der()
            .map_err(|error| KeyError::Encode(error.to_string()))?
            .into_vec();
        let id = KeyId::of_spki_der(&spki_der);
        // The uncompressed point `04 ‖ x ‖ y`, as `ECDSA_P384_SHA384_FIXED` reads keys.
        let verifier = ParsedPublicKey::new(
            &ECDSA_P384_SHA384_FIXED,
            inner.to_sec1_point(false).as_bytes(),
        )
        .map_err(|error| KeyError::Encode(format!("the key cannot be used to verify: {error}")))?;
        Ok(PublicKey {
            inner,
            verifier,
            spki_der,
            id,
        })
    }
}

/// Decodes base64url (padded or not) into a P-384 signature `r ‖ s`.
fn decode_signature(text: &str) -> Result<[u8; SIGNATURE_BYTES], SignatureError> {
    let bytes = URL_SAFE_NO_PAD_INDIFFERENT
        .decode(text)
        .map_err(|error| SignatureError::Encoding(error.to_string()))?;
    let raw: [u8; SIGNATURE_BYTES] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| SignatureError::Length(bytes.len()))?;
    // Rejects r or s that are zero or not below the group order: no key verifies those.
    p384::ecdsa::Signature::from_slice(&raw)
        .map_err(|_| SignatureError::Mismatch { tried: Vec::new() })?;
    Ok(raw)
}

/// The public keys a client accepts signatures from (several, so keys can be rotated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedKeys {
    keys: Vec<PublicKey>,
}

impl TrustedKeys {
    /// No keys: nothing verifies.
    pub fn new() -> TrustedKeys {
        TrustedKeys::default()
    }

    /// Adds `key`; returns false when a key with the same id is already trusted.
    pub fn insert(&mut self, key: PublicKey) -> bool {
        if self.get(key.id()).is_some() {
            return false;
        }
        self.keys.push(key);
        true
    }

    /// Adds every `-----BEGIN PUBLIC KEY-----` block of `text` (a file may hold the current and
    /// the next key); returns how many blocks were read. A text without any public key, or
    /// with a private key in it, is an error.
    pub fn add_pem(&mut self, source_name: &str, text: &str) -> Result<usize, KeyError> {
        const BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
        const END: &str = "-----END PUBLIC KEY-----";
        let invalid = |message: &str| KeyError::Invalid {
            source_name: source_name.to_owned(),
            message: message.to_owned(),
        };
        if text.contains("PRIVATE KEY-----") {
            return Err(invalid(
                "this file holds a private key; trust the public key (public-key.pem) instead",
            ));
        }
        let mut rest = text;
        let mut count = 0;
        while let Some(start) = rest.find(BEGIN) {
            let block = &rest[start..];
            let Some(end) = block.find(END) else {
                return Err(invalid("a PUBLIC KEY block has no END line"));
            };
            let block_end = end + END.len();
            self.insert(PublicKey::from_spki_pem(source_name, &block[..block_end])?);
            count += 1;
            rest = &block[block_end..];
        }
        if count == 0 {
            return Err(invalid(
                "no PEM public key (`-----BEGIN PUBLIC KEY-----`) found",
            ));
        }
        Ok(count)
    }

    /// The keys of every file in `paths` (see [`TrustedKeys::add_pem`]).
    pub fn read_pem_files<P: AsRef<Path>>(paths: &[P]) -> Result<TrustedKeys, KeyError> {
        let mut keys = TrustedKeys::new();
        for path in paths {
            let path = path.as_ref();
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|error| KeyError::Read {
                source_name: name.clone(),
                error,
            })?;
            keys.add_pem(&name, &text)?;
        }
        Ok(keys)
    }

    /// The trusted key with this id.
    pub fn get(&self, id: &KeyId) -> Option<&PublicKey> {
        self.keys.iter().find(|key| key.id() == id)
    }

    /// Whether no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// How many keys are trusted.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The trusted keys, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = &PublicKey> {
        self.keys.iter()
    }

    /// Checks `signature` over `data` and returns the id of the key that made it.
    ///
    /// With `key_id` (the id a manifest names), only that key is tried, and an id that is not
    /// trusted is [`SignatureError::UnknownKey`]; without it, every trusted key is tried.
    pub fn verify_with(
        &self,
        data: &[u8],
        signature: &str,
        key_id: Option<&str>,
    ) -> Result<KeyId, SignatureError> {
        self.verify_digest_with(&content_digest(data), signature, key_id)
    }

    /// [`TrustedKeys::verify_with`] for data given by its [`content_digest`].
    pub fn verify_digest_with(
        &self,
        digest: &[u8; 48],
        signature: &str,
        key_id: Option<&str>,
    ) -> Result<KeyId, SignatureError> {
        if self.keys.is_empty() {
            return Err(SignatureError::NoTrustedKeys);
        }
        let signature = decode_signature(signature)?;
        let candidates: Vec<&PublicKey> = match key_id {
            Some(wanted) => {
                let key = KeyId::parse(wanted)
                    .and_then(|id| self.get(&id))
                    .ok_or_else(|| SignatureError::UnknownKey(wanted.to_owned()))?;
                vec![key]
            }
            None => self.keys.iter().collect(),
        };
        for key in &candidates {
            if key.verify_decoded(digest, &signature).is_ok() {
                return Ok(key.id().clone());
            }
        }
        Err(SignatureError::Mismatch {
            tried: candidates.iter().map(|key| key.id().clone()).collect(),
        })
    }
}

/// Checks `signature` over `data` against every key in `keys`; returns the id of the key that
/// made it.
pub fn verify(data: &[u8], signature: &str, keys: &TrustedKeys) -> Result<KeyId, SignatureError> {
    keys.verify_with(data, signature, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic generator for tests: SHA-256 in counter mode over a seed.
    pub(crate) struct TestRng {
        seed: u64,
        counter: u64,
    }

    impl TestRng {
        pub(crate) fn new(seed: u64) -> TestRng {
            TestRng { seed, counter: 0 }
        }
    }

    impl rand_core::TryRng for TestRng {
        type Error = std::convert::Infallible;

        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            let mut bytes = [0; 4];
            self.try_fill_bytes(&mut bytes)?;
            Ok(u32::from_le_bytes(bytes))
        }

        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            let mut bytes = [0; 8];
            self.try_fill_bytes(&mut bytes)?;
            Ok(u64::from_le_bytes(bytes))
        }

        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            for chunk in dst.chunks_mut(32) {
                let mut hasher = Sha256::new();
                hasher.update(self.seed.to_le_bytes());
                hasher.update(self.counter.to_le_bytes());
                self.counter += 1;
                let block = hasher.finalize();
                chunk.copy_from_slice(&block[..chunk.len()]);
            }
            Ok(())
        }
    }

    impl rand_core::TryCryptoRng for TestRng {}

    pub(crate) fn key(seed: u64) -> SigningKey {
        SigningKey::generate(&mut TestRng::new(seed)).unwrap()
    }

    #[test]
    fn sign_then_verify_and_key_ids() {
        let key = key(1);
        let signature = key.sign(b"hello").unwrap();
        assert_eq!(signature.len(), 128);
        assert!(!signature.contains('='));
        assert_eq!(
            signature,
            key.sign(b"hello").unwrap(),
            "RFC 6979 is deterministic"
        );
        let mut trusted = TrustedKeys::new();
        assert_eq!(
            verify(b"hello", &signature, &trusted),
            Err(SignatureError::NoTrustedKeys)
        );
        trusted.insert(key.public_key().clone());
        assert_eq!(
            verify(b"hello", &signature, &trusted),
            Ok(key.key_id().clone())
        );
        assert!(matches!(
            verify(b"hellO", &signature, &trusted),
            Err(SignatureError::Mismatch { .. })
        ));
        assert_eq!(key.key_id().as_str().len(), 16);
        assert_eq!(
            key.key_id(),
            &KeyId::of_spki_der(key.public_key().spki_der())
        );
    }

    #[test]
    fn padded_signatures_are_accepted_and_bad_encodings_are_named() {
        let key = key(2);
        let mut trusted = TrustedKeys::new();
        trusted.insert(key.public_key().clone());
        let signature = key.sign(b"x").unwrap();
        // 96 bytes is a multiple of 3: base64 of it never has padding. Pad a shorter blob to
        // show the decoder takes padding, then the length check refuses it.
        assert_eq!(verify(b"x", &signature, &trusted), Ok(key.key_id().clone()));
        assert_eq!(
            verify(b"x", "AAAA_w==", &trusted),
            Err(SignatureError::Length(4))
        );
        assert_eq!(
            verify(b"x", "AAAA_w", &trusted),
            Err(SignatureError::Length(4))
        );
        assert!(matches!(
            verify(b"x", "not base64!", &trusted),
            Err(SignatureError::Encoding(_))
        ));
        let standard_alphabet = signature.replace('-', "+").replace('_', "/");
        if standard_alphabet != signature {
            assert!(matches!(
                verify(b"x", &standard_alphabet, &trusted),
                Err(SignatureError::Encoding(_))
            ));
        }
        // All-zero r and s is not a signature at all.
        let zeros = URL_SAFE_NO_PAD.encode([0u8; 96]);
        assert!(matches!(
            verify(b"x", &zeros, &trusted),
            Err(SignatureError::Mismatch { .. })
        ));
    }

    #[test]
    fn rotation_several_keys_and_key_id_hints() {
        let (old, new) = (key(3), key(4));
        let mut trusted = TrustedKeys::new();
        let pem = format!(
            "{}\n{}",
            old.public_key().to_spki_pem().unwrap(),
            new.public_key().to_spki_pem().unwrap()
        );
        assert_eq!(trusted.add_pem("keys.pem", &pem).unwrap(), 2);
        assert_eq!(trusted.len(), 2);
        let signature = new.sign(b"data").unwrap();
        assert_eq!(
            verify(b"data", &signature, &trusted),
            Ok(new.key_id().clone())
        );
        assert_eq!(
            trusted.verify_with(b"data", &signature, Some(new.key_id().as_str())),
            Ok(new.key_id().clone())
        );
        assert_eq!(
            trusted.verify_with(b"data", &signature, Some(old.key_id().as_str())),
            Err(SignatureError::Mismatch {
                tried: vec![old.key_id().clone()]
            })
        );
        let stranger = key(5);
        assert_eq!(
            trusted.verify_with(b"data", &signature, Some(stranger.key_id().as_str())),
            Err(SignatureError::UnknownKey(stranger.key_id().to_string()))
        );
        // Adding the same key again changes nothing.
        assert!(!trusted.insert(new.public_key().clone()));
        assert_eq!(trusted.len(), 2);
    }

    #[test]
    fn pem_round_trips_and_wrong_kinds_are_refused() {
        let key = key(6);
        let private = key.to_pkcs8_pem().unwrap();
        assert!(private.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let again = SigningKey::from_pem("k.pem", &private).unwrap();
        assert_eq!(again.key_id(), key.key_id());
        let public = key.public_key().to_spki_pem().unwrap();
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let read = PublicKey::from_spki_pem("p.pem", &public).unwrap();
        assert_eq!(&read, key.public_key());
        let b64 = key.public_key().to_base64_der();
        assert_eq!(
            &PublicKey::from_base64_der("field", &b64).unwrap(),
            key.public_key()
        );

        let message = |error: KeyError| error.to_string();
        assert!(
            message(SigningKey::from_pem("p.pem", &public).unwrap_err())
                .starts_with("p.pem: this is a public key")
        );
        assert!(
            message(TrustedKeys::new().add_pem("k.pem", &private).unwrap_err())
                .starts_with("k.pem: this file holds a private key")
        );
        assert!(
            message(TrustedKeys::new().add_pem("e.pem", "").unwrap_err())
                .starts_with("e.pem: no PEM public key")
        );
        let truncated = public.replace("-----END PUBLIC KEY-----", "");
        assert!(
            message(TrustedKeys::new().add_pem("t.pem", &truncated).unwrap_err())
                .contains("no END line")
        );
        let garbled = public.replacen("MHYw", "MHYx", 1);
        assert!(TrustedKeys::new().add_pem("g.pem", &garbled).is_err());
    }

    #[test]
    fn key_id_parse() {
        assert_eq!(
            KeyId::parse("0123456789ABCDEF").map(|id| id.to_string()),
            Some("0123456789abcdef".to_owned())
        );
        assert_eq!(KeyId::parse("0123456789abcde"), None);
        assert_eq!(KeyId::parse("0123456789abcdeg"), None);
        assert_eq!(hex(&[0, 0xab, 0xff]), "00abff");
    }

    /// ECDSA signatures are malleable: (r, n − s) verifies as (r, s) does. OpenSSL and
    /// Firefox accept both, and so does the verifier here (a signature only proves the
    /// signer; the content hash, not the signature text, identifies a publication).
    #[test]
    fn the_high_s_twin_of_a_signature_verifies_too() {
        const ORDER: [u8; 48] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81,
            0xf4, 0x37, 0x2d, 0xdf, 0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec,
            0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73,
        ];
        let key = key(8);
        let mut trusted = TrustedKeys::new();
        trusted.insert(key.public_key().clone());
        let signature = key.sign(b"data").unwrap();
        let mut raw = URL_SAFE_NO_PAD.decode(&signature).unwrap();
        let mut borrow = 0i16;
        for index in (0..48).rev() {
            let difference = i16::from(ORDER[index]) - i16::from(raw[48 + index]) - borrow;
            borrow = i16::from(difference < 0);
            raw[48 + index] = (difference + 256 * borrow) as u8;
        }
        let twin = URL_SAFE_NO_PAD.encode(&raw);
        assert_ne!(twin, signature);
        assert_eq!(verify(b"data", &twin, &trusted), Ok(key.key_id().clone()));
        assert!(verify(b"datA", &twin, &trusted).is_err());
    }

    #[test]
    fn debug_does_not_show_the_secret() {
        let key = key(7);
        let shown = format!("{key:?}");
        assert!(shown.contains(key.key_id().as_str()));
        let scalar = hex(&key.inner.to_bytes());
        assert!(!shown.contains(&scalar));
    }
}
