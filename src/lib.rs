//! alga-batch: a batch job runner for the Alga PSA ticket API.
//!
//! Data flow:
//! ```text
//! job file --job::load_and_validate--> Job          (problems: exit 2, nothing sent)
//! Job + previous results --plan--> operations      (stable op keys; --dry-run stops here)
//! operations --exec--> per op: governor -> api call -> retry if retryable -> Outcome
//! Outcome --channel--> journal writer (sole owner of the results CSV, one flushed row per op)
//! ```
//! Modules: `api` (the only reqwest user), `job`, `plan`, `exec`, `journal`, `export`,
//! `store` (where backups go), `sandbox` (the only axum user), `cli` (the only clap user).

pub mod api;
pub mod cli;
pub mod connect;
pub mod demo;
pub mod error;
pub mod exec;
pub mod export;
pub mod job;
pub mod journal;
pub mod plan;
pub mod run;
pub mod sandbox;
pub mod store;
pub mod undo;

/// Log to stderr, filtered by `RUST_LOG` (default: warnings only).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
