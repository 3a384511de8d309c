//! A mirror of the server's token bucket, kept in step by `X-RateLimit-*` headers, so that
//! attempts slow down before the server's bucket runs dry.
//!
//! Each answer that carries the headers tells how many tokens were left when that attempt was
//! counted; refilling since then (at our rate, or the server's default of 1/s when unlimited)
//! and subtracting the attempts sent since gives the estimate. An attempt may go only when it
//! leaves a small reserve in the server's bucket (see [`throttle_delay`]); the reserve absorbs
//! uneven network delays and other clients sharing the key.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

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

    fn per_sec(&self) -> f64 {
        1.0 / refill_period(self.rate_per_minute).as_secs_f64()
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
                let wait = st.known.as_mut().and_then(|k| {
                    k.tokens = (k.tokens + (now - k.at).as_secs_f64() * self.per_sec())
                        .min(k.limit as f64);
                    k.at = now;
                    throttle_delay(
                        k.tokens.floor().max(0.0) as i64,
                        k.limit,
                        self.rate_per_minute,
                    )
                });
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
        if remaining < 0 || limit <= 0 {
            st.known = None;
            return;
        }
        let now = Instant::now();
        let later = st.passes.saturating_sub(seq) as f64;
        let refilled = (now - sent_at).as_secs_f64() * self.per_sec();
        st.known = Some(Known {
            tokens: (remaining as f64 + refilled - later).min(limit as f64),
            at: now,
            limit,
        });
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
