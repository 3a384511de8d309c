//! Error responses in the real server's envelopes: `{"error":{"code","message","details"}}`,
//! plus the edge's plain-string 401 and the 429 with its headers.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// An error answer.
#[derive(Debug, Clone)]
pub(crate) enum ApiError {
    /// 400 `VALIDATION_ERROR`.
    Validation {
        message: String,
        details: Option<Value>,
    },
    /// 401 `UNAUTHORIZED` (`Invalid API key`).
    Unauthorized(String),
    /// 401 from the edge: `{"error":"Unauthorized: API key missing"}`.
    MissingKey,
    /// 403 `FORBIDDEN`.
    Forbidden(String),
    /// 404 `NOT_FOUND`.
    NotFound(String),
    /// 429 `RATE_LIMITED` with its headers.
    RateLimited {
        limit: u32,
        remaining: i64,
        retry_after_ms: u64,
    },
    /// 500 `INTERNAL_ERROR` (the development server shows the raw message).
    Internal(String),
    /// 500 `INTERNAL_CONFIGURATION` (e.g. sort on an unknown column).
    InternalConfiguration(String),
    /// 503 injected by `--fail-rate`.
    Unavailable,
}

impl ApiError {
    /// 400 with a message and no details.
    pub(crate) fn bad(message: &str) -> ApiError {
        ApiError::Validation {
            message: message.to_string(),
            details: None,
        }
    }

    /// 400 `Validation failed` with zod-like issues.
    pub(crate) fn issues(message: &str, issues: Vec<Value>) -> ApiError {
        ApiError::Validation {
            message: message.to_string(),
            details: Some(Value::Array(issues)),
        }
    }

    fn envelope(status: StatusCode, code: &str, message: &str, details: Option<Value>) -> Response {
        let mut error = json!({"code": code, "message": message});
        if let (Some(d), Value::Object(m)) = (details, &mut error) {
            m.insert("details".into(), d);
        }
        (status, axum::Json(json!({ "error": error }))).into_response()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Validation { message, details } => Self::envelope(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                &message,
                details,
            ),
            ApiError::Unauthorized(m) => {
                Self::envelope(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", &m, None)
            }
            ApiError::MissingKey => (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"error": "Unauthorized: API key missing"})),
            )
                .into_response(),
            ApiError::Forbidden(m) => Self::envelope(StatusCode::FORBIDDEN, "FORBIDDEN", &m, None),
            ApiError::NotFound(m) => Self::envelope(StatusCode::NOT_FOUND, "NOT_FOUND", &m, None),
            ApiError::RateLimited {
                limit,
                remaining,
                retry_after_ms,
            } => rate_limited(limit, remaining, retry_after_ms),
            ApiError::Internal(m) => Self::envelope(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                &m,
                None,
            ),
            ApiError::InternalConfiguration(m) => Self::envelope(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_CONFIGURATION",
                &m,
                None,
            ),
            ApiError::Unavailable => Self::envelope(
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
                "Service temporarily unavailable (sandbox fault injection)",
                None,
            ),
        }
    }
}

/// Marks a 429 response with the delay it asked for (read by the request log).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryAfterMs(pub(crate) u64);

/// The 429 answer: `Retry-After` in whole seconds (at least 1), `X-RateLimit-Reset` as ISO time.
fn rate_limited(limit: u32, remaining: i64, retry_after_ms: u64) -> Response {
    let body = json!({"error": {"code": "RATE_LIMITED", "message": "Too many requests",
        "details": {"retry_after_ms": retry_after_ms, "remaining": remaining}}});
    let mut resp = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    let reset = chrono::Utc::now() + chrono::Duration::milliseconds(retry_after_ms as i64);
    let secs = retry_after_ms.div_ceil(1000).max(1);
    let h = resp.headers_mut();
    h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    h.insert("x-ratelimit-limit", HeaderValue::from(limit));
    h.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    if let Ok(v) = HeaderValue::from_str(&super::model::ts(&reset)) {
        h.insert("x-ratelimit-reset", v);
    }
    resp.extensions_mut().insert(RetryAfterMs(retry_after_ms));
    resp
}
