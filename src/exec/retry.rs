//! Retrying one operation: exponential backoff with jitter, driven by [`ApiError::class`].
//!
//! A 429 waits on the client's shared pause gate (every attempt passes it), so here it only
//! adds a tiny jitter; other retryable errors back off exponentially (and at least as long as
//! a `Retry-After` the server sent, up to the cap). Fatal, permanent and outcome-unknown
//! errors return at once. Every retry is counted with [`Client::note_retry`].
//!
//! A 429 is the server's scheduling, not a failure: it does not use up `max_retries`. An
//! operation gives up on 429s only once it has been held back by them for `max_wait` (counted
//! from its first 429), which ends a run whose server never lets it through.

use std::future::Future;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

use crate::api::{track_sent, ApiError, Client, RetryClass};

/// Largest jitter added before re-trying a 429 (the gate does the real waiting).
const THROTTLE_JITTER: Duration = Duration::from_millis(50);

/// How often and how patiently to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (`--max-retries`).
    pub max_retries: u32,
    /// First backoff step.
    pub base: Duration,
    /// Cap of one backoff delay.
    pub max_delay: Duration,
    /// Longest one operation may be held back by 429s (`--max-wait`).
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    /// 5 retries, 500 ms base, 30 s cap, 10 min of 429s.
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            base: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_wait: Duration::from_secs(600),
        }
    }
}

impl RetryPolicy {
    /// A decorrelated-jitter backoff seeded from the OS.
    pub fn backoff(&self) -> BackoffIter {
        BackoffIter::new(self, Jitter::Decorrelated, SmallRng::from_entropy())
    }
}

/// Which jitter a [`BackoffIter`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Uniform in `[0, min(cap, base * 2^n)]`.
    Full,
    /// Uniform in `[base, 3 * previous]`, capped (grows exponentially on average, never below
    /// `base`).
    Decorrelated,
}

/// An endless iterator of backoff delays. Pure: the RNG is injected.
#[derive(Debug, Clone)]
pub struct BackoffIter {
    base: Duration,
    max: Duration,
    jitter: Jitter,
    step: u32,
    prev: Duration,
    rng: SmallRng,
}

impl BackoffIter {
    /// A backoff for `policy` with the given jitter and RNG (seed it in tests).
    pub fn new(policy: &RetryPolicy, jitter: Jitter, rng: SmallRng) -> Self {
        let max = policy.max_delay.max(policy.base);
        BackoffIter {
            base: policy.base,
            max,
            jitter,
            step: 0,
            prev: policy.base,
            rng,
        }
    }

    /// A small random delay in `[0, max]`.
    pub fn tiny(&mut self, max: Duration) -> Duration {
        uniform(&mut self.rng, Duration::ZERO, max)
    }
}

impl Iterator for BackoffIter {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = match self.jitter {
            Jitter::Full => {
                let factor = 1u32.checked_shl(self.step.min(31)).unwrap_or(u32::MAX);
                let cap = self.base.saturating_mul(factor).min(self.max);
                uniform(&mut self.rng, Duration::ZERO, cap)
            }
            Jitter::Decorrelated => {
                let hi = self.prev.saturating_mul(3).min(self.max);
                uniform(&mut self.rng, self.base.min(hi), hi)
            }
        };
        self.step = self.step.saturating_add(1);
        self.prev = delay.max(self.base);
        Some(delay)
    }
}

/// Uniform duration in `[lo, hi]` (nanosecond resolution).
fn uniform(rng: &mut SmallRng, lo: Duration, hi: Duration) -> Duration {
    let lo_n = u64::try_from(lo.as_nanos()).unwrap_or(u64::MAX);
    let hi_n = u64::try_from(hi.as_nanos()).unwrap_or(u64::MAX);
    if hi_n <= lo_n {
        return lo;
    }
    Duration::from_nanos(rng.gen_range(lo_n..=hi_n))
}

/// The outcome of an operation after its retries.
#[derive(Debug)]
pub struct Attempted<T> {
    /// The value, or the final error (`ApiError::Cancelled` when stopped).
    pub result: Result<T, ApiError>,
    /// Attempts made (one cancelled before its request was sent is not counted).
    pub attempts: u32,
    /// Class of the final error; `None` on success. A create cancelled after its request was
    /// handed to the network is `OutcomeUnknown` (it may have been committed); one cancelled
    /// while still waiting for the gate or the rate budget is `Permanent` (nothing was sent).
    pub class: Option<RetryClass>,
}

impl<T> Attempted<T> {
    /// The same outcome with the value mapped.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Attempted<U> {
        Attempted {
            result: self.result.map(f),
            attempts: self.attempts,
            class: self.class,
        }
    }
}

