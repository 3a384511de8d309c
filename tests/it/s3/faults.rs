//! Downloads that break off, stall or are killed while streaming into a multipart upload:
//! no object under the key, the upload aborted (now, from `Drop` after Ctrl-C, or by the next
//! run after a `kill -9`), and the next complete run leaves exactly the documents.

use super::{content, is_document, sha, S3Env, PREFIX};
use crate::env::{code, text};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

const T1: &str = "11111111-1111-4111-8111-111111111111";
const GOOD: &str = "22222222-2222-4222-8222-222222222222";
const BIG: &str = "33333333-3333-4333-8333-333333333333";
/// The big document: more than two parts.
const BIG_BYTES: usize = 20 << 20;
/// Where it breaks off: after the first part is full.
const CUT_AT: usize = 12 << 20;

/// How the server sends the big document.
const BREAK: u8 = 0;
const STALL: u8 = 1;
const WHOLE: u8 = 2;

/// A one-ticket Alga server (good.txt, big.bin) whose big document breaks off, stalls or
/// arrives whole, as `mode` says at the time of the request.
async fn alga_server(mode: Arc<AtomicU8>) -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mode = mode.clone();
            tokio::spawn(async move {
                let Some(line) = crate::env::request_line(&mut sock).await else {
                    return;
                };
                let path = line.split(' ').nth(1).unwrap_or("").to_string();
                let m = mode.load(Ordering::SeqCst);
                let _ = sock.write_all(&answer(&path, m)).await;
                if path.ends_with(BIG) && m == STALL {
                    std::future::pending::<()>().await;
                }
                let _ = sock.shutdown().await;
            });
        }
    });
    (base, task)
}

fn answer(path: &str, mode: u8) -> Vec<u8> {
    let json = |body: String| {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    if path.starts_with("/api/v1/tickets?") {
        return json(format!(
            r#"{{"data":[{{"ticket_id":"{T1}","ticket_number":"TIC1"}}],"pagination":{{"page":1,"limit":100,"total":1,"totalPages":1,"hasNext":false,"hasPrev":false}}}}"#
        ));
    }
    if path.ends_with("/documents") {
        return json(format!(
            r#"{{"data":[{{"document_id":"{GOOD}","document_name":"good.txt","file_size":"5"}},{{"document_id":"{BIG}","document_name":"big.bin","file_size":"{BIG_BYTES}"}}]}}"#
        ));
    }
    if path.ends_with(GOOD) {
        return b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello".to_vec();
    }
    let mut r = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {BIG_BYTES}\r\nconnection: close\r\n\r\n"
    )
    .into_bytes();
    let body = content(BIG_BYTES);
    let end = if mode == WHOLE { BIG_BYTES } else { CUT_AT };
    r.extend_from_slice(&body[..end]);
    r
}

/// The backup against `base`, with the S3 environment of `e`.
fn backup(e: &S3Env, base: &str, extra: &[&str]) -> tokio::process::Command {
    let out = super::out();
    let mut args = vec!["backup", "--out", &out, "--rate-per-minute", "0"];
    args.extend_from_slice(extra);
    let mut cmd = e.command(&args);
    cmd.env("ALGA_BASE_URL", base);
    cmd
}

fn count(e: &S3Env, op: &str) -> usize {
    e.s3.log().iter().filter(|o| o.op == op).count()
}

/// Wait (event-driven, on the S3 server's log) until a part of big.bin has been uploaded.
async fn wait_for_a_part(e: &S3Env) {
    for _ in 0..2000 {
        if count(e, "UploadPart") > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no part was ever uploaded");
}

#[tokio::test]
async fn a_download_failing_midway_leaves_no_object_and_aborts_its_upload() {
    let e = S3Env::with(super::quick(1)).await;
    let (base, server) = alga_server(Arc::new(AtomicU8::new(BREAK))).await;
    let out = backup(&e, &base, &["--max-retries", "1"])
        .output()
        .await
        .unwrap();
    server.abort();
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("big.bin"), "{}", text(&out));
    let started = count(&e, "CreateMultipartUpload");
    assert!(started >= 1, "the first part went up before the break");
    assert_eq!(
        count(&e, "AbortMultipartUpload"),
        started,
        "every upload aborted"
    );
    assert_eq!(count(&e, "CompleteMultipartUpload"), 0);
    assert!(
        e.s3.uploads().is_empty(),
        "in progress: {:?}",
        e.s3.uploads()
    );
    assert_eq!(e.s3.uploads_on_disk(), 0);
    assert_eq!(e.keys(), vec!["TIC1/good.txt", "manifest.csv"]);
    let rows = e.manifest();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["document_id"], GOOD);
}

