//! Running a list of operations, whoever produced it (an import job, an undo, a restore): the
//! results file locked and its earlier rows read ([`Session`]), every ticket resolved before
//! the first write, then either the dry-run plan or the executor through the journal, and the
//! summary.

use super::lock::{self, RunLock};
use super::pacing::{Pacing, Runner};
use super::resolve::{self, Unresolved};
use super::signals::Stop;
use super::{fatal, Completed};
use crate::connect::Connection;
use crate::error::{Error, Result};
use crate::exec::{self, ExecConfig, Prior, Progress, ProgressMode, Reconciler, Task};
use crate::job::{Problem, Severity};
use crate::journal::{self, latest_by_key, now_rfc3339, Outcome, ResultRow, Summary};
use crate::plan::{OpKind, Operation};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use uuid::Uuid;

/// What a list of operations is run with, besides the connection and the pacing.
#[derive(Debug, Clone, Default)]
pub struct OpsOptions {
    /// Stored in each comment's metadata (`alga_batch_job`).
    pub job_name: String,
    /// Let the server notify contacts about new comments.
    pub notify: bool,
    /// Resolve tickets and write the plan; send nothing.
    pub dry_run: bool,
    /// Run the operations whose ticket resolves; record the others as failed.
    pub skip_unresolved: bool,
    /// Progress verb ("importing").
    pub verb: &'static str,
    /// Only the final summary.
    pub quiet: bool,
    /// Problems the producer found already (job validation errors): reported together with
    /// unresolved tickets, and any error among them stops the run before anything is sent.
    pub problems: Vec<Problem>,
    /// Errors found besides those in `problems` (job validation lists a bounded number of
    /// each kind): counted in the run's verdict, not printed.
    pub unlisted_errors: usize,
}

/// A results file held for one run: locked, with the latest row of every operation that
/// earlier runs recorded, and the run's two-stage stop installed.
pub struct Session {
    results: PathBuf,
    _lock: RunLock,
    previous: HashMap<String, ResultRow>,
    stop: Stop,
    started: Instant,
}

impl Session {
    /// Lock `results` (exit 4 while another run holds it), listen for Ctrl-C, and read what
    /// earlier runs recorded in it.
    pub fn open(results: &Path, quiet: bool) -> Result<Session> {
        Self::open_with(results, Stop::install(quiet))
    }

    /// Like [`Session::open`] with a stop of the caller's (an embedded run).
    pub fn open_with(results: &Path, stop: Stop) -> Result<Session> {
        let what = format!("results file {}", results.display());
        let held = lock::acquire(&lock::results_lock_path(results), &what, true)?;
        let previous = load_previous(results)?;
        Ok(Session {
            results: results.to_path_buf(),
            _lock: held,
            previous,
            stop,
            started: Instant::now(),
        })
    }

    /// The latest row of every operation earlier runs recorded.
    pub fn previous(&self) -> &HashMap<String, ResultRow> {
        &self.previous
    }

    /// The run's stop.
    pub fn stop(&self) -> &Stop {
        &self.stop
    }

    /// The results file.
    pub fn results(&self) -> &Path {
        &self.results
    }

    /// Run `ops`: skip what earlier runs finished, connect (`conn` is only called when a
    /// request may be sent), resolve every ticket reference before the first write, then
    /// write the plan (`dry_run`) or execute through the journal.
    pub async fn run_ops(
        self,
        ops: Vec<Operation>,
        conn: impl FnOnce() -> Result<Connection>,
        pacing: &Pacing,
        opts: &OpsOptions,
    ) -> Result<Completed> {
        let pending: Vec<&Operation> = ops.iter().filter(|o| !self.is_done(o)).collect();
        // A real run checks its connection settings even with nothing left to send (a bad
        // URL is refused, not ignored); a dry run connects only to resolve tickets.
        let runner = match !opts.dry_run || resolve::needed(&pending) {
            true => Some(self.connect_checked(conn, pacing, opts)?),
            false => None,
        };
        self.run_with(ops, runner, pacing, opts).await
    }

    /// A runner for this session's run, for producers that must ask the server before they
    /// can list their operations (restore); then [`Session::run_with`].
    pub fn connect(&self, conn: Connection, pacing: &Pacing) -> Result<Runner> {
        Runner::connect(conn, pacing, self.stop.clone(), |_| {})
    }

