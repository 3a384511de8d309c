//! Tests of `retry.rs`.
use super::*;
use crate::api::{ApiKey, ClientConfig};
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::time::Instant;

fn policy() -> RetryPolicy {
    RetryPolicy::default()
}

fn client() -> Client {
    Client::new(ClientConfig::new(
        "http://127.0.0.1:9",
        ApiKey::new("k".into()),
    ))
    .unwrap()
}

fn status(status: u16, retry_after: Option<Duration>) -> ApiError {
    ApiError::Status {
        status,
        code: None,
        message: "x".into(),
        retry_after,
    }
}

#[test]
fn full_jitter_stays_under_the_exponential_cap() {
    let p = RetryPolicy {
        max_retries: 10,
        base: Duration::from_millis(500),
        max_delay: Duration::from_secs(30),
        max_wait: Duration::from_secs(600),
    };
    let caps_ms = [
        500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000,
    ];
    for seed in 0..200 {
        let it = BackoffIter::new(&p, Jitter::Full, SmallRng::seed_from_u64(seed));
        for (n, (d, cap)) in it.zip(caps_ms).enumerate() {
            assert!(
                d <= Duration::from_millis(cap),
                "seed {seed} step {n}: {d:?}"
            );
        }
    }
}

#[test]
fn decorrelated_jitter_stays_between_base_and_cap_and_three_times_the_last() {
    let cases = [
        (Duration::from_millis(500), Duration::from_secs(30)),
        (Duration::from_millis(1), Duration::from_millis(10)),
        (Duration::from_secs(2), Duration::from_secs(1)), // cap below base: base wins
    ];
    for (base, max_delay) in cases {
        let p = RetryPolicy {
            max_retries: 5,
            base,
            max_delay,
            ..RetryPolicy::default()
        };
        let cap = max_delay.max(base);
        for seed in 0..200 {
            let mut prev = base;
            let it = BackoffIter::new(&p, Jitter::Decorrelated, SmallRng::seed_from_u64(seed));
            for d in it.take(30) {
                assert!(
                    d >= base.min(cap) && d <= cap,
                    "{base:?} {max_delay:?}: {d:?}"
                );
                assert!(d <= prev * 3, "{d:?} after {prev:?}");
                prev = d.max(base);
            }
        }
    }
}

#[test]
fn backoff_grows_and_is_reproducible_with_a_seed() {
    let p = policy();
    let a: Vec<_> = BackoffIter::new(&p, Jitter::Decorrelated, SmallRng::seed_from_u64(7))
        .take(8)
        .collect();
    let b: Vec<_> = BackoffIter::new(&p, Jitter::Decorrelated, SmallRng::seed_from_u64(7))
        .take(8)
        .collect();
    assert_eq!(a, b);
    let mean = |seed_range: std::ops::Range<u64>, step: usize| -> Duration {
        let total: Duration = seed_range
            .clone()
            .map(|s| {
                BackoffIter::new(&p, Jitter::Full, SmallRng::seed_from_u64(s))
                    .nth(step)
                    .unwrap()
            })
            .sum();
        total / seed_range.count() as u32
    };
    assert!(mean(0..500, 4) > mean(0..500, 1) * 4);
}

#[test]
fn retry_delay_for_429_is_only_a_tiny_jitter_and_retry_after_is_honoured() {
    let p = policy();
    let mut b = BackoffIter::new(&p, Jitter::Decorrelated, SmallRng::seed_from_u64(1));
    for _ in 0..100 {
        let d = retry_delay(&status(429, Some(Duration::from_secs(30))), &p, &mut b);
        assert!(d <= THROTTLE_JITTER, "{d:?}");
    }
    let d = retry_delay(&status(503, Some(Duration::from_secs(20))), &p, &mut b);
    assert!(d >= Duration::from_secs(20));
    let d = retry_delay(&status(503, Some(Duration::from_secs(3600))), &p, &mut b);
    assert!(d <= p.max_delay);
}

/// Runs `with_retries` over a script of results, one per attempt.
async fn run_script(
    idempotent: bool,
    script: Vec<Result<u32, ApiError>>,
) -> (Attempted<u32>, Client) {
    let c = client();
    let calls = AtomicU32::new(0);
    let script = std::sync::Mutex::new(script.into_iter());
    let out = with_retries(&c, &policy(), idempotent, &CancellationToken::new(), || {
        calls.fetch_add(1, Ordering::SeqCst);
        let next = script.lock().unwrap().next().expect("script too short");
        async move { next }
    })
    .await;
    assert_eq!(calls.load(Ordering::SeqCst), out.attempts);
    (out, c)
}

#[tokio::test(start_paused = true)]
async fn retryable_errors_are_retried_until_success() {
    let script = vec![
        Err(status(503, None)),
        Err(ApiError::Connect("refused".into())),
        Err(status(429, Some(Duration::from_secs(1)))),
        Ok(7),
    ];
    let (out, c) = run_script(true, script).await;
    assert_eq!(out.result.unwrap(), 7);
    assert_eq!(out.attempts, 4);
    assert_eq!(out.class, None);
    assert_eq!(c.stats().retries, 3);
}

