//! The rate limiter: headers on limited successes, 429s, which routes it covers, and its modes.

use super::*;
use alga_batch::sandbox::RateLimitMode;

fn slow(c: &mut alga_batch::sandbox::SandboxConfig) {
    c.burst = 3;
    c.refill_per_minute = 1;
}

#[tokio::test]
async fn bucket_drains_into_429_on_limited_routes_only() {
    let sb = sandbox_with(slow).await;
    let api = Api::new(&sb);
    let ticket = open_ticket(&sb);
    let docs = format!("/api/v1/tickets/{ticket}/documents");
    // 401s do not consume tokens.
    for _ in 0..5 {
        let r = api
            .http
            .get(format!("{}{docs}", api.base))
            .header("x-api-key", "bad")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    for expected in ["2", "1", "0"] {
        let r = api.get(&docs).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-ratelimit-limit"], "3");
        assert_eq!(r.headers()["x-ratelimit-remaining"], expected);
        assert!(r.headers().get("x-ratelimit-reset").is_none());
    }
    let (s, h, b) = parts(api.get(&docs).send().await.unwrap()).await;
    assert_eq!(
        (s, code(&b), message(&b)),
        (429, "RATE_LIMITED", "Too many requests")
    );
    let retry_ms = b["error"]["details"]["retry_after_ms"].as_u64().unwrap();
    assert!(retry_ms > 0 && retry_ms <= 60_000);
    assert_eq!(b["error"]["details"]["remaining"], 0);
    let retry_after: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert_eq!(retry_after, retry_ms.div_ceil(1000).max(1));
    assert_eq!(h["x-ratelimit-remaining"], "0");
    let reset = h["x-ratelimit-reset"].to_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(reset).is_ok() && reset.ends_with('Z'));
    for path in [
        format!("/api/v1/tickets/{ticket}"),
        "/api/v1/tickets".to_string(),
        format!("{docs}/{}", Uuid::nil()),
    ] {
        assert_eq!(api.get(&path).send().await.unwrap().status(), 429, "{path}");
    }
    assert_eq!(
        api.upload(ticket, "a.txt", "text/plain", b"a")
            .send()
            .await
            .unwrap()
            .status(),
        429
    );
    // Comments and search are never limited.
    let r = api
        .post_json(
            &format!("/api/v1/tickets/{ticket}/comments"),
            r#"{"comment_text":"still ok"}"#,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(r.headers().get("x-ratelimit-remaining").is_none());
    assert_eq!(
        api.get(&format!("/api/v1/tickets/{ticket}/comments"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        api.get("/api/v1/tickets/search?query=TIC")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(sb.stats().rate_limited, 5);
    sb.shutdown().await;
}

#[tokio::test]
async fn each_key_has_its_own_bucket_and_downloads_consume_silently() {
    let sb = sandbox_with(|c| {
        slow(c);
        c.api_keys = vec![KEY.into(), "second".into()];
    })
    .await;
    let api = Api::new(&sb);
    let ticket = open_ticket(&sb);
    let doc = sb.documents(ticket)[0]["document_id"]
        .as_str()
        .unwrap()
        .to_string();
    let download = format!("/api/v1/tickets/{ticket}/documents/{doc}");
    for _ in 0..3 {
        let r = api.get(&download).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers().get("x-ratelimit-remaining").is_none());
    }
    assert_eq!(api.get(&download).send().await.unwrap().status(), 429);
    let r = api
        .http
        .get(format!("{}{download}", api.base))
        .header("x-api-key", "second")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    sb.shutdown().await;
}

#[tokio::test]
async fn observe_and_off_never_deny() {
    let sb = sandbox_with(|c| {
        slow(c);
        c.rate_limit = RateLimitMode::Observe;
    })
    .await;
    let api = Api::new(&sb);
    let mut last = String::new();
    for _ in 0..5 {
        let r = api.get("/api/v1/tickets?limit=1").send().await.unwrap();
        assert_eq!(r.status(), 200);
        last = r.headers()["x-ratelimit-remaining"]
            .to_str()
            .unwrap()
            .to_string();
    }
    assert_eq!(last, "0", "observe computes the headers");
    sb.shutdown().await;
    let sb = sandbox_with(|c| {
        slow(c);
        c.rate_limit = RateLimitMode::Off;
    })
    .await;
    let api = Api::new(&sb);
    for _ in 0..5 {
        let r = api.get("/api/v1/tickets?limit=1").send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["x-ratelimit-remaining"],
            "-1",
            "limiter down: fail-open"
        );
    }
    assert_eq!(sb.stats().rate_limited, 0);
    sb.shutdown().await;
}

#[tokio::test]
async fn limit_comments_extends_the_limiter_to_comments() {
    let sb = sandbox_with(|c| {
        slow(c);
        c.limit_comments = true;
    })
    .await;
    let api = Api::new(&sb);
    let path = format!("/api/v1/tickets/{}/comments", open_ticket(&sb));
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            api.post_json(&path, r#"{"comment_text":"x"}"#)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [201, 201, 201, 429]);
    sb.shutdown().await;
}
