//! What the sandbox saw: counters per route and status, 429s, injected faults, the request log,
//! and latency histograms (time in server, per route and overall).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;

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

/// Time in server of a set of requests (zero everywhere when there were none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatencyPercentiles {
    /// Requests counted.
    pub count: u64,
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Largest.
    pub max: Duration,
}

/// Route pattern whose requests are left out of the overall latency.
const HEALTH_ROUTE: &str = "/api/health";

/// Latencies are kept in microseconds, up to an hour, within 1 %.
fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("constant bounds are valid")
}

/// Latency histograms: every API request but the health check, and one per route key.
#[derive(Default)]
struct Latencies {
    all: Option<Histogram<u64>>,
    by_route: HashMap<String, Histogram<u64>>,
}

impl Latencies {
    fn record(&mut self, key: &str, health: bool, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        if !health {
            self.all
                .get_or_insert_with(new_histogram)
                .saturating_record(us);
        }
        match self.by_route.get_mut(key) {
            Some(h) => h.saturating_record(us),
            None => {
                let mut h = new_histogram();
                h.saturating_record(us);
                self.by_route.insert(key.to_string(), h);
            }
        }
    }

    fn percentiles(h: Option<&Histogram<u64>>) -> LatencyPercentiles {
        let Some(h) = h.filter(|h| !h.is_empty()) else {
            return LatencyPercentiles::default();
        };
        let at = |q: f64| Duration::from_micros(h.value_at_quantile(q));
        LatencyPercentiles {
            count: h.len(),
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: Duration::from_micros(h.max()),
        }
    }
}

#[derive(Default)]
struct Inner {
    stats: SandboxStats,
    log: VecDeque<LoggedRequest>,
    latency: Latencies,
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

    /// Records one finished request under `route`, which spent `elapsed` in the server.
    pub(crate) fn record(
        &self,
        route: &str,
        req: LoggedRequest,
        failed: bool,
        after_commit: bool,
        elapsed: Duration,
    ) {
        let key = format!("{} {route}", req.method);
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.latency.record(&key, route == HEALTH_ROUTE, elapsed);
        let s = &mut inner.stats;
        s.total += 1;
        *s.by_route.entry(key).or_insert(0) += 1;
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

    /// Percentiles of one route key, or of every API request but the health check.
    pub(crate) fn latency(&self, route: Option<&str>) -> LatencyPercentiles {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let l = &inner.latency;
        Latencies::percentiles(match route {
            Some(r) => l.by_route.get(r),
            None => l.all.as_ref(),
        })
    }

    /// Forgets the recorded latencies.
    pub(crate) fn reset_latency(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.latency = Latencies::default();
    }

    /// The counters and latency percentiles as JSON (`alga-batch sandbox --stats-file`):
    /// `total`, `rate_limited` (and `rate_limited_by_method`, from the log), `by_status`,
    /// `by_route`, and `latency` (every API request but
    /// the health check) and `route_latency` (per route key), each as `count` and
    /// `p50_ms`/`p90_ms`/`p99_ms`/`max_ms`.
    pub(crate) fn report(&self) -> serde_json::Value {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let json = |p: LatencyPercentiles| {
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            serde_json::json!({
                "count": p.count, "p50_ms": ms(p.p50), "p90_ms": ms(p.p90),
                "p99_ms": ms(p.p99), "max_ms": ms(p.max),
            })
        };
        let routes: BTreeMap<&str, serde_json::Value> = inner
            .latency
            .by_route
            .iter()
            .map(|(k, h)| (k.as_str(), json(Latencies::percentiles(Some(h)))))
            .collect();
        let mut limited_by_method: BTreeMap<&str, u64> = BTreeMap::new();
        for r in inner.log.iter().filter(|r| r.status == 429) {
            *limited_by_method.entry(r.method.as_str()).or_insert(0) += 1;
        }
        let s = &inner.stats;
        serde_json::json!({
            "total": s.total,
            "rate_limited": s.rate_limited,
            "rate_limited_by_method": limited_by_method,
            "by_status": s.by_status,
            "by_route": s.by_route,
            "latency": json(Latencies::percentiles(inner.latency.all.as_ref())),
            "route_latency": routes,
        })
    }

    /// A copy of the log, in arrival order.
    pub(crate) fn log(&self) -> Vec<LoggedRequest> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.log.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, path: &str) -> LoggedRequest {
        LoggedRequest {
            method: method.into(),
            path: path.into(),
            status: 200,
            key: "key1".into(),
            elapsed_ms: 0,
            at_ms: 0,
            retry_after_ms: None,
        }
    }

    #[test]
    fn percentiles_per_route_and_overall_leave_out_the_health_check() {
        let r = Recorder::default();
        assert_eq!(r.latency(None), LatencyPercentiles::default());
        let comments = "/api/v1/tickets/{id}/comments";
        for ms in 1..=100 {
            let d = Duration::from_millis(ms);
            r.record(comments, request("POST", "/x"), false, false, d);
        }
        r.record(
            HEALTH_ROUTE,
            request("GET", HEALTH_ROUTE),
            false,
            false,
            Duration::from_secs(9),
        );
        let all = r.latency(None);
        assert_eq!(all.count, 100);
        let near = |d: Duration, ms: f64| (d.as_secs_f64() * 1000.0 - ms).abs() <= ms * 0.01;
        assert!(near(all.p50, 50.0), "{all:?}");
        assert!(near(all.p90, 90.0), "{all:?}");
        assert!(near(all.p99, 99.0), "{all:?}");
        assert!(near(all.max, 100.0), "{all:?}");
        assert_eq!(r.latency(Some("POST /api/v1/tickets/{id}/comments")), all);
        assert_eq!(r.latency(Some("GET /api/health")).count, 1);
        assert_eq!(r.latency(Some("GET /nothing")).count, 0);
        let report = r.report();
        assert_eq!(report["total"], 101);
        assert_eq!(report["latency"]["count"], 100);
        let p50 = report["route_latency"]["POST /api/v1/tickets/{id}/comments"]["p50_ms"]
            .as_f64()
            .unwrap();
        assert!((p50 - 50.0).abs() <= 0.5, "{report}");
        r.reset_latency();
        assert_eq!(r.latency(None).count, 0);
        assert_eq!(r.stats().total, 101);
    }
}
