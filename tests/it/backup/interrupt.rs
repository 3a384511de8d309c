//! Interrupted downloads against a tiny hand-written server whose second document breaks off
//! halfway: no partial file under a final name, no temp file left behind.

use super::walk;
use crate::env::{code, text};
use std::path::Path;

/// A one-ticket server whose second document's body breaks off halfway (`Connection: close`),
/// or with `stall`, stops sending halfway and keeps the connection open.
async fn breaking_server(stall: bool) -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let Some(line) = crate::env::request_line(&mut sock).await else {
                    return;
                };
                let _ = sock.write_all(&broken_response(&line)).await;
                if stall && line.contains(BROKEN) {
                    std::future::pending::<()>().await;
                }
                let _ = sock.shutdown().await;
            });
        }
    });
    (base, task)
}

const T1: &str = "11111111-1111-4111-8111-111111111111";
const GOOD: &str = "22222222-2222-4222-8222-222222222222";
const BROKEN: &str = "33333333-3333-4333-8333-333333333333";

fn broken_response(request_line: &str) -> Vec<u8> {
    let path = request_line.split(' ').nth(1).unwrap_or("");
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
            r#"{{"data":[{{"document_id":"{GOOD}","document_name":"good.txt","file_size":"5"}},{{"document_id":"{BROKEN}","document_name":"big.bin","file_size":"100000"}}]}}"#
        ));
    }
    if path.ends_with(GOOD) {
        return b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello".to_vec();
    }
    let mut r = b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: 100000\r\nconnection: close\r\n\r\n".to_vec();
    r.extend(std::iter::repeat_n(b'x', 40_000));
    r
}

#[tokio::test]
async fn a_download_cut_off_midway_leaves_no_partial_file() {
    let (base, server) = breaking_server(false).await;
    let dir = tempfile::tempdir().unwrap();
    let out = crate::env::binary(
        dir.path(),
        &base,
        &[
            "backup",
            "--out",
            "out",
            "--max-retries",
            "1",
            "--rate-per-minute",
            "0",
        ],
    )
    .output()
    .await
    .unwrap();
    server.abort();
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("big.bin"), "{}", text(&out));
    let root = dir.path().join("out");
    assert_eq!(
        listing(&root),
        vec![".alga-batch.lock", "TIC1/good.txt", "manifest.csv"]
    );
    let (_, rows) = crate::env::read_results(&root.join("manifest.csv"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["document_id"], GOOD);
}

/// Files below `root`, relative, sorted.
fn listing(root: &Path) -> Vec<String> {
    let mut files: Vec<String> = walk(root)
        .iter()
        .map(|p| {
            p.strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn ctrl_c_twice_aborts_a_stalled_download_and_removes_its_temp_file() {
    let (base, server) = breaking_server(true).await;
    let dir = tempfile::tempdir().unwrap();
    let mut child = crate::env::binary(
        dir.path(),
        &base,
        &["backup", "--out", "out", "--rate-per-minute", "0"],
    )
    .spawn()
    .unwrap();
    let root = dir.path().join("out");
    let folder = root.join("TIC1");
    let in_flight = || {
        std::fs::read_dir(&folder).is_ok_and(|rd| {
            rd.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(".alga-batch-"))
        })
    };
    for _ in 0..400 {
        if in_flight() && folder.join("good.txt").exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(in_flight(), "the stalled download never started");
    let pid = child.id().unwrap().to_string();
    let mut tries = 0;
    let status = loop {
        tries += 1;
        assert!(tries < 100, "the backup ignored Ctrl-C");
        let _ = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status();
        let wait = tokio::time::timeout(std::time::Duration::from_millis(300), child.wait());
        if let Ok(s) = wait.await {
            break s.unwrap();
        }
    };
    server.abort();
    assert_eq!(status.code(), Some(130));
    assert_eq!(
        listing(&root),
        vec![
            ".alga-batch-resume.json",
            ".alga-batch.lock",
            "TIC1/good.txt",
            "manifest.csv"
        ]
    );
}

#[tokio::test]
async fn a_download_still_stalled_after_the_budget_grace_is_aborted_and_left() {
    let (base, server) = breaking_server(true).await;
    let dir = tempfile::tempdir().unwrap();
    let run = crate::env::binary(
        dir.path(),
        &base,
        &[
            "backup",
            "--out",
            "out",
            "--rate-per-minute",
            "0",
            "--max-duration",
            "1s",
        ],
    )
    .output();
    // 1 s budget + 10 s grace; without the abort the stalled download waits for the 60 s
    // idle timeout and its retries.
    let out = tokio::time::timeout(std::time::Duration::from_secs(45), run)
        .await
        .expect("the budget did not abort the stalled download")
        .unwrap();
    server.abort();
    assert_eq!(code(&out), 0, "a budget stop is clean: {}", text(&out));
    assert!(
        text(&out).contains("stopped at the 1s budget"),
        "{}",
        text(&out)
    );
    let root = dir.path().join("out");
    assert_eq!(
        listing(&root),
        vec![
            ".alga-batch-resume.json",
            ".alga-batch.lock",
            "TIC1/good.txt",
            "manifest.csv"
        ],
        "no temp file left; the pass continues next time"
    );
}
