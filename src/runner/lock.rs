//! Run locks: one run at a time per results file or backup folder.
//!
//! The lock is an OS file lock (`File::try_lock`, in the standard library since Rust 1.89,
//! which supersedes the `fs2`/`fs4` crates), held for the life of the run. The OS drops it
//! when the process ends however it ends, so a lock file left by a dead process is simply not
//! locked and the next run takes it over: no pid-file guessing. The file holds the holder's
//! pid and start time, for the message a second run prints. A folder's lock file stays (it
//! is emptied on a clean exit); a results file's lock is removed on a clean exit, which is
//! safe because a run that locked a file checks that the path still names that very file
//! (same device and inode) before it trusts the lock, and starts over otherwise.

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
    remove_on_drop: bool,
    /// Who held the file before us, when a stale lock was taken over.
    pub took_over: Option<String>,
}

impl RunLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    /// Clear the holder line (or remove the file) so the next run does not report a
    /// takeover; the OS unlocks when the file is closed, after the removal.
    fn drop(&mut self) {
        if self.remove_on_drop && std::fs::remove_file(&self.path).is_ok() {
            return;
        }
        let _ = self.file.set_len(0);
    }
}

/// The lock file of a results file: `<results>.lock` beside it. (The results file itself is
/// replaced by a rename at the end of a run, so it cannot carry the lock.)
pub fn results_lock_path(results: &Path) -> PathBuf {
    let mut name = results
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "results".into());
    name.push(".lock");
    results.with_file_name(name)
}

/// Take the lock at `path` for `what` (e.g. "results file r.csv"), or fail with
/// [`Error::Locked`] (exit 4) naming the process that holds it. With `remove_on_drop` the
/// lock file is deleted when the lock is released.
pub fn acquire(path: &Path, what: &str, remove_on_drop: bool) -> Result<RunLock> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create folder", dir, e))?;
    }
    let err = |e: std::io::Error| Error::io("cannot open lock file", path, e);
    // A lock file removed by its holder between our open and our lock is a dead file: try
    // again on the new one (a few rounds are plenty; each needs a run ending in between).
    for _ in 0..8 {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = read_holder(&mut file);
                return Err(Error::Locked(locked_message(what, path, &holder)));
            }
            Err(TryLockError::Error(e)) => return Err(err(e)),
        }
        if !still_names(path, &file) {
            continue;
        }
        let took_over = claim(&mut file).map_err(err)?;
        return Ok(RunLock {
            file,
            path: path.to_path_buf(),
            remove_on_drop,
            took_over,
        });
    }
    Err(Error::Fatal(format!(
        "cannot lock {}: the lock file keeps being replaced",
        path.display()
    )))
}

/// Write our holder line; the previous holder's line, when a stale lock is taken over.
fn claim(file: &mut File) -> std::io::Result<Option<String>> {
    let previous = read_holder(file);
    let me = format!(
        "pid {} started {}",
        std::process::id(),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(format!("{me}\n").as_bytes())?;
    file.sync_all()?;
    Ok((!previous.is_empty()).then_some(previous))
}

/// Whether `path` still names the open `file` (it was not removed or replaced meanwhile).
#[cfg(unix)]
fn still_names(path: &Path, file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(path), file.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn still_names(path: &Path, _file: &File) -> bool {
    path.exists()
}

/// The holder line written by the lock's owner (empty when unknown).
fn read_holder(file: &mut File) -> String {
    let mut s = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.take(512).read_to_string(&mut s);
    s.lines().next().unwrap_or("").trim().to_string()
}

fn locked_message(what: &str, path: &Path, holder: &str) -> String {
    let who = if holder.is_empty() {
        "another alga-batch run".to_string()
    } else {
        format!("another alga-batch run ({holder})")
    };
    format!(
        "{what} is in use by {who} (lock {}); this run does nothing. Wait for it to finish, \
         or stop that process: a lock left behind by a process that is gone is taken over \
         automatically",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::EXIT_LOCKED;

    #[test]
    fn a_second_lock_fails_with_exit_4_naming_the_pid_and_a_clean_exit_leaves_no_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = results_lock_path(&dir.path().join("r.csv"));
        assert_eq!(path, dir.path().join("r.csv.lock"));
        let held = acquire(&path, "results file r.csv", true).unwrap();
        let err = acquire(&path, "results file r.csv", true).unwrap_err();
        assert_eq!(err.exit_code(), EXIT_LOCKED);
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        assert!(msg.contains("results file r.csv is in use"), "{msg}");
        drop(held);
        assert!(!path.exists(), "a results lock is removed on a clean exit");
        let again = acquire(&path, "results file r.csv", false).unwrap();
        assert_eq!(again.took_over, None, "a clean exit leaves no stale holder");
        drop(again);
        assert!(path.exists(), "a folder lock stays");
        let third = acquire(&path, "x", false).unwrap();
        assert_eq!(third.took_over, None, "emptied on a clean exit");
    }

    #[test]
    fn a_lock_file_left_by_a_dead_process_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("x.lock");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "pid 999999 started 2026-01-01T00:00:00Z\n").unwrap();
        let lock = acquire(&path, "x", false).unwrap();
        assert_eq!(
            lock.took_over.as_deref(),
            Some("pid 999999 started 2026-01-01T00:00:00Z")
        );
        let content = std::fs::read_to_string(&path).unwrap();
        assert!(content.starts_with(&format!("pid {} started", std::process::id())));
    }
}
