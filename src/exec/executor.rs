//! The executor: runs planned operations with bounded concurrency, comments of one ticket in
//! job order, every attempt governed and retried by the rules of `retry`, and a journal row
//! for each intent and outcome. Creates go through `create.rs` (journaled intent,
//! reconciliation of unknown outcomes); deletes and redactions through `idempotent.rs`. It
//! knows nothing of job files or CSV.

use super::cancel::Cancel;
use super::health::Health;
use super::lanes;
use super::progress::Progress;
use super::reconcile::Reconciler;
use super::retry::RetryPolicy;
use super::{create, idempotent};
use crate::api::{ApiError, Client};
use crate::journal::{now_rfc3339, FailClass, JournalError, JournalHandle, Outcome, ResultRow};
use crate::mutex::lock;
use crate::plan::{OpKind, Operation};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use std::sync::Mutex;
use uuid::Uuid;

/// How to run.
#[derive(Debug, Clone)]
pub struct ExecConfig {
    /// Operations (lanes) in flight at once.
    pub concurrency: usize,
    /// Retry policy for every request.
    pub retry: RetryPolicy,
    /// Let the server notify contacts about new comments (default: suppressed).
    pub notify: bool,
    /// Stored in each comment's metadata beside the op key.
    pub job_name: String,
}

/// What is known about an operation from earlier runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prior {
    /// Never attempted.
    Fresh,
    /// A create may have reached the server (its intent was journaled at `since`, when
    /// known): reconcile before sending.
    Uncertain {
        /// When the earlier attempt was about to be sent.
        since: Option<DateTime<Utc>>,
    },
    /// Failed or cancelled before: send again.
    Retry,
}

/// One operation to run.
#[derive(Debug, Clone)]
pub struct Task {
    /// The operation.
    pub op: Operation,
    /// The resolved ticket, or why it could not be resolved.
    pub ticket_id: Result<Uuid, String>,
    /// History.
    pub prior: Prior,
}

/// Rows of failed or unknown operations kept for the caller to report (at most this many).
const KEPT_PROBLEMS: usize = 1000;

/// What the executor did.
#[derive(Debug, Default)]
pub struct ExecOutcome {
    /// Final outcome of every task, in no particular order.
    pub outcomes: Vec<Outcome>,
    /// The first rows (up to 1,000) of failed or unknown operations, for reports.
    pub problems: Vec<ResultRow>,
    /// Why the whole run stopped early, if it did.
    pub fatal: Option<ExecFatal>,
}

/// Why the executor stopped the whole run.
#[derive(Debug, Clone)]
pub enum ExecFatal {
    /// The server rejected the key (401).
    Rejected(ApiError),
    /// The key's user may not create (403 on a create).
    Forbidden(ApiError),
    /// Several operations in a row could not reach the server at all.
    Unreachable(ApiError),
    /// An operation was held back by 429s for longer than `--max-wait`.
    Throttled(ApiError),
    /// The results file cannot be written: nothing may be sent without its intent on disk.
    Journal(JournalError),
}

/// What every worker shares.
pub(super) struct Ctx<'a> {
    pub(super) client: &'a Client,
    pub(super) cfg: &'a ExecConfig,
    pub(super) cancel: &'a Cancel,
    pub(super) journal: &'a JournalHandle,
    pub(super) reconciler: &'a Reconciler,
    progress: &'a Progress,
    health: &'a Health,
    fatal: Mutex<Option<ExecFatal>>,
    problems: Mutex<Vec<ResultRow>>,
}

/// An operation's final row and the outcome it records.
pub(super) struct Finished {
    pub(super) outcome: Outcome,
    pub(super) row: ResultRow,
}

/// Run every task; rows go to `journal` as they happen.
pub async fn execute(
    tasks: Vec<Task>,
    client: &Client,
    cfg: &ExecConfig,
    cancel: &Cancel,
    journal: &JournalHandle,
    reconciler: &Reconciler,
    progress: &Progress,
) -> ExecOutcome {
    let health = Health::new();
    let ctx = Ctx {
        client,
        cfg,
        cancel,
        journal,
        reconciler,
        progress,
        health: &health,
        fatal: Mutex::new(None),
        problems: Mutex::new(Vec::new()),
    };
    let lanes = lanes::group(tasks, |t| lanes::lane_key(&t.op, &ticket_label(t)));
    let outcomes: Vec<Vec<Outcome>> = futures::stream::iter(lanes)
        .map(|lane| run_lane(&ctx, lane))
        .buffer_unordered(cfg.concurrency.max(1))
        .collect()
        .await;
    let fatal = lock(&ctx.fatal).take();
    let problems = std::mem::take(&mut *lock(&ctx.problems));
    ExecOutcome {
        outcomes: outcomes.into_iter().flatten().collect(),
        problems,
        fatal,
    }
}

/// The ticket a task's lane is keyed by: its id, else the reference as written.
fn ticket_label(t: &Task) -> String {
    match &t.ticket_id {
        Ok(id) => id.to_string(),
        Err(_) => t.op.ticket.to_string(),
    }
}

async fn run_lane(ctx: &Ctx<'_>, lane: Vec<Task>) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(lane.len());
    let mut blocked: Option<String> = None;
    for task in &lane {
        let comment = matches!(task.op.kind, OpKind::Comment(_));
        let done = match &blocked {
            Some(why) if comment => {
                let mut row = base_row(&task.op);
                row.ticket_id = task
                    .ticket_id
                    .as_ref()
                    .map(Uuid::to_string)
                    .unwrap_or_default();
                finish(row, Outcome::Cancelled, why.clone())
            }
            _ => run_task(ctx, task).await,
        };
        if comment && blocked.is_none() && done.outcome.blocks_thread() {
            blocked = Some(format!(
                "not sent: an earlier comment of this ticket ({}) did not finish; kept for the next run so that the thread stays in order",
                done.row.source
            ));
        }
        record(ctx, done.outcome, done.row);
        outcomes.push(done.outcome);
    }
    outcomes
}

