//! The soak (issue 14, not in CI): `scripts/soak.sh`. Jobs of 2,000, 10,000 and 20,000
//! operations (95 % comments, 5 % uploads) against a sandbox that fails 5 % of requests with
//! 503, drops 2 % of committed creates' connections, answers 2 % of them with a 500 and 2 %
//! with an unreadable 201, with 5-80 ms latency; each job is rerun until it exits 0, then
//! every operation must be on the server exactly once and the results must match it ID for
//! ID. The client's peak resident memory (max over the runs of a job, `/usr/bin/time`) is
//! reported per size and must grow sub-linearly and stay below 200 MiB at 20,000.

use crate::env::{code, config, text, TestEnv, KEY};
use crate::resume::{assert_exactly_once, job};

/// Run the binary under `/usr/bin/time`; its exit code and max RSS in KiB.
async fn timed_run(env: &TestEnv, args: &[&str]) -> (i32, u64, String) {
    let rss = env.path("rss.txt");
    let out = tokio::process::Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rss)
        .arg(env!("CARGO_BIN_EXE_alga-batch"))
        .args(args)
        .current_dir(env.dir.path())
        .env("ALGA_BASE_URL", env.sandbox.base_url())
        .env("ALGA_API_KEY", KEY)
        .env_remove("RUST_LOG")
        .output()
        .await
        .unwrap();
    let kib = std::fs::read_to_string(&rss).unwrap();
    let kib = kib.lines().last().unwrap().trim().parse().unwrap();
    (code(&out), kib, text(&out))
}

/// One size: (runs to exit 0, peak RSS in KiB, seconds).
async fn soak(ops: usize) -> (usize, u64, f64) {
    let mut cfg = config();
    cfg.fail_rate = 0.05;
    cfg.drop_after_commit = 0.02;
    cfg.error_after_commit = 0.02;
    cfg.garble_after_commit = 0.02;
    cfg.latency_ms = Some((5, 80));
    cfg.rate_limit = alga_batch::sandbox::RateLimitMode::Off;
    cfg.seed = ops as u64;
    let env = TestEnv::with(cfg).await;
    let docs = ops / 20;
    job(&env, ops - docs, docs);
    let args = [
        "run",
        "job.csv",
        "--results",
        "r.csv",
        "--quiet",
        "--rate-per-minute",
        "0",
        "--concurrency",
        "16",
    ];
    let started = std::time::Instant::now();
    let (mut runs, mut peak) = (0, 0);
    loop {
        runs += 1;
        let (exit, kib, out) = timed_run(&env, &args).await;
        peak = peak.max(kib);
        if exit == 0 {
            break;
        }
        assert_eq!(exit, 1, "{out}");
        assert!(runs < 10, "{ops} operations never finished: {out}");
    }
    assert_exactly_once(&env, "r.csv", ops);
    (runs, peak, started.elapsed().as_secs_f64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: run by scripts/soak.sh"]
async fn soak_exactly_once_with_bounded_memory() {
    let sizes: Vec<usize> = std::env::var("SOAK_SIZES")
        .unwrap_or_else(|_| "2000,10000,20000".into())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let mut peaks = Vec::new();
    println!("| operations | runs to exit 0 | peak RSS | wall |");
    println!("| --- | --- | --- | --- |");
    for &n in &sizes {
        let (runs, kib, secs) = soak(n).await;
        println!(
            "| {n} | {runs} | {:.1} MiB | {secs:.0} s |",
            kib as f64 / 1024.0
        );
        peaks.push((n, kib));
    }
    let (first, last) = (peaks[0], peaks[peaks.len() - 1]);
    if last.0 >= 20_000 {
        assert!(last.1 < 200 * 1024, "{} KiB at {}", last.1, last.0);
    }
    let growth = last.1 as f64 / first.1 as f64;
    let scale = last.0 as f64 / first.0 as f64;
    assert!(
        growth < scale,
        "memory grew {growth:.1}x for {scale:.0}x the operations"
    );
}
