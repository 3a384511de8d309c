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
//! `store` (where backups go), `restore` (backups back into Alga), `undo`, `runner` (what every
//! command shares), `sandbox` (the only axum user), `cli` (the only clap user).
//!
//! Cargo feature `sandbox` (default on): the local server (`sandbox`, `demo`) and axum with it.
//! `cargo build --release --no-default-features` builds the client alone, e.g. for cron hosts.

pub mod api;
pub mod cli;
pub mod connect;
#[cfg(feature = "sandbox")]
pub mod demo;
pub mod error;
pub mod exec;
pub mod export;
pub mod import;
pub mod job;
pub mod journal;
pub mod logging;
pub mod metrics;
mod mutex;
pub mod plan;
pub mod record;
pub mod restore;
pub mod runner;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod store;
pub mod undo;

/// Log text lines to stderr, filtered by `RUST_LOG` (default: warnings only); see
/// [`logging::init`] for JSON lines and a log file.
pub fn init_tracing() {
    let _ = logging::init(logging::LogFormat::Text, None);
}
