//! `--capacity`: N workers with a service time, queueing and contention past N, and the latency
//! percentiles the handle reports. Only lower bounds on time are asserted (sleeps guarantee
//! them; machines are noisy above them).

use std::time::Duration;

use super::*;
use alga_batch::sandbox::Capacity;

const COMMENTS: &str = "POST /api/v1/tickets/{id}/comments";

/// `n` comment posts sent at once; every one must be created.
async fn burst(api: &Api, ticket: Uuid, n: usize) {
    let path = format!("/api/v1/tickets/{ticket}/comments");
    let sends = (0..n).map(|i| {
        api.post_json(&path, &format!(r#"{{"comment_text":"c{i}"}}"#))
            .send()
    });
    for r in futures::future::join_all(sends).await {
        assert_eq!(r.unwrap().status(), 201);
    }
}

#[tokio::test]
async fn requests_beyond_the_workers_queue_and_the_percentiles_show_it() {
    let sb = sandbox_with(|c| {
        c.capacity = Some(Capacity::new(2, Duration::from_millis(50)));
    })
    .await;
    let api = Api::new(&sb);
    let ticket = open_ticket(&sb);
    // The health check never waits for a worker and is not counted.
    assert_eq!(api.get("/api/health").send().await.unwrap().status(), 200);
    assert_eq!(sb.latency_percentiles().count, 0);
    burst(&api, ticket, 2).await;
    let two = sb.latency_percentiles();
    assert_eq!(two.count, 2);
    assert!(two.p50 >= Duration::from_millis(49), "{two:?}");
    sb.reset_latency();
    // 8 at once on 2 workers: four rounds at least, and the early ones contend.
    burst(&api, ticket, 8).await;
    let eight = sb.route_latency_percentiles(COMMENTS);
    assert_eq!(eight.count, 8);
    assert!(eight.max >= Duration::from_millis(199), "{eight:?}");
    assert_eq!(sb.latency_percentiles(), eight);
    sb.shutdown().await;
}

#[tokio::test]
async fn burst_20_at_600_per_minute_on_comments_answers_429_as_the_captures_show() {
    let sb = sandbox_with(|c| {
        c.burst = 20;
        c.refill_per_minute = 600;
        c.limit_comments = true;
    })
    .await;
    let api = Api::new(&sb);
    let path = format!("/api/v1/tickets/{}/comments", open_ticket(&sb));
    let mut created = 0;
    let (headers, body) = loop {
        assert!(created < 200, "no 429 after {created} comments");
        let (s, h, b) = call(api.post_json(&path, r#"{"comment_text":"x"}"#)).await;
        if s == 429 {
            break (h, b);
        }
        assert_eq!(s, 201);
        assert_eq!(h["x-ratelimit-limit"], "20");
        let remaining: i64 = h["x-ratelimit-remaining"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((0..20).contains(&remaining), "{remaining}");
        created += 1;
    };
    assert!(created >= 20, "{created}");
    assert_eq!(
        (code(&body), message(&body)),
        ("RATE_LIMITED", "Too many requests")
    );
    // One token takes 100 ms at 10/s.
    let ms = body["error"]["details"]["retry_after_ms"].as_u64().unwrap();
    assert!((1..=100).contains(&ms), "{ms}");
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(headers["x-ratelimit-limit"], "20");
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    let reset = headers["x-ratelimit-reset"].to_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(reset).is_ok(),
        "{reset}"
    );
    sb.shutdown().await;
}

/// `alga-batch sandbox --stats-file`: on SIGTERM (a script's `kill`) the binary writes what it
/// saw, with the time-in-server percentiles the pacing benchmark reads.
#[cfg(unix)]
#[tokio::test]
async fn the_binary_writes_its_stats_file_on_sigterm() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("stats.json");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_alga-batch"))
        .args(["sandbox", "--listen", "127.0.0.1:0", "--quiet"])
        .args(["--capacity", "2", "--service-ms", "30", "--stats-file"])
        .arg(&stats)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let base = loop {
        let line = lines.next_line().await.unwrap().expect("sandbox exited");
        if let Some(url) = line.strip_prefix("sandbox listening on ") {
            break url.trim().to_string();
        }
    };
    let http = Client::new();
    for _ in 0..3 {
        let r = http
            .get(format!("{base}/api/v1/tickets"))
            .header("X-API-Key", KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
    let report: Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    assert_eq!(report["total"], 3, "{report}");
    assert_eq!(report["rate_limited"], 0);
    assert_eq!(report["latency"]["count"], 3);
    let p50 = report["route_latency"]["GET /api/v1/tickets"]["p50_ms"]
        .as_f64()
        .unwrap();
    assert!(
        p50 >= 29.0,
        "a worker holds each request for 30 ms: {report}"
    );
}
