//! `alga-batch backup`: flags, merged with an export job file, into `export::BackupOptions`.

use super::output::{self, OutputFlags};
use super::{ConnArgs, ExecFlags};
use crate::api::Concurrency;
use crate::error::{Error, Result};
use crate::export::{self, BackupOptions, BackupSummary, ExportSpec};
use crate::logging::LogFormat;
use crate::record::{Clock, Command, RunRecord};
use crate::store::Location;
use clap::Args;
use std::path::PathBuf;

const BACKUP_HELP: &str = "\
Incremental by default: a document already in DIR/manifest.csv with the same id and size is
not downloaded again while its file has that size and was not modified after it was recorded
(a file modified since is re-hashed, and downloaded again if its sha256 differs). --verify
re-reads and re-hashes every file: run it now and then (say weekly) to catch silent damage.
Each document is recorded in DIR/manifest.journal.csv as it completes, so a killed run loses
at most the downloads in flight; the journal is folded into manifest.csv at the end of a run.
Every selected ticket's document list is checked on every run, because an upload does not
change a ticket's updated_at on Alga (--updated-from can therefore miss new attachments).
--dry-run prints what that costs.

S3-compatible object storage: --out s3://BUCKET/PREFIX (AWS S3, MinIO, Ceph, Cloudflare R2,
Backblaze B2, Wasabi...), with the same layout and guarantees under PREFIX. Credentials and
endpoint come from the standard AWS environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_SESSION_TOKEN, AWS_REGION or AWS_DEFAULT_REGION, AWS_ENDPOINT_URL or AWS_ENDPOINT (a custom
endpoint is addressed path-style), AWS_ALLOW_HTTP=true for a plain-http endpoint. Secrets are
never printed. Each download streams into the bucket (multipart above 8 MiB) and appears only
once complete and checked; a repeat run checks objects by listing, never by reading them
(--verify reads them). The lock is an object created with a conditional put and renewed while
the run goes on; a store without conditional puts needs --no-lock.

Exit codes: 0 all done (also when --max-duration stopped the run cleanly), 1 some documents or
tickets failed, 2 invalid usage, 3 fatal, 4 DIR or the bucket prefix is locked by another run,
130 interrupted.";

/// Flags of `backup`.
#[derive(Args, Debug)]
#[command(after_help = BACKUP_HELP)]
pub(crate) struct BackupArgs {
    /// Backup folder (documents go to DIR/<ticket_number>/<name>), or s3://BUCKET/PREFIX for
    /// S3-compatible object storage (the same layout under PREFIX).
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    out: Option<PathBuf>,
    /// Export job file (TOML with kind = "export"); flags override its settings.
    #[arg(long, value_name = "FILE")]
    job: Option<PathBuf>,
    /// Only this ticket (number or UUID); repeatable.
    #[arg(long = "ticket", value_name = "REF")]
    tickets: Vec<String>,
    /// Only the tickets listed in FILE (one number or UUID a line; # comments).
    #[arg(long = "tickets", value_name = "FILE")]
    tickets_file: Option<PathBuf>,
    /// Only open tickets.
    #[arg(long)]
    open_only: bool,
    /// Only tickets updated at or after TIME (UTC, e.g. 2026-11-01T00:00:00Z).
    #[arg(long, value_name = "TIME")]
    updated_from: Option<String>,
    /// Also export comments (DIR/<ticket>/comments.jsonl and DIR/comments.csv).
    #[arg(long)]
    comments: bool,
    /// Delete the files of documents that are gone from the server (default: keep, report).
    #[arg(long)]
    prune: bool,
    /// Stop starting new work after this long (e.g. 50m); downloads still running then get a
    /// grace of 10% of it (at least 10 s) and are then aborted (no partial files); the next
    /// run continues with what was left.
    #[arg(long, value_name = "DURATION")]
    max_duration: Option<String>,
    /// Print the request estimate and exit; downloads nothing.
    #[arg(long)]
    dry_run: bool,
    /// Do not lock DIR or the bucket prefix (overlapping runs may then collide); needed for an
    /// S3-compatible store without conditional puts.
    #[arg(long)]
    no_lock: bool,
    /// Write every download through the page cache. By default, on Linux with ext4, XFS,
    /// btrfs or F2FS, large files go to disk with direct I/O: faster, and a backup does not
    /// evict what the machine has cached.
    #[arg(long)]
    no_direct_io: bool,
    /// Re-read and re-hash every backed-up file (not only those modified since they were
    /// recorded); any that differs from the manifest is downloaded again.
    #[arg(long)]
    verify: bool,
    #[command(flatten)]
    exec: ExecFlags,
    #[command(flatten)]
    conn: ConnArgs,
    #[command(flatten)]
    output: OutputFlags,
}

