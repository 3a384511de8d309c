//! `alga-batch backup` against the sandbox: hostile names, incremental runs, interrupted
//! downloads, the folder lock, the time budget, comments export and ticket selection.

use crate::env::{code, config, text, TestEnv};
use alga_batch::sandbox::{RateLimitMode, SandboxConfig};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

mod interrupt;
mod killed;
mod large;
mod mini;
mod passes;
mod paths;
mod unlisted;
mod unreachable;

/// Small, unthrottled sandbox (the limiter is exercised by the import tests).
fn quick(tickets: usize) -> SandboxConfig {
    SandboxConfig {
        tickets,
        rate_limit: RateLimitMode::Off,
        ..config()
    }
}

/// `backup --out out --rate-per-minute 0` plus `extra`.
async fn backup(env: &TestEnv, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["backup", "--out", "out", "--rate-per-minute", "0"];
    args.extend_from_slice(extra);
    env.run(&args).await
}

/// Every file below `dir` (recursively).
pub(crate) fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

fn manifest(env: &TestEnv) -> Vec<HashMap<String, String>> {
    crate::env::read_results(&env.path("out/manifest.csv")).1
}

/// GETs of one document's bytes (`.../documents/<uuid>`), not of the list.
fn downloads(env: &TestEnv) -> Vec<String> {
    env.sandbox
        .request_log()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.contains("/documents/"))
        .map(|r| r.path)
        .collect()
}

#[tokio::test]
async fn hostile_names_never_escape_the_folder_and_land_sanitized() {
    let env = TestEnv::with(quick(1)).await;
    let t = env.sandbox.add_ticket("TIC900000", "hostile", false);
    let long = format!("{}.pdf", "n".repeat(300));
    let names = [
        "../../evil.txt",
        "a/b.txt",
        "a\\b.txt",
        "CON",
        "con.txt",
        "ctrl\u{1}\u{7}\nname.txt",
        "résumé – ünïcode.txt",
        long.as_str(),
        "same.txt",
        "same.txt",
        "..",
        "/etc/passwd",
    ];
    let mut ids = HashMap::new();
    for (i, n) in names.iter().enumerate() {
        let body = format!("document {i}: {n}");
        let id = env
            .sandbox
            .add_document_raw(t, n, "text/plain", body.as_bytes());
        ids.insert(id.to_string(), body);
    }
    let out = backup(&env, &["--ticket", "TIC900000"]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let root = env.path("out").canonicalize().unwrap();
    for f in walk(&root) {
        assert!(f.canonicalize().unwrap().starts_with(&root), "{f:?}");
    }
    let outside: Vec<_> = walk(env.dir.path())
        .into_iter()
        .filter(|p| !p.starts_with(env.path("out")))
        .collect();
    assert!(outside.is_empty(), "written outside DIR: {outside:?}");
    let rows = manifest(&env);
    assert_eq!(rows.len(), names.len());
    let mut paths = HashSet::new();
    for r in &rows {
        let file = env.path("out").join(&r["path"]);
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            ids[&r["document_id"]]
        );
        assert!(
            paths.insert(r["path"].to_lowercase()),
            "duplicate {}",
            r["path"]
        );
        assert!(r["path"].starts_with("TIC900000/"), "{}", r["path"]);
        assert_eq!(r["path"].matches('/').count(), 1, "{}", r["path"]);
    }
    let folder = env.path("out/TIC900000");
    for expected in [
        "evil.txt",
        "a_b.txt",
        "_CON",
        "_con.txt",
        "ctrlname.txt",
        "same.txt",
    ] {
        assert!(folder.join(expected).is_file(), "missing {expected}");
    }
    assert!(folder.join("résumé – ünïcode.txt").is_file());
    assert!(rows
        .iter()
        .any(|r| r["path"].len() <= 210 && r["path"].ends_with(".pdf")));
}

