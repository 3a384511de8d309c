//! The import command: load and validate the job, plan, resolve tickets, then either write the
//! dry-run plan or execute through the journal, and summarise.

use crate::api::{ApiError, Client, RetryClass};
use crate::connect::Connection;
use crate::error::{Error, Result};
use crate::exec::resolve::resolve_tickets;
use crate::exec::retry::{with_retries, RetryPolicy};
use crate::exec::{
    self, Cancel, ExecConfig, ExecFatal, Prior, Progress, ProgressMode, Reconciler, Task,
};
use crate::job::{self, Job, Severity, TicketRef, ValidateOptions};
use crate::journal::{self, latest_by_key, now_rfc3339, ResultRow, Status, Summary};
use crate::plan::{self, Operation};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Options of `run` (command-line values override the job file's settings).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Job file.
    pub job: PathBuf,
    /// Results CSV (resumes when it exists).
    pub results: Option<PathBuf>,
    /// Lanes in flight.
    pub concurrency: Option<usize>,
    /// Client-side requests per minute.
    pub rate_per_minute: Option<u32>,
    /// Client-side burst.
    pub burst: Option<u32>,
    /// Retries per request.
    pub max_retries: Option<u32>,
    /// Plan only.
    pub dry_run: bool,
    /// Only the final summary.
    pub quiet: bool,
    /// Let the server notify contacts.
    pub notify: bool,
    /// Validation options.
    pub validate: ValidateOptions,
}

/// Effective settings after merging flags, job settings and defaults.
struct Settings {
    concurrency: usize,
    rate: u32,
    burst: u32,
    retry: RetryPolicy,
    notify: bool,
    results: PathBuf,
}

/// Validate a job and print its problems; the job when it has no error.
pub fn validate_job(path: &Path, opts: &ValidateOptions, quiet: bool) -> Result<Job> {
    let (job, problems) = job::load_and_validate(path, opts);
    let errors = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    for p in &problems {
        if !quiet || p.severity == Severity::Error {
            eprintln!("{p}");
        }
    }
    match job {
        Some(job) if errors == 0 => Ok(job),
        _ => Err(Error::InvalidJob(errors.max(1))),
    }
}

/// Run an import job against the server behind `conn` (its base URL may come from the job).
pub async fn run_import(
    opts: &RunOptions,
    conn: impl FnOnce(&Job) -> Result<Connection>,
) -> Result<Summary> {
    let started = Instant::now();
    let job = validate_job(&opts.job, &opts.validate, opts.quiet)?;
    let settings = settings(opts, &job);
    let ops = plan::plan(&job)?;
    let previous = load_previous(&settings.results)?;
    let client = conn(&job)?.client(settings.rate, settings.burst)?;
    let cancel = Cancel::new();
    let interrupted = cancel.install_ctrl_c(opts.quiet);
    preflight(&client, &settings.retry, &cancel).await?;
    let resolved = resolve(&client, &settings.retry, &ops, &previous, &cancel).await?;
    let mut summary = Summary {
        total: ops.len() as u64,
        results: Some(settings.results.clone()),
        ..Summary::default()
    };
    let (tasks, done) = tasks(&ops, &resolved, &previous);
    summary.skipped = done as u64;
    let outcome = if opts.dry_run {
        write_plan(&settings, &ops, &tasks, &previous, &mut summary)
    } else {
        let run = Run {
            client: &client,
            settings: &settings,
            job: &job,
            opts,
            ops: &ops,
        };
        execute(&run, tasks, &previous, &cancel, &mut summary).await
    };
    summary.interrupted = interrupted.is_cancelled();
    fill_client_stats(&mut summary, &client, started);
    if let Err(e) = outcome {
        // The results are written: show what was done before the error that stopped the run.
        eprintln!("{summary}");
        return Err(e);
    }
    Ok(summary)
}

/// Copy the client's request counters and the elapsed time into the summary.
pub(crate) fn fill_client_stats(summary: &mut Summary, client: &Client, started: Instant) {
    let stats = client.stats();
    summary.requests = stats.requests;
    summary.throttled = stats.throttled;
    summary.retries = stats.retries;
    summary.elapsed = started.elapsed();
}

