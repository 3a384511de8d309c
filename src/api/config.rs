//! Client configuration, the secret API key (never printed) and the request counters.

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::Duration;

use super::limiter::{LimiterConfig, Limiters};

/// The API key. It never prints: `Debug` and `Display` show `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key (surrounding whitespace, such as a key file's newline, is removed).
    pub fn new(key: String) -> Self {
        ApiKey(key.trim().to_string())
    }

    /// The secret itself, for the `x-api-key` header only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// How many requests of each class may be in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concurrency {
    /// At most this many of each class.
    Fixed(u32),
    /// Found from the server's latency, per class (`exec`'s lanes allow up to `max`).
    Auto {
        /// The highest limit (`--max-concurrency`).
        max: u32,
    },
}

impl Concurrency {
    /// The limiters this setting gives.
    pub(super) fn limiters(self) -> Limiters {
        match self {
            Concurrency::Fixed(n) => Limiters::fixed(n.max(1)),
            Concurrency::Auto { max } => Limiters::adaptive(LimiterConfig {
                initial: 4.min(max.max(1)),
                max: max.max(1),
            }),
        }
    }
}

/// How to reach the server and how fast to go.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `https://host` (no `/api/v1`).
    pub base_url: String,
    /// Sent as `x-api-key`.
    pub api_key: ApiKey,
    /// Sent as `x-tenant-id` when set.
    pub tenant: Option<String>,
    /// Client-side governor rate; 0 = no client-side limit.
    pub rate_per_minute: u32,
    /// Governor burst.
    pub burst: u32,
    /// Requests in flight per class.
    pub concurrency: Concurrency,
    /// Once cancelled, an attempt that would have to wait (for a permit, a rate token or a
    /// 429 pause) is given up before anything is sent (`ApiError::Cancelled`).
    pub give_up: Option<tokio_util::sync::CancellationToken>,
    /// Timeout of reads and deletes (and the idle limit between download chunks).
    pub request_timeout: Duration,
    /// Timeout of creates (the server may take seconds and still commit).
    pub create_timeout: Duration,
    /// Idle connections are dropped after this (the server closes them after 5 s).
    pub pool_idle_timeout: Duration,
    /// `User-Agent`.
    pub user_agent: String,
}

impl ClientConfig {
    /// Defaults: 60/min with a burst of 120 (the server's own), 60 s reads, 120 s creates,
    /// 4 s pool idle timeout.
    pub fn new(base_url: impl Into<String>, api_key: ApiKey) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            api_key,
            tenant: None,
            rate_per_minute: 60,
            burst: 120,
            concurrency: Concurrency::Fixed(64),
            give_up: None,
            request_timeout: Duration::from_secs(60),
            create_timeout: Duration::from_secs(120),
            pool_idle_timeout: Duration::from_secs(4),
            user_agent: concat!("alga-batch/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// A snapshot of what the client has done so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientStats {
    /// Attempts sent.
    pub requests: u64,
    /// 429 answers received.
    pub throttled: u64,
    /// Retries noted by the executor.
    pub retries: u64,
    /// File bytes streamed to the server by uploads (every attempt).
    pub bytes_uploaded: u64,
    /// Document bytes read from download bodies (every attempt).
    pub bytes_downloaded: u64,
    /// Time attempts spent waiting for the gate and the governor, summed over all callers.
    pub waited_for_rate: Duration,
    /// Why the most recent wait happened.
    pub last_wait_reason: Option<String>,
    /// The server's refill rate learned from its answers, in requests per second ("server
    /// allows ~10/s"); `None` until learned. The client sends at the lower of this and its own
    /// rate.
    pub learned_rate_per_s: Option<f64>,
    /// The server's bucket size (`X-RateLimit-Limit`), once seen.
    pub learned_burst: Option<u32>,
}

/// Live counters behind [`ClientStats`].
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) requests: AtomicU64,
    pub(super) throttled: AtomicU64,
    pub(super) retries: AtomicU64,
    pub(super) bytes_up: AtomicU64,
    pub(super) bytes_down: AtomicU64,
    pub(super) waited_nanos: AtomicU64,
    pub(super) last_wait_reason: Mutex<Option<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Client;

    #[test]
    fn api_key_never_prints() {
        let key = ApiKey::new("sk-very-secret\n".into());
        assert_eq!(key.expose(), "sk-very-secret");
        assert_eq!(format!("{key} {key:?}"), "[redacted] [redacted]");
        let cfg = ClientConfig::new("http://127.0.0.1:1", key);
        assert!(!format!("{cfg:?}").contains("very-secret"));
        let client = Client::new(cfg).unwrap();
        assert!(!format!("{client:?}").contains("very-secret"));
    }
}
