//! The ticket list (parameters, filters, envelope), get by id and search.

use super::*;

#[tokio::test]
async fn list_envelope_paging_sorting_and_validation() {
    let sb = sandbox().await;
    let api = Api::new(&sb);
    let (s, h, b) = parts(api.get("/api/v1/tickets").send().await.unwrap()).await;
    assert_eq!(
        (s, h["x-ratelimit-remaining"].to_str().unwrap()),
        (200, "119")
    );
    assert_eq!(
        b["pagination"],
        serde_json::json!({"page":1,"limit":25,"total":25,"totalPages":1,"hasNext":false,"hasPrev":false})
    );
    assert_eq!(b["meta"]["sort"], "created_at");
    assert_eq!(b["meta"]["order"], "desc");
    assert_eq!(
        b["data"][0]["ticket_number"], "TIC001024",
        "newest entered first"
    );
    let (_, _, b) = parts(
        api.get("/api/v1/tickets?limit=10&page=3&sort=ticket_number&order=asc")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(b["data"][0]["ticket_number"], "TIC001020");
    assert_eq!(b["pagination"]["hasNext"], false);
    assert_eq!(b["pagination"]["hasPrev"], true);
    assert_eq!(b["pagination"]["totalPages"], 3);
    let (_, _, b) = parts(
        api.get("/api/v1/tickets?fields=ticket_id,ticket_number&limit=1")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let row = b["data"][0].as_object().unwrap();
    assert!(
        row.contains_key("ticket_number")
            && row.contains_key("board_id")
            && !row.contains_key("title")
    );
    for bad in [
        "limit=101",
        "limit=0",
        "page=0",
        "page=abc",
        "order=sideways",
        "is_open=yes",
        "updated_from=2026-01-05T10:00:00%2B02:00",
        "updated_from=2026-01-05",
    ] {
        let (s, _, b) = parts(
            api.get(&format!("/api/v1/tickets?{bad}"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((s, message(&b)), (400, "Query validation failed"), "{bad}");
    }
    let (_, _, b) = parts(api.get("/api/v1/tickets?limit=101").send().await.unwrap()).await;
    assert_eq!(b["error"]["details"][0]["code"], "too_big");
    let (s, _, b) = parts(api.get("/api/v1/tickets?fields=nope").send().await.unwrap()).await;
    assert_eq!((s, message(&b)), (400, "Unknown fields requested: nope"));
    let (s, _, b) = parts(
        api.get("/api/v1/tickets?sort=no_such_column")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, code(&b)), (500, "INTERNAL_CONFIGURATION"));
    let (_, _, b) = parts(
        api.get("/api/v1/tickets?updated_since=2099-01-01T00:00:00Z")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(b["pagination"]["total"], 25, "unknown params are ignored");
    sb.shutdown().await;
}

#[tokio::test]
async fn filters_match_like_the_server() {
    let sb = sandbox().await;
    let api = Api::new(&sb);
    sb.add_ticket("TIC0010001", "near miss", false);
    let total = |q: String| {
        let req = api.get(&format!("/api/v1/tickets?{q}"));
        async move { parts(req.send().await.unwrap()).await.2 }
    };
    let b = total("ticket_number=tic001000&sort=ticket_number&order=asc".into()).await;
    let numbers: Vec<&str> = b["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ticket_number"].as_str().unwrap())
        .collect();
    assert_eq!(
        numbers,
        ["TIC001000", "TIC0010001"],
        "case-insensitive substring"
    );
    assert_eq!(b["meta"]["filters"]["ticket_number"], "tic001000");
    let b = total("ticket_number=TIC00100_&limit=100".into()).await;
    assert_eq!(
        b["pagination"]["total"], 11,
        "underscore is a wildcard: TIC001000..9 and TIC0010001"
    );
    let closed = sb.tickets().iter().filter(|t| t.is_closed).count();
    let b = total("is_closed=true".into()).await;
    assert_eq!(b["pagination"]["total"], closed as u64);
    assert_eq!(b["meta"]["filters"]["is_closed"], true);
    let b = total("is_open=true".into()).await;
    assert_eq!(b["pagination"]["total"], (26 - closed) as u64);
    let b = total("is_open=false".into()).await;
    assert_eq!(b["pagination"]["total"], 26, "false is a no-op");
    let b = total("updated_from=2099-01-01T00:00:00Z".into()).await;
    assert_eq!(b["pagination"]["total"], 0);
    let before = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let ticket = sb.tickets()[3].ticket_id;
    api.post_json(
        &format!("/api/v1/tickets/{ticket}/comments"),
        r#"{"comment_text":"touch"}"#,
    )
    .send()
    .await
    .unwrap();
    let b = total(format!("updated_from={before}&fields=ticket_id")).await;
    let ids: Vec<&str> = b["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ticket_id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&ticket.to_string().as_str()));
    sb.shutdown().await;
}

#[tokio::test]
async fn get_by_id_and_search() {
    let sb = sandbox().await;
    let api = Api::new(&sb);
    let t = sb.tickets()[0].clone();
    let (s, h, b) = parts(
        api.get(&format!("/api/v1/tickets/{}", t.ticket_id))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, b["data"]["ticket_number"].as_str()),
        (200, Some("TIC001000"))
    );
    assert!(h.get("x-ratelimit-limit").is_some());
    assert!(b["data"]["documents"].is_array());
    let (s, h, b) = parts(
        api.get("/api/v1/tickets/search?query=tic00100&fields=ticket_number")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    assert!(
        h.get("x-ratelimit-limit").is_none(),
        "search is not limited"
    );
    assert!(b.get("pagination").is_none());
    let open = b["data"].as_array().unwrap().len();
    let (_, _, b) = parts(api.get("/api/v1/tickets/search?query=tic00100&fields=ticket_number&include_closed=true&limit=100").send().await.unwrap()).await;
    assert_eq!(b["data"].as_array().unwrap().len(), 10);
    assert!(open < 10, "closed tickets are excluded by default");
    let (s, _, b) = parts(api.get("/api/v1/tickets/search").send().await.unwrap()).await;
    assert_eq!(
        (s, message(&b), b["error"]["details"][0]["message"].as_str()),
        (400, "Query validation failed", Some("Required"))
    );
    sb.shutdown().await;
}
