//! Installing the packages of Manifest v1 experiments (the reference client's XPIs).
//!
//! [`Installer`] is what [`crate::manifest_v1`] drives: install a package for an experiment id
//! from a URL with an `xpiHash`, and uninstall it again. [`DirInstaller`] is the real one: it
//! downloads through a [`PackageSource`] ([`UrlSource`] reads `file://` URLs, plain paths and
//! `http(s)://` URLs), checks the hash with [`verify_hash`] **before** it looks inside the
//! bytes (the document: "if the hashes don't match, the client should not install the XPI"),
//! then unpacks the zip archive into `<dir>/<name>`.
//!
//! The unpacking never writes outside the package directory: an entry whose name is absolute
//! or climbs out with `..` is refused (zip's `enclosed_name`), and so is a symbolic link entry.
//! The package is unpacked into a fresh temporary directory next to its final place and moved
//! there with a rename, so an experiment never sees a half-written package, and a failed
//! (re)install leaves the previous package as it was.

mod source;
mod unpack;

use std::path::{Component, Path, PathBuf};

use flightdeck_core::model::manifest_v1::{HashAlgorithm, XpiHash};
use sha1::Digest;

pub use source::UrlSource;

use crate::state::InstalledPackage;

/// Installs and uninstalls the package of a Manifest v1 experiment.
pub trait Installer {
    /// Downloads the package at `url`, verifies it against `hash` (`sha1:<hex>` or
    /// `sha256:<hex>`) and installs it for experiment `id`, replacing a package installed
    /// earlier for the same id. On error nothing changed: an earlier package stays installed.
    fn install(
        &mut self,
        id: &str,
        url: &str,
        hash: &str,
    ) -> Result<InstalledPackage, InstallError>;

    /// Removes a package [`Installer::install`] returned. Removing one that is already gone
    /// succeeds.
    fn uninstall(&mut self, id: &str, package: &InstalledPackage) -> Result<(), InstallError>;
}

/// Fetches package bytes.
pub trait PackageSource {
    /// The bytes at `url`.
    fn fetch(&self, url: &str) -> Result<Vec<u8>, InstallError>;
}