    /// [`Session::run_ops`] with the connection made already (`None`: nothing may be sent,
    /// only a dry run whose tickets need no resolution).
    pub async fn run_with(
        self,
        ops: Vec<Operation>,
        runner: Option<Runner>,
        pacing: &Pacing,
        opts: &OpsOptions,
    ) -> Result<Completed> {
        let mut summary = Summary {
            total: ops.len() as u64,
            results: Some(self.results.clone()),
            ..Summary::default()
        };
        let pending: Vec<&Operation> = ops.iter().filter(|o| !self.is_done(o)).collect();
        (0..ops.len() - pending.len()).for_each(|_| summary.count(Outcome::Skipped));
        let sends = !opts.dry_run && !pending.is_empty();
        if let Some(r) = runner
            .as_ref()
            .filter(|_| sends || resolve::needed(&pending))
        {
            r.preflight().await?;
        }
        let resolved = match &runner {
            Some(r) => resolve::resolve(r, &pending).await?,
            None if resolve::needed(&pending) => {
                return Err(Error::Fatal("tickets to resolve, but no connection".into()))
            }
            None => HashMap::new(),
        };
        let unresolved = resolve::unresolved(&pending, &resolved);
        preflight_report(opts, &unresolved)?;
        let tasks = self.tasks(&pending, &resolved);
        let order: Vec<String> = ops.iter().map(|o| o.op_key.clone()).collect();
        let completed = match (&runner, opts.dry_run) {
            (_, true) => self.write_plan(&order, &tasks, pacing, summary)?,
            (Some(r), false) => self.execute(r, tasks, &order, opts, summary).await?,
            (None, false) => Completed::new(summary),
        };
        Ok(self.finish(completed, runner.as_ref()))
    }

    /// Connect; without a server, job problems found already are reported first (exit 2).
    fn connect_checked(
        &self,
        conn: impl FnOnce() -> Result<Connection>,
        pacing: &Pacing,
        opts: &OpsOptions,
    ) -> Result<Runner> {
        let connected = conn().and_then(|c| self.connect(c, pacing));
        match connected {
            Err(e) if opts.problems.iter().any(|p| p.severity == Severity::Error) => {
                preflight_report(opts, &[])?;
                Err(e)
            }
            other => other,
        }
    }

    /// Whether an earlier run finished `op`.
    fn is_done(&self, op: &Operation) -> bool {
        self.previous
            .get(&op.op_key)
            .is_some_and(|r| r.status.is_done())
    }

    /// A task per pending operation, with its ticket and what earlier runs left.
    fn tasks(&self, pending: &[&Operation], resolved: &resolve::Resolutions) -> Vec<Task> {
        pending
            .iter()
            .map(|op| Task {
                op: (*op).clone(),
                ticket_id: resolve::ticket_of(op, resolved),
                prior: prior(self.previous.get(&op.op_key)),
            })
            .collect()
    }

    /// Dry run: every pending operation as `planned` (or failed when its ticket does not
    /// resolve), the others as earlier runs left them; print the time the rate budget implies.
    fn write_plan(
        &self,
        order: &[String],
        tasks: &[Task],
        pacing: &Pacing,
        mut summary: Summary,
    ) -> Result<Completed> {
        let planned: HashMap<&str, &Task> =
            tasks.iter().map(|t| (t.op.op_key.as_str(), t)).collect();
        let mut rows = Vec::with_capacity(order.len());
        for key in order {
            let row = match (planned.get(key.as_str()), self.previous.get(key)) {
                (Some(task), _) => {
                    let (outcome, row) = planned_row(task);
                    summary.count(outcome);
                    row
                }
                (None, Some(prev)) => prev.clone(),
                (None, None) => continue,
            };
            rows.push(row);
        }
        let path = if self.results.exists() {
            self.results.with_extension("plan.csv")
        } else {
            self.results.clone()
        };
        journal::write_atomic(&path, &rows)?;
        summary.results = Some(path);
        let requests = tasks
            .iter()
            .filter(|t| t.op.blocked.is_none() && t.op.extra.present.is_none())
            .count() as u64;
        eprintln!(
            "{}",
            estimate(requests, pacing.rate_per_minute, pacing.burst)
        );
        Ok(Completed::new(summary))
    }

    /// Run the tasks through the executor and the journal.
    async fn execute(
        &self,
        runner: &Runner,
        tasks: Vec<Task>,
        order: &[String],
        opts: &OpsOptions,
        mut summary: Summary,
    ) -> Result<Completed> {
        let (journal, handle) = journal::open(&self.results)?;
        let mode = if opts.quiet {
            ProgressMode::Quiet
        } else {
            ProgressMode::Auto
        };
        let progress = Progress::start(tasks.len() as u64, opts.verb, mode, runner.client());
        // Documents earlier runs recorded, and those a producer found present (restore), are
        // never taken by reconciliation for another operation.
        let present = tasks
            .iter()
            .filter(|t| matches!(t.op.kind, OpKind::Upload { .. }))
            .filter_map(|t| t.op.extra.present);
        let claimed = self
            .previous
            .values()
            .filter(|r| r.status.is_done())
            .filter_map(|r| r.document_id.parse::<Uuid>().ok())
            .chain(present);
        let reconciler = Reconciler::new(claimed);
        let cfg = ExecConfig {
            concurrency: runner.pacing().lanes(),
            retry: runner.policy().clone(),
            notify: opts.notify,
            job_name: opts.job_name.clone(),
        };
        let cancel = &runner.stop().cancel;
        let client = runner.client();
        let outcome =
            exec::execute(tasks, client, &cfg, cancel, &handle, &reconciler, &progress).await;
        drop(handle);
        progress.finish();
        journal.finish(order).await?;
        outcome.outcomes.iter().for_each(|o| summary.count(*o));
        let fatal = outcome
            .fatal
            .map(|f| fatal::exec_fatal(client, f, &self.results));
        Ok(Completed {
            summary,
            problems: outcome.problems,
            fatal,
        })
    }

