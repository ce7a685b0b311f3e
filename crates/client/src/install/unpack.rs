//! Unpacking a verified zip archive into a fresh directory, refusing anything that would land
//! outside it.

use std::io::{Read, Write};
use std::path::Path;

use super::{InstallError, UnpackLimits};

/// Unpacks the zip archive `bytes` into the (empty) directory `dir`.
pub(super) fn unpack(bytes: &[u8], dir: &Path, limits: UnpackLimits) -> Result<(), InstallError> {
    let bad_archive = |e: zip::result::ZipError| InstallError::BadArchive {
        message: e.to_string(),
    };
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(bad_archive)?;
    if archive.len() > limits.max_entries {
        return Err(InstallError::BadArchive {
            message: format!(
                "{} entries, more than the limit of {}",
                archive.len(),
                limits.max_entries
            ),
        });
    }
    let mut remaining = limits.max_unpacked_bytes;
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|e| InstallError::BadArchive {
                message: format!("entry {index}: {e}"),
            })?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        // zip's `enclosed_name` quietly makes an absolute name relative; such a name is a sign
        // of a hostile archive, so it is refused like one that climbs out.
        let relative = entry.enclosed_name().filter(|_| !is_absolute(&name));
        let Some(relative) = relative else {
            return Err(InstallError::UnsafeEntry {
                entry: name,
                message: "its path is absolute or leaves the package directory",
            });
        };
        if entry.is_symlink() {
            return Err(InstallError::UnsafeEntry {
                entry: name,
                message: "symbolic links are not installed",
            });
        }
        let path = dir.join(relative);
        if entry.is_dir() {
            std::fs::create_dir_all(&path).map_err(|e| InstallError::io(&path, e))?;
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| InstallError::io(parent, e))?;
        }
        let mut file = std::fs::File::create(&path).map_err(|e| InstallError::io(&path, e))?;
        // One byte over the remaining budget tells that the limit is exceeded.
        let written = copy_limited(&mut entry, &mut file, remaining.saturating_add(1)).map_err(
            |e| match e {
                CopyError::Read(e) => InstallError::BadArchive {
                    message: format!("entry `{name}`: {e}"),
                },
                CopyError::Write(e) => InstallError::io(&path, e),
            },
        )?;
        if written > remaining {
            return Err(InstallError::UnpackedTooLarge {
                entry: name,
                limit: limits.max_unpacked_bytes,
            });
        }
        remaining -= written;
        file.sync_all().map_err(|e| InstallError::io(&path, e))?;
    }
    Ok(())
}

/// `/x`, `\\x` and `C:…` name absolute paths (on some system).
fn is_absolute(name: &str) -> bool {
    let bytes = name.as_bytes();
    name.starts_with(['/', '\\'])
        || (bytes.len() >= 2
            && bytes.first().is_some_and(u8::is_ascii_alphabetic)
            && bytes.get(1) == Some(&b':'))
}

enum CopyError {
    Read(std::io::Error),
    Write(std::io::Error),
}

/// Copies at most `limit` bytes, telling read errors (a corrupt entry) from write errors.
fn copy_limited(
    reader: &mut impl Read,
    writer: &mut impl Write,
    limit: u64,
) -> Result<u64, CopyError> {
    let mut reader = reader.take(limit);
    let mut buffer = [0u8; 64 * 1024];
    let mut total: u64 = 0;
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        let chunk = buffer.get(..n).unwrap_or_default();
        writer.write_all(chunk).map_err(CopyError::Write)?;
        total = total.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
    }
}
