//! Streamed uploads and downloads: file bytes never sit whole in memory, and size and sha256
//! are computed on the way through.

use std::path::Path;
use std::time::Duration;

use reqwest::header::{CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE};
use tokio::io::AsyncSeekExt;
use uuid::Uuid;

use super::client::{Client, Limit};
use super::error::ApiError;
use super::multipart::{file_body, lock};
use super::response::{disposition_file_name, transport_error};
use super::sink::Sink;
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

/// A finished download.
#[derive(Debug, Clone)]
pub struct Downloaded {
    /// Bytes written.
    pub bytes: u64,
    /// sha256 of the bytes written, lowercase hex.
    pub sha256: String,
    /// `Content-Type` of the answer.
    pub content_type: Option<String>,
    /// Percent-decoded name from `Content-Disposition` (untrusted: may hold `/` or `..`).
    pub file_name: Option<String>,
}

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
        let timeout =
            self.inner.create_timeout + Duration::from_secs(body.content_length / SLOWEST_UPLOAD);
        let req = self
            .inner
            .http
            .post(self.url(&format!("/api/v1/tickets/{ticket}/documents")))
            .header(CONTENT_TYPE, body.content_type)
            .header(CONTENT_LENGTH, body.content_length)
            .body(reqwest::Body::wrap_stream(body.stream));
        let answer = self.send(req, Limit::Total(timeout)).await;
        let answer = match answer {
            Ok(resp) => resp
                .bytes()
                .await
                .map_err(|e| self.redact_err(transport_error(&e))),
            Err(e) => Err(e),
        };
        let progress = lock(&body.progress);
        self.count_bytes(progress.bytes(), 0);
        if let Some(local) = progress.local_error() {
            return Err(ApiError::Local(format!("{}: {local}", path.display())));
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

    /// `GET /api/v1/tickets/{id}/documents/{document}`: streams the bytes into `dest`.
    ///
    /// `dest` is emptied first, so a retry with the same file starts clean.
    /// `request_timeout` limits the wait for the answer and each pause between chunks, not the
    /// whole transfer.
    pub async fn download_document(
        &self,
        ticket: Uuid,
        document: Uuid,
        dest: &mut tokio::fs::File,
    ) -> Result<Downloaded, ApiError> {
        dest.set_len(0).await.map_err(write_error)?;
        dest.rewind().await.map_err(write_error)?;
        let url = self.url(&format!("/api/v1/tickets/{ticket}/documents/{document}"));
        let idle = self.inner.request_timeout;
        let mut resp = self
            .send(self.inner.http.get(url), Limit::Head(idle))
            .await?;
        let header = |name| {
            resp.headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header(CONTENT_TYPE);
        let file_name = header(CONTENT_DISPOSITION).and_then(|v| disposition_file_name(&v));
        let file = dest
            .try_clone()
            .await
            .map_err(write_error)?
            .into_std()
            .await;
        let mut sink = Sink::start(file, self.inner.direct_io);
        let received = self.forward_body(&mut resp, idle, &mut sink).await;
        // Always wait for both threads: they share the file position with a retry's attempt.
        // A disk error is reported before a network one: it is the cause to fix.
        let (bytes, sha256) = sink.finish().await.map_err(write_error)?;
        received?;
        Ok(Downloaded {
            bytes,
            sha256,
            content_type,
            file_name,
        })
    }
}

impl Client {
    /// Passes every chunk of the body to `sink`; a stall longer than `idle` is a timeout.
    async fn forward_body(
        &self,
        resp: &mut reqwest::Response,
        idle: std::time::Duration,
        sink: &mut Sink,
    ) -> Result<(), ApiError> {
        loop {
            let chunk = match tokio::time::timeout(idle, resp.chunk()).await {
                Err(_) => return Err(ApiError::Timeout(format!("download stalled for {idle:?}"))),
                Ok(Err(e)) => return Err(self.redact_err(transport_error(&e))),
                Ok(Ok(None)) => return Ok(()),
                Ok(Ok(Some(chunk))) => chunk,
            };
            self.count_bytes(0, chunk.len() as u64);
            if sink.push(&chunk).await.is_err() {
                return Ok(()); // a sink thread failed: the caller reports its error
            }
        }
    }
}

fn write_error(e: std::io::Error) -> ApiError {
    ApiError::Local(format!("cannot write downloaded file: {e}"))
}