#[tokio::test]
async fn a_repeat_backup_downloads_nothing_and_a_damaged_file_is_fetched_again() {
    let env = TestEnv::with(quick(12)).await;
    let t = env.ticket_id("TIC001001");
    env.sandbox
        .add_document_raw(t, "report.pdf", "application/pdf", b"%PDF-1.4 fake");
    let first = backup(&env, &[]).await;
    assert_eq!(code(&first), 0, "{}", text(&first));
    let total = manifest(&env).len();
    assert!(total >= 3, "seeded documents plus ours: {total}");
    assert_eq!(downloads(&env).len(), total);
    let second = backup(&env, &["--quiet"]).await;
    assert_eq!(code(&second), 0, "{}", text(&second));
    assert_eq!(downloads(&env).len(), total, "second run sent a download");
    let line = text(&second);
    assert_eq!(line.trim().lines().count(), 1, "{line}");
    assert!(
        line.contains(&format!("0 downloaded (0 B), {total} unchanged")),
        "{line}"
    );
    std::fs::write(env.path("out/TIC001001/report.pdf"), b"%PDF-1.4 fakE").unwrap();
    let third = backup(&env, &[]).await;
    assert_eq!(code(&third), 0, "{}", text(&third));
    assert_eq!(downloads(&env).len(), total + 1);
    let again = std::fs::read(env.path("out/TIC001001/report.pdf")).unwrap();
    assert_eq!(again, b"%PDF-1.4 fake");
}

#[tokio::test]
async fn documents_gone_from_the_server_are_kept_unless_pruned() {
    let env = TestEnv::with(quick(1)).await;
    let t = env.sandbox.add_ticket("TIC900001", "gone", false);
    let doc = env
        .sandbox
        .add_document_raw(t, "old.txt", "text/plain", b"old");
    assert_eq!(code(&backup(&env, &[]).await), 0);
    let client = alga_batch::api::Client::new(alga_batch::api::ClientConfig::new(
        env.sandbox.base_url(),
        alga_batch::api::ApiKey::new(crate::env::KEY.to_string()),
    ))
    .unwrap();
    client.delete_document(t, doc).await.unwrap();
    let kept = backup(&env, &[]).await;
    assert!(
        text(&kept).contains("gone from the server; kept"),
        "{}",
        text(&kept)
    );
    assert!(env.path("out/TIC900001/old.txt").exists());
    let pruned = backup(&env, &["--prune"]).await;
    assert!(text(&pruned).contains("pruned"), "{}", text(&pruned));
    assert!(!env.path("out/TIC900001/old.txt").exists());
    assert!(manifest(&env)
        .iter()
        .all(|r| r["document_id"] != doc.to_string()));
}

#[tokio::test]
async fn a_second_run_on_a_locked_folder_exits_4_and_a_stale_lock_is_taken_over() {
    let env = TestEnv::with(quick(2)).await;
    std::fs::create_dir_all(env.path("out")).unwrap();
    let held =
        alga_batch::runner::lock::acquire(&env.path("out/.alga-batch.lock"), "x", false).unwrap();
    let out = backup(&env, &["--quiet", "--log-file", "backup.log"]).await;
    assert_eq!(code(&out), 4, "{}", text(&out));
    let msg = text(&out);
    assert!(
        msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );
    let log = std::fs::read_to_string(env.path("backup.log")).unwrap();
    assert!(log.contains("backup failed (exit 4)"), "{log}");
    assert!(
        env.sandbox.request_log().is_empty(),
        "a locked run sends nothing"
    );
    drop(held);
    std::fs::write(
        env.path("out/.alga-batch.lock"),
        "pid 999999 started 2026-01-01T00:00:00Z\n",
    )
    .unwrap();
    let dead_temp = env.write("out/TIC001000/.alga-batch-killed.part", "half a file");
    let out = backup(&env, &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains("took over a stale lock (pid 999999"),
        "{}",
        text(&out)
    );
    assert!(!dead_temp.exists(), "the killed run's temp file is cleared");
    assert!(env.path("out/TIC001000/diagnostics-0.log").is_file());
}

