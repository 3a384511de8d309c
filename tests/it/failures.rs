//! Run-level failures: a server that dies mid-run, a wrong base URL, a missing key file, and
//! comment threads kept in order when a comment cannot be posted.

use crate::env::{code, config, read_results, text, TestEnv, KEY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_dies_mid_run_stops_it_with_exit_3() {
    let mut cfg = config();
    cfg.latency_ms = Some((40, 60));
    let env = TestEnv::with(cfg).await;
    let mut csv = String::from("ticket,comment_text\n");
    for i in 0..200 {
        csv.push_str(&format!("TIC00100{},comment {i}\n", i % 8));
    }
    env.write("job.csv", &csv);
    let child = env
        .command(&crate::env::run_job(&[
            "--rate-per-minute",
            "0",
            "--max-retries",
            "1",
        ]))
        .spawn()
        .unwrap();
    crate::env::wait_for_comment_posts(&env.sandbox, 10).await;
    let TestEnv { sandbox, dir } = env;
    sandbox.shutdown().await;
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(text(&out).contains("unreachable"), "{}", text(&out));
    assert!(
        text(&out).contains("cancelled"),
        "the summary is printed: {}",
        text(&out)
    );
    let (_, rows) = read_results(&dir.path().join("r.csv"));
    assert_eq!(rows.len(), 200, "the results file is complete");
    let cancelled = rows.iter().filter(|r| r["status"] == "cancelled").count();
    assert!(
        cancelled > 100,
        "the rest was not ground through: {cancelled} cancelled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_url_that_is_not_the_api_root_exits_3() {
    let env = TestEnv::new().await;
    env.write("job.csv", "ticket,comment_text\nTIC001000,hello\n");
    let url = format!("{}/alga", env.sandbox.base_url());
    let out = env.run(&["run", "job.csv", "--base-url", &url]).await;
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(text(&out).contains("no Alga PSA API"), "{}", text(&out));
    assert!(env.sandbox.request_log().iter().all(|r| r.method == "GET"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_file_is_a_usage_error() {
    let env = TestEnv::new().await;
    env.write("job.csv", "ticket,comment_text\nTIC001000,hello\n");
    let out = env
        .command(&["run", "job.csv", "--api-key-file", "nope.key"])
        .env_remove("ALGA_API_KEY")
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), 2, "{}", text(&out));
    env.write("good.key", format!("{KEY}\n"));
    let ok = env
        .command(&["run", "job.csv", "--api-key-file", "good.key", "--quiet"])
        .env_remove("ALGA_API_KEY")
        .output()
        .await
        .unwrap();
    assert_eq!(code(&ok), 0, "{}", text(&ok));
}

/// When a comment cannot be posted for a reason a later run may overcome, the later comments of
/// its ticket wait too, so that the resumed thread still reads in job order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_stay_in_order_across_failures_and_resumes() {
    let mut cfg = config();
    cfg.fail_rate = 0.25;
    cfg.seed = 5;
    let env = TestEnv::with(cfg).await;
    let mut csv = String::from("ticket,comment_text\n");
    for i in 0..40 {
        csv.push_str(&format!("TIC00100{},step {i:02}\n", i % 4));
    }
    env.write("job.csv", &csv);
    let args = crate::env::run_job(&["--rate-per-minute", "0", "--max-retries", "0", "--quiet"]);
    let first = env.run(&args).await;
    assert_eq!(code(&first), 1, "some comments must fail: {}", text(&first));
    let (_, rows) = read_results(&env.path("r.csv"));
    assert!(
        rows.iter()
            .any(|r| r["error"].contains("earlier comment of this ticket")),
        "{rows:?}"
    );
    env.sandbox.set_faults(0.0, 0.0);
    let second = env.run(&args).await;
    assert_eq!(code(&second), 0, "{}", text(&second));
    for t in 0..4 {
        let id = env.ticket_id(&format!("TIC00100{t}"));
        let got: Vec<String> = env
            .sandbox
            .comments(id)
            .iter()
            .filter(|c| c["metadata"]["alga_batch_op"].is_string())
            .map(|c| c["comment_text"].as_str().unwrap().to_string())
            .collect();
        let want: Vec<String> = (0..40)
            .filter(|i| i % 4 == t)
            .map(|i| format!("step {i:02}"))
            .collect();
        assert_eq!(got, want, "thread of TIC00100{t} out of order");
    }
}
