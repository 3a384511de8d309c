//! Downloading one document safely: stream into a temp file inside the ticket folder (size and
//! sha256 computed on the way), check the byte count against the listing, and only then rename
//! onto the final name. A failed or cancelled download deletes its temp file, so no partial file
//! ever sits under a final name.
//!
//! Files are not fsynced one by one, whether their whole blocks bypass the page cache with
//! direct I/O (`api/disk.rs`) or not: a process crash cannot tear a renamed file, and after a
//! power cut (which can leave a file short or holding zeros) every run re-checks each manifest
//! file's sha256 and downloads a damaged one again. The manifest itself is fsynced.

use crate::api::{ApiError, Client, Document};
use crate::exec::retry::{with_retries, RetryPolicy};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Prefix of download temp files (never a sanitized name: those have no leading dot).
pub const TEMP_PREFIX: &str = ".alga-batch-";

/// A completed download, already under its final name.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Bytes written.
    pub bytes: u64,
    /// sha256, hex.
    pub sha256: String,
    /// `Content-Type` of the response.
    pub content_type: Option<String>,
    /// Percent-decoded `Content-Disposition` file name.
    pub file_name: Option<String>,
}

/// A failed download: the error and how many attempts were made.
#[derive(Debug)]
pub struct FetchError {
    /// What went wrong last.
    pub error: ApiError,
    /// HTTP attempts.
    pub attempts: u32,
}

fn local(what: &str, e: std::io::Error) -> ApiError {
    ApiError::Local(format!("{what}: {e}"))
}

/// Download `doc` of `ticket` to `dest` (inside `folder`), retrying what is safe to retry.
pub async fn fetch(
    client: &Client,
    policy: &RetryPolicy,
    hard: &CancellationToken,
    ticket: Uuid,
    doc: &Document,
    folder: &Path,
    dest: &Path,
) -> Result<Fetched, FetchError> {
    let fail = |error, attempts| FetchError { error, attempts };
    let tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(".part")
        .tempfile_in(folder)
        .map_err(|e| fail(local("cannot create temp file", e), 0))?;
    let handle = tmp
        .as_file()
        .try_clone()
        .map_err(|e| fail(local("cannot open temp file", e), 0))?;
    let id = doc.document_id;
    let attempted = tokio::select! {
        a = with_retries(client, policy, true, hard, || {
            let f = handle.try_clone();
            async move {
                let mut f = tokio::fs::File::from_std(f.map_err(|e| local("cannot open temp file", e))?);
                client.download_document(ticket, id, &mut f).await
            }
        }) => a,
        () = hard.cancelled() => return Err(fail(ApiError::Cancelled, 1)),
    };
    let attempts = attempted.attempts;
    let got = attempted.result.map_err(|e| fail(e, attempts))?;
    if let Some(expected) = doc.file_size {
        if expected != got.bytes {
            let e = ApiError::Decode(format!(
                "size mismatch: received {} bytes, the listing says {expected}",
                got.bytes
            ));
            return Err(fail(e, attempts));
        }
    }
    let dest = dest.to_path_buf();
    let persisted = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        make_readable(tmp.path())?;
        tmp.persist(&dest).map_err(|e| e.error)?;
        Ok(())
    })
    .await;
    match persisted {
        Ok(Ok(())) => Ok(Fetched {
            bytes: got.bytes,
            sha256: got.sha256,
            content_type: got.content_type,
            file_name: got.file_name,
        }),
        Ok(Err(e)) => Err(fail(local("cannot store download", e), attempts)),
        Err(e) => Err(fail(
            ApiError::Local(format!("store task failed: {e}")),
            attempts,
        )),
    }
}

/// Give a finished temp file (created rw------- by `tempfile`) the mode an ordinary new file
/// gets: rw-r--r-- less the umask (read from `/proc/self/status`; 022 where unknown).
pub(crate) fn make_readable(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = 0o644 & !umask();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The process umask (Linux reports it in `/proc/self/status`); 022 when it cannot be read.
#[cfg(unix)]
fn umask() -> u32 {
    static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UMASK.get_or_init(|| {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Umask:"))
                    .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            })
            .unwrap_or(0o022)
    })
}

/// Size and sha256 of a file on disk (blocking; run it off the async threads).
pub fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((total, hex::encode(hasher.finalize())))
}

/// Whether `path` still holds exactly `bytes` bytes hashing to `sha256`.
pub async fn still_intact(path: &Path, bytes: u64, sha256: &str) -> bool {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.len() == bytes => {}
        _ => return false,
    }
    let p = path.to_path_buf();
    let expected = sha256.to_ascii_lowercase();
    tokio::task::spawn_blocking(move || hash_file(&p))
        .await
        .ok()
        .and_then(Result::ok)
        .is_some_and(|(n, h)| n == bytes && h == expected)
}

/// Remove temp files a killed run left in `dir` and its ticket folders; returns how many.
pub fn remove_stale_temps(dir: &Path) -> usize {
    let is_temp = |name: &str| {
        (name.starts_with(TEMP_PREFIX) && name.ends_with(".part"))
            || (name.starts_with(".manifest-") && name.ends_with(".tmp"))
            || (name.starts_with(".comments-") && name.ends_with(".tmp"))
            || (name.starts_with(".resume-") && name.ends_with(".tmp"))
    };
    let mut removed = 0;
    let mut folders = vec![dir.to_path_buf()];
    if let Ok(rd) = std::fs::read_dir(dir) {
        folders.extend(
            rd.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path()),
        );
    }
    for folder in folders {
        let Ok(rd) = std::fs::read_dir(&folder) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name();
            let is_file = e.file_type().is_ok_and(|t| t.is_file());
            if is_file && is_temp(&name.to_string_lossy()) && std::fs::remove_file(e.path()).is_ok()
            {
                removed += 1;
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn intact_checks_size_and_hash() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        std::fs::write(&p, b"hello").unwrap();
        let (n, h) = hash_file(&p).unwrap();
        assert_eq!(n, 5);
        assert_eq!(
            h,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert!(still_intact(&p, 5, &h).await);
        std::fs::write(&p, b"hellO").unwrap();
        assert!(!still_intact(&p, 5, &h).await, "same size, other content");
        assert!(!still_intact(&dir.path().join("gone"), 5, &h).await);
    }

    #[cfg(unix)]
    #[test]
    fn finished_files_are_readable_like_ordinary_ones() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let tmp = tempfile::NamedTempFile::new_in(dir.path()).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(tmp.path()), 0o600);
        make_readable(tmp.path()).unwrap();
        assert_eq!(mode(tmp.path()), 0o644 & !umask());
        assert_eq!(umask() & !0o777, 0);
    }

    #[test]
    fn stale_temps_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("TIC1");
        std::fs::create_dir(&t).unwrap();
        std::fs::write(t.join(".alga-batch-x1.part"), b"half").unwrap();
        std::fs::write(dir.path().join(".manifest-abc.tmp"), b"half").unwrap();
        std::fs::write(t.join("keep.part"), b"mine").unwrap();
        std::fs::write(dir.path().join("manifest.csv"), b"x").unwrap();
        assert_eq!(remove_stale_temps(dir.path()), 2);
        assert!(t.join("keep.part").exists());
        assert!(dir.path().join("manifest.csv").exists());
        assert!(!t.join(".alga-batch-x1.part").exists());
    }
}
