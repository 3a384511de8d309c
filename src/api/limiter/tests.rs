//! The limiter against a simulated server (tokio's paused clock, so every run is exact and
//! repeatable): N workers, service time S, and contention past N as in the sandbox's
//! `--capacity` model: `S × (1 + F × (in_server − N) / N)`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::*;

/// The simulated server.
struct Server {
    slots: Arc<Semaphore>,
    workers: AtomicUsize,
    in_server: AtomicUsize,
    service: Duration,
    overload: f64,
    failing: AtomicBool,
}

impl Server {
    fn new(workers: usize, service_ms: u64) -> Arc<Server> {
        Arc::new(Server {
            slots: Arc::new(Semaphore::new(workers)),
            workers: AtomicUsize::new(workers),
            in_server: AtomicUsize::new(0),
            service: Duration::from_millis(service_ms),
            overload: 1.0,
            failing: AtomicBool::new(false),
        })
    }

    /// One request: a fast 503 while failing, else a worker for its service time.
    async fn call(&self) -> Outcome {
        if self.failing.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(1)).await;
            return Outcome::Overload;
        }
        self.in_server.fetch_add(1, Ordering::SeqCst);
        let slot = Arc::clone(&self.slots).acquire_owned().await;
        let n = self.workers.load(Ordering::SeqCst) as f64;
        let excess = (self.in_server.load(Ordering::SeqCst) as f64 - n).max(0.0);
        let service = self.service.mul_f64(1.0 + self.overload * excess / n);
        tokio::time::sleep(service).await;
        drop(slot);
        self.in_server.fetch_sub(1, Ordering::SeqCst);
        Outcome::Success
    }

    /// Changes the number of workers (fewer: taken back as they come free).
    fn set_workers(self: &Arc<Self>, n: usize) {
        let old = self.workers.swap(n, Ordering::SeqCst);
        if n > old {
            self.slots.add_permits(n - old);
        } else if n < old {
            let slots = Arc::clone(&self.slots);
            tokio::spawn(async move {
                if let Ok(p) = slots.acquire_many_owned((old - n) as u32).await {
                    p.forget();
                }
            });
        }
    }
}

/// What a run saw.
struct Run {
    /// The limit after each request, in completion order.
    limits: Vec<u32>,
    elapsed: Duration,
}

impl Run {
    /// Smallest and largest limit over the last `n` requests.
    fn range_of_last(&self, n: usize) -> (u32, u32) {
        let tail = &self.limits[self.limits.len().saturating_sub(n)..];
        let lo = tail.iter().copied().min().unwrap_or(0);
        let hi = tail.iter().copied().max().unwrap_or(0);
        (lo, hi)
    }

    /// The first request after which the limit was at least `at`.
    fn first_reaching(&self, at: u32) -> Option<usize> {
        self.limits.iter().position(|l| *l >= at).map(|i| i + 1)
    }
}

/// `requests` requests from 128 callers (more than any limit), each waiting for a permit.
async fn run(limiter: &Limiter, server: &Arc<Server>, requests: usize) -> Run {
    let start = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let limits = Arc::new(Mutex::new(Vec::with_capacity(requests)));
    let callers: Vec<_> = (0..128)
        .map(|_| {
            let (limiter, server) = (limiter.clone(), Arc::clone(server));
            let (next, limits) = (Arc::clone(&next), Arc::clone(&limits));
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::SeqCst) < requests {
                    let permit = limiter.acquire().await;
                    let outcome = server.call().await;
                    permit.record(outcome);
                    limits.lock().unwrap().push(limiter.limit());
                }
            })
        })
        .collect();
    for c in callers {
        c.await.unwrap();
    }
    assert_eq!(limiter.in_flight(), 0);
    let limits = std::mem::take(&mut *limits.lock().unwrap());
    Run {
        limits,
        elapsed: start.elapsed(),
    }
}

fn throughput(requests: usize, run: &Run) -> f64 {
    requests as f64 / run.elapsed.as_secs_f64()
}

