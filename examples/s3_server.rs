//! A local S3-compatible server over a folder, for benchmarks and manual runs of
//! `backup --out s3://...` (the same server the tests use: `tests/it/s3/server.rs`, `s3s-fs`
//! behind a thin wrapper). Nothing is fetched from the internet.
//!
//! ```text
//! cargo run --release --example s3_server -- DIR [BUCKET] [PORT]
//! ```
//! Serves DIR (created) with the bucket BUCKET (default `backups`) on 127.0.0.1:PORT (default:
//! a free port), prints the endpoint and the `AWS_*` variables that point `alga-batch` at it,
//! and runs until Ctrl-C, then prints how many requests of each kind it answered.

#[path = "../tests/it/s3/server.rs"]
mod server;

use std::collections::BTreeMap;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: s3_server DIR [BUCKET] [PORT]");
        std::process::exit(2);
    };
    let bucket = args.next().unwrap_or_else(|| "backups".into());
    let port = match args.next().map(|p| p.parse::<u16>()) {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            eprintln!("bad port: {e}");
            std::process::exit(2);
        }
        None => 0,
    };
    let s3 = server::S3Server::start(std::path::Path::new(&dir), &bucket, port).await?;
    println!("listening on {}", s3.endpoint());
    println!("AWS_ENDPOINT_URL={}", s3.endpoint());
    println!("AWS_ALLOW_HTTP=true");
    println!("AWS_ACCESS_KEY_ID={}", server::ACCESS_KEY);
    println!("AWS_SECRET_ACCESS_KEY={}", server::SECRET_KEY);
    println!("AWS_REGION=us-east-1");
    println!("bucket: {bucket}");
    tokio::signal::ctrl_c().await?;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for op in s3.log() {
        *counts.entry(op.op).or_default() += 1;
    }
    for (op, n) in counts {
        println!("{op}: {n}");
    }
    Ok(())
}
