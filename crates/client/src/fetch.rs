//! Fetching the manifest: HTTP behind a trait, conditional requests, backoff with jitter.
//!
//! [`fetch_manifest`] is one attempt at getting the current manifest bytes. It sends the entity
//! tag of the last *accepted* manifest as `If-None-Match`, so an unchanged manifest costs a
//! `304`. It never verifies anything: a `200` gives the bytes to the caller as
//! [`FetchOutcome::Fetched`], and the cache is left as it was. Only once the caller has
//! verified the manifest (signature, replay, parse) does it call [`record_accepted`], which
//! stores the new entity tag; if verification fails it calls [`record_failure`] instead. This
//! order matters: storing the tag of a tampered or truncated body would make the server answer
//! `304` to it from then on, and the client would never get the good manifest again.
//!
//! Failures (transport errors, timeouts, oversized bodies, any status other than `200`/`304`,
//! and verification failures reported by the caller) back off exponentially with full jitter
//! ([`backoff_delay`]); the count and the next allowed time live in
//! [`ManifestCache`], so the backoff survives restarts once the
//! caller saves the state. A `Retry-After` on `429`/`503` replaces the jittered delay.
//!
//! `file://` URLs and plain paths are read from disk, without backoff: there is no server to
//! spare, and a local file is the operator's to fix.

mod backoff;
mod reqwest_client;
mod scripted;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;

use crate::RandomSource;
use crate::state::ManifestCache;

pub(crate) use backoff::schedule_retry;
pub use backoff::{MIN_DELAY, backoff_delay, parse_retry_after};
pub use reqwest_client::{ReqwestClient, ReqwestConfig};
pub use scripted::{RecordedRequest, ScriptedHttpClient};

/// The default limit on a response body or manifest file: 32 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 32 * 1024 * 1024;

/// The HTTP operations the client needs. Implemented by [`ReqwestClient`] for real use and by
/// [`ScriptedHttpClient`] in tests; a host application can bring its own (e.g. to reuse its
/// proxy settings).
///
/// Any status code is an `Ok` response; `Err` is for requests that got no complete response
/// (connection, timeout, body too large, refused redirect).
pub trait HttpClient {
    /// Sends a `GET` with the given extra headers; the whole exchange, body included, must
    /// finish within `timeout`.
    fn get(
        &self,
        url: &str,
        headers: &[(String, String)],
        timeout: Duration,
    ) -> Result<HttpResponse, HttpError>;

    /// Sends a `POST` of `body` with the given extra headers, within `timeout`.
    fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<HttpResponse, HttpError>;
}

