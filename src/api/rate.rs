//! Learning the server's bucket from what it says: its size from `X-RateLimit-Limit`, its refill
//! rate from how `X-RateLimit-Remaining` moves over time and from the delay of each 429. Pure
//! (times are passed in); the mirror in `budget.rs` refills at the learned rate.
//!
//! - **Remaining over time.** Between two answers at least [`MIN_SPAN`] and [`MIN_TOKENS`]
//!   counted answers apart, the bucket gained `remaining₂ − remaining₁ + consumed`, where
//!   `consumed` is the answers with rate-limit headers received in between (each took a token;
//!   a 429 takes none). Divided by the time, that is the refill rate: it replaces a figure that
//!   came from 429s alone, and is blended half-and-half with an earlier measure. Answers are
//!   counted in the order they arrive, which is about the order the server counted them;
//!   attempts still in flight at either end blur a measure by a few tokens, which the span and
//!   the blend smooth. When the later answer shows a (nearly) full bucket, the refill may have
//!   been capped: the figure is only a lower bound and can only raise it.
//!   This is how the learned rate rises again when the server allows more.
//! - **The delay of a 429.** The server answers 429 when its bucket holds less than one token and
//!   asks to wait until it holds one: `delay = (1 − tokens) / rate`, so `rate ≤ 1 / delay`. A
//!   precise delay (`retry_after_ms`) therefore caps the learned rate at that moment; a
//!   whole-second `Retry-After` of `s` caps it at `1 / (s − 1)` (none for `s = 1`).
//! - **Two 429s.** A precise delay also says *when* the bucket will hold one token again: the
//!   429's ready time (received at + delay). Between the ready times of two 429s the bucket
//!   gained exactly the tokens the answers counted in between took (it was below one token at
//!   both; unless it could have filled up meanwhile, which takes `limit − 1` counted answers,
//!   when the figure is a lower bound). So `rate = counted / (ready₂ − ready₁)`, a measure
//!   within a few hundred milliseconds of the first 429, where the remaining-over-time measure
//!   needs [`MIN_SPAN`]. At least [`MIN_PAIR_TOKENS`] answers apart, so that one answer counted
//!   out of order does not halve or double it. Without it, a client sending just above the
//!   server's rate met one 429 per success: the bucket is rarely quite empty when it refuses,
//!   so the delays are short and their bounds loose.
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
/// The fewest counted answers between two 429s used to measure the refill rate.
pub(crate) const MIN_PAIR_TOKENS: u64 = 2;

