//! The HTTP client: configuration, the secret key, statistics, and the JSON endpoints.
//!
//! Every method sends exactly one attempt: it waits on the shared pause gate, pays one governor
//! token, sends, and maps the answer to a value or an [`ApiError`]. The attempt itself lives in
//! `client/send.rs`; uploads and downloads in `transfer.rs`.

mod send;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::RequestBuilder;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::config::{ClientConfig, ClientStats, Counters};
use super::error::ApiError;
use super::gate::Gate;
use super::limiter::{Limiters, RequestClass};
use super::response::{redact, transport_error};
use super::types::{Comment, DataEnvelope, Document, NewComment, Ticket, TicketPage, TicketQuery};

tokio::task_local! {
    /// Set around one attempt by `exec::retry`: becomes true once a request is handed to the
    /// network (so a cancelled create can be told apart from one still waiting at the gate).
    static SENT: Arc<AtomicBool>;
}

/// Runs `fut`, recording in `flag` whether it handed a request to the network.
pub(crate) async fn track_sent<F: std::future::Future>(flag: Arc<AtomicBool>, fut: F) -> F::Output {
    SENT.scope(flag, fut).await
}

/// Reads, lookups, downloads and deletes share one concurrency class.
const READ: RequestClass = RequestClass::Read;

/// The Alga PSA API client. Cheap to clone; clones share the pool, gate and governor.
#[derive(Clone)]
pub struct Client {
    pub(super) inner: Arc<Inner>,
}

/// Shared state of a [`Client`].
pub(super) struct Inner {
    pub(super) http: reqwest::Client,
    base_url: String,
    secret: String,
    gate: Gate,
    limiters: Limiters,
    give_up: Option<tokio_util::sync::CancellationToken>,
    counters: Counters,
    pub(super) request_timeout: Duration,
    pub(super) create_timeout: Duration,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base_url)
            .finish_non_exhaustive()
    }
}

/// How long one attempt may take.
#[derive(Debug, Clone, Copy)]
pub(super) enum Limit {
    /// The whole exchange, body included.
    Total(Duration),
    /// Until the response head arrives (the body is timed by the caller).
    Head(Duration),
}

