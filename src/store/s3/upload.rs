//! Writing one object: the bytes are hashed as they arrive and cut into parts of
//! [`PART_BYTES`]. An object that never fills a part is kept in memory and written by one PUT
//! on commit (carrying its sha256 as metadata). The first full part starts a multipart
//! upload (recorded under `.alga-batch-uploads/`, see `pending.rs`); parts go up as they fill,
//! at most [`IN_FLIGHT`] per upload and `PARTS_IN_FLIGHT` in the store, so a slow store slows
//! the download instead of filling memory. `finish` checks the size and sha256, sends the last
//! part and waits for all of them; only `commit` completes the upload, so nothing appears
//! under the key before the journal row. Aborting, failing or dropping either stage aborts the
//! multipart upload: nothing is left but what a `kill -9` leaves (which the next run aborts).
//!
//! All parts but the last have the same size (Cloudflare R2 requires it), so an object can
//! hold at most 10,000 x 8 MiB (78 GiB); a larger download fails cleanly.

use super::{lock, pending, Shared};
use crate::store::{Expected, Staged, StoreError, Upload};
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use object_store::multipart::PartId;
use object_store::path::Path;
use object_store::{Attribute, Attributes, MultipartId, ObjectStore, PutOptions, PutPayload};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Size of every part but the last (S3 needs at least 5 MiB).
pub(crate) const PART_BYTES: usize = 8 << 20;
/// S3's limit on parts per upload.
const MAX_PARTS: usize = 10_000;
/// Parts of one upload in flight at once.
const IN_FLIGHT: usize = 2;
/// Metadata key holding the sha256 of an object written by one PUT.
pub(crate) const SHA256_META: &str = "sha256";

type PartTask = JoinHandle<Result<PartId, object_store::Error>>;

/// A multipart upload in progress.
struct Multi {
    id: MultipartId,
    /// Its record under `.alga-batch-uploads/`.
    marker: Path,
    /// Parts sent, in order.
    done: Vec<PartId>,
    /// Parts in flight, in order.
    running: VecDeque<PartTask>,
}

/// An object being written.
pub(super) struct S3Upload {
    shared: Arc<Shared>,
    key: String,
    path: Path,
    hasher: Sha256,
    bytes: u64,
    /// The part being filled.
    buf: BytesMut,
    multi: Option<Multi>,
}

impl S3Upload {
    pub(super) fn new(shared: Arc<Shared>, key: String, path: Path) -> S3Upload {
        S3Upload {
            shared,
            key,
            path,
            hasher: Sha256::new(),
            bytes: 0,
            buf: BytesMut::new(),
            multi: None,
        }
    }

    fn error(&self, e: object_store::Error) -> StoreError {
        self.shared.error("cannot upload", &self.key, e)
    }

    /// Room for `n` more bytes, never past one part: a whole part at once once the object is
    /// known to need several, else doubling (a small document takes little memory).
    fn reserve(&mut self, n: usize) {
        let (len, cap) = (self.buf.len(), self.buf.capacity());
        if cap - len >= n {
            return;
        }
        let want = if self.multi.is_some() {
            PART_BYTES
        } else {
            // Powers of two, so that doubling lands on PART_BYTES exactly.
            (cap * 2)
                .max(len + n)
                .max(64 * 1024)
                .next_power_of_two()
                .min(PART_BYTES)
        };
        self.buf.reserve(want - len);
    }

    /// Send the filled part (starting the multipart upload with the first one).
    async fn send_part(&mut self) -> Result<(), StoreError> {
        let payload = self.buf.split().freeze();
        if self.multi.is_none() {
            self.multi = Some(self.start().await?);
        }
        let shared = self.shared.clone();
        let Some(multi) = self.multi.as_mut() else {
            return Err(StoreError::Other("multipart upload not started".into()));
        };
        let index = multi.done.len() + multi.running.len();
        if index >= MAX_PARTS {
            return Err(StoreError::Other(format!(
                "{}: larger than S3's {MAX_PARTS} parts of {} MiB",
                self.key,
                PART_BYTES >> 20
            )));
        }
        while multi.running.len() >= IN_FLIGHT {
            let next = multi.running.pop_front();
            let part = join(next, &shared, &self.key).await?;
            multi.done.push(part);
        }
        let permit = shared.parts.clone().acquire_owned().await;
        let (backend, path, id) = (shared.backend.clone(), self.path.clone(), multi.id.clone());
        multi.running.push_back(tokio::spawn(async move {
            let _permit = permit;
            backend
                .put_part(&path, &id, index, PutPayload::from(payload))
                .await
        }));
        Ok(())
    }