/// Runs `attempt` until it succeeds, fails for good, runs out of retries, or `cancel` fires.
/// `idempotent` is false for creates: their lost answers are never re-sent.
pub async fn with_retries<T, F, Fut>(
    client: &Client,
    policy: &RetryPolicy,
    idempotent: bool,
    cancel: &CancellationToken,
    mut attempt: F,
) -> Attempted<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let mut backoff = policy.backoff();
    let mut tally = Tally::default();
    loop {
        if cancel.is_cancelled() {
            return cancelled(tally.attempts, RetryClass::Permanent);
        }
        let made = tally.attempts;
        let result = match race_cancel(attempt(), made, idempotent, cancel).await {
            ControlFlow::Continue(result) => result,
            ControlFlow::Break(done) => return done,
        };
        tally.count(&result);
        let attempts = tally.attempts;
        let err = match settle(result, &tally, idempotent, policy) {
            ControlFlow::Continue(err) => err,
            ControlFlow::Break(done) => return done,
        };
        let delay = retry_delay(&err, policy, &mut backoff);
        tracing::debug!(attempts, ?delay, error = %err.one_line(), "retrying");
        client.note_retry();
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return cancelled(attempts, RetryClass::Permanent),
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// What an operation's attempts so far add up to.
#[derive(Debug, Default)]
struct Tally {
    /// Attempts sent.
    attempts: u32,
    /// Attempts that ended other than with a 429 (these use up `max_retries`).
    counted: u32,
    /// When the first 429 came.
    first_429: Option<tokio::time::Instant>,
}

impl Tally {
    fn count<T>(&mut self, result: &Result<T, ApiError>) {
        self.attempts += 1;
        match result {
            Err(e) if e.status() == Some(429) => {
                self.first_429.get_or_insert_with(tokio::time::Instant::now);
            }
            _ => self.counted += 1,
        }
    }

    /// Whether the last attempt's error leaves no retry: out of retries, or held back by
    /// 429s for `max_wait` (or asked to wait longer than what is left of it).
    fn exhausted(&self, err: &ApiError, policy: &RetryPolicy) -> bool {
        if err.status() == Some(429) {
            let asked = err.retry_after().unwrap_or_default();
            return self
                .first_429
                .is_some_and(|t| t.elapsed() + asked > policy.max_wait);
        }
        self.counted > policy.max_retries
    }
}

/// The outcome of an operation stopped by cancellation.
fn cancelled<T>(attempts: u32, class: RetryClass) -> Attempted<T> {
    Attempted {
        result: Err(ApiError::Cancelled),
        attempts,
        class: Some(class),
    }
}

/// Runs one attempt unless `cancel` fires first (`made` attempts so far). A cancelled create
/// whose request was already handed to the network counts as an attempt of unknown outcome.
async fn race_cancel<T, Fut>(
    attempt: Fut,
    made: u32,
    idempotent: bool,
    cancel: &CancellationToken,
) -> ControlFlow<Attempted<T>, Result<T, ApiError>>
where
    Fut: Future<Output = Result<T, ApiError>>,
{
    let sent = Arc::new(AtomicBool::new(false));
    tokio::select! {
        biased;
        _ = cancel.cancelled() => {
            if !sent.load(Ordering::Relaxed) {
                return ControlFlow::Break(cancelled(made, RetryClass::Permanent));
            }
            let class = if idempotent { RetryClass::Permanent } else { RetryClass::OutcomeUnknown };
            ControlFlow::Break(cancelled(made + 1, class))
        }
        r = track_sent(Arc::clone(&sent), attempt) => ControlFlow::Continue(r),
    }
}

/// Decides after attempt number `attempts`: done (success, a final class, or out of retries),
/// or the error to retry.
fn settle<T>(
    result: Result<T, ApiError>,
    tally: &Tally,
    idempotent: bool,
    policy: &RetryPolicy,
) -> ControlFlow<Attempted<T>, ApiError> {
    let attempts = tally.attempts;
    let err = match result {
        Ok(value) => {
            return ControlFlow::Break(Attempted {
                result: Ok(value),
                attempts,
                class: None,
            })
        }
        Err(e) => e,
    };
    let class = err.class(idempotent);
    if class != RetryClass::Retry || tally.exhausted(&err, policy) {
        return ControlFlow::Break(Attempted {
            result: Err(err),
            attempts,
            class: Some(class),
        });
    }
    ControlFlow::Continue(err)
}

/// How long to wait before retrying after `err`.
pub(crate) fn retry_delay(
    err: &ApiError,
    policy: &RetryPolicy,
    backoff: &mut BackoffIter,
) -> Duration {
    if err.status() == Some(429) {
        return backoff.tiny(THROTTLE_JITTER);
    }
    let step = backoff.next().unwrap_or(policy.base);
    let asked = err.retry_after().unwrap_or_default().min(policy.max_delay);
    step.max(asked)
}

#[cfg(test)]
mod tests;