/// Journal a final row, show it in the progress, keep it when it is a problem.
fn record(ctx: &Ctx<'_>, outcome: Outcome, row: ResultRow) {
    ctx.progress.finished(outcome.is_problem());
    if matches!(outcome, Outcome::Failed(_) | Outcome::Unknown) {
        let mut kept = lock(&ctx.problems);
        if kept.len() < KEPT_PROBLEMS {
            kept.push(row.clone());
        }
    }
    ctx.journal.record(row);
}

/// The row every outcome of `op` starts from (status `planned`, no ids yet). An undo row
/// starts from the row of the job being undone, with fresh outcome columns.
pub fn base_row(op: &Operation) -> ResultRow {
    if let OpKind::DeleteDocument { row, .. } | OpKind::RedactComment { row, .. } = &op.kind {
        return ResultRow {
            status: crate::journal::Status::Planned,
            http_status: String::new(),
            attempts: 0,
            error: String::new(),
            finished_at: String::new(),
            ..(**row).clone()
        };
    }
    let (file, bytes, sha256) = match &op.kind {
        OpKind::Upload { spec, sha256, .. } => (
            spec.path.display().to_string(),
            spec.size.to_string(),
            sha256.clone(),
        ),
        _ => Default::default(),
    };
    ResultRow {
        op_key: op.op_key.clone(),
        source: op.source.clone(),
        ticket: op.ticket.to_string(),
        ticket_id: op.ticket_id.map(|t| t.to_string()).unwrap_or_default(),
        kind: op.kind.label().to_string(),
        status: crate::journal::Status::Planned,
        comment_id: String::new(),
        document_id: String::new(),
        file,
        bytes,
        sha256,
        http_status: String::new(),
        attempts: 0,
        error: String::new(),
        finished_at: String::new(),
    }
}

/// The final row of an operation: its status from `outcome`, a one-line error, the time.
pub(super) fn finish(mut row: ResultRow, outcome: Outcome, error: String) -> Finished {
    if let Some(status) = outcome.status() {
        row.status = status;
    }
    row.error = error.replace(['\r', '\n'], " ");
    row.finished_at = now_rfc3339();
    Finished { outcome, row }
}

/// The final row of an operation whose outcome is unknown. Its `finished_at` is `since`, the
/// time its first attempt was about to be sent (when known): the next run's reconciliation
/// looks for documents from then on, however long this run went on trying.
pub(super) fn unknown(row: ResultRow, since: Option<DateTime<Utc>>, why: String) -> Finished {
    let mut done = finish(row, Outcome::Unknown, why);
    if let Some(t) = since {
        done.row.finished_at = t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    }
    done
}

/// Run one task to its final row.
async fn run_task(ctx: &Ctx<'_>, task: &Task) -> Finished {
    let mut row = base_row(&task.op);
    if let Some(why) = &task.op.blocked {
        return finish(row, Outcome::Failed(FailClass::Local), why.clone());
    }
    let ticket = match &task.ticket_id {
        Ok(t) => *t,
        Err(why) => return finish(row, Outcome::Failed(FailClass::Unresolved), why.clone()),
    };
    row.ticket_id = ticket.to_string();
    if let Some(id) = task.op.extra.present {
        set_found_id(&mut row, &task.op.kind, id);
        return finish(row, Outcome::Present, task.op.extra.note.clone());
    }
    if ctx.cancel.soft.is_cancelled() {
        return match task.prior {
            Prior::Uncertain { since } => unknown(row, since, "not reconciled: run stopped".into()),
            _ => finish(row, Outcome::Cancelled, "not started: run stopped".into()),
        };
    }
    let mut done = if task.op.kind.is_create() {
        create::run(ctx, task, ticket, row).await
    } else {
        idempotent::run(ctx, task, ticket, row).await
    };
    let note = &task.op.extra.note;
    if done.outcome.is_done() && done.row.error.is_empty() && !note.is_empty() {
        done.row.error.clone_from(note);
    }
    done
}

/// Put the id of what an operation found (or created) in its row's comment or document column.
pub fn set_found_id(row: &mut ResultRow, kind: &OpKind, id: Uuid) {
    match kind {
        OpKind::Comment(_) | OpKind::RedactComment { .. } => row.comment_id = id.to_string(),
        OpKind::Upload { .. } | OpKind::DeleteDocument { .. } => {
            row.document_id = id.to_string();
        }
    }
}

impl Ctx<'_> {
    /// Stop the run: the first reason wins; nothing new starts.
    pub(super) fn set_fatal(&self, why: ExecFatal) {
        lock(&self.fatal).get_or_insert(why);
        self.cancel.soft.cancel();
    }

    /// The server answered something: it is there.
    pub(super) fn answered(&self) {
        self.health.answered();
    }

    /// Note how an operation ended; a streak of operations that could not reach the server
    /// stops the run (a server that died mid-run would otherwise cost every remaining
    /// operation its retries).
    pub(super) fn note_failure(&self, err: &ApiError) {
        if err.status() == Some(429) {
            // Retries are not used up by 429s: only the wait cap ends them, and what one
            // operation could not get through, the next would not either.
            self.set_fatal(ExecFatal::Throttled(err.clone()));
            return;
        }
        if self.health.note(err) {
            self.set_fatal(ExecFatal::Unreachable(err.clone()));
        }
    }
}