/// A complete HTTP response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The headers in the order received; names in lower case when they come from
    /// [`ReqwestClient`] (look them up with [`HttpResponse::header`], which ignores case).
    pub headers: Vec<(String, String)>,
    /// The body, complete.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A response with `status` and `body` and no headers.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> HttpResponse {
        HttpResponse {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// The response with one more header.
    pub fn with_header(mut self, name: &str, value: &str) -> HttpResponse {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request got no complete response. Every variant names the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The URL is not an absolute `http` or `https` URL.
    #[error("{url}: not an http(s) URL: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A request header has an invalid name or value.
    #[error("{url}: invalid request header `{name}`")]
    InvalidHeader {
        /// The URL.
        url: String,
        /// The header name.
        name: String,
    },
    /// No connection could be made (refused, unreachable, DNS, TLS handshake).
    #[error("{url}: cannot connect: {message}")]
    Connect {
        /// The URL.
        url: String,
        /// The underlying error.
        message: String,
    },
    /// The exchange did not finish within the timeout.
    #[error("{url}: no complete response within {timeout:?}")]
    Timeout {
        /// The URL.
        url: String,
        /// The timeout that ran out.
        timeout: Duration,
    },
    /// The body is larger than the limit; the download was stopped.
    #[error("{url}: the response body is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// A redirect was refused (not http(s), https to http, or too many).
    #[error("{url}: redirect refused: {message}")]
    Redirect {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
    /// Any other transport problem (connection reset, malformed response).
    #[error("{url}: {message}")]
    Transport {
        /// The URL.
        url: String,
        /// The underlying error.
        message: String,
    },
}

/// How manifest fetches behave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPolicy {
    /// Bound on one whole request, body included (default 30 s).
    pub timeout: Duration,
    /// The backoff window after the first failure (default 60 s); it doubles per further
    /// consecutive failure.
    pub backoff_base: Duration,
    /// The largest backoff window, and the cap on a server's `Retry-After` (default 6 h).
    pub backoff_max: Duration,
    /// Manifest files larger than this are refused, and HTTP bodies larger than this are
    /// refused even when the [`HttpClient`] let them through (default 32 MiB).
    pub max_bytes: u64,
}

impl Default for FetchPolicy {
    fn default() -> FetchPolicy {
        FetchPolicy {
            timeout: Duration::from_secs(30),
            backoff_base: Duration::from_secs(60),
            backoff_max: Duration::from_secs(6 * 60 * 60),
            max_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// What one [`fetch_manifest`] call gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    /// The server confirmed that the last accepted manifest is current (`304`). The failure
    /// count was reset.
    NotModified,
    /// New manifest bytes (`200`, or a local file), **not verified**. The cache was not
    /// changed: call [`record_accepted`] with `etag` once the manifest is verified and
    /// accepted, or [`record_failure`] if it is not, so that a bad body never becomes the
    /// entity tag the client asks about.
    Fetched {
        /// The body.
        body: Vec<u8>,
        /// The response's `ETag`, if any (always `None` for files).
        etag: Option<String>,
    },
    /// Nothing was sent: the backoff after earlier failures runs until `until`.
    Skipped {
        /// The earliest time of the next attempt.
        until: Timestamp,
    },
    /// The attempt failed. For HTTP the failure was counted and the next attempt scheduled
    /// at `retry_at` (persisted in the cache); for files `retry_at` is `now`.
    Failed {
        /// What went wrong, naming the URL or file.
        error: String,
        /// The earliest time of the next attempt.
        retry_at: Timestamp,
    },
}

/// Makes one attempt at fetching the manifest at `url` (`http(s)://`, `file://` or a plain
/// path), honouring and updating the backoff state in `cache`. See the module documentation
/// for what the caller must do after [`FetchOutcome::Fetched`].
pub fn fetch_manifest(
    client: &dyn HttpClient,
    url: &str,
    cache: &mut ManifestCache,
    policy: &FetchPolicy,
    now: Timestamp,
    random: &mut dyn RandomSource,
) -> FetchOutcome {
    let path = match classify(url) {
        Source::Http => return fetch_http(client, url, cache, policy, now, random),
        Source::File(path) => path,
        Source::Invalid(error) => {
            return FetchOutcome::Failed {
                error,
                retry_at: now,
            };
        }
    };
    match read_limited(&path, policy.max_bytes) {
        Ok(body) => FetchOutcome::Fetched { body, etag: None },
        Err(error) => FetchOutcome::Failed {
            error,
            retry_at: now,
        },
    }
}

/// Records that the manifest from the last [`FetchOutcome::Fetched`] was verified and
/// accepted: stores its entity tag (or forgets the old one when it had none), resets the
/// backoff and clears `last_error`.
pub fn record_accepted(cache: &mut ManifestCache, etag: Option<String>, now: Timestamp) {
    cache.etag = etag;
    cache.accepted_at = Some(now);
    cache.failures = 0;
    cache.next_fetch_at = None;
    cache.last_error = None;
}

/// Counts a failed fetch, or a fetched manifest that failed verification: increments the
/// failure count, stores `error` as `last_error`, and schedules the next attempt with a
/// jittered exponential backoff. Returns the time of the next attempt. The entity tag is left
/// as it was.
pub fn record_failure(
    cache: &mut ManifestCache,
    error: &str,
    policy: &FetchPolicy,
    now: Timestamp,
    random: &mut dyn RandomSource,
) -> Timestamp {
    record_failure_after(cache, error, None, policy, now, random)
}

fn record_failure_after(
    cache: &mut ManifestCache,
    error: &str,
    retry_after: Option<Duration>,
    policy: &FetchPolicy,
    now: Timestamp,
    random: &mut dyn RandomSource,
) -> Timestamp {
    cache.last_error = Some(error.to_owned());
    schedule_retry(
        &mut cache.failures,
        &mut cache.next_fetch_at,
        retry_after,
        policy.backoff_base,
        policy.backoff_max,
        now,
        random,
    )
}

fn fetch_http(
    client: &dyn HttpClient,
    url: &str,
    cache: &mut ManifestCache,
    policy: &FetchPolicy,
    now: Timestamp,
    random: &mut dyn RandomSource,
) -> FetchOutcome {
    if let Some(until) = cache.next_fetch_at
        && until > now
    {
        return FetchOutcome::Skipped { until };
    }
    let mut headers = Vec::new();
    if let Some(etag) = &cache.etag {
        headers.push(("If-None-Match".to_owned(), etag.clone()));
    }
    let (error, retry_after) = match client.get(url, &headers, policy.timeout) {
        Ok(response) => match response.status {
            304 if cache.etag.is_some() => {
                cache.failures = 0;
                cache.next_fetch_at = None;
                cache.last_error = None;
                return FetchOutcome::NotModified;
            }
            304 => (
                format!("GET {url}: 304 Not Modified, but no entity tag was sent"),
                None,
            ),
            200 if response.body.len() as u64 > policy.max_bytes => (
                format!(
                    "GET {url}: the manifest is larger than the limit of {} bytes",
                    policy.max_bytes
                ),
                None,
            ),
            200 => {
                let etag = response.header("etag").map(str::to_owned);
                return FetchOutcome::Fetched {
                    body: response.body,
                    etag,
                };
            }
            status => {
                let retry_after = match status {
                    429 | 503 => response
                        .header("retry-after")
                        .and_then(|v| parse_retry_after(v, now)),
                    _ => None,
                };
                (describe_status("GET", url, &response), retry_after)
            }
        },
        Err(e) => (format!("GET {e}"), None),
    };
    let retry_at = record_failure_after(cache, &error, retry_after, policy, now, random);
    FetchOutcome::Failed { error, retry_at }
}

/// `METHOD url: HTTP status reason: start of the body`, for error messages. The body start
/// helps an operator see what the server said; control characters are replaced so the text
/// stays on one line.
pub(crate) fn describe_status(method: &str, url: &str, response: &HttpResponse) -> String {
    const SHOWN: usize = 200;
    let reason = reqwest::StatusCode::from_u16(response.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|r| format!(" {r}"))
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&response.body);
    let mut snippet: String = text
        .trim()
        .chars()
        .take(SHOWN)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.trim().chars().nth(SHOWN).is_some() {
        snippet.push('…');
    }
    if snippet.is_empty() {
        format!("{method} {url}: HTTP {}{reason}", response.status)
    } else {
        format!(
            "{method} {url}: HTTP {}{reason}: {snippet}",
            response.status
        )
    }
}

enum Source {
    Http,
    File(PathBuf),
    Invalid(String),
}

fn classify(url: &str) -> Source {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Source::Http;
    }
    if lower.starts_with("file:") {
        return match reqwest::Url::parse(url) {
            Ok(parsed) => match parsed.to_file_path() {
                Ok(path) => Source::File(path),
                Err(()) => Source::Invalid(format!("{url}: not a local file URL")),
            },
            Err(e) => Source::Invalid(format!("{url}: invalid file URL: {e}")),
        };
    }
    if let Some((scheme, _)) = url.split_once("://")
        && !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return Source::Invalid(format!(
            "{url}: unsupported scheme `{scheme}` (use http, https, file or a path)"
        ));
    }
    Source::File(PathBuf::from(url))
}