#[tokio::test(start_paused = true)]
async fn a_create_retries_only_what_proves_nothing_was_stored() {
    let script = vec![
        Err(ApiError::Connect("refused".into())),
        Err(status(429, Some(Duration::from_secs(1)))),
        Ok(7),
    ];
    let (out, _) = run_script(false, script).await;
    assert_eq!((out.result.unwrap(), out.attempts), (7, 3));
    for ambiguous in [status(500, None), status(503, None), status(502, None)] {
        let (out, c) = run_script(false, vec![Err(ambiguous)]).await;
        assert_eq!(
            out.attempts, 1,
            "reconciled by the executor, never re-sent here"
        );
        assert_eq!(out.class, Some(RetryClass::OutcomeUnknown));
        assert_eq!(c.stats().retries, 0);
    }
}

#[tokio::test(start_paused = true)]
async fn retries_stop_after_max_retries() {
    let script = (0..6).map(|_| Err(status(502, None))).collect();
    let (out, c) = run_script(true, script).await;
    assert_eq!(out.attempts, 6);
    assert_eq!(out.class, Some(RetryClass::Retry));
    assert_eq!(out.result.unwrap_err().status(), Some(502));
    assert_eq!(c.stats().retries, 5);
}

#[tokio::test(start_paused = true)]
async fn final_classes_return_at_once() {
    let cases = [
        (true, status(401, None), RetryClass::Fatal),
        (true, status(404, None), RetryClass::Permanent),
        (true, status(409, None), RetryClass::Permanent),
        (
            false,
            ApiError::NoResponse("reset".into()),
            RetryClass::OutcomeUnknown,
        ),
        (
            false,
            ApiError::Timeout("slow".into()),
            RetryClass::OutcomeUnknown,
        ),
    ];
    for (idempotent, err, class) in cases {
        let (out, c) = run_script(idempotent, vec![Err(err)]).await;
        assert_eq!(out.attempts, 1);
        assert_eq!(out.class, Some(class));
        assert_eq!(c.stats().retries, 0);
    }
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_is_retried_for_a_read() {
    let script = vec![Err(ApiError::NoResponse("reset".into())), Ok(1)];
    let (out, _) = run_script(true, script).await;
    assert_eq!(out.attempts, 2);
    assert_eq!(out.result.unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn cancel_during_backoff_returns_cancelled_promptly() {
    let c = client();
    let cancel = CancellationToken::new();
    let p = RetryPolicy {
        max_retries: 5,
        base: Duration::from_secs(20),
        max_delay: Duration::from_secs(60),
        max_wait: Duration::from_secs(600),
    };
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        trigger.cancel();
    });
    let start = Instant::now();
    let out: Attempted<()> =
        with_retries(&c, &p, true, &cancel, || async { Err(status(503, None)) }).await;
    assert!(matches!(out.result, Err(ApiError::Cancelled)));
    assert_eq!(out.attempts, 1);
    assert_eq!(start.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn cancel_before_anything_was_sent_is_not_outcome_unknown() {
    let c = client();
    let cancel = CancellationToken::new();
    cancel.cancel();
    let out: Attempted<()> = with_retries(&c, &policy(), false, &cancel, || async { Ok(()) }).await;
    assert_eq!(out.attempts, 0, "nothing is sent once cancelled");
    // Cancelled while the attempt waits (as it would at the gate), before sending.
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let out: Attempted<()> = with_retries(&c, &policy(), false, &cancel, || {
        trigger.cancel();
        std::future::pending()
    })
    .await;
    assert!(matches!(out.result, Err(ApiError::Cancelled)));
    assert_eq!((out.attempts, out.class), (0, Some(RetryClass::Permanent)));
}

#[tokio::test(start_paused = true)]
async fn a_429_does_not_use_up_retries() {
    let mut script: Vec<Result<u32, ApiError>> = (0..20)
        .map(|_| Err(status(429, Some(Duration::from_secs(1)))))
        .collect();
    script.push(Err(status(503, None)));
    script.push(Ok(3));
    let (out, _) = run_script(true, script).await;
    assert_eq!(out.result.unwrap(), 3, "20 429s and a 503 fit in 5 retries");
    assert_eq!(out.attempts, 22);
}

#[tokio::test(start_paused = true)]
async fn the_wait_cap_ends_an_operation_the_server_never_lets_through() {
    let c = client();
    let p = RetryPolicy {
        max_wait: Duration::from_secs(60),
        ..RetryPolicy::default()
    };
    let start = Instant::now();
    let out: Attempted<()> = with_retries(&c, &p, true, &CancellationToken::new(), || async {
        tokio::time::sleep(Duration::from_secs(1)).await; // the server's own pause
        Err(status(429, Some(Duration::from_secs(1))))
    })
    .await;
    assert_eq!(out.result.unwrap_err().status(), Some(429));
    assert_eq!(out.class, Some(RetryClass::Retry), "exhausted, not refused");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(60) && waited < Duration::from_secs(63),
        "{waited:?}"
    );
    assert!(out.attempts > 5, "{} attempts", out.attempts);
}

#[tokio::test(start_paused = true)]
async fn a_server_asking_to_wait_beyond_the_cap_ends_it_at_once() {
    let c = client();
    let p = RetryPolicy {
        max_wait: Duration::from_secs(60),
        ..RetryPolicy::default()
    };
    let start = Instant::now();
    let out: Attempted<()> = with_retries(&c, &p, true, &CancellationToken::new(), || async {
        Err(status(429, Some(Duration::from_secs(3600))))
    })
    .await;
    assert_eq!((out.attempts, start.elapsed()), (1, Duration::ZERO));
    assert_eq!(out.class, Some(RetryClass::Retry));
}
