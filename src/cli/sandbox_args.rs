//! Flags of `alga-batch sandbox`, converted into a [`SandboxConfig`].

use crate::error::{Error, Result, EXIT_OK};
use crate::sandbox::{self, Capacity, RateLimitMode, SandboxConfig};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

#[derive(ValueEnum, Debug, Clone, Copy)]
enum LimitMode {
    /// Answer 429 when a key's bucket is empty (the sandbox default: rehearse against the limit).
    Enforce,
    /// Count and send headers, never refuse (the real server's default).
    Observe,
    /// No limiter (headers report -1 remaining, as the real server when its limiter is down).
    Off,
}

/// Serve a local Alga PSA API.
#[derive(Args, Debug)]
pub(crate) struct SandboxArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// Seeded tickets (TIC001000, TIC001001, ...).
    #[arg(long, default_value_t = 25)]
    tickets: usize,
    /// Seed for ids, data and faults (reproducible runs).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Accepted API key (repeatable; each has its own bucket and user). Default: sandbox-key.
    #[arg(long = "api-key", value_name = "KEY")]
    api_keys: Vec<String>,
    /// Rate limiter mode.
    #[arg(long, value_enum, default_value_t = LimitMode::Enforce)]
    rate_limit: LimitMode,
    /// Bucket size per key.
    #[arg(long, default_value_t = 120)]
    burst: u32,
    /// Refill per minute per key.
    #[arg(long, default_value_t = 60)]
    refill_per_minute: u32,
    /// Also limit comment routes (the real server never does): tests a client's governor.
    #[arg(long)]
    limit_comments: bool,
    /// Largest upload in MiB (default 500, the real server's storage limit).
    #[arg(long, default_value_t = 500)]
    max_upload_mb: u64,
    /// Persist tickets, comments and documents in this folder across restarts.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Probability of a 503 before doing anything.
    #[arg(long, default_value_t = 0.0)]
    fail_rate: f64,
    /// Added latency per request, e.g. 50-200 (milliseconds).
    #[arg(long, value_name = "A-B")]
    latency_ms: Option<String>,
    /// Probability that a create is committed and then the connection closed with no response.
    #[arg(long, default_value_t = 0.0)]
    drop_after_commit: f64,
    /// Probability that a create is committed and then answered 500 (its answer proves nothing).
    #[arg(long, default_value_t = 0.0)]
    error_after_commit: f64,
    /// Probability that a create is committed and then answered 201 with an unreadable body.
    #[arg(long, default_value_t = 0.0)]
    garble_after_commit: f64,
    /// Serve like a server with N workers: at most N requests in service at once, the rest
    /// queue, and past N every request gets slower (see --overload). Default: unlimited.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    capacity: Option<u32>,
    /// With --capacity: milliseconds one request takes on a worker.
    #[arg(long, value_name = "MS", default_value_t = 20, requires = "capacity")]
    service_ms: u64,
    /// With --capacity: contention F; with C > N requests in the server each takes
    /// S × (1 + F × (C − N) / N), so the best fixed concurrency is N (0 = queueing only).
    #[arg(long, value_name = "F", default_value_t = Capacity::DEFAULT_OVERLOAD, requires = "capacity")]
    overload: f64,
    /// Accepted read-only key (repeatable): 403 on every update, for permission rehearsals.
    #[arg(long = "readonly-key", value_name = "KEY")]
    readonly_keys: Vec<String>,
    /// No per-request log line.
    #[arg(long)]
    quiet: bool,
    /// On Ctrl-C or SIGTERM, write what the sandbox saw to this file as JSON: request counts per route and
    /// status, 429s, and latency percentiles (time in server) overall and per route.
    #[arg(long, value_name = "PATH")]
    stats_file: Option<PathBuf>,
}

fn probability(name: &str, p: f64) -> Result<f64> {
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(Error::Usage(format!(
            "{name} must be between 0 and 1, not {p}"
        )))
    }
}

