//! An adaptive concurrency limit per class of request, found from latency (like TCP Vegas and
//! Netflix's concurrency-limits, kept small): how many requests of a class may be in flight.
//!
//! Samples (latency and [`Outcome`] of each finished request) are gathered in windows of
//! `max(limit, 4)` samples, about one round trip's worth. At the end of a window:
//!
//! - a window with an overload sample (5xx, timeout, refused connection) multiplies the limit by
//!   [`BACKOFF`], once per window however many failed;
//! - otherwise its mean latency is compared with the no-load latency (the lowest window mean
//!   seen, which creeps up by [`BASELINE_DRIFT`] per window so that a server that became slower
//!   for good is learned again): at most `1 +` [`GROW_BELOW`] times it, the limit grows, by 1 and
//!   then by twice as much each further growing window (1, 2, 4 …; at most 1 while a back-off
//!   is recent); above `1 +` [`SHRINK_ABOVE`] times it, the limit is scaled by
//!   `(1 + GROW_BELOW) / ratio` (at least halved); in between it holds.
//! - a window in which fewer than half the permits were in use does not grow the limit (the
//!   callers, not the server, were the bottleneck).
//!
//! The limit stays within `1..=max`. Against a server with N workers whose requests slow down
//! past N (the sandbox's `--capacity` model) it settles at 8–9 for N = 8 and 34–37 for N = 32
//! (see the tests' figures): up to N, latency stays at the no-load value; past N every request
//! queues and is served more slowly, which the ratio sees. A sample only counts if its request
//! was let in after the limit last changed, so each change is judged on its own effect.
//!
//! [`Limiter::acquire`] waits for a permit; [`Permit::record`] feeds its outcome (latency since
//! the permit was granted, or [`Permit::record_latency`] with the caller's own measure, e.g. from
//! the moment the request was sent after any rate wait). A permit dropped without a record
//! counts as [`Outcome::Ignore`]. One [`Limiter`] per class: see [`Limiters`].

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::api::ApiError;

/// Factor applied to the limit after a window with an overload sample.
pub(crate) const BACKOFF: f64 = 0.75;
/// A window whose mean latency is at most `1 + GROW_BELOW` times the no-load latency grows the
/// limit.
pub(crate) const GROW_BELOW: f64 = 0.05;
/// A window whose mean latency is above `1 + SHRINK_ABOVE` times the no-load latency shrinks it.
pub(crate) const SHRINK_ABOVE: f64 = 0.10;
/// How much the no-load latency creeps up per second without a lower window mean.
pub(crate) const BASELINE_DRIFT: f64 = 0.01;
/// The fewest samples in a window.
pub(crate) const MIN_WINDOW: u32 = 4;
/// Windows after a back-off during which the limit grows by 1 at most.
const CAREFUL_WINDOWS: u32 = 8;

/// How a request ended, for the limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered normally: its latency counts.
    Success,
    /// The server is overloaded: 5xx, a timeout, a refused or dropped connection.
    Overload,
    /// Says nothing about the server's capacity (429, 4xx, cancelled, local errors).
    Ignore,
}

impl Outcome {
    /// The outcome of one API call.
    pub fn of<T>(result: &Result<T, ApiError>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(ApiError::Status { status, .. }) if *status >= 500 => Outcome::Overload,
            Err(ApiError::Timeout(_) | ApiError::Connect(_) | ApiError::NoResponse(_)) => {
                Outcome::Overload
            }
            Err(_) => Outcome::Ignore,
        }
    }
}

/// Bounds of an adaptive limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimiterConfig {
    /// The limit before any sample (at least 1).
    pub initial: u32,
    /// The largest limit (`--max-concurrency`, at least 1).
    pub max: u32,
}

impl Default for LimiterConfig {
    /// Start at 4 (the old fixed default), never above 64.
    fn default() -> Self {
        LimiterConfig {
            initial: 4,
            max: 64,
        }
    }
}

/// The current window's samples.
#[derive(Debug, Default)]
struct Window {
    samples: u32,
    latency_sum: Duration,
    timed: u32,
    overload: bool,
    most_in_use: u32,
}

