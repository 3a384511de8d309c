//! Fault injection: 503 before doing anything, drop after commit, latency, runtime changes.

use super::*;

#[tokio::test]
async fn fail_rate_answers_503_without_doing_anything() {
    let sb = sandbox_with(|c| c.fail_rate = 1.0).await;
    let api = Api::new(&sb);
    let ticket = open_ticket(&sb);
    let n = sb.comments(ticket).len();
    let r = api
        .post_json(
            &format!("/api/v1/tickets/{ticket}/comments"),
            r#"{"comment_text":"x"}"#,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(sb.comments(ticket).len(), n, "nothing committed");
    assert_eq!(
        reqwest::get(format!("{}/api/health", api.base))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(sb.stats().faults_failed, 1);
    sb.set_faults(0.0, 0.0);
    let r = api
        .post_json(
            &format!("/api/v1/tickets/{ticket}/comments"),
            r#"{"comment_text":"x"}"#,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    sb.shutdown().await;
}

#[tokio::test]
async fn drop_after_commit_closes_the_connection_with_no_response() {
    let sb = sandbox_with(|c| c.drop_after_commit = 1.0).await;
    let api = Api::new(&sb);
    let ticket = open_ticket(&sb);
    let (comments, docs) = (sb.comments(ticket).len(), sb.documents(ticket).len());
    let err = api
        .post_json(
            &format!("/api/v1/tickets/{ticket}/comments"),
            r#"{"comment_text":"dup?"}"#,
        )
        .send()
        .await
        .unwrap_err();
    assert!(
        err.status().is_none() && !err.is_timeout(),
        "a connection error, not a status: {err}"
    );
    assert_eq!(
        sb.comments(ticket).len(),
        comments + 1,
        "the create was committed"
    );
    let err = api
        .upload(ticket, "a.txt", "text/plain", b"abc")
        .send()
        .await
        .unwrap_err();
    assert!(err.status().is_none(), "{err}");
    assert_eq!(sb.documents(ticket).len(), docs + 1);
    // Reads are never dropped.
    assert_eq!(
        api.get(&format!("/api/v1/tickets/{ticket}/comments"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let stats = sb.stats();
    assert_eq!((stats.faults_dropped, stats.status(0)), (2, 2));
    assert_eq!(sb.request_log()[0].status, 0);
    sb.set_faults(0.0, 0.0);
    let r = api
        .post_json(
            &format!("/api/v1/tickets/{ticket}/comments"),
            r#"{"comment_text":"ok"}"#,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    sb.shutdown().await;
}

#[tokio::test]
async fn fault_decisions_are_reproducible_from_the_seed() {
    async fn run() -> Vec<u16> {
        let sb = sandbox_with(|c| c.fail_rate = 0.5).await;
        let api = Api::new(&sb);
        let mut out = Vec::new();
        for _ in 0..20 {
            out.push(
                api.get("/api/v1/tickets/search?query=x")
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16(),
            );
        }
        sb.shutdown().await;
        out
    }
    let (a, b) = (run().await, run().await);
    assert_eq!(a, b);
    assert!(a.contains(&503) && a.contains(&200));
}

#[tokio::test]
async fn latency_is_added_to_each_request() {
    let sb = sandbox_with(|c| c.latency_ms = Some((20, 30))).await;
    let api = Api::new(&sb);
    api.get("/api/v1/tickets/search?query=x")
        .send()
        .await
        .unwrap();
    let log = sb.request_log();
    assert!(log[0].elapsed_ms >= 20, "{:?}", log[0]);
    sb.shutdown().await;
}

/// `received()` counts a request on arrival; `in_flight()` holds it until it is answered or its
/// client goes away; a reply delay (set at runtime) commits at once and answers late, and an
/// answer nobody waits for any more is never logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_answer_commits_first_and_an_abandoned_one_is_not_logged() {
    let sb = sandbox().await;
    let api = Api::new(&sb);
    let ticket = open_ticket(&sb);
    let n = sb.comments(ticket).len();
    sb.set_reply_delay(Some((60_000, 60_000)));
    let path = format!("/api/v1/tickets/{ticket}/comments");
    let pending = tokio::spawn(api.post_json(&path, r#"{"comment_text":"late"}"#).send());
    crate::env::wait_until("the create is committed", || sb.comments(ticket).len() > n).await;
    assert_eq!((sb.received(), sb.in_flight()), (1, 1));
    assert!(sb.request_log().is_empty(), "logged before it was answered");
    pending.abort(); // the client gives up: its connection closes
    let _ = pending.await;
    crate::env::wait_until("the server lets go of it", || sb.in_flight() == 0).await;
    assert!(
        sb.request_log().is_empty(),
        "an abandoned answer was logged"
    );
    sb.set_reply_delay(None);
    let (status, _, _) = call(api.post_json(&path, r#"{"comment_text":"fast"}"#)).await;
    assert_eq!(status, 201);
    assert_eq!((sb.received(), sb.in_flight()), (2, 0));
    assert_eq!(sb.request_log().len(), 1);
    assert_eq!(sb.comments(ticket).len(), n + 2);
    sb.shutdown().await;
}