impl Client {
    /// Builds the client (no request is sent).
    pub fn new(cfg: ClientConfig) -> Result<Client, ApiError> {
        let base_url = cfg.base_url.trim().trim_end_matches('/').to_string();
        reqwest::Url::parse(&base_url)
            .map_err(|e| ApiError::Local(format!("invalid base url {base_url:?}: {e}")))?;
        let http = reqwest::Client::builder()
            .default_headers(default_headers(&cfg)?)
            .user_agent(cfg.user_agent.as_str())
            .pool_idle_timeout(cfg.pool_idle_timeout)
            // A redirect could carry x-api-key to another host; the API never redirects.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(cfg.request_timeout.min(Duration::from_secs(10)))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| ApiError::Local(format!("cannot build http client: {e}")))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base_url,
                secret: cfg.api_key.expose().to_string(),
                gate: Gate::new(cfg.rate_per_minute, cfg.burst),
                limiters: cfg.concurrency.limiters(),
                give_up: cfg.give_up.clone(),
                counters: Counters::default(),
                request_timeout: cfg.request_timeout,
                create_timeout: cfg.create_timeout,
            }),
        })
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ClientStats {
        let c = &self.inner.counters;
        let (learned_rate_per_s, learned_burst) = self.inner.gate.learned();
        ClientStats {
            learned_rate_per_s,
            learned_burst: learned_burst.and_then(|b| u32::try_from(b).ok()),
            requests: c.requests.load(Ordering::Relaxed),
            throttled: c.throttled.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            bytes_uploaded: c.bytes_up.load(Ordering::Relaxed),
            bytes_downloaded: c.bytes_down.load(Ordering::Relaxed),
            waited_for_rate: Duration::from_nanos(c.waited_nanos.load(Ordering::Relaxed)),
            last_wait_reason: lock(&c.last_wait_reason).clone(),
        }
    }

    /// Counts bytes streamed up (uploads) or read down (downloads).
    pub(super) fn count_bytes(&self, up: u64, down: u64) {
        let c = &self.inner.counters;
        c.bytes_up.fetch_add(up, Ordering::Relaxed);
        c.bytes_down.fetch_add(down, Ordering::Relaxed);
    }

    /// Counts one retry (called by the executor).
    pub fn note_retry(&self) {
        self.inner.counters.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// The concurrency limits now: comment posts, uploads, reads.
    pub fn concurrency_limits(&self) -> [u32; 3] {
        let l = &self.inner.limiters;
        [
            l.get(RequestClass::CommentPost).limit(),
            l.get(RequestClass::Upload).limit(),
            l.get(RequestClass::Read).limit(),
        ]
    }

    /// The highest concurrency limits found so far: comment posts, uploads, reads.
    pub fn highest_concurrency_limits(&self) -> [u32; 3] {
        let l = &self.inner.limiters;
        [
            l.get(RequestClass::CommentPost).highest(),
            l.get(RequestClass::Upload).highest(),
            l.get(RequestClass::Read).highest(),
        ]
    }

    /// What attempts are waiting for right now (for progress), and how much longer.
    pub fn wait_reason(&self) -> Option<(String, Duration)> {
        self.inner.gate.wait_reason()
    }

    /// `GET /api/health` (no key needed): is the server there at all?
    pub async fn health(&self) -> Result<(), ApiError> {
        let req = self.get("/api/health");
        self.send_read(req, Limit::Total(self.inner.request_timeout), READ)
            .await
            .map(|_| ())
    }

    /// `GET /api/v1/tickets`: one page.
    pub async fn list_tickets(&self, q: &TicketQuery) -> Result<TicketPage, ApiError> {
        let req = self.get("/api/v1/tickets").query(&ticket_query(q));
        let body = self
            .send_read(req, Limit::Total(self.inner.request_timeout), READ)
            .await?;
        decode(&body, "ticket list")
    }

    /// `GET /api/v1/tickets/{id}`.
    pub async fn get_ticket(&self, id: Uuid) -> Result<Ticket, ApiError> {
        let req = self.get(&format!("/api/v1/tickets/{id}"));
        self.json(req, self.inner.request_timeout, "ticket", READ)
            .await
    }

    /// `GET /api/v1/tickets/{id}/comments`, oldest first; `limit` is clamped to 1..=200. The
    /// answer has no total: page until a page shorter than `limit` comes back.
    pub async fn list_comments(
        &self,
        ticket: Uuid,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Comment>, ApiError> {
        let req = self
            .get(&format!("/api/v1/tickets/{ticket}/comments"))
            .query(&[
                ("limit", limit.clamp(1, 200).to_string()),
                ("offset", offset.to_string()),
            ])
            .query(&[("order", "asc")]);
        self.json(req, self.inner.request_timeout, "comment list", READ)
            .await
    }

    /// `POST /api/v1/tickets/{id}/comments`.
    pub async fn create_comment(
        &self,
        ticket: Uuid,
        body: &NewComment,
    ) -> Result<Comment, ApiError> {
        let req = self.json_body(
            self.inner
                .http
                .post(self.url(&format!("/api/v1/tickets/{ticket}/comments"))),
            body,
        )?;
        self.json(
            req,
            self.inner.create_timeout,
            "created comment",
            RequestClass::CommentPost,
        )
        .await
    }

    /// `PUT /api/v1/tickets/{id}/comments/{comment}` (only the text can change).
    pub async fn update_comment(
        &self,
        ticket: Uuid,
        comment: Uuid,
        text: &str,
    ) -> Result<Comment, ApiError> {
        let url = self.url(&format!("/api/v1/tickets/{ticket}/comments/{comment}"));
        let body = serde_json::json!({ "comment_text": text });
        let req = self.json_body(self.inner.http.put(url), &body)?;
        self.json(
            req,
            self.inner.create_timeout,
            "updated comment",
            RequestClass::CommentPost,
        )
        .await
    }

    /// `GET /api/v1/tickets/{id}/documents`.
    pub async fn list_documents(&self, ticket: Uuid) -> Result<Vec<Document>, ApiError> {
        let req = self.get(&format!("/api/v1/tickets/{ticket}/documents"));
        self.json(req, self.inner.request_timeout, "document list", READ)
            .await
    }

    /// `DELETE /api/v1/tickets/{id}/documents/{document}` (answers `{"data": null}`).
    pub async fn delete_document(&self, ticket: Uuid, document: Uuid) -> Result<(), ApiError> {
        let url = self.url(&format!("/api/v1/tickets/{ticket}/documents/{document}"));
        let req = self.inner.http.delete(url);
        let _: serde_json::Value = self
            .json(req, self.inner.request_timeout, "delete", READ)
            .await?;
        Ok(())
    }

    /// The full URL of an API path.
    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.inner.base_url)
    }

    fn get(&self, path: &str) -> RequestBuilder {
        self.inner.http.get(self.url(path))
    }

    fn json_body<B: serde::Serialize>(
        &self,
        req: RequestBuilder,
        body: &B,
    ) -> Result<RequestBuilder, ApiError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| ApiError::Local(format!("cannot encode request body: {e}")))?;
        Ok(req.header(CONTENT_TYPE, "application/json").body(bytes))
    }

    /// One attempt whose success body is `{"data": T}`.
    async fn json<T: DeserializeOwned>(
        &self,
        req: RequestBuilder,
        timeout: Duration,
        what: &str,
        class: RequestClass,
    ) -> Result<T, ApiError> {
        let body = self.send_read(req, Limit::Total(timeout), class).await?;
        decode::<DataEnvelope<T>>(&body, what).map(|e| e.data)
    }

    /// One attempt, with the whole success body read.
    async fn send_read(
        &self,
        req: RequestBuilder,
        limit: Limit,
        class: RequestClass,
    ) -> Result<bytes::Bytes, ApiError> {
        let resp = self.send(req, limit, class).await?;
        resp.bytes()
            .await
            .map_err(|e| self.redact_err(transport_error(&e)))
    }

    /// Removes the key from any text an error carries.
    pub(super) fn redact_err(&self, e: ApiError) -> ApiError {
        let s = &self.inner.secret;
        match e {
            ApiError::Status {
                status,
                code,
                message,
                retry_after,
            } => ApiError::Status {
                status,
                code: code.map(|c| redact(c, s)),
                message: redact(message, s),
                retry_after,
            },
            ApiError::Connect(m) => ApiError::Connect(redact(m, s)),
            ApiError::NoResponse(m) => ApiError::NoResponse(redact(m, s)),
            ApiError::Timeout(m) => ApiError::Timeout(redact(m, s)),
            ApiError::Decode(m) => ApiError::Decode(redact(m, s)),
            ApiError::Local(m) => ApiError::Local(redact(m, s)),
            ApiError::Cancelled => ApiError::Cancelled,
        }
    }
}

