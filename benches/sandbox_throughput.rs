//! Sandbox throughput (not a test): comment creates per second with the limiter off, and a large
//! upload + download to show both are streamed (peak RSS stays far below the file size).
//!
//! `cargo bench --bench sandbox_throughput` (release build). Environment:
//! `BENCH_COMMENTS` (default 20000), `BENCH_CONCURRENCY` (32), `BENCH_UPLOAD_MB` (256; 0 skips),
//! `BENCH_PERSIST=1` (journal to a temporary data directory, as with `--data`).

use std::time::Instant;

use alga_batch::sandbox::{start, RateLimitMode, SandboxConfig};
use futures::{StreamExt, TryStreamExt};
use tokio::io::AsyncWriteExt;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Peak resident set size of this process in MiB (Linux), if known.
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

async fn comments(base: &str, tickets: &[uuid::Uuid], n: u64, conc: usize) -> f64 {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(conc)
        .build()
        .expect("client");
    let started = Instant::now();
    let failures = futures::stream::iter(0..n)
        .map(|i| {
            let url = format!(
                "{base}/api/v1/tickets/{}/comments",
                tickets[i as usize % tickets.len()]
            );
            let req = http
                .post(url)
                .header("x-api-key", "sandbox-key")
                .header("content-type", "application/json")
                .body(format!(
                    r#"{{"comment_text":"bench comment {i}","is_internal":false}}"#
                ));
            async move {
                match req.send().await {
                    Ok(r) if r.status() == 201 => r.bytes().await.map(|_| 0u64).unwrap_or(1),
                    _ => 1,
                }
            }
        })
        .buffer_unordered(conc)
        .fold(0u64, |acc, f| async move { acc + f })
        .await;
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(failures, 0, "every create must succeed");
    n as f64 / secs
}

async fn big_file(base: &str, ticket: uuid::Uuid, mb: u64) -> std::io::Result<(f64, f64)> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("big.bin");
    let mut f = tokio::fs::File::create(&path).await?;
    let chunk = vec![0x5au8; 1 << 20];
    for _ in 0..mb {
        f.write_all(&chunk).await?;
    }
    f.flush().await?;
    drop(f);
    let http = reqwest::Client::new();
    let file = tokio::fs::File::open(&path).await?;
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
        file,
        256 * 1024,
    ));
    let part = reqwest::multipart::Part::stream_with_length(body, mb << 20)
        .file_name("big.bin")
        .mime_str("application/octet-stream")
        .map_err(std::io::Error::other)?;
    let form = reqwest::multipart::Form::new().part("file", part);
    let started = Instant::now();
    let resp = http
        .post(format!("{base}/api/v1/tickets/{ticket}/documents"))
        .header("x-api-key", "sandbox-key")
        .multipart(form)
        .send()
        .await
        .map_err(std::io::Error::other)?;
    let up = mb as f64 / started.elapsed().as_secs_f64();
    let v: serde_json::Value = resp.json().await.map_err(std::io::Error::other)?;
    let id = v["data"]["document_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let started = Instant::now();
    let resp = http
        .get(format!("{base}/api/v1/tickets/{ticket}/documents/{id}"))
        .header("x-api-key", "sandbox-key")
        .send()
        .await
        .map_err(std::io::Error::other)?;
    let total = resp
        .bytes_stream()
        .map_err(std::io::Error::other)
        .try_fold(0u64, |n, b| async move { Ok(n + b.len() as u64) })
        .await?;
    assert_eq!(total, mb << 20, "downloaded size");
    Ok((up, mb as f64 / started.elapsed().as_secs_f64()))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let n = env_num("BENCH_COMMENTS", 20_000);
    let conc = env_num("BENCH_CONCURRENCY", 32) as usize;
    let mb = env_num("BENCH_UPLOAD_MB", 256);
    let data = tempfile::tempdir()?;
    let persist = std::env::var("BENCH_PERSIST").is_ok_and(|v| v == "1");
    let sb = start(SandboxConfig {
        rate_limit: RateLimitMode::Off,
        quiet: true,
        max_upload_bytes: u64::MAX,
        data_dir: persist.then(|| data.path().to_path_buf()),
        ..Default::default()
    })
    .await?;
    let base = sb.base_url();
    let tickets: Vec<uuid::Uuid> = sb.tickets().iter().map(|t| t.ticket_id).collect();
    comments(&base, &tickets, 1_000, conc).await;
    let rate = comments(&base, &tickets, n, conc).await;
    let mode = if persist { "with --data" } else { "in memory" };
    println!("comment creates ({mode}): {n} at concurrency {conc}: {rate:.0}/s (client and server share the machine)");
    if mb > 0 {
        let (up, down) = big_file(&base, tickets[0], mb).await?;
        println!("upload {mb} MiB: {up:.0} MiB/s; download: {down:.0} MiB/s");
    }
    if let Some(rss) = peak_rss_mib() {
        println!("peak RSS of the whole process (client + server): {rss} MiB");
    }
    sb.shutdown().await;
    Ok(())
}