fn settings(opts: &RunOptions, job: &Job) -> Settings {
    let s = &job.settings;
    let results = opts
        .results
        .clone()
        .or_else(|| s.results.clone())
        .unwrap_or_else(|| default_results_path(&job.name));
    Settings {
        concurrency: opts.concurrency.or(s.concurrency).unwrap_or(4).max(1),
        rate: opts.rate_per_minute.or(s.rate_per_minute).unwrap_or(60),
        burst: opts.burst.or(s.burst).unwrap_or(120).max(1),
        retry: RetryPolicy {
            max_retries: opts.max_retries.or(s.max_retries).unwrap_or(5),
            base: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        },
        notify: opts.notify || s.notify.unwrap_or(false),
        results,
    }
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

/// The latest row per op key of an earlier run, when the results file exists.
fn load_previous(path: &Path) -> Result<HashMap<String, ResultRow>> {
    if !path.exists() {
        return Ok(HashMap::new());
    }
    let rows = journal::read_rows(path).map_err(|e| match e {
        journal::ReadError::Io { .. } => Error::Fatal(e.to_string()),
        _ => Error::Usage(e.to_string()),
    })?;
    Ok(latest_by_key(rows).0)
}

/// Check that the server answers at all (exit 3 rather than failing every row in turn).
pub(crate) async fn preflight(
    client: &Client,
    policy: &RetryPolicy,
    cancel: &Cancel,
) -> Result<()> {
    let attempted = with_retries(client, policy, true, &cancel.hard, || client.health()).await;
    match attempted.result {
        Ok(()) => Ok(()),
        Err(e @ (ApiError::Connect(_) | ApiError::Timeout(_) | ApiError::NoResponse(_))) => {
            Err(fatal_from(client, e))
        }
        Err(ApiError::Status { status: 404, .. }) => Err(Error::Fatal(format!(
            "no Alga PSA API at {}: /api/health answered 404 (check --base-url: it is the server's root, without /api)",
            client.base_url()
        ))),
        // Some proxies do not route /api/health: only "nobody there" is fatal here.
        Err(_) => Ok(()),
    }
}

/// Resolve the ticket numbers of every operation that still has work to do.
async fn resolve(
    client: &Client,
    policy: &RetryPolicy,
    ops: &[Operation],
    previous: &HashMap<String, ResultRow>,
    cancel: &Cancel,
) -> Result<HashMap<String, Result<Uuid, String>>> {
    let mut numbers: Vec<String> = ops
        .iter()
        .filter(|o| !previous.get(&o.op_key).is_some_and(|r| r.status.is_done()))
        .filter_map(|o| match &o.ticket {
            TicketRef::Number(n) => Some(n.clone()),
            TicketRef::Id(_) => None,
        })
        .collect();
    numbers.sort();
    numbers.dedup();
    if numbers.is_empty() {
        return Ok(HashMap::new());
    }
    resolve_tickets(client, policy, &numbers, &cancel.hard)
        .await
        .map_err(|e| fatal_from(client, e))
}

/// A run-level error from an API error that stopped everything.
pub fn fatal_from(client: &Client, e: ApiError) -> Error {
    match (&e, e.class(true)) {
        (_, RetryClass::Fatal) => Error::Unauthorized(e.one_line()),
        (
            ApiError::Connect(reason) | ApiError::Timeout(reason) | ApiError::NoResponse(reason),
            _,
        ) => Error::Unreachable {
            url: client.base_url().to_string(),
            reason: reason.clone(),
        },
        _ => Error::Fatal(e.one_line()),
    }
}

/// Tasks for every operation not yet done, and how many were already done.
fn tasks(
    ops: &[Operation],
    resolved: &HashMap<String, Result<Uuid, String>>,
    previous: &HashMap<String, ResultRow>,
) -> (Vec<Task>, usize) {
    let mut done = 0;
    let mut out = Vec::new();
    for op in ops {
        let prior = match previous.get(&op.op_key) {
            Some(r) if r.status.is_done() => {
                done += 1;
                continue;
            }
            Some(r) if r.outcome_unknown() => Prior::Uncertain {
                since: chrono::DateTime::parse_from_rfc3339(&r.finished_at)
                    .ok()
                    .map(|t| t.with_timezone(&chrono::Utc)),
            },
            Some(_) => Prior::Retry,
            None => Prior::Fresh,
        };
        let ticket_id = match &op.ticket {
            TicketRef::Id(id) => Ok(*id),
            TicketRef::Number(n) => resolved
                .get(n)
                .cloned()
                .unwrap_or_else(|| Err(format!("ticket {n} was not resolved"))),
        };
        out.push(Task {
            op: op.clone(),
            ticket_id,
            prior,
        });
    }
    (out, done)
}

/// Dry run: write every operation as `planned` (or its earlier final status) and print the
/// request count and the time the rate budget implies.
fn write_plan(
    settings: &Settings,
    ops: &[Operation],
    tasks: &[Task],
    previous: &HashMap<String, ResultRow>,
    summary: &mut Summary,
) -> Result<()> {
    let pending: HashMap<&str, &Task> = tasks.iter().map(|t| (t.op.op_key.as_str(), t)).collect();
    let mut rows = Vec::with_capacity(ops.len());
    for op in ops {
        let row = match (pending.get(op.op_key.as_str()), previous.get(&op.op_key)) {
            (Some(task), _) => planned_row(task),
            (None, Some(prev)) => prev.clone(),
            (None, None) => continue,
        };
        summary.count(row.status);
        rows.push(row);
    }
    let path = if settings.results.exists() {
        settings.results.with_extension("plan.csv")
    } else {
        settings.results.clone()
    };
    journal::write_atomic(&path, &rows)?;
    summary.results = Some(path);
    eprintln!(
        "{}",
        estimate(tasks.len() as u64, settings.rate, settings.burst)
    );
    Ok(())
}

fn planned_row(task: &Task) -> ResultRow {
    let mut row = exec::base_row(&task.op);
    match &task.ticket_id {
        Ok(id) => row.ticket_id = id.to_string(),
        Err(e) => {
            row.status = Status::Failed;
            row.error = e.clone();
        }
    }
    row.finished_at = now_rfc3339();
    row
}

/// "1,840 requests: about 29 min at 60/min after a burst of 120".
pub fn estimate(requests: u64, rate: u32, burst: u32) -> String {
    let n = group_thousands(requests);
    if rate == 0 || requests <= u64::from(burst) {
        return format!("{n} requests: within the burst of {burst}, no rate wait expected");
    }
    let secs = (requests - u64::from(burst)) * 60 / u64::from(rate);
    let when = if secs >= 3600 {
        format!("{} h {} min", secs / 3600, (secs % 3600) / 60)
    } else if secs >= 60 {
        format!("{} min", (secs + 30) / 60)
    } else {
        format!("{secs} s")
    };
    format!("{n} requests: about {when} at {rate}/min after a burst of {burst}")
}

/// 1840 -> "1,840".
pub fn group_thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What `execute` needs from the run.
struct Run<'a> {
    client: &'a Client,
    settings: &'a Settings,
    job: &'a Job,
    opts: &'a RunOptions,
    ops: &'a [Operation],
}

