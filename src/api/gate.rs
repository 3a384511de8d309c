//! Pacing shared by every worker: the pause gate (set by a 429 or a low rate budget) and the
//! client-side GCRA governor. Both run on tokio's clock, so paused-time tests drive them.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::Clock;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{middleware::NoOpMiddleware, Quota, RateLimiter};
use tokio::time::Instant;

/// Reason shown while waiting for a governor token or a low server budget.
pub(crate) const RATE_REASON: &str = "waiting for rate budget";

/// The refill period the server is assumed to use when our own rate is unlimited (its default).
const SERVER_DEFAULT_PERIOD: Duration = Duration::from_secs(1);

/// A governor clock on tokio's time source, counting from the limiter's creation.
#[derive(Debug, Clone)]
pub(crate) struct TokioClock {
    start: Instant,
}

impl Clock for TokioClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.start.elapsed())
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Nanos>>;

/// The gate's closed state: no attempt may start before `until`.
#[derive(Debug, Clone)]
struct Closed {
    until: Instant,
    reason: String,
}

/// One pause gate and one governor for all workers of a client.
#[derive(Debug)]
pub(crate) struct Gate {
    closed: Mutex<Option<Closed>>,
    rate_wait_until: Mutex<Option<Instant>>,
    limiter: Option<Limiter>,
}

impl Gate {
    /// A gate with a governor of `rate_per_minute` (0 = none) and `burst` (at least 1).
    pub(crate) fn new(rate_per_minute: u32, burst: u32) -> Self {
        let limiter = NonZeroU32::new(rate_per_minute).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
            let quota = Quota::per_minute(rate).allow_burst(burst);
            RateLimiter::direct_with_clock(
                quota,
                TokioClock {
                    start: Instant::now(),
                },
            )
        });
        Gate {
            closed: Mutex::new(None),
            rate_wait_until: Mutex::new(None),
            limiter,
        }
    }

    /// Closes the gate until `until` (never shortens an existing pause).
    pub(crate) fn pause_until(&self, until: Instant, reason: String) {
        let mut g = lock(&self.closed);
        match g.as_ref() {
            Some(c) if c.until >= until => {}
            _ => *g = Some(Closed { until, reason }),
        }
    }

    /// Waits until the gate is open. Returns how long it waited and why.
    pub(crate) async fn wait_open(&self) -> Option<(Duration, String)> {
        let start = Instant::now();
        let mut reason = None;
        loop {
            let closed = lock(&self.closed).clone();
            match closed {
                Some(c) if c.until > Instant::now() => {
                    reason = Some(c.reason);
                    tokio::time::sleep_until(c.until).await;
                }
                _ => break,
            }
        }
        reason.map(|r| (start.elapsed(), r))
    }

    /// Waits for one governor token. Returns how long it waited.
    pub(crate) async fn wait_token(&self) -> Duration {
        let Some(limiter) = &self.limiter else {
            return Duration::ZERO;
        };
        let start = Instant::now();
        let mut slept = false;
        loop {
            match limiter.check() {
                Ok(()) => break,
                Err(not_until) => {
                    slept = true;
                    let wait = not_until.wait_time_from(limiter_now(limiter));
                    let until = Instant::now() + wait;
                    *lock(&self.rate_wait_until) = Some(until);
                    tokio::time::sleep_until(until).await;
                }
            }
        }
        if slept {
            start.elapsed()
        } else {
            Duration::ZERO
        }
    }

    /// What is being waited for right now, and for how much longer.
    pub(crate) fn wait_reason(&self) -> Option<(String, Duration)> {
        let now = Instant::now();
        let gate = lock(&self.closed)
            .as_ref()
            .filter(|c| c.until > now)
            .map(|c| (c.reason.clone(), c.until - now));
        let rate = lock(&self.rate_wait_until)
            .filter(|u| *u > now)
            .map(|u| (RATE_REASON.to_string(), u - now));
        match (gate, rate) {
            (Some(g), Some(r)) => Some(if g.1 >= r.1 { g } else { r }),
            (g, r) => g.or(r),
        }
    }
}

