//! Issue 2 acceptance 1 (the documented client calls), persistence with a data directory, and
//! seed determinism.

use super::*;

#[tokio::test]
async fn documented_client_calls_work_unchanged() {
    let sb = sandbox().await;
    let api = Api::new(&sb);
    let ticket = open_ticket(&sb);
    let before = sb.tickets().len();
    let body = r#"{"comment_text": "We reproduced the issue and are collecting logs now.", "is_internal": false}"#;
    let (status, headers, created) = parts(
        api.post_json(&format!("/api/v1/tickets/{ticket}/comments"), body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    assert!(
        headers.get("x-ratelimit-limit").is_none(),
        "comments are not limited"
    );
    let c = &created["data"];
    assert_eq!(
        c["comment_text"],
        "We reproduced the issue and are collecting logs now."
    );
    assert_eq!(c["note"], c["comment_text"]);
    assert_eq!(c["is_internal"], false);
    assert_eq!(c["ticket_id"], ticket.to_string());
    assert_eq!(c["author_type"], "unknown");

    let (status, _, listed) = parts(
        api.get(&format!("/api/v1/tickets/{ticket}/comments"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(listed.get("pagination").is_none());
    let list = listed["data"].as_array().unwrap();
    assert_eq!(
        list.last().unwrap()["comment_id"],
        c["comment_id"],
        "oldest first"
    );
    assert_eq!(sb.comments(ticket).len(), list.len());

    let bytes: Vec<u8> = (0..40_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (status, headers, up) = parts(
        api.upload(ticket, "incident-screenshot.png", "image/png", &bytes)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(headers["x-ratelimit-limit"], "120");
    let doc = &up["data"];
    assert_eq!(doc["document_name"], "incident-screenshot.png");
    assert_eq!(doc["mime_type"], "image/png");
    assert_eq!(doc["file_size"], "40000", "file_size is a string of digits");
    let doc_id = doc["document_id"].as_str().unwrap().to_string();

    let (status, _, docs) = parts(
        api.get(&format!("/api/v1/tickets/{ticket}/documents"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        docs["data"][0]["document_id"],
        doc_id.as_str(),
        "newest first"
    );
    assert!(docs["data"][0]["association_id"].is_string());

    let r = api
        .get(&format!("/api/v1/tickets/{ticket}/documents/{doc_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(
        h["content-disposition"],
        "attachment; filename=\"incident-screenshot.png\""
    );
    assert_eq!(h["cache-control"], "no-store");
    assert!(h.get("content-length").is_none(), "downloads are streamed");
    assert!(
        h.get("x-ratelimit-remaining").is_none(),
        "downloads carry no limiter headers"
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());
    assert_eq!(sb.document_bytes(doc_id.parse().unwrap()).unwrap(), bytes);

    let stats = sb.stats();
    assert_eq!(stats.route("POST /api/v1/tickets/{id}/comments"), 1);
    assert_eq!(
        stats.route("GET /api/v1/tickets/{id}/documents/{document_id}"),
        1
    );
    assert_eq!(stats.status(201), 2);
    assert_eq!(stats.total, 5);
    let log = sb.request_log();
    assert_eq!(log.len(), 5);
    assert_eq!(log[0].method, "POST");
    assert_eq!(log[0].status, 201);
    assert_eq!(log[0].key, "key1");
    assert_eq!(sb.tickets().len(), before);
    sb.shutdown().await;
}

#[tokio::test]
async fn comment_touches_ticket_updated_at_but_upload_does_not() {
    let sb = sandbox().await;
    let api = Api::new(&sb);
    let ticket = open_ticket(&sb);
    let updated = |api: &Api| {
        let req = api.get(&format!("/api/v1/tickets/{ticket}"));
        async move { parts(req.send().await.unwrap()).await.2["data"]["updated_at"].clone() }
    };
    let t0 = updated(&api).await;
    api.upload(ticket, "a.txt", "text/plain", b"abc")
        .send()
        .await
        .unwrap();
    assert_eq!(updated(&api).await, t0);
    api.post_json(
        &format!("/api/v1/tickets/{ticket}/comments"),
        r#"{"comment_text":"x"}"#,
    )
    .send()
    .await
    .unwrap();
    assert_ne!(updated(&api).await, t0);
    sb.shutdown().await;
}

#[tokio::test]
async fn data_dir_persists_across_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let sb = sandbox_with(|c| c.data_dir = Some(path.clone())).await;
    let api = Api::new(&sb);
    let ticket = open_ticket(&sb);
    let tickets = sb.tickets();
    let body = r#"{"comment_text":"persist me","metadata":{"op":"k1"}}"#;
    let r = api
        .post_json(&format!("/api/v1/tickets/{ticket}/comments"), body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (_, _, up) = parts(
        api.upload(
            ticket,
            "kept.bin",
            "application/octet-stream",
            b"\x00\x01kept",
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    let kept: Uuid = up["data"]["document_id"].as_str().unwrap().parse().unwrap();
    let (_, _, up) = parts(
        api.upload(ticket, "gone.txt", "text/plain", b"gone")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let gone = up["data"]["document_id"].as_str().unwrap();
    let r = api
        .http
        .delete(format!(
            "{}/api/v1/tickets/{ticket}/documents/{gone}",
            api.base
        ))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let comments = sb.comments(ticket);
    sb.shutdown().await;

    let sb = sandbox_with(|c| {
        c.data_dir = Some(path.clone());
        c.tickets = 3;
    })
    .await;
    assert_eq!(sb.tickets(), tickets, "no reseeding over existing data");
    assert_eq!(sb.comments(ticket), comments);
    assert_eq!(sb.comments(ticket).last().unwrap()["metadata"]["op"], "k1");
    let docs = sb.documents(ticket);
    assert!(docs.iter().any(|d| d["document_id"] == kept.to_string()));
    assert!(!docs.iter().any(|d| d["document_id"] == gone));
    let api = Api::new(&sb);
    let r = api
        .get(&format!("/api/v1/tickets/{ticket}/documents/{kept}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"\x00\x01kept");
    sb.shutdown().await;
}

#[tokio::test]
async fn seed_makes_data_reproducible() {
    let a = sandbox().await;
    let b = sandbox().await;
    let c = sandbox_with(|c| c.seed = 7).await;
    assert_eq!(a.tickets(), b.tickets());
    assert_ne!(a.tickets()[0].ticket_id, c.tickets()[0].ticket_id);
    let t = a.tickets();
    assert_eq!(t.len(), 25);
    assert_eq!(t[0].ticket_number, "TIC001000");
    assert_eq!(t[24].ticket_number, "TIC001024");
    assert!(t.iter().any(|t| t.is_closed) && t.iter().any(|t| !t.is_closed));
    assert!(t.iter().any(|t| !a.comments(t.ticket_id).is_empty()));
    assert!(t.iter().any(|t| !a.documents(t.ticket_id).is_empty()));
    for sb in [a, b, c] {
        sb.shutdown().await;
    }
}
