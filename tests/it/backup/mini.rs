//! A tiny hand-written HTTP/1.1 server for cases the sandbox cannot play: each request line's
//! path is answered by a function (with a delay before the answer), one request a connection.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serve on 127.0.0.1:0 until the task is aborted; returns the base URL and the task.
pub(super) async fn serve(
    answer: fn(&str) -> (Duration, Vec<u8>),
) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&req).into_owned();
                let path = text.split(' ').nth(1).unwrap_or("").to_string();
                let (delay, body) = answer(&path);
                tokio::time::sleep(delay).await;
                let _ = sock.write_all(&body).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (base, task)
}

/// The binary in `dir` against `base` with `args`, to completion.
pub(super) async fn run(dir: &std::path::Path, base: &str, args: &[&str]) -> std::process::Output {
    crate::env::binary(dir, base, args).output().await.unwrap()
}