/// Reads at most `limit` bytes of `path`; a longer file is an error, not a truncated read.
fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("{shown}: {e}"))?;
    let mut body = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut body)
        .map_err(|e| format!("{shown}: {e}"))?;
    if body.len() as u64 > limit {
        return Err(format!(
            "{shown}: the manifest is larger than the limit of {limit} bytes"
        ));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FixedRandom;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const URL: &str = "https://example.test/manifest.json";

    #[test]
    fn a_304_without_a_sent_etag_is_a_failure() {
        let client = ScriptedHttpClient::new([Ok(HttpResponse::new(304, ""))]);
        let mut cache = ManifestCache::default();
        let now = ts("2026-01-01T00:00:00Z");
        let outcome = fetch_manifest(
            &client,
            URL,
            &mut cache,
            &FetchPolicy::default(),
            now,
            &mut FixedRandom::new(vec![0.5]),
        );
        assert_eq!(
            outcome,
            FetchOutcome::Failed {
                error: format!("GET {URL}: 304 Not Modified, but no entity tag was sent"),
                retry_at: ts("2026-01-01T00:00:30Z"),
            }
        );
        assert_eq!(client.requests()[0].headers, vec![]);
        assert_eq!(cache.failures, 1);
    }

    #[test]
    fn a_body_over_the_policy_limit_is_refused_whatever_the_client() {
        let client = ScriptedHttpClient::new([Ok(HttpResponse::new(200, vec![b'x'; 11]))]);
        let policy = FetchPolicy {
            max_bytes: 10,
            ..FetchPolicy::default()
        };
        let mut cache = ManifestCache::default();
        let outcome = fetch_manifest(
            &client,
            URL,
            &mut cache,
            &policy,
            ts("2026-01-01T00:00:00Z"),
            &mut FixedRandom::new(vec![0.0]),
        );
        assert!(
            matches!(&outcome, FetchOutcome::Failed { error, .. } if error.contains("limit of 10 bytes")),
            "{outcome:?}"
        );
        assert_eq!(cache.failures, 1);
    }

    #[test]
    fn record_failure_keeps_the_etag_and_record_accepted_replaces_it() {
        let mut cache = ManifestCache {
            etag: Some("\"good\"".into()),
            ..ManifestCache::default()
        };
        let now = ts("2026-01-01T00:00:00Z");
        let policy = FetchPolicy::default();
        let mut random = FixedRandom::new(vec![0.5]);
        let at = record_failure(&mut cache, "bad signature", &policy, now, &mut random);
        assert_eq!(at, ts("2026-01-01T00:00:30Z"));
        assert_eq!(cache.etag.as_deref(), Some("\"good\""));
        assert_eq!(cache.last_error.as_deref(), Some("bad signature"));
        let at = record_failure(&mut cache, "bad signature", &policy, now, &mut random);
        assert_eq!(at, ts("2026-01-01T00:01:00Z"), "the window doubles");
        assert_eq!(cache.failures, 2);

        record_accepted(&mut cache, Some("\"new\"".into()), now);
        assert_eq!(cache.etag.as_deref(), Some("\"new\""));
        assert_eq!(cache.failures, 0);
        assert_eq!(cache.next_fetch_at, None);
        assert_eq!(cache.last_error, None);
        assert_eq!(cache.accepted_at, Some(now));
    }

    #[test]
    fn urls_are_classified() {
        assert!(matches!(classify("HTTPS://x.test/m"), Source::Http));
        assert!(matches!(classify("http://x.test/m"), Source::Http));
        assert!(matches!(classify("file:///tmp/a%20b.json"),
            Source::File(p) if p == Path::new("/tmp/a b.json")));
        assert!(matches!(classify("manifests/m.json"),
            Source::File(p) if p == Path::new("manifests/m.json")));
        assert!(matches!(classify("ftp://x.test/m"),
            Source::Invalid(e) if e.contains("unsupported scheme `ftp`")));
        assert!(matches!(
            classify("file://remote.host/m"),
            Source::Invalid(_)
        ));
    }

    #[test]
    fn files_are_read_without_touching_the_backoff() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        std::fs::write(&path, b"{}").unwrap();
        let now = ts("2026-01-01T00:00:00Z");
        let mut cache = ManifestCache {
            failures: 3,
            next_fetch_at: Some(ts("2026-01-02T00:00:00Z")),
            ..ManifestCache::default()
        };
        let before = cache.clone();
        let client = ScriptedHttpClient::new([]);
        let mut random = FixedRandom::new(vec![]);
        let policy = FetchPolicy {
            max_bytes: 2,
            ..FetchPolicy::default()
        };
        let url = reqwest::Url::from_file_path(&path).unwrap().to_string();
        for source in [url.as_str(), path.to_str().unwrap()] {
            assert_eq!(
                fetch_manifest(&client, source, &mut cache, &policy, now, &mut random),
                FetchOutcome::Fetched {
                    body: b"{}".to_vec(),
                    etag: None
                }
            );
        }
        std::fs::write(&path, b"{ }").unwrap();
        let outcome = fetch_manifest(&client, &url, &mut cache, &policy, now, &mut random);
        assert!(
            matches!(&outcome, FetchOutcome::Failed { error, retry_at }
                if error.contains("limit of 2 bytes") && *retry_at == now),
            "{outcome:?}"
        );
        let missing = dir.path().join("missing.json");
        let outcome = fetch_manifest(
            &client,
            missing.to_str().unwrap(),
            &mut cache,
            &policy,
            now,
            &mut random,
        );
        assert!(
            matches!(&outcome, FetchOutcome::Failed { error, .. } if error.contains("missing.json")),
            "{outcome:?}"
        );
        assert_eq!(cache, before);
        assert!(client.requests().is_empty());
    }
}
