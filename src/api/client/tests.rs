//! Tests of `client.rs`.
use super::*;
use crate::api::ApiKey;

#[test]
fn bad_keys_and_urls_are_refused_without_echoing_the_key() {
    let e = Client::new(ClientConfig::new(
        "http://x",
        ApiKey::new("a\u{1}secret".into()),
    ));
    let msg = e.unwrap_err().to_string();
    assert!(msg.contains("api key") && !msg.contains("secret"), "{msg}");
    let e = Client::new(ClientConfig::new("not a url", ApiKey::new("k".into())));
    assert!(e.unwrap_err().to_string().contains("invalid base url"));
    assert!(Client::new(ClientConfig::new("http://x", ApiKey::new(" ".into()))).is_err());
}

#[test]
fn ticket_query_pairs() {
    let q = TicketQuery {
        page: 0,
        limit: 500,
        ticket_number: Some("TIC1".into()),
        fields: Some("ticket_id,ticket_number".into()),
        is_open: true,
        ..Default::default()
    };
    let pairs = ticket_query(&q);
    assert_eq!(
        pairs,
        vec![
            ("page", "1".to_string()),
            ("limit", "100".to_string()),
            ("fields", "ticket_id,ticket_number".to_string()),
            ("ticket_number", "TIC1".to_string()),
            ("is_open", "true".to_string()),
        ]
    );
}

#[test]
fn redact_err_scrubs_every_variant() {
    let cfg = ClientConfig::new("http://127.0.0.1:1", ApiKey::new("sk-abc".into()));
    let c = Client::new(cfg).unwrap();
    let e = c.redact_err(ApiError::Status {
        status: 400,
        code: None,
        message: "bad key sk-abc".into(),
        retry_after: None,
    });
    assert_eq!(e.to_string(), "http 400: bad key [redacted]");
    let e = c.redact_err(ApiError::NoResponse("sk-abc".into()));
    assert!(!e.to_string().contains("sk-abc"));
}
