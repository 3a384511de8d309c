//! `DIR/.alga-batch.lock`: one backup per folder at a time (the folder store's lock).
//!
//! The lock is an OS file lock (`File::try_lock`), held for the life of the run. The OS drops
//! it when the process ends however it ends, so a lock file left by a dead process is simply
//! not locked and the next run takes it over. The file holds the holder's pid and start time,
//! for the message a second run prints.

use crate::store::layout::LOCK_FILE;
use crate::store::StoreError;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// A held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    /// Who held the file before us, when a stale lock was taken over.
    pub took_over: Option<String>,
}

impl Drop for DirLock {
    /// Clear the holder line so the next run does not report a takeover; the OS unlocks.
    fn drop(&mut self) {
        let _ = self._file.set_len(0);
    }
}

/// Take the lock of `dir`, or fail with [`StoreError::Locked`] naming the holder.
pub fn acquire(dir: &Path) -> Result<DirLock, StoreError> {
    let path = dir.join(LOCK_FILE);
    let err =
        |e: std::io::Error| StoreError::io("cannot open lock file", path.display().to_string(), e);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(err)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let holder = read_holder(&mut file);
            return Err(StoreError::Locked(locked_message(&path, &holder)));
        }
        Err(TryLockError::Error(e)) => return Err(err(e)),
    }
    let previous = read_holder(&mut file);
    let took_over = (!previous.is_empty()).then_some(previous);
    let me = format!(
        "pid {} started {}",
        std::process::id(),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    file.set_len(0).map_err(err)?;
    file.seek(SeekFrom::Start(0)).map_err(err)?;
    file.write_all(format!("{me}\n").as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)?;
    Ok(DirLock {
        _file: file,
        took_over,
    })
}

/// The holder line written by the lock's owner (empty when unknown).
fn read_holder(file: &mut File) -> String {
    let mut s = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.take(512).read_to_string(&mut s);
    s.lines().next().unwrap_or("").trim().to_string()
}

fn locked_message(path: &Path, holder: &str) -> String {
    let who = if holder.is_empty() {
        "another alga-batch run".to_string()
    } else {
        format!("another alga-batch run ({holder})")
    };
    format!(
        "{} is locked by {who}; this run does nothing. Wait for it to finish, or stop that \
         process: a lock left behind by a process that is gone is taken over automatically",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::EXIT_LOCKED;

    #[test]
    fn second_lock_on_the_same_folder_fails_with_exit_4_naming_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let held = acquire(dir.path()).unwrap();
        let err = acquire(dir.path()).unwrap_err();
        let msg = err.to_string();
        assert_eq!(crate::error::Error::from(err).exit_code(), EXIT_LOCKED);
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        assert!(msg.contains(LOCK_FILE), "{msg}");
        drop(held);
        let again = acquire(dir.path()).unwrap();
        assert_eq!(again.took_over, None, "a clean exit leaves no stale holder");
    }

    #[test]
    fn a_lock_file_left_by_a_dead_process_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(LOCK_FILE),
            "pid 999999 started 2026-01-01T00:00:00Z\n",
        )
        .unwrap();
        let lock = acquire(dir.path()).unwrap();
        assert_eq!(
            lock.took_over.as_deref(),
            Some("pid 999999 started 2026-01-01T00:00:00Z")
        );
        let content = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert!(content.starts_with(&format!("pid {} started", std::process::id())));
    }
}
