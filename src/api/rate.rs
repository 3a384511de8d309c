//! Learning the server's bucket from what it says: its size from `X-RateLimit-Limit`, its refill
//! rate from how `X-RateLimit-Remaining` moves over time and from the delay of each 429. Pure
//! (times are passed in); the mirror in `budget.rs` refills at the learned rate.
//!
//! - **Remaining over time.** Between two answers at least [`MIN_SPAN`] and [`MIN_TOKENS`]
//!   counted answers apart, the bucket gained `remaining₂ − remaining₁ + consumed`, where
//!   `consumed` is the answers with rate-limit headers received in between (each took a token;
//!   a 429 takes none). Divided by the time, that is the refill rate: it replaces a figure that
//!   came from 429s alone, and is blended half-and-half with an earlier measure. Answers are counted in the order they arrive, which is about the order the
//!   server counted them; attempts still in flight at either end blur a measure by a few tokens,
//!   which the span and the blend smooth. When the later answer shows a (nearly) full bucket,
//!   the refill may have been capped: the figure is only a lower bound and can only raise it.
//!   This is how the learned rate rises again when the server allows more.
//! - **The delay of a 429.** The server answers 429 when its bucket holds less than one token and
//!   asks to wait until it holds one: `delay = (1 − tokens) / rate`, so `rate ≤ 1 / delay`. A
//!   precise delay (`retry_after_ms`) therefore caps the learned rate at that moment; a
//!   whole-second `Retry-After` of `s` caps it at `1 / (s − 1)` (none for `s = 1`).
//! - The real server's limiter under-counts concurrent requests (read-then-write), so headers
//!   can overstate what is left and the first figure can be too high; the next 429 caps it.

use std::time::Duration;

use tokio::time::Instant;

/// The shortest span between two answers used to measure the refill rate.
pub(crate) const MIN_SPAN: Duration = Duration::from_secs(2);
/// The fewest counted answers between two answers used to measure the refill rate.
pub(crate) const MIN_TOKENS: u64 = 8;
/// The lowest rate ever learned (one token per 20 s): a wrong low figure must not stall a run,
/// since only answers can correct it.
const MIN_RATE: f64 = 0.05;
/// A bucket with at most this many tokens missing counts as full (the refill may be capped).
const NEAR_FULL: i64 = 2;
/// Weight of a new measure against what was known.
const BLEND: f64 = 0.5;

/// One answer with rate-limit headers, the start of the next measure.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    at: Instant,
    remaining: i64,
    /// Counted answers received up to this one.
    counted: u64,
}

/// What a 429 said about how long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Delay {
    /// How long the server asked to wait.
    pub(crate) wait: Duration,
    /// How much longer than the true delay `wait` may be: zero for `retry_after_ms`, under a
    /// second for a whole-second `Retry-After`, unknown (`None`) for a reset time.
    pub(crate) slack: Option<Duration>,
}

/// The learned bucket.
#[derive(Debug, Default)]
pub(crate) struct RateModel {
    learned: Option<f64>,
    burst: Option<i64>,
    anchor: Option<Anchor>,
    /// Answers with rate-limit headers (each took one token).
    counted: u64,
    /// Whether `learned` comes from a measure (else from 429 bounds alone).
    measured: bool,
}

impl RateModel {
    /// The learned refill rate in tokens per second, once known.
    pub(crate) fn learned(&self) -> Option<f64> {
        self.learned
    }

    /// The bucket's size (`X-RateLimit-Limit`), once seen.
    pub(crate) fn burst(&self) -> Option<i64> {
        self.burst
    }

    /// An answer received at `at` said `remaining` of `limit` were left after its attempt.
    pub(crate) fn observe(&mut self, at: Instant, remaining: i64, limit: i64) {
        if remaining < 0 || limit <= 0 {
            // The server's limiter is down: nothing to learn, start measuring afresh later.
            self.anchor = None;
            return;
        }
        self.burst = Some(limit);
        self.counted += 1;
        let here = Anchor {
            at,
            remaining,
            counted: self.counted,
        };
        let Some(a) = self.anchor else {
            self.anchor = Some(here);
            return;
        };
        let consumed = self.counted - a.counted;
        if at < a.at + MIN_SPAN || consumed < MIN_TOKENS {
            return;
        }
        self.anchor = Some(here);
        let gained = (remaining - a.remaining) as f64 + consumed as f64;
        let rate = (gained / (at - a.at).as_secs_f64()).max(0.0);
        // Full at the end: the refill may have been cut at the cap. (Full at the start only is
        // fine: the answer that said so had already taken its token, and the bucket was below
        // its cap from then on while answers kept coming.)
        let capped = remaining >= limit - NEAR_FULL;
        let learned = match self.learned {
            Some(old) if capped => old.max(rate),
            // Only a 429's bound so far: the first measure is the better figure.
            Some(bound) if !self.measured => bound.min(rate),
            Some(old) => old * (1.0 - BLEND) + rate * BLEND,
            None if capped => return,
            None => rate,
        };
        self.measured = true;
        self.learned = Some(learned.max(MIN_RATE));
        tracing::debug!(rate, capped, learned = ?self.learned, "server refill measured");
    }

