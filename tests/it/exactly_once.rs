//! The exactly-once promise where the server's answer proves nothing (issue 10): a create
//! answered 500 or with an unreadable 201 after it was stored, two runs on one results file,
//! and a key that may not write.

use crate::env::{code, config, count_requests, read_results, text, TestEnv};
use crate::resume::{args, assert_exactly_once, job};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_answered_500_or_garbled_after_commit_land_exactly_once_across_reruns() {
    let mut cfg = config();
    cfg.seed = 23;
    cfg.error_after_commit = 0.1;
    cfg.garble_after_commit = 0.1;
    let env = TestEnv::with(cfg).await;
    job(&env, 40, 10);
    let mut runs = 0;
    loop {
        runs += 1;
        let out = env.run(&args(&[])).await;
        if code(&out) == 0 {
            break;
        }
        assert_eq!(code(&out), 1, "{}", text(&out));
        assert!(runs < 10, "never finished: {}", text(&out));
    }
    let stats = env.sandbox.stats();
    assert!(
        stats.faults_after_commit >= 5,
        "the faults must have fired: {stats:?}"
    );
    let (_, rows) = read_results(&env.path("r.csv"));
    assert!(
        rows.iter().any(|r| r["status"] == "existing"),
        "a committed create whose answer was lost is found, not sent again"
    );
    assert_exactly_once(&env, "r.csv", 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_on_the_same_results_file_exits_4_and_sends_nothing() {
    let mut cfg = config();
    cfg.latency_ms = Some((30, 30));
    let env = TestEnv::with(cfg).await;
    job(&env, 40, 0);
    let first = env.command(&args(&["--concurrency", "1"])).spawn().unwrap();
    crate::env::wait_for_comment_posts(&env.sandbox, 2).await;
    let posts_before = count_requests(&env.sandbox, "POST", "/comments");
    let second = env.run(&args(&[])).await;
    assert_eq!(code(&second), 4, "{}", text(&second));
    let msg = text(&second);
    assert!(
        msg.contains("is in use by another alga-batch run (pid"),
        "names the holder: {msg}"
    );
    let first = first.wait_with_output().await.unwrap();
    assert_eq!(code(&first), 0, "{}", text(&first));
    assert!(
        count_requests(&env.sandbox, "POST", "/comments") - posts_before <= 40,
        "only the first run posted"
    );
    assert_exactly_once(&env, "r.csv", 40);
    assert!(
        !env.path("r.csv.lock").exists(),
        "the lock is removed at the end"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_on_a_create_stops_the_run_with_exit_3_after_one_create() {
    let mut cfg = config();
    cfg.readonly_keys = vec!["read-only-key".into()];
    let env = TestEnv::with(cfg).await;
    job(&env, 20, 0);
    let out = env
        .command(&args(&["--concurrency", "1"]))
        .env("ALGA_API_KEY", "read-only-key")
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(
        text(&out).contains("may not update tickets"),
        "{}",
        text(&out)
    );
    assert_eq!(count_requests(&env.sandbox, "POST", "/comments"), 1);
    let (_, rows) = read_results(&env.path("r.csv"));
    let failed = rows.iter().filter(|r| r["status"] == "failed").count();
    assert_eq!(failed, 1, "{rows:?}");
    assert!(rows
        .iter()
        .all(|r| r["status"] == "failed" || r["status"] == "cancelled"));
}
