//! Runs a sandbox with default settings until Ctrl-C (for schemathesis and manual curl runs).
//!
//! `SANDBOX_PORT` picks the port (default: a free one), `SANDBOX_RATE_LIMIT=off|observe|enforce`
//! the limiter mode, `SANDBOX_QUIET=1` silences the request log.

use alga_batch::sandbox::{serve_until_ctrl_c, RateLimitMode, SandboxConfig};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut cfg = SandboxConfig::default();
    if let Some(port) = std::env::var("SANDBOX_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
    {
        cfg.bind.set_port(port);
    }
    if let Ok(mode) = std::env::var("SANDBOX_RATE_LIMIT") {
        cfg.rate_limit = mode
            .parse::<RateLimitMode>()
            .map_err(std::io::Error::other)?;
    }
    cfg.quiet = std::env::var("SANDBOX_QUIET").is_ok_and(|v| v == "1");
    serve_until_ctrl_c(cfg, None).await
}
