//! Every status code of the contract that applies to the comment and document endpoints.

use super::*;

pub(crate) const UNKNOWN: &str = "00000000-0000-4000-8000-000000000000";

#[tokio::test]
async fn authentication_failures_are_401() {
    let sb = sandbox().await;
    let api = Api::new(&sb);
    let ticket = open_ticket(&sb);
    let url = format!("{}/api/v1/tickets/{ticket}/comments", api.base);
    let (s, _, b) = parts(api.http.get(&url).send().await.unwrap()).await;
    assert_eq!(
        (s, b),
        (
            401,
            serde_json::json!({"error": "Unauthorized: API key missing"})
        )
    );
    let (s, _, b) = parts(
        api.http
            .get(&url)
            .header("x-api-key", "")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, b["error"].is_string()), (401, true));
    let (s, _, b) = parts(
        api.http
            .get(&url)
            .header("x-api-key", "wrong")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, code(&b), message(&b)),
        (401, "UNAUTHORIZED", "Invalid API key")
    );
    let wrong_tenant = api
        .get(&format!("/api/v1/tickets/{ticket}/comments"))
        .header("x-tenant-id", UNKNOWN);
    let (s, _, b) = parts(wrong_tenant.send().await.unwrap()).await;
    assert_eq!((s, message(&b)), (401, "Invalid API key"));
    let tenant = sb.tenant().to_string();
    let right = api
        .get(&format!("/api/v1/tickets/{ticket}/documents"))
        .header("x-tenant-id", tenant);
    assert_eq!(right.send().await.unwrap().status(), 200);
    sb.shutdown().await;
}

