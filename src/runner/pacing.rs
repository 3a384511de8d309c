//! Pacing and the connected client: the settings every command shares (concurrency, rate,
//! burst, retries, the wait cap), the one place a retry policy is built, and [`Runner`], the
//! client with the run's stop and its statistics.

use super::fatal;
use super::signals::Stop;
use crate::api::{Client, ClientConfig, Concurrency};
use crate::connect::Connection;
use crate::error::{Error, Result};
use crate::exec::retry::RetryPolicy;
use std::time::{Duration, Instant};

/// Default highest adaptive concurrency (`--max-concurrency`).
pub const DEFAULT_MAX_CONCURRENCY: u32 = 64;

/// The default of `run`, `undo` and `restore`: found from the server's latency, up to
/// [`DEFAULT_MAX_CONCURRENCY`] unless `--max-concurrency` says otherwise.
pub const AUTO: Concurrency = Concurrency::Auto {
    max: DEFAULT_MAX_CONCURRENCY,
};
/// Default client-side rate: the server's default refill.
pub const DEFAULT_RATE_PER_MINUTE: u32 = 60;
/// Default client-side burst: the server's default bucket.
pub const DEFAULT_BURST: u32 = 120;
/// Default retries per request (429s excepted: see [`DEFAULT_MAX_WAIT`]).
pub const DEFAULT_MAX_RETRIES: u32 = 5;
/// Default cap on the time one operation may spend waiting on the server's 429s.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(600);

/// Pacing as given (flags, then a job file's settings); unset values take defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PacingSpec {
    /// `--concurrency N` or `auto`.
    pub concurrency: Option<Concurrency>,
    /// `--max-concurrency`: the cap of `auto`.
    pub max_concurrency: Option<u32>,
    /// Client-side requests per minute; 0 = no client-side limit.
    pub rate_per_minute: Option<u32>,
    /// Client-side burst.
    pub burst: Option<u32>,
    /// Retries per request.
    pub max_retries: Option<u32>,
    /// Longest wait on 429s per operation.
    pub max_wait: Option<Duration>,
}

impl PacingSpec {
    /// Every unset value of `self` taken from `other`.
    pub fn or(self, other: PacingSpec) -> PacingSpec {
        PacingSpec {
            concurrency: self.concurrency.or(other.concurrency),
            max_concurrency: self.max_concurrency.or(other.max_concurrency),
            rate_per_minute: self.rate_per_minute.or(other.rate_per_minute),
            burst: self.burst.or(other.burst),
            max_retries: self.max_retries.or(other.max_retries),
            max_wait: self.max_wait.or(other.max_wait),
        }
    }

    /// The settings, with `default` concurrency when none is given (`auto` for imports,
    /// undo and restore; a fixed number of tickets for backups).
    pub fn resolve(self, default: Concurrency) -> Pacing {
        let max = self
            .max_concurrency
            .unwrap_or(DEFAULT_MAX_CONCURRENCY)
            .max(1);
        let concurrency = match self.concurrency.unwrap_or(default) {
            Concurrency::Fixed(n) => Concurrency::Fixed(n.max(1)),
            Concurrency::Auto { .. } => Concurrency::Auto { max },
        };
        Pacing {
            concurrency,
            rate_per_minute: self.rate_per_minute.unwrap_or(DEFAULT_RATE_PER_MINUTE),
            burst: self.burst.unwrap_or(DEFAULT_BURST).max(1),
            max_retries: self.max_retries.unwrap_or(DEFAULT_MAX_RETRIES),
            max_wait: self.max_wait.unwrap_or(DEFAULT_MAX_WAIT),
        }
    }
}

/// Parse `--concurrency`: `auto` or a number of at least 1.
pub fn parse_concurrency(s: &str) -> Result<Concurrency> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("auto") {
        return Ok(Concurrency::Auto {
            max: DEFAULT_MAX_CONCURRENCY,
        });
    }
    match s.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(Concurrency::Fixed(n)),
        _ => Err(Error::Usage(format!(
            "concurrency {s:?}: expected `auto` or a number of at least 1"
        ))),
    }
}

