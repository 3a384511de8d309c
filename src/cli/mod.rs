//! The command line (the only user of clap): parse, convert into core options, dispatch.
// The doc comments in this module are clap's help text, shown as written: `<ticket>` and
// `[::1]` there are text for a terminal, not HTML tags or links for rustdoc.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

mod backup_args;
mod key_file;
mod output;
mod restore_args;
#[cfg(feature = "sandbox")]
mod sandbox_args;
mod shell;
mod undo_args;

use crate::api::ApiKey;
use crate::api::Concurrency;
use crate::connect::Connection;
use crate::error::{Error, Result, EXIT_OK};
use crate::import::{self, RunOptions};
use crate::job::{ValidateOptions, DEFAULT_MAX_UPLOAD_BYTES};
use crate::record::{Clock, Command as RecordCommand, RunRecord};
use crate::runner::{Completed, PacingSpec};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

const EXIT_CODES: &str = "\
Exit codes:
  0    every operation created or already existing
  1    some operations failed or were cancelled (the results CSV is complete and valid)
  2    invalid usage or job file (nothing was sent)
  3    fatal: API key rejected (401) or not allowed to write (403), server unreachable,
       results file unwritable
  4    the results file (run, undo, restore) or the output folder (backup) is in use by
       another run
  130  interrupted (Ctrl-C)

The API key is read from ALGA_API_KEY or from --api-key-file; it is never accepted as a flag
value and never printed, logged or written to any file.";

/// Batch job runner for the Alga PSA ticket API: governed, resumable imports of comments and
/// attachments, backups, undo, and a faithful local sandbox.
#[derive(Parser, Debug)]
#[command(name = "alga-batch", version, after_help = EXIT_CODES)]
#[cfg_attr(
    not(feature = "sandbox"),
    command(
        about = "Batch job runner for the Alga PSA ticket API: governed, resumable imports of \
                 comments and attachments, backups and undo (built without the sandbox)",
        long_about = None
    )
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run an import job (CSV or TOML): post comments, upload attachments, write a results CSV.
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
    /// Check a job file without any network access (exit 2 when it has errors).
    ///
    /// The job is read as a stream and its rows are counted, not kept, so memory does not
    /// grow with the number of rows. Only the duplicate-row detector grows: a few dozen bytes
    /// per distinct row. At most 100 problems of each kind are listed, then a count of the
    /// rest.
    Validate(ValidateArgs),
    /// Start the sandbox in-process and run jobs/demo.toml against it.
    #[cfg(feature = "sandbox")]
    Demo(DemoArgs),
    /// Back up ticket attachments (and comments) into a folder or an S3 bucket, incrementally; for cron.
    Backup(backup_args::BackupArgs),
    /// Serve a local Alga PSA API for rehearsals and tests.
    #[cfg(feature = "sandbox")]
    Sandbox(sandbox_args::SandboxArgs),
    /// Undo a job from its results CSV: delete the documents it created, list (or redact) its
    /// comments, write an undo results CSV (resumable with --results).
    Undo(undo_args::UndoArgs),
    /// Print a shell completion script to stdout (bash, zsh, fish, powershell, elvish).
    Completions(shell::CompletionsArgs),
    /// Print the man page (roff) to stdout: alga-batch man > alga-batch.1, and
    /// alga-batch man run > alga-batch-run.1 for each subcommand.
    Man(shell::ManArgs),
    /// Put a backup back into Alga, in place or into another instance: upload its documents
    /// and post its comments where they are missing (resumable with --results).
    Restore(restore_args::RestoreArgs),
}

/// Where the server is and who we are.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct ConnArgs {
    /// Base URL of the Alga PSA server, its root without /api, with no user name or password
    /// in it (`run` falls back to the job file's base_url).
    #[arg(long, env = "ALGA_BASE_URL")]
    base_url: Option<String>,
    /// Read the API key from this file (else from the ALGA_API_KEY environment variable).
    #[arg(long, value_name = "PATH")]
    api_key_file: Option<PathBuf>,
    /// Tenant UUID, sent as x-tenant-id.
    #[arg(long, env = "ALGA_TENANT_ID")]
    tenant: Option<String>,
    /// Allow plain http:// to a host that is not loopback (the key travels unencrypted).
    /// Loopback: 127.0.0.0/8, [::1], [::ffff:127.x.y.z] and localhost.
    #[arg(long)]
    allow_http: bool,
}

impl ConnArgs {
    /// Build the connection; `fallback_url` comes from the job file.
    pub(crate) fn connection(&self, fallback_url: Option<&str>) -> Result<Connection> {
        let base_url = self
            .base_url
            .clone()
            .filter(|u| !u.trim().is_empty()) // ALGA_BASE_URL= (set but empty) counts as unset
            .or_else(|| fallback_url.map(str::to_string))
            .ok_or_else(|| {
                Error::Usage("no server: pass --base-url or set ALGA_BASE_URL".into())
            })?;
        Ok(Connection {
            base_url,
            api_key: read_api_key(self.api_key_file.as_deref())?,
            tenant: self.tenant.clone(),
            allow_http: self.allow_http,
        })
    }
}

