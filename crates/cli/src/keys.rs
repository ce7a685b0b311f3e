//! Signing keys and signed manifests: `keys generate`, `sign` and `verify-manifest`.
//!
//! The formats and the checks are in `flightdeck-client` (`signature`, `manifest`); this
//! module reads and writes the files, and reads the clock for the default serial and
//! publication time.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use flightdeck_client::manifest::{
    self, ContentHash, LastAccepted, Loaded, ManifestSource, VerifyPolicy,
};
use flightdeck_client::signature::{SigningKey, TrustedKeys};
use jiff::Timestamp;

/// The private key file `keys generate` writes.
const SIGNING_KEY_FILE: &str = "signing-key.pem";
/// The public key file `keys generate` writes.
const PUBLIC_KEY_FILE: &str = "public-key.pem";

/// `flightdeck keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a P-384 key pair for signing manifests.
    ///
    /// Writes DIR/signing-key.pem (PKCS#8, readable only by you) and DIR/public-key.pem
    /// (SPKI, for clients and `verify-manifest --trust-key`), and prints the key id.
    Generate {
        /// The directory to write the key files to (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Replace existing key files (the old private key is lost).
        #[arg(long)]
        force: bool,
    },
}

/// `flightdeck sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The private key (PKCS#8 PEM, as `keys generate` writes it).
    #[arg(long)]
    key: PathBuf,
    /// The manifest's serial. Default: one more than the input's when an input is a signed
    /// manifest, else the current Unix time in seconds.
    #[arg(long)]
    serial: Option<u64>,
    /// The publication time, RFC 3339 (default: now, to the second).
    #[arg(long)]
    published_at: Option<Timestamp>,
    /// Write the manifest here instead of to standard output.
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// Normandy recipe files, at most one Experiments Manifest v1, or a signed manifest to
    /// sign again.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
}

/// `flightdeck verify-manifest`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A trusted public key file (SPKI PEM; may hold several keys). Repeat for several files.
    #[arg(long = "trust-key", required = true)]
    trust_keys: Vec<PathBuf>,
    /// The serial of the last accepted manifest: an older one is refused as replayed.
    #[arg(long)]
    last_serial: Option<u64>,
    /// The content SHA-256 (hex) of the last accepted manifest: with --last-serial, a
    /// manifest with the same serial is accepted only with this content.
    #[arg(long, requires = "last_serial")]
    last_sha256: Option<String>,
    /// The manifest.
    manifest: PathBuf,
}

/// `flightdeck keys …`.
pub fn run_keys(command: &KeysCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::Generate { out, force } => generate(out, *force),
    }
}