/// Why a package could not be installed or removed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The package could not be downloaded or read.
    #[error("cannot fetch the package {url}: {message}")]
    Fetch {
        /// Where it was fetched from.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The package is larger than the installer accepts.
    #[error("the package {url} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// Where it was fetched from.
        url: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// The expected hash is not `sha1:<40 hex>` or `sha256:<64 hex>`.
    #[error("bad package hash `{hash}`: {message}")]
    BadHash {
        /// The hash as given.
        hash: String,
        /// What is wrong with it.
        message: String,
    },
    /// The package's digest is not the expected one.
    #[error("package hash mismatch: expected {expected}, got {actual}")]
    HashMismatch {
        /// The expected hash (`<algorithm>:<hex>`).
        expected: String,
        /// The digest of the bytes, in the same form.
        actual: String,
    },
    /// The package is not a readable zip archive.
    #[error("the package is not a valid zip archive: {message}")]
    BadArchive {
        /// What the zip reader said (with the entry when there is one).
        message: String,
    },
    /// An archive entry would be written outside the package directory, or is a link.
    #[error("the archive entry `{entry}` is refused: {message}")]
    UnsafeEntry {
        /// The entry name as stored in the archive.
        entry: String,
        /// Why it is refused.
        message: &'static str,
    },
    /// The unpacked archive would be larger than the installer accepts.
    #[error("the unpacked package is larger than the limit of {limit} bytes (at entry `{entry}`)")]
    UnpackedTooLarge {
        /// The entry being unpacked when the limit was reached.
        entry: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// A package location from the state is not a directory name inside the packages
    /// directory (the state was edited or corrupted).
    #[error("the package location `{location}` is not a directory name")]
    BadLocation {
        /// The location as stored.
        location: String,
    },
    /// A file system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl InstallError {
    /// A short stable code for telemetry (the `reason` of an `INSTALL_FAILURE` event).
    pub fn code(&self) -> &'static str {
        match self {
            InstallError::Fetch { .. } => "download-failed",
            InstallError::TooLarge { .. } | InstallError::UnpackedTooLarge { .. } => "too-large",
            InstallError::BadHash { .. } => "bad-hash",
            InstallError::HashMismatch { .. } => "hash-mismatch",
            InstallError::BadArchive { .. } => "bad-archive",
            InstallError::UnsafeEntry { .. } => "unsafe-entry",
            InstallError::BadLocation { .. } => "bad-location",
            InstallError::Io { .. } => "io-error",
        }
    }

    fn io(path: &Path, source: std::io::Error) -> InstallError {
        InstallError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// Checks `bytes` against `expected`, `sha1:<hex>` or `sha256:<hex>` (hex digits of either
/// case). A malformed value or another algorithm is an error, never a pass.
pub fn verify_hash(bytes: &[u8], expected: &str) -> Result<(), InstallError> {
    let hash = XpiHash::parse(expected).map_err(|e| InstallError::BadHash {
        hash: expected.to_owned(),
        message: e.to_string(),
    })?;
    let actual = match hash.algorithm {
        HashAlgorithm::Sha1 => hex(&sha1::Sha1::digest(bytes)),
        HashAlgorithm::Sha256 => hex(&sha2::Sha256::digest(bytes)),
    };
    if !hash.matches_hex(&actual) {
        return Err(InstallError::HashMismatch {
            expected: expected.to_owned(),
            actual: format!("{}:{actual}", hash.algorithm.name()),
        });
    }
    Ok(())
}

fn hex(digest: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(digest.len() * 2);
    for byte in digest {
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// The directory name (inside the packages directory) of an experiment's package: the id with
/// every byte outside `[A-Za-z0-9_@-]` written as `%XX`. Manifest ids are opaque strings, so
/// they cannot be used as paths as they are; this mapping is one-to-one and never yields `.`,
/// `..`, a separator or a hidden (dot) name, which the installer keeps for its temporary
/// directories.
pub fn package_dir_name(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'@' | b'-') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    if out.is_empty() {
        // An empty id cannot come from a valid manifest; give it a name all the same.
        out.push('%');
    }
    out
}

/// Limits of a [`DirInstaller`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackLimits {
    /// The most bytes all unpacked files together may have.
    pub max_unpacked_bytes: u64,
    /// The most entries an archive may have.
    pub max_entries: usize,
}

impl UnpackLimits {
    /// 256 MiB and 10,000 entries: far above any experiment package, far below a zip bomb.
    pub const STANDARD: UnpackLimits = UnpackLimits {
        max_unpacked_bytes: 256 * 1024 * 1024,
        max_entries: 10_000,
    };
}

/// The real [`Installer`]: packages are unpacked into subdirectories of one directory (in the
/// profile), named by [`package_dir_name`]. [`InstalledPackage::location`] is that name.
pub struct DirInstaller {
    dir: PathBuf,
    source: Box<dyn PackageSource>,
    limits: UnpackLimits,
}

impl DirInstaller {
    /// An installer into `dir` that downloads with a [`UrlSource`] with its standard settings.
    pub fn new(dir: impl Into<PathBuf>) -> DirInstaller {
        DirInstaller::with_source(dir, Box::new(UrlSource::new()), UnpackLimits::STANDARD)
    }

    /// An installer into `dir` that gets packages from `source`.
    pub fn with_source(
        dir: impl Into<PathBuf>,
        source: Box<dyn PackageSource>,
        limits: UnpackLimits,
    ) -> DirInstaller {
        DirInstaller {
            dir: dir.into(),
            source,
            limits,
        }
    }

    /// The packages directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where a package is unpacked, or an error when `location` is not a plain directory name
    /// (it comes from the state file, which must not be able to point anywhere else).
    pub fn package_path(&self, location: &str) -> Result<PathBuf, InstallError> {
        let mut components = Path::new(location).components();
        match (components.next(), components.next()) {
            (Some(Component::Normal(name)), None) if !location.starts_with('.') => {
                Ok(self.dir.join(name))
            }
            _ => Err(InstallError::BadLocation {
                location: location.to_owned(),
            }),
        }
    }

    fn replace(&self, unpacked: tempfile::TempDir, target: &Path) -> Result<(), InstallError> {
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let old = self.dir.join(format!(".old-{name}"));
        remove_dir_if_present(&old)?;
        let had_old = match std::fs::rename(target, &old) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(InstallError::io(target, e)),
        };
        let unpacked_path = unpacked.keep();
        if let Err(e) = std::fs::rename(&unpacked_path, target) {
            // Put the previous package back; the new one is discarded.
            if had_old {
                let _ = std::fs::rename(&old, target);
            }
            let _ = std::fs::remove_dir_all(&unpacked_path);
            return Err(InstallError::io(target, e));
        }
        sync_dir(&self.dir)?;
        if had_old {
            remove_dir_if_present(&old)?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for DirInstaller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirInstaller")
            .field("dir", &self.dir)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Installer for DirInstaller {
    fn install(
        &mut self,
        id: &str,
        url: &str,
        hash: &str,
    ) -> Result<InstalledPackage, InstallError> {
        let bytes = self.source.fetch(url)?;
        verify_hash(&bytes, hash)?;
        std::fs::create_dir_all(&self.dir).map_err(|e| InstallError::io(&self.dir, e))?;
        let location = package_dir_name(id);
        let target = self.package_path(&location)?;
        // The temporary directory is removed when dropped, so every error below cleans up.
        let unpacked = tempfile::Builder::new()
            .prefix(".install-")
            .tempdir_in(&self.dir)
            .map_err(|e| InstallError::io(&self.dir, e))?;
        unpack::unpack(&bytes, unpacked.path(), self.limits)?;
        self.replace(unpacked, &target)?;
        Ok(InstalledPackage {
            url: url.to_owned(),
            hash: hash.to_owned(),
            location,
        })
    }

    fn uninstall(&mut self, _id: &str, package: &InstalledPackage) -> Result<(), InstallError> {
        let path = self.package_path(&package.location)?;
        remove_dir_if_present(&path)?;
        sync_dir(&self.dir)
    }
}

fn remove_dir_if_present(path: &Path) -> Result<(), InstallError> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(InstallError::io(path, e)),
    }
}

/// Makes renames inside `dir` durable. A missing directory has nothing to sync.
fn sync_dir(dir: &Path) -> Result<(), InstallError> {
    match std::fs::File::open(dir) {
        Ok(file) => file.sync_all().map_err(|e| InstallError::io(dir, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(InstallError::io(dir, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        // SHA-1 and SHA-256 of "abc" (FIPS 180 examples).
        verify_hash(b"abc", "sha1:a9993e364706816aba3e25717850c26c9cd0d89d").unwrap();
        verify_hash(b"abc", "sha1:A9993E364706816ABA3E25717850C26C9CD0D89D").unwrap();
        verify_hash(
            b"abc",
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        )
        .unwrap();
    }

    #[test]
    fn bad_hashes_are_errors() {
        let mismatch = verify_hash(b"abd", "sha1:a9993e364706816aba3e25717850c26c9cd0d89d");
        assert!(
            matches!(&mismatch, Err(InstallError::HashMismatch { actual, .. }) if actual.starts_with("sha1:")),
            "{mismatch:?}"
        );
        for bad in [
            "md5:900150983cd24fb0d6963f7d28e17f72",
            "sha1:a9993e36",
            "sha1:z9993e364706816aba3e25717850c26c9cd0d89d",
            "a9993e364706816aba3e25717850c26c9cd0d89d",
            "",
        ] {
            let res = verify_hash(b"abc", bad);
            assert!(
                matches!(res, Err(InstallError::BadHash { .. })),
                "{bad}: {res:?}"
            );
        }
    }

    #[test]
    fn package_dir_names_are_plain_and_distinct() {
        assert_eq!(package_dir_name("exp-1@example"), "exp-1@example");
        assert_eq!(package_dir_name("../x"), "%2E%2E%2Fx");
        assert_eq!(package_dir_name("."), "%2E");
        assert_eq!(package_dir_name("a b/é"), "a%20b%2F%C3%A9");
        assert_ne!(package_dir_name("a%2F"), package_dir_name("a/"));
    }

    #[test]
    fn locations_from_the_state_stay_inside() {
        let installer = DirInstaller::new("/profile/packages");
        assert!(installer.package_path("exp").is_ok());
        for bad in ["", "..", ".", "a/b", "/etc", ".install-x"] {
            assert!(installer.package_path(bad).is_err(), "{bad}");
        }
    }
}
