//! Downloading one document into the store: the body streams into a new object (size and
//! sha256 computed on the way), is checked against the listing's size and staged, never under
//! its final key. The caller records it in the manifest and only then commits it (the order
//! that leaves no orphan: see `store/mod.rs`). A failed or cancelled attempt leaves nothing.

use crate::api::{ApiError, Client, Document};
use crate::exec::retry::{with_retries, RetryPolicy};
use crate::store::{self, BackupStore, Expected, PutError, Staged, StoreError};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A complete download, staged in the store.
pub(super) struct Fetched {
    /// The object, to commit once recorded.
    pub(super) staged: Box<dyn Staged>,
    /// `Content-Type` of the answer.
    pub(super) content_type: Option<String>,
}

/// A failed download: the error and how many attempts were made.
#[derive(Debug)]
pub(super) struct FetchError {
    /// What went wrong last.
    pub(super) error: ApiError,
    /// HTTP attempts.
    pub(super) attempts: u32,
}

/// Download `doc` of `ticket` into a staged object for `key`, retrying what is safe to retry.
pub(super) async fn fetch(
    client: &Client,
    policy: &RetryPolicy,
    hard: &CancellationToken,
    store: &dyn BackupStore,
    ticket: Uuid,
    doc: &Document,
    key: &str,
) -> Result<Fetched, FetchError> {
    let expected = Expected {
        bytes: doc.file_size,
        sha256: None,
    };
    let id = doc.document_id;
    let attempted = tokio::select! {
        a = with_retries(client, policy, true, hard, || attempt(client, store, ticket, id, key, &expected)) => a,
        () = hard.cancelled() => return Err(FetchError { error: ApiError::Cancelled, attempts: 1 }),
    };
    let attempts = attempted.attempts;
    attempted
        .result
        .map_err(|error| FetchError { error, attempts })
}

/// One attempt: a new object, then the request (so an unwritable store costs no request).
async fn attempt(
    client: &Client,
    store: &dyn BackupStore,
    ticket: Uuid,
    id: Uuid,
    key: &str,
    expected: &Expected,
) -> Result<Fetched, ApiError> {
    let upload = store.create(key).await.map_err(local)?;
    let download = match client.download_document(ticket, id).await {
        Ok(d) => d,
        Err(e) => {
            upload.abort().await;
            return Err(e);
        }
    };
    match store::fill(upload, download.body, expected).await {
        Ok(staged) => Ok(Fetched {
            staged,
            content_type: download.content_type,
        }),
        Err(PutError::Source(e)) => Err(e),
        Err(PutError::Store(e)) => Err(local(e)),
    }
}

/// A store failure as the download's error (not retried: a disk error is the cause to fix).
fn local(e: StoreError) -> ApiError {
    match e {
        StoreError::SizeMismatch { got, expected } => ApiError::Decode(format!(
            "size mismatch: received {got} bytes, the listing says {expected}"
        )),
        e => ApiError::Local(e.to_string()),
    }
}
