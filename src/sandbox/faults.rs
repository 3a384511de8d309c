//! Fault injection, reproducible from the seed: 503 before doing anything, extra latency, a
//! late answer (the handler's work is done, the answer waits), and three ways to lose the
//! answer to a create that was committed: the connection closes with no response ("drop after
//! commit"), a 500 error envelope ("error after commit", as a server whose post-commit step
//! fails), or a 201 whose body cannot be read ("garble after commit", as a proxy that cuts the
//! body).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Marker put in a response's extensions: the server closes the connection instead of answering.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DropConnection;

/// Marker put in a response's extensions: an after-commit fault other than a drop was served.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AnsweredAfterCommit;

/// What becomes of the answer to a committed create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterCommit {
    /// The normal answer.
    Answer,
    /// The connection closes with no response.
    Drop,
    /// 500 with the server's error envelope.
    Error,
    /// 201 with a body that is not JSON.
    Garble,
}

/// Fault settings (changeable at runtime) and the seeded generator deciding them.
pub(crate) struct Faults {
    rng: Mutex<StdRng>,
    fail_rate: AtomicU64,
    drop_rate: AtomicU64,
    error_rate: AtomicU64,
    garble_rate: AtomicU64,
    latency_ms: Option<(u64, u64)>,
    reply_delay_ms: Mutex<Option<(u64, u64)>>,
}

impl Faults {
    /// Faults decided by a generator seeded with `seed`.
    pub(crate) fn new(seed: u64, fail: f64, drop: f64, latency_ms: Option<(u64, u64)>) -> Faults {
        Faults {
            rng: Mutex::new(StdRng::seed_from_u64(seed ^ 0xfa17_5eed)),
            fail_rate: AtomicU64::new(fail.to_bits()),
            drop_rate: AtomicU64::new(drop.to_bits()),
            error_rate: AtomicU64::new(0f64.to_bits()),
            garble_rate: AtomicU64::new(0f64.to_bits()),
            latency_ms,
            reply_delay_ms: Mutex::new(None),
        }
    }

    /// Changes the two probabilities.
    pub(crate) fn set(&self, fail: f64, drop: f64) {
        self.fail_rate.store(fail.to_bits(), Ordering::Relaxed);
        self.drop_rate.store(drop.to_bits(), Ordering::Relaxed);
    }

    /// Changes the probabilities of a 500 and of an unreadable 201 after a commit.
    pub(crate) fn set_after_commit(&self, error: f64, garble: f64) {
        self.error_rate.store(error.to_bits(), Ordering::Relaxed);
        self.garble_rate.store(garble.to_bits(), Ordering::Relaxed);
    }

    fn roll(&self, p: f64) -> bool {
        if p.is_nan() || p <= 0.0 {
            return false;
        }
        if p >= 1.0 {
            return true;
        }
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        rng.gen_bool(p)
    }

    /// Whether this request gets an injected 503.
    pub(crate) fn should_fail(&self) -> bool {
        self.roll(f64::from_bits(self.fail_rate.load(Ordering::Relaxed)))
    }

    /// What becomes of the answer to this committed create (each fault rolled in turn).
    pub(crate) fn after_commit(&self) -> AfterCommit {
        let rate = |a: &AtomicU64| f64::from_bits(a.load(Ordering::Relaxed));
        if self.roll(rate(&self.drop_rate)) {
            AfterCommit::Drop
        } else if self.roll(rate(&self.error_rate)) {
            AfterCommit::Error
        } else if self.roll(rate(&self.garble_rate)) {
            AfterCommit::Garble
        } else {
            AfterCommit::Answer
        }
    }

    /// Extra latency for this request (before the handler), if configured.
    pub(crate) fn latency(&self) -> Option<Duration> {
        self.pick(self.latency_ms?)
    }

    /// Sets the delay between the handler's work (a create is committed) and the answer.
    pub(crate) fn set_reply_delay(&self, delay_ms: Option<(u64, u64)>) {
        *self
            .reply_delay_ms
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = delay_ms;
    }

    /// The delay of this request's answer after its handler ran, if set.
    pub(crate) fn reply_delay(&self) -> Option<Duration> {
        let range = *self
            .reply_delay_ms
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        self.pick(range?)
    }

    /// A duration uniform in `[a, b]` ms, from the seeded generator.
    fn pick(&self, (a, b): (u64, u64)) -> Option<Duration> {
        let (lo, hi) = (a.min(b), a.max(b));
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        Some(Duration::from_millis(rng.gen_range(lo..=hi)))
    }
}