    /// Start the multipart upload and record it.
    async fn start(&self) -> Result<Multi, StoreError> {
        let backend = &self.shared.backend;
        let id = backend
            .create_multipart(&self.path)
            .await
            .map_err(|e| self.error(e))?;
        match pending::record(&self.shared, &self.path, &id).await {
            Ok(marker) => Ok(Multi {
                id,
                marker,
                done: Vec::new(),
                running: VecDeque::new(),
            }),
            Err(e) => {
                let _ = backend.abort_multipart(&self.path, &id).await;
                Err(e)
            }
        }
    }

    /// Abort the multipart upload, if any, and wait for it.
    async fn abort_now(&mut self) {
        if let Some(m) = self.multi.take() {
            abort(self.shared.clone(), self.path.clone(), m).await;
        }
    }

    /// Whether the bytes are what was expected.
    fn verify(&self, sha256: &str, expected: &Expected) -> Result<(), StoreError> {
        if let Some(want) = expected.bytes.filter(|&w| w != self.bytes) {
            return Err(StoreError::SizeMismatch {
                got: self.bytes,
                expected: want,
            });
        }
        match &expected.sha256 {
            Some(want) if !want.eq_ignore_ascii_case(sha256) => Err(StoreError::HashMismatch {
                got: sha256.to_string(),
                expected: want.clone(),
            }),
            _ => Ok(()),
        }
    }
}

/// The result of a part upload.
async fn join(task: Option<PartTask>, shared: &Shared, key: &str) -> Result<PartId, StoreError> {
    let Some(task) = task else {
        return Err(StoreError::Other("no part in flight".into()));
    };
    match task.await {
        Ok(Ok(part)) => Ok(part),
        Ok(Err(e)) => Err(shared.error("cannot upload", key, e)),
        Err(e) => Err(StoreError::Other(format!(
            "part upload of {key} failed: {e}"
        ))),
    }
}

/// Stop the parts in flight, abort the upload and forget its record.
async fn abort(shared: Arc<Shared>, path: Path, multi: Multi) {
    for t in &multi.running {
        t.abort();
    }
    for t in multi.running {
        let _ = t.await;
    }
    let _ = shared.backend.abort_multipart(&path, &multi.id).await;
    pending::clear(&shared, &multi.marker).await;
}

/// Abort in the background (from `Drop`); the store awaits it before compacting.
fn abort_later(shared: &Arc<Shared>, path: &Path, multi: Multi) {
    shared.spawn(abort(shared.clone(), path.clone(), multi));
}

impl Drop for S3Upload {
    fn drop(&mut self) {
        if let Some(m) = self.multi.take() {
            abort_later(&self.shared, &self.path, m);
        }
    }
}

