//! Fault injection, reproducible from the seed: 503 before doing anything, extra latency, and
//! "drop after commit" (the create is stored, then the connection closes with no response).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Marker put in a response's extensions: the server closes the connection instead of answering.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DropConnection;

/// Fault settings (changeable at runtime) and the seeded generator deciding them.
pub(crate) struct Faults {
    rng: Mutex<StdRng>,
    fail_rate: AtomicU64,
    drop_rate: AtomicU64,
    latency_ms: Option<(u64, u64)>,
}

impl Faults {
    /// Faults decided by a generator seeded with `seed`.
    pub(crate) fn new(seed: u64, fail: f64, drop: f64, latency_ms: Option<(u64, u64)>) -> Faults {
        Faults {
            rng: Mutex::new(StdRng::seed_from_u64(seed ^ 0xfa17_5eed)),
            fail_rate: AtomicU64::new(fail.to_bits()),
            drop_rate: AtomicU64::new(drop.to_bits()),
            latency_ms,
        }
    }

    /// Changes the two probabilities.
    pub(crate) fn set(&self, fail: f64, drop: f64) {
        self.fail_rate.store(fail.to_bits(), Ordering::Relaxed);
        self.drop_rate.store(drop.to_bits(), Ordering::Relaxed);
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

    /// Whether this committed create loses its response.
    pub(crate) fn should_drop(&self) -> bool {
        self.roll(f64::from_bits(self.drop_rate.load(Ordering::Relaxed)))
    }

    /// Extra latency for this request, if configured.
    pub(crate) fn latency(&self) -> Option<Duration> {
        let (a, b) = self.latency_ms?;
        let (lo, hi) = (a.min(b), a.max(b));
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        Some(Duration::from_millis(rng.gen_range(lo..=hi)))
    }
}
