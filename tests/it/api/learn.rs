//! The client learns a sandbox's bucket (burst 20, 600/min, comments limited) while configured
//! far above it (6000/min, burst 1000): every comment is created once, and the stats show the
//! bucket the server has. Timing bounds are loose on purpose (a real clock).

use std::sync::Arc;

use alga_batch::api::{ApiError, ApiKey, Client, ClientConfig, NewComment};
use alga_batch::sandbox::{start, SandboxConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_learns_a_small_bucket_from_the_answers() {
    let sb = start(SandboxConfig {
        burst: 20,
        refill_per_minute: 600,
        limit_comments: true,
        quiet: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let ticket = sb.tickets()[0].ticket_id;
    let before = sb.comments(ticket).len();
    let mut cfg = ClientConfig::new(sb.base_url(), ApiKey::new("sandbox-key".into()));
    cfg.rate_per_minute = 6000;
    cfg.burst = 1000;
    let client = Arc::new(Client::new(cfg).unwrap());
    let tasks: Vec<_> = (0..8)
        .map(|w| {
            let client = Arc::clone(&client);
            tokio::spawn(async move {
                for i in 0..8 {
                    let body = NewComment {
                        comment_text: format!("w{w} c{i}"),
                        is_internal: false,
                        is_resolution: false,
                        suppress_contact_notifications: true,
                        metadata: None,
                    };
                    loop {
                        match client.create_comment(ticket, &body).await {
                            Ok(_) => break,
                            Err(ApiError::Status { status: 429, .. }) => continue,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        sb.comments(ticket).len(),
        before + 64,
        "each comment exactly once"
    );
    let stats = client.stats();
    eprintln!("{stats:?}; server saw {} 429s", sb.stats().rate_limited);
    assert_eq!(stats.learned_burst, Some(20));
    let rate = stats.learned_rate_per_s.unwrap_or_default();
    assert!((5.0..=20.0).contains(&rate), "learned {rate}/s");
    assert_eq!(stats.throttled, sb.stats().rate_limited);
    sb.shutdown().await;
}
