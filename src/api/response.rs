//! Reading answers: error envelopes, `Retry-After`, rate-limit headers, `Content-Disposition`,
//! and turning transport failures into [`ApiError`]s. Pure functions, tested here.

use reqwest::header::HeaderMap;

use super::error::ApiError;

/// Longest error message kept from a raw (non-envelope) body.
const MAX_MESSAGE: usize = 200;

/// Parsed rate-limit headers: `(remaining, limit)`.
pub(crate) fn rate_headers(headers: &HeaderMap) -> Option<(i64, i64)> {
    let get = |name: &str| -> Option<i64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
    Some((get("x-ratelimit-remaining")?, get("x-ratelimit-limit")?))
}

/// Builds the [`ApiError::Status`] for a non-success answer.
///
/// Understands the envelope `{"error":{"code","message","details":{"retry_after_ms"}}}`, the
/// edge's plain `{"error":"..."}`, an empty body (405) and anything else (shortened raw text).
/// `retry_after_ms` in the body wins over the whole-second `Retry-After` header. When
/// `details` is a list of validation issues, the first one is appended to the message.
pub(crate) fn status_error(status: u16, headers: &HeaderMap, body: &[u8]) -> ApiError {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let err = json.as_ref().and_then(|j| j.get("error"));
    let (code, message) = match err {
        Some(serde_json::Value::String(s)) => (None, s.clone()),
        Some(obj @ serde_json::Value::Object(_)) => (
            obj.get("code").and_then(|c| c.as_str()).map(str::to_string),
            envelope_message(obj),
        ),
        _ => (None, raw_message(status, headers, body)),
    };
    ApiError::Status {
        status,
        code,
        message: one_line(&message),
        retry_after: super::throttle::requested_delay(headers, body).map(|d| d.wait),
    }
}

/// `error.message`, followed by the first validation issue of `error.details` when there is
/// one: `Validation failed: comment_text: Required (+1 more)`.
fn envelope_message(err: &serde_json::Value) -> String {
    let message = err
        .get("message")
        .and_then(|m| m.as_str())
        .unwrap_or_default();
    match err.get("details").and_then(first_issue) {
        Some(issue) if message.is_empty() => issue,
        Some(issue) => format!("{message}: {issue}"),
        None => message.to_string(),
    }
}

