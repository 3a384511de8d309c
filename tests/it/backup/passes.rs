//! Passes over the selection: a saved position at (or past) the end means a fresh pass, for
//! `--dry-run` as for a real run.

use super::quick;
use crate::env::{code, text, TestEnv};
use std::time::Duration;

#[tokio::test]
async fn dry_run_after_a_pass_that_reached_the_end_counts_every_ticket() {
    let env = TestEnv::with(quick(12)).await;
    std::fs::create_dir_all(env.path("out")).unwrap();
    let all = alga_batch::export::Selection::default();
    let store = alga_batch::store::FolderStore::new(env.path("out"), true);
    alga_batch::export::resume::save(&store, &all, 12)
        .await
        .unwrap();
    let out = env.run(&["backup", "--out", "out", "--dry-run"]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains("12 tickets: list requests fit in the burst"),
        "{}",
        text(&out)
    );
    assert!(
        !text(&out).contains("continues at ticket"),
        "{}",
        text(&out)
    );
    alga_batch::export::resume::save(&store, &all, 5)
        .await
        .unwrap();
    let out = env.run(&["backup", "--out", "out", "--dry-run"]).await;
    assert!(text(&out).contains("7 tickets"), "{}", text(&out));
    assert!(
        text(&out).contains("continues at ticket 6 of 12"),
        "{}",
        text(&out)
    );
}

const T1: &str = "11111111-1111-4111-8111-111111111111";
const DOC: &str = "22222222-2222-4222-8222-222222222222";

/// One ticket with one document whose download answers only after 4 s.
fn slow_last_download(path: &str) -> (Duration, Vec<u8>) {
    use super::unlisted::respond;
    if path.starts_with("/api/v1/tickets?") {
        let body = format!(
            r#"{{"data":[{{"ticket_id":"{T1}","ticket_number":"TIC1"}}],"pagination":{{"page":1,"limit":100,"total":1,"totalPages":1,"hasNext":false,"hasPrev":false}}}}"#
        );
        return (Duration::ZERO, respond("200 OK", &body));
    }
    if path.ends_with("/documents") {
        let body = format!(
            r#"{{"data":[{{"document_id":"{DOC}","document_name":"late.txt","file_size":"5"}}]}}"#
        );
        return (Duration::ZERO, respond("200 OK", &body));
    }
    if path.ends_with(DOC) {
        let r = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello";
        return (Duration::from_secs(4), r.to_vec());
    }
    (
        Duration::ZERO,
        respond(
            "404 Not Found",
            r#"{"error":{"code":"NOT_FOUND","message":"no"}}"#,
        ),
    )
}

#[tokio::test]
async fn a_budget_that_runs_out_while_the_last_ticket_finishes_completes_the_pass() {
    let (base, server) = super::mini::serve(slow_last_download).await;
    let dir = tempfile::tempdir().unwrap();
    let args = ["backup", "--out", "out", "--rate-per-minute", "0"];
    let mut with_budget = args.to_vec();
    with_budget.extend(["--max-duration", "2s"]);
    let out = super::mini::run(dir.path(), &base, &with_budget).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains("stopped at the 2s budget"),
        "{}",
        text(&out)
    );
    let root = dir.path().join("out");
    assert_eq!(std::fs::read(root.join("TIC1/late.txt")).unwrap(), b"hello");
    assert!(
        !root.join(".alga-batch-resume.json").exists(),
        "every ticket is done: the pass is complete"
    );
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let est = super::mini::run(dir.path(), &base, &dry).await;
    server.abort();
    assert!(text(&est).contains("1 tickets"), "{}", text(&est));
}