/// The algorithm's state: pure, driven by [`State::sample`].
#[derive(Debug)]
struct State {
    adaptive: bool,
    estimate: f64,
    max: u32,
    baseline: Option<Duration>,
    /// When the last window closed (the baseline's drift is per second).
    closed_at: Option<Instant>,
    window: Window,
    step: f64,
    careful: u32,
    /// Permits handed out by the semaphore in total (the applied limit).
    permits: u32,
    /// Permits to take back as they are returned (the limit fell below what is in use).
    debt: u32,
    in_flight: u32,
    /// Bumped at every change of the limit: a request let in before the last change says
    /// nothing about the new limit, so its sample is left out (one reaction per round trip).
    epoch: u64,
}

impl State {
    fn new(cfg: LimiterConfig, adaptive: bool) -> State {
        let max = cfg.max.max(1);
        let initial = cfg.initial.clamp(1, max);
        State {
            adaptive,
            estimate: f64::from(initial),
            max,
            baseline: None,
            closed_at: None,
            window: Window::default(),
            step: 1.0,
            careful: 0,
            permits: initial,
            debt: 0,
            in_flight: 0,
            epoch: 0,
        }
    }

    fn limit(&self) -> u32 {
        (self.estimate.floor() as u32).clamp(1, self.max)
    }

    /// Adds one finished request let in at `epoch`; `in_use` is how many permits were out when
    /// it finished.
    fn sample(
        &mut self,
        now: Instant,
        epoch: u64,
        latency: Duration,
        outcome: Outcome,
        in_use: u32,
    ) {
        if !self.adaptive || outcome == Outcome::Ignore || epoch < self.epoch {
            return;
        }
        let w = &mut self.window;
        w.samples += 1;
        w.most_in_use = w.most_in_use.max(in_use);
        match outcome {
            Outcome::Overload => w.overload = true,
            _ => {
                w.latency_sum += latency;
                w.timed += 1;
            }
        }
        if w.samples >= self.limit().max(MIN_WINDOW) {
            let w = std::mem::take(&mut self.window);
            let before = self.estimate;
            let since = self.closed_at.map_or(Duration::ZERO, |t| now - t);
            self.closed_at = Some(now);
            self.close(&w, since);
            if self.estimate != before {
                self.epoch += 1;
            }
        }
    }

    /// The decision at the end of a window, `since` the end of the one before.
    fn close(&mut self, w: &Window, since: Duration) {
        let max = f64::from(self.max);
        if w.overload {
            self.estimate = (self.estimate * BACKOFF).max(1.0);
            self.step = 1.0;
            self.careful = CAREFUL_WINDOWS;
            return;
        }
        self.careful = self.careful.saturating_sub(1);
        let Some(mean) = w.latency_sum.checked_div(w.timed) else {
            return;
        };
        let baseline = match self.baseline {
            Some(b) if b <= mean => b
                .mul_f64(1.0 + BASELINE_DRIFT * since.as_secs_f64())
                .min(mean),
            _ => mean,
        };
        self.baseline = Some(baseline);
        let ratio = mean.as_secs_f64() / baseline.as_secs_f64().max(1e-9);
        tracing::trace!(
            limit = self.estimate,
            ?mean,
            ?baseline,
            ratio,
            "limiter window"
        );
        if ratio > 1.0 + SHRINK_ABOVE {
            let factor = ((1.0 + GROW_BELOW) / ratio).max(0.5);
            self.estimate = (self.estimate * factor).max(1.0);
            self.step = 1.0;
            self.careful = CAREFUL_WINDOWS;
        } else if ratio <= 1.0 + GROW_BELOW && 2 * w.most_in_use >= self.limit() {
            self.estimate = (self.estimate + self.step).min(max);
            self.step = if self.careful > 0 {
                1.0
            } else {
                (self.step * 2.0).min((self.estimate / 4.0).max(1.0))
            };
        } else {
            self.step = 1.0;
        }
    }
}

/// Shared part of a [`Limiter`].
#[derive(Debug)]
struct Shared {
    semaphore: Arc<Semaphore>,
    state: Mutex<State>,
}

/// An adaptive (or fixed) concurrency limit. Cheap to clone; clones share the limit.
#[derive(Debug, Clone)]
pub struct Limiter {
    shared: Arc<Shared>,
}

/// The right to have one request in flight; give it back with [`Permit::record`].
#[derive(Debug)]
pub struct Permit {
    shared: Arc<Shared>,
    permit: Option<OwnedSemaphorePermit>,
    granted: Instant,
    epoch: u64,
    recorded: bool,
}