#[tokio::test]
async fn ticket_id_format_and_unknown_tickets() {
    let sb = sandbox().await;
    let api = Api::new(&sb);
    for path in [
        "/api/v1/tickets/not-a-uuid/comments",
        "/api/v1/tickets/TIC001000",
        "/api/v1/tickets/not-a-uuid/documents",
    ] {
        let (s, _, b) = parts(api.get(path).send().await.unwrap()).await;
        assert_eq!(
            (s, code(&b), message(&b)),
            (400, "VALIDATION_ERROR", "Invalid ticket ID format"),
            "{path}"
        );
        assert!(b["error"].get("details").is_none());
    }
    for path in ["comments", "documents"] {
        let (s, _, b) = parts(
            api.get(&format!("/api/v1/tickets/{UNKNOWN}/{path}"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (s, code(&b), message(&b)),
            (404, "NOT_FOUND", "ticket not found")
        );
    }
    let unknown: Uuid = UNKNOWN.parse().unwrap();
    let (s, _, b) = parts(
        api.post_json(
            &format!("/api/v1/tickets/{UNKNOWN}/comments"),
            r#"{"comment_text":"x"}"#,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!((s, message(&b)), (404, "ticket not found"));
    let (s, _, _) = parts(
        api.upload(unknown, "a.txt", "text/plain", b"a")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 404);
    let (s, _, b) = parts(
        api.get(&format!("/api/v1/tickets/{UNKNOWN}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, message(&b)), (404, "ticket not found"));
    sb.shutdown().await;
}

#[tokio::test]
async fn comment_body_rules() {
    let sb = sandbox().await;
    let api = Api::new(&sb);
    let ticket = open_ticket(&sb);
    let path = format!("/api/v1/tickets/{ticket}/comments");
    let post = |body: &str| api.post_json(&path, body).send();
    let (s, _, b) = parts(post(r#"{"comment_text": "unterminated"#).await.unwrap()).await;
    assert_eq!(
        (s, code(&b)),
        (500, "INTERNAL_ERROR"),
        "malformed JSON is a 500"
    );
    let (s, _, b) = parts(post("").await.unwrap()).await;
    assert_eq!(
        (s, code(&b)),
        (500, "INTERNAL_ERROR"),
        "empty body is a 500"
    );
    let (s, _, b) = parts(post(r#"{"is_internal":false}"#).await.unwrap()).await;
    assert_eq!((s, message(&b)), (400, "Validation failed"));
    assert_eq!(b["error"]["details"][0]["path"][0], "comment_text");
    assert_eq!(b["error"]["details"][0]["message"], "Required");
    let (s, _, b) = parts(post(r#"{"comment_text":""}"#).await.unwrap()).await;
    assert_eq!(
        (s, b["error"]["details"].as_array().unwrap().len()),
        (400, 2)
    );
    let (s, _, b) = parts(
        post(r#"{"comment_text":"x","is_internal":"yes"}"#)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, b["error"]["details"][0]["message"].as_str()),
        (400, Some("Expected boolean, received string"))
    );
    let long = format!(r#"{{"comment_text":"{}"}}"#, "a".repeat(5001));
    let (s, _, b) = parts(post(&long).await.unwrap()).await;
    assert_eq!(
        (s, b["error"]["details"][0]["message"].as_str()),
        (400, Some("Comment text is too long (max 5000 characters)"))
    );
    let ok_long = format!(r#"{{"comment_text":"{}"}}"#, "é".repeat(5000));
    assert_eq!(post(&ok_long).await.unwrap().status(), 201);
    let (s, _, _) = parts(
        post(r#"{"comment_text":"x","suppressInternalNotifications":true}"#)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 400);
    // Validation runs before the ticket lookup.
    let r = api
        .post_json(
            &format!("/api/v1/tickets/{UNKNOWN}/comments"),
            r#"{"comment_text":"   "}"#,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Unknown keys are dropped; time_spent is accepted and discarded; wrong content type is fine.
    let r = api
        .http
        .post(format!("{}{path}", api.base))
        .header("x-api-key", KEY)
        .header("content-type", "text/plain")
        .body(r#"{"comment_text":"extra","bogus":1,"is_resolution":true,"time_spent":5}"#)
        .send()
        .await
        .unwrap();
    let (s, _, b) = parts(r).await;
    assert_eq!((s, b["data"]["is_resolution"].as_bool()), (201, Some(true)));
    assert!(b["data"].get("time_spent").is_none() && b["data"].get("bogus").is_none());
    sb.shutdown().await;
}

#[tokio::test]
async fn replies_and_edits() {
    let sb = sandbox_with(|c| c.api_keys = vec![KEY.into(), "other-key".into()]).await;
    let api = Api::new(&sb);
    let ticket = open_ticket(&sb);
    let path = format!("/api/v1/tickets/{ticket}/comments");
    let (_, _, parent) = parts(
        api.post_json(&path, r#"{"comment_text":"parent","is_internal":true}"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let pid = parent["data"]["comment_id"].as_str().unwrap().to_string();
    let reply =
        format!(r#"{{"comment_text":"reply","is_internal":false,"parent_comment_id":"{pid}"}}"#);
    let (s, _, b) = parts(api.post_json(&path, &reply).send().await.unwrap()).await;
    assert_eq!(s, 201);
    assert_eq!(
        b["data"]["is_internal"], true,
        "a reply inherits its thread's visibility"
    );
    assert_eq!(b["data"]["thread_id"], parent["data"]["thread_id"]);
    let orphan = format!(r#"{{"comment_text":"r","parent_comment_id":"{UNKNOWN}"}}"#);
    let (s, _, b) = parts(api.post_json(&path, &orphan).send().await.unwrap()).await;
    assert_eq!((s, message(&b)), (404, "Parent comment not found"));

    let put = |key: &str, cid: &str, body: &str| {
        api.http
            .put(format!("{}{path}/{cid}", api.base))
            .header("x-api-key", key)
            .body(body.to_string())
            .send()
    };
    let (s, _, b) = parts(
        put(
            KEY,
            &pid,
            r#"{"comment_text":"edited","is_internal":false}"#,
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (
            s,
            b["data"]["comment_text"].as_str(),
            b["data"]["is_internal"].as_bool()
        ),
        (200, Some("edited"), Some(true))
    );
    let (s, _, b) = parts(
        put("other-key", &pid, r#"{"comment_text":"hijack"}"#)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, message(&b)),
        (400, "You can only edit your own comments")
    );
    let (s, _, b) = parts(put(KEY, UNKNOWN, r#"{"comment_text":"x"}"#).await.unwrap()).await;
    assert_eq!((s, message(&b)), (404, "Comment not found"));
    let (s, _, _) = parts(put(KEY, &pid, "{oops").await.unwrap()).await;
    assert_eq!(s, 500);
    let r = api
        .http
        .delete(format!("{}{path}/{pid}", api.base))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert!(r.text().await.unwrap().is_empty(), "405 has an empty body");
    assert_eq!(
        sb.comments(ticket)
            .iter()
            .filter(|c| c["comment_id"] == pid.as_str())
            .count(),
        1
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn comment_list_parameters() {
    let sb = sandbox().await;
    let api = Api::new(&sb);
    let ticket = open_ticket(&sb);
    let path = format!("/api/v1/tickets/{ticket}/comments");
    for i in 0..5 {
        api.post_json(&path, &format!(r#"{{"comment_text":"n{i}"}}"#))
            .send()
            .await
            .unwrap();
    }
    let all = sb.comments(ticket);
    let (_, _, b) = parts(
        api.get(&format!("{path}?limit=2&offset=1"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let page: Vec<&Value> = b["data"].as_array().unwrap().iter().collect();
    assert_eq!(page.len(), 2);
    assert_eq!(page[0]["comment_id"], all[1]["comment_id"]);
    let (_, _, b) = parts(
        api.get(&format!("{path}?order=desc&limit=1"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        b["data"][0]["comment_id"],
        all.last().unwrap()["comment_id"]
    );
    let (_, _, b) = parts(
        api.get(&format!("{path}?content_format=markdown"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        b["data"][0].get("comment_text").is_none() && b["data"][0]["markdown_content"].is_null()
    );
    for bad in [
        "limit=0",
        "limit=201",
        "limit=abc",
        "offset=-1",
        "order=up",
        "content_format=html",
    ] {
        let (s, _, b) = parts(api.get(&format!("{path}?{bad}")).send().await.unwrap()).await;
        assert_eq!((s, message(&b)), (400, "Validation failed"), "{bad}");
        assert_eq!(b["error"]["details"].as_array().unwrap().len(), 1);
    }
    sb.shutdown().await;
}
