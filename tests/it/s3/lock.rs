//! The lease lock in the bucket, stores that do not honour conditional puts, and secrets.

use super::server::{Conditional, SECRET_KEY};
use super::{quick, S3Env};
use crate::env::{code, text};

/// A lock object as another run writes it, its lease running out `expires_at`.
fn lock_object(host: &str, pid: u32, expires_at: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "host": host,
        "pid": pid,
        "started_at": "2026-01-01T00:00:00Z",
        "renewed_at": "2026-01-01T00:00:00Z",
        "expires_at": expires_at,
        "lease_seconds": 60,
    }))
    .unwrap()
}

#[tokio::test]
async fn a_lock_held_by_another_run_exits_4_and_a_stale_one_is_taken_over() {
    let e = S3Env::with(quick(2)).await;
    let lock = e.file(".alga-batch.lock");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    let later = (chrono::Utc::now() + chrono::Duration::minutes(5)).to_rfc3339();
    std::fs::write(&lock, lock_object("backup-host-2", 4242, &later)).unwrap();
    let out = e.backup(&["--quiet", "--log-file", "backup.log"]).await;
    assert_eq!(code(&out), 4, "{}", text(&out));
    let msg = text(&out);
    assert!(msg.contains("host backup-host-2, pid 4242"), "{msg}");
    let log = std::fs::read_to_string(e.env.path("backup.log")).unwrap();
    assert!(log.contains("backup failed (exit 4)"), "{log}");
    assert!(
        e.env.sandbox.request_log().is_empty(),
        "a locked run sends nothing"
    );
    std::fs::write(
        &lock,
        lock_object("backup-host-2", 4242, "2026-01-01T00:01:00Z"),
    )
    .unwrap();
    let out = e.backup(&[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains("took over a stale lock (host backup-host-2, pid 4242"),
        "{}",
        text(&out)
    );
    assert!(!lock.exists(), "released at the end");
    assert!(!e.manifest().is_empty());
}

#[tokio::test]
async fn a_store_that_refuses_or_ignores_conditional_puts_stops_the_run_unless_no_lock() {
    let e = S3Env::with(quick(2)).await;
    for mode in [Conditional::Refuse, Conditional::Ignore] {
        e.s3.set_conditional(mode);
        let out = e.backup(&[]).await;
        assert_eq!(code(&out), 3, "{mode:?}: {}", text(&out));
        let msg = text(&out);
        assert!(
            msg.contains("conditional put") && msg.contains("--no-lock"),
            "{msg}"
        );
        assert!(
            e.env.sandbox.request_log().is_empty(),
            "nothing sent: {mode:?}"
        );
        assert!(e.keys().is_empty(), "no lock left: {:?}", e.keys());
    }
    let out = e.backup(&["--no-lock"]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(!e.manifest().is_empty());
    assert!(e.object(".alga-batch.lock").is_none());
}

#[tokio::test]
async fn s3_secrets_never_appear_in_any_output() {
    let e = S3Env::with(quick(2)).await;
    const TOKEN: &str = "session-token-that-must-stay-secret-42";
    let out = e.backup(&[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let run = |secret: &'static str| {
        let mut cmd = e.command(&[
            "backup",
            "--out",
            &super::out(),
            "--rate-per-minute",
            "0",
            "--log-file",
            "secret.log",
            "--verify",
        ]);
        cmd.env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_SESSION_TOKEN", TOKEN)
            .env("RUST_LOG", "trace");
        cmd.output()
    };
    let good = run(SECRET_KEY).await.unwrap();
    const WRONG: &str = "wrong-secret-that-must-stay-secret-7";
    assert_eq!(code(&good), 0, "{}", text(&good));
    let bad = run(WRONG).await.unwrap();
    assert_eq!(
        code(&bad),
        3,
        "a rejected signature is fatal: {}",
        text(&bad)
    );
    let log = std::fs::read_to_string(e.env.path("secret.log")).unwrap_or_default();
    for (what, output) in [
        ("good run", text(&good)),
        ("bad run", text(&bad)),
        ("log", log),
    ] {
        for secret in [SECRET_KEY, WRONG, TOKEN] {
            assert!(!output.contains(secret), "{what} shows a secret:\n{output}");
        }
    }
}

#[tokio::test]
async fn a_plain_http_endpoint_without_allow_http_is_a_usage_error_and_sends_nothing() {
    let e = S3Env::with(quick(1)).await;
    let out = e
        .command(&["backup", "--out", &super::out()])
        .env_remove("AWS_ALLOW_HTTP")
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("AWS_ALLOW_HTTP=true"), "{}", text(&out));
    assert!(e.env.sandbox.request_log().is_empty());
    assert!(e.s3.log().is_empty());
}
