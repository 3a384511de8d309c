//! S3-compatible object storage as a backup target (`--out s3://BUCKET/PREFIX`): the only user
//! of the `object_store` crate. Keys are the layout's, below PREFIX.
//!
//! How each guarantee of the trait (see `store/mod.rs`) is kept without a file system:
//!
//! - **Objects appear whole** (`upload.rs`). A download is hashed as it streams into parts of
//!   8 MiB (S3's floor is 5 MiB except for the last part), at most two in flight per
//!   download and four in the whole store, so memory stays bounded. A document smaller than
//!   one part stays in memory and is written by one PUT on commit (with its sha256 as
//!   `x-amz-meta-sha256`); a larger one is a multipart upload, completed on commit, after the
//!   byte count and sha256 were checked and the journal row is durable. A failed, aborted or
//!   dropped upload is aborted (from `Drop` in a background task the store awaits before it
//!   compacts). Each multipart upload in progress is named by a small object under
//!   `.alga-batch-uploads/` (`pending.rs`), and the next run aborts what a `kill -9` left, once
//!   it holds the lock; a bucket lifecycle rule is the backstop (README).
//! - **The journal** (`journal.rs`): S3 cannot append, so each batch of changes waiting at the
//!   time is one new object under `.alga-batch-journal/<run>/`, written by one task; a change
//!   is durable once its PUT has succeeded, before its document's object is committed. Loading
//!   replays them in key order; compacting puts `manifest.csv` in one go, then retires them.
//!   `manifest.csv` names only objects that exist: rows whose commit failed, and replayed rows
//!   of a killed run whose object never appeared, are left out.
//! - **The lock** (`lease.rs`): an object created with `If-None-Match: *` holding host, pid,
//!   start time and a lease renewed with `If-Match` every 20 s; an expired lease is taken over
//!   with `If-Match` on the old ETag, so of two takers only one wins. A store that ignores
//!   or refuses conditional puts is detected and the run stops (`--no-lock` skips the lock).
//! - **Cheap checks** (`listing.rs`): a repeat run learns sizes from the ticket folder's
//!   listing (one LIST, which the backup does anyway to plan names), or a HEAD; it never reads
//!   an object back unless `--verify`.

mod config;
mod journal;
mod lease;
mod listing;
mod pending;
mod upload;

#[cfg(test)]
mod tests;

use super::journal::Record;
use super::layout::{JOURNAL_DIR, MANIFEST_FILE, UPLOADS_DIR};
use super::manifest::{self, Entries, Entry};
use super::{BackupStore, ByteStream, Check, Checked, Durable, Listed, Loaded, Presence};
use super::{StoreError, StoreLock, Upload};
use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::task::JoinHandle;

/// An object store that also takes multipart uploads part by part: S3 (and `InMemory` in the
/// unit tests).
pub(crate) trait Backend: ObjectStore + MultipartStore {}
impl<T: ObjectStore + MultipartStore> Backend for T {}

/// Multipart part uploads in flight in the whole store (each holds one part in memory).
const PARTS_IN_FLIGHT: usize = 4;

/// What the store and its uploads, journal and lock share.
pub(crate) struct Shared {
    backend: Arc<dyn Backend>,
    /// The prefix, without a trailing `/` (may be empty).
    root: String,
    /// `s3://bucket[/prefix]`.
    label: String,
    /// Bounds the parts in flight across all uploads.
    parts: Arc<tokio::sync::Semaphore>,
    /// Aborts started from `Drop`, awaited before compaction and at unlock.
    background: Mutex<Vec<JoinHandle<()>>>,
    /// The lease, while this run holds the lock.
    lease: Mutex<Option<Arc<lease::Lease>>>,
    /// Sizes learned from folder listings.
    listing: listing::Listing,
    /// Keys whose commit failed in this run: their rows stay out of `manifest.csv`.
    failed_commits: Mutex<std::collections::HashSet<String>>,
}