/// The key from `--api-key-file` or `ALGA_API_KEY`.
fn read_api_key(file: Option<&std::path::Path>) -> Result<ApiKey> {
    let key = match file {
        Some(p) => {
            key_file::warn_if_open(p);
            std::fs::read_to_string(p).map_err(|e| {
                Error::Usage(format!("cannot read api key file {}: {e}", p.display()))
            })?
        }
        None => std::env::var("ALGA_API_KEY").map_err(|_| {
            Error::Usage("no API key: set ALGA_API_KEY or pass --api-key-file PATH".into())
        })?,
    };
    let key = key.trim().to_string();
    if key.is_empty() {
        return Err(Error::Usage("the API key is empty".into()));
    }
    Ok(ApiKey::new(key))
}

/// How requests are paced and retried (shared by `run`, `undo`, `restore` and `backup`).
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct ExecFlags {
    /// Requests in flight: `auto` (the default for run, undo and restore) finds the server's
    /// capacity from its latency, per kind of request (comment posts, uploads, reads), up to
    /// --max-concurrency; a number fixes it. For `backup`: tickets in flight, each downloading
    /// its documents in turn (a number; default 4).
    #[arg(long, value_name = "N|auto", value_parser = concurrency_arg)]
    pub(crate) concurrency: Option<Concurrency>,
    /// The highest limit `--concurrency auto` may reach (default 64).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_concurrency: Option<u32>,
    /// Client-side request rate (default 60, the server's default; 0 = no client-side limit).
    /// The client also learns the server's real budget from its X-RateLimit headers and 429s
    /// and sends at the lower of the two.
    #[arg(long, value_name = "R")]
    pub(crate) rate_per_minute: Option<u32>,
    /// Client-side burst (default 120).
    #[arg(long, value_name = "B")]
    pub(crate) burst: Option<u32>,
    /// Retries per request for 5xx, timeouts and connection errors (default 5). A 429 is the
    /// server's scheduling and does not use up retries: see --max-wait.
    #[arg(long, value_name = "N")]
    pub(crate) max_retries: Option<u32>,
    /// Longest one operation may be held back by 429s before it fails (default 10m): ends a
    /// run whose server never lets it through.
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub(crate) max_wait: Option<std::time::Duration>,
    /// Print only the final summary.
    #[arg(long)]
    pub(crate) quiet: bool,
}

impl ExecFlags {
    /// The pacing these flags ask for (unset values come from a job file, then defaults).
    pub(crate) fn pacing_spec(&self) -> PacingSpec {
        PacingSpec {
            concurrency: self.concurrency,
            max_concurrency: self.max_concurrency,
            rate_per_minute: self.rate_per_minute,
            burst: self.burst,
            max_retries: self.max_retries,
            max_wait: self.max_wait,
        }
    }
}

fn concurrency_arg(s: &str) -> std::result::Result<Concurrency, String> {
    crate::runner::parse_concurrency(s).map_err(|e| e.to_string())
}

fn duration_arg(s: &str) -> std::result::Result<std::time::Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e} (e.g. 10m, 90s)"))
}

#[derive(Args, Debug, Clone)]
struct ValidateFlags {
    /// Split comments over 5,000 characters into numbered parts instead of failing.
    #[arg(long)]
    split_long_comments: bool,
    /// Largest attachment accepted, in MiB (the real server's proxy cap is 100 MB).
    #[arg(long, value_name = "MIB")]
    max_upload_mb: Option<u64>,
}

impl ValidateFlags {
    fn options(&self) -> ValidateOptions {
        ValidateOptions {
            split_long_comments: self.split_long_comments,
            max_upload_bytes: self
                .max_upload_mb
                .map_or(DEFAULT_MAX_UPLOAD_BYTES, |m| m.saturating_mul(1024 * 1024)),
        }
    }
}

#[derive(Args, Debug)]
struct RunArgs {
    /// The job file (*.csv or *.toml).
    job: PathBuf,
    /// Results CSV; an existing one is resumed (done operations are not sent again).
    #[arg(long, value_name = "FILE")]
    results: Option<PathBuf>,
    #[command(flatten)]
    exec: ExecFlags,
    /// Resolve tickets and write the plan (status planned); create nothing.
    #[arg(long)]
    dry_run: bool,
    /// Let the server notify contacts about imported comments (default: suppressed).
    #[arg(long)]
    notify: bool,
    /// Run the rows whose ticket resolves and record the others as failed (default: any
    /// unknown or ambiguous ticket stops the run before anything is sent, exit 2).
    #[arg(long)]
    skip_unresolved: bool,
    #[command(flatten)]
    validate: ValidateFlags,
    #[command(flatten)]
    conn: ConnArgs,
    #[command(flatten)]
    out: output::OutputFlags,
}