impl Limiter {
    /// An adaptive limit.
    pub fn new(cfg: LimiterConfig) -> Limiter {
        Limiter::build(State::new(cfg, true))
    }

    /// A limit that never changes (`--concurrency N`).
    pub fn fixed(limit: u32) -> Limiter {
        let cfg = LimiterConfig {
            initial: limit,
            max: limit,
        };
        Limiter::build(State::new(cfg, false))
    }

    fn build(state: State) -> Limiter {
        Limiter {
            shared: Arc::new(Shared {
                semaphore: Arc::new(Semaphore::new(state.permits as usize)),
                state: Mutex::new(state),
            }),
        }
    }

    /// Waits until one more request may be in flight.
    pub async fn acquire(&self) -> Permit {
        let permit = Arc::clone(&self.shared.semaphore)
            .acquire_owned()
            .await
            .ok();
        let epoch = {
            let mut st = self.shared.lock();
            st.in_flight += 1;
            st.epoch
        };
        Permit {
            shared: Arc::clone(&self.shared),
            permit,
            epoch,
            granted: Instant::now(),
            recorded: false,
        }
    }

    /// The current limit.
    pub fn limit(&self) -> u32 {
        self.shared.lock().limit()
    }

    /// Permits out right now.
    pub fn in_flight(&self) -> u32 {
        self.shared.lock().in_flight
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Feeds one sample, returns the permit and applies the new limit to the semaphore.
    fn release(&self, permit: &mut Permit, latency: Duration, outcome: Outcome) {
        let mut st = self.lock();
        let in_use = st.in_flight;
        st.in_flight = st.in_flight.saturating_sub(1);
        st.sample(Instant::now(), permit.epoch, latency, outcome, in_use);
        let permit = permit.permit.take();
        if let Some(p) = permit {
            if st.debt > 0 {
                st.debt -= 1;
                st.permits -= 1;
                p.forget();
            }
        }
        let want = st.limit();
        let effective = st.permits - st.debt;
        if want > effective {
            let more = want - effective;
            let repaid = more.min(st.debt);
            st.debt -= repaid;
            let add = more - repaid;
            self.semaphore.add_permits(add as usize);
            st.permits += add;
        } else if want < effective {
            let excess = effective - want;
            let forgotten = self.semaphore.forget_permits(excess as usize) as u32;
            st.permits -= forgotten;
            st.debt += excess - forgotten;
        }
    }
}

impl Permit {
    /// Returns the permit with the outcome of its request, timed since the permit was granted.
    pub fn record(self, outcome: Outcome) {
        let latency = self.granted.elapsed();
        self.record_latency(latency, outcome);
    }

    /// Returns the permit with the outcome of its request and the latency the caller measured.
    pub fn record_latency(mut self, latency: Duration, outcome: Outcome) {
        self.recorded = true;
        let shared = Arc::clone(&self.shared);
        shared.release(&mut self, latency, outcome);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.recorded {
            let shared = Arc::clone(&self.shared);
            shared.release(self, Duration::ZERO, Outcome::Ignore);
        }
    }
}

/// The classes of request that get a limit of their own (their costs differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestClass {
    /// `POST .../comments` (and comment edits).
    CommentPost,
    /// `POST .../documents`.
    Upload,
    /// Lists, lookups, downloads, deletes.
    Read,
}

/// One [`Limiter`] per [`RequestClass`].
#[derive(Debug, Clone)]
pub struct Limiters {
    comments: Limiter,
    uploads: Limiter,
    reads: Limiter,
}

impl Limiters {
    /// Adaptive limits with the same bounds for every class.
    pub fn adaptive(cfg: LimiterConfig) -> Limiters {
        Limiters {
            comments: Limiter::new(cfg),
            uploads: Limiter::new(cfg),
            reads: Limiter::new(cfg),
        }
    }

    /// The same fixed limit for every class.
    pub fn fixed(limit: u32) -> Limiters {
        Limiters {
            comments: Limiter::fixed(limit),
            uploads: Limiter::fixed(limit),
            reads: Limiter::fixed(limit),
        }
    }

    /// The limiter of `class`.
    pub fn get(&self, class: RequestClass) -> &Limiter {
        match class {
            RequestClass::CommentPost => &self.comments,
            RequestClass::Upload => &self.uploads,
            RequestClass::Read => &self.reads,
        }
    }
}

#[cfg(test)]
mod tests;
