//! The local folder store: keys are paths below the backup folder DIR.
//!
//! Objects are written through temp files renamed into place (`upload.rs`), with direct I/O
//! where the disk allows (`sink.rs`, `disk.rs`: a property of the disk, not of the HTTP
//! client). The lock is an OS file lock (`lock.rs`). Changes to the manifest go to
//! `DIR/manifest.journal.csv` through one writer thread (`writer.rs`); `DIR/manifest.csv` is
//! rewritten atomically when the journal is compacted. Blocking file work runs in
//! `spawn_blocking`, never on the async threads.

mod disk;
mod files;
mod sink;
mod upload;
mod writer;

pub(crate) use files::hash_file;

use super::journal::{self, Record};
use super::layout::{JOURNAL_FILE, LOCK_FILE, MANIFEST_FILE};
use super::manifest::{self, Entries, Entry};
use super::{BackupStore, ByteStream, Check, Checked, Durable, Listed, Loaded, Presence};
use super::{StoreError, StoreLock, Upload};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use writer::JournalWriter;

/// A backup folder.
pub struct FolderStore {
    root: PathBuf,
    direct_io: bool,
    journal: Mutex<Option<JournalWriter>>,
}

impl FolderStore {
    /// The store at `root` (created when first written). `direct_io: false` sends every write
    /// through the page cache.
    pub fn new(root: impl Into<PathBuf>, direct_io: bool) -> FolderStore {
        FolderStore {
            root: root.into(),
            direct_io,
            journal: Mutex::new(None),
        }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file of `key`; a key that is not a plain relative path is refused.
    pub fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        let plain = |c: &str| !c.is_empty() && c != "." && c != ".." && !c.contains(['\\', '\0']);
        if !key.split('/').all(plain) {
            return Err(StoreError::Other(format!(
                "refusing key {:?}: not a plain relative path",
                key.escape_default().to_string()
            )));
        }
        Ok(key.split('/').fold(self.root.clone(), |p, c| p.join(c)))
    }

    fn journal_lock(&self) -> std::sync::MutexGuard<'_, Option<JournalWriter>> {
        self.journal.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Run blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Other(format!("store task failed: {e}")))?
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let target = path.display().to_string();
    move |e| StoreError::io(action, target, e)
}

#[async_trait]
impl BackupStore for FolderStore {
    fn describe(&self, key: &str) -> String {
        self.path(key)
            .map_or_else(|_| key.to_string(), |p| p.display().to_string())
    }

    async fn lock(&self) -> Result<StoreLock, StoreError> {
        let root = self.root.clone();
        blocking(move || {
            std::fs::create_dir_all(&root).map_err(io("cannot create backup folder", &root))?;
            let what = format!("backup folder {}", root.display());
            let held =
                crate::runner::lock::acquire(&root.join(LOCK_FILE), &what, false).map_err(|e| {
                    match e {
                        crate::error::Error::Locked(m) => StoreError::Locked(m),
                        other => StoreError::io(
                            "cannot lock",
                            root.display().to_string(),
                            std::io::Error::other(other.to_string()),
                        ),
                    }
                })?;
            // Only with the lock held is no other run writing temp files here.
            files::remove_stale_temps(&root);
            Ok(StoreLock::new(held.took_over.clone(), Box::new(held)))
        })
        .await
    }

    async fn create(&self, key: &str) -> Result<Box<dyn Upload>, StoreError> {
        let dest = self.path(key)?;
        let direct = self.direct_io;
        let up = blocking(move || {
            upload::start(dest.clone(), direct).map_err(io("cannot create temp file for", &dest))
        })
        .await?;
        Ok(Box::new(up))
    }

