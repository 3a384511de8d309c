//! The server's capacity (`--capacity N --service-ms S --overload F`): a server with N workers.
//!
//! Every API request that reaches the application (not `/api/health`, not the edge's own
//! answers) waits for one of N workers (first come, first served), holds it for its service
//! time, then runs its handler. The service time is S while at most N requests are in the
//! server; past that it grows with the excess, because the waiting requests contend for the
//! same CPU, pool and locks:
//!
//! ```text
//! service = S × (1 + F × max(0, in_server − N) / N)      in_server counted when service starts
//! ```
//!
//! So a client that keeps C > N requests in flight gets a throughput of
//! `N / (S × (1 + F × (C − N) / N))`, below the `N / S` it gets at C = N, and everyone's latency
//! rises (`C / N` times the service time). The best fixed concurrency is N. With F = 1 (the
//! default), twice N in flight halves the throughput and quadruples the latency.
//!
//! Off unless configured: without `--capacity` nothing here runs (no lock, no counter).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::config::Capacity;

/// The workers of a sandbox with a capacity.
pub(crate) struct Workers {
    slots: Semaphore,
    in_server: AtomicUsize,
    workers: usize,
    service: Duration,
    overload: f64,
}

/// Counts one request in the server until dropped (also when the client goes away).
struct InServer<'a>(&'a AtomicUsize);

impl Drop for InServer<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Workers {
    /// Workers as configured (at least one).
    pub(crate) fn new(cfg: &Capacity) -> Workers {
        let workers = cfg.workers.max(1) as usize;
        Workers {
            slots: Semaphore::new(workers),
            in_server: AtomicUsize::new(0),
            workers,
            service: cfg.service,
            overload: if cfg.overload.is_finite() {
                cfg.overload.max(0.0)
            } else {
                0.0
            },
        }
    }

    /// Runs `work` on a worker: waits for one, holds it for the service time, then runs `work`.
    pub(crate) async fn serve<F: Future>(&self, work: F) -> F::Output {
        self.in_server.fetch_add(1, Ordering::Relaxed);
        let _counted = InServer(&self.in_server);
        // The semaphore is never closed, so `acquire` cannot fail; without a permit the
        // request would simply run unthrottled.
        let _slot = self.slots.acquire().await.ok();
        let service = self.service_time(self.in_server.load(Ordering::Relaxed));
        tokio::time::sleep(service).await;
        work.await
    }

    /// The service time of a request that starts while `in_server` requests are in the server
    /// (itself included).
    pub(crate) fn service_time(&self, in_server: usize) -> Duration {
        let excess = in_server.saturating_sub(self.workers) as f64;
        self.service
            .mul_f64(1.0 + self.overload * excess / self.workers as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::time::Instant;

    fn workers(n: u32, ms: u64, overload: f64) -> Workers {
        Workers::new(&Capacity {
            workers: n,
            service: Duration::from_millis(ms),
            overload,
        })
    }

    #[test]
    fn service_time_grows_with_the_excess_only() {
        let w = workers(8, 20, 1.0);
        let ms = |n| w.service_time(n).as_secs_f64() * 1000.0;
        assert_eq!(ms(1), 20.0);
        assert_eq!(ms(8), 20.0);
        assert_eq!(ms(12), 30.0); // half of N waiting: 1.5 S
        assert_eq!(ms(16), 40.0); // 2 N in the server: 2 S
        let gentle = workers(8, 20, 0.5);
        assert_eq!(gentle.service_time(16), Duration::from_millis(30));
        let none = workers(8, 20, 0.0);
        assert_eq!(none.service_time(64), Duration::from_millis(20));
    }

    /// `clients` closed-loop clients each sending `each` requests back to back: the total time
    /// and the largest latency one request saw.
    async fn closed_loop(w: &Arc<Workers>, clients: usize, each: usize) -> (Duration, Duration) {
        let start = Instant::now();
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let w = Arc::clone(w);
                tokio::spawn(async move {
                    let mut worst = Duration::ZERO;
                    for _ in 0..each {
                        let sent = Instant::now();
                        w.serve(async {}).await;
                        worst = worst.max(sent.elapsed());
                    }
                    worst
                })
            })
            .collect();
        let mut worst = Duration::ZERO;
        for t in tasks {
            worst = worst.max(t.await.unwrap());
        }
        (start.elapsed(), worst)
    }

    #[tokio::test(start_paused = true)]
    async fn the_best_fixed_concurrency_is_n() {
        // N = 4 workers, 100 ms, overload 1; 80 requests in each case.
        let w = Arc::new(workers(4, 100, 1.0));
        let (below, _) = closed_loop(&w, 2, 40).await;
        let (at_n, at_n_worst) = closed_loop(&w, 4, 20).await;
        let (above, above_worst) = closed_loop(&w, 8, 10).await;
        let (far_above, _) = closed_loop(&w, 16, 5).await;
        // Below N: workers idle; at N: 20 rounds of exactly one service time.
        assert_eq!(below, Duration::from_millis(4000));
        assert_eq!(at_n, Duration::from_millis(2000));
        assert_eq!(at_n_worst, Duration::from_millis(100));
        // Past N: slower in total, and each request waits far longer than its service time.
        assert!(above > at_n.mul_f64(1.5), "{above:?}");
        assert!(far_above > above, "{far_above:?} vs {above:?}");
        assert!(above_worst >= Duration::from_millis(300), "{above_worst:?}");
        assert_eq!(w.in_server.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_abandoned_while_queued_leaves_the_count() {
        let w = Arc::new(workers(1, 100, 1.0));
        let busy = tokio::spawn({
            let w = Arc::clone(&w);
            async move { w.serve(async {}).await }
        });
        tokio::task::yield_now().await;
        let gave_up = tokio::time::timeout(Duration::from_millis(10), w.serve(async {})).await;
        assert!(gave_up.is_err());
        busy.await.unwrap();
        assert_eq!(w.in_server.load(Ordering::Relaxed), 0);
    }
}