#[tokio::test]
async fn ctrl_c_twice_aborts_a_stalled_upload_from_drop() {
    let e = S3Env::with(super::quick(1)).await;
    let (base, server) = alga_server(Arc::new(AtomicU8::new(STALL))).await;
    let mut child = backup(&e, &base, &[]).spawn().unwrap();
    wait_for_a_part(&e).await;
    let pid = child.id().unwrap().to_string();
    let status = loop {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status();
        let wait = tokio::time::timeout(Duration::from_millis(300), child.wait());
        if let Ok(s) = wait.await {
            break s.unwrap();
        }
    };
    server.abort();
    assert_eq!(status.code(), Some(130));
    assert_eq!(count(&e, "AbortMultipartUpload"), 1);
    assert!(e.s3.uploads().is_empty() && e.s3.uploads_on_disk() == 0);
    assert_eq!(
        e.keys(),
        vec![".alga-batch-resume.json", "TIC1/good.txt", "manifest.csv"],
        "no object for big.bin, no upload record, lock released"
    );
}

#[tokio::test]
async fn after_a_kill_9_mid_upload_the_next_run_aborts_the_upload_and_leaves_no_orphan() {
    let e = S3Env::with(super::quick(1)).await;
    let mode = Arc::new(AtomicU8::new(STALL));
    let (base, server) = alga_server(mode.clone()).await;
    let mut child = backup(&e, &base, &[]).spawn().unwrap();
    wait_for_a_part(&e).await;
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let left = e.s3.uploads();
    assert_eq!(left.len(), 1, "the killed run's upload is in progress");
    assert!(e
        .keys()
        .iter()
        .any(|k| k.starts_with(".alga-batch-uploads/")));
    assert!(e.object("TIC1/big.bin").is_none());
    let lock = e.object(".alga-batch.lock").expect("the killed run's lock");
    assert_eq!(
        code(&backup(&e, &base, &["--quiet"]).output().await.unwrap()),
        4
    );
    // Let the killed run's lease run out (as a clock would) instead of waiting 90 s.
    let mut holder: serde_json::Value = serde_json::from_slice(&lock).unwrap();
    holder["expires_at"] = "2026-01-01T00:00:00Z".into();
    std::fs::write(
        e.file(".alga-batch.lock"),
        serde_json::to_vec(&holder).unwrap(),
    )
    .unwrap();
    mode.store(WHOLE, Ordering::SeqCst);
    let out = backup(&e, &base, &[]).output().await.unwrap();
    server.abort();
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains("took over a stale lock"),
        "{}",
        text(&out)
    );
    let aborted: Vec<_> =
        e.s3.log()
            .into_iter()
            .filter(|o| o.op == "AbortMultipartUpload")
            .map(|o| o.key)
            .collect();
    assert_eq!(
        aborted,
        vec![format!("{PREFIX}/TIC1/big.bin")],
        "the sweep aborted it"
    );
    assert!(e.s3.uploads().is_empty() && e.s3.uploads_on_disk() == 0);
    assert_eq!(
        e.keys(),
        vec!["TIC1/big.bin", "TIC1/good.txt", "manifest.csv"]
    );
    assert_eq!(
        sha(&e.object("TIC1/big.bin").unwrap()),
        sha(&content(BIG_BYTES))
    );
    let documents: Vec<_> = e.keys().into_iter().filter(|k| is_document(k)).collect();
    assert_eq!(
        e.manifest().len(),
        documents.len(),
        "every object named by the manifest"
    );
}