/// Against 1000 workers of 10 ms the limit climbs from 4 to the cap of 64 within 300 requests
/// (observed: 270 requests, 4 → 5 → 6 → 7 → 9 … by a quarter at most per window).
#[tokio::test(start_paused = true)]
async fn grows_to_the_cap_against_a_fast_server_with_room() {
    let limiter = Limiter::new(LimiterConfig::default());
    let server = Server::new(1000, 10);
    let r = run(&limiter, &server, 2000).await;
    let reached = r.first_reaching(64);
    assert!(reached.is_some_and(|n| n <= 300), "{reached:?}");
    assert_eq!(r.range_of_last(1000), (64, 64));
}

/// Settles within [0.7 N, 1.5 N] and keeps at least 90 % of the best fixed concurrency's
/// throughput (N / S).
async fn settles_near(n: usize, service_ms: u64) -> (u32, u32, f64) {
    let limiter = Limiter::new(LimiterConfig::default());
    let server = Server::new(n, service_ms);
    let warm = run(&limiter, &server, 20 * n).await;
    let r = run(&limiter, &server, 100 * n).await;
    let (lo, hi) = r.range_of_last(50 * n);
    let best = n as f64 / Duration::from_millis(service_ms).as_secs_f64();
    let share = throughput(100 * n, &r) / best;
    eprintln!(
        "N={n}: warm-up {:?}, settled in [{lo}, {hi}], {share:.3} of N/S",
        warm.range_of_last(5 * n)
    );
    (lo, hi, share)
}

/// N = 8, S = 20 ms: after 160 requests of warm-up, the limit stays within [8, 9] over the
/// last 400 of 800 requests (asserted: [0.7 N, 1.5 N]), at 1.00 of the throughput of N / S.
#[tokio::test(start_paused = true)]
async fn settles_near_8_workers() {
    let (lo, hi, share) = settles_near(8, 20).await;
    assert!(lo >= 6 && hi <= 12, "[{lo}, {hi}]");
    assert!(share >= 0.9, "{share}");
}

/// N = 32, S = 100 ms: after 640 requests of warm-up, the limit stays within [34, 37] over the
/// last 1600 of 3200 requests (asserted: [0.7 N, 1.5 N]), at 1.00 of the throughput of N / S.
#[tokio::test(start_paused = true)]
async fn settles_near_32_workers() {
    let (lo, hi, share) = settles_near(32, 100).await;
    assert!(lo >= 23 && hi <= 48, "[{lo}, {hi}]");
    assert!(share >= 0.9, "{share}");
}

/// A server answering only 503s takes the limit from 64 to 1 and keeps it there (never 0):
/// observed at 1 after 277 requests (asserted: within 300). When it recovers with 32 workers,
/// the limit is back at 24 after 116 requests and settles at 34 (asserted: [0.7 N, 1.5 N] over
/// the last 500 of 2000).
#[tokio::test(start_paused = true)]
async fn backs_off_on_errors_to_one_and_recovers() {
    let limiter = Limiter::new(LimiterConfig::default());
    let server = Server::new(1000, 10);
    run(&limiter, &server, 1000).await;
    assert_eq!(limiter.limit(), 64);
    server.failing.store(true, Ordering::SeqCst);
    let failing = run(&limiter, &server, 500).await;
    let down = failing.limits.iter().position(|l| *l == 1).map(|i| i + 1);
    eprintln!("503s: limit 1 after {down:?} requests");
    assert!(down.is_some_and(|n| n <= 300), "{down:?}");
    assert_eq!(failing.range_of_last(100), (1, 1));
    server.failing.store(false, Ordering::SeqCst);
    server.set_workers(32);
    let back = run(&limiter, &server, 2000).await;
    let (lo, hi) = back.range_of_last(500);
    eprintln!(
        "recovered to [{lo}, {hi}], 24 after {:?}",
        back.first_reaching(24)
    );
    assert!(lo >= 23 && hi <= 48, "[{lo}, {hi}]");
}

