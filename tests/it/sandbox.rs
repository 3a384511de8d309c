//! The sandbox against the contract: the acceptance flow, statuses, limiter, persistence, faults.

use alga_batch::sandbox::{start, SandboxConfig};

#[tokio::test]
async fn health_answers_without_a_key() {
    let sb = start(SandboxConfig {
        quiet: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let r = reqwest::get(format!("{}/api/health", sb.base_url()))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    sb.shutdown().await;
}
