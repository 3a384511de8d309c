//! Documents of tickets the list no longer shows are only gone when the server confirms the
//! ticket is gone (`GET /tickets/{id}` answers 404), against a tiny hand-written server.

use crate::env::{code, text};

const T1: &str = "11111111-1111-4111-8111-111111111111";
/// Not listed, but the server still has it.
const T2: &str = "22222222-2222-4222-8222-222222222222";
/// Not listed and gone (404).
const T3: &str = "33333333-3333-4333-8333-333333333333";
/// Not listed; the server fails to say (500).
const T4: &str = "44444444-4444-4444-8444-444444444444";

pub(super) fn respond(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn answer(path: &str) -> Vec<u8> {
    if path.starts_with("/api/v1/tickets?") {
        return respond(
            "200 OK",
            &format!(
                r#"{{"data":[{{"ticket_id":"{T1}","ticket_number":"TIC1"}}],"pagination":{{"page":1,"limit":100,"total":1,"totalPages":1,"hasNext":false,"hasPrev":false}}}}"#
            ),
        );
    }
    if path.ends_with("/documents") {
        return respond("200 OK", r#"{"data":[]}"#);
    }
    if path == format!("/api/v1/tickets/{T2}") {
        return respond(
            "200 OK",
            &format!(r#"{{"data":{{"ticket_id":"{T2}","ticket_number":"TIC2"}}}}"#),
        );
    }
    if path == format!("/api/v1/tickets/{T4}") {
        return respond(
            "500 Internal Server Error",
            r#"{"error":{"code":"INTERNAL","message":"boom"}}"#,
        );
    }
    respond(
        "404 Not Found",
        r#"{"error":{"code":"NOT_FOUND","message":"Ticket not found"}}"#,
    )
}

#[tokio::test]
async fn only_tickets_the_server_confirms_gone_have_their_documents_pruned() {
    let (base, server) = super::mini::serve(|p| (std::time::Duration::ZERO, answer(p))).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("out");
    let mut csv = alga_batch::store::manifest::COLUMNS.join(",");
    csv.push('\n');
    for (t, n) in [(T2, "TIC2"), (T3, "TIC3"), (T4, "TIC4")] {
        std::fs::create_dir_all(root.join(n)).unwrap();
        std::fs::write(root.join(n).join("a.txt"), "abc").unwrap();
        csv.push_str(&format!(
            "{t},{n},{},a.txt,{n}/a.txt,3,{},text/plain,2026-11-28T07:00:00Z\n",
            uuid::Uuid::new_v4(),
            "ab".repeat(32)
        ));
    }
    std::fs::write(root.join("manifest.csv"), csv).unwrap();
    let out = crate::env::binary(
        dir.path(),
        &base,
        &[
            "backup",
            "--out",
            "out",
            "--prune",
            "--max-retries",
            "0",
            "--rate-per-minute",
            "0",
        ],
    )
    .output()
    .await
    .unwrap();
    server.abort();
    let msg = text(&out);
    assert_eq!(code(&out), 0, "{msg}");
    assert!(!root.join("TIC3/a.txt").exists(), "confirmed gone: pruned");
    assert!(
        root.join("TIC2/a.txt").exists(),
        "still on the server: kept"
    );
    assert!(root.join("TIC4/a.txt").exists(), "unknown: kept");
    assert!(msg.contains("TIC3 (ticket no longer listed)"), "{msg}");
    assert!(!msg.contains("TIC2 (ticket no longer listed)"), "{msg}");
    assert!(!msg.contains("TIC4 (ticket no longer listed)"), "{msg}");
    assert!(msg.contains("TIC4: not in the ticket list"), "{msg}");
    let (_, rows) = crate::env::read_results(&root.join("manifest.csv"));
    let mut left: Vec<&str> = rows.iter().map(|r| r["ticket_number"].as_str()).collect();
    left.sort();
    assert_eq!(left, vec!["TIC2", "TIC4"]);
}
