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
