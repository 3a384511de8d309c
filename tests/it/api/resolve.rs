//! Ticket-number resolution against the scripted server: exact matching over substring
//! results, the scan-or-lookups choice, and which errors stop the run.

use alga_batch::exec::resolve::resolve_tickets;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::server::{json, Reply, Server};
use super::{client, fast_policy};

fn page(rows: &[(u128, &str)], page: u64, total: u64) -> Reply {
    let data: Vec<_> = rows
        .iter()
        .map(|(id, n)| serde_json::json!({"ticket_id": Uuid::from_u128(*id), "ticket_number": n}))
        .collect();
    let pages = total.div_ceil(100);
    let body = serde_json::json!({"data": data, "pagination": {"page": page, "limit": 100,
        "total": total, "totalPages": pages, "hasNext": page < pages, "hasPrev": page > 1}});
    json(200, &body.to_string(), &[])
}

#[tokio::test]
async fn one_number_is_one_filtered_lookup_with_exact_matching() {
    let server = Server::start(vec![page(&[(1, "TIC001000"), (2, "TIC0010001")], 1, 2)]).await;
    let c = client(&server, 0);
    let cancel = CancellationToken::new();
    let nums = vec!["tic001000".to_string()];
    let r = resolve_tickets(&c, &fast_policy(), &nums, &cancel)
        .await
        .unwrap();
    assert_eq!(r["tic001000"], Ok(Uuid::from_u128(1)));
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert!(reqs[0].head.contains("ticket_number=tic001000"));
}

#[tokio::test]
async fn many_numbers_page_through_everything_when_cheaper() {
    let first: Vec<(u128, String)> = (0..100)
        .map(|i| (i, format!("TIC{:06}", 1000 + i)))
        .collect();
    let first: Vec<(u128, &str)> = first.iter().map(|(i, n)| (*i, n.as_str())).collect();
    let server = Server::start(vec![
        page(&first, 1, 103),
        page(
            &[(200, "TIC0010001"), (201, "TIC009999"), (202, "tic009999")],
            2,
            103,
        ),
    ])
    .await;
    let c = client(&server, 0);
    let cancel = CancellationToken::new();
    let nums: Vec<String> = ["TIC001000", "TIC0010001", "TIC009999", "TIC5", "TIC001000"]
        .map(String::from)
        .to_vec();
    let r = resolve_tickets(&c, &fast_policy(), &nums, &cancel)
        .await
        .unwrap();
    assert_eq!(r["TIC001000"], Ok(Uuid::from_u128(0)));
    assert_eq!(r["TIC0010001"], Ok(Uuid::from_u128(200)));
    assert!(r["TIC009999"]
        .as_ref()
        .unwrap_err()
        .contains("is ambiguous"));
    assert_eq!(r["TIC5"], Err("no ticket numbered TIC5".to_string()));
    assert_eq!(server.requests().len(), 2, "two pages beat four lookups");
}

#[tokio::test]
async fn resolution_stops_on_401_and_turns_other_errors_into_row_errors() {
    let server = Server::start(vec![
        json(
            401,
            r#"{"error":{"code":"UNAUTHORIZED","message":"Invalid API key"}}"#,
            &[],
        ),
        json(
            403,
            r#"{"error":{"code":"FORBIDDEN","message":"Permission denied: Cannot read ticket"}}"#,
            &[],
        ),
    ])
    .await;
    let c = client(&server, 0);
    let cancel = CancellationToken::new();
    let nums = vec!["TIC1".to_string()];
    let e = resolve_tickets(&c, &fast_policy(), &nums, &cancel)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(401));
    let r = resolve_tickets(&c, &fast_policy(), &nums, &cancel)
        .await
        .unwrap();
    let msg = r["TIC1"].as_ref().unwrap_err();
    assert!(
        msg.starts_with("cannot resolve ticket number TIC1: http 403"),
        "{msg}"
    );
    assert_eq!(server.unused(), 0);
}
