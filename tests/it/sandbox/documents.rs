//! Document statuses and quirks: multipart parsing like undici, names stored as sent and
//! percent-encoded on download, size limit, 404s, delete, 405, and read-only keys.

use super::statuses::UNKNOWN;
use super::*;

fn detail(b: &Value) -> Option<&str> {
    b["error"]["details"][0]["message"].as_str()
}

#[tokio::test]
async fn multipart_parsing_like_the_real_server() {
    let sb = sandbox().await;
    let api = Api::new(&sb);
    let t = open_ticket(&sb);
    let (s, _, b) = call(api.raw_upload(t, r#"form-data; name="other"; filename="a.txt""#)).await;
    assert_eq!(
        (s, detail(&b)),
        (400, Some("file is required")),
        "no file field"
    );
    let (s, _, b) = call(api.raw_upload(t, r#"form-data; name="file""#)).await;
    assert_eq!(
        (s, detail(&b)),
        (400, Some("file is required")),
        "no filename"
    );
    let star = "form-data; name=\"file\"; filename*=utf-8''r%C3%A9sum%C3%A9.txt";
    let (s, _, b) = call(api.raw_upload(t, star)).await;
    assert_eq!((s, code(&b)), (500, "INTERNAL_ERROR"), "filename* only");
    let both = "form-data; name=\"file\"; filename=\"a.txt\"; filename*=utf-8''a.txt";
    assert_eq!(call(api.raw_upload(t, both)).await.0, 500, "both forms");
    let docs = format!("/api/v1/tickets/{t}/documents");
    let (s, _, b) = call(api.post_json(&docs, "{}")).await;
    assert_eq!((s, code(&b)), (500, "INTERNAL_ERROR"), "not multipart");
    let r = api
        .http
        .put(format!("{}{docs}", api.base))
        .header("x-api-key", KEY);
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert!(r.text().await.unwrap().is_empty(), "405 has an empty body");
    assert_eq!(sb.stats().route("PUT /api/v1/tickets/{id}/documents"), 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn names_are_stored_as_sent_and_encoded_on_download() {
    let sb = sandbox_with(|c| c.max_upload_bytes = 1000).await;
    let api = Api::new(&sb);
    let t = open_ticket(&sb);
    let pct = r#"form-data; name="file"; filename="r%C3%A9sum%C3%A9-pct.txt""#;
    let (s, _, b) = call(api.raw_upload(t, pct)).await;
    assert_eq!(
        (s, b["data"]["document_name"].as_str()),
        (201, Some("r%C3%A9sum%C3%A9-pct.txt"))
    );
    let id = b["data"]["document_id"].as_str().unwrap().to_string();
    let (_, h, _) = call(api.get(&format!("/api/v1/tickets/{t}/documents/{id}"))).await;
    assert_eq!(
        h["content-disposition"],
        "attachment; filename=\"r%25C3%25A9sum%25C3%25A9-pct.txt\""
    );
    let (s, _, b) = call(api.upload(t, "résumé – ünïcode.txt", "text/plain", b"u")).await;
    assert_eq!(
        (s, b["data"]["document_name"].as_str()),
        (201, Some("résumé – ünïcode.txt"))
    );
    let id = b["data"]["document_id"].as_str().unwrap().to_string();
    let (_, h, body) = call(api.get(&format!("/api/v1/tickets/{t}/documents/{id}"))).await;
    assert_eq!(
        h["content-disposition"],
        "attachment; filename=\"r%C3%A9sum%C3%A9%20%E2%80%93%20%C3%BCn%C3%AFcode.txt\""
    );
    assert_eq!(body, "u");
    let hostile = sb.add_document_raw(t, "../../evil \"x\".txt", "text/plain", b"evil");
    let (_, h, _) = call(api.get(&format!("/api/v1/tickets/{t}/documents/{hostile}"))).await;
    assert_eq!(
        h["content-disposition"],
        "attachment; filename=\"..%2F..%2Fevil%20%22x%22.txt\""
    );
    let (s, _, b) = call(api.upload(t, "empty.txt", "text/plain", b"")).await;
    assert_eq!(
        (s, b["data"]["file_size"].as_str()),
        (201, Some("0")),
        "empty files are accepted"
    );
    let n = sb.documents(t).len();
    let (s, _, b) = call(api.upload(
        t,
        "big.bin",
        "application/octet-stream",
        &vec![7u8; 3_000_000],
    ))
    .await;
    assert_eq!(
        (s, code(&b)),
        (500, "INTERNAL_ERROR"),
        "over the maximum size"
    );
    assert_eq!(sb.documents(t).len(), n, "nothing stored");
    sb.shutdown().await;
}

#[tokio::test]
async fn download_and_delete_statuses() {
    let sb = sandbox().await;
    let api = Api::new(&sb);
    let t = open_ticket(&sb);
    let base = format!("/api/v1/tickets/{t}/documents");
    let (_, _, b) = call(api.upload(t, "a.txt", "text/plain", b"a")).await;
    let id = b["data"]["document_id"].as_str().unwrap().to_string();
    let (s, _, b) = call(api.get(&format!("{base}/{UNKNOWN}"))).await;
    assert_eq!((s, message(&b)), (404, "Document not found"));
    let other = sb
        .tickets()
        .iter()
        .find(|x| x.ticket_id != t)
        .unwrap()
        .ticket_id;
    let (s, _, _) = call(api.get(&format!("/api/v1/tickets/{other}/documents/{id}"))).await;
    assert_eq!(s, 404, "document of another ticket");
    assert_eq!(call(api.get(&format!("{base}/not-a-uuid"))).await.0, 500);
    let del = || {
        api.http
            .delete(format!("{}{base}/{id}", api.base))
            .header("x-api-key", KEY)
    };
    let (s, h, b) = call(del()).await;
    assert_eq!((s, b), (200, serde_json::json!({"data": null})));
    assert!(h.get("x-ratelimit-remaining").is_some());
    let (s, h, b) = call(del()).await;
    assert_eq!(
        (s, message(&b)),
        (404, "Document not found"),
        "deleting again"
    );
    assert!(
        h.get("x-ratelimit-remaining").is_none(),
        "errors carry no limiter headers"
    );
    assert_eq!(call(api.get(&format!("{base}/{id}"))).await.0, 404);
    let (s, h, _) = call(api.get(&format!("/api/v1/tickets/{t}/nonexistent"))).await;
    assert_eq!(s, 404);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    let r = api
        .http
        .request(reqwest::Method::OPTIONS, format!("{}{base}", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "CORS preflight needs no key");
    assert!(r.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("X-API-Key"));
    sb.shutdown().await;
}

#[tokio::test]
async fn readonly_keys_get_403_on_updates() {
    let sb = sandbox_with(|c| c.readonly_keys = vec!["reader".into()]).await;
    let api = Api::new(&sb);
    let ticket = open_ticket(&sb);
    let url = |p: &str| format!("{}/api/v1/tickets/{ticket}/{p}", api.base);
    let r = api
        .http
        .post(url("comments"))
        .header("x-api-key", "reader")
        .body(r#"{"comment_text":"x"}"#)
        .send()
        .await
        .unwrap();
    let (s, _, b) = parts(r).await;
    assert_eq!(
        (s, code(&b), message(&b)),
        (403, "FORBIDDEN", "Permission denied: Cannot update ticket")
    );
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"x".to_vec()).file_name("a.txt"),
    );
    let r = api
        .http
        .post(url("documents"))
        .header("x-api-key", "reader")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let doc = sb.documents(ticket);
    if let Some(d) = doc.first() {
        let id = d["document_id"].as_str().unwrap();
        let r = api
            .http
            .delete(url(&format!("documents/{id}")))
            .header("x-api-key", "reader")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
    }
    let r = api
        .http
        .get(url("comments"))
        .header("x-api-key", "reader")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(sb.request_log()[0].key, "key2");
    sb.shutdown().await;
}
