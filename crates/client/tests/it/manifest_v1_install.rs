//! The package installer with real zip archives built here: hash checks before unpacking,
//! paths that must not escape, atomic replacement, HTTP on 127.0.0.1, and the runtime driving
//! the real installer.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use flightdeck_client::FixedRandom;
use flightdeck_client::install::{
    DirInstaller, InstallError, Installer, PackageSource, UnpackLimits, UrlSource, verify_hash,
};
use flightdeck_client::manifest_v1::{self, ManifestRun, TerminationKind};
use flightdeck_client::state::InstalledPackage;
use flightdeck_core::context::ClientContext;
use flightdeck_core::evaluate::NoJsFilter;
use flightdeck_core::model::manifest_v1::parse;
use serde_json::json;
use sha1::Digest;
use zip::write::SimpleFileOptions;

enum Entry<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
}

fn zip_of(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default();
    for entry in entries {
        match entry {
            Entry::File(name, bytes) => {
                writer.start_file(*name, options).unwrap();
                writer.write_all(bytes).unwrap();
            }
            Entry::Dir(name) => writer.add_directory(*name, options).unwrap(),
            Entry::Symlink(name, target) => writer.add_symlink(*name, *target, options).unwrap(),
        }
    }
    writer.finish().unwrap().into_inner()
}

fn sha1_of(bytes: &[u8]) -> String {
    format!("sha1:{}", hex(&sha1::Sha1::digest(bytes)))
}

