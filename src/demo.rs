//! `alga-batch demo`: the sample migration, end to end, on an in-process sandbox.

use crate::api::ApiKey;
use crate::connect::Connection;
use crate::error::{Error, Result};
use crate::import::{self, RunOptions};
use crate::runner::Completed;
use crate::sandbox::{self, SandboxConfig};
use std::path::PathBuf;

/// The demo job: `jobs/demo.toml` in the current folder, else in the source tree.
fn demo_job(job: Option<PathBuf>) -> PathBuf {
    if let Some(j) = job {
        return j;
    }
    let local = PathBuf::from("jobs/demo.toml");
    if local.exists() {
        local
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("jobs/demo.toml")
    }
}

/// Start a sandbox on an ephemeral loopback port and run the demo job against it; what the
/// run did (the CLI prints its summary and the results path).
pub async fn demo(job: Option<PathBuf>, quiet: bool) -> Result<Completed> {
    let cfg = SandboxConfig {
        quiet: true,
        ..SandboxConfig::default()
    };
    let key = cfg.api_keys.first().cloned().unwrap_or_default();
    let sb = sandbox::start(cfg)
        .await
        .map_err(|e| Error::Fatal(format!("cannot start the sandbox: {e}")))?;
    let base_url = sb.base_url();
    if !quiet {
        eprintln!("sandbox listening on {base_url} (in-process, rate limiter enforced: burst 120, 60/min)");
    }
    let opts = RunOptions {
        job: demo_job(job),
        quiet,
        ..RunOptions::default()
    };
    let result = import::run_import(&opts, |_| {
        Ok(Connection {
            base_url: base_url.clone(),
            api_key: ApiKey::new(key.clone()),
            tenant: None,
            allow_http: false,
        })
    })
    .await;
    sb.shutdown().await;
    result
}
