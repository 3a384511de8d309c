//! Pacing and the connected client: the settings every command shares (concurrency, rate,
//! burst, retries), the one place a retry policy is built, and [`Runner`], the client with
//! the run's stop and its statistics.

use super::fatal;
use super::signals::Stop;
use crate::api::{Client, ClientConfig};
use crate::connect::Connection;
use crate::error::Result;
use crate::exec::retry::RetryPolicy;
use std::time::{Duration, Instant};

/// Default operations in flight.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// Default client-side rate: the server's default refill.
pub const DEFAULT_RATE_PER_MINUTE: u32 = 60;
/// Default client-side burst: the server's default bucket.
pub const DEFAULT_BURST: u32 = 120;
/// Default retries per request.
pub const DEFAULT_MAX_RETRIES: u32 = 5;

/// How requests are paced and retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pacing {
    /// Operations (lanes, or tickets for a backup) in flight at once.
    pub concurrency: usize,
    /// Client-side requests per minute; 0 = no client-side limit.
    pub rate_per_minute: u32,
    /// Client-side burst (at least 1).
    pub burst: u32,
    /// Retries per request.
    pub max_retries: u32,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            concurrency: DEFAULT_CONCURRENCY,
            rate_per_minute: DEFAULT_RATE_PER_MINUTE,
            burst: DEFAULT_BURST,
            max_retries: DEFAULT_MAX_RETRIES,
        }
    }
}

impl Pacing {
    /// Settings from optional values (flags, then a job file's), defaults for the rest.
    pub fn merge(
        concurrency: Option<usize>,
        rate_per_minute: Option<u32>,
        burst: Option<u32>,
        max_retries: Option<u32>,
    ) -> Pacing {
        Pacing {
            concurrency: concurrency.unwrap_or(DEFAULT_CONCURRENCY).max(1),
            rate_per_minute: rate_per_minute.unwrap_or(DEFAULT_RATE_PER_MINUTE),
            burst: burst.unwrap_or(DEFAULT_BURST).max(1),
            max_retries: max_retries.unwrap_or(DEFAULT_MAX_RETRIES),
        }
    }

    /// The retry policy of every request: exponential backoff from 500 ms, capped at 30 s.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_retries: self.max_retries,
            base: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
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
        adjust(&mut cfg);
        let client = crate::connect::build(cfg)?;
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
    fn merge_takes_values_in_order_and_floors_the_limits() {
        assert_eq!(Pacing::merge(None, None, None, None), Pacing::default());
        let p = Pacing::merge(Some(0), Some(0), Some(0), Some(2));
        assert_eq!(
            (p.concurrency, p.rate_per_minute, p.burst, p.max_retries),
            (1, 0, 1, 2)
        );
        let r = p.retry_policy();
        assert_eq!(r.max_retries, 2);
        assert_eq!(r.base, Duration::from_millis(500));
    }
}