    /// Fill in what every run reports: interruption, request counters, elapsed time.
    fn finish(&self, mut done: Completed, runner: Option<&Runner>) -> Completed {
        done.summary.interrupted = self.stop.interrupted();
        if let Some(r) = runner {
            let stats = r.client().stats();
            done.summary.requests = stats.requests;
            done.summary.throttled = stats.throttled;
            done.summary.retries = stats.retries;
            done.summary.learned_rate_per_s = stats.learned_rate_per_s;
            let auto = matches!(r.pacing().concurrency, crate::api::Concurrency::Auto { .. });
            done.summary.concurrency = Some(crate::journal::Limits {
                last: r.client().concurrency_limits(),
                highest: r.client().highest_concurrency_limits(),
                auto,
            });
            done.summary.uploaded_bytes = stats.bytes_uploaded;
            done.summary.downloaded_bytes = stats.bytes_downloaded;
        }
        done.summary.elapsed = self.started.elapsed();
        done
    }
}

/// What an earlier run left of an operation.
fn prior(previous: Option<&ResultRow>) -> Prior {
    match previous {
        Some(r) if r.outcome_unknown() => Prior::Uncertain {
            since: chrono::DateTime::parse_from_rfc3339(&r.finished_at)
                .ok()
                .map(|t| t.with_timezone(&chrono::Utc)),
        },
        Some(_) => Prior::Retry,
        None => Prior::Fresh,
    }
}

/// The dry-run row of a task and the outcome it counts as.
fn planned_row(task: &Task) -> (Outcome, ResultRow) {
    let mut row = exec::base_row(&task.op);
    let outcome = match (&task.ticket_id, &task.op.blocked) {
        (_, Some(why)) => {
            row.error = why.clone();
            Outcome::Failed(journal::FailClass::Local)
        }
        (Ok(id), None) => {
            row.ticket_id = id.to_string();
            match task.op.extra.present {
                Some(found) => {
                    exec::set_found_id(&mut row, &task.op.kind, found);
                    row.error.clone_from(&task.op.extra.note);
                    Outcome::Present
                }
                None => Outcome::Planned,
            }
        }
        (Err(e), None) => {
            row.error = e.clone();
            Outcome::Failed(journal::FailClass::Unresolved)
        }
    };
    if let Some(status) = outcome.status() {
        row.status = status;
    }
    row.finished_at = now_rfc3339();
    (outcome, row)
}

/// Print the problems found before anything was sent (job problems, then unresolved
/// tickets); an error among them stops the run with exit 2 unless only unresolved tickets
/// are wrong and `skip_unresolved` is set.
fn preflight_report(opts: &OpsOptions, unresolved: &[Unresolved]) -> Result<()> {
    let (problems, skip) = (&opts.problems, opts.skip_unresolved);
    let errors = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count()
        + opts.unlisted_errors;
    if errors > 0 {
        problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .for_each(|p| eprintln!("{p}"));
    }
    for u in unresolved {
        let severity = if skip { "warning" } else { "error" };
        eprintln!("{}: {severity}: {}", u.locations(), u.why);
    }
    let blocking = errors + if skip { 0 } else { unresolved.len() };
    if blocking > 0 {
        return Err(Error::InvalidJob(blocking));
    }
    Ok(())
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

    #[test]
    fn prior_follows_the_latest_row() {
        let mut row = crate::exec::base_row(&crate::plan::Operation {
            op_key: "k".into(),
            source: "s".into(),
            ticket: crate::job::TicketRef::Number("T".into()),
            ticket_id: None,
            blocked: None,
            kind: crate::plan::OpKind::Comment(crate::job::CommentSpec {
                text: "x".into(),
                is_internal: false,
                is_resolution: false,
            }),
            extra: Default::default(),
        });
        assert_eq!(prior(None), Prior::Fresh);
        row.status = journal::Status::Failed;
        assert_eq!(prior(Some(&row)), Prior::Retry);
        for s in [journal::Status::Unknown, journal::Status::Sending] {
            row.status = s;
            assert!(
                matches!(prior(Some(&row)), Prior::Uncertain { .. }),
                "{s:?}"
            );
        }
    }
}