impl Shared {
    /// The object of `key`; a key that is not a plain relative path is refused.
    fn path(&self, key: &str) -> Result<Path, StoreError> {
        let plain = |c: &str| !c.is_empty() && c != "." && c != ".." && !c.contains(['\\', '\0']);
        let refuse = || {
            StoreError::Other(format!(
                "refusing key {:?}: not a plain relative path",
                key.escape_default().to_string()
            ))
        };
        if !key.split('/').all(plain) {
            return Err(refuse());
        }
        Path::parse(self.full(key)).map_err(|_| refuse())
    }

    /// `key` below the prefix.
    fn full(&self, key: &str) -> String {
        if self.root.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.root)
        }
    }

    /// The folder `dir` below the prefix (`None`: the bucket's root).
    fn dir(&self, dir: &str) -> Result<Option<Path>, StoreError> {
        match (self.root.is_empty(), dir.is_empty()) {
            (true, true) => Ok(None),
            (false, true) => Path::parse(&self.root)
                .map(Some)
                .map_err(|e| StoreError::Other(format!("bad prefix {}: {e}", self.label))),
            _ => self.path(dir).map(Some),
        }
    }

    /// `s3://bucket/prefix/key`, for messages.
    fn describe(&self, key: &str) -> String {
        format!("{}/{key}", self.label)
    }

    /// An `object_store` failure on `key` as a store error (missing objects keep their kind).
    fn error(&self, action: &'static str, key: &str, e: object_store::Error) -> StoreError {
        StoreError::io(action, self.describe(key), io_error(e))
    }

    /// Fail when this run held the lock and lost it (taken over, or not renewed in time).
    fn still_locked(&self) -> Result<(), StoreError> {
        match lock(&self.lease).as_ref() {
            Some(l) => l.check(&self.label),
            None => Ok(()),
        }
    }

    /// Run `work` in the background (an abort from `Drop`); [`Shared::settle`] awaits it.
    fn spawn(&self, work: impl std::future::Future<Output = ()> + Send + 'static) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return; // no runtime left: the next run (or a lifecycle rule) cleans up
        };
        let mut tasks = lock(&self.background);
        tasks.retain(|t| !t.is_finished());
        tasks.push(rt.spawn(work));
    }

    /// Wait for the background work started so far.
    async fn settle(&self) {
        let tasks = std::mem::take(&mut *lock(&self.background));
        for t in tasks {
            let _ = t.await;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An `object_store` error as an I/O error of the matching kind.
fn io_error(e: object_store::Error) -> std::io::Error {
    use std::io::ErrorKind;
    let kind = match &e {
        object_store::Error::NotFound { .. } => ErrorKind::NotFound,
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => ErrorKind::PermissionDenied,
        _ => ErrorKind::Other,
    };
    std::io::Error::new(kind, e.to_string())
}

/// A bucket (and prefix) of S3-compatible object storage.
pub struct S3Store {
    shared: Arc<Shared>,
    journal: Mutex<Option<journal::Writer>>,
}

impl S3Store {
    /// The store at `s3://bucket/prefix`, with credentials and endpoint from the standard
    /// AWS environment (see `config.rs`). Sends nothing yet.
    pub fn from_env(bucket: &str, prefix: &str) -> Result<S3Store, StoreError> {
        let client = config::client(bucket)?;
        Ok(Self::with_backend(Arc::new(client), bucket, prefix))
    }

    /// The store at `s3://bucket/prefix` configured from `vars` (`AWS_*` names and values, read
    /// as the process environment is read by [`S3Store::from_env`]), for programs and tests
    /// that hold their settings apart from their environment.
    pub fn from_vars(
        bucket: &str,
        prefix: &str,
        vars: &[(String, String)],
    ) -> Result<S3Store, StoreError> {
        let client = config::client_from(bucket, vars)?;
        Ok(Self::with_backend(Arc::new(client), bucket, prefix))
    }

    /// The store over `backend`; `bucket` only names it in messages.
    pub(crate) fn with_backend(backend: Arc<dyn Backend>, bucket: &str, prefix: &str) -> Self {
        let root = prefix.trim_matches('/').to_string();
        let label = if root.is_empty() {
            format!("s3://{bucket}")
        } else {
            format!("s3://{bucket}/{root}")
        };
        S3Store {
            shared: Arc::new(Shared {
                backend,
                root,
                label,
                parts: Arc::new(tokio::sync::Semaphore::new(PARTS_IN_FLIGHT)),
                background: Mutex::new(Vec::new()),
                lease: Mutex::new(None),
                listing: listing::Listing::default(),
                failed_commits: Mutex::new(Default::default()),
            }),
            journal: Mutex::new(None),
        }
    }

    /// Stop the journal writer (after what is queued) and wait for background aborts.
    async fn quiesce(&self) {
        let writer = lock(&self.journal).take();
        if let Some(w) = writer {
            w.stop().await;
        }
        self.shared.settle().await;
    }
}

#[async_trait]
impl BackupStore for S3Store {
    fn describe(&self, key: &str) -> String {
        self.shared.describe(key)
    }

    async fn lock(&self) -> Result<StoreLock, StoreError> {
        let (lease, took_over) = lease::acquire(&self.shared).await?;
        *lock(&self.shared.lease) = Some(lease.clone());
        // Only with the lock held is no other run uploading here.
        pending::sweep(&self.shared).await;
        Ok(StoreLock::new(
            took_over,
            Box::new(lease::Guard::new(lease)),
        ))
    }

    async fn unlock(&self, held: StoreLock) -> Result<(), StoreError> {
        self.quiesce().await;
        let lease = lock(&self.shared.lease).take();
        drop(held);
        match lease {
            Some(l) => l.release(&self.shared).await,
            None => Ok(()),
        }
    }

    async fn create(&self, key: &str) -> Result<Box<dyn Upload>, StoreError> {
        self.shared.still_locked()?;
        let path = self.shared.path(key)?;
        Ok(Box::new(upload::S3Upload::new(
            self.shared.clone(),
            key.to_string(),
            path,
        )))
    }

    async fn check(&self, entry: &Entry, how: Check) -> Result<Checked, StoreError> {
        let path = self.shared.path(&entry.path)?;
        let found = |presence, rehashed| Ok(Checked { presence, rehashed });
        if how == Check::Verify {
            let presence = match hash_object(&self.shared, &entry.path, &path).await? {
                None => Presence::Missing,
                Some((n, sha256))
                    if n == entry.bytes && sha256.eq_ignore_ascii_case(&entry.sha256) =>
                {
                    Presence::Intact
                }
                Some(_) => Presence::Differs,
            };
            return found(presence, presence != Presence::Missing);
        }
        let size = match self.shared.listing.size(&entry.path) {
            Some(listed) => listed,
            None => match self.shared.backend.head(&path).await {
                Ok(meta) => Some(meta.size),
                Err(object_store::Error::NotFound { .. }) => None,
                Err(e) => return Err(self.shared.error("cannot check", &entry.path, e)),
            },
        };
        match size {
            None => found(Presence::Missing, false),
            Some(s) if s != entry.bytes => found(Presence::Differs, false),
            Some(_) => found(Presence::Intact, false),
        }
    }

    async fn read(&self, key: &str) -> Result<ByteStream, StoreError> {
        let path = self.shared.path(key)?;
        let got = self.shared.backend.get(&path).await;
        let got = got.map_err(|e| self.shared.error("cannot read", key, e))?;
        let target = self.shared.describe(key);
        let stream = got
            .into_stream()
            .map_err(move |e| StoreError::io("cannot read", target.clone(), io_error(e)));
        Ok(stream.boxed())
    }

    async fn read_small(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        read_small(&self.shared, key).await
    }

    async fn put_small(&self, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        self.shared.still_locked()?;
        let path = self.shared.path(key)?;
        self.shared.listing.forget(key);
        let put = self
            .shared
            .backend
            .put(&path, PutPayload::from(bytes))
            .await;
        put.map(|_| ())
            .map_err(|e| self.shared.error("cannot write", key, e))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.shared.still_locked()?;
        delete(&self.shared, key).await
    }

    async fn list(&self, dir: &str) -> Result<Vec<Listed>, StoreError> {
        let prefix = self.shared.dir(dir)?;
        let listed = self
            .shared
            .backend
            .list_with_delimiter(prefix.as_ref())
            .await;
        let listed = listed.map_err(|e| self.shared.error("cannot list", dir, e))?;
        let internal = |n: &str| dir.is_empty() && (n == JOURNAL_DIR || n == UPLOADS_DIR);
        let mut out = Vec::new();
        for p in &listed.common_prefixes {
            if let Some(name) = p.filename().filter(|n| !internal(n)) {
                out.push(Listed {
                    name: name.to_string(),
                    folder: true,
                });
            }
        }
        let mut sizes = Vec::new();
        for o in &listed.objects {
            if let Some(name) = o.location.filename() {
                sizes.push((name.to_string(), o.size));
                out.push(Listed {
                    name: name.to_string(),
                    folder: false,
                });
            }
        }
        if !dir.is_empty() {
            self.shared.listing.fill(dir, sizes);
        }
        Ok(out)
    }

    async fn load_manifest(&self) -> Result<Loaded, StoreError> {
        let label = self.shared.describe(MANIFEST_FILE);
        let entries = match read_small(&self.shared, MANIFEST_FILE).await? {
            Some(data) => manifest::parse(&data, &label)?,
            None => Entries::new(),
        };
        journal::load(&self.shared, entries).await
    }

    fn record(&self, change: Record) -> Durable {
        if let Err(e) = self.shared.still_locked() {
            return Box::pin(async move { Err(e) });
        }
        let done = {
            let mut guard = lock(&self.journal);
            guard
                .get_or_insert_with(|| journal::Writer::start(self.shared.clone()))
                .submit(change)
        };
        Box::pin(done)
    }

    async fn compact(&self, entries: Entries) -> Result<(), StoreError> {
        self.quiesce().await;
        self.shared.still_locked()?;
        journal::compact(&self.shared, entries).await
    }
}

/// A small object whole (`None` when missing).
async fn read_small(shared: &Shared, key: &str) -> Result<Option<Bytes>, StoreError> {
    let path = shared.path(key)?;
    let got = match shared.backend.get(&path).await {
        Ok(g) => g,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(shared.error("cannot read", key, e)),
    };
    match got.bytes().await {
        Ok(b) => Ok(Some(b)),
        Err(e) => Err(shared.error("cannot read", key, e)),
    }
}

/// Delete an object (a missing one is not an error).
async fn delete(shared: &Shared, key: &str) -> Result<(), StoreError> {
    let path = shared.path(key)?;
    shared.listing.forget(key);
    match shared.backend.delete(&path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(shared.error("cannot delete", key, e)),
    }
}

/// Read an object through and hash it: (bytes, sha256); `None` when it is missing.
async fn hash_object(
    shared: &Shared,
    key: &str,
    path: &Path,
) -> Result<Option<(u64, String)>, StoreError> {
    let mut stream = match shared.backend.get(path).await {
        Ok(got) => got.into_stream(),
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(shared.error("cannot read", key, e)),
    };
    let mut hasher = Sha256::new();
    let mut n = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| shared.error("cannot read", key, e))?;
        hasher.update(&chunk);
        n += chunk.len() as u64;
    }
    Ok(Some((n, hex::encode(hasher.finalize()))))
}
