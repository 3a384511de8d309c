//! Undo interrupted and resumed: Ctrl-C (exit 130) and a killed process both resume to every
//! document gone without a repeated delete; an unreachable server, or one that dies mid-run,
//! stops the undo with exit 3.

use super::{deletes, row};
use crate::env::{code, config, count_requests, read_results, text, TestEnv};
use alga_batch::journal::{self, ResultRow, Status};
use uuid::Uuid;

/// `n` documents on TIC001004 and a hand-written results file listing them as created.
fn many_documents(env: &TestEnv, n: usize) -> Vec<Uuid> {
    let t = env.ticket_id("TIC001004");
    let ids: Vec<Uuid> = (0..n)
        .map(|i| {
            env.sandbox
                .add_document_raw(t, &format!("bulk-{i}.txt"), "text/plain", b"bulk")
        })
        .collect();
    let rows: Vec<ResultRow> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| row(&format!("d-{i}"), t, "document", *id, Status::Created))
        .collect();
    journal::write_atomic(&env.path("bulk.csv"), &rows).unwrap();
    ids
}

/// Wait (without a deadline of our own) until the sandbox has seen `n` DELETEs.
async fn until_deletes(env: &TestEnv, n: usize) {
    while deletes(env) < n {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_with_130_and_the_resumed_undo_finishes_without_repeating() {
    let mut cfg = config();
    cfg.latency_ms = Some((60, 80));
    let env = TestEnv::with(cfg).await;
    let ids = many_documents(&env, 60);
    let undo = [
        "undo",
        "bulk.csv",
        "--results",
        "u.csv",
        "--concurrency",
        "2",
    ];
    let child = env.command(&undo).spawn().unwrap();
    until_deletes(&env, 4).await;
    signal(child.id().unwrap(), "-INT");
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(code(&out), 130, "{}", text(&out));
    let (_, rows) = read_results(&env.path("u.csv"));
    assert_eq!(rows.len(), 60, "one row per document");
    let deleted = rows.iter().filter(|r| r["status"] == "deleted").count();
    let cancelled = rows.iter().filter(|r| r["status"] == "cancelled").count();
    assert_eq!(deleted + cancelled, 60, "{rows:?}");
    assert!(
        deleted >= 4 && cancelled > 0,
        "{deleted} deleted, {cancelled} cancelled"
    );
    assert_eq!(
        deletes(&env),
        deleted,
        "in-flight deletes finished and were recorded"
    );

    let out = env.run(&undo).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let (_, rows) = read_results(&env.path("u.csv"));
    assert!(rows.iter().all(|r| r["status"] == "deleted"), "{rows:?}");
    assert_eq!(deletes(&env), 60, "a deleted document was deleted again");
    let left = env.sandbox.documents(env.ticket_id("TIC001004"));
    assert!(ids
        .iter()
        .all(|id| !left.iter().any(|d| d["document_id"] == id.to_string())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_undo_resumes_to_every_document_gone() {
    let mut cfg = config();
    cfg.latency_ms = Some((20, 40));
    let env = TestEnv::with(cfg).await;
    many_documents(&env, 40);
    let undo = ["undo", "bulk.csv", "--results", "u.csv", "--quiet"];
    let mut child = env.command(&undo).spawn().unwrap();
    until_deletes(&env, 10).await;
    child.start_kill().unwrap();
    let _ = child.wait().await;
    let journaled: Vec<String> = journal::read_rows(&env.path("u.csv"))
        .unwrap()
        .into_iter()
        .filter(|r| r.status == Status::Deleted)
        .map(|r| r.document_id)
        .collect();
    assert!(!journaled.is_empty(), "the killed run journaled nothing");
    let out = env.run(&undo).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    for id in &journaled {
        let sent = count_requests(&env.sandbox, "DELETE", &format!("/documents/{id}"));
        assert_eq!(
            sent, 1,
            "document {id} was journaled as deleted, then deleted again"
        );
    }
    let (_, rows) = read_results(&env.path("u.csv"));
    assert_eq!(rows.len(), 40);
    assert!(
        rows.iter()
            .all(|r| r["status"] == "deleted" || r["status"] == "missing"),
        "{rows:?}"
    );
    assert!(env.sandbox.documents(env.ticket_id("TIC001004")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_stops_at_once_with_exit_3() {
    let env = TestEnv::new().await;
    many_documents(&env, 5);
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let out = env
        .command(&[
            "undo",
            "bulk.csv",
            "--results",
            "u.csv",
            "--max-retries",
            "0",
        ])
        .env("ALGA_BASE_URL", &closed)
        .args(["--concurrency", "1"])
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(text(&out).contains("unreachable"), "{}", text(&out));
    // The health check finds nobody there before any row is attempted.
    assert!(
        !env.path("u.csv").exists(),
        "nothing attempted, nothing recorded"
    );
    assert!(!env.path("u.csv.lock").exists(), "the lock is released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_dies_mid_undo_stops_it_with_exit_3_after_a_streak() {
    // Slow answers keep the undo under way while the server goes.
    let mut cfg = crate::env::config();
    cfg.latency_ms = Some((100, 100));
    let env = TestEnv::with(cfg).await;
    many_documents(&env, 12);
    let base = env.sandbox.base_url();
    let TestEnv { sandbox, dir } = env;
    let args = [
        "undo",
        "bulk.csv",
        "--results",
        "u.csv",
        "--max-retries",
        "0",
        "--concurrency",
        "1",
    ];
    let child = crate::env::binary(dir.path(), &base, &args)
        .spawn()
        .unwrap();
    // The server goes away once the undo is under way.
    crate::env::wait_until("a first delete", || {
        count_requests(&sandbox, "DELETE", "") >= 1
    })
    .await;
    sandbox.shutdown().await;
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(text(&out).contains("unreachable"), "{}", text(&out));
    let (_, rows) = read_results(&dir.path().join("u.csv"));
    let count = |s: &str| rows.iter().filter(|r| r["status"] == s).count();
    assert_eq!(
        count("failed"),
        3,
        "stopped after a streak of three: {rows:?}"
    );
    assert!(count("deleted") >= 1, "{rows:?}");
    assert_eq!(count("deleted") + count("failed") + count("cancelled"), 12);
}
