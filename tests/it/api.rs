//! The HTTP client against a scripted loopback server: wire format, error mapping, the shared
//! 429 gate, retries and the secrecy of the API key. Streamed uploads and downloads are in
//! `transfer.rs`.

mod hostile;
mod learn;
mod resolve;
mod server;
mod transfer;

use std::time::Duration;

use alga_batch::api::{
    ApiError, ApiKey, Client, ClientConfig, NewComment, RetryClass, TicketQuery,
};
use alga_batch::exec::retry::{with_retries, RetryPolicy};
use server::{chunked, json, Reply, Server};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const KEY: &str = "sk-TOP-SECRET-4242";
const TICKET: &str = "7aea3e18-2606-4297-831c-3766e602e9b6";

fn ticket() -> Uuid {
    TICKET.parse().unwrap()
}

fn client(server: &Server, rate_per_minute: u32) -> Client {
    let mut cfg = ClientConfig::new(server.base_url.clone(), ApiKey::new(KEY.into()));
    cfg.rate_per_minute = rate_per_minute;
    cfg.tenant = Some("1208f2d7-a12f-4aa3-ba2e-aa79ef9c2a9a".into());
    Client::new(cfg).unwrap()
}

fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        base: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_wait: Duration::from_secs(600),
    }
}

fn ticket_json() -> String {
    format!(r#"{{"data":{{"ticket_id":"{TICKET}","ticket_number":"TIC001000","title":"t"}}}}"#)
}

fn comment_json() -> String {
    format!(
        r#"{{"data":{{"comment_id":"12c63145-11e4-4f29-aad3-3c22ca207c2a","ticket_id":"{TICKET}","comment_text":"hi","is_internal":false,"is_resolution":false,"metadata":{{"alga_batch_op":"k1"}}}}}}"#
    )
}

#[tokio::test]
async fn a_429_closes_the_shared_gate_for_every_caller() {
    let body = r#"{"error":{"code":"RATE_LIMITED","message":"Too many requests","details":{"retry_after_ms":400,"remaining":0}}}"#;
    let server = Server::start(vec![
        json(
            429,
            body,
            &[("retry-after", "1"), ("x-ratelimit-remaining", "0")],
        ),
        json(200, &ticket_json(), &[]),
        json(200, &ticket_json(), &[]),
    ])
    .await;
    let c = client(&server, 0);
    let e = c.get_ticket(ticket()).await.unwrap_err();
    let throttled_at = Instant::now();
    assert_eq!(e.status(), Some(429));
    assert_eq!(e.class(true), RetryClass::Retry);
    assert_eq!(
        e.retry_after(),
        Some(Duration::from_millis(400)),
        "body value wins"
    );
    let (reason, left) = c.wait_reason().expect("gate closed");
    assert_eq!(reason, "server asked to retry after 1 s");
    assert!(left <= Duration::from_millis(400));

    let (a, b) = tokio::join!(c.get_ticket(ticket()), c.get_ticket(ticket()));
    a.unwrap();
    b.unwrap();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3);
    for r in &reqs[1..] {
        assert!(
            r.at >= throttled_at + left,
            "a caller went through the closed gate"
        );
    }
    // Then the run goes on at the rate the 429 taught (one token per 400 ms), not at once.
    assert!(reqs[2].at >= reqs[1].at + Duration::from_millis(390));
    let stats = c.stats();
    assert_eq!((stats.requests, stats.throttled), (3, 1));
    assert_eq!(stats.learned_rate_per_s, Some(2.5));
    assert!(stats.waited_for_rate >= left * 2);
    assert_eq!(
        stats.last_wait_reason.as_deref(),
        Some("waiting for rate budget")
    );
}

#[tokio::test]
async fn with_retries_passes_a_429_then_succeeds() {
    let body = r#"{"error":{"code":"RATE_LIMITED","message":"Too many requests","details":{"retry_after_ms":100}}}"#;
    let server = Server::start(vec![json(429, body, &[]), json(201, &comment_json(), &[])]).await;
    let c = client(&server, 0);
    let new = NewComment {
        comment_text: "hi".into(),
        is_internal: false,
        is_resolution: false,
        suppress_contact_notifications: true,
        metadata: Some(serde_json::json!({"alga_batch_op": "k1"})),
    };
    let cancel = CancellationToken::new();
    let done = with_retries(&c, &fast_policy(), false, &cancel, || {
        c.create_comment(ticket(), &new)
    })
    .await;
    assert_eq!(done.result.unwrap().op_key(), Some("k1"));
    assert_eq!(done.attempts, 2);
    assert_eq!(c.stats().retries, 1);
    let req = &server.requests()[1];
    assert_eq!(
        req.header("content-type").as_deref(),
        Some("application/json")
    );
    let sent: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(sent["suppressContactNotifications"], true);
    assert_eq!(sent["metadata"]["alga_batch_op"], "k1");
}

