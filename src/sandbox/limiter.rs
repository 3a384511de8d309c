//! The per-key token bucket, as the real server's limiter: new buckets start full, one token per
//! request, continuous refill. Uses tokio's clock so tests can pause time.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::time::Instant;

use super::config::RateLimitMode;

/// What the limiter decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Go on; send these header values on success (`remaining` is -1 when the limiter is off).
    Allowed { limit: u32, remaining: i64 },
    /// Answer 429.
    Denied {
        limit: u32,
        remaining: i64,
        retry_after_ms: u64,
    },
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Buckets per API key (by key index).
pub(crate) struct Limiter {
    mode: RateLimitMode,
    burst: u32,
    per_ms: f64,
    buckets: Mutex<HashMap<usize, Bucket>>,
}

impl Limiter {
    /// A limiter with `burst` tokens refilled at `per_minute`.
    pub(crate) fn new(mode: RateLimitMode, burst: u32, per_minute: u32) -> Limiter {
        Limiter {
            mode,
            burst,
            per_ms: f64::from(per_minute) / 60_000.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from `key`'s bucket.
    pub(crate) fn check(&self, key: usize) -> Decision {
        let limit = self.burst;
        if self.mode == RateLimitMode::Off {
            return Decision::Allowed {
                limit,
                remaining: -1,
            };
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let b = buckets.entry(key).or_insert(Bucket {
            tokens: f64::from(limit),
            last: now,
        });
        let elapsed = now.duration_since(b.last).as_secs_f64() * 1000.0;
        b.tokens = (b.tokens + elapsed * self.per_ms).min(f64::from(limit));
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Decision::Allowed {
                limit,
                remaining: b.tokens.floor() as i64,
            };
        }
        let remaining = b.tokens.floor() as i64;
        if self.mode == RateLimitMode::Observe {
            return Decision::Allowed { limit, remaining };
        }
        let retry_after_ms = if self.per_ms > 0.0 {
            ((1.0 - b.tokens) / self.per_ms).ceil().max(1.0) as u64
        } else {
            60_000
        };
        Decision::Denied {
            limit,
            remaining,
            retry_after_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn drains_then_refills_one_token_per_second() {
        let l = Limiter::new(RateLimitMode::Enforce, 2, 60);
        assert_eq!(
            l.check(0),
            Decision::Allowed {
                limit: 2,
                remaining: 1
            }
        );
        assert_eq!(
            l.check(0),
            Decision::Allowed {
                limit: 2,
                remaining: 0
            }
        );
        assert_eq!(
            l.check(0),
            Decision::Denied {
                limit: 2,
                remaining: 0,
                retry_after_ms: 1000
            }
        );
        tokio::time::advance(Duration::from_millis(400)).await;
        assert!(matches!(
            l.check(0),
            Decision::Denied {
                retry_after_ms: 600,
                ..
            }
        ));
        tokio::time::advance(Duration::from_millis(600)).await;
        assert_eq!(
            l.check(0),
            Decision::Allowed {
                limit: 2,
                remaining: 0
            }
        );
        // Another key has its own full bucket.
        assert_eq!(
            l.check(1),
            Decision::Allowed {
                limit: 2,
                remaining: 1
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn observe_never_denies_and_off_reports_unknown() {
        let l = Limiter::new(RateLimitMode::Observe, 1, 60);
        l.check(0);
        assert_eq!(
            l.check(0),
            Decision::Allowed {
                limit: 1,
                remaining: 0
            }
        );
        let off = Limiter::new(RateLimitMode::Off, 1, 60);
        for _ in 0..3 {
            assert_eq!(
                off.check(0),
                Decision::Allowed {
                    limit: 1,
                    remaining: -1
                }
            );
        }
    }
}