/// `--capacity`, `--service-ms` and `--overload` as a [`Capacity`].
fn capacity(workers: Option<u32>, service_ms: u64, overload: f64) -> Result<Option<Capacity>> {
    if !(overload.is_finite() && overload >= 0.0) {
        return Err(Error::Usage(format!(
            "--overload must be a number of at least 0, not {overload}"
        )));
    }
    Ok(workers.map(|workers| Capacity {
        workers,
        service: Duration::from_millis(service_ms),
        overload,
    }))
}

impl SandboxArgs {
    fn config(self) -> Result<SandboxConfig> {
        let defaults = SandboxConfig::default();
        Ok(SandboxConfig {
            bind: self.listen,
            tickets: self.tickets,
            seed: self.seed,
            tenant: sandbox::tenant_for_seed(self.seed),
            api_keys: if self.api_keys.is_empty() {
                defaults.api_keys
            } else {
                self.api_keys
            },
            rate_limit: match self.rate_limit {
                LimitMode::Enforce => RateLimitMode::Enforce,
                LimitMode::Observe => RateLimitMode::Observe,
                LimitMode::Off => RateLimitMode::Off,
            },
            burst: self.burst,
            refill_per_minute: self.refill_per_minute,
            limit_comments: self.limit_comments,
            max_upload_bytes: self.max_upload_mb.saturating_mul(1024 * 1024),
            data_dir: self.data,
            fail_rate: probability("--fail-rate", self.fail_rate)?,
            latency_ms: self
                .latency_ms
                .as_deref()
                .map(sandbox::parse_latency_ms)
                .transpose()
                .map_err(|e| Error::Usage(e.to_string()))?,
            drop_after_commit: probability("--drop-after-commit", self.drop_after_commit)?,
            error_after_commit: probability("--error-after-commit", self.error_after_commit)?,
            garble_after_commit: probability("--garble-after-commit", self.garble_after_commit)?,
            capacity: capacity(self.capacity, self.service_ms, self.overload)?,
            readonly_keys: self.readonly_keys,
            quiet: self.quiet,
        })
    }
}

/// Run the sandbox until Ctrl-C or SIGTERM.
pub(crate) async fn serve(args: SandboxArgs) -> Result<u8> {
    let stats_file = args.stats_file.clone();
    let cfg = args.config()?;
    let bind = cfg.bind;
    sandbox::serve_until_ctrl_c(cfg, stats_file.as_deref())
        .await
        .map_err(|e| Error::Fatal(format!("sandbox on {bind}: {e}")))?;
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SandboxArgs,
    }

    fn config(args: &[&str]) -> std::result::Result<SandboxConfig, String> {
        let cli = Cli::try_parse_from(std::iter::once("sandbox").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        cli.args.config().map_err(|e| e.to_string())
    }

    #[test]
    fn capacity_flags_build_the_model_and_need_capacity() {
        assert_eq!(config(&[]).unwrap().capacity, None);
        let cfg = config(&["--capacity", "8"]).unwrap();
        assert_eq!(
            cfg.capacity,
            Some(Capacity::new(8, Duration::from_millis(20)))
        );
        let cfg = config(&[
            "--capacity",
            "32",
            "--service-ms",
            "100",
            "--overload",
            "0.5",
        ]);
        assert_eq!(
            cfg.unwrap().capacity,
            Some(Capacity {
                workers: 32,
                service: Duration::from_millis(100),
                overload: 0.5
            })
        );
        assert!(config(&["--service-ms", "100"]).is_err());
        assert!(config(&["--capacity", "0"]).is_err());
        let bad = config(&["--capacity", "4", "--overload=-1"]).unwrap_err();
        assert!(bad.contains("--overload"), "{bad}");
    }

    #[test]
    fn a_limited_bucket_on_comment_routes_is_one_command_line() {
        // "burst 20, 600/min, comments limited" (issue 11's budget target).
        let cfg = config(&[
            "--burst",
            "20",
            "--refill-per-minute",
            "600",
            "--limit-comments",
        ])
        .unwrap();
        assert_eq!((cfg.burst, cfg.refill_per_minute), (20, 600));
        assert!(cfg.limit_comments);
        assert_eq!(cfg.rate_limit, RateLimitMode::Enforce);
    }
}
