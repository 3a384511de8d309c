//! Writing one object into the folder: a temp file beside the final name (`sink.rs` hashes the
//! bytes and writes them, with direct I/O where the disk allows), checked against what was
//! expected, and renamed onto the final name only on commit. Dropping either stage deletes the
//! temp file, so no partial file ever sits under a final name.
//!
//! Files are not fsynced one by one: a process crash cannot tear a renamed file, and after a
//! power cut (which can leave a file short or holding zeros) `backup --verify` finds it.

use super::files::temp_in;
use super::sink::Sink;
use crate::store::layout::TEMP_PREFIX;
use crate::store::{Expected, Staged, StoreError, Upload};
use async_trait::async_trait;
use bytes::Bytes;
use std::path::PathBuf;
use tempfile::NamedTempFile;

/// An object being written to a temp file.
pub(super) struct FolderUpload {
    tmp: NamedTempFile,
    /// `None` once the sink has stopped (its error is in `failed`).
    sink: Option<Sink>,
    failed: Option<std::io::Error>,
    dest: PathBuf,
}

/// Create the temp file for `dest` (blocking).
pub(super) fn start(dest: PathBuf, direct_io: bool) -> std::io::Result<FolderUpload> {
    let dir = dest.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = temp_in(dir, TEMP_PREFIX, ".part")?;
    let file = tmp.as_file().try_clone()?;
    Ok(FolderUpload {
        tmp,
        sink: Some(Sink::start(file, direct_io)),
        failed: None,
        dest,
    })
}

impl FolderUpload {
    fn error(&self, e: std::io::Error) -> StoreError {
        StoreError::io("cannot write", self.dest.display().to_string(), e)
    }
}

#[async_trait]
impl Upload for FolderUpload {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        if let Some(sink) = self.sink.as_mut() {
            if sink.push(&chunk).await.is_ok() {
                return Ok(());
            }
            // A sink thread failed: its error says why.
            if let Some(sink) = self.sink.take() {
                self.failed = Some(match sink.finish().await {
                    Err(e) => e,
                    Ok(_) => std::io::Error::other("the disk writer stopped"),
                });
            }
        }
        let e = self.failed.as_ref().map_or_else(
            || std::io::Error::other("the disk writer stopped"),
            |e| std::io::Error::new(e.kind(), e.to_string()),
        );
        Err(self.error(e))
    }

    async fn finish(
        mut self: Box<Self>,
        expected: &Expected,
    ) -> Result<Box<dyn Staged>, StoreError> {
        let Some(sink) = self.sink.take() else {
            let e = self
                .failed
                .take()
                .unwrap_or_else(|| std::io::Error::other("stopped"));
            return Err(self.error(e));
        };
        let (bytes, sha256) = sink.finish().await.map_err(|e| self.error(e))?;
        if let Some(want) = expected.bytes.filter(|&w| w != bytes) {
            return Err(StoreError::SizeMismatch {
                got: bytes,
                expected: want,
            });
        }
        if let Some(want) = expected
            .sha256
            .as_ref()
            .filter(|w| !w.eq_ignore_ascii_case(&sha256))
        {
            return Err(StoreError::HashMismatch {
                got: sha256,
                expected: want.clone(),
            });
        }
        let FolderUpload { tmp, dest, .. } = *self;
        Ok(Box::new(FolderStaged {
            tmp,
            dest,
            bytes,
            sha256,
        }))
    }

    async fn abort(self: Box<Self>) {
        let FolderUpload { tmp, sink, .. } = *self;
        if let Some(sink) = sink {
            let _ = sink.finish().await; // let the threads let go of the file
        }
        let _ = tokio::task::spawn_blocking(move || tmp.close()).await;
    }
}

/// A complete temp file, waiting for its rename.
struct FolderStaged {
    tmp: NamedTempFile,
    dest: PathBuf,
    bytes: u64,
    sha256: String,
}

#[async_trait]
impl Staged for FolderStaged {
    fn bytes(&self) -> u64 {
        self.bytes
    }

    fn sha256(&self) -> &str {
        &self.sha256
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        let FolderStaged { tmp, dest, .. } = *self;
        let target = dest.display().to_string();
        tokio::task::spawn_blocking(move || tmp.persist(&dest).map(|_| ()).map_err(|e| e.error))
            .await
            .map_err(|e| StoreError::Other(format!("store task failed: {e}")))?
            .map_err(|e| StoreError::io("cannot store", target, e))
    }

    async fn abort(self: Box<Self>) {
        let tmp = self.tmp;
        let _ = tokio::task::spawn_blocking(move || tmp.close()).await;
    }
}
