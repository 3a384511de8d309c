//! Streamed uploads and downloads: file bytes never sit whole in memory. An upload reads a file
//! or any [`UploadSource`] (a backup object); its size and sha256 are computed on the way
//! through. A download is handed over as a stream of chunks (where they go, and their hash, is
//! the caller's business: `store/`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE};
use uuid::Uuid;

use super::client::{Client, Limit};
use super::error::ApiError;
use super::limiter::RequestClass;
use super::multipart::{file_body, lock, stream_body, MultipartBody, UploadBytes};
use super::response::{disposition_file_name, transport_error};
use super::types::{DataEnvelope, Document};

/// Upload speed assumed when sizing an upload's timeout (bytes per second).
const SLOWEST_UPLOAD: u64 = 1024 * 1024;

/// A finished upload.
#[derive(Debug, Clone)]
pub struct Uploaded {
    /// The document the server created.
    pub document: Document,
    /// Bytes of the file sent.
    pub bytes: u64,
    /// sha256 of the file sent, lowercase hex.
    pub sha256: String,
}

/// A download under way: the answer's headers, and its body as a stream of chunks.
pub struct Download {
    /// `Content-Type` of the answer.
    pub content_type: Option<String>,
    /// Percent-decoded name from `Content-Disposition` (untrusted: may hold `/` or `..`).
    pub file_name: Option<String>,
    /// `Content-Length`, when the server sent one.
    pub content_length: Option<u64>,
    /// The body. Each chunk must arrive within the client's request timeout of the one before
    /// ([`ApiError::Timeout`] otherwise); errors never hold the key. The stream ends after an
    /// error.
    pub body: BoxStream<'static, Result<Bytes, ApiError>>,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("content_type", &self.content_type)
            .field("file_name", &self.file_name)
            .field("content_length", &self.content_length)
            .finish_non_exhaustive()
    }
}

/// Where an upload's bytes come from when they are not a file on disk (a backup object in a
/// store): opened afresh for every attempt.
#[async_trait::async_trait]
pub trait UploadSource: Send + Sync {
    /// All the bytes, from the start. An error item ends the upload before it is complete, so
    /// the server stores nothing; the error's text becomes the operation's error.
    async fn open(&self) -> Result<UploadBytes, String>;
}

/// A shared [`UploadSource`], as an operation carries it (equal only to itself).
#[derive(Clone)]
pub struct StreamSource(pub Arc<dyn UploadSource>);

impl std::fmt::Debug for StreamSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamSource")
    }
}

impl PartialEq for StreamSource {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for StreamSource {}

impl Client {
    /// `POST /api/v1/tickets/{id}/documents`: streams `path` as the multipart part `file`,
    /// named `name` (plain UTF-8 `filename="..."`) with part type `mime`.
    pub async fn upload_document(
        &self,
        ticket: Uuid,
        path: &Path,
        name: &str,
        mime: &str,
    ) -> Result<Uploaded, ApiError> {
        let body = file_body(path, name, mime)
            .await
            .map_err(|e| ApiError::Local(format!("cannot read {}: {e}", path.display())))?;
        let what = path.display().to_string();
        self.send_upload(ticket, body, |local| format!("{what}: {local}"))
            .await
    }

    /// Like [`Client::upload_document`], with `size` bytes read from `source` (opened for this
    /// attempt); a source that fails (or yields other than `size` bytes) leaves the upload
    /// incomplete, and the error is [`ApiError::Local`] with the source's text.
    pub async fn upload_from(
        &self,
        ticket: Uuid,
        source: &dyn UploadSource,
        size: u64,
        name: &str,
        mime: &str,
    ) -> Result<Uploaded, ApiError> {
        let chunks = source.open().await.map_err(ApiError::Local)?;
        let body = stream_body(chunks, size, name, mime);
        self.send_upload(ticket, body, |local| local.to_string())
            .await
    }

    /// Send a ready multipart body; `local` words a local failure of its source.
    async fn send_upload(
        &self,
        ticket: Uuid,
        body: MultipartBody,
        local: impl FnOnce(&str) -> String,
    ) -> Result<Uploaded, ApiError> {
        let timeout =
            self.inner.create_timeout + Duration::from_secs(body.content_length / SLOWEST_UPLOAD);
        let req = self
            .inner
            .http
            .post(self.url(&format!("/api/v1/tickets/{ticket}/documents")))
            .header(CONTENT_TYPE, body.content_type)
            .header(CONTENT_LENGTH, body.content_length)
            .body(reqwest::Body::wrap_stream(body.stream));
        let answer = self
            .send(req, Limit::Total(timeout), RequestClass::Upload)
            .await;
        let answer = match answer {
            Ok(resp) => resp
                .bytes()
                .await
                .map_err(|e| self.redact_err(transport_error(&e))),
            Err(e) => Err(e),
        };
        let progress = lock(&body.progress);
        self.count_bytes(progress.bytes(), 0);
        if let Some(failed) = progress.local_error() {
            return Err(ApiError::Local(local(failed)));
        }
        let envelope: DataEnvelope<Document> = serde_json::from_slice(&answer?)
            .map_err(|e| ApiError::Decode(format!("cannot read uploaded document: {e}")))?;
        let sha256 = progress.sha256().map(str::to_string).ok_or_else(|| {
            ApiError::Decode("the server answered before the whole file was sent".into())
        })?;
        Ok(Uploaded {
            document: envelope.data,
            bytes: progress.bytes(),
            sha256,
        })
    }

    /// `GET /api/v1/tickets/{id}/documents/{document}`: the answer's headers once they are
    /// in, and the body as a stream.
    ///
    /// `request_timeout` limits the wait for the answer and each pause between chunks, not the
    /// whole transfer.
    pub async fn download_document(
        &self,
        ticket: Uuid,
        document: Uuid,
    ) -> Result<Download, ApiError> {
        let url = self.url(&format!("/api/v1/tickets/{ticket}/documents/{document}"));
        let idle = self.inner.request_timeout;
        let resp = self
            .send(
                self.inner.http.get(url),
                Limit::Head(idle),
                RequestClass::Read,
            )
            .await?;
        let header = |name| {
            resp.headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header(CONTENT_TYPE);
        let file_name = header(CONTENT_DISPOSITION).and_then(|v| disposition_file_name(&v));
        let content_length = resp.content_length();
        let body = futures::stream::unfold(Some((resp, self.clone())), move |state| async move {
            let (mut resp, client) = state?;
            match tokio::time::timeout(idle, resp.chunk()).await {
                Err(_) => Some((
                    Err(ApiError::Timeout(format!("download stalled for {idle:?}"))),
                    None,
                )),
                Ok(Err(e)) => Some((Err(client.redact_err(transport_error(&e))), None)),
                Ok(Ok(None)) => None,
                Ok(Ok(Some(chunk))) => {
                    client.count_bytes(0, chunk.len() as u64);
                    Some((Ok(chunk), Some((resp, client))))
                }
            }
        });
        Ok(Download {
            content_type,
            file_name,
            content_length,
            body: body.boxed(),
        })
    }
}
