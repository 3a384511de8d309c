//! An adaptive concurrency limit per class of request, found by measuring (like TCP Vegas, BBR
//! and Netflix's concurrency-limits, kept small): how many requests of a class may be in
//! flight.
//!
//! The limit climbs while more requests in flight bring proportionally more answers per
//! second, and comes down when fewer would do as well, when the latency stays far above its
//! no-load value, or on overload answers (5xx, timeouts, refused connections). The algorithm
//! and its parameters are in `state.rs`. Against a server with N workers whose requests slow
//! down past N (the sandbox's `--capacity` model) it settles near N (see the tests' figures),
//! and it keeps doing so when latencies jitter or the whole machine slows down for a while.
//!
//! [`Limiter::acquire`] waits for a permit; [`Permit::record`] feeds its outcome (latency since
//! the permit was granted, or [`Permit::record_latency`] with the caller's own measure, e.g. from
//! the moment the request was sent after any rate wait). A permit dropped without a record
//! counts as [`Outcome::Ignore`]. One [`Limiter`] per class: see [`Limiters`].

mod state;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::api::ApiError;
use state::{Admission, State};

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
    admission: Admission,
    recorded: bool,
}

impl Limiter {
    /// An adaptive limit.
    pub fn new(cfg: LimiterConfig) -> Limiter {
        Limiter::build(State::new(cfg.initial, cfg.max, true))
    }

    /// A limit that never changes (`--concurrency N`).
    pub fn fixed(limit: u32) -> Limiter {
        Limiter::build(State::new(limit, limit, false))
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
        let admission = self.shared.lock().acquired(Instant::now());
        Permit {
            shared: Arc::clone(&self.shared),
            permit,
            admission,
            granted: Instant::now(),
            recorded: false,
        }
    }

    /// The limit found so far (a probe one step above or below it may be in force for a
    /// round trip).
    pub fn limit(&self) -> u32 {
        self.shared.lock().limit()
    }

    /// The highest limit found so far.
    pub fn highest(&self) -> u32 {
        self.shared.lock().highest()
    }

    /// Permits out right now.
    pub fn in_flight(&self) -> u32 {
        self.shared.lock().in_flight()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Feeds one sample, returns the permit and applies the new limit to the semaphore.
    fn release(&self, permit: &mut Permit, latency: Duration, outcome: Outcome) {
        let mut st = self.lock();
        let hold = permit.granted.elapsed();
        st.released(Instant::now(), permit.admission, (latency, hold), outcome);
        let permit = permit.permit.take();
        if let Some(p) = permit {
            if st.debt > 0 {
                st.debt -= 1;
                st.permits -= 1;
                p.forget();
            }
        }
        let want = st.applied();
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
