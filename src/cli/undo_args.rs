//! Flags of `alga-batch undo`, and their conversion into [`UndoOptions`].

use super::output::OutputFlags;
use super::{ConnArgs, ExecFlags};
use crate::record::{Clock, Command};
use crate::undo::{self, UndoOptions};
use clap::Args;
use std::path::PathBuf;

const UNDO_EXIT_CODES: &str = "\
Only rows whose status is created or existing are touched; failed, planned, cancelled and
sending rows never are. A document already gone (404) is recorded as missing.

Exit codes:
  0    every document deleted or already gone (and every comment redacted, when asked)
  1    some deletes or redactions failed or were cancelled (the undo results CSV is valid)
  2    RESULTS.csv is not a results file of alga-batch, or bad usage (nothing was sent)
  3    fatal: API key rejected (stops at once), server unreachable, results file unwritable
  4    the undo results file is in use by another run
  130  interrupted (Ctrl-C); rerun with --results to resume";

/// `alga-batch undo RESULTS.csv [--dry-run] [--results FILE] [--redact-comments TEXT] ...`
#[derive(Args, Debug)]
#[command(after_help = UNDO_EXIT_CODES)]
pub(crate) struct UndoArgs {
    /// The results CSV of the job to undo (written by `alga-batch run`).
    results_csv: PathBuf,
    /// Undo results CSV; an existing one is resumed (rows already deleted or missing are
    /// skipped). Default: results/undo-<source name>-<UTC timestamp>.csv.
    #[arg(long, value_name = "FILE")]
    results: Option<PathBuf>,
    /// Write the plan (status planned); send no DELETE and no PUT.
    #[arg(long)]
    dry_run: bool,
    /// Replace the text of the job's comments by TEXT (comments cannot be deleted through the
    /// API; the server lets a key edit only its own user's comments).
    #[arg(long, value_name = "TEXT")]
    redact_comments: Option<String>,
    #[command(flatten)]
    exec: ExecFlags,
    #[command(flatten)]
    conn: ConnArgs,
    #[command(flatten)]
    out: OutputFlags,
}

/// Run `undo`, print the summary, and return the exit code.
pub(crate) async fn undo_cmd(a: UndoArgs) -> u8 {
    let clock = Clock::start();
    let name = a
        .results_csv
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let (out, dry_run) = (a.out.clone(), a.dry_run);
    let result = match out.start(out.log_file.as_deref()) {
        Ok(()) => {
            let opts = options(&a);
            undo::run_undo(&opts, || a.conn.connection(None)).await
        }
        Err(e) => Err(e),
    };
    super::finish_ops(&out, Command::Undo, &name, clock, result, dry_run)
}

/// The undo options these flags ask for.
fn options(a: &UndoArgs) -> UndoOptions {
    UndoOptions {
        source: a.results_csv.clone(),
        results: a.results.clone(),
        dry_run: a.dry_run,
        redact_comments: a.redact_comments.clone(),
        pacing: a.exec.pacing_spec().resolve(crate::runner::AUTO),
        quiet: a.exec.quiet,
    }
}
