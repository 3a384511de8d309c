//! What the sandbox saw: counters per route and status, 429s, injected faults, and the request log.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The most recent requests kept in the log (older ones are forgotten, counters are not).
const LOG_CAPACITY: usize = 200_000;

/// Counters since start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SandboxStats {
    /// Requests per `"METHOD route-pattern"`, e.g. `"POST /api/v1/tickets/{id}/comments"`
    /// (unrouted paths count under `"METHOD <unmatched>"`).
    pub by_route: BTreeMap<String, u64>,
    /// Requests per status code; a dropped connection counts under 0.
    pub by_status: BTreeMap<u16, u64>,
    /// 429 responses served.
    pub rate_limited: u64,
    /// Injected 503s.
    pub faults_failed: u64,
    /// Creates committed whose connection was then closed with no response.
    pub faults_dropped: u64,
    /// Creates committed and then answered 500 or with an unreadable 201.
    pub faults_after_commit: u64,
    /// All requests.
    pub total: u64,
}

impl SandboxStats {
    /// Requests seen for `"METHOD route-pattern"` (0 if none).
    pub fn route(&self, key: &str) -> u64 {
        self.by_route.get(key).copied().unwrap_or(0)
    }

    /// Requests answered with `status` (0 for dropped connections).
    pub fn status(&self, status: u16) -> u64 {
        self.by_status.get(&status).copied().unwrap_or(0)
    }
}

/// One request as the sandbox saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    /// HTTP method.
    pub method: String,
    /// Request path (without the query).
    pub path: String,
    /// Status sent; 0 when the connection was dropped without a response.
    pub status: u16,
    /// `key1`, `key2`, ... by position in the configured keys; `-` when missing, `?` when unknown.
    pub key: String,
    /// Time spent in the server, in milliseconds.
    pub elapsed_ms: u64,
    /// Arrival, in milliseconds since the sandbox started.
    pub at_ms: u64,
    /// For a 429: the `retry_after_ms` the client was given.
    pub retry_after_ms: Option<u64>,
}

#[derive(Default)]
struct Inner {
    stats: SandboxStats,
    log: VecDeque<LoggedRequest>,
}

/// Shared recorder.
pub(crate) struct Recorder {
    inner: Mutex<Inner>,
    started: std::time::Instant,
    /// Requests that reached the server (counted on arrival, before any latency).
    received: AtomicU64,
    /// Requests inside the server now: arrived, neither answered nor abandoned yet.
    in_flight: Arc<AtomicU64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            inner: Mutex::default(),
            started: std::time::Instant::now(),
            received: AtomicU64::new(0),
            in_flight: Arc::default(),
        }
    }
}

/// Held while a request is inside the server; dropping it (answered, or abandoned because the
/// connection closed) takes the request out of [`Recorder::in_flight`].
pub(crate) struct InFlight(Arc<AtomicU64>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Recorder {
    /// Counts an arriving request; keep the guard until it is answered.
    pub(crate) fn arrive(&self) -> InFlight {
        self.received.fetch_add(1, Ordering::SeqCst);
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.in_flight.clone())
    }

    /// Requests received since start, answered or not.
    pub(crate) fn received(&self) -> u64 {
        self.received.load(Ordering::SeqCst)
    }

    /// Requests inside the server now.
    pub(crate) fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Milliseconds from the sandbox's start to `t`.
    pub(crate) fn offset_ms(&self, t: std::time::Instant) -> u64 {
        t.saturating_duration_since(self.started).as_millis() as u64
    }

    /// Records one finished request under `route`.
    pub(crate) fn record(&self, route: &str, req: LoggedRequest, failed: bool, after_commit: bool) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let s = &mut inner.stats;
        s.total += 1;
        *s.by_route
            .entry(format!("{} {route}", req.method))
            .or_insert(0) += 1;
        *s.by_status.entry(req.status).or_insert(0) += 1;
        match req.status {
            429 => s.rate_limited += 1,
            0 => s.faults_dropped += 1,
            _ if failed => s.faults_failed += 1,
            _ if after_commit => s.faults_after_commit += 1,
            _ => {}
        }
        if inner.log.len() == LOG_CAPACITY {
            inner.log.pop_front();
        }
        inner.log.push_back(req);
    }

    /// A copy of the counters.
    pub(crate) fn stats(&self) -> SandboxStats {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.stats.clone()
    }

    /// A copy of the log, in arrival order.
    pub(crate) fn log(&self) -> Vec<LoggedRequest> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.log.iter().cloned().collect()
    }
}
