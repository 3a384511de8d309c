//! One attempt on the wire: a concurrency permit, the pause gate and a governor token, the
//! send itself, and what the answer's rate headers or a 429 teach the gate.

use std::sync::atomic::Ordering;

use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, Response};
use tokio::time::Instant;

use super::{lock, Client, Limit, SENT};
use crate::api::error::ApiError;
use crate::api::limiter::{Outcome as LimitOutcome, Permit, RequestClass};
use crate::api::response::{rate_headers, redact, status_error, transport_error};
use crate::api::throttle::delay_of_429;

impl Client {
    /// One attempt: a concurrency permit of its class, the gate and a token, send, rate
    /// headers; non-2xx becomes [`ApiError::Status`]. The permit goes back with the time from
    /// sending to the answer's head and how the attempt ended (the adaptive limit learns
    /// from both; rate waits are not counted as server latency).
    pub(in crate::api) async fn send(
        &self,
        req: RequestBuilder,
        limit: Limit,
        class: RequestClass,
    ) -> Result<Response, ApiError> {
        let Some((permit, seq)) = self.wait_turn(class).await else {
            return Err(ApiError::Cancelled);
        };
        let sent_at = Instant::now();
        let result = self.send_paced(req, limit, seq, sent_at).await;
        permit.record_latency(sent_at.elapsed(), LimitOutcome::of(&result));
        result
    }

    /// The rest of [`Client::send`], once paced.
    async fn send_paced(
        &self,
        req: RequestBuilder,
        limit: Limit,
        seq: u64,
        sent_at: Instant,
    ) -> Result<Response, ApiError> {
        let (req, head_limit) = match limit {
            Limit::Total(d) => (req.timeout(d), None),
            Limit::Head(d) => (req, Some(d)),
        };
        self.inner.counters.requests.fetch_add(1, Ordering::Relaxed);
        // Outside `track_sent` there is nothing to record.
        let _ = SENT.try_with(|sent| sent.store(true, Ordering::Relaxed));
        let sent = match head_limit {
            None => req.send().await,
            Some(d) => match tokio::time::timeout(d, req.send()).await {
                Ok(r) => r,
                Err(_) => return Err(ApiError::Timeout(format!("no answer within {d:?}"))),
            },
        };
        let resp = sent.map_err(|e| self.redact_err(transport_error(&e)))?;
        let status = resp.status().as_u16();
        tracing::debug!(status, url = %resp.url().path(), elapsed = ?sent_at.elapsed(), "answer");
        if resp.status().is_success() {
            self.observe_budget(resp.headers(), sent_at, seq);
            return Ok(resp);
        }
        let headers = resp.headers().clone();
        let body = tokio::time::timeout(self.inner.request_timeout, resp.bytes())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        // Scrub the key from the raw body before it is parsed and shortened: a cut could
        // otherwise leave part of an echoed key in the message.
        let body = redact(
            String::from_utf8_lossy(&body).into_owned(),
            &self.inner.secret,
        );
        let err = self.redact_err(status_error(status, &headers, body.as_bytes()));
        if status == 429 {
            self.on_throttled(&headers, body.as_bytes());
        } else {
            self.observe_budget(&headers, sent_at, seq);
        }
        Err(err)
    }

    /// Waits for a concurrency permit of `class` and the gate; `None` when the run was stopped
    /// while it had to wait (nothing is sent after a stop that had to wait for its turn; an
    /// attempt whose turn is free right away still goes).
    async fn wait_turn(&self, class: RequestClass) -> Option<(Permit, u64)> {
        let turn = async {
            let permit = self.inner.limiters.get(class).acquire().await;
            (permit, self.pace().await)
        };
        match &self.inner.give_up {
            None => Some(turn.await),
            Some(stop) => tokio::select! {
                biased;
                t = turn => Some(t),
                () = stop.cancelled() => None,
            },
        }
    }

    /// Waits at the gate, records why, and returns the attempt's sequence number.
    async fn pace(&self) -> u64 {
        let passed = self.inner.gate.pass().await;
        if let Some((waited, reason)) = passed.waited {
            let c = &self.inner.counters;
            let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
            c.waited_nanos.fetch_add(nanos, Ordering::Relaxed);
            *lock(&c.last_wait_reason) = Some(reason);
        }
        passed.seq
    }

    /// Passes the server's rate-limit headers to the gate.
    fn observe_budget(&self, headers: &HeaderMap, sent_at: Instant, seq: u64) {
        if let Some((remaining, limit)) = rate_headers(headers) {
            self.inner
                .gate
                .observe_budget(remaining, limit, sent_at, seq);
        }
    }

    /// A 429: close the shared gate until the server's delay has passed, and tell the bucket
    /// model (its delay bounds the refill rate; the mirror empties).
    fn on_throttled(&self, headers: &HeaderMap, body: &[u8]) {
        self.inner
            .counters
            .throttled
            .fetch_add(1, Ordering::Relaxed);
        let limit = headers
            .get("x-ratelimit-limit")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok());
        self.inner
            .gate
            .throttled(delay_of_429(headers, body), limit);
    }
}
