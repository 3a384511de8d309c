//! The import command: load and validate the job, plan it (hashing attachments, reusing the
//! hashes of files an earlier run uploaded), and hand the operations to the runner, which
//! resolves every ticket before the first write and executes through the journal.

use crate::api::Concurrency;
use crate::connect::Connection;
use crate::error::{Error, Result};
use crate::job::{self, Job, JobCheck, Severity, ValidateOptions};
use crate::plan::{self, KnownHashes};
use crate::runner::{Completed, OpsOptions, Pacing, PacingSpec, Session, Stop};
use std::path::{Path, PathBuf};

/// Options of `run` (command-line values override the job file's settings).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Job file.
    pub job: PathBuf,
    /// Results CSV (resumes when it exists).
    pub results: Option<PathBuf>,
    /// Pacing from the command line (the job file's settings fill what it leaves unset).
    pub pacing: PacingSpec,
    /// Plan only.
    pub dry_run: bool,
    /// Only the final summary.
    pub quiet: bool,
    /// Let the server notify contacts.
    pub notify: bool,
    /// Run the operations whose ticket resolves; record the others as failed.
    pub skip_unresolved: bool,
    /// Validation options.
    pub validate: ValidateOptions,
}

/// Validate a job and print its problems (at most [`job::MAX_PER_KIND`] of each kind, then
/// a count); the job's size when it has no error. Keeps none of the job's items: memory does
/// not grow with its rows (apart from the duplicate detector's few bytes per row).
pub fn validate_job(path: &Path, opts: &ValidateOptions, quiet: bool) -> Result<JobCheck> {
    let (job, findings) = job::check(path, opts);
    for p in &findings.problems {
        if !quiet || p.severity == Severity::Error {
            eprintln!("{p}");
        }
    }
    match job {
        Some(job) if findings.errors == 0 => Ok(job),
        _ => Err(Error::InvalidJob(findings.errors.max(1))),
    }
}

/// Run an import job against the server behind `conn` (its base URL may come from the job).
pub async fn run_import(
    opts: &RunOptions,
    conn: impl FnOnce(&Job) -> Result<Connection>,
) -> Result<Completed> {
    run_import_with(opts, conn, None).await
}

/// [`run_import`] with a stop of the caller's (`None`: listen for Ctrl-C).
pub async fn run_import_with(
    opts: &RunOptions,
    conn: impl FnOnce(&Job) -> Result<Connection>,
    stop: Option<Stop>,
) -> Result<Completed> {
    let (job, findings) = job::load_partial(&opts.job, &opts.validate);
    let (errors, warnings): (Vec<_>, Vec<_>) = findings
        .problems
        .into_iter()
        .partition(|p| p.severity == Severity::Error);
    let unlisted_errors = findings.errors.saturating_sub(errors.len());
    if !opts.quiet {
        warnings.iter().for_each(|p| eprintln!("{p}"));
    }
    let Some(mut job) = job else {
        errors.iter().for_each(|p| eprintln!("{p}"));
        return Err(Error::InvalidJob(findings.errors.max(1)));
    };
    let (pacing, results) = settings(opts, &job);
    let session = match stop {
        Some(stop) => Session::open_with(&results, stop)?,
        None => Session::open(&results, opts.quiet)?,
    };
    // With errors the run stops at the pre-flight: no need to hash anything.
    let known = if errors.is_empty() {
        KnownHashes::from_rows(session.previous().values())
    } else {
        KnownHashes::placeholder()
    };
    let ops = plan::plan(&job, &known, &session.stop().cancel.soft).await?;
    // The operations carry everything the run needs from the items: free them before it.
    job.items = Vec::new();
    let ops_opts = OpsOptions {
        job_name: job.name.clone(),
        notify: opts.notify || job.settings.notify.unwrap_or(false),
        dry_run: opts.dry_run,
        skip_unresolved: opts.skip_unresolved,
        verb: "importing",
        quiet: opts.quiet,
        problems: errors,
        unlisted_errors,
    };
    session
        .run_ops(ops, || conn(&job), &pacing, &ops_opts)
        .await
}

/// The pacing and the results path: flags, then the job's settings, then defaults.
fn settings(opts: &RunOptions, job: &Job) -> (Pacing, PathBuf) {
    let s = &job.settings;
    let results = opts
        .results
        .clone()
        .or_else(|| s.results.clone())
        .unwrap_or_else(|| default_results_path(&job.name));
    let from_job = PacingSpec {
        concurrency: s
            .concurrency
            .map(|n| Concurrency::Fixed(u32::try_from(n).unwrap_or(u32::MAX))),
        rate_per_minute: s.rate_per_minute,
        burst: s.burst,
        max_retries: s.max_retries,
        ..PacingSpec::default()
    };
    let pacing = opts
        .pacing
        .clone()
        .or(from_job)
        .resolve(crate::runner::AUTO);
    (pacing, results)
}

/// `results/<job name>-<UTC timestamp>.csv`.
pub fn default_results_path(name: &str) -> PathBuf {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let ts = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    PathBuf::from("results").join(format!("{safe}-{ts}.csv"))
}
