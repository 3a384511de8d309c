//! The router (`app`), the shared state, and the steps every handler shares: the edge's key
//! check, key and tenant validation, the rate limiter, permissions and ticket lookup.

mod comments;
mod documents;
mod query;
mod tickets;
mod upload;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde_json::{json, Value};
use uuid::Uuid;

use super::capacity::Workers;
use super::error::{ApiError, RetryAfterMs};
use super::faults::{AfterCommit, AnsweredAfterCommit, DropConnection, Faults};
use super::limiter::{Decision, Limiter};
use super::model::Ticket;
use super::seed::User;
use super::stats::{LoggedRequest, Recorder};
use super::store::Store;

/// Everything the handlers share.
pub(crate) struct AppState {
    pub(crate) store: Mutex<Store>,
    pub(crate) tenant: Uuid,
    pub(crate) users: Vec<User>,
    pub(crate) limiter: Limiter,
    pub(crate) limit_comments: bool,
    pub(crate) max_upload_bytes: u64,
    pub(crate) faults: Faults,
    pub(crate) recorder: Recorder,
    /// The server's workers when its capacity is limited.
    pub(crate) workers: Option<Workers>,
    pub(crate) quiet: bool,
}

/// The state as handlers receive it.
pub(crate) type Shared = Arc<AppState>;

impl AppState {
    /// Locks the store (a poisoned lock is still usable: every update is a single assignment).
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn key_label(&self, headers: &HeaderMap) -> String {
        match api_key(headers) {
            None => "-".to_string(),
            Some(k) => match self.users.iter().position(|u| u.key == k) {
                Some(i) => format!("key{}", i + 1),
                None => "?".to_string(),
            },
        }
    }
}

/// The router with every endpoint of the contract.
pub(crate) fn app(state: Shared) -> Router {
    let tickets = "/api/v1/tickets";
    Router::new()
        .route("/api/health", get(health))
        .route(tickets, get(tickets::list))
        .route("/api/v1/tickets/search", get(tickets::search))
        .route("/api/v1/tickets/{id}", get(tickets::get_one))
        .route(
            "/api/v1/tickets/{id}/comments",
            get(comments::list).post(comments::create),
        )
        .route(
            "/api/v1/tickets/{id}/comments/{comment_id}",
            put(comments::update),
        )
        .route(
            "/api/v1/tickets/{id}/documents",
            get(documents::list)
                .post(upload::upload)
                .layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/api/v1/tickets/{id}/documents/{document_id}",
            get(documents::download).delete(documents::delete),
        )
        .fallback(not_found)
        .layer(from_fn_with_state(state.clone(), observe))
        .layer(DefaultBodyLimit::max(100 * 1024 * 1024))
        .with_state(state)
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok", "version": "1.0.0"}))
}

/// Unknown paths get an HTML 404 page, like Next.js.
async fn not_found() -> Response {
    let page = "<!DOCTYPE html><html><head><title>404: This page could not be found.</title>\
                </head><body><h1>404</h1><p>This page could not be found.</p></body></html>";
    (StatusCode::NOT_FOUND, Html(page)).into_response()
}

/// Wraps every request: latency and 503 faults, the edge's missing-key check, stats and the log.
async fn observe(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let _inside = st.recorder.arrive();
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "<unmatched>".to_string(), |m| m.as_str().to_string());
    let key = st.key_label(req.headers());
    let (resp, failed) = edge(&st, req, next).await;
    let dropped = resp.extensions().get::<DropConnection>().is_some();
    let after_commit = resp.extensions().get::<AnsweredAfterCommit>().is_some();
    let status = if dropped { 0 } else { resp.status().as_u16() };
    let elapsed = start.elapsed();
    let elapsed_ms = elapsed.as_millis() as u64;
    if !st.quiet {
        eprintln!("sandbox: {method} {path} {status} {elapsed_ms}ms {key}");
    }
    let logged = LoggedRequest {
        method,
        path,
        status,
        key,
        elapsed_ms,
        at_ms: st.recorder.offset_ms(start),
        retry_after_ms: resp.extensions().get::<RetryAfterMs>().map(|r| r.0),
    };
    st.recorder
        .record(&route, logged, failed, after_commit, elapsed);
    resp
}

/// What happens before the handler: faults, the CORS preflight, the edge's key check, a worker
/// when the capacity is limited; then CORS and keep-alive headers on the way out. Returns the
/// response and whether a 503 was injected.
///
/// `/api/health` and the edge's own answers (preflight, missing key, injected 503) never wait
/// for a worker: they do not reach the application, as on the real server, and a health check
/// must tell "up" quickly even when the workers are saturated.
async fn edge(st: &AppState, req: Request, next: Next) -> (Response, bool) {
    let path = req.uri().path();
    let exempt = path == "/api/health";
    let is_api = path.starts_with("/api/");
    if !exempt {
        if let Some(d) = st.faults.latency() {
            tokio::time::sleep(d).await;
        }
    }
    let origin = req
        .headers()
        .get(axum::http::header::ORIGIN)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("*"));
    let reply_delay = if exempt {
        None
    } else {
        st.faults.reply_delay()
    };
    let failed = !exempt && st.faults.should_fail();
    let mut resp = if failed {
        ApiError::Unavailable.into_response()
    } else if req.method() == axum::http::Method::OPTIONS {
        preflight()
    } else if !exempt && is_api && api_key(req.headers()).is_none() {
        ApiError::MissingKey.into_response()
    } else {
        match &st.workers {
            Some(w) if is_api && !exempt => w.serve(next.run(req)).await,
            _ => next.run(req).await,
        }
    };
    if let Some(d) = reply_delay {
        tokio::time::sleep(d).await;
    }
    let h = resp.headers_mut();
    h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
    if is_api {
        h.insert("access-control-allow-origin", origin);
        h.insert(
            "access-control-allow-credentials",
            HeaderValue::from_static("true"),
        );
    }
    (resp, failed)
}