/// Capacity falls from 32 workers (20 ms) to 8 and comes back: the limit follows down into
/// [8, 9] and back up to [33, 35], reaching 23 again 136 requests after the workers returned
/// (asserted: [0.7 N, 1.5 N] over the last 500 requests of each phase).
#[tokio::test(start_paused = true)]
async fn follows_capacity_down_and_back_up() {
    let limiter = Limiter::new(LimiterConfig::default());
    let server = Server::new(32, 20);
    let first = run(&limiter, &server, 2000).await;
    let (lo, hi) = first.range_of_last(500);
    assert!(lo >= 23 && hi <= 48, "[{lo}, {hi}]");
    server.set_workers(8);
    let small = run(&limiter, &server, 2000).await;
    let (lo, hi) = small.range_of_last(500);
    eprintln!("8 workers: [{lo}, {hi}]");
    assert!(lo >= 6 && hi <= 12, "[{lo}, {hi}]");
    server.set_workers(32);
    let again = run(&limiter, &server, 3000).await;
    let (lo, hi) = again.range_of_last(500);
    eprintln!(
        "32 again: [{lo}, {hi}], 23 after {:?}",
        again.first_reaching(23)
    );
    assert!(lo >= 23 && hi <= 48, "[{lo}, {hi}]");
}

#[tokio::test(start_paused = true)]
async fn a_fixed_limit_never_moves_and_bounds_what_is_in_flight() {
    let limiter = Limiter::fixed(3);
    let server = Server::new(1, 10);
    let r = run(&limiter, &server, 300).await;
    assert!(r.limits.iter().all(|l| *l == 3));
    let held: Vec<Permit> = vec![
        limiter.acquire().await,
        limiter.acquire().await,
        limiter.acquire().await,
    ];
    assert_eq!(limiter.in_flight(), 3);
    let fourth = tokio::time::timeout(Duration::from_secs(1), limiter.acquire()).await;
    assert!(fourth.is_err(), "a fourth permit beyond the limit");
    drop(held);
    assert_eq!(limiter.in_flight(), 0);
}

/// A limit that falls while its permits are out takes them back as they return.
#[tokio::test(start_paused = true)]
async fn a_falling_limit_takes_back_permits_in_use() {
    let limiter = Limiter::new(LimiterConfig { initial: 8, max: 8 });
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(limiter.acquire().await);
    }
    // Two windows of overload: 8 → 6 → 4 (each window is 8, then 6 samples).
    for p in held.drain(..) {
        p.record(Outcome::Overload);
    }
    assert_eq!(limiter.limit(), 6);
    let mut held = Vec::new();
    for _ in 0..6 {
        held.push(limiter.acquire().await);
    }
    for p in held.drain(..) {
        p.record_latency(Duration::from_millis(5), Outcome::Overload);
    }
    assert_eq!(limiter.limit(), 4);
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(limiter.acquire().await);
    }
    let fifth = tokio::time::timeout(Duration::from_secs(1), limiter.acquire()).await;
    assert!(fifth.is_err(), "more permits than the limit");
    // Dropped permits say nothing: the limit stays.
    drop(held);
    assert_eq!((limiter.limit(), limiter.in_flight()), (4, 0));
}

#[test]
fn outcomes_of_api_results() {
    let status = |status| -> Result<(), ApiError> {
        Err(ApiError::Status {
            status,
            code: None,
            message: String::new(),
            retry_after: None,
        })
    };
    assert_eq!(Outcome::of(&Ok::<(), ApiError>(())), Outcome::Success);
    assert_eq!(Outcome::of(&status(503)), Outcome::Overload);
    assert_eq!(Outcome::of(&status(500)), Outcome::Overload);
    assert_eq!(Outcome::of(&status(429)), Outcome::Ignore);
    assert_eq!(Outcome::of(&status(404)), Outcome::Ignore);
    let timeout: Result<(), ApiError> = Err(ApiError::Timeout("slow".into()));
    assert_eq!(Outcome::of(&timeout), Outcome::Overload);
    assert_eq!(
        Outcome::of(&Err::<(), _>(ApiError::Cancelled)),
        Outcome::Ignore
    );
}

#[test]
fn one_limiter_per_class() {
    let l = Limiters::adaptive(LimiterConfig {
        initial: 8,
        max: 64,
    });
    assert_eq!(l.get(RequestClass::CommentPost).limit(), 8);
    assert_eq!(l.get(RequestClass::Upload).limit(), 8);
    let f = Limiters::fixed(2);
    assert_eq!(f.get(RequestClass::Read).limit(), 2);
}
