//! A mirror of the server's token bucket, kept in step by `X-RateLimit-*` headers and 429s, so
//! that attempts slow down before the server's bucket runs dry.
//!
//! Each answer that carries the headers tells how many tokens were left when that attempt was
//! counted; refilling since then and subtracting the attempts sent since gives the estimate.
//! The refill rate is the one learned from the server (`rate.rs`), until then our configured
//! rate (the server's default of 1/s when unlimited). A 429 empties the mirror: it holds one
//! token again when the server's delay has passed. An attempt may go only when it leaves a small
//! reserve in the server's bucket (see [`throttle_delay`]); the reserve absorbs uneven network
//! delays and other clients sharing the key. A limiter that is down (`remaining` -1) empties the
//! mirror of any knowledge: the configured rate alone holds.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::rate::{Delay, RateModel};

/// The refill period the server is assumed to use when our own rate is unlimited (its default).
const SERVER_DEFAULT_PERIOD: Duration = Duration::from_secs(1);

/// Time for one token to refill at `rate_per_minute` (0 = the server default of 1 s).
pub(crate) fn refill_period(rate_per_minute: u32) -> Duration {
    if rate_per_minute == 0 {
        SERVER_DEFAULT_PERIOD
    } else {
        Duration::from_secs(60) / rate_per_minute
    }
}

/// Tokens to leave in the server's bucket: 2.5 % of its size, at least 2 (3 of 120).
pub(crate) fn reserve(limit: i64) -> i64 {
    (limit / 40).max(2).min(limit - 1).max(0)
}

/// How long to wait before the next attempt when the server's bucket holds `remaining` tokens
/// of `limit`, or `None` to go now.
///
/// A negative `remaining` (or a non-positive `limit`) means the server's limiter is down
/// (unknown, never "none left"): go. Otherwise go while one more attempt leaves the reserve
/// (2.5 % of `limit`, at least 2 tokens); below that, wait until the bucket has refilled to the reserve plus one, one
/// refill period (60 s / `rate_per_minute`; 1 s when unlimited) per missing token.
pub fn throttle_delay(remaining: i64, limit: i64, rate_per_minute: u32) -> Option<Duration> {
    if remaining < 0 || limit <= 0 {
        return None;
    }
    let keep = reserve(limit);
    if remaining > keep {
        return None;
    }
    let missing = u32::try_from(keep + 1 - remaining).ok()?;
    Some(refill_period(rate_per_minute) * missing)
}

/// The estimate, once an answer carried the headers.
#[derive(Debug, Clone, Copy)]
struct Known {
    tokens: f64,
    at: Instant,
    limit: i64,
}

#[derive(Debug, Default)]
struct State {
    /// Attempts passed so far (the last one's sequence number).
    passes: u64,
    known: Option<Known>,
    /// When the current wait ends (for progress).
    waiting_until: Option<Instant>,
    /// The server's bucket as learned so far.
    rate: RateModel,
}

/// The server-bucket mirror shared by all workers.
#[derive(Debug)]
pub(crate) struct Budget {
    state: Mutex<State>,
    rate_per_minute: u32,
}

impl Budget {
    /// A mirror assuming refills at `rate_per_minute` (0 = the server default).
    pub(crate) fn new(rate_per_minute: u32) -> Self {
        Budget {
            state: Mutex::new(State::default()),
            rate_per_minute,
        }
    }

    /// The refill rate the mirror assumes: the learned one, else ours (or the server default).
    fn per_sec(&self, st: &State) -> f64 {
        st.rate
            .learned()
            .unwrap_or_else(|| 1.0 / refill_period(self.rate_per_minute).as_secs_f64())
    }

    /// How long until a bucket holding `tokens` (below zero after a 429) of `limit` has one
    /// more than the reserve, at the assumed refill rate; `None` when one more attempt keeps
    /// the reserve already (the rule of [`throttle_delay`], on the fractional estimate).
    fn refill_time(&self, st: &State, tokens: f64, limit: i64) -> Option<Duration> {
        // Tolerate rounding: 3.9999999 tokens are 4.
        let tokens = tokens + 1e-6;
        let keep = reserve(limit);
        if limit <= 0 || tokens.floor() as i64 > keep {
            return None;
        }
        let missing = (keep + 1) as f64 - tokens;
        Some(Duration::from_secs_f64(
            (missing / self.per_sec(st).max(1e-3)).clamp(1e-3, 3600.0),
        ))
    }