impl BackupArgs {
    fn spec(&self) -> Result<ExportSpec> {
        let out = self.out.clone().map(Location::from_path).transpose();
        Ok(ExportSpec {
            out: out.map_err(|e| Error::Usage(format!("--out: {e}")))?,
            tickets: self.tickets.clone(),
            tickets_file: self.tickets_file.clone(),
            open_only: self.open_only.then_some(true),
            updated_from: self.updated_from.clone(),
            comments: self.comments.then_some(true),
            prune: self.prune.then_some(true),
            max_duration: self.max_duration.clone(),
            concurrency: self.exec.concurrency.map(|c| match c {
                Concurrency::Fixed(n) => n as usize,
                // Each ticket in flight holds a download's buffers: a backup takes a number.
                Concurrency::Auto { .. } => 0,
            }),
            rate_per_minute: self.exec.rate_per_minute,
            burst: self.exec.burst,
            max_retries: self.exec.max_retries,
            max_wait: self.exec.max_wait,
            log_file: self.output.log_file.clone(),
            lock: self.no_lock.then_some(false),
            direct_io: self.no_direct_io.then_some(false),
            verify: self.verify.then_some(true),
            dry_run: self.dry_run,
            quiet: self.exec.quiet,
            ..ExportSpec::default()
        })
    }
}

/// Run `backup`; returns the exit code.
pub(crate) async fn backup(a: BackupArgs) -> u8 {
    let clock = Clock::start();
    let flags = a.output.clone();
    let (name, result) = match options(&a) {
        Ok((opts, job_url)) => {
            let name = opts.out.describe();
            (name, run(&a, &opts, job_url.as_deref()).await)
        }
        Err(e) => {
            let _ = flags.start(None);
            (String::new(), Err(e))
        }
    };
    let (record, problems) = match &result {
        Ok((summary, dry_run)) => (
            RunRecord::backup(&name, clock, summary, *dry_run),
            summary.problems.clone(),
        ),
        Err(e) => {
            eprintln!("alga-batch: {e}");
            (RunRecord::failed(Command::Backup, &name, clock, e), vec![])
        }
    };
    output::finish(&flags, &record, &problems)
}

/// The backup options (flags, then the export job file) and the job file's base URL.
fn options(a: &BackupArgs) -> Result<(BackupOptions, Option<String>)> {
    let spec = match &a.job {
        Some(job) => a.spec()?.or(export::load_job(job)?),
        None => a.spec()?,
    };
    let base_url = spec.base_url.clone();
    Ok((BackupOptions::from_spec(spec)?, base_url))
}

/// Set up logging, run the backup, keep the text log file (`--log-format text`) and print
/// the human summary; the summary and whether it was a dry run.
async fn run(
    a: &BackupArgs,
    opts: &BackupOptions,
    job_url: Option<&str>,
) -> Result<(BackupSummary, bool)> {
    let flags = &a.output;
    let text_log = match flags.format() {
        LogFormat::Text => opts.log_file.clone(),
        LogFormat::Json => None,
    };
    let json_log = opts.log_file.as_deref().filter(|_| text_log.is_none());
    flags.start(json_log)?;
    let conn = a.conn.connection(job_url)?;
    let result = export::run_backup(opts, conn).await;
    match (&result, &text_log) {
        (Ok(s), Some(path)) => s.append_log(path)?,
        (Err(e), Some(path)) => export::report::append_failure(path, e)?,
        _ => {}
    }
    let summary = result?;
    if !opts.dry_run && flags.human() {
        if opts.quiet {
            eprintln!("{}", summary.one_line());
        } else {
            print_problems(&summary.problems, opts.log_file.is_some());
            eprintln!("{summary}");
        }
    }
    Ok((summary, opts.dry_run))
}

/// The first problems, then a count of the rest.
fn print_problems(problems: &[String], logged: bool) {
    const SHOWN: usize = 20;
    for p in problems.iter().take(SHOWN) {
        eprintln!("{p}");
    }
    if problems.len() > SHOWN {
        let more = problems.len() - SHOWN;
        let hint = if logged {
            " (all in the log file)"
        } else {
            " (--log-file keeps them all)"
        };
        eprintln!("... and {more} more{hint}");
    }
}