fn generate(dir: &Path, force: bool) -> anyhow::Result<ExitCode> {
    let private_path = dir.join(SIGNING_KEY_FILE);
    let public_path = dir.join(PUBLIC_KEY_FILE);
    if !force {
        for path in [&private_path, &public_path] {
            if path.exists() {
                bail!(
                    "{} exists; use --force to replace the key pair (the old private key is lost)",
                    path.display()
                );
            }
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let key = SigningKey::generate_from_os()?;
    let private_pem = key.to_pkcs8_pem()?;
    write_private(&private_path, private_pem.as_bytes(), force)?;
    let public_pem = key.public_key().to_spki_pem()?;
    std::fs::write(&public_path, public_pem)
        .with_context(|| format!("cannot write {}", public_path.display()))?;
    println!("key id: {}", key.key_id());
    println!(
        "private key: {} (mode 0600; keep it secret)",
        private_path.display()
    );
    println!(
        "public key: {} (give it to clients, and to verify-manifest --trust-key)",
        public_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes the private key so that no one else can ever read it, not even for a moment.
fn write_private(path: &Path, contents: &[u8], force: bool) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        options.mode(0o600);
        let file = options
            .open(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        // `mode` applies only to a new file; an existing one (--force) keeps its mode.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {}", path.display()))?;
        write_all(file, path, contents)
    }
    #[cfg(not(unix))]
    {
        let file = options
            .open(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        write_all(file, path, contents)
    }
}

fn write_all(mut file: std::fs::File, path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// `flightdeck sign --key FILE [--serial N] [--published-at TIME] [-o OUT] INPUT…`.
pub fn sign(args: &SignArgs) -> anyhow::Result<ExitCode> {
    let key = SigningKey::read_pem_file(&args.key)?;
    let mut inputs = Vec::with_capacity(args.inputs.len());
    for path in &args.inputs {
        match read_manifest(path)? {
            Ok(loaded) => {
                for diagnostic in loaded.diagnostics() {
                    eprintln!("{diagnostic}");
                }
                inputs.push(loaded);
            }
            Err(error) => {
                for diagnostic in &error.diagnostics {
                    eprintln!("{diagnostic}");
                }
                eprintln!("flightdeck: not signed: {} cannot be used", path.display());
                return Ok(ExitCode::from(1));
            }
        }
    }
    let previous = inputs.iter().filter_map(Loaded::serial).max();
    let serial = match (args.serial, previous) {
        (Some(serial), Some(previous)) if serial <= previous => bail!(
            "--serial {serial} is not above the input manifest's serial {previous}; clients \
             refuse a manifest whose serial does not increase"
        ),
        (Some(serial), _) => serial,
        (None, Some(previous)) => previous + 1,
        (None, None) => u64::try_from(Timestamp::now().as_second())
            .context("the clock is before 1970; give --serial")?,
    };
    let published_at = match args.published_at {
        Some(time) => time,
        None => Timestamp::from_second(Timestamp::now().as_second())?,
    };
    let parts: Vec<&Loaded> = inputs.iter().collect();
    let document = match manifest::sign_manifest(&parts, &key, serial, published_at) {
        Ok(document) => document,
        Err(error) => {
            eprintln!("flightdeck: not signed: {error}");
            return Ok(ExitCode::from(1));
        }
    };
    let mut text = serde_json::to_string_pretty(&document)?;
    text.push('\n');

    // Check the output as a client will, so a signing bug can never be published.
    let mut trusted = TrustedKeys::new();
    trusted.insert(key.public_key().clone());
    let check = manifest::load("signed manifest", text.as_bytes())
        .map_err(anyhow::Error::from)
        .and_then(|loaded| {
            manifest::verify(loaded, &trusted, None, &VerifyPolicy::default())
                .map_err(anyhow::Error::from)
        })
        .context("the signed manifest does not verify (a bug: please report it)")?;
    if !check.bad_recipes().is_empty() {
        bail!("the signed manifest has bad recipe signatures (a bug: please report it)");
    }

    match &args.output {
        Some(path) => std::fs::write(path, &text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    let source = check.loaded().source();
    let recipes = source.recipes().map_or(0, |set| set.recipes.len());
    let experiments = source.experiments().map_or(0, |m| m.experiments.len());
    eprintln!(
        "signed {recipes} recipe(s) and {experiments} Manifest v1 experiment(s) as serial \
         {serial} with key {}",
        key.key_id()
    );
    Ok(ExitCode::SUCCESS)
}

/// `flightdeck verify-manifest --trust-key FILE… [--last-serial N [--last-sha256 HEX]] FILE`.
///
/// Exits 0 when the manifest and every recipe signature verify, 1 otherwise (with the reason).
pub fn verify_manifest(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let trusted = TrustedKeys::read_pem_files(&args.trust_keys)?;
    let last = match args.last_serial {
        None => None,
        Some(serial) => {
            // Without the hash no content matches: the same serial counts as replayed.
            let content_sha256 = match &args.last_sha256 {
                Some(hex) => ContentHash::from_hex(hex)
                    .with_context(|| format!("--last-sha256 {hex:?} is not 64 hex digits"))?,
                None => ContentHash([0; 32]),
            };
            Some(LastAccepted {
                serial,
                content_sha256,
            })
        }
    };
    let loaded = match read_manifest(&args.manifest)? {
        Ok(loaded) => loaded,
        Err(error) => {
            for diagnostic in &error.diagnostics {
                eprintln!("{diagnostic}");
            }
            eprintln!(
                "invalid: {} cannot be read as a manifest",
                args.manifest.display()
            );
            return Ok(ExitCode::from(1));
        }
    };
    for diagnostic in loaded.diagnostics() {
        eprintln!("{diagnostic}");
    }
    let policy = VerifyPolicy {
        require_signature: true,
        ..VerifyPolicy::default()
    };
    let verified = match manifest::verify(loaded, &trusted, last.as_ref(), &policy) {
        Ok(verified) => verified,
        Err(error) => {
            eprintln!("invalid ({}): {error}", error.code());
            return Ok(ExitCode::from(1));
        }
    };
    let loaded = verified.loaded();
    let (recipes, experiments) = match loaded.source() {
        ManifestSource::Unified(unified) => (
            unified.normandy.recipes.len(),
            unified
                .experiments
                .as_ref()
                .map_or(0, |m| m.experiments.len()),
        ),
        _ => (0, 0),
    };
    for (id, error) in verified.bad_recipes() {
        println!("bad recipe signature: recipe {id}: {error}");
    }
    let key = verified
        .key_id()
        .map_or_else(|| "none".to_owned(), ToString::to_string);
    let serial = loaded
        .serial()
        .map_or_else(|| "none".to_owned(), |s| s.to_string());
    let status = if verified.bad_recipes().is_empty() {
        "ok"
    } else {
        "invalid"
    };
    println!(
        "{status}: {}: serial {serial}, signed with key {key}, {recipes} recipe(s), \
         {experiments} experiment(s), content sha256 {}",
        loaded.name(),
        loaded.content_sha256()
    );
    Ok(if verified.bad_recipes().is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Reads and loads a manifest file: `Err` for an unreadable file, `Ok(Err)` for a document
/// that cannot be used.
fn read_manifest(path: &Path) -> anyhow::Result<Result<Loaded, manifest::ManifestError>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(manifest::load(&path.display().to_string(), &bytes))
}