/// A 429 with a precise delay, the start of the next two-429 measure.
#[derive(Debug, Clone, Copy)]
struct Refusal {
    /// When the server's bucket holds one token again.
    ready: Instant,
    /// Counted answers received up to this 429.
    counted: u64,
}

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
    /// The last 429 with a precise delay that started a two-429 measure.
    refusal: Option<Refusal>,
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
            self.refusal = None;
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
        self.measured_rate(rate, capped, "remaining over time");
    }

    /// A measure of the refill rate; `capped` when it is only a lower bound.
    fn measured_rate(&mut self, rate: f64, capped: bool, from: &'static str) {
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
        tracing::debug!(rate, capped, from, learned = ?self.learned, "server refill measured");
    }

    /// A 429 received at `at` with a precise delay `wait`: measures the rate from the last
    /// such 429 when enough answers were counted in between (see the module docs).
    fn refused_at(&mut self, at: Instant, wait: Duration) {
        let here = Refusal {
            ready: at + wait,
            counted: self.counted,
        };
        let Some(last) = self.refusal else {
            self.refusal = Some(here);
            return;
        };
        let counted = here.counted - last.counted;
        if counted < MIN_PAIR_TOKENS || here.ready <= last.ready {
            // Too close to tell (429s of attempts in flight together): keep the earlier start.
            return;
        }
        self.refusal = Some(here);
        let rate = counted as f64 / (here.ready - last.ready).as_secs_f64();
        // The bucket may have filled up in between only if the answers could drain it again.
        let capped = self.burst.is_none_or(|b| counted + 1 >= b.max(1) as u64);
        self.measured_rate(rate, capped, "two 429s");
    }

    /// A 429 said the bucket holds `limit` tokens when full.
    pub(crate) fn saw_limit(&mut self, limit: Option<i64>) {
        if let Some(l) = limit.filter(|l| *l > 0) {
            self.burst = Some(l);
        }
    }

    /// A 429 received at `at` (with the bucket's size, when sent) asked to wait `delay`.
    pub(crate) fn throttled(&mut self, at: Instant, delay: Delay, limit: Option<i64>) {
        self.saw_limit(limit);
        let Some(slack) = delay.slack else { return };
        if slack.is_zero() {
            self.refused_at(at, delay.wait);
        }
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
            t0,
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
        m.throttled(t0, precise(100), Some(20));
        assert_eq!(m.learned(), Some(10.0));
        m.throttled(t0, precise(50), Some(20)); // the bucket held half a token: rate ≤ 20
        assert_eq!(m.learned(), Some(10.0));
        // Refilled to full while 20 answers came in 2 s: at least (19 − 3 + 20) / 2 = 18/s.
        let mut m = RateModel::default();
        m.throttled(t0, precise(100), Some(20));
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
        m.throttled(t0, coarse(1), None);
        assert_eq!(m.learned(), Some(18.0));
        m.throttled(t0, coarse(3), None);
        assert_eq!(m.learned(), Some(0.5));
        // A reset time's delay is of unknown precision: no cap.
        m.learned = Some(10.0);
        m.throttled(
            t0,
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

    #[test]
    fn two_429s_with_answers_between_measure_the_rate() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut m = RateModel::default();
        // Ready at 120 ms; bound 1 / 20 ms = 50/s.
        m.throttled(at(100), precise(20), Some(20));
        assert_eq!(m.learned(), Some(50.0));
        // One answer, then a 429 ready at 230 ms: one answer is too few to tell.
        m.observe(at(150), 0, 20);
        m.throttled(at(220), precise(10), Some(20));
        assert_eq!(m.learned(), Some(50.0));
        // A second answer, then a 429 ready at 320 ms: 2 tokens in 200 ms → 10/s, which
        // replaces the bounds.
        m.observe(at(250), 0, 20);
        m.throttled(at(310), precise(10), Some(20));
        assert_eq!(m.learned(), Some(10.0));
        // The next measure, from that 429: 3 tokens in 250 ms → 12/s, blended → 11/s.
        for ms in [350, 400, 450] {
            m.observe(at(ms), 0, 20);
        }
        m.throttled(at(560), precise(10), Some(20));
        assert_eq!(m.learned(), Some(11.0));
    }

    #[test]
    fn two_429s_far_apart_only_raise_and_coarse_delays_measure_nothing() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut m = RateModel {
            learned: Some(10.0),
            measured: true,
            ..RateModel::default()
        };
        m.throttled(at(0), precise(100), Some(5));
        // 4 answers in between: the bucket of 5 may have filled up meanwhile, so 4 tokens in
        // 2 s (2/s) is only a lower bound and lowers nothing.
        for ms in [500, 1000, 1500, 1900] {
            m.observe(at(ms), 0, 5);
        }
        m.throttled(at(2000), precise(100), Some(5));
        assert_eq!(m.learned(), Some(10.0));
        // Whole-second delays say too little about when the bucket refills.
        let mut m = RateModel::default();
        let coarse = Delay {
            wait: Duration::from_secs(1),
            slack: Some(Duration::from_secs(1)),
        };
        m.throttled(at(0), coarse, Some(20));
        for ms in [100, 200, 300] {
            m.observe(at(ms), 0, 20);
        }
        m.throttled(at(400), coarse, Some(20));
        assert_eq!(m.learned(), None);
        // A limiter that is down forgets the earlier 429.
        let mut m = RateModel::default();
        m.throttled(at(0), precise(100), Some(20));
        m.observe(at(100), -1, 20);
        for ms in [200, 300, 400] {
            m.observe(at(ms), 0, 20);
        }
        m.throttled(at(500), precise(100), Some(20));
        assert_eq!(m.learned(), Some(10.0), "the bounds of 1 / 100 ms alone");
    }
}
