//! File helpers of the folder store (all blocking: call them off the async threads): new temp
//! files with an ordinary file's mode, atomic whole-file writes, hashing, the mtime rule, and
//! clearing what a killed run left.

use crate::store::layout::TEMP_PREFIX;
use crate::store::manifest::parse_time;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::Path;
use std::time::SystemTime;

/// A temp file in `dir` named `<prefix>*<suffix>`, created with mode 0644 less the umask (the
/// kernel applies the umask, as for any new file: no need to read it).
pub(super) fn temp_in(
    dir: &Path,
    prefix: &str,
    suffix: &str,
) -> std::io::Result<tempfile::NamedTempFile> {
    let mut b = tempfile::Builder::new();
    b.prefix(prefix).suffix(suffix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(std::fs::Permissions::from_mode(0o644));
    }
    b.tempfile_in(dir)
}

/// Write `path` whole and atomically: a temp file beside it, written by `fill`, fsynced, then
/// renamed over `path`, and the folder fsynced so the rename survives a power cut.
pub(super) fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut std::io::BufWriter<&std::fs::File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = temp_in(dir, TEMP_PREFIX, ".tmp")?;
    {
        let mut w = std::io::BufWriter::new(tmp.as_file());
        fill(&mut w)?;
        w.flush()?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir);
    Ok(())
}

/// Make a rename or a new file durable (best effort: not every platform can open a folder).
pub(super) fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Size and sha256 (lowercase hex) of a file.
pub(crate) fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
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

/// The trust rule: a file not modified after its row's `downloaded_at` (compared to the
/// millisecond, the precision of `downloaded_at`) still holds what was downloaded, unless
/// something rewrote it and set an old mtime. The row is taken after the file's last write, and
/// a rename does not change a file's mtime.
pub(super) fn unchanged_since(modified: SystemTime, downloaded_at: &str) -> bool {
    let Some(recorded) = parse_time(downloaded_at) else {
        return false;
    };
    let modified = chrono::DateTime::<chrono::Utc>::from(modified);
    modified.timestamp_millis() <= recorded.timestamp_millis()
}

/// Whether a file name is one of our temp files.
pub(super) fn is_temp(name: &str) -> bool {
    let ours = name.starts_with(TEMP_PREFIX) && (name.ends_with(".part") || name.ends_with(".tmp"));
    // Names of earlier versions.
    let older = [".manifest-", ".comments-", ".resume-"]
        .iter()
        .any(|p| name.starts_with(p) && name.ends_with(".tmp"));
    ours || older
}

/// Remove temp files a killed run left in `dir` and its folders; returns how many.
pub(super) fn remove_stale_temps(dir: &Path) -> usize {
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
            let is_file = e.file_type().is_ok_and(|t| t.is_file());
            if is_file
                && is_temp(&e.file_name().to_string_lossy())
                && std::fs::remove_file(e.path()).is_ok()
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
    use std::time::Duration;

    #[test]
    fn hash_file_gives_size_and_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        std::fs::write(&p, b"hello").unwrap();
        let (n, h) = hash_file(&p).unwrap();
        assert_eq!(n, 5);
        assert_eq!(
            h,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
    }

    #[test]
    fn a_file_modified_after_its_row_is_not_trusted() {
        let at: SystemTime = parse_time("2026-11-28T07:00:00.250Z").unwrap().into();
        assert!(unchanged_since(at, "2026-11-28T07:00:00.250Z"));
        assert!(unchanged_since(
            at + Duration::from_micros(900),
            "2026-11-28T07:00:00.250Z"
        ));
        assert!(!unchanged_since(
            at + Duration::from_millis(1),
            "2026-11-28T07:00:00.250Z"
        ));
        assert!(unchanged_since(at, "2026-11-28T07:00:01Z"));
        assert!(!unchanged_since(at, "yesterday"));
    }

    #[cfg(unix)]
    #[test]
    fn new_files_get_an_ordinary_files_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.csv");
        write_atomic(&p, |w| w.write_all(b"x")).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        let tmp = temp_in(dir.path(), TEMP_PREFIX, ".part").unwrap();
        let tmp_mode = std::fs::metadata(tmp.path()).unwrap().permissions().mode() & 0o777;
        // The umask can only take bits away from 0644 (the process's umask is not read here).
        assert_eq!(mode & !0o644, 0, "{mode:o}");
        assert_eq!(mode, tmp_mode);
        assert_ne!(mode & 0o600, 0, "{mode:o}");
        assert_eq!(std::fs::read(&p).unwrap(), b"x");
    }

    #[test]
    fn stale_temps_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("TIC1");
        std::fs::create_dir(&t).unwrap();
        std::fs::write(t.join(".alga-batch-x1.part"), b"half").unwrap();
        std::fs::write(dir.path().join(".alga-batch-abc.tmp"), b"half").unwrap();
        std::fs::write(dir.path().join(".manifest-abc.tmp"), b"half").unwrap();
        std::fs::write(t.join("keep.part"), b"mine").unwrap();
        std::fs::write(dir.path().join("manifest.csv"), b"x").unwrap();
        assert_eq!(remove_stale_temps(dir.path()), 3);
        assert!(t.join("keep.part").exists());
        assert!(dir.path().join("manifest.csv").exists());
        assert!(!t.join(".alga-batch-x1.part").exists());
    }
}
