//! Where backups go: the [`BackupStore`] trait that every backup target implements (a local
//! folder, [`FolderStore`]; S3-compatible object storage, [`S3Store`]), the layout they share
//! (`layout/`), the manifest (`manifest.rs`), its journal (`journal.rs`) and the in-memory
//! manifest of a running backup (`index.rs`).
//!
//! How a document gets into a store, and why a kill at any instant leaves no orphan:
//! ```text
//! download stream --Upload::write--> temporary object (byte count and sha256 on the way)
//!   --Upload::finish(expected)--> Staged    size (and sha256) checked; nothing under the key
//!   --Manifest::record(entry)-->            journal row durable before the object appears
//!   --Staged::commit-->                     the object appears under its key, whole
//! ```
//! Every object under a document key is named by a durable manifest or journal row, because
//! it appears only after that row. A kill before the commit leaves a journal row whose object
//! is missing (the next run downloads it again, to the same key) and a temporary object (the
//! folder removes those under the lock; S3 lifecycle rules expire abandoned uploads). When a
//! document is fetched again over an existing key, the old object is deleted before the new
//! row is recorded, so it can never pass for the new one. A pruned document's object is
//! deleted before its row is removed.
//!
//! The S3 store (`s3/`, `object_store`) fits the trait as it is: `create` hashes the bytes into
//! 8 MiB parts (a multipart upload from the first full part; a smaller object stays in memory),
//! `finish` checks size and sha256 and sends the last part, `commit` completes the upload (or
//! puts the small object) and `abort` (or a drop) aborts it; `check` takes the size from the
//! ticket folder's listing or a HEAD (`Check::Verify` reads and hashes); `read` streams a GET;
//! `list` is `list_with_delimiter`; `lock` creates a lease object with `PutMode::Create` and
//! renews it with `PutMode::Update`, and `unlock` deletes it; `record` puts one journal object
//! per batch (durable once put) and `compact` writes `manifest.csv` in one go, then retires
//! them. Object attributes are fixed when a multipart upload starts, before the sha256 is
//! known: the sha256 lives in the manifest.
//!
//! The trait uses `async-trait` (boxed futures) rather than generics: the target is chosen at
//! run time from `--out` (a folder or `s3://`), backup and restore then hold a
//! `&dyn BackupStore` and compile once, and an upload in flight is a `Box<dyn Upload>`, as
//! `object_store`'s `Box<dyn MultipartUpload>` is. One allocation per call costs nothing next
//! to a disk write or an HTTP request.

pub mod folder;
pub mod index;
pub mod journal;
pub mod layout;
pub mod location;
pub mod manifest;
pub mod s3;

pub use folder::FolderStore;
pub use index::{Index, Manifest};
pub use journal::Record;
pub use location::{open, Location};
pub use manifest::{Entries, Entry};
pub use s3::S3Store;

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};

/// Bytes read back from a store.
pub type ByteStream = BoxStream<'static, Result<Bytes, StoreError>>;

/// Resolves once a change to the manifest is durable.
pub type Durable = BoxFuture<'static, Result<(), StoreError>>;

/// What a finished upload must match before it may be committed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    /// Byte count (the document listing's `file_size`).
    pub bytes: Option<u64>,
    /// sha256, lowercase hex.
    pub sha256: Option<String>,
}

/// How hard [`BackupStore::check`] looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Cheap: the object exists with the recorded size and the store has no sign it changed
    /// since it was recorded (a folder: its mtime is not after `downloaded_at`). Only an
    /// object that shows such a sign is read and hashed.
    Trust,
    /// Read and hash every object (`backup --verify`).
    Verify,
}

/// What [`BackupStore::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// Whether the object is the one recorded.
    pub presence: Presence,
    /// Whether it was read and hashed to tell.
    pub rehashed: bool,
}

/// Whether an object is the one a manifest row describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// It is (as far as the check looked).
    Intact,
    /// There is no object under the key.
    Missing,
    /// There is one, but its size or content differs.
    Differs,
}

/// One name in a store's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The name (one component).
    pub name: String,
    /// A folder (a common prefix, in object storage).
    pub folder: bool,
}

/// The manifest as loaded.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The manifest with the journal replayed over it.
    pub entries: Entries,
    /// A journal was there (a run was killed): compact before recording anything.
    pub journal_replayed: bool,
}

/// The run's lock; released when dropped (or when the process dies).
pub struct StoreLock {
    /// Who held it before, when a stale lock was taken over.
    pub took_over: Option<String>,
    _held: Box<dyn Send + Sync>,
}

impl StoreLock {
    /// A lock kept alive by `held`.
    pub fn new(took_over: Option<String>, held: Box<dyn Send + Sync>) -> StoreLock {
        StoreLock {
            took_over,
            _held: held,
        }
    }
}

impl std::fmt::Debug for StoreLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreLock")
            .field("took_over", &self.took_over)
            .finish_non_exhaustive()
    }
}

/// A backup target. Keys are the layout's (`layout/`): `/`-separated, relative to the root.
#[async_trait]
pub trait BackupStore: Send + Sync {
    /// Where `key` is, for messages (`/var/backups/alga/TIC1/a.pdf`).
    fn describe(&self, key: &str) -> String;

    /// Take the run's lock: [`StoreError::Locked`] naming the holder when another run holds
    /// it; a lock whose holder is gone is taken over. With the lock held, leftovers of a
    /// killed run (temporary objects) are cleared.
    async fn lock(&self) -> Result<StoreLock, StoreError>;

    /// Release the lock at the end of a run. Dropping a [`StoreLock`] releases it too where
    /// that needs no I/O (an OS file lock); a store whose lock is an object deletes it here.
    async fn unlock(&self, lock: StoreLock) -> Result<(), StoreError> {
        drop(lock);
        Ok(())
    }

