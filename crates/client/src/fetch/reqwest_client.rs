//! The real [`HttpClient`]: reqwest's blocking client over rustls.

use std::io::Read;
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::redirect;

use super::{DEFAULT_MAX_BODY_BYTES, HttpClient, HttpError, HttpResponse};

/// Settings of a [`ReqwestClient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReqwestConfig {
    /// Bodies larger than this are refused (default 32 MiB): the download stops after this
    /// many bytes, or before it starts when `Content-Length` says so.
    pub max_body_bytes: u64,
    /// Bound on establishing a connection, TLS included (default 10 s). Each request also has
    /// its own total timeout, which bounds the connection too.
    pub connect_timeout: Duration,
    /// Redirects followed per request (default 5). Only `http`/`https` targets are followed,
    /// and never from `https` to `http`.
    pub max_redirects: usize,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// Whether the proxies named by `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` (and `NO_PROXY`)
    /// are used (default true, as a device's other HTTP clients would).
    pub use_env_proxy: bool,
}

impl Default for ReqwestConfig {
    fn default() -> ReqwestConfig {
        ReqwestConfig {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            connect_timeout: Duration::from_secs(10),
            max_redirects: 5,
            user_agent: concat!("flightdeck-client/", env!("CARGO_PKG_VERSION")).to_owned(),
            use_env_proxy: true,
        }
    }
}

/// An [`HttpClient`] over reqwest's blocking client (rustls, no compression). It keeps a
/// connection pool, so build one and reuse it. Do not create or use it inside an async
/// runtime: the blocking client runs its own.
#[derive(Debug, Clone)]
pub struct ReqwestClient {
    client: Client,
    max_body_bytes: u64,
}

impl ReqwestClient {
    /// A client with `config`. Fails only when the TLS backend cannot be set up.
    pub fn new(config: &ReqwestConfig) -> Result<ReqwestClient, HttpError> {
        let max_redirects = config.max_redirects;
        let policy = redirect::Policy::custom(move |attempt| {
            let scheme = attempt.url().scheme();
            let from_https = attempt
                .previous()
                .last()
                .is_some_and(|u| u.scheme() == "https");
            if attempt.previous().len() > max_redirects {
                let message = format!("more than {max_redirects} redirects");
                attempt.error(message)
            } else if scheme != "http" && scheme != "https" {
                let message = format!("redirect to a `{scheme}` URL: {}", attempt.url());
                attempt.error(message)
            } else if from_https && scheme == "http" {
                let message = format!("redirect from https to http: {}", attempt.url());
                attempt.error(message)
            } else {
                attempt.follow()
            }
        });
        let mut builder = Client::builder()
            .connect_timeout(config.connect_timeout)
            .redirect(policy)
            .user_agent(config.user_agent.as_str());
        if !config.use_env_proxy {
            builder = builder.no_proxy();
        }
        let client = builder.build().map_err(|e| HttpError::Transport {
            url: String::new(),
            message: format!("cannot set up the HTTP client: {}", chain(&e)),
        })?;
        Ok(ReqwestClient {
            client,
            max_body_bytes: config.max_body_bytes,
        })
    }

    fn send(
        &self,
        url: &str,
        request: RequestBuilder,
        headers: &[(String, String)],
        timeout: Duration,
    ) -> Result<HttpResponse, HttpError> {
        let mut request = request.timeout(timeout);
        for (name, value) in headers {
            let invalid = || HttpError::InvalidHeader {
                url: url.to_owned(),
                name: name.clone(),
            };
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
            let value = HeaderValue::from_str(value).map_err(|_| invalid())?;
            request = request.header(name, value);
        }
        let response = request.send().map_err(|e| classify(url, timeout, &e))?;
        self.read(url, response, timeout)
    }

    fn read(
        &self,
        url: &str,
        response: Response,
        timeout: Duration,
    ) -> Result<HttpResponse, HttpError> {
        let too_large = || HttpError::TooLarge {
            url: url.to_owned(),
            limit: self.max_body_bytes,
        };
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect();
        let announced = response.content_length();
        if announced.is_some_and(|len| len > self.max_body_bytes) {
            return Err(too_large());
        }
        // Content-Length is only a hint for the allocation; the read itself is bounded.
        let capacity = announced.unwrap_or(0).min(1 << 20);
        let mut body = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
        response
            .take(self.max_body_bytes.saturating_add(1))
            .read_to_end(&mut body)
            .map_err(|e| classify_read(url, timeout, &e))?;
        if body.len() as u64 > self.max_body_bytes {
            return Err(too_large());
        }
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

impl HttpClient for ReqwestClient {
    fn get(
        &self,
        url: &str,
        headers: &[(String, String)],
        timeout: Duration,
    ) -> Result<HttpResponse, HttpError> {
        check_url(url)?;
        self.send(url, self.client.get(url), headers, timeout)
    }

    fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<HttpResponse, HttpError> {
        check_url(url)?;
        self.send(url, self.client.post(url).body(body), headers, timeout)
    }
}

fn check_url(url: &str) -> Result<(), HttpError> {
    let invalid = |reason: String| HttpError::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    match parsed.scheme() {
        "http" | "https" => Ok(()),
        other => Err(invalid(format!("scheme `{other}`"))),
    }
}

fn classify(url: &str, timeout: Duration, e: &reqwest::Error) -> HttpError {
    let url = url.to_owned();
    if e.is_timeout() {
        HttpError::Timeout { url, timeout }
    } else if e.is_redirect() {
        HttpError::Redirect {
            url,
            message: chain(e),
        }
    } else if e.is_connect() {
        HttpError::Connect {
            url,
            message: chain(e),
        }
    } else {
        HttpError::Transport {
            url,
            message: chain(e),
        }
    }
}

/// Errors while reading the body come wrapped in `io::Error`.
fn classify_read(url: &str, timeout: Duration, e: &std::io::Error) -> HttpError {
    if let Some(inner) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<reqwest::Error>())
    {
        return classify(url, timeout, inner);
    }
    if e.kind() == std::io::ErrorKind::TimedOut {
        return HttpError::Timeout {
            url: url.to_owned(),
            timeout,
        };
    }
    HttpError::Transport {
        url: url.to_owned(),
        message: chain(e),
    }
}

/// The error and its sources, `: `-separated: reqwest's own message alone ("error sending
/// request") does not say what failed.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_http_urls_are_refused_before_any_io() {
        let client = ReqwestClient::new(&ReqwestConfig::default()).unwrap();
        let none: &[(String, String)] = &[];
        for url in ["ftp://example.test/m", "not a url", "file:///etc/passwd"] {
            let err = client.get(url, none, Duration::from_secs(1)).unwrap_err();
            assert!(matches!(err, HttpError::InvalidUrl { .. }), "{url}: {err}");
        }
    }

    #[test]
    fn invalid_header_names_are_reported() {
        let client = ReqwestClient::new(&ReqwestConfig::default()).unwrap();
        let headers = [("bad name".to_owned(), "v".to_owned())];
        let err = client
            .get("http://127.0.0.1:9/", &headers, Duration::from_secs(1))
            .unwrap_err();
        assert_eq!(
            err,
            HttpError::InvalidHeader {
                url: "http://127.0.0.1:9/".into(),
                name: "bad name".into()
            }
        );
    }
}
