//! Streamed transfers against the scripted server: multipart uploads (wire format, an early
//! refusal, a missing file, memory use of a 1 GiB upload) and chunked downloads (file name,
//! a body that stalls).

use std::time::Duration;

use futures::StreamExt;

use super::server::{chunked, discarding, early, json, Reply, Server};
use super::{client, ticket, KEY, TICKET};
use alga_batch::api::{ApiError, ApiKey, Client, ClientConfig, RetryClass};
use sha2::{Digest, Sha256};
use uuid::Uuid;

fn document_json(name: &str, size: u64) -> String {
    serde_json::json!({"data": {
        "document_id": "5aa73d90-db8b-4cba-a367-db1ff89c43fd",
        "document_name": name, "mime_type": "text/plain", "file_size": size.to_string()
    }})
    .to_string()
}

#[tokio::test]
async fn upload_streams_the_file_with_a_plain_utf8_file_name() {
    let name = "résumé – ünïcode.txt";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let server = Server::start(vec![json(201, &document_json(name, 300_000), &[])]).await;
    let c = client(&server, 0);

    let up = c
        .upload_document(ticket(), &path, name, "text/plain")
        .await
        .unwrap();
    assert_eq!(up.bytes, data.len() as u64);
    assert_eq!(up.sha256, hex::encode(Sha256::digest(&data)));
    assert_eq!(up.document.document_name, name);
    assert_eq!(up.document.file_size, Some(300_000));

    let req = &server.requests()[0];
    assert!(req
        .head
        .starts_with(&format!("POST /api/v1/tickets/{TICKET}/documents HTTP/1.1")));
    assert_eq!(req.header("x-api-key").as_deref(), Some(KEY));
    assert_eq!(
        req.header("content-length"),
        Some(req.body.len().to_string())
    );
    let ct = req.header("content-type").unwrap();
    let boundary = ct.strip_prefix("multipart/form-data; boundary=").unwrap();
    let part_head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
         filename=\"résumé – ünïcode.txt\"\r\nContent-Type: text/plain\r\n\r\n"
    );
    assert!(
        req.body.starts_with(part_head.as_bytes()),
        "plain UTF-8 filename expected"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    assert!(req.body.ends_with(tail.as_bytes()));
    assert_eq!(
        &req.body[part_head.len()..req.body.len() - tail.len()],
        &data[..]
    );
    assert!(!String::from_utf8_lossy(&req.body[..part_head.len()]).contains("filename*"));
}

#[tokio::test]
async fn an_upload_refused_before_its_body_is_read_is_a_status_not_a_lost_answer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bin");
    std::fs::write(&path, vec![7u8; 8 * 1024 * 1024]).unwrap();
    let body = r#"{"error":{"code":"RATE_LIMITED","message":"Too many requests","details":{"retry_after_ms":10}}}"#;
    let server = Server::start(vec![early(json(429, body, &[("connection", "close")]))]).await;
    let c = client(&server, 0);
    let e = c
        .upload_document(ticket(), &path, "big.bin", "application/octet-stream")
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(429), "{e:?}");
    assert_eq!(e.class(false), RetryClass::Retry);
}

/// Peak resident memory of this process (Linux `VmHWM`), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Run alone: `cargo test --release --test it -- --ignored one_gib` (about 10 s).
#[tokio::test]
#[ignore = "writes and uploads a 1 GiB file"]
async fn a_one_gib_upload_stays_below_64_mib_resident() {
    const GIB: u64 = 1024 * 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bin");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(GIB).unwrap(); // sparse: reads as zeros without using the disk
    drop(f);
    let server = Server::start(vec![discarding(json(
        201,
        &document_json("big.bin", GIB),
        &[],
    ))])
    .await;
    let c = client(&server, 0);
    let up = c
        .upload_document(ticket(), &path, "big.bin", "application/octet-stream")
        .await
        .unwrap();
    assert_eq!(up.bytes, GIB);
    let sent: u64 = String::from_utf8(server.requests()[0].body.clone())
        .unwrap()
        .parse()
        .unwrap();
    assert!(sent > GIB);
    let peak = peak_rss();
    eprintln!(
        "peak resident memory after a 1 GiB upload: {} MiB",
        peak / 1024 / 1024
    );
    assert!(peak < 64 * 1024 * 1024, "{peak} bytes");
}

#[tokio::test]
async fn a_missing_upload_file_is_a_local_error_and_sends_nothing() {
    let server = Server::start(vec![]).await;
    let c = client(&server, 0);
    let e = c
        .upload_document(
            ticket(),
            std::path::Path::new("/nonexistent/x.txt"),
            "x.txt",
            "text/plain",
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::Local(_)), "{e:?}");
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn download_streams_chunks_and_decodes_the_file_name() {
    let server = Server::start(vec![chunked(
        200,
        &[
            ("content-type", "text/plain"),
            (
                "content-disposition",
                r#"attachment; filename="r%C3%A9sum%C3%A9%20%E2%80%93%20%C3%BCn%C3%AFcode.txt""#,
            ),
        ],
        &[b"unicode ", b"name test\n"],
    )])
    .await;
    let c = client(&server, 0);
    let doc: Uuid = "7a180fd3-81ae-4c27-89ce-35cafdcf05d4".parse().unwrap();
    let d = c.download_document(ticket(), doc).await.unwrap();
    assert_eq!(d.file_name.as_deref(), Some("résumé – ünïcode.txt"));
    assert_eq!(d.content_type.as_deref(), Some("text/plain"));
    let chunks: Vec<bytes::Bytes> = d.body.map(|c| c.unwrap()).collect().await;
    assert!(!chunks.is_empty());
    assert_eq!(chunks.concat(), b"unicode name test\n");
}

#[tokio::test]
async fn a_download_body_that_stalls_ends_with_a_timeout_after_what_arrived() {
    let head =
        "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: 100\r\n\r\n";
    let server = Server::start(vec![Reply::Raw(format!("{head}hello").into_bytes())]).await;
    let mut cfg = ClientConfig::new(server.base_url.clone(), ApiKey::new(KEY.into()));
    cfg.rate_per_minute = 0;
    cfg.request_timeout = Duration::from_millis(300);
    let c = Client::new(cfg).unwrap();
    let doc: Uuid = "7a180fd3-81ae-4c27-89ce-35cafdcf05d4".parse().unwrap();
    let d = c.download_document(ticket(), doc).await.unwrap();
    assert_eq!(d.content_length, Some(100));
    let items: Vec<Result<bytes::Bytes, ApiError>> = d.body.collect().await;
    let (last, first) = items.split_last().unwrap();
    let received: Vec<u8> = first
        .iter()
        .flat_map(|c| c.as_ref().unwrap().to_vec())
        .collect();
    assert_eq!(received, b"hello");
    let err = last.as_ref().unwrap_err();
    assert!(matches!(err, ApiError::Timeout(_)), "{err}");
    assert_eq!(err.class(true), RetryClass::Retry);
}
