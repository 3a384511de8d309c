//! A server that stops answering mid-backup stops the run with exit 3; what was downloaded
//! stays in the manifest and the pass is not counted complete.

use super::{downloads, quick};
use crate::env::{code, text, TestEnv};
use alga_batch::sandbox::SandboxConfig;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_dies_mid_backup_stops_it_with_exit_3_and_keeps_the_manifest() {
    let cfg = SandboxConfig {
        latency_ms: Some((30, 30)),
        ..quick(60)
    };
    let env = TestEnv::with(cfg).await;
    let child = env
        .command(&[
            "backup",
            "--out",
            "out",
            "--rate-per-minute",
            "0",
            "--max-retries",
            "1",
            "--concurrency",
            "1",
        ])
        .spawn()
        .unwrap();
    // Stop the server once a few documents are in (60 tickets take seconds at 30 ms a request).
    for _ in 0..600 {
        if downloads(&env).len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(downloads(&env).len() >= 3, "the backup never got going");
    let before = downloads(&env).len();
    let TestEnv { sandbox, dir } = env;
    sandbox.shutdown().await;
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(text(&out).contains("unreachable"), "{}", text(&out));
    let (_, rows) = crate::env::read_results(&dir.path().join("out/manifest.csv"));
    assert!(
        rows.len() >= before.saturating_sub(1) && !rows.is_empty(),
        "downloads so far are recorded: {} rows, {before} downloads",
        rows.len()
    );
    assert!(
        dir.path().join("out/.alga-batch-resume.json").exists(),
        "the pass is not complete"
    );
}