#[tokio::test]
async fn max_duration_stops_cleanly_and_the_next_run_continues() {
    let cfg = SandboxConfig {
        latency_ms: Some((40, 40)),
        ..quick(25)
    };
    let env = TestEnv::with(cfg).await;
    let args = ["--max-duration", "300ms", "--concurrency", "1"];
    let first = backup(&env, &args).await;
    assert_eq!(code(&first), 0, "{}", text(&first));
    assert!(
        text(&first).contains("stopped at the 300ms budget"),
        "{}",
        text(&first)
    );
    let after_first = manifest(&env).len();
    assert_eq!(
        downloads(&env).len(),
        after_first,
        "everything fetched is recorded"
    );
    assert!(env.path("out/.alga-batch-resume.json").exists());
    let second = backup(&env, &[]).await;
    assert_eq!(code(&second), 0, "{}", text(&second));
    assert!(
        !env.path("out/.alga-batch-resume.json").exists(),
        "pass complete"
    );
    let all = manifest(&env).len();
    assert_eq!(all, 5, "25 seeded tickets have a document on every fifth");
    assert!(after_first < all, "the budget cut the first run short");
    let fetched = downloads(&env);
    let unique: HashSet<_> = fetched.iter().collect();
    assert_eq!(fetched.len(), unique.len(), "nothing downloaded twice");
}

#[tokio::test]
async fn comments_are_exported_per_ticket_and_in_one_csv() {
    let env = TestEnv::with(quick(6)).await;
    let out = backup(&env, &["--comments"]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let mut expected_rows = 0;
    for t in env.sandbox.tickets() {
        let server = env.sandbox.comments(t.ticket_id);
        expected_rows += server.len();
        let file = env.path(&format!("out/{}/comments.jsonl", t.ticket_number));
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), server.len(), "{}", t.ticket_number);
        for (got, want) in lines.iter().zip(&server) {
            assert_eq!(got["comment_id"], want["comment_id"]);
            assert_eq!(got["comment_text"], want["comment_text"]);
        }
    }
    assert!(expected_rows > 0, "the seed has comments");
    let (header, rows) = crate::env::read_results(&env.path("out/comments.csv"));
    assert_eq!(header[..3], ["ticket_id", "ticket_number", "comment_id"]);
    assert_eq!(rows.len(), expected_rows);
    let first = &rows[0];
    let ticket = env.ticket_id(&first["ticket_number"]).to_string();
    assert_eq!(first["ticket_id"], ticket);
}