fn sha256_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&sha2::Sha256::digest(bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A temporary profile: packages go to `<root>/packages`, archives are written to `<root>/src`.
struct Profile {
    root: tempfile::TempDir,
}

impl Profile {
    fn new() -> Profile {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("src")).unwrap();
        Profile { root }
    }

    fn packages(&self) -> std::path::PathBuf {
        self.root.path().join("packages")
    }

    fn installer(&self) -> DirInstaller {
        DirInstaller::new(self.packages())
    }

    /// Writes an archive and returns its path as a string.
    fn archive(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.root.path().join("src").join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_owned()
    }

    /// Every name in the packages directory (hidden ones too), sorted.
    fn listing(&self) -> Vec<String> {
        let mut names: Vec<String> = match std::fs::read_dir(self.packages()) {
            Ok(dir) => dir
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn installs_a_verified_archive_with_sha1_and_sha256() {
    let profile = Profile::new();
    let bytes = zip_of(&[
        Entry::File("manifest.json", b"{\"name\": \"one\"}"),
        Entry::Dir("content/"),
        Entry::File("content/deep/script.js", b"run()"),
    ]);
    let path = profile.archive("one.zip", &bytes);
    let mut installer = profile.installer();

    let package = installer.install("exp-1", &path, &sha1_of(&bytes)).unwrap();
    assert_eq!(
        package,
        InstalledPackage {
            url: path.clone(),
            hash: sha1_of(&bytes),
            location: "exp-1".into(),
        }
    );
    let dir = profile.packages().join("exp-1");
    assert_eq!(read(&dir.join("manifest.json")), "{\"name\": \"one\"}");
    assert_eq!(read(&dir.join("content/deep/script.js")), "run()");
    assert_eq!(profile.listing(), ["exp-1"]);

    // sha256, from a file:// URL, with an upper-case digest.
    let url = format!("file://{path}");
    let hash = sha256_of(&bytes)
        .to_ascii_uppercase()
        .replace("SHA256", "sha256");
    let package = installer.install("exp-2", &url, &hash).unwrap();
    assert_eq!(package.location, "exp-2");
    assert_eq!(
        read(&profile.packages().join("exp-2/content/deep/script.js")),
        "run()"
    );
}

#[test]
fn a_wrong_or_malformed_hash_installs_nothing() {
    let profile = Profile::new();
    let bytes = zip_of(&[Entry::File("a.txt", b"a")]);
    let path = profile.archive("a.zip", &bytes);
    let mut installer = profile.installer();
    let other = zip_of(&[Entry::File("a.txt", b"b")]);

    for hash in [sha1_of(&other), sha256_of(&other)] {
        let err = installer.install("e", &path, &hash).unwrap_err();
        assert!(matches!(err, InstallError::HashMismatch { .. }), "{err}");
        assert_eq!(err.code(), "hash-mismatch");
    }
    for hash in [
        "md5:0cc175b9c0f1b6a831c399e269772661",
        "sha1:abc",
        "sha256:zz",
        "no-colon",
    ] {
        let err = installer.install("e", &path, hash).unwrap_err();
        assert!(matches!(err, InstallError::BadHash { .. }), "{hash}: {err}");
    }
    assert_eq!(profile.listing(), Vec::<String>::new());
}

#[test]
fn the_hash_is_checked_before_the_archive_is_read() {
    // An archive that would be refused for its content is refused for its hash first.
    let bytes = zip_of(&[Entry::File("../evil.txt", b"x")]);
    let err = verify_hash(&bytes, &sha1_of(b"something else")).unwrap_err();
    assert!(matches!(err, InstallError::HashMismatch { .. }));
    let profile = Profile::new();
    let path = profile.archive("evil.zip", &bytes);
    let err = profile
        .installer()
        .install("e", &path, &sha1_of(b"something else"))
        .unwrap_err();
    assert_eq!(err.code(), "hash-mismatch");
}

#[test]
fn entries_that_escape_the_package_directory_are_refused() {
    for (name, entries) in [
        (
            "parent",
            vec![
                Entry::File("ok.txt", b"ok"),
                Entry::File("../evil.txt", b"x"),
            ],
        ),
        ("nested parent", vec![Entry::File("a/../../evil.txt", b"x")]),
        ("absolute", vec![Entry::File("/tmp/evil.txt", b"x")]),
        ("drive", vec![Entry::File("C:/evil.txt", b"x")]),
        ("backslashes", vec![Entry::File("..\\evil.txt", b"x")]),
        ("symlink", vec![Entry::Symlink("link", "/etc/passwd")]),
    ] {
        let profile = Profile::new();
        let bytes = zip_of(&entries);
        let path = profile.archive("evil.zip", &bytes);
        let res = profile.installer().install("e", &path, &sha256_of(&bytes));
        let err = res.expect_err(name);
        assert!(
            matches!(err, InstallError::UnsafeEntry { .. }),
            "{name}: {err}"
        );
        assert!(!profile.root.path().join("evil.txt").exists(), "{name}");
        // No package and no temporary directory are left behind.
        assert_eq!(profile.listing(), Vec::<String>::new(), "{name}");
    }
    // `a/../b.txt` stays inside and is fine.
    let profile = Profile::new();
    let bytes = zip_of(&[Entry::File("a/../b.txt", b"b")]);
    let path = profile.archive("ok.zip", &bytes);
    profile
        .installer()
        .install("e", &path, &sha1_of(&bytes))
        .unwrap();
    assert_eq!(read(&profile.packages().join("e/b.txt")), "b");
}

#[test]
fn reinstalling_replaces_the_old_package_and_a_failed_one_keeps_it() {
    let profile = Profile::new();
    let mut installer = profile.installer();
    let v1 = zip_of(&[Entry::File("version", b"1"), Entry::File("only-in-1", b"")]);
    let v2 = zip_of(&[Entry::File("version", b"2"), Entry::File("only-in-2", b"")]);
    let v1_path = profile.archive("v1.zip", &v1);
    let v2_path = profile.archive("v2.zip", &v2);
    let dir = profile.packages().join("e");

    installer.install("e", &v1_path, &sha1_of(&v1)).unwrap();
    assert_eq!(read(&dir.join("version")), "1");
    installer.install("e", &v2_path, &sha256_of(&v2)).unwrap();
    assert_eq!(read(&dir.join("version")), "2");
    assert!(!dir.join("only-in-1").exists());
    assert!(dir.join("only-in-2").exists());
    assert_eq!(profile.listing(), ["e"]);

    // A failing re-install (bad hash, bad archive) leaves version 2 as it was.
    assert!(installer.install("e", &v1_path, &sha1_of(&v2)).is_err());
    let not_zip = profile.archive("not.zip", b"not a zip archive");
    let err = installer
        .install("e", &not_zip, &sha1_of(b"not a zip archive"))
        .unwrap_err();
    assert_eq!(err.code(), "bad-archive");
    assert_eq!(read(&dir.join("version")), "2");
    assert_eq!(profile.listing(), ["e"]);
}

#[test]
fn uninstall_removes_the_package_and_tolerates_a_missing_one() {
    let profile = Profile::new();
    let mut installer = profile.installer();
    let bytes = zip_of(&[Entry::File("f", b"x")]);
    let path = profile.archive("p.zip", &bytes);
    let package = installer
        .install("id with/odd chars", &path, &sha1_of(&bytes))
        .unwrap();
    assert_eq!(package.location, "id%20with%2Fodd%20chars");
    assert_eq!(profile.listing(), ["id%20with%2Fodd%20chars"]);
    installer.uninstall("id with/odd chars", &package).unwrap();
    assert_eq!(profile.listing(), Vec::<String>::new());
    installer.uninstall("id with/odd chars", &package).unwrap();

    // A location from a tampered state never reaches outside the packages directory.
    let outside = InstalledPackage {
        location: "../src".into(),
        ..package
    };
    let err = installer.uninstall("x", &outside).unwrap_err();
    assert_eq!(err.code(), "bad-location");
    assert!(profile.root.path().join("src/p.zip").exists());
}

#[test]
fn unpacked_size_and_entry_count_are_limited() {
    struct Bytes(Vec<u8>);
    impl PackageSource for Bytes {
        fn fetch(&self, _url: &str) -> Result<Vec<u8>, InstallError> {
            Ok(self.0.clone())
        }
    }
    let profile = Profile::new();
    let big = vec![0u8; 10_000];
    let bytes = zip_of(&[
        Entry::File("a", &big[..6_000]),
        Entry::File("b", &big[..6_000]),
    ]);
    let limits = UnpackLimits {
        max_unpacked_bytes: 10_000,
        max_entries: 10,
    };
    let mut installer =
        DirInstaller::with_source(profile.packages(), Box::new(Bytes(bytes.clone())), limits);
    let err = installer
        .install("e", "mem:", &sha1_of(&bytes))
        .unwrap_err();
    assert!(
        matches!(err, InstallError::UnpackedTooLarge { ref entry, .. } if entry == "b"),
        "{err}"
    );
    assert_eq!(profile.listing(), Vec::<String>::new());

    let limits = UnpackLimits {
        max_unpacked_bytes: 100_000,
        max_entries: 1,
    };
    let mut installer =
        DirInstaller::with_source(profile.packages(), Box::new(Bytes(bytes.clone())), limits);
    let err = installer
        .install("e", "mem:", &sha1_of(&bytes))
        .unwrap_err();
    assert_eq!(err.code(), "bad-archive");
}

/// Serves `responses` (status line and body), one connection each, on 127.0.0.1.
fn serve(
    responses: Vec<(&'static str, Vec<u8>)>,
) -> (String, std::thread::JoinHandle<Vec<String>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let mut requests = Vec::new();
        for (status, body) in responses {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buffer = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                let n = stream.read(&mut buffer).unwrap();
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buffer[..n]);
            }
            let request = String::from_utf8_lossy(&request).into_owned();
            requests.push(request.lines().next().unwrap_or_default().to_owned());
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(&body).unwrap();
        }
        requests
    });
    (address, handle)
}

