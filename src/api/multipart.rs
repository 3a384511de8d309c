//! A hand-built, streamed `multipart/form-data` body with one `file` part.
//!
//! reqwest's own form escapes `"` in names with a backslash and keeps raw CR/LF, which the
//! server's parser (undici) does not read back; here the name is a plain UTF-8
//! `filename="..."` with `"`, CR and LF written as `%22`, `%0D`, `%0A` (what browsers send),
//! never `filename*=` (the server answers 500 to that). The file is read from disk in chunks
//! (or taken from any byte stream: a backup object), and its size and sha256 are computed as
//! the chunks go out.

use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{stream, Stream, StreamExt};
use rand::Rng;
use sha2::{Digest, Sha256};
use tokio_util::io::ReaderStream;

/// Read size for upload chunks.
const CHUNK: usize = 64 * 1024;

/// What the stream saw of the file: filled in as chunks are read.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    hasher: Sha256,
    bytes: u64,
    /// `Some(hex)` once the whole file was read.
    sha256: Option<String>,
    /// A local read problem (the request then fails; the server saw a truncated body).
    local_error: Option<String>,
}

impl Progress {
    /// Bytes read so far.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The digest, once the whole file was sent.
    pub(crate) fn sha256(&self) -> Option<&str> {
        self.sha256.as_deref()
    }

    /// A local read error seen while streaming.
    pub(crate) fn local_error(&self) -> Option<&str> {
        self.local_error.as_deref()
    }
}

/// The byte stream of a body.
pub(crate) type BodyStream =
    std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static>>;

/// The bytes of a file to upload, from any source. An error item ends the upload before its
/// closing boundary is sent (the server stores nothing); its text is the row's error.
pub type UploadBytes = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// A ready-to-send body.
pub(crate) struct MultipartBody {
    /// `multipart/form-data; boundary=...`.
    pub(crate) content_type: String,
    /// Exact length of the whole body.
    pub(crate) content_length: u64,
    /// The body stream (wrap it with `reqwest::Body::wrap_stream`).
    pub(crate) stream: BodyStream,
    /// Size and digest, shared with the stream.
    pub(crate) progress: Arc<Mutex<Progress>>,
}

/// The part header of the `file` part (boundary line included).
pub(crate) fn part_head(boundary: &str, name: &str, mime: &str) -> String {
    format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\n\
         Content-Type: {}\r\n\r\n",
        escape_file_name(name),
        clean_mime(mime)
    )
}

/// The closing boundary after the file bytes.
pub(crate) fn part_tail(boundary: &str) -> String {
    format!("\r\n--{boundary}--\r\n")
}

/// Escapes a file name for a quoted `filename="..."`, keeping UTF-8 as it is.
pub(crate) fn escape_file_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '"' => out.push_str("%22"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            _ => out.push(c),
        }
    }
    out
}

/// A MIME type safe to put in a header line (falls back to `application/octet-stream`).
fn clean_mime(mime: &str) -> &str {
    let ok = !mime.is_empty() && mime.bytes().all(|b| (0x21..0x7f).contains(&b) || b == b' ');
    if ok {
        mime
    } else {
        "application/octet-stream"
    }
}

/// A random boundary that cannot occur in the part header.
fn boundary() -> String {
    let n: u128 = rand::thread_rng().gen();
    format!("alga-batch-{n:032x}")
}

/// Opens `path` and builds the streamed body for it.
pub(crate) async fn file_body(
    path: &Path,
    name: &str,
    mime: &str,
) -> Result<MultipartBody, std::io::Error> {
    let file = tokio::fs::File::open(path).await?;
    let meta = file.metadata().await?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let chunks = ReaderStream::with_capacity(file, CHUNK)
        .map(|r| r.map_err(|e| std::io::Error::new(e.kind(), format!("cannot read file: {e}"))));
    Ok(stream_body(chunks.boxed(), meta.len(), name, mime))
}

/// The streamed body for `expected` bytes coming from `chunks`.
pub(crate) fn stream_body(
    chunks: UploadBytes,
    expected: u64,
    name: &str,
    mime: &str,
) -> MultipartBody {
    let boundary = boundary();
    let head = Bytes::from(part_head(&boundary, name, mime));
    let tail = Bytes::from(part_tail(&boundary));
    let content_length = head.len() as u64 + expected + tail.len() as u64;
    let progress = Arc::new(Mutex::new(Progress::default()));
    let stream = body_stream(chunks, expected, head, tail, Arc::clone(&progress));
    MultipartBody {
        content_type: format!("multipart/form-data; boundary={boundary}"),
        content_length,
        stream: Box::pin(stream),
        progress,
    }
}

