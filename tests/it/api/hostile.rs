//! Hostile and broken server answers (issue 14, TESTING.md): an HTML page instead of JSON, a
//! truncated body, a 200 of the wrong shape, a redirect to another host, an enormous
//! Retry-After, a response trickled a byte at a time, and a TLS error.

use super::server::{json, Reply, Server};
use super::{client, comment_json, fast_policy, ticket, TICKET};
use alga_batch::api::{ApiError, ApiKey, Client, ClientConfig};
use alga_batch::exec::retry::with_retries;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn html(status: u16) -> Reply {
    let body = "<!DOCTYPE html>\n<html><head><title>Sign in to Example Proxy</title></head><body>...</body></html>";
    Reply::Raw(
        format!(
            "HTTP/1.1 {status} X\r\ncontent-type: text/html\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

#[tokio::test]
async fn an_html_page_instead_of_json_is_one_clear_line() {
    let server = Server::start(vec![html(200), html(502)]).await;
    let c = client(&server, 0);
    let err = c.list_documents(ticket()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "unexpected response: cannot read document list: the server sent an HTML page (title: Sign in to Example Proxy) instead of JSON: is --base-url the API server?"
    );
    let err = c.list_documents(ticket()).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("http 502: an HTML page (title: Sign in to Example Proxy)"),
        "{err}"
    );
}

#[tokio::test]
async fn a_truncated_body_is_retried_for_a_read_and_then_succeeds() {
    let cut = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"data\":[".to_vec();
    let server = Server::start(vec![Reply::Cut(cut), json(200, r#"{"data":[]}"#, &[])]).await;
    // The first connection closes after the truncated answer: the retry uses a new one.
    let c = client(&server, 0);
    let done = with_retries(&c, &fast_policy(), true, &CancellationToken::new(), || {
        c.list_documents(ticket())
    })
    .await;
    assert!(done.result.unwrap().is_empty());
    assert_eq!(done.attempts, 2);
}

#[tokio::test]
async fn a_200_of_the_wrong_shape_is_a_decode_error_that_names_what() {
    let server = Server::start(vec![json(200, r#"{"data":{"surprise":true}}"#, &[])]).await;
    let c = client(&server, 0);
    let done = with_retries(&c, &fast_policy(), true, &CancellationToken::new(), || {
        c.list_documents(ticket())
    })
    .await;
    let err = done.result.unwrap_err();
    assert!(matches!(err, ApiError::Decode(_)), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("unexpected response: cannot read document list: invalid type"),
        "{err}"
    );
    assert_eq!(done.attempts, 1, "a wrong shape does not fix itself");
}

#[tokio::test]
async fn a_redirect_to_another_host_is_not_followed_and_the_key_stays_home() {
    let elsewhere = Server::start(vec![json(200, r#"{"data":[]}"#, &[])]).await;
    let to = format!("{}/api/v1/tickets/{TICKET}/documents", elsewhere.base_url);
    let server = Server::start(vec![json(302, "", &[("location", &to)])]).await;
    let c = client(&server, 0);
    let err = c.list_documents(ticket()).await.unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("redirected to {to}; redirects are not followed")),
        "{err}"
    );
    assert!(elsewhere.requests().is_empty(), "the redirect was followed");
}

#[tokio::test]
async fn an_enormous_retry_after_is_capped_and_pauses_at_most_five_minutes() {
    let server = Server::start(vec![json(
        429,
        r#"{"error":"slow down"}"#,
        &[("retry-after", "18446744073709551615")],
    )])
    .await;
    let c = client(&server, 0);
    let err = c.list_documents(ticket()).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(300)));
    let (_, left) = c.wait_reason().expect("every worker pauses");
    assert!(left <= Duration::from_secs(300), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_answer_to_a_create_times_out_then_is_reconciled_not_resent() {
    use alga_batch::exec::{
        self, Cancel, ExecConfig, Prior, Progress, ProgressMode, Reconciler, Task,
    };
    use alga_batch::job::{CommentSpec, TicketRef};
    use alga_batch::plan::{OpKind, Operation};
    let created = comment_json().replace("\"k1\"", "\"c-trickle\"");
    let answer = format!(
        "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{created}",
        created.len()
    );
    let listing = format!("{{\"data\":[{}]}}", &created[8..created.len() - 1]);
    let server = Server::start(vec![
        Reply::Trickle(answer.into_bytes(), Duration::from_millis(20)),
        json(200, &listing, &[]),
    ])
    .await;
    let mut cfg = ClientConfig::new(server.base_url.clone(), ApiKey::new("k".into()));
    cfg.rate_per_minute = 0;
    cfg.create_timeout = Duration::from_millis(500);
    let c = Client::new(cfg).unwrap();
    let op = Operation {
        op_key: "c-trickle".into(),
        source: "job.csv:2".into(),
        ticket: TicketRef::Number("TIC001000".into()),
        ticket_id: Some(ticket()),
        blocked: None,
        extra: Default::default(),
        kind: OpKind::Comment(CommentSpec {
            text: "hi".into(),
            is_internal: false,
            is_resolution: false,
        }),
    };
    let dir = tempfile::tempdir().unwrap();
    let (journal, handle) = alga_batch::journal::open(&dir.path().join("r.csv")).unwrap();
    let cfg = ExecConfig {
        concurrency: 1,
        retry: fast_policy(),
        notify: false,
        job_name: "job".into(),
    };
    let task = Task {
        op,
        ticket_id: Ok(ticket()),
        prior: Prior::Fresh,
    };
    let progress = Progress::start(1, "importing", ProgressMode::Quiet, &c);
    let out = exec::execute(
        vec![task],
        &c,
        &cfg,
        &Cancel::new(),
        &handle,
        &Reconciler::new([]),
        &progress,
    )
    .await;
    drop(handle);
    journal.finish(&["c-trickle".to_string()]).await.unwrap();
    assert_eq!(
        out.outcomes,
        vec![alga_batch::journal::Outcome::Existing],
        "{:?}",
        out.problems
    );
    let methods: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r.head.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(
        methods,
        ["POST", "GET"],
        "timed out, then looked up, never re-sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_error_stops_the_run_with_exit_3_and_sends_nothing() {
    // A server that answers a TLS handshake with plain HTTP.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut sock, _)) = listener.accept().await {
            let _ = sock
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("job.csv"),
        "ticket,comment_text\nTIC001000,hi\n",
    )
    .unwrap();
    let base = format!("https://127.0.0.1:{port}");
    let out = crate::env::binary(
        dir.path(),
        &base,
        &["run", "job.csv", "--results", "r.csv", "--max-retries", "0"],
    )
    .output()
    .await
    .unwrap();
    let text = crate::env::text(&out);
    assert_eq!(crate::env::code(&out), 3, "{text}");
    assert!(
        text.contains(&format!("alga-batch: server unreachable at {base}")),
        "{text}"
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("alga-batch:"))
            .count(),
        1,
        "{text}"
    );
    assert!(
        !dir.path().join("r.csv").exists() || {
            let rows = std::fs::read_to_string(dir.path().join("r.csv")).unwrap();
            rows.lines().count() <= 1
        }
    );
}