/// How requests are paced and retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pacing {
    /// Requests in flight per class: fixed, or found from the server's latency.
    pub concurrency: Concurrency,
    /// Client-side requests per minute; 0 = no client-side limit.
    pub rate_per_minute: u32,
    /// Client-side burst (at least 1).
    pub burst: u32,
    /// Retries per request.
    pub max_retries: u32,
    /// Longest wait on 429s per operation.
    pub max_wait: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        PacingSpec::default().resolve(AUTO)
    }
}

impl Pacing {
    /// Operations (lanes, or tickets for a backup) allowed in flight at once: the fixed
    /// number, or the cap of `auto` (the per-class limits then decide).
    pub fn lanes(&self) -> usize {
        match self.concurrency {
            Concurrency::Fixed(n) | Concurrency::Auto { max: n } => n.max(1) as usize,
        }
    }

    /// The retry policy of every request: exponential backoff from 500 ms, capped at 30 s;
    /// 429s wait as the server says, up to `max_wait` per operation.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_retries: self.max_retries,
            base: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_wait: self.max_wait,
        }
    }
}

/// A connected run: the governed client, its retry policy, the run's stop, and when it
/// started.
pub struct Runner {
    client: Client,
    policy: RetryPolicy,
    pacing: Pacing,
    stop: Stop,
    started: Instant,
}

impl Runner {
    /// Check the connection and build the client with `pacing`; `adjust` may change the
    /// client settings first (backups: direct I/O). No request is sent.
    pub fn connect(
        conn: Connection,
        pacing: &Pacing,
        stop: Stop,
        adjust: impl FnOnce(&mut ClientConfig),
    ) -> Result<Runner> {
        let mut cfg = conn.config(pacing.rate_per_minute, pacing.burst)?;
        cfg.concurrency = pacing.concurrency;
        // After a stop, nothing waits for its turn to be sent.
        cfg.give_up = Some(stop.cancel.soft.clone());
        adjust(&mut cfg);
        let client =
            Client::new(cfg).map_err(|e| Error::Fatal(format!("cannot build http client: {e}")))?;
        Ok(Runner {
            client,
            policy: pacing.retry_policy(),
            pacing: pacing.clone(),
            stop,
            started: Instant::now(),
        })
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The retry policy of every request.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The pacing settings.
    pub fn pacing(&self) -> &Pacing {
        &self.pacing
    }

    /// The run's stop.
    pub fn stop(&self) -> &Stop {
        &self.stop
    }

    /// When the run started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Check that the server answers at all (exit 3 rather than failing every item in turn).
    pub async fn preflight(&self) -> Result<()> {
        fatal::preflight(&self.client, &self.policy, &self.stop.cancel).await
    }

    /// A run-level error from an API error that stopped everything.
    pub fn fatal(&self, e: crate::api::ApiError) -> crate::error::Error {
        fatal::fatal_from(&self.client, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_job_and_defaults_fill_the_rest() {
        let auto = Concurrency::Auto { max: 64 };
        assert_eq!(PacingSpec::default().resolve(auto), Pacing::default());
        let flags = PacingSpec {
            concurrency: Some(Concurrency::Fixed(0)),
            rate_per_minute: Some(0),
            ..PacingSpec::default()
        };
        let job = PacingSpec {
            concurrency: Some(Concurrency::Fixed(9)),
            burst: Some(0),
            max_retries: Some(2),
            ..PacingSpec::default()
        };
        let p = flags.or(job).resolve(auto);
        assert_eq!(p.concurrency, Concurrency::Fixed(1), "floored at 1");
        assert_eq!((p.rate_per_minute, p.burst, p.max_retries), (0, 1, 2));
        assert_eq!(p.lanes(), 1);
        let r = p.retry_policy();
        assert_eq!((r.max_retries, r.max_wait), (2, DEFAULT_MAX_WAIT));
        let capped = PacingSpec {
            max_concurrency: Some(16),
            ..PacingSpec::default()
        }
        .resolve(auto);
        assert_eq!(capped.concurrency, Concurrency::Auto { max: 16 });
        assert_eq!(capped.lanes(), 16);
    }

    #[test]
    fn concurrency_is_auto_or_a_positive_number() {
        assert_eq!(
            parse_concurrency("AUTO").unwrap(),
            Concurrency::Auto { max: 64 }
        );
        assert_eq!(parse_concurrency("8").unwrap(), Concurrency::Fixed(8));
        assert!(parse_concurrency("0").is_err());
        assert!(parse_concurrency("many").is_err());
    }
}
