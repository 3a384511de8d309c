//! Sandbox settings: what the `alga-batch sandbox` flags and embedding tests can change.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use uuid::Uuid;

/// How the rate limiter treats an empty bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RateLimitMode {
    /// Deny with 429 (`RATE_LIMIT_ENFORCE=true` on the real server). The sandbox default.
    #[default]
    Enforce,
    /// Never deny, but compute and send the headers (the real server's own default).
    Observe,
    /// Limiter down: never deny, and send `X-RateLimit-Remaining: -1` like the real fail-open.
    Off,
}

/// A sandbox option given as text that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxArgError {
    /// `--rate-limit` takes `enforce`, `observe` or `off`.
    #[error("invalid rate-limit mode {0:?}: expected enforce, observe or off")]
    RateLimitMode(String),
    /// `--latency-ms` takes `A-B` (or a single `A`) in milliseconds.
    #[error("invalid latency range {0:?}: expected milliseconds as A-B, e.g. 50-200")]
    Latency(String),
}

impl std::str::FromStr for RateLimitMode {
    type Err = SandboxArgError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "enforce" => Ok(RateLimitMode::Enforce),
            "observe" => Ok(RateLimitMode::Observe),
            "off" => Ok(RateLimitMode::Off),
            _ => Err(SandboxArgError::RateLimitMode(s.to_string())),
        }
    }
}

/// Parses `--latency-ms`: `A-B` or `A` (milliseconds), with `A <= B`.
pub fn parse_latency_ms(s: &str) -> Result<(u64, u64), SandboxArgError> {
    let err = || SandboxArgError::Latency(s.to_string());
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u64 = a.trim().parse().map_err(|_| err())?;
    let b: u64 = b.trim().parse().map_err(|_| err())?;
    if a > b {
        return Err(err());
    }
    Ok((a, b))
}

/// A server with a limited number of workers (`--capacity`, `--service-ms`, `--overload`); see
/// `capacity.rs` for the model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Capacity {
    /// Requests in service at once (N, at least 1).
    pub workers: u32,
    /// Service time of one request while at most `workers` are in the server (S).
    pub service: Duration,
    /// Contention (F): past N, the service time is `S × (1 + F × (in_server − N) / N)`.
    pub overload: f64,
}

impl Capacity {
    /// The default contention factor: twice N in the server doubles the service time.
    pub const DEFAULT_OVERLOAD: f64 = 1.0;

    /// N workers of `service` each, with the default contention.
    pub fn new(workers: u32, service: Duration) -> Capacity {
        Capacity {
            workers,
            service,
            overload: Capacity::DEFAULT_OVERLOAD,
        }
    }
}

/// Everything a sandbox needs to start. `Default` gives the values documented in issue 2.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Address to bind; port 0 picks a free port.
    pub bind: SocketAddr,
    /// Number of seeded tickets (ignored when `data_dir` already holds data).
    pub tickets: usize,
    /// Seed for ids, seed data and fault decisions.
    pub seed: u64,
    /// Accepted API keys; each has its own user and its own bucket.
    pub api_keys: Vec<String>,
    /// Keys (also accepted) whose user may read but not update: 403 on writes.
    pub readonly_keys: Vec<String>,
    /// The tenant; a request whose `x-tenant-id` differs gets 401.
    pub tenant: Uuid,
    /// Rate limiter mode.
    pub rate_limit: RateLimitMode,
    /// Bucket size (`maxTokens`).
    pub burst: u32,
    /// Tokens added per minute.
    pub refill_per_minute: u32,
    /// Also limit the comment endpoints (the real server never does).
    pub limit_comments: bool,
    /// Largest accepted upload; more gives 500 `INTERNAL_ERROR` like the real server.
    pub max_upload_bytes: u64,
    /// Persist tickets, comments and documents here; `None` keeps metadata in memory.
    pub data_dir: Option<PathBuf>,
    /// Probability of answering 503 before doing anything.
    pub fail_rate: f64,
    /// Extra latency per request, uniform in `[a, b]` milliseconds.
    pub latency_ms: Option<(u64, u64)>,
    /// Probability of committing a create, then closing the connection with no response.
    pub drop_after_commit: f64,
    /// Probability of committing a create, then answering 500.
    pub error_after_commit: f64,
    /// Probability of committing a create, then answering 201 with an unreadable body.
    pub garble_after_commit: f64,
    /// Limited workers (`None`: every request is served at once, as fast as it can be).
    pub capacity: Option<Capacity>,
    /// No per-request log line.
    pub quiet: bool,
}

/// The tenant id derived from a seed (stable across restarts with the same seed).
pub fn tenant_for_seed(seed: u64) -> Uuid {
    super::seed::derived_id(seed, "tenant")
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            tickets: 25,
            seed: 42,
            api_keys: vec!["sandbox-key".to_string()],
            readonly_keys: Vec::new(),
            tenant: tenant_for_seed(42),
            rate_limit: RateLimitMode::Enforce,
            burst: 120,
            refill_per_minute: 60,
            limit_comments: false,
            max_upload_bytes: 500 * 1024 * 1024,
            data_dir: None,
            fail_rate: 0.0,
            latency_ms: None,
            drop_after_commit: 0.0,
            error_after_commit: 0.0,
            garble_after_commit: 0.0,
            capacity: None,
            quiet: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cli_values() {
        assert_eq!("observe".parse(), Ok(RateLimitMode::Observe));
        assert_eq!("OFF".parse(), Ok(RateLimitMode::Off));
        assert!("sometimes".parse::<RateLimitMode>().is_err());
        assert_eq!(parse_latency_ms("50-200"), Ok((50, 200)));
        assert_eq!(parse_latency_ms("30"), Ok((30, 30)));
        assert!(parse_latency_ms("200-50").is_err());
        assert!(parse_latency_ms("x-1").is_err());
    }
}