#[async_trait]
impl Upload for S3Upload {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        self.hasher.update(&chunk);
        self.bytes += chunk.len() as u64;
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            let n = (PART_BYTES - self.buf.len()).min(rest.len());
            self.reserve(n);
            self.buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if self.buf.len() == PART_BYTES {
                if let Err(e) = self.send_part().await {
                    self.abort_now().await;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    async fn finish(
        mut self: Box<Self>,
        expected: &Expected,
    ) -> Result<Box<dyn Staged>, StoreError> {
        let sha256 = hex::encode(std::mem::take(&mut self.hasher).finalize());
        if let Err(e) = self.verify(&sha256, expected) {
            self.abort_now().await;
            return Err(e);
        }
        let body = self.buf.split().freeze();
        let Some(mut multi) = self.multi.take() else {
            return Ok(Box::new(S3Staged {
                shared: self.shared.clone(),
                key: self.key.clone(),
                path: self.path.clone(),
                bytes: self.bytes,
                sha256,
                body: Body::Whole(body),
            }));
        };
        match flush(&self.shared, &self.key, &self.path, &mut multi, body).await {
            Ok(()) => Ok(Box::new(S3Staged {
                shared: self.shared.clone(),
                key: self.key.clone(),
                path: self.path.clone(),
                bytes: self.bytes,
                sha256,
                body: Body::Parts(Some(multi)),
            })),
            Err(e) => {
                abort(self.shared.clone(), self.path.clone(), multi).await;
                Err(e)
            }
        }
    }

    async fn abort(mut self: Box<Self>) {
        self.abort_now().await;
    }
}

/// Send the last part (if any bytes are left) and wait for every part.
async fn flush(
    shared: &Arc<Shared>,
    key: &str,
    path: &Path,
    multi: &mut Multi,
    last: Bytes,
) -> Result<(), StoreError> {
    if !last.is_empty() {
        let index = multi.done.len() + multi.running.len();
        let permit = shared.parts.clone().acquire_owned().await;
        let (backend, path, id) = (shared.backend.clone(), path.clone(), multi.id.clone());
        multi.running.push_back(tokio::spawn(async move {
            let _permit = permit;
            backend
                .put_part(&path, &id, index, PutPayload::from(last))
                .await
        }));
    }
    while !multi.running.is_empty() {
        let part = join(multi.running.pop_front(), shared, key).await?;
        multi.done.push(part);
    }
    Ok(())
}

/// What a staged object holds until commit.
enum Body {
    /// The whole object (smaller than a part): one PUT.
    Whole(Bytes),
    /// Every part is uploaded; `None` once completed or aborted.
    Parts(Option<Multi>),
}

/// A complete, checked object, not yet under its key.
struct S3Staged {
    shared: Arc<Shared>,
    key: String,
    path: Path,
    bytes: u64,
    sha256: String,
    body: Body,
}

impl Drop for S3Staged {
    fn drop(&mut self) {
        if let Body::Parts(multi) = &mut self.body {
            if let Some(m) = multi.take() {
                abort_later(&self.shared, &self.path, m);
            }
        }
    }
}

#[async_trait]
impl Staged for S3Staged {
    fn bytes(&self) -> u64 {
        self.bytes
    }

    fn sha256(&self) -> &str {
        &self.sha256
    }

    async fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        self.shared.listing.forget(&self.key);
        let shared = self.shared.clone();
        let committed = self.put().await;
        let mut failed = lock(&shared.failed_commits);
        match &committed {
            Ok(()) => failed.remove(&self.key),
            Err(_) => failed.insert(self.key.clone()),
        };
        committed
    }

    async fn abort(mut self: Box<Self>) {
        if let Body::Parts(multi) = &mut self.body {
            if let Some(m) = multi.take() {
                abort(self.shared.clone(), self.path.clone(), m).await;
            }
        }
    }
}

impl S3Staged {
    /// Put the object under its key: one PUT, or complete the multipart upload.
    async fn put(&mut self) -> Result<(), StoreError> {
        let shared = self.shared.clone();
        match &mut self.body {
            Body::Whole(bytes) => {
                let mut attributes = Attributes::new();
                attributes.insert(
                    Attribute::Metadata(SHA256_META.into()),
                    self.sha256.clone().into(),
                );
                let payload = PutPayload::from(std::mem::take(bytes));
                let put = shared
                    .backend
                    .put_opts(&self.path, payload, PutOptions::from(attributes))
                    .await;
                put.map(|_| ())
                    .map_err(|e| shared.error("cannot store", &self.key, e))
            }
            Body::Parts(multi) => {
                let Some(m) = multi.take() else {
                    return Err(StoreError::Other(format!(
                        "{}: already committed",
                        self.key
                    )));
                };
                let done = shared
                    .backend
                    .complete_multipart(&self.path, &m.id, m.done.clone())
                    .await;
                match done {
                    Ok(_) => {
                        pending::clear(&shared, &m.marker).await;
                        Ok(())
                    }
                    Err(e) => {
                        let err = shared.error("cannot store", &self.key, e);
                        abort(shared.clone(), self.path.clone(), m).await;
                        Err(err)
                    }
                }
            }
        }
    }
}
