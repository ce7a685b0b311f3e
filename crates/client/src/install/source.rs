//! [`UrlSource`]: package bytes from `file://` URLs, plain paths and `http(s)://` URLs.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{InstallError, PackageSource};

/// Fetches packages from the local file system (`file://` URLs and plain paths) or over
/// HTTP(S) with a blocking client, with a total timeout and a size limit.
#[derive(Debug, Clone)]
pub struct UrlSource {
    timeout: Duration,
    max_bytes: u64,
}

impl UrlSource {
    /// Three minutes, as the reference client allowed a download, and 64 MiB.
    pub fn new() -> UrlSource {
        UrlSource::with_limits(Duration::from_secs(180), 64 * 1024 * 1024)
    }

    /// A source with the given total download timeout and size limit.
    pub fn with_limits(timeout: Duration, max_bytes: u64) -> UrlSource {
        UrlSource { timeout, max_bytes }
    }

    fn fetch_http(&self, url: &str) -> Result<Vec<u8>, InstallError> {
        let fetch_error = |message: String| InstallError::Fetch {
            url: url.to_owned(),
            message,
        };
        let client = reqwest::blocking::Client::builder()
            .timeout(self.timeout)
            .build()
            .map_err(|e| fetch_error(e.to_string()))?;
        let response = client
            .get(url)
            .send()
            .and_then(reqwest::blocking::Response::error_for_status)
            .map_err(|e| fetch_error(e.to_string()))?;
        if response
            .content_length()
            .is_some_and(|n| n > self.max_bytes)
        {
            return Err(self.too_large(url));
        }
        self.read_limited(url, response)
    }

    fn fetch_file(&self, url: &str, path: &Path) -> Result<Vec<u8>, InstallError> {
        let file = std::fs::File::open(path).map_err(|e| InstallError::Fetch {
            url: url.to_owned(),
            message: format!("{}: {e}", path.display()),
        })?;
        self.read_limited(url, file)
    }

    /// Reads at most the limit; one byte more means the package is too large.
    fn read_limited(&self, url: &str, reader: impl Read) -> Result<Vec<u8>, InstallError> {
        let mut bytes = Vec::new();
        reader
            .take(self.max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| InstallError::Fetch {
                url: url.to_owned(),
                message: e.to_string(),
            })?;
        if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > self.max_bytes {
            return Err(self.too_large(url));
        }
        Ok(bytes)
    }

    fn too_large(&self, url: &str) -> InstallError {
        InstallError::TooLarge {
            url: url.to_owned(),
            limit: self.max_bytes,
        }
    }
}

impl Default for UrlSource {
    fn default() -> UrlSource {
        UrlSource::new()
    }
}

impl PackageSource for UrlSource {
    fn fetch(&self, url: &str) -> Result<Vec<u8>, InstallError> {
        match scheme(url).as_deref() {
            Some("http" | "https") => self.fetch_http(url),
            Some("file") => {
                let path = file_url_path(url).ok_or_else(|| InstallError::Fetch {
                    url: url.to_owned(),
                    message: "not a local file URL".to_owned(),
                })?;
                self.fetch_file(url, &path)
            }
            Some(other) => Err(InstallError::Fetch {
                url: url.to_owned(),
                message: format!("unsupported URL scheme `{other}` (use http, https or file)"),
            }),
            None => self.fetch_file(url, Path::new(url)),
        }
    }
}

/// The lowercased scheme of a URL, or `None` for a plain path. A one-letter "scheme" is a
/// Windows drive (`C:\…`), so a path.
fn scheme(url: &str) -> Option<String> {
    let (scheme, _) = url.split_once(':')?;
    let valid = scheme.len() > 1
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then(|| scheme.to_ascii_lowercase())
}

/// The path of a `file://` URL (percent-decoded), if it names a local file.
fn file_url_path(url: &str) -> Option<PathBuf> {
    reqwest::Url::parse(url).ok()?.to_file_path().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        assert_eq!(scheme("https://x/y.zip").as_deref(), Some("https"));
        assert_eq!(scheme("FILE:///tmp/a").as_deref(), Some("file"));
        assert_eq!(scheme("/tmp/a.zip"), None);
        assert_eq!(scheme("relative/a.zip"), None);
        assert_eq!(scheme("C:\\a.zip"), None);
    }

    #[test]
    fn file_urls_are_percent_decoded() {
        assert_eq!(
            file_url_path("file:///tmp/a%20b.zip"),
            Some(PathBuf::from("/tmp/a b.zip"))
        );
        assert_eq!(file_url_path("file://remote-host/a.zip"), None);
    }

    #[test]
    fn other_schemes_are_refused() {
        let res = UrlSource::new().fetch("ftp://example.com/a.zip");
        assert!(matches!(res, Err(InstallError::Fetch { .. })), "{res:?}");
    }

    #[test]
    fn size_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.zip");
        std::fs::write(&path, [0u8; 11]).unwrap();
        let path = path.to_str().unwrap();
        let source = UrlSource::with_limits(Duration::from_secs(1), 10);
        assert!(matches!(
            source.fetch(path),
            Err(InstallError::TooLarge { limit: 10, .. })
        ));
        let source = UrlSource::with_limits(Duration::from_secs(1), 11);
        assert_eq!(source.fetch(path).unwrap().len(), 11);
    }
}