#[derive(Args, Debug)]
struct ValidateArgs {
    /// The job file (*.csv or *.toml).
    job: PathBuf,
    #[command(flatten)]
    validate: ValidateFlags,
}

#[cfg(feature = "sandbox")]
#[derive(Args, Debug)]
struct DemoArgs {
    /// The job to run (default: jobs/demo.toml).
    #[arg(long)]
    job: Option<PathBuf>,
    /// Print only the final summary.
    #[arg(long)]
    quiet: bool,
}

/// Parse the command line and run; returns the process exit code.
pub async fn main_entry() -> u8 {
    let cli = Cli::parse();
    match dispatch(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("alga-batch: {e}");
            e.exit_code()
        }
    }
}

async fn dispatch(cli: Cli) -> Result<u8> {
    // run, undo, backup and restore set up logging from their own flags.
    if !matches!(
        cli.command,
        Command::Run(_) | Command::Undo(_) | Command::Backup(_) | Command::Restore(_)
    ) {
        crate::logging::init(crate::logging::LogFormat::Text, None)?;
    }
    match cli.command {
        Command::Run(a) => Ok(run_cmd(a).await),
        Command::Undo(a) => Ok(undo_args::undo_cmd(a).await),
        Command::Backup(a) => Ok(backup_args::backup(a).await),
        Command::Completions(a) => shell::completions(&a),
        Command::Man(a) => shell::man(&a),
        Command::Validate(a) => {
            let job = import::validate_job(&a.job, &a.validate.options(), false)?;
            eprintln!(
                "{}: {} operations, no errors",
                a.job.display(),
                job.operations
            );
            Ok(EXIT_OK)
        }
        #[cfg(feature = "sandbox")]
        Command::Demo(a) => Ok(report(&crate::demo::demo(a.job, a.quiet).await?)),
        #[cfg(feature = "sandbox")]
        Command::Sandbox(a) => sandbox_args::serve(a).await,
        Command::Restore(a) => Ok(restore_args::restore_cmd(a).await),
    }
}

/// `run`: import, then [`finish_ops`].
async fn run_cmd(a: RunArgs) -> u8 {
    let clock = Clock::start();
    let name = a
        .job
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let dry_run = a.dry_run;
    let out = a.out.clone();
    let result = match out.start(out.log_file.as_deref()) {
        Ok(()) => run_import_args(a).await,
        Err(e) => Err(e),
    };
    finish_ops(&out, RecordCommand::Run, &name, clock, result, dry_run)
}

/// The import behind `run`.
async fn run_import_args(a: RunArgs) -> Result<Completed> {
    let opts = RunOptions {
        job: a.job,
        results: a.results,
        pacing: a.exec.pacing_spec(),
        dry_run: a.dry_run,
        quiet: a.exec.quiet,
        notify: a.notify,
        skip_unresolved: a.skip_unresolved,
        validate: a.validate.options(),
    };
    let conn = a.conn;
    import::run_import(&opts, |job| {
        conn.connection(job.settings.base_url.as_deref())
    })
    .await
}

/// End `run`, `undo` (or `restore`): the human summary (or the error) on stderr, then
/// [`output::finish`]; the exit code.
pub(crate) fn finish_ops(
    out: &output::OutputFlags,
    command: RecordCommand,
    name: &str,
    clock: Clock,
    result: Result<Completed>,
    dry_run: bool,
) -> u8 {
    let (record, problems) = match &result {
        Ok(done) => {
            if out.human() {
                report(done);
            }
            let problems = done.problems.iter().map(problem_line).collect();
            let record = RunRecord::completed(command, name, clock, done, dry_run);
            (record, problems)
        }
        Err(e) => {
            eprintln!("alga-batch: {e}");
            (RunRecord::failed(command, name, clock, e), Vec::new())
        }
    };
    output::finish(out, &record, &problems)
}

/// A failed or unknown operation, on one line.
fn problem_line(r: &crate::journal::ResultRow) -> String {
    format!(
        "{} ({}, ticket {}): {}: {}",
        r.source,
        r.kind,
        r.ticket,
        r.status.as_str(),
        r.error
    )
}

/// Print a finished run's summary, then the error that stopped it early if one did; the exit
/// code.
pub(crate) fn report(done: &Completed) -> u8 {
    eprintln!("{}", done.summary);
    if let Some(e) = &done.fatal {
        eprintln!("alga-batch: {e}");
    }
    done.exit_code()
}
