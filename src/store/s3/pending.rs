//! Multipart uploads in progress, each recorded as a small object under
//! `.alga-batch-uploads/` (its key and upload id) from just after it starts until it is
//! completed or aborted. S3 keeps the parts of an upload nobody completes or aborts (a run
//! killed with `kill -9`), invisible but billed; the next run, once it holds the lock (so no
//! other run is uploading), aborts every upload still recorded. A kill between starting an
//! upload and recording it leaves an upload with no part yet, which a bucket lifecycle rule
//! (README) expires.

use super::{io_error, Backend, Shared};
use crate::store::layout::UPLOADS_DIR;
use crate::store::StoreError;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{MultipartId, ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

/// One upload in progress.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Marker {
    /// The object's full key in the bucket.
    key: String,
    /// The upload.
    upload_id: String,
    /// When it started (for people looking at the bucket).
    started_at: String,
}

/// Record the upload `id` of `path`; returns the record's key.
pub(super) async fn record(
    shared: &Shared,
    path: &Path,
    id: &MultipartId,
) -> Result<Path, StoreError> {
    let marker = Marker {
        key: path.to_string(),
        upload_id: id.clone(),
        started_at: crate::store::manifest::now(),
    };
    let name = format!("{UPLOADS_DIR}/{}.json", uuid::Uuid::new_v4());
    let at = shared.path(&name)?;
    let body = serde_json::to_vec(&marker).unwrap_or_default();
    match shared.backend.put(&at, PutPayload::from(body)).await {
        Ok(_) => Ok(at),
        Err(e) => Err(shared.error("cannot record the upload of", path.as_ref(), e)),
    }
}

/// The upload is completed or aborted: drop its record (best effort: a record left behind
/// only makes the next run try to abort an upload that is gone).
pub(super) async fn clear(shared: &Shared, marker: &Path) {
    let _ = shared.backend.delete(marker).await;
}

/// Abort every recorded upload (a killed run's); returns how many records were cleared.
/// Problems are warnings: the backup itself does not depend on this.
pub(super) async fn sweep(shared: &Shared) -> usize {
    let dir = match shared.dir(UPLOADS_DIR) {
        Ok(Some(d)) => d,
        _ => return 0,
    };
    let found: Result<Vec<_>, _> = shared.backend.list(Some(&dir)).try_collect().await;
    let records = match found {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "warning: cannot list the uploads a killed run left in {}: {}",
                shared.label,
                io_error(e)
            );
            return 0;
        }
    };
    let mut cleared = 0;
    for r in records {
        if abort_recorded(shared.backend.as_ref(), &r.location).await {
            let _ = shared.backend.delete(&r.location).await;
            cleared += 1;
        }
    }
    cleared
}

/// Abort the upload recorded at `record`; false when the record could not be read (kept for
/// the next run).
async fn abort_recorded(backend: &dyn Backend, record: &Path) -> bool {
    let data = match backend.get(record).await {
        Ok(g) => g.bytes().await,
        Err(e) => Err(e),
    };
    let marker = match data {
        Ok(d) => serde_json::from_slice::<Marker>(&d).ok(),
        Err(object_store::Error::NotFound { .. }) => return true,
        Err(_) => return false,
    };
    if let Some(m) = marker {
        if let Ok(path) = Path::parse(&m.key) {
            // An upload already completed or aborted answers "no such upload": nothing to do.
            let _ = backend.abort_multipart(&path, &m.upload_id).await;
        }
    }
    true
}
