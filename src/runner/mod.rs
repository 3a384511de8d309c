//! The runner: what every command shares, in one place. It builds the client and the pacing
//! (`pacing.rs`: the only place a client or a retry policy is set up for a run), installs the
//! two-stage Ctrl-C and time budgets (`signals.rs`), takes the run's lock (`lock.rs`), applies
//! the one rule for run-stopping errors (`fatal.rs`), and runs any list of operations through
//! the executor with the journal and reconciliation (`ops.rs`: [`Session::run_ops`]), mapping
//! outcomes to the documented exit codes.
//!
//! ```text
//! producer (import job | undo | restore) --> Vec<Operation>
//! Session::open(results)  lock <results>.lock, Ctrl-C, earlier rows
//!   .run_ops(ops, conn, pacing, opts)
//!       skip done -> connect -> health check -> resolve every ticket (exit 2 if any fails)
//!       -> dry run: plan file | executor + journal + reconciler -> Completed
//! backup: Stop::install + Runner::connect + lock::acquire(DIR/.alga-batch.lock)
//! ```

mod fatal;
pub mod lock;
mod ops;
mod pacing;
mod resolve;
mod signals;

pub use fatal::{exec_fatal, fatal_from, is_fatal_now};
pub use ops::{estimate, group_thousands, OpsOptions, Session};
pub use pacing::{
    parse_concurrency, Pacing, PacingSpec, Runner, AUTO, DEFAULT_BURST, DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RETRIES, DEFAULT_MAX_WAIT, DEFAULT_RATE_PER_MINUTE,
};
pub use signals::Stop;

use crate::error::Error;
use crate::journal::{ResultRow, Summary};

/// A run that went to its end, or was stopped by a run-level error after its results were
/// written: the summary either way.
#[derive(Debug)]
pub struct Completed {
    /// What happened, in numbers.
    pub summary: Summary,
    /// The first rows of failed or unknown operations.
    pub problems: Vec<ResultRow>,
    /// The error that stopped the run early (the results written so far are valid).
    pub fatal: Option<Error>,
}

impl Completed {
    /// A run with nothing to report but its summary.
    pub fn new(summary: Summary) -> Self {
        Completed {
            summary,
            problems: Vec::new(),
            fatal: None,
        }
    }

    /// The process exit code: the fatal error's, else the summary's.
    pub fn exit_code(&self) -> u8 {
        match &self.fatal {
            Some(e) => e.exit_code(),
            None => self.summary.exit_code(),
        }
    }
}
