//! Placeholder of the sandbox API (being built on the `sandbox` branch).
#![allow(missing_docs, dead_code, unused_variables)]
use std::net::SocketAddr;
use std::path::PathBuf;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitMode {
    Enforce,
    Observe,
    Off,
}
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub bind: SocketAddr,
    pub tickets: usize,
    pub seed: u64,
    pub api_keys: Vec<String>,
    pub tenant: uuid::Uuid,
    pub rate_limit: RateLimitMode,
    pub burst: u32,
    pub refill_per_minute: u32,
    pub limit_comments: bool,
    pub max_upload_bytes: u64,
    pub data_dir: Option<PathBuf>,
    pub fail_rate: f64,
    pub latency_ms: Option<(u64, u64)>,
    pub drop_after_commit: f64,
    pub quiet: bool,
}
impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            tickets: 25,
            seed: 42,
            api_keys: vec!["sandbox-key".into()],
            tenant: uuid::Uuid::nil(),
            rate_limit: RateLimitMode::Enforce,
            burst: 120,
            refill_per_minute: 60,
            limit_comments: false,
            max_upload_bytes: 500 * 1024 * 1024,
            data_dir: None,
            fail_rate: 0.0,
            latency_ms: None,
            drop_after_commit: 0.0,
            quiet: false,
        }
    }
}
pub struct Sandbox;
impl Sandbox {
    pub fn base_url(&self) -> String {
        String::new()
    }
    pub async fn shutdown(self) {}
}
pub async fn start(cfg: SandboxConfig) -> std::io::Result<Sandbox> {
    Ok(Sandbox)
}
pub async fn serve_until_ctrl_c(cfg: SandboxConfig) -> std::io::Result<()> {
    Ok(())
}
