//! The first user and token, made by `flightdeck admin create-user | create-token` before any
//! token exists (the changes are recorded as the system's). The admin API makes tokens with
//! the same code.

use flightdeck_client::signature::{KeyError, SigningKey};
use flightdeck_store::{Actor, ApiToken, NewSigningKey, Role, Store, StoreError, User};
use jiff::Timestamp;

use crate::auth::{self, RandomError};

/// The longest username.
pub const MAX_USERNAME_LEN: usize = 150;
/// The longest token name.
pub const MAX_TOKEN_NAME_LEN: usize = 100;

/// Why a bootstrap step failed.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The username or token name is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// The store refused or failed (a taken username is `Conflict(UsernameTaken)`).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No random bytes for the secret.
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// A new P-384 signing key from the operating system's random source, as the store keeps
/// it (the first start and `POST /api/v3/signing_key/rotate/` make keys this way).
pub fn new_signing_key() -> Result<NewSigningKey, KeyError> {
    let key = SigningKey::generate_from_os()?;
    let private_key_pem = key.to_pkcs8_pem()?;
    let public_key_pem = key.public_key().to_spki_pem()?;
    Ok(NewSigningKey {
        key_id: key.key_id().as_str().to_owned(),
        private_key_pem: private_key_pem.as_str().to_owned(),
        public_key_pem,
    })
}

/// Why `username` is not acceptable: 1 to 150 characters among letters, digits and `@.+-_`
/// (Django's rule, which Normandy's users follow).
pub fn username_problem(username: &str) -> Option<String> {
    if username.is_empty() || username.chars().count() > MAX_USERNAME_LEN {
        return Some(format!("a username has 1 to {MAX_USERNAME_LEN} characters"));
    }
    if let Some(bad) = username
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "@.+-_".contains(*c)))
    {
        return Some(format!(
            "{bad:?} is not allowed in a username: use letters, digits and @.+-_"
        ));
    }
    None
}

/// Why `name` is not acceptable as a token name: 1 to 100 characters, no control characters.
pub fn token_name_problem(name: &str) -> Option<String> {
    if name.trim().is_empty() || name.chars().count() > MAX_TOKEN_NAME_LEN {
        return Some(format!(
            "a token name has 1 to {MAX_TOKEN_NAME_LEN} characters"
        ));
    }
    if name.chars().any(char::is_control) {
        return Some("a token name has no control characters".to_owned());
    }
    None
}

/// Creates a user with `roles`, as the system.
pub async fn create_user(
    store: &Store,
    username: &str,
    roles: &[Role],
    now: Timestamp,
) -> Result<User, BootstrapError> {
    if let Some(problem) = username_problem(username) {
        return Err(BootstrapError::Invalid(problem));
    }
    Ok(store
        .create_user(username, roles, Actor::System, now)
        .await?)
}

/// Makes a token named `token_name` for the user `username`, as the system, and returns its
/// secret: the only time it is shown.
pub async fn create_token(
    store: &Store,
    username: &str,
    token_name: &str,
    now: Timestamp,
) -> Result<String, BootstrapError> {
    let user = store.user_by_name(username).await?;
    let (_, secret) = issue_token(store, user.id, token_name, Actor::System, now).await?;
    Ok(secret)
}

/// Makes and stores a token for `user_id`: the stored token and the secret.
pub(crate) async fn issue_token(
    store: &Store,
    user_id: i64,
    token_name: &str,
    actor: Actor,
    now: Timestamp,
) -> Result<(ApiToken, String), BootstrapError> {
    if let Some(problem) = token_name_problem(token_name) {
        return Err(BootstrapError::Invalid(problem));
    }
    let token = auth::new_token()?;
    let stored = store
        .create_token(user_id, token_name, &token.hash, &token.prefix, actor, now)
        .await?;
    Ok((stored, token.secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(username_problem("alice.b+ops@example_1-x"), None);
        assert!(username_problem("").is_some());
        assert!(username_problem("a b").is_some());
        assert!(username_problem(&"a".repeat(151)).is_some());
        assert!(username_problem("ünï").is_some());
    }

    #[test]
    fn token_names() {
        assert_eq!(token_name_problem("CI deploys"), None);
        assert!(token_name_problem("  ").is_some());
        assert!(token_name_problem("a\nb").is_some());
        assert!(token_name_problem(&"t".repeat(101)).is_some());
    }
}