#[test]
fn packages_are_downloaded_over_http() {
    let bytes = zip_of(&[Entry::File("served.txt", b"over http")]);
    let (address, server) = serve(vec![
        ("404 Not Found", b"no".to_vec()),
        ("200 OK", bytes.clone()),
    ]);
    let profile = Profile::new();
    let mut installer = profile.installer();
    let err = installer
        .install("e", &format!("{address}/missing.zip"), &sha1_of(&bytes))
        .unwrap_err();
    assert!(matches!(err, InstallError::Fetch { .. }), "{err}");
    installer
        .install("e", &format!("{address}/p.zip"), &sha1_of(&bytes))
        .unwrap();
    assert_eq!(read(&profile.packages().join("e/served.txt")), "over http");
    assert_eq!(
        server.join().unwrap(),
        ["GET /missing.zip HTTP/1.1", "GET /p.zip HTTP/1.1"]
    );
}

#[test]
fn a_download_over_the_size_limit_is_refused() {
    let (address, server) = serve(vec![("200 OK", vec![7u8; 2_000])]);
    let source = UrlSource::with_limits(std::time::Duration::from_secs(30), 1_000);
    let err = source.fetch(&format!("{address}/big.zip")).unwrap_err();
    assert!(
        matches!(err, InstallError::TooLarge { limit: 1_000, .. }),
        "{err}"
    );
    server.join().unwrap();
}

#[test]
fn the_runtime_installs_and_removes_real_packages() {
    let profile = Profile::new();
    let bytes = zip_of(&[Entry::File("bootstrap.js", b"startup()")]);
    let path = profile.archive("e.zip", &bytes);
    let entry = |hash: &str| {
        json!({
            "id": "E", "xpiURL": format!("file://{path}"), "xpiHash": hash,
            "startTime": 0, "endTime": 4_000_000_000u64, "maxActiveSeconds": 86_400,
        })
    };
    let manifest = |hash: &str| {
        let text = json!({"version": 1, "experiments": [entry(hash)]}).to_string();
        parse("m.json", &text).value.unwrap()
    };
    let context = ClientContext::default();
    let mut entries = BTreeMap::new();
    let mut installer = profile.installer();
    let mut random = FixedRandom::default();
    let mut events = Vec::new();
    let now: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    let mut run = ManifestRun {
        now,
        context: &context,
        entries: &mut entries,
        installer: &mut installer,
        random: &mut random,
        js_filter: &NoJsFilter,
        events: &mut events,
        enabled: true,
    };

    // A wrong hash: the download is refused and nothing is installed.
    let outcome = manifest_v1::run(Some(&manifest(&sha1_of(b"other"))), &mut run);
    assert_eq!(outcome.active, None);
    assert_eq!(run.events.len(), 1);
    assert_eq!(run.events[0].extra["kind"], "INSTALL_FAILURE");
    assert_eq!(run.events[0].extra["reason"], "hash-mismatch");
    assert_eq!(profile.listing(), Vec::<String>::new());

    // The right hash (a change, so the failed start is cleared): installed and active.
    let outcome = manifest_v1::run(Some(&manifest(&sha256_of(&bytes))), &mut run);
    assert_eq!(outcome.active.as_deref(), Some("E"));
    assert_eq!(
        read(&profile.packages().join("E/bootstrap.js")),
        "startup()"
    );

    assert!(manifest_v1::disable_active(
        &mut run,
        TerminationKind::FromApi
    ));
    assert_eq!(profile.listing(), Vec::<String>::new());
    assert_eq!(run.entries["E"].installed, None);
}
