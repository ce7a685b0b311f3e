//! API tokens: how they are made, shown and recognised.
//!
//! A token is `fdt_` followed by 43 base64url characters (32 random bytes). The store keeps
//! only the SHA-256 of the whole token, so a copy of the database gives nobody a usable
//! token; the secret is shown once, when it is made. The first characters after `fdt_` (the
//! *prefix*) are stored as they are, so an admin can tell tokens apart in a list.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// What every token starts with, so a leaked token is recognisable (secret scanners).
pub const TOKEN_PREFIX: &str = "fdt_";

/// How many characters after [`TOKEN_PREFIX`] are kept as the displayed prefix.
const SHOWN_CHARS: usize = 8;

/// A new token: the secret to show once, and what the store keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    /// The whole token, for the user; never stored.
    pub secret: String,
    /// SHA-256 of the secret, lowercase hex: what the store keeps and looks up.
    pub hash: String,
    /// `fdt_` and the first characters of the secret, for lists.
    pub prefix: String,
}

/// Why a token could not be made.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct RandomError(String);

/// Makes a token from 32 bytes of the operating system's random source.
pub fn new_token() -> Result<NewToken, RandomError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| RandomError(e.to_string()))?;
    Ok(token_from_bytes(&bytes))
}

/// The token made from `bytes` (tests pass fixed bytes).
pub fn token_from_bytes(bytes: &[u8; 32]) -> NewToken {
    let secret = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let prefix = secret
        .chars()
        .take(TOKEN_PREFIX.len() + SHOWN_CHARS)
        .collect();
    NewToken {
        hash: hash_token(&secret),
        prefix,
        secret,
    }
}

/// The stored form of a token: SHA-256, lowercase hex.
pub fn hash_token(secret: &str) -> String {
    flightdeck_client::signature::hex(&Sha256::digest(secret.as_bytes()))
}

/// The token of an `Authorization` header value: `Bearer <token>` (scheme case-insensitive,
/// as RFC 9110 says). `None` for any other scheme or an empty token.
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, rest) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_documented_shape() {
        let token = token_from_bytes(&[7u8; 32]);
        assert!(token.secret.starts_with("fdt_"));
        assert_eq!(token.secret.len(), 4 + 43);
        assert_eq!(token.prefix, &token.secret[..12]);
        assert_eq!(token.hash, hash_token(&token.secret));
        assert_eq!(token.hash.len(), 64);
        assert_ne!(token.hash, hash_token("fdt_something-else"));
    }

    #[test]
    fn hash_is_sha256_hex() {
        // `printf abc | sha256sum`
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn two_new_tokens_differ() {
        let a = new_token().expect("random");
        let b = new_token().expect("random");
        assert_ne!(a.secret, b.secret);
    }

    #[test]
    fn bearer_header() {
        assert_eq!(bearer_token("Bearer fdt_abc"), Some("fdt_abc"));
        assert_eq!(bearer_token("bearer  fdt_abc "), Some("fdt_abc"));
        assert_eq!(bearer_token("Basic dXNlcjpwYXNz"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }
}