/// The edge's answer to `OPTIONS` on any path.
fn preflight() -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    h.insert(
        "access-control-allow-methods",
        HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE, OPTIONS"),
    );
    h.insert(
        "access-control-allow-headers",
        HeaderValue::from_static(
            "Content-Type, Authorization, X-API-Key, X-Tenant-ID, X-Request-ID, X-Idempotency-Key",
        ),
    );
    resp
}

/// The `x-api-key` header, if present and not empty.
fn api_key(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("x-api-key")
        .map(|v| v.to_str().unwrap_or("\u{fffd}"))
        .filter(|k| !k.is_empty())
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) index: usize,
    pub(crate) user: User,
}

/// Key and tenant check: 401 `Invalid API key` for an unknown key or a wrong `x-tenant-id`.
pub(crate) fn authenticate(st: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let key = api_key(headers).ok_or(ApiError::MissingKey)?;
    let invalid = || ApiError::Unauthorized("Invalid API key".to_string());
    // An empty header counts as absent (the server checks a truthy value).
    if let Some(t) = headers.get("x-tenant-id").filter(|t| !t.is_empty()) {
        let ok = t
            .to_str()
            .ok()
            .and_then(|s| Uuid::parse_str(s).ok())
            .is_some_and(|u| u == st.tenant);
        if !ok {
            return Err(invalid());
        }
    }
    let index = st
        .users
        .iter()
        .position(|u| u.key == key)
        .ok_or_else(invalid)?;
    Ok(Caller {
        index,
        user: st.users[index].clone(),
    })
}

/// Rate-limit header values to send on a successful limited response.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RateHeaders {
    limit: u32,
    remaining: i64,
}

/// Takes a token for `caller`: 429 when the bucket is empty and enforcement is on.
pub(crate) fn take_token(st: &AppState, caller: &Caller) -> Result<RateHeaders, ApiError> {
    match st.limiter.check(caller.index) {
        Decision::Allowed { limit, remaining } => Ok(RateHeaders { limit, remaining }),
        Decision::Denied {
            limit,
            remaining,
            retry_after_ms,
        } => Err(ApiError::RateLimited {
            limit,
            remaining,
            retry_after_ms,
        }),
    }
}

/// Like [`take_token`] for the comment routes, which are limited only with `--limit-comments`.
pub(crate) fn take_comment_token(
    st: &AppState,
    caller: &Caller,
) -> Result<Option<RateHeaders>, ApiError> {
    if st.limit_comments {
        take_token(st, caller).map(Some)
    } else {
        Ok(None)
    }
}

/// 403 unless the caller may update tickets.
pub(crate) fn require_update(caller: &Caller) -> Result<(), ApiError> {
    if caller.user.readonly {
        return Err(ApiError::Forbidden(
            "Permission denied: Cannot update ticket".to_string(),
        ));
    }
    Ok(())
}

/// Whether `s` is an 8-4-4-4-12 hex UUID (any version, either case).
pub(crate) fn is_uuid_text(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Parses a path UUID that the server checks: 400 `Invalid ticket ID format`.
pub(crate) fn ticket_id(raw: &str) -> Result<Uuid, ApiError> {
    if !is_uuid_text(raw) {
        return Err(ApiError::bad("Invalid ticket ID format"));
    }
    Uuid::parse_str(raw).map_err(|_| ApiError::bad("Invalid ticket ID format"))
}

/// Parses a path UUID that the server does not check (Postgres then fails the cast: 500).
pub(crate) fn unchecked_id(raw: &str) -> Result<Uuid, ApiError> {
    let err = || ApiError::Internal(format!("invalid input syntax for type uuid: \"{raw}\""));
    if !is_uuid_text(raw) {
        return Err(err());
    }
    Uuid::parse_str(raw).map_err(|_| err())
}

/// The ticket or 404 `ticket not found`.
pub(crate) fn find_ticket(st: &AppState, id: Uuid) -> Result<Ticket, ApiError> {
    st.store()
        .ticket(id)
        .cloned()
        .ok_or_else(|| ApiError::NotFound("ticket not found".to_string()))
}

/// A JSON answer, with the rate-limit headers when the request went through the limiter.
pub(crate) fn respond(status: StatusCode, body: Value, rate: Option<RateHeaders>) -> Response {
    let mut resp = (status, Json(body)).into_response();
    if let Some(r) = rate {
        let h = resp.headers_mut();
        h.insert("x-ratelimit-limit", HeaderValue::from(r.limit));
        h.insert("x-ratelimit-remaining", HeaderValue::from(r.remaining));
    }
    resp
}

/// The answer to a committed create whose real answer is lost by an injected fault, or
/// `None` for the normal answer.
pub(crate) fn after_commit_fault(st: &AppState) -> Option<Response> {
    let mut resp = match st.faults.after_commit() {
        AfterCommit::Answer => return None,
        AfterCommit::Drop => {
            let mut resp = StatusCode::CREATED.into_response();
            resp.extensions_mut().insert(DropConnection);
            return Some(resp);
        }
        AfterCommit::Error => {
            ApiError::Internal("Internal server error".to_string()).into_response()
        }
        AfterCommit::Garble => (
            StatusCode::CREATED,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            "{\"data\": {\"comment_id\": \"",
        )
            .into_response(),
    };
    resp.extensions_mut().insert(AnsweredAfterCommit);
    Some(resp)
}

/// Turns a handler result into a response.
pub(crate) fn finish(r: Result<Response, ApiError>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}