/// head, then the file's chunks (hashed and counted), then tail once the file ended at the
/// expected length.
fn body_stream(
    chunks: UploadBytes,
    expected: u64,
    head: Bytes,
    tail: Bytes,
    progress: Arc<Mutex<Progress>>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let p_chunks = Arc::clone(&progress);
    let chunks = chunks.map(move |chunk| {
        let mut p = lock(&p_chunks);
        match &chunk {
            Ok(b) => {
                p.hasher.update(b);
                p.bytes += b.len() as u64;
                if p.bytes > expected {
                    p.local_error = Some("file grew while it was being uploaded".into());
                    return Err(std::io::Error::other("file grew during upload"));
                }
            }
            Err(e) => p.local_error = Some(e.to_string()),
        }
        chunk
    });
    let finish = stream::once(async move {
        let mut p = lock(&progress);
        if p.local_error.is_some() {
            // A failed chunk ends the body; a consumer that polls on gets no tail.
            return Err(std::io::Error::other("the upload's source failed"));
        }
        if p.bytes != expected {
            p.local_error = Some(format!(
                "file changed while it was being uploaded ({} of {expected} bytes)",
                p.bytes
            ));
            return Err(std::io::Error::other("file shrank during upload"));
        }
        let digest = std::mem::take(&mut p.hasher).finalize();
        p.sha256 = Some(hex::encode(digest));
        Ok(tail)
    });
    stream::once(async move { Ok(head) })
        .chain(chunks)
        .chain(finish)
}

/// Locks the shared progress, recovering from poisoning.
pub(crate) fn lock(m: &Mutex<Progress>) -> std::sync::MutexGuard<'_, Progress> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_stay_plain_utf8_with_quotes_and_newlines_escaped() {
        assert_eq!(
            escape_file_name("résumé – ünïcode.txt"),
            "résumé – ünïcode.txt"
        );
        assert_eq!(escape_file_name("a\"b\r\nc.txt"), "a%22b%0D%0Ac.txt");
        assert_eq!(escape_file_name(r"back\slash.txt"), r"back\slash.txt");
        let head = part_head("B", "ü.txt", "text/plain");
        assert_eq!(
            head,
            "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"ü.txt\"\r\n\
             Content-Type: text/plain\r\n\r\n"
        );
        assert!(!head.contains("filename*"));
    }

    #[test]
    fn unsafe_mime_types_fall_back_to_octet_stream() {
        assert_eq!(clean_mime("text/plain\r\nX: y"), "application/octet-stream");
        assert_eq!(clean_mime(""), "application/octet-stream");
        assert_eq!(clean_mime("image/png"), "image/png");
    }

    #[tokio::test]
    async fn the_stream_is_head_file_tail_with_length_and_digest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let body = file_body(&path, "f.bin", "application/octet-stream")
            .await
            .unwrap();
        let boundary = body
            .content_type
            .split("boundary=")
            .nth(1)
            .unwrap()
            .to_string();
        let mut all = Vec::new();
        let mut s = body.stream;
        while let Some(chunk) = s.next().await {
            all.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(all.len() as u64, body.content_length);
        let head = part_head(&boundary, "f.bin", "application/octet-stream");
        assert!(all.starts_with(head.as_bytes()));
        assert!(all.ends_with(part_tail(&boundary).as_bytes()));
        assert_eq!(&all[head.len()..head.len() + data.len()], &data[..]);
        let p = lock(&body.progress);
        assert_eq!(p.bytes(), data.len() as u64);
        assert_eq!(
            p.sha256(),
            Some(hex::encode(Sha256::digest(&data)).as_str())
        );
    }

    #[tokio::test]
    async fn a_failing_source_ends_the_body_without_its_closing_boundary() {
        let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from_static(b"abc")),
            Err(std::io::Error::other("backup file damaged: x")),
        ];
        let body = stream_body(stream::iter(chunks).boxed(), 3, "a.txt", "text/plain");
        let tail_of = |ct: &str| part_tail(ct.split("boundary=").nth(1).unwrap());
        let tail = tail_of(&body.content_type);
        // Polled to the end, as a consumer that does not stop at the first error would.
        let mut s = body.stream;
        let mut sent = Vec::new();
        while let Some(chunk) = s.next().await {
            if let Ok(b) = chunk {
                sent.extend_from_slice(&b);
            }
        }
        assert!(
            sent.ends_with(b"abc"),
            "the bytes before the failure went out"
        );
        assert!(!sent.ends_with(tail.as_bytes()), "no closing boundary");
        let p = lock(&body.progress);
        assert_eq!(p.local_error(), Some("backup file damaged: x"));
        assert_eq!(p.sha256(), None);
    }
}
