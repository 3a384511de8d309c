//! Killed backups and repeat runs: after SIGKILLs mid-run, the backup completes with every
//! document exactly once, no orphan and no temp file, having downloaded at most what was in
//! flight at each kill; a repeat run downloads and re-hashes nothing unless `--verify`.

use super::{backup, downloads, manifest, quick, walk};
use crate::env::{code, text, TestEnv};
use alga_batch::sandbox::SandboxConfig;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Tickets in flight at once (the default `--concurrency`); each downloads one document at a
/// time, so at most this many downloads are in flight at any instant.
const CONCURRENCY: usize = 4;

/// 10 tickets with 20 documents each (plus the seeded ones); document id -> bytes.
fn seed(env: &TestEnv) -> HashMap<String, Vec<u8>> {
    for (i, t) in env.sandbox.tickets().iter().enumerate() {
        for j in 0..20 {
            let body = format!("ticket {i} document {j}\n").repeat(50 + j);
            let name = format!("doc-{j}.txt");
            env.sandbox
                .add_document_raw(t.ticket_id, &name, "text/plain", body.as_bytes());
        }
    }
    let mut all = HashMap::new();
    for t in env.sandbox.tickets() {
        for d in env.sandbox.documents(t.ticket_id) {
            let id = d["document_id"].as_str().unwrap().to_string();
            let bytes = env.sandbox.document_bytes(id.parse().unwrap()).unwrap();
            all.insert(id, bytes);
        }
    }
    all
}

/// Start a backup, wait until the sandbox has served 3 more document downloads, SIGKILL it.
async fn kill_mid_run(env: &TestEnv) {
    let mut child = env
        .command(&["backup", "--out", "out", "--rate-per-minute", "0"])
        .spawn()
        .unwrap();
    let before = downloads(env).len();
    for _ in 0..6000 {
        if downloads(env).len() >= before + 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        downloads(env).len() >= before + 3,
        "the backup never got going"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "it finished before the kill"
    );
    child.start_kill().unwrap(); // SIGKILL
    let status = child.wait().await.unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "killed, not finished: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_killed_three_times_completes_with_every_document_once_and_no_orphan() {
    let cfg = SandboxConfig {
        latency_ms: Some((15, 15)),
        ..quick(10)
    };
    let env = TestEnv::with(cfg).await;
    let docs = seed(&env);
    const KILLS: usize = 3;
    for _ in 0..KILLS {
        kill_mid_run(&env).await;
    }
    let out = backup(&env, &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let rows = manifest(&env);
    let ids: HashSet<&String> = rows.iter().map(|r| &r["document_id"]).collect();
    assert_eq!(ids.len(), rows.len(), "a document twice in the manifest");
    assert_eq!(ids, docs.keys().collect(), "every document, and only those");
    let root = env.path("out");
    let mut expected: HashSet<String> = rows.iter().map(|r| r["path"].clone()).collect();
    for r in &rows {
        let got = std::fs::read(root.join(&r["path"])).unwrap();
        assert!(got == docs[&r["document_id"]], "{} differs", r["path"]);
    }
    expected.extend(["manifest.csv".to_string(), ".alga-batch.lock".to_string()]);
    let on_disk: HashSet<String> = walk(&root)
        .iter()
        .map(|p| {
            p.strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    assert_eq!(on_disk, expected, "orphans, temp files or a journal left");
    // Bound: every document once, plus at most CONCURRENCY downloads in flight per kill
    // (served by the sandbox but not yet journaled when the process died).
    let fetched = downloads(&env).len();
    let bound = docs.len() + CONCURRENCY * KILLS;
    assert!(
        fetched <= bound,
        "{fetched} downloads for {} documents (bound {bound})",
        docs.len()
    );
    let again = backup(&env, &["--quiet"]).await;
    assert_eq!(code(&again), 0, "{}", text(&again));
    assert_eq!(
        downloads(&env).len(),
        fetched,
        "a complete backup downloads nothing again"
    );
}

#[tokio::test]
async fn a_repeat_run_trusts_size_and_mtime_and_verify_rereads_everything() {
    let env = TestEnv::with(quick(3)).await;
    let t = env.ticket_id("TIC001001");
    env.sandbox
        .add_document_raw(t, "report.pdf", "application/pdf", b"%PDF-1.4 original");
    let first = backup(&env, &["--quiet"]).await;
    assert_eq!(code(&first), 0, "{}", text(&first));
    let total = manifest(&env).len();
    assert!(total >= 2, "{total}");
    assert_eq!(downloads(&env).len(), total);
    // Changed behind the tool's back: same size, and the mtime it had.
    let file = env.path("out/TIC001001/report.pdf");
    let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
    std::fs::write(&file, b"%PDF-1.4 ORIGINAL").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let trusted = backup(&env, &["--quiet"]).await;
    assert_eq!(code(&trusted), 0, "{}", text(&trusted));
    let line = text(&trusted);
    assert!(
        line.contains(&format!("0 downloaded (0 B), {total} unchanged")),
        "{line}"
    );
    assert!(!line.contains("re-hashed"), "nothing was re-hashed: {line}");
    assert_eq!(downloads(&env).len(), total, "no download without --verify");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"%PDF-1.4 ORIGINAL",
        "not re-read"
    );
    let verified = backup(&env, &["--verify", "--quiet"]).await;
    assert_eq!(code(&verified), 0, "{}", text(&verified));
    let line = text(&verified);
    assert!(
        line.contains(&format!("1 downloaded (17 B), {} unchanged", total - 1)),
        "{line}"
    );
    assert!(line.contains(&format!("{total} re-hashed")), "{line}");
    assert_eq!(
        downloads(&env).len(),
        total + 1,
        "only the damaged file again"
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"%PDF-1.4 original");
}