    /// A 429 said the bucket holds `limit` tokens when full.
    pub(crate) fn saw_limit(&mut self, limit: Option<i64>) {
        if let Some(l) = limit.filter(|l| *l > 0) {
            self.burst = Some(l);
        }
    }

    /// A 429 (with the bucket's size, when sent) asked to wait `delay`.
    pub(crate) fn throttled(&mut self, delay: Delay, limit: Option<i64>) {
        self.saw_limit(limit);
        let Some(slack) = delay.slack else { return };
        let Some(shortest) = delay.wait.checked_sub(slack).filter(|d| !d.is_zero()) else {
            return;
        };
        let cap = (1.0 / shortest.as_secs_f64()).max(MIN_RATE);
        self.learned = Some(self.learned.map_or(cap, |r| r.min(cap)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn precise(ms: u64) -> Delay {
        Delay {
            wait: MS * ms as u32,
            slack: Some(Duration::ZERO),
        }
    }

    #[test]
    fn remaining_over_time_gives_the_refill_rate() {
        let t0 = Instant::now();
        let s = |secs: f64| t0 + Duration::from_secs_f64(secs);
        let mut m = RateModel::default();
        m.observe(t0, 10, 20);
        // 25 answers over 1.5 s: too soon to measure.
        for i in 1..=25 {
            m.observe(s(1.5 * f64::from(i) / 25.0), 9, 20);
        }
        assert_eq!(m.learned(), None);
        // At 2 s, 26 answers since the first, 6 left: 22 refilled in 2 s → 11/s.
        m.observe(s(2.0), 6, 20);
        assert_eq!(m.learned(), Some(11.0));
        assert_eq!(m.burst(), Some(20));
        // The next 2 s: 18 answers, 6 left again → 9/s, blended half and half.
        for i in 1..=18 {
            m.observe(s(2.0 + 2.0 * f64::from(i) / 18.0), 6, 20);
        }
        assert_eq!(m.learned(), Some(10.0));
        // 429s take no token and do not count.
        m.throttled(
            Delay {
                wait: Duration::from_secs(1),
                slack: None,
            },
            Some(20),
        );
        assert_eq!(m.counted, 45);
    }

    #[test]
    fn a_full_bucket_only_raises_and_a_429_only_lowers() {
        let t0 = Instant::now();
        let mut m = RateModel::default();
        m.observe(t0, 19, 20);
        for i in 1..=10 {
            m.observe(t0 + Duration::from_millis(200 * i), 19, 20);
        }
        assert_eq!(m.learned(), None, "a full bucket says nothing at first");
        m.throttled(precise(100), Some(20));
        assert_eq!(m.learned(), Some(10.0));
        m.throttled(precise(50), Some(20)); // the bucket held half a token: rate ≤ 20
        assert_eq!(m.learned(), Some(10.0));
        // Refilled to full while 20 answers came in 2 s: at least (19 − 3 + 20) / 2 = 18/s.
        let mut m = RateModel::default();
        m.throttled(precise(100), Some(20));
        m.observe(t0, 3, 20);
        for i in 1..=20 {
            m.observe(
                t0 + Duration::from_millis(100 * i),
                3 + (i as i64 * 16) / 20,
                20,
            );
        }
        assert_eq!(m.learned(), Some(18.0));
        // A whole-second Retry-After of 1 caps nothing; one of 3 caps at 1 / 2 s.
        let coarse = |secs| Delay {
            wait: Duration::from_secs(secs),
            slack: Some(Duration::from_secs(1)),
        };
        m.throttled(coarse(1), None);
        assert_eq!(m.learned(), Some(18.0));
        m.throttled(coarse(3), None);
        assert_eq!(m.learned(), Some(0.5));
        // A reset time's delay is of unknown precision: no cap.
        m.learned = Some(10.0);
        m.throttled(
            Delay {
                wait: Duration::from_secs(5),
                slack: None,
            },
            None,
        );
        assert_eq!(m.learned(), Some(10.0));
    }

    #[test]
    fn a_limiter_that_is_down_restarts_the_measure_and_no_rate_falls_to_zero() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut m = RateModel::default();
        m.observe(t0, 10, 20);
        m.observe(at(1000), -1, 20);
        for i in 0..20 {
            m.observe(at(2000 + 100 * i), 10, 20);
        }
        assert_eq!(m.learned(), None, "needs 2 s after the limiter came back");
        m.observe(at(4000), 10, 20);
        assert_eq!(m.learned(), Some(10.0));
        // Another client drained the bucket meanwhile: the measure says less than nothing came
        // in, which counts as nothing; the rate never falls below the floor.
        for _ in 0..10 {
            for i in 1..=8 {
                m.observe(at(4000 + 250 * i), 0, 20);
            }
            m.anchor = Some(Anchor {
                at: at(4000),
                remaining: 10,
                counted: m.counted - 8,
            });
        }
        assert!(
            m.learned().is_some_and(|r| r >= MIN_RATE),
            "{:?}",
            m.learned()
        );
    }
}