    /// Start writing an object under `key`. Nothing appears under `key` until the upload is
    /// finished and committed; dropping an upload (or its [`Staged`]) abandons it.
    async fn create(&self, key: &str) -> Result<Box<dyn Upload>, StoreError>;

    /// Whether the object of `entry` is the one it describes (see [`Check`]).
    async fn check(&self, entry: &Entry, how: Check) -> Result<Checked, StoreError>;

    /// Read an object back (verification, restore).
    async fn read(&self, key: &str) -> Result<ByteStream, StoreError>;

    /// A small object whole (`None` when missing).
    async fn read_small(&self, key: &str) -> Result<Option<Bytes>, StoreError>;

    /// Write a small object whole, atomically (comments, the resume position).
    async fn put_small(&self, key: &str, bytes: Bytes) -> Result<(), StoreError>;

    /// Delete an object (a missing one is not an error).
    async fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// The names in folder `dir` (`""`: the root); temporary objects are left out.
    async fn list(&self, dir: &str) -> Result<Vec<Listed>, StoreError>;

    /// The manifest with its journal replayed (reads only).
    async fn load_manifest(&self) -> Result<Loaded, StoreError>;

    /// Append one change to the journal. Changes are ordered as the calls are made; the
    /// returned future resolves once this one is durable.
    fn record(&self, change: Record) -> Durable;

    /// Write the whole manifest atomically, then drop the journal (no change in flight).
    async fn compact(&self, entries: Entries) -> Result<(), StoreError>;
}

/// An object being written.
#[async_trait]
pub trait Upload: Send {
    /// Append bytes.
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError>;

    /// All bytes are in: check them against `expected` (a mismatch leaves nothing behind) and
    /// stage the object for [`Staged::commit`].
    async fn finish(self: Box<Self>, expected: &Expected) -> Result<Box<dyn Staged>, StoreError>;

    /// Give up: remove what was written.
    async fn abort(self: Box<Self>);
}

/// A complete, checked object, not yet under its key.
#[async_trait]
pub trait Staged: Send {
    /// Its size.
    fn bytes(&self) -> u64;

    /// Its sha256, lowercase hex.
    fn sha256(&self) -> &str;

    /// Put it under its key (replacing what is there).
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;

    /// Give up: remove it.
    async fn abort(self: Box<Self>);
}

/// Why [`put_stream`] failed: the source of the bytes, or the store.
#[derive(Debug)]
pub enum PutError<E> {
    /// Reading the source failed.
    Source(E),
    /// The store failed, or the bytes did not match what was expected.
    Store(StoreError),
}

/// The top-level folders of `store` (one per backed-up ticket), sorted.
pub async fn folders(store: &dyn BackupStore) -> Result<Vec<String>, StoreError> {
    let mut folders: Vec<String> = store
        .list("")
        .await?
        .into_iter()
        .filter(|l| l.folder)
        .map(|l| l.name)
        .collect();
    folders.sort();
    Ok(folders)
}

/// Stream `source` into a new object under `key` and stage it; on any failure the upload is
/// aborted and nothing is left.
pub async fn put_stream<E>(
    store: &dyn BackupStore,
    key: &str,
    source: impl Stream<Item = Result<Bytes, E>>,
    expected: &Expected,
) -> Result<Box<dyn Staged>, PutError<E>> {
    let upload = store.create(key).await.map_err(PutError::Store)?;
    fill(upload, source, expected).await
}

/// Stream `source` into `upload` and stage it; on any failure the upload is aborted.
pub async fn fill<E>(
    mut upload: Box<dyn Upload>,
    source: impl Stream<Item = Result<Bytes, E>>,
    expected: &Expected,
) -> Result<Box<dyn Staged>, PutError<E>> {
    let mut source = std::pin::pin!(source);
    while let Some(chunk) = source.next().await {
        let written = match chunk {
            Ok(c) => upload.write(c).await.map_err(PutError::Store),
            Err(e) => Err(PutError::Source(e)),
        };
        if let Err(e) = written {
            upload.abort().await;
            return Err(e);
        }
    }
    upload.finish(expected).await.map_err(PutError::Store)
}

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing failed.
    #[error("{action} {target}: {source}")]
    Io {
        /// What was being done ("cannot write manifest").
        action: &'static str,
        /// Which object or file.
        target: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The bytes written are not as many as expected.
    #[error("size mismatch: received {got} bytes, expected {expected}")]
    SizeMismatch {
        /// Written.
        got: u64,
        /// Expected.
        expected: u64,
    },
    /// The bytes written do not hash as expected.
    #[error("sha256 mismatch: received {got}, expected {expected}")]
    HashMismatch {
        /// Written.
        got: String,
        /// Expected.
        expected: String,
    },
    /// Another run holds the lock (the message names it).
    #[error("{0}")]
    Locked(String),
    /// The manifest or its journal cannot be read.
    #[error("{0}")]
    Damaged(String),
    /// Another failure.
    #[error("{0}")]
    Other(String),
}

impl StoreError {
    /// An I/O failure with context.
    pub fn io(action: &'static str, target: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io {
            action,
            target: target.into(),
            source,
        }
    }
}

impl From<StoreError> for crate::error::Error {
    fn from(e: StoreError) -> Self {
        use crate::error::Error;
        match e {
            StoreError::Io {
                action,
                target,
                source,
            } => Error::Io {
                action,
                path: target.into(),
                source,
            },
            StoreError::Locked(m) => Error::Locked(m),
            other => Error::Fatal(other.to_string()),
        }
    }
}
