//! `alga-batch backup --out s3://...` against the sandbox and a local S3 server (`server.rs`,
//! `s3s-fs` on 127.0.0.1:0): incremental runs that read nothing back, no object or upload
//! left by a failed, interrupted or killed download, the lease lock, `--prune`, `--verify`,
//! the other options as with a folder, and a restore from `s3://`.

use crate::env::{config, TestEnv};
use alga_batch::sandbox::{RateLimitMode, SandboxConfig};
use server::{Op, S3Server, ACCESS_KEY, SECRET_KEY};
use std::collections::HashMap;
use std::path::PathBuf;

mod backup;
mod faults;
mod lock;
mod restore;
pub(crate) mod server;

/// The bucket and prefix every test backs up to.
const BUCKET: &str = "bkt";
const PREFIX: &str = "nightly/alga";

/// `s3://bkt/nightly/alga`.
fn out() -> String {
    format!("s3://{BUCKET}/{PREFIX}")
}

/// Small, unthrottled sandbox.
fn quick(tickets: usize) -> SandboxConfig {
    SandboxConfig {
        tickets,
        rate_limit: RateLimitMode::Off,
        ..config()
    }
}

/// A sandbox, an S3 server over a temporary folder, and the binary pointed at both.
struct S3Env {
    env: TestEnv,
    s3: S3Server,
    _data: tempfile::TempDir,
}

impl S3Env {
    async fn with(cfg: SandboxConfig) -> S3Env {
        let env = TestEnv::with(cfg).await;
        let data = tempfile::tempdir().unwrap();
        let s3 = S3Server::start(data.path(), BUCKET, 0).await.unwrap();
        S3Env {
            env,
            s3,
            _data: data,
        }
    }

    /// The binary with the S3 environment of `s3` (and no other `AWS_*` variable).
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = self.env.command(args);
        for (k, v) in aws_env(&self.s3) {
            cmd.env(k, v);
        }
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("AWS_")) {
            if !aws_env(&self.s3).iter().any(|(n, _)| *n == k) {
                cmd.env_remove(k);
            }
        }
        cmd
    }

    /// `backup --out s3://bkt/nightly/alga --rate-per-minute 0` plus `extra`.
    async fn backup(&self, extra: &[&str]) -> std::process::Output {
        let out = out();
        let mut args = vec!["backup", "--out", &out, "--rate-per-minute", "0"];
        args.extend_from_slice(extra);
        self.command(&args).output().await.unwrap()
    }

    /// The file holding the object `key` (below the prefix).
    fn file(&self, key: &str) -> PathBuf {
        self.s3.file(BUCKET, &format!("{PREFIX}/{key}"))
    }

    /// The object `key`, read from the server's folder (not through S3: not logged).
    fn object(&self, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.file(key)).ok()
    }

    /// Every object key below the prefix, sorted.
    fn keys(&self) -> Vec<String> {
        let root = self.s3.file(BUCKET, PREFIX);
        if !root.exists() {
            return Vec::new();
        }
        let mut keys: Vec<String> = crate::backup::walk(&root)
            .iter()
            .map(|p| {
                p.strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/")
            })
            .collect();
        keys.sort();
        keys
    }

    /// `manifest.csv` rows.
    fn manifest(&self) -> Vec<HashMap<String, String>> {
        crate::env::read_results(&self.file("manifest.csv")).1
    }

    /// Requests the S3 server answered from position `from` of its log on.
    fn ops_since(&self, from: usize) -> Vec<Op> {
        self.s3.log().split_off(from)
    }

    /// GETs of one document's bytes from the sandbox.
    fn downloads(&self) -> usize {
        self.env
            .sandbox
            .request_log()
            .iter()
            .filter(|r| r.method == "GET" && r.path.contains("/documents/"))
            .count()
    }
}

/// The variables that point the binary at `s3`.
fn aws_env(s3: &S3Server) -> Vec<(String, String)> {
    [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
        ("AWS_ENDPOINT_URL", s3.endpoint()),
        ("AWS_ALLOW_HTTP", "true".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Whether `key` is a document key (below a ticket folder), not one of the backup's own.
fn is_document(key: &str) -> bool {
    let rel = key.strip_prefix(&format!("{PREFIX}/")).unwrap_or(key);
    rel.contains('/') && !rel.starts_with(".alga-batch-")
}

/// sha256 of `data`, hex.
fn sha(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Bytes that differ at every offset mod 251 and from one MiB to the next.
fn content(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8 ^ (i >> 20) as u8).collect()
}