/// The first zod issue of a `details` array as `path: message`, with ` (+N more)` for the rest.
fn first_issue(details: &serde_json::Value) -> Option<String> {
    let issues = details.as_array()?;
    let first = issues.first()?;
    let message = first.get("message")?.as_str()?;
    let path: Vec<String> = first
        .get("path")
        .and_then(|p| p.as_array())
        .map(|p| {
            p.iter()
                .map(|part| match part {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = if path.is_empty() {
        message.to_string()
    } else {
        format!("{}: {message}", path.join("."))
    };
    if issues.len() > 1 {
        out.push_str(&format!(" (+{} more)", issues.len() - 1));
    }
    Some(out)
}

/// The message for a body that is not an error envelope: where a redirect points (it is
/// never followed), the title of an HTML page, else the text.
fn raw_message(status: u16, headers: &HeaderMap, body: &[u8]) -> String {
    if (300..400).contains(&status) {
        let to = headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("nowhere");
        return format!(
            "the server redirected to {to}; redirects are not followed (the API key would go along): check --base-url"
        );
    }
    if let Some(page) = html_page(body) {
        return page;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("no body")
            .to_lowercase()
    } else {
        text.to_string()
    }
}

/// "an HTML page (title: ...) instead of JSON" when `body` is an HTML page (a proxy's error
/// or login page, a web server's default page).
pub(crate) fn html_page(body: &[u8]) -> Option<String> {
    let head = String::from_utf8_lossy(&body[..body.len().min(64 * 1024)]);
    let lower = head.trim_start().to_ascii_lowercase();
    if !(lower.starts_with("<!doctype html") || lower.starts_with("<html")) {
        return None;
    }
    let title = lower
        .find("<title")
        .and_then(|i| Some(i + lower[i..].find('>')? + 1))
        .and_then(|start| Some((start, start + lower[start..].find("</title")?)))
        .map(|(a, b)| one_line(head.trim_start()[a..b].trim()))
        .filter(|t| !t.is_empty());
    Some(match title {
        Some(t) => {
            format!("an HTML page (title: {t}) instead of JSON: is --base-url the API server?")
        }
        None => "an HTML page instead of JSON: is --base-url the API server?".into(),
    })
}

/// One line, at most [`MAX_MESSAGE`] characters.
fn one_line(s: &str) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() > MAX_MESSAGE {
        let cut: String = flat.chars().take(MAX_MESSAGE).collect();
        format!("{cut}...")
    } else {
        flat
    }
}

/// The file name of a `Content-Disposition` header, percent-decoded.
///
/// The server puts `encodeURIComponent(name)` inside a plain `filename="..."`; an RFC 5987
/// `filename*=UTF-8''...` is preferred when present.
pub(crate) fn disposition_file_name(value: &str) -> Option<String> {
    let mut plain = None;
    let mut star = None;
    for param in split_params(value) {
        let Some((key, val)) = param.split_once('=') else {
            continue;
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "filename" => plain = Some(unquote(val.trim())),
            "filename*" => {
                let val = val.trim();
                star = val.split_once("''").map(|(_, enc)| enc.to_string());
            }
            _ => {}
        }
    }
    let raw = star.or(plain)?;
    Some(
        percent_encoding::percent_decode_str(&raw)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

/// Splits on `;` outside double quotes.
fn split_params(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                out.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&value[start..]);
    out
}

/// Removes surrounding quotes and backslash escapes.
fn unquote(v: &str) -> String {
    let Some(inner) = v
        .strip_prefix('"')
        .map(|s| s.strip_suffix('"').unwrap_or(s))
    else {
        return v.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut escaped = false;
    for c in inner.chars() {
        if escaped || c != '\\' {
            out.push(c);
            escaped = false;
        } else {
            escaped = true;
        }
    }
    out
}

/// Classifies a transport failure. `url` is removed from reqwest's text (it is logged apart).
pub(crate) fn transport_error(e: &reqwest::Error) -> ApiError {
    let text = error_chain(e);
    if e.is_timeout() {
        ApiError::Timeout(text)
    } else if e.is_connect() {
        ApiError::Connect(text)
    } else if e.is_builder() {
        ApiError::Local(format!("cannot build request: {text}"))
    } else {
        ApiError::NoResponse(text)
    }
}

/// The error and its sources on one line, without the URL.
fn error_chain(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = source {
        let s = err.to_string();
        if !parts.iter().any(|p: &String| p.contains(&s)) {
            parts.push(s);
        }
        source = err.source();
    }
    let text = parts.join(": ");
    match e.url() {
        Some(url) => text.replace(&format!(" ({url})"), ""),
        None => text,
    }
}

/// Replaces every occurrence of `secret` in `text` (a server may echo what it was sent).
pub(crate) fn redact(text: String, secret: &str) -> String {
    if secret.is_empty() || !text.contains(secret) {
        text
    } else {
        text.replace(secret, "[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;
    use std::time::Duration;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn envelope_429_prefers_retry_after_ms_from_the_body() {
        let body = br#"{"error":{"code":"RATE_LIMITED","message":"Too many requests","details":{"retry_after_ms":545,"remaining":0}}}"#;
        let e = status_error(429, &headers(&[("retry-after", "1")]), body);
        let ApiError::Status {
            status,
            code,
            message,
            retry_after,
        } = e
        else {
            panic!("not a status error");
        };
        assert_eq!(status, 429);
        assert_eq!(code.as_deref(), Some("RATE_LIMITED"));
        assert_eq!(message, "Too many requests");
        assert_eq!(retry_after, Some(Duration::from_millis(545)));
    }

    #[test]
    fn header_retry_after_is_used_without_a_body_value() {
        let e = status_error(503, &headers(&[("retry-after", "30")]), b"busy");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(30)));
        assert_eq!(e.to_string(), "http 503: busy");
    }

    #[test]
    fn plain_string_error_and_empty_405_are_understood() {
        let e = status_error(
            401,
            &HeaderMap::new(),
            br#"{"error":"Unauthorized: API key missing"}"#,
        );
        assert_eq!(e.to_string(), "http 401: Unauthorized: API key missing");
        let e = status_error(405, &HeaderMap::new(), b"");
        assert_eq!(e.to_string(), "http 405: method not allowed");
        let e = status_error(
            404,
            &HeaderMap::new(),
            br#"{"error":{"code":"NOT_FOUND","message":"ticket not found"}}"#,
        );
        assert_eq!(e.to_string(), "http 404 NOT_FOUND: ticket not found");
    }

    /// Body of the capture `28_missing_comment_text` (alga-api/captures), verbatim.
    const CAPTURE_28: &str = r#"{"error":{"code":"VALIDATION_ERROR","message":"Validation failed","details":[{"code":"invalid_type","expected":"string","received":"undefined","path":["comment_text"],"message":"Required"}]}}"#;
    /// Body of the capture `29_empty_comment_text` (alga-api/captures), verbatim.
    const CAPTURE_29: &str = r#"{"error":{"code":"VALIDATION_ERROR","message":"Validation failed","details":[{"code":"too_small","minimum":1,"type":"string","inclusive":true,"exact":false,"message":"Comment text is required","path":["comment_text"]},{"code":"custom","message":"Comment text is required","path":["comment_text"]}]}}"#;

    #[test]
    fn validation_details_are_appended_to_the_message() {
        let cases = [
            (
                CAPTURE_28.to_string(),
                "http 400 VALIDATION_ERROR: Validation failed: comment_text: Required",
            ),
            (
                CAPTURE_29.to_string(),
                "http 400 VALIDATION_ERROR: Validation failed: comment_text: \
                 Comment text is required (+1 more)",
            ),
            (
                r#"{"error":{"code":"VALIDATION_ERROR","message":"Validation failed","details":[{"path":["comment_text"],"message":"Comment text is too long (max 5000 characters)"}]}}"#.to_string(),
                "http 400 VALIDATION_ERROR: Validation failed: comment_text: \
                 Comment text is too long (max 5000 characters)",
            ),
            (
                r#"{"error":{"code":"VALIDATION_ERROR","message":"Validation failed","details":[{"path":[],"message":"Expected object,\nreceived array"}]}}"#.to_string(),
                "http 400 VALIDATION_ERROR: Validation failed: Expected object, received array",
            ),
            (
                r#"{"error":{"code":"VALIDATION_ERROR","message":"Validation failed","details":[{"path":["items",0,"name"],"message":"Required"}]}}"#.to_string(),
                "http 400 VALIDATION_ERROR: Validation failed: items.0.name: Required",
            ),
        ];
        for (body, want) in cases {
            let e = status_error(400, &HeaderMap::new(), body.as_bytes());
            assert_eq!(e.to_string(), want);
        }
    }

    #[test]
    fn raw_bodies_are_one_short_line() {
        let long = format!("line1\nline2 {}", "x".repeat(500));
        let e = status_error(502, &HeaderMap::new(), long.as_bytes());
        let msg = e.to_string();
        assert!(!msg.contains('\n'));
        assert!(msg.len() < 260, "{}", msg.len());
    }

    #[test]
    fn rate_headers_parse_negative_remaining() {
        let h = headers(&[
            ("x-ratelimit-remaining", "-1"),
            ("x-ratelimit-limit", "120"),
        ]);
        assert_eq!(rate_headers(&h), Some((-1, 120)));
        assert_eq!(
            rate_headers(&headers(&[("x-ratelimit-limit", "120")])),
            None
        );
    }

    #[test]
    fn content_disposition_names_are_percent_decoded() {
        let cases = [
            (
                r#"attachment; filename="r%C3%A9sum%C3%A9%20%E2%80%93%20%C3%BCn%C3%AFcode.txt""#,
                Some("résumé – ünïcode.txt"),
            ),
            (
                r#"attachment; filename="upload-test.txt""#,
                Some("upload-test.txt"),
            ),
            (r#"attachment; filename="a%3Bb.txt""#, Some("a;b.txt")),
            ("attachment; filename=plain.bin", Some("plain.bin")),
            (
                r#"attachment; filename="x.txt"; filename*=UTF-8''%C3%A9.txt"#,
                Some("é.txt"),
            ),
            ("attachment", None),
        ];
        for (header, want) in cases {
            assert_eq!(disposition_file_name(header).as_deref(), want, "{header}");
        }
    }

    #[test]
    fn redact_removes_the_secret() {
        assert_eq!(
            redact("key sk-123 bad".into(), "sk-123"),
            "key [redacted] bad"
        );
        assert_eq!(redact("nothing".into(), ""), "nothing");
    }

    #[test]
    fn an_enormous_retry_after_is_capped() {
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::RETRY_AFTER,
            "18446744073709551615".parse().unwrap(),
        );
        let e = status_error(429, &h, b"");
        assert_eq!(e.retry_after(), Some(crate::api::throttle::MAX_DELAY));
        let body = br#"{"error":{"code":"RATE_LIMITED","message":"slow","details":{"retry_after_ms":18446744073709551615}}}"#;
        assert_eq!(
            status_error(429, &HeaderMap::new(), body).retry_after(),
            Some(crate::api::throttle::MAX_DELAY)
        );
    }

    #[test]
    fn a_redirect_names_its_target_and_html_pages_their_title() {
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::LOCATION,
            "https://evil.example/login".parse().unwrap(),
        );
        let e = status_error(302, &h, b"");
        assert!(
            e.to_string()
                .contains("redirected to https://evil.example/login; redirects are not followed"),
            "{e}"
        );
        let page = b"\n<!DOCTYPE html><html><head><TITLE>502 Bad\nGateway</TITLE></head><body>..";
        let e = status_error(502, &HeaderMap::new(), page);
        assert_eq!(
            e.to_string(),
            "http 502: an HTML page (title: 502 Bad Gateway) instead of JSON: is --base-url the API server?"
        );
        assert!(html_page(b"{\"data\":1}").is_none());
        assert_eq!(
            html_page(b"<html><body>no title").as_deref(),
            Some("an HTML page instead of JSON: is --base-url the API server?")
        );
    }
}