    async fn check(&self, entry: &Entry, how: Check) -> Result<Checked, StoreError> {
        let path = self.path(&entry.path)?;
        let (bytes, sha256, at) = (
            entry.bytes,
            entry.sha256.to_ascii_lowercase(),
            entry.downloaded_at.clone(),
        );
        blocking(move || {
            let found = |presence, rehashed| Ok(Checked { presence, rehashed });
            let meta = match std::fs::metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return found(Presence::Missing, false)
                }
                Err(e) => return Err(io("cannot check", &path)(e)),
            };
            if !meta.is_file() || meta.len() != bytes {
                return found(Presence::Differs, false);
            }
            let trusted = how == Check::Trust
                && meta
                    .modified()
                    .is_ok_and(|m| files::unchanged_since(m, &at));
            if trusted {
                return found(Presence::Intact, false);
            }
            let (n, h) = hash_file(&path).map_err(io("cannot read", &path))?;
            let same = n == bytes && h == sha256;
            found(
                if same {
                    Presence::Intact
                } else {
                    Presence::Differs
                },
                true,
            )
        })
        .await
    }

    async fn read(&self, key: &str) -> Result<ByteStream, StoreError> {
        let path = self.path(key)?;
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(io("cannot read", &path))?;
        let target = path.display().to_string();
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024)
            .map(move |r| r.map_err(|e| StoreError::io("cannot read", target.clone(), e)));
        Ok(stream.boxed())
    }

    async fn read_small(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let path = self.path(key)?;
        blocking(move || match std::fs::read(&path) {
            Ok(b) => Ok(Some(Bytes::from(b))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("cannot read", &path)(e)),
        })
        .await
    }

    async fn put_small(&self, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        let path = self.path(key)?;
        blocking(move || {
            use std::io::Write;
            files::write_atomic(&path, |w| w.write_all(&bytes)).map_err(io("cannot write", &path))
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(key)?;
        blocking(move || match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("cannot delete", &path)(e)),
        })
        .await
    }

    async fn list(&self, dir: &str) -> Result<Vec<Listed>, StoreError> {
        let path = if dir.is_empty() {
            self.root.clone()
        } else {
            self.path(dir)?
        };
        blocking(move || {
            let rd = match std::fs::read_dir(&path) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(io("cannot list", &path)(e)),
            };
            Ok(rd
                .flatten()
                .map(|e| Listed {
                    name: e.file_name().to_string_lossy().into_owned(),
                    folder: e.file_type().is_ok_and(|t| t.is_dir()),
                })
                .filter(|l| !files::is_temp(&l.name))
                .collect())
        })
        .await
    }

    async fn load_manifest(&self) -> Result<Loaded, StoreError> {
        let (m, j) = (self.root.join(MANIFEST_FILE), self.root.join(JOURNAL_FILE));
        blocking(move || load(&m, &j)).await
    }

    fn record(&self, change: Record) -> Durable {
        let target = self.root.join(JOURNAL_FILE).display().to_string();
        let submitted = {
            let mut guard = self.journal_lock();
            if guard.is_none() {
                match JournalWriter::start(self.root.join(JOURNAL_FILE)) {
                    Ok(w) => *guard = Some(w),
                    Err(e) => {
                        let err = StoreError::io("cannot start the journal writer for", target, e);
                        return Box::pin(async move { Err(err) });
                    }
                }
            }
            guard.as_ref().map(|w| w.submit(change))
        };
        Box::pin(async move {
            match submitted {
                Some(done) => writer::settle(done.await, &target),
                None => Err(StoreError::Other("the journal writer is gone".into())),
            }
        })
    }

    async fn compact(&self, entries: Entries) -> Result<(), StoreError> {
        let running = self.journal_lock().take();
        let (m, j) = (self.root.join(MANIFEST_FILE), self.root.join(JOURNAL_FILE));
        blocking(move || {
            if let Some(w) = running {
                w.stop();
            }
            files::write_atomic(&m, |w| manifest::to_csv(&entries, w))
                .map_err(io("cannot write manifest", &m))?;
            match std::fs::remove_file(&j) {
                Ok(()) => files::sync_dir(j.parent().unwrap_or(Path::new("."))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io("cannot remove the manifest journal", &j)(e)),
            }
            Ok(())
        })
        .await
    }
}

/// The manifest at `m` with the journal at `j` replayed over it (warnings to stderr).
fn load(m: &Path, j: &Path) -> Result<Loaded, StoreError> {
    let read = |p: &Path| match std::fs::read(p) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("cannot read", p)(e)),
    };
    let entries = match read(m)? {
        Some(data) => manifest::parse(&data, &m.display().to_string())?,
        None => Entries::new(),
    };
    let Some(data) = read(j)? else {
        return Ok(Loaded {
            entries,
            journal_replayed: false,
        });
    };
    let replayed = journal::replay(&data, &j.display().to_string())?;
    for w in &replayed.warnings {
        eprintln!("warning: {w}");
    }
    let mut index = super::Index::new(entries);
    for r in &replayed.records {
        index.apply(r);
    }
    Ok(Loaded {
        entries: index.into_entries(),
        journal_replayed: true,
    })
}

#[cfg(test)]
mod tests;