#[tokio::test]
async fn selection_flags_pick_exactly_the_named_or_filtered_tickets() {
    let env = TestEnv::with(quick(10)).await;
    let near = env.sandbox.add_ticket("TIC0010001", "near miss", false);
    env.sandbox
        .add_document_raw(near, "near.txt", "text/plain", b"near");
    let folders = |env: &TestEnv| -> HashSet<String> {
        std::fs::read_dir(env.path("out"))
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_type().unwrap().is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let out = backup(&env, &["--ticket", "TIC001000", "--ticket", "tic001005"]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(
        manifest(&env).len(),
        2,
        "TIC001000 and TIC001005 have a document"
    );
    assert!(
        !folders(&env).contains("TIC0010001"),
        "near miss not selected"
    );
    assert!(
        folders(&env).contains("TIC001005") && !folders(&env).contains("tic001005"),
        "the folder takes the server's spelling: {:?}",
        folders(&env)
    );
    assert!(manifest(&env)
        .iter()
        .any(|r| r["ticket_number"] == "TIC001005" && r["path"].starts_with("TIC001005/")));
    let list = env.write("pick.txt", format!("# one a line\n{near}\n"));
    let out = backup(&env, &["--tickets", list.to_str().unwrap()]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(folders(&env).contains("TIC0010001"));
    let unknown = backup(&env, &["--ticket", "TIC999999"]).await;
    assert_eq!(code(&unknown), 1, "{}", text(&unknown));
    assert!(text(&unknown).contains("TIC999999"), "{}", text(&unknown));
    let bad = backup(&env, &["--updated-from", "2026-11-01"]).await;
    assert_eq!(code(&bad), 2, "{}", text(&bad));
    let future = backup(&env, &["--updated-from", "2999-01-01T00:00:00Z", "--quiet"]).await;
    assert!(
        text(&future).contains("backup: 0 tickets"),
        "{}",
        text(&future)
    );
    std::fs::remove_dir_all(env.path("out")).unwrap();
    let open = backup(&env, &["--open-only"]).await;
    assert_eq!(code(&open), 0, "{}", text(&open));
    let closed: HashSet<String> = env
        .sandbox
        .tickets()
        .into_iter()
        .filter(|t| t.is_closed)
        .map(|t| t.ticket_number)
        .collect();
    assert!(!closed.is_empty());
    let rows = manifest(&env);
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| !closed.contains(&r["ticket_number"])));
}

#[tokio::test]
async fn dry_run_prints_the_estimate_and_downloads_nothing() {
    let env = TestEnv::with(quick(30)).await;
    let out = env.run(&["backup", "--out", "out", "--dry-run"]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let msg = text(&out);
    assert!(
        msg.contains("30 tickets: list requests fit in the burst"),
        "{msg}"
    );
    assert!(downloads(&env).is_empty());
    assert!(!env.path("out").exists());
    assert!(env.sandbox.request_log().len() <= 1);
}

#[tokio::test]
async fn a_repeat_backup_of_1000_unchanged_documents_sends_no_download_request() {
    let env = TestEnv::with(quick(10)).await;
    let tickets = env.sandbox.tickets();
    for i in 0..1000 {
        let t = tickets[i % tickets.len()].ticket_id;
        let body = format!("document {i}\n");
        env.sandbox
            .add_document_raw(t, &format!("doc-{i}.txt"), "text/plain", body.as_bytes());
    }
    let first = backup(&env, &["--concurrency", "8", "--quiet"]).await;
    assert_eq!(code(&first), 0, "{}", text(&first));
    let total = manifest(&env).len();
    assert!(total >= 1000, "{total}");
    let before = env.sandbox.request_log().len();
    let second = backup(&env, &["--concurrency", "8", "--quiet"]).await;
    assert_eq!(code(&second), 0, "{}", text(&second));
    let log = env.sandbox.request_log();
    let repeat = &log[before..];
    assert!(
        repeat.iter().all(|r| !r.path.contains("/documents/")),
        "a download was sent"
    );
    assert_eq!(
        repeat.len(),
        1 + tickets.len(),
        "one page and one list per ticket"
    );
}

#[tokio::test]
async fn a_rejected_key_stops_the_backup_with_exit_3() {
    let env = TestEnv::with(quick(2)).await;
    let out = env
        .command(&["backup", "--out", "out"])
        .env("ALGA_API_KEY", "wrong-key")
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(text(&out).contains("API key"), "{}", text(&out));
    assert!(
        !text(&out).contains("wrong-key"),
        "the key is never printed"
    );
}

#[tokio::test]
async fn a_stopped_pass_continues_where_it_stopped_then_starts_over() {
    let env = TestEnv::with(quick(25)).await;
    std::fs::create_dir_all(env.path("out")).unwrap();
    let all = alga_batch::export::Selection::default();
    let store = alga_batch::store::FolderStore::new(env.path("out"), true);
    alga_batch::export::resume::save(&store, &all, 20)
        .await
        .unwrap();
    let out = backup(&env, &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains("continued the previous pass at ticket 21"),
        "{}",
        text(&out)
    );
    let lists = crate::env::count_requests(&env.sandbox, "GET", "/documents");
    assert_eq!(lists, 5, "only tickets 21..25 were checked");
    let rows = manifest(&env);
    assert_eq!(
        rows.len(),
        1,
        "TIC001020 is the only one of them with a document"
    );
    assert_eq!(rows[0]["ticket_number"], "TIC001020");
    assert!(!env.path("out/.alga-batch-resume.json").exists());
    let again = backup(&env, &[]).await;
    assert_eq!(code(&again), 0, "{}", text(&again));
    assert_eq!(manifest(&env).len(), 5, "a fresh pass covers every ticket");
}
