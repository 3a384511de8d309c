//! The limiter against a simulated server (tokio's paused clock, so every run is exact and
//! repeatable): N workers, service time S, and contention past N as in the sandbox's
//! `--capacity` model: `S × (1 + F × (in_server − N) / N)`; or a server without a queue that
//! slows down with every request it holds (the shape measured on a real one); optionally with
//! jitter on every request and spells during which the whole machine is slower.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::*;

/// How the service time depends on the requests in the server.
#[derive(Clone, Copy)]
enum Shape {
    /// N workers (the rest wait), past N each slower: `S × (1 + F × (in_server − N) / N)`.
    Workers { overload: f64 },
    /// No queue; `S × (1 + a (c − 1) + b (c − 1)²)` with c requests in the server.
    Curve { a: f64, b: f64 },
}

/// Noise: every service time times a factor in `1 ± jitter`; and the whole machine `slower`
/// (a factor) during the second half of every `period`.
#[derive(Clone, Copy)]
struct Noise {
    jitter: f64,
    period: Duration,
    slower: f64,
}

/// The simulated server.
struct Server {
    slots: Arc<Semaphore>,
    workers: AtomicUsize,
    in_server: AtomicUsize,
    service: Duration,
    shape: Shape,
    noise: Option<(Noise, Mutex<SmallRng>)>,
    started: Instant,
    failing: AtomicBool,
    /// The share of requests answered by a fast 503 whatever the load (a flaky proxy).
    flaky: Mutex<(f64, SmallRng)>,
}

impl Server {
    /// N workers with the sandbox's contention (F = 1) and a service time that varies by
    /// ±5 % (no two real requests take the same time; without it every request of a round
    /// ends at the same instant, which no real server does).
    fn new(workers: usize, service_ms: u64) -> Arc<Server> {
        let noise = Noise {
            jitter: 0.05,
            period: Duration::from_secs(3600),
            slower: 1.0,
        };
        Server::build(
            workers,
            service_ms,
            Shape::Workers { overload: 1.0 },
            Some(noise),
        )
    }

    fn build(workers: usize, ms: u64, shape: Shape, noise: Option<Noise>) -> Arc<Server> {
        Arc::new(Server {
            slots: Arc::new(Semaphore::new(workers)),
            workers: AtomicUsize::new(workers),
            in_server: AtomicUsize::new(0),
            service: Duration::from_millis(ms),
            shape,
            noise: noise.map(|n| (n, Mutex::new(SmallRng::seed_from_u64(11)))),
            started: Instant::now(),
            failing: AtomicBool::new(false),
            flaky: Mutex::new((0.0, SmallRng::seed_from_u64(7))),
        })
    }

    /// One request: a fast 503 while failing, else a worker for its service time.
    async fn call(&self) -> Outcome {
        if self.failing.load(Ordering::SeqCst) || self.flaked() {
            tokio::time::sleep(Duration::from_millis(1)).await;
            return Outcome::Overload;
        }
        let c = self.in_server.fetch_add(1, Ordering::SeqCst) as f64 + 1.0;
        let slot = match self.shape {
            Shape::Workers { .. } => Arc::clone(&self.slots).acquire_owned().await.ok(),
            Shape::Curve { .. } => None,
        };
        let factor = match self.shape {
            Shape::Workers { overload } => {
                let n = self.workers.load(Ordering::SeqCst) as f64;
                let in_server = self.in_server.load(Ordering::SeqCst) as f64;
                1.0 + overload * (in_server - n).max(0.0) / n
            }
            Shape::Curve { a, b } => 1.0 + a * (c - 1.0) + b * (c - 1.0).powi(2),
        };
        tokio::time::sleep(self.service.mul_f64(factor * self.noise_factor())).await;
        drop(slot);
        self.in_server.fetch_sub(1, Ordering::SeqCst);
        Outcome::Success
    }

    /// Whether this request is one of the flaky share.
    fn flaked(&self) -> bool {
        let mut f = self.flaky.lock().unwrap();
        let share = f.0;
        share > 0.0 && f.1.gen_bool(share)
    }