#[tokio::test]
async fn a_401_is_fatal_and_not_retried() {
    let server = Server::start(vec![
        json(
            401,
            r#"{"error":{"code":"UNAUTHORIZED","message":"Invalid API key"}}"#,
            &[],
        ),
        json(401, r#"{"error":"Unauthorized: API key missing"}"#, &[]),
    ])
    .await;
    let c = client(&server, 0);
    let cancel = CancellationToken::new();
    let done = with_retries(&c, &fast_policy(), true, &cancel, || c.get_ticket(ticket())).await;
    assert_eq!((done.attempts, done.class), (1, Some(RetryClass::Fatal)));
    let msg = done.result.unwrap_err().to_string();
    assert_eq!(msg, "http 401 UNAUTHORIZED: Invalid API key");
    let e = c.list_documents(ticket()).await.unwrap_err();
    assert_eq!(e.to_string(), "http 401: Unauthorized: API key missing");
    assert_eq!(e.class(true), RetryClass::Fatal);
}

#[tokio::test]
async fn a_lost_answer_to_a_post_is_outcome_unknown_and_not_resent() {
    let server = Server::start(vec![Reply::Close]).await;
    let c = client(&server, 0);
    let new = NewComment {
        comment_text: "hi".into(),
        is_internal: true,
        is_resolution: false,
        suppress_contact_notifications: true,
        metadata: None,
    };
    let cancel = CancellationToken::new();
    let done = with_retries(&c, &fast_policy(), false, &cancel, || {
        c.create_comment(ticket(), &new)
    })
    .await;
    let err = done.result.unwrap_err();
    assert!(matches!(err, ApiError::NoResponse(_)), "{err:?}");
    assert_eq!(
        (done.attempts, done.class),
        (1, Some(RetryClass::OutcomeUnknown))
    );
    assert_eq!(server.requests().len(), 1, "the create must not be re-sent");
}

#[tokio::test]
async fn a_create_cancelled_after_sending_is_outcome_unknown() {
    let server = Server::start(vec![Reply::Hang]).await;
    let c = client(&server, 0);
    let new = NewComment {
        comment_text: "hi".into(),
        is_internal: false,
        is_resolution: false,
        suppress_contact_notifications: true,
        metadata: None,
    };
    let cancel = CancellationToken::new();
    let policy = fast_policy();
    let run = with_retries(&c, &policy, false, &cancel, || {
        c.create_comment(ticket(), &new)
    });
    let stop = async {
        server.wait_for_requests(1).await;
        cancel.cancel();
    };
    let (done, ()) = tokio::join!(run, stop);
    assert!(matches!(done.result, Err(ApiError::Cancelled)));
    assert_eq!(
        (done.attempts, done.class),
        (1, Some(RetryClass::OutcomeUnknown))
    );
}

#[tokio::test]
async fn a_lost_answer_to_a_get_is_retried() {
    let server = Server::start(vec![Reply::Close, json(200, &ticket_json(), &[])]).await;
    let c = client(&server, 0);
    let cancel = CancellationToken::new();
    let done = with_retries(&c, &fast_policy(), true, &cancel, || c.get_ticket(ticket())).await;
    assert_eq!(
        done.result.unwrap().ticket_number.as_deref(),
        Some("TIC001000")
    );
    assert_eq!(done.attempts, 2);
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let c = Client::new(ClientConfig::new(
        format!("http://{addr}"),
        ApiKey::new(KEY.into()),
    ))
    .unwrap();
    let e = c.get_ticket(ticket()).await.unwrap_err();
    assert!(matches!(e, ApiError::Connect(_)), "{e:?}");
    assert_eq!(e.class(false), RetryClass::Retry);
    assert!(!format!("{e} {e:?}").contains(KEY));
}

#[tokio::test]
async fn the_api_key_never_appears_in_errors_or_debug_output() {
    let echo = format!(r#"{{"error":{{"code":"VALIDATION_ERROR","message":"bad header {KEY}"}}}}"#);
    let server = Server::start(vec![
        json(400, &echo, &[]),
        json(500, &format!("raw {KEY}"), &[]),
    ])
    .await;
    let cfg = ClientConfig::new(server.base_url.clone(), ApiKey::new(KEY.into()));
    let cfg_debug = format!("{cfg:?}");
    let c = Client::new(cfg).unwrap();
    let e1 = c.get_ticket(ticket()).await.unwrap_err();
    let e2 = c.list_documents(ticket()).await.unwrap_err();
    assert_eq!(
        server.requests()[0].header("x-api-key").as_deref(),
        Some(KEY)
    );
    let shown = format!(
        "{e1} {e1:?} {e2} {e2:?} {} {c:?} {cfg_debug} {:?}",
        e1.one_line(),
        c.stats()
    );
    assert!(!shown.contains(KEY), "{shown}");
    assert!(shown.contains("[redacted]"));
}

#[tokio::test]
async fn delete_reads_data_null_and_an_empty_405_is_understood() {
    let server = Server::start(vec![
        json(200, r#"{"data":null}"#, &[]),
        chunked(405, &[], &[]),
    ])
    .await;
    let c = client(&server, 0);
    let doc = Uuid::from_u128(5);
    c.delete_document(ticket(), doc).await.unwrap();
    let e = c.delete_document(ticket(), doc).await.unwrap_err();
    assert_eq!(e.to_string(), "http 405: method not allowed");
    assert_eq!(e.class(true), RetryClass::Permanent);
    let req = &server.requests()[0];
    assert!(req
        .head
        .starts_with(&format!("DELETE /api/v1/tickets/{TICKET}/documents/{doc} ")));
    assert_eq!(
        req.header("x-tenant-id").as_deref(),
        Some("1208f2d7-a12f-4aa3-ba2e-aa79ef9c2a9a")
    );
}

#[tokio::test]
async fn a_low_server_budget_spaces_the_next_request() {
    let low = [("x-ratelimit-remaining", "0"), ("x-ratelimit-limit", "120")];
    let down = [
        ("x-ratelimit-remaining", "-1"),
        ("x-ratelimit-limit", "120"),
    ];
    let server = Server::start(vec![
        json(200, r#"{"data":[]}"#, &down),
        json(200, r#"{"data":[]}"#, &low),
        json(200, r#"{"data":[]}"#, &[]),
    ])
    .await;
    // 600/min: one server token per 100 ms by our reckoning.
    let c = client(&server, 600);
    c.list_documents(ticket()).await.unwrap();
    assert!(
        c.wait_reason().is_none(),
        "remaining -1 means unknown, not empty"
    );
    assert_eq!(c.stats().waited_for_rate, Duration::ZERO);
    let before = Instant::now();
    c.list_documents(ticket()).await.unwrap();
    c.list_documents(ticket()).await.unwrap();
    assert!(before.elapsed() >= Duration::from_millis(100));
    assert_eq!(
        c.stats().last_wait_reason.as_deref(),
        Some("waiting for rate budget")
    );
}

#[tokio::test]
async fn list_queries_and_comment_paging_are_encoded() {
    let page = r#"{"data":[],"pagination":{"page":1,"limit":100,"total":0,"totalPages":0,"hasNext":false,"hasPrev":false}}"#;
    let server = Server::start(vec![json(200, page, &[]), json(200, r#"{"data":[]}"#, &[])]).await;
    let c = client(&server, 0);
    let q = TicketQuery {
        page: 1,
        limit: 100,
        fields: Some("ticket_id,ticket_number".into()),
        ticket_number: Some("TIC 1".into()),
        ..Default::default()
    };
    assert_eq!(c.list_tickets(&q).await.unwrap().pagination.total, 0);
    assert!(c
        .list_comments(ticket(), 200, 400)
        .await
        .unwrap()
        .is_empty());
    let reqs = server.requests();
    let line = reqs[0].head.lines().next().unwrap().to_string();
    assert!(line.contains("fields=ticket_id%2Cticket_number"), "{line}");
    assert!(line.contains("ticket_number=TIC+1"), "{line}");
    let line = reqs[1].head.lines().next().unwrap().to_string();
    assert!(line.contains("limit=200&offset=400&order=asc"), "{line}");
}