fn limiter_now(limiter: &Limiter) -> Nanos {
    limiter.clock().now()
}

/// Locks a mutex, recovering from poisoning (the data is plain state that stays valid).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Time for one token to refill at `rate_per_minute` (0 = the server default of 1 s).
pub(crate) fn refill_period(rate_per_minute: u32) -> Duration {
    if rate_per_minute == 0 {
        SERVER_DEFAULT_PERIOD
    } else {
        Duration::from_secs(60) / rate_per_minute
    }
}

/// How long to hold back the next attempt given the server's rate-limit headers.
///
/// A negative `remaining` (or a non-positive `limit`) means the server's limiter is down: no
/// delay. Below the low-water mark (5 % of the limit, at least 3 tokens) the delay grows
/// linearly to one refill period (60 s / `rate_per_minute`; 1 s when unlimited) at zero left.
pub fn throttle_delay(remaining: i64, limit: i64, rate_per_minute: u32) -> Option<Duration> {
    if remaining < 0 || limit <= 0 {
        return None;
    }
    let low_water = (limit / 20).max(3);
    if remaining >= low_water {
        return None;
    }
    let deficit = u32::try_from(low_water - remaining).ok()?;
    let low_water = u32::try_from(low_water).ok()?;
    Some(refill_period(rate_per_minute) * deficit / low_water)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_delay_table() {
        let s = Duration::from_secs(1);
        let cases: &[(i64, i64, u32, Option<Duration>)] = &[
            (-1, 120, 60, None), // limiter down: unknown, not "none left"
            (-5, 120, 60, None),
            (0, 0, 60, None), // no usable limit
            (119, 120, 60, None),
            (6, 120, 60, None), // 5 % of 120 = 6: at the mark, no delay
            (5, 120, 60, Some(s / 6)),
            (0, 120, 60, Some(s)),      // empty bucket: one refill period
            (0, 120, 120, Some(s / 2)), // our rate is 120/min: half a second
            (0, 120, 0, Some(s)),       // unlimited: assume the server default
            (2, 10, 60, Some(s / 3)),   // small limit: low water of 3 tokens
            (3, 10, 60, None),
            (0, 1000, 60, Some(s)), // 5 % of 1000 = 50
            (49, 1000, 60, Some(s / 50)),
        ];
        for (remaining, limit, rate, want) in cases {
            assert_eq!(
                throttle_delay(*remaining, *limit, *rate),
                *want,
                "remaining {remaining} limit {limit} rate {rate}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn governor_allows_the_burst_then_paces() {
        let gate = Gate::new(60, 3);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(gate.wait_token().await, Duration::ZERO);
        }
        let waited = gate.wait_token().await;
        assert!(waited >= Duration::from_millis(990), "{waited:?}");
        assert!(start.elapsed() < Duration::from_millis(1100));
        gate.wait_token().await;
        assert!(start.elapsed() >= Duration::from_millis(1990));
    }

    #[tokio::test(start_paused = true)]
    async fn unlimited_governor_never_waits() {
        let gate = Gate::new(0, 0);
        for _ in 0..1000 {
            assert_eq!(gate.wait_token().await, Duration::ZERO);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn pause_is_never_shortened_and_reports_its_reason() {
        let gate = Gate::new(0, 0);
        let now = Instant::now();
        gate.pause_until(now + Duration::from_secs(30), "long".into());
        gate.pause_until(now + Duration::from_secs(1), "short".into());
        let (reason, left) = gate.wait_reason().unwrap();
        assert_eq!(reason, "long");
        assert_eq!(left, Duration::from_secs(30));
        let (waited, why) = gate.wait_open().await.unwrap();
        assert_eq!(why, "long");
        assert_eq!(waited, Duration::from_secs(30));
        assert!(gate.wait_reason().is_none());
        assert!(gate.wait_open().await.is_none());
    }
}