    /// Waits until one more attempt keeps the reserve, then counts it. Returns the attempt's
    /// sequence number and how long it waited.
    pub(crate) async fn take(&self) -> (u64, Duration) {
        let start = Instant::now();
        let mut slept = false;
        loop {
            let now = Instant::now();
            let wait = {
                let mut st = lock(&self.state);
                let per_sec = self.per_sec(&st);
                let known = st.known.as_mut().map(|k| {
                    k.tokens =
                        (k.tokens + (now - k.at).as_secs_f64() * per_sec).min(k.limit as f64);
                    k.at = now;
                    (k.tokens, k.limit)
                });
                // Below zero (after a 429) the wait includes the climb back.
                let wait = known.and_then(|(tokens, limit)| self.refill_time(&st, tokens, limit));
                match wait {
                    None => {
                        if let Some(k) = st.known.as_mut() {
                            k.tokens -= 1.0;
                        }
                        st.passes += 1;
                        st.waiting_until = None;
                        let waited = if slept {
                            start.elapsed()
                        } else {
                            Duration::ZERO
                        };
                        return (st.passes, waited);
                    }
                    Some(d) => {
                        st.waiting_until = Some(now + d);
                        d
                    }
                }
            };
            slept = true;
            tokio::time::sleep(wait).await;
        }
    }

    /// Syncs the mirror with an answer to attempt `seq`, sent at `sent_at`.
    pub(crate) fn observe(&self, remaining: i64, limit: i64, sent_at: Instant, seq: u64) {
        let mut st = lock(&self.state);
        st.rate.observe(Instant::now(), remaining, limit);
        if remaining < 0 || limit <= 0 {
            st.known = None;
            return;
        }
        let now = Instant::now();
        let later = st.passes.saturating_sub(seq) as f64;
        let refilled = (now - sent_at).as_secs_f64() * self.per_sec(&st);
        st.known = Some(Known {
            tokens: (remaining as f64 + refilled - later).min(limit as f64),
            at: now,
            limit,
        });
    }

    /// A 429 asked to wait `wait` (`delay` when it named one, which the rate model learns
    /// from); `limit` is its `X-RateLimit-Limit`. The server's bucket holds less than one token:
    /// the mirror is set so that it holds one when the wait is over, then refills at the learned
    /// rate. Without a size from the headers or learned before, it paces one token at a time.
    pub(crate) fn throttled(&self, delay: Option<Delay>, wait: Duration, limit: Option<i64>) {
        let mut st = lock(&self.state);
        match delay {
            Some(d) => st.rate.throttled(Instant::now(), d, limit),
            None => st.rate.saw_limit(limit),
        }
        let limit = limit.filter(|l| *l > 0).or(st.rate.burst()).unwrap_or(1);
        st.known = Some(Known {
            tokens: 1.0 - wait.as_secs_f64() * self.per_sec(&st),
            at: Instant::now(),
            limit,
        });
    }

    /// The learned refill rate (tokens per second) and bucket size, when known.
    pub(crate) fn learned(&self) -> (Option<f64>, Option<i64>) {
        let st = lock(&self.state);
        (st.rate.learned(), st.rate.burst())
    }

    /// When the current wait ends, if one is going on.
    pub(crate) fn waiting_until(&self) -> Option<Instant> {
        lock(&self.state).waiting_until
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
            (4, 120, 60, None),         // one more leaves the reserve of 3
            (3, 120, 60, Some(s)),      // at the reserve: wait for one token
            (0, 120, 60, Some(s * 4)),  // empty: refill to the reserve plus one
            (0, 120, 120, Some(s * 2)), // 120/min: a period is half a second
            (0, 120, 0, Some(s * 4)),   // unlimited: the server default of 1/s
            (2, 10, 60, Some(s)),       // small bucket: reserve of 2
            (3, 10, 60, None),
            (25, 1000, 60, Some(s)), // 2.5 % of 1000
            (26, 1000, 60, None),
            (0, 1, 60, Some(s)), // a bucket of one: no reserve, wait for the token
            (1, 1, 60, None),
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
    async fn unknown_budget_never_waits_and_a_negative_remaining_forgets() {
        let b = Budget::new(60);
        for _ in 0..500 {
            assert_eq!(b.take().await.1, Duration::ZERO);
        }
        let (seq, _) = b.take().await;
        b.observe(0, 120, Instant::now(), seq);
        assert!(b.take().await.1 > Duration::ZERO);
        b.observe(-1, 120, Instant::now(), seq + 1);
        assert_eq!(b.take().await.1, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_sent_after_the_observed_one_are_counted() {
        let b = Budget::new(60);
        let (first, _) = b.take().await;
        for _ in 0..4 {
            b.take().await; // in flight, not yet answered
        }
        // The first answer says 7 left: 4 more went out since, so 3 remain = the reserve.
        b.observe(7, 120, Instant::now(), first);
        let (_, waited) = b.take().await;
        assert_eq!(waited, Duration::from_secs(1));
    }
}