/// Execute the tasks through the journal and count the outcomes.
async fn execute(
    run: &Run<'_>,
    tasks: Vec<Task>,
    previous: &HashMap<String, ResultRow>,
    cancel: &Cancel,
    summary: &mut Summary,
) -> Result<()> {
    let Run {
        client,
        settings,
        job,
        opts,
        ops,
    } = *run;
    let (journal, handle) = journal::open(&settings.results)?;
    let mode = if opts.quiet {
        ProgressMode::Quiet
    } else {
        ProgressMode::Auto
    };
    let progress = Progress::start(tasks.len() as u64, "importing", mode, client);
    let claimed = previous
        .values()
        .filter(|r| r.status.is_done())
        .filter_map(|r| r.document_id.parse::<Uuid>().ok());
    let reconciler = Reconciler::new(claimed);
    let cfg = ExecConfig {
        concurrency: settings.concurrency,
        retry: settings.retry.clone(),
        notify: settings.notify,
        job_name: job.name.clone(),
    };
    let outcome = exec::execute(tasks, client, &cfg, cancel, &handle, &reconciler, &progress).await;
    drop(handle);
    progress.finish();
    let order: Vec<String> = ops.iter().map(|o| o.op_key.clone()).collect();
    journal.finish(&order).await?;
    outcome.statuses.iter().for_each(|s| summary.count(*s));
    match outcome.fatal {
        Some(ExecFatal::Rejected(e) | ExecFatal::Unreachable(e)) => Err(fatal_from(client, e)),
        Some(ExecFatal::Journal(e)) => Err(Error::Fatal(format!(
            "{e} ({}); nothing more was sent, and the next run reconciles what was in flight",
            settings.results.display()
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_reads_like_the_issue() {
        assert_eq!(
            estimate(1840, 60, 120),
            "1,840 requests: about 29 min at 60/min after a burst of 120"
        );
        assert_eq!(
            estimate(100, 60, 120),
            "100 requests: within the burst of 120, no rate wait expected"
        );
        assert_eq!(
            estimate(10_000 + 120, 60, 120),
            "10,120 requests: about 2 h 46 min at 60/min after a burst of 120"
        );
    }
}