/// `x-api-key` (marked sensitive) and the optional `x-tenant-id`.
fn default_headers(cfg: &ClientConfig) -> Result<HeaderMap, ApiError> {
    let mut headers = HeaderMap::new();
    if cfg.api_key.expose().is_empty() {
        return Err(ApiError::Local("the api key is empty".into()));
    }
    let mut key = HeaderValue::from_str(cfg.api_key.expose()).map_err(|_| {
        ApiError::Local("the api key holds characters that cannot be sent in a header".into())
    })?;
    key.set_sensitive(true);
    headers.insert("x-api-key", key);
    if let Some(tenant) = cfg
        .tenant
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let value = HeaderValue::from_str(tenant)
            .map_err(|_| ApiError::Local(format!("invalid tenant id {tenant:?}")))?;
        headers.insert("x-tenant-id", value);
    }
    Ok(headers)
}

/// The query pairs of a ticket list request.
fn ticket_query(q: &TicketQuery) -> Vec<(&'static str, String)> {
    let mut pairs = vec![("page", q.page.max(1).to_string())];
    if q.limit > 0 {
        pairs.push(("limit", q.limit.min(100).to_string()));
    }
    let optional = [
        ("sort", &q.sort),
        ("order", &q.order),
        ("fields", &q.fields),
        ("ticket_number", &q.ticket_number),
        ("updated_from", &q.updated_from),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            pairs.push((k, v.clone()));
        }
    }
    if q.is_open {
        pairs.push(("is_open", "true".into()));
    }
    pairs
}

/// Decodes a success body.
fn decode<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| match super::response::html_page(body) {
        Some(page) => ApiError::Decode(format!("cannot read {what}: the server sent {page}")),
        None => ApiError::Decode(format!("cannot read {what}: {e}")),
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests;
