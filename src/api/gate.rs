//! Pacing shared by every worker: the pause gate (closed by a 429 until its delay has passed),
//! the client-side GCRA governor, and the mirror of the server's bucket (`budget.rs`). All run
//! on tokio's clock, so paused-time tests drive them.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::Clock;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{middleware::NoOpMiddleware, Quota, RateLimiter};
use tokio::time::Instant;

use super::budget::Budget;
use super::rate::Delay;

/// Wait used when a 429 names no delay at all.
const DEFAULT_429_WAIT: Duration = Duration::from_secs(1);

/// Reason shown while waiting for a governor token or a low server budget.
pub(crate) const RATE_REASON: &str = "waiting for rate budget";

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

/// What an attempt went through at the gate.
#[derive(Debug)]
pub(crate) struct Passed {
    /// The attempt's sequence number (for [`Gate::observe_budget`]).
    pub(crate) seq: u64,
    /// Total wait and the last reason, when it waited.
    pub(crate) waited: Option<(Duration, String)>,
}

/// One pause gate, one governor and one server-bucket mirror for all workers of a client.
#[derive(Debug)]
pub(crate) struct Gate {
    closed: Mutex<Option<Closed>>,
    rate_wait_until: Mutex<Option<Instant>>,
    limiter: Option<Limiter>,
    budget: Budget,
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
            budget: Budget::new(rate_per_minute),
        }
    }

    /// Everything an attempt waits for before it is sent: the gate, one governor token, the
    /// server's reserve, and the gate again (a 429 may have closed it meanwhile).
    pub(crate) async fn pass(&self) -> Passed {
        let mut waited = Duration::ZERO;
        let mut reason = None;
        if let Some((d, r)) = self.wait_open().await {
            waited += d;
            reason = Some(r);
        }
        let token = self.wait_token().await;
        let (seq, budget) = self.budget.take().await;
        if !(token + budget).is_zero() {
            waited += token + budget;
            reason = Some(RATE_REASON.to_string());
        }
        if let Some((d, r)) = self.wait_open().await {
            waited += d;
            reason = Some(r);
        }
        Passed {
            seq,
            waited: reason.map(|r| (waited, r)),
        }
    }

    /// Syncs the server-bucket mirror with the rate-limit headers of attempt `seq`.
    pub(crate) fn observe_budget(&self, remaining: i64, limit: i64, sent_at: Instant, seq: u64) {
        self.budget.observe(remaining, limit, sent_at, seq);
    }

    /// A 429 that asked for `delay` (1 s when it named none) and said the bucket holds `limit`:
    /// closes the gate for everyone until the delay has passed, and empties the server-bucket
    /// mirror, which then refills at the learned rate (so the run goes on at that rate, not at
    /// our configured burst).
    pub(crate) fn throttled(&self, delay: Option<Delay>, limit: Option<i64>) {
        let wait = delay.map_or(DEFAULT_429_WAIT, |d| d.wait);
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        tracing::debug!(?wait, "429: pausing all workers");
        self.budget.throttled(delay, wait, limit);
        self.pause_until(
            Instant::now() + wait,
            format!("server asked to retry after {secs} s"),
        );
    }

    /// The server's refill rate (tokens per second) and bucket size as learned so far.
    pub(crate) fn learned(&self) -> (Option<f64>, Option<i64>) {
        self.budget.learned()
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
            .max(self.budget.waiting_until())
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

#[cfg(test)]
mod learn_tests;

#[cfg(test)]
mod tests {
    use super::*;

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

    /// The server's token bucket: `cap` tokens, refilled continuously at `per_sec`.
    struct Bucket {
        cap: f64,
        per_sec: f64,
        tokens: f64,
        at: Instant,
    }

    impl Bucket {
        /// Takes a token: `Ok(remaining, floored)` or `Err(time until a token)`.
        fn take(&mut self) -> Result<i64, Duration> {
            let now = Instant::now();
            let refill = (now - self.at).as_secs_f64() * self.per_sec;
            self.tokens = (self.tokens + refill).min(self.cap);
            self.at = now;
            if self.tokens >= 1.0 {
                self.tokens -= 1.0;
                Ok(self.tokens.floor() as i64)
            } else {
                Err(Duration::from_secs_f64((1.0 - self.tokens) / self.per_sec))
            }
        }
    }

    /// 600 attempts from 16 workers through one gate against a simulated server bucket of
    /// 120 refilled at 1/s, with uneven network delays. Returns (429s, elapsed).
    async fn simulate(max_delay_ms: u64, foreign_every: Option<Duration>) -> (u32, Duration) {
        use std::sync::atomic::{AtomicU32, Ordering};
        use std::sync::Arc;
        let gate = Arc::new(Gate::new(60, 120));
        let bucket = Arc::new(Mutex::new(Bucket {
            cap: 120.0,
            per_sec: 1.0,
            tokens: 120.0,
            at: Instant::now(),
        }));
        let next = Arc::new(AtomicU32::new(0));
        let rejected = Arc::new(AtomicU32::new(0));
        let start = Instant::now();
        // Another client on the same key, taking a token now and then.
        let foreign = foreign_every.map(|every| {
            let bucket = Arc::clone(&bucket);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let _ = lock(&bucket).take();
                }
            })
        });
        let mut workers = Vec::new();
        for _ in 0..16 {
            let (gate, bucket) = (Arc::clone(&gate), Arc::clone(&bucket));
            let (next, rejected) = (Arc::clone(&next), Arc::clone(&rejected));
            workers.push(tokio::spawn(async move {
                let mut i = next.fetch_add(1, Ordering::SeqCst);
                while i < 600 {
                    let seq = gate.pass().await.seq;
                    let sent = Instant::now();
                    let up = u64::from(i) * 7919 % (max_delay_ms + 1);
                    tokio::time::sleep(Duration::from_millis(up)).await;
                    let answer = lock(&bucket).take();
                    tokio::time::sleep(Duration::from_millis(max_delay_ms - up)).await;
                    match answer {
                        Ok(remaining) => {
                            gate.observe_budget(remaining, 120, sent, seq);
                            i = next.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(wait) => {
                            rejected.fetch_add(1, Ordering::SeqCst);
                            let delay = Delay {
                                wait,
                                slack: Some(Duration::ZERO),
                            };
                            gate.throttled(Some(delay), Some(120));
                        }
                    }
                }
            }));
        }
        for w in workers {
            w.await.unwrap();
        }
        if let Some(f) = foreign {
            f.abort();
        }
        (rejected.load(Ordering::SeqCst), start.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn the_default_budget_runs_600_ops_within_2_percent_of_ideal_without_429() {
        // Ideal: 120 at once, then one per second: 480 s.
        let ideal = Duration::from_secs(480);
        for max_delay_ms in [0, 50, 300, 900] {
            let (rejected, elapsed) = simulate(max_delay_ms, None).await;
            assert_eq!(
                rejected, 0,
                "429s with network delays up to {max_delay_ms} ms"
            );
            assert!(
                elapsed <= ideal.mul_f64(1.02) + Duration::from_millis(max_delay_ms),
                "{elapsed:?} with delays up to {max_delay_ms} ms"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_budget_shared_with_another_client_slows_down_instead_of_hitting_429() {
        for max_delay_ms in [0, 300] {
            let (rejected, elapsed) = simulate(max_delay_ms, Some(Duration::from_secs(20))).await;
            assert_eq!(
                rejected, 0,
                "429s with network delays up to {max_delay_ms} ms"
            );
            // The other client took about 25 of the tokens.
            assert!(
                elapsed <= Duration::from_secs(480 + 25).mul_f64(1.02),
                "{elapsed:?}"
            );
        }
    }
}