    fn noise_factor(&self) -> f64 {
        let Some((n, rng)) = &self.noise else {
            return 1.0;
        };
        let jitter = rng.lock().unwrap().gen_range(-n.jitter..=n.jitter);
        let phase = self.started.elapsed().as_secs_f64() / n.period.as_secs_f64();
        let spell = if phase.fract() >= 0.5 { n.slower } else { 1.0 };
        (1.0 + jitter) * spell
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

/// The throughput of the best fixed limit among `limits` on `server` (the sweep a user would
/// run), and that limit.
async fn best_fixed(server: &Arc<Server>, limits: impl Iterator<Item = u32>) -> (f64, u32) {
    let mut best = (0.0, 0);
    for l in limits {
        let r = run(&Limiter::fixed(l), server, 400 * l as usize).await;
        let t = throughput(400 * l as usize, &r);
        if t > best.0 {
            best = (t, l);
        }
    }
    best
}

/// Against 1000 workers of 10 ms the limit climbs from 4 to the cap of 64 within 500 requests
/// (observed: 231 requests, slow start doubling it every probe: 4 → 8 → 16 → 32 → 64) and
/// stays there.
#[tokio::test(start_paused = true)]
async fn grows_to_the_cap_against_a_fast_server_with_room() {
    let limiter = Limiter::new(LimiterConfig::default());
    let server = Server::new(1000, 10);
    let r = run(&limiter, &server, 2000).await;
    let reached = r.first_reaching(64);
    assert!(reached.is_some_and(|n| n <= 500), "{reached:?}");
    assert_eq!(r.range_of_last(1000), (64, 64));
    assert_eq!(limiter.highest(), 64);
}

/// After a warm-up of 20 N requests, the limit's range over the last 50 N of 100 N requests and
/// the throughput of those 100 N as a share of the best fixed limit's on the same server.
async fn settles(server: &Arc<Server>, n: usize, sweep: std::ops::RangeInclusive<u32>) -> Settled {
    let limiter = Limiter::new(LimiterConfig::default());
    run(&limiter, server, 20 * n).await;
    let r = run(&limiter, server, 100 * n).await;
    let (lo, hi) = r.range_of_last(50 * n);
    let (best, at) = best_fixed(server, sweep).await;
    let share = throughput(100 * n, &r) / best;
    eprintln!("settled in [{lo}, {hi}], {share:.3} of the best fixed limit ({at})");
    Settled { lo, hi, share }
}

/// What [`settles`] saw.
struct Settled {
    lo: u32,
    hi: u32,
    share: f64,
}

/// N = 8, S = 20 ms: the limit stays at 8 (asserted: [0.7 N, 1.5 N]), at 0.997 of the
/// throughput of the best fixed limit (9: with a worker busy while the next request is on
/// its way, one more than N keeps every worker busy at little cost).
#[tokio::test(start_paused = true)]
async fn settles_near_8_workers() {
    let s = settles(&Server::new(8, 20), 8, 6..=12).await;
    assert!(s.lo >= 6 && s.hi <= 12, "[{}, {}]", s.lo, s.hi);
    assert!(s.share >= 0.9, "{}", s.share);
}

/// N = 32, S = 100 ms: the limit stays at 32 (asserted: [0.7 N, 1.5 N]), at 0.98 of the best
/// fixed limit's throughput (33).
#[tokio::test(start_paused = true)]
async fn settles_near_32_workers() {
    let s = settles(&Server::new(32, 100), 32, 30..=34).await;
    assert!(s.lo >= 23 && s.hi <= 48, "[{}, {}]", s.lo, s.hi);
    assert!(s.share >= 0.9, "{}", s.share);
}

/// A noisy machine: every request ±20 %, and everything 15 % slower one second in two.
fn noisy(workers: usize, service_ms: u64) -> Arc<Server> {
    let noise = Noise {
        jitter: 0.2,
        period: Duration::from_secs(2),
        slower: 1.15,
    };
    Server::build(
        workers,
        service_ms,
        Shape::Workers { overload: 1.0 },
        Some(noise),
    )
}

/// On a noisy machine the limit still climbs to the cap against a roomy server (observed at 64
/// after 243 requests; asserted: within 1000, and never below 48 over the last 2000 of 4000),
/// and settles near N against 8 and 32 workers: [8, 9] at 0.98 of the best fixed limit's
/// throughput for N = 8, [31, 36] at 0.96 for N = 32 (asserted: [0.7 N, 1.5 N] and 0.85;
/// without the second probe down that must pay: 0.84 for N = 32).
#[tokio::test(start_paused = true)]
async fn noise_does_not_keep_it_from_growing_or_from_settling_near_n() {
    let limiter = Limiter::new(LimiterConfig::default());
    let r = run(&limiter, &noisy(1000, 10), 4000).await;
    let reached = r.first_reaching(64);
    eprintln!(
        "roomy: 64 after {reached:?}, last 2000 in {:?}",
        r.range_of_last(2000)
    );
    assert!(reached.is_some_and(|n| n <= 1000), "{reached:?}");
    assert!(r.range_of_last(2000).0 >= 48, "{:?}", r.range_of_last(2000));
    let s = settles(&noisy(8, 20), 8, 6..=12).await;
    assert!(s.lo >= 6 && s.hi <= 12, "[{}, {}]", s.lo, s.hi);
    assert!(s.share >= 0.85, "{}", s.share);
    let s = settles(&noisy(32, 100), 32, 28..=36).await;
    assert!(s.lo >= 23 && s.hi <= 48, "[{}, {}]", s.lo, s.hi);
    assert!(s.share >= 0.85, "{}", s.share);
}

/// A server shaped like the real one measured in issue 11 (30 comment posts: 3.3 s at
/// concurrency 1, 1.4 s at 4, 2.3 s at 16): no queue, but every request is slower the more are
/// in the server, `110 ms × (1 + 0.122 (c − 1) + 0.037 (c − 1)²)`; its best fixed limit is 5
/// (21.9/s; 4 and 6: 21.4 and 21.5/s; 16: 13/s). The limit settles at 4 at 0.98 of
/// the best throughput (asserted: [3, 8] and 0.9).
#[tokio::test(start_paused = true)]
async fn stays_near_the_optimum_of_a_server_that_slows_down_with_load() {
    let noise = Noise {
        jitter: 0.05,
        period: Duration::from_secs(3600),
        slower: 1.0,
    };
    let shape = Shape::Curve { a: 0.122, b: 0.037 };
    let server = Server::build(1, 110, shape, Some(noise));
    let s = settles(&server, 8, 1..=10).await;
    assert!(s.lo >= 3 && s.hi <= 8, "[{}, {}]", s.lo, s.hi);
    assert!(s.share >= 0.9, "{}", s.share);
}

/// A server answering only 503s takes the limit from 64 to 1 and keeps it there (never 0):
/// observed at 1 after 243 requests (asserted: within 300). When it recovers with 32 workers,
/// the limit is back at 24 after 153 requests and settles at 32 (asserted: [0.7 N, 1.5 N] over
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
    assert_eq!(limiter.highest(), 64, "the highest limit found is kept");
}

/// 5 % of the requests answered by a fast 503 whatever the load (a flaky proxy; the run's
/// retries absorb them) do not hold the limit down: against 32 workers of 100 ms it still
/// settles at 32, at 0.99 of the best fixed limit's throughput (asserted: [0.7 N, 1.5 N]
/// and 0.85). Cutting on every 503 held it between 1 and 8, at 0.04.
#[tokio::test(start_paused = true)]
async fn sporadic_errors_do_not_hold_the_limit_down() {
    let server = Server::new(32, 100);
    server.flaky.lock().unwrap().0 = 0.05;
    let s = settles(&server, 32, 30..=34).await;
    assert!(s.lo >= 23 && s.hi <= 48, "[{}, {}]", s.lo, s.hi);
    assert!(s.share >= 0.85, "{}", s.share);
}

/// Capacity falls from 32 workers (20 ms) to 8 and comes back: the limit follows down to 8
/// and back up to 34, reaching 23 again 119 requests after the workers returned (asserted:
/// [0.7 N, 1.5 N] over the last 500 requests of each phase).
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
