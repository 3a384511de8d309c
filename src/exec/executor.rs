//! The executor: runs planned operations with bounded concurrency, comments of one ticket in
//! job order, every attempt governed and retried by the rules of `retry`, and a journal row
//! for each intent and outcome. It knows nothing of job files or CSV.

use super::cancel::Cancel;
use super::lanes;
use super::progress::Progress;
use super::reconcile::{DocumentProbe, Reconciler};
use super::retry::{with_retries, Attempted, RetryPolicy};
use crate::api::{ApiError, Client, NewComment, RetryClass, METADATA_OP_KEY};
use crate::journal::{
    now_rfc3339, JournalError, JournalHandle, ResultRow, Status, OUTCOME_UNKNOWN,
};
use crate::plan::{OpKind, Operation};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use std::sync::atomic::{AtomicU32, Ordering};
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

/// What the executor did.
#[derive(Debug, Default)]
pub struct ExecOutcome {
    /// Final status of every task, in no particular order.
    pub statuses: Vec<Status>,
    /// Why the whole run stopped early, if it did.
    pub fatal: Option<ExecFatal>,
}

/// Why the executor stopped the whole run.
#[derive(Debug, Clone)]
pub enum ExecFatal {
    /// The server rejected the key (401).
    Rejected(ApiError),
    /// Several operations in a row could not reach the server at all.
    Unreachable(ApiError),
    /// The results file cannot be written: nothing may be sent without its intent on disk.
    Journal(JournalError),
}

/// Operations in a row that ended with "no connection" before the run is declared fatal.
const UNREACHABLE_STREAK: u32 = 3;

struct Ctx<'a> {
    client: &'a Client,
    cfg: &'a ExecConfig,
    cancel: &'a Cancel,
    journal: &'a JournalHandle,
    reconciler: &'a Reconciler,
    progress: &'a Progress,
    fatal: Mutex<Option<ExecFatal>>,
    unreachable_streak: AtomicU32,
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
    let ctx = Ctx {
        client,
        cfg,
        cancel,
        journal,
        reconciler,
        progress,
        fatal: Mutex::new(None),
        unreachable_streak: AtomicU32::new(0),
    };
    let lanes = lanes::lanes(tasks);
    let statuses: Vec<Vec<Status>> = futures::stream::iter(lanes)
        .map(|lane| run_lane(&ctx, lane))
        .buffer_unordered(cfg.concurrency.max(1))
        .collect()
        .await;
    let fatal = ctx.fatal.lock().ok().and_then(|mut f| f.take());
    ExecOutcome {
        statuses: statuses.into_iter().flatten().collect(),
        fatal,
    }
}

async fn run_lane(ctx: &Ctx<'_>, lane: Vec<Task>) -> Vec<Status> {
    let mut statuses = Vec::with_capacity(lane.len());
    let mut blocked: Option<String> = None;
    for task in &lane {
        let comment = matches!(task.op.kind, OpKind::Comment(_));
        let row = match &blocked {
            Some(why) if comment => {
                let mut row = base_row(&task.op);
                row.ticket_id = task
                    .ticket_id
                    .as_ref()
                    .map(Uuid::to_string)
                    .unwrap_or_default();
                finish(row, Status::Cancelled, why.clone())
            }
            _ => run_task(ctx, task).await,
        };
        if comment && blocked.is_none() && lanes::blocks_thread(&row) {
            blocked = Some(format!(
                "not sent: an earlier comment of this ticket ({}) did not finish; kept for the next run so that the thread stays in order",
                row.source
            ));
        }
        let status = row.status;
        ctx.progress
            .finished(matches!(status, Status::Failed | Status::Cancelled));
        ctx.journal.record(row);
        statuses.push(status);
    }
    statuses
}

/// The row every outcome of `op` starts from (status `planned`, no ids yet).
pub fn base_row(op: &Operation) -> ResultRow {
    let (file, bytes, sha256) = match &op.kind {
        OpKind::Upload { spec, sha256, .. } => (
            spec.path.display().to_string(),
            spec.size.to_string(),
            sha256.clone(),
        ),
        OpKind::Comment(_) => Default::default(),
    };
    ResultRow {
        op_key: op.op_key.clone(),
        source: op.source.clone(),
        ticket: op.ticket.to_string(),
        ticket_id: String::new(),
        kind: op.kind.label().to_string(),
        status: Status::Planned,
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

fn finish(mut row: ResultRow, status: Status, error: String) -> ResultRow {
    row.status = status;
    row.error = error.replace(['\r', '\n'], " ");
    row.finished_at = now_rfc3339();
    row
}

/// Run one task to its final row.
async fn run_task(ctx: &Ctx<'_>, task: &Task) -> ResultRow {
    let mut row = base_row(&task.op);
    let ticket = match &task.ticket_id {
        Ok(t) => *t,
        Err(why) => return finish(row, Status::Failed, why.clone()),
    };
    row.ticket_id = ticket.to_string();
    if ctx.cancel.soft.is_cancelled() {
        let why = if matches!(task.prior, Prior::Uncertain { .. }) {
            format!("{OUTCOME_UNKNOWN}: not reconciled, run stopped")
        } else {
            "not started: run stopped".to_string()
        };
        return finish(row, Status::Cancelled, why);
    }
    if let Prior::Uncertain { since } = task.prior {
        match lookup(ctx, task, ticket, since, false).await {
            Ok(Some(id)) => return found(row, &task.op, id),
            Ok(None) => {}
            Err(e) => {
                note_failure(ctx, &e);
                let why = format!("{OUTCOME_UNKNOWN}: reconciliation failed: {}", e.one_line());
                return finish(row, Status::Failed, why);
            }
        }
    }
    send_until_known(ctx, task, ticket, row).await
}

/// Send the create; when its response is lost, reconcile and send again only if absent.
async fn send_until_known(
    ctx: &Ctx<'_>,
    task: &Task,
    ticket: Uuid,
    mut row: ResultRow,
) -> ResultRow {
    let rounds = ctx.cfg.retry.max_retries + 1;
    let mut backoff = ctx.cfg.retry.backoff();
    let mut last = String::new();
    for _ in 0..rounds {
        let Some(since) = record_intent(ctx, &row).await else {
            let why = "not sent: the results file cannot be written".to_string();
            return finish(row, Status::Cancelled, why);
        };
        let attempted = tokio::select! {
            a = send(ctx, task, ticket) => a,
            () = ctx.cancel.hard.cancelled() => {
                let why = format!("{OUTCOME_UNKNOWN}: aborted in flight");
                return finish(row, Status::Cancelled, why);
            }
        };
        row.attempts += attempted.attempts;
        let err = match attempted.result {
            Ok(created) => {
                ctx.unreachable_streak.store(0, Ordering::Relaxed);
                return created_row(ctx, row, created);
            }
            Err(e) => e,
        };
        row.http_status = err.status().map(|s| s.to_string()).unwrap_or_default();
        if let Some(done) = settle(ctx, &row, &err) {
            return done;
        }
        last = err.one_line();
        match lookup(ctx, task, ticket, Some(since), true).await {
            Ok(Some(id)) => return found(row, &task.op, id),
            Ok(None) => {
                // Not there: send again after a backoff (a gateway error may repeat at once).
                ctx.client.note_retry();
                let pause = backoff.next().unwrap_or_default();
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = ctx.cancel.hard.cancelled() => {}
                }
            }
            Err(e) => {
                note_failure(ctx, &e);
                let why = format!(
                    "{OUTCOME_UNKNOWN}: {last}; reconciliation failed: {}",
                    e.one_line()
                );
                return finish(row, Status::Failed, why);
            }
        }
    }
    finish(row, Status::Failed, format!("{OUTCOME_UNKNOWN}: {last}"))
}

/// Journal that the create is about to be sent (flushed); `None` when the journal cannot
/// write, in which case nothing may be sent and the run stops.
async fn record_intent(ctx: &Ctx<'_>, row: &ResultRow) -> Option<DateTime<Utc>> {
    let mut intent = row.clone();
    intent.status = Status::Sending;
    intent.finished_at = now_rfc3339();
    let since = Utc::now();
    match ctx.journal.record_flushed(intent).await {
        Ok(()) => Some(since),
        Err(e) => {
            set_fatal(ctx, ExecFatal::Journal(e));
            None
        }
    }
}

/// The final row for a failed create, or `None` when its outcome is unknown (reconcile).
fn settle(ctx: &Ctx<'_>, row: &ResultRow, err: &ApiError) -> Option<ResultRow> {
    let row = row.clone();
    match err.class(false) {
        RetryClass::OutcomeUnknown => None,
        RetryClass::Fatal => {
            set_fatal(ctx, ExecFatal::Rejected(err.clone()));
            Some(finish(row, Status::Failed, err.one_line()))
        }
        _ if matches!(err, ApiError::Cancelled) => {
            let why = format!("{OUTCOME_UNKNOWN}: aborted in flight");
            Some(finish(row, Status::Cancelled, why))
        }
        _ => {
            note_failure(ctx, err);
            Some(finish(row, Status::Failed, err.one_line()))
        }
    }
}

/// What a successful create returned.
enum Created {
    Comment(Uuid),
    Document {
        id: Uuid,
        bytes: u64,
        sha256: String,
    },
}

fn created_row(ctx: &Ctx<'_>, mut row: ResultRow, created: Created) -> ResultRow {
    row.http_status = "201".into();
    match created {
        Created::Comment(id) => row.comment_id = id.to_string(),
        Created::Document { id, bytes, sha256 } => {
            ctx.reconciler.claim(id);
            row.document_id = id.to_string();
            row.bytes = bytes.to_string();
            row.sha256 = sha256;
        }
    }
    finish(row, Status::Created, String::new())
}

fn found(mut row: ResultRow, op: &Operation, id: Uuid) -> ResultRow {
    match op.kind {
        OpKind::Comment(_) => row.comment_id = id.to_string(),
        OpKind::Upload { .. } => row.document_id = id.to_string(),
    }
    finish(row, Status::Existing, String::new())
}

fn set_fatal(ctx: &Ctx<'_>, why: ExecFatal) {
    if let Ok(mut f) = ctx.fatal.lock() {
        f.get_or_insert(why);
    }
    ctx.cancel.soft.cancel();
}

/// Count operations that end without reaching the server; a streak of them stops the run
/// (a server that died mid-run would otherwise cost every remaining operation its retries).
fn note_failure(ctx: &Ctx<'_>, err: &ApiError) {
    if matches!(
        err,
        ApiError::Connect(_) | ApiError::Timeout(_) | ApiError::NoResponse(_)
    ) {
        let streak = ctx.unreachable_streak.fetch_add(1, Ordering::Relaxed) + 1;
        if streak >= UNREACHABLE_STREAK {
            set_fatal(ctx, ExecFatal::Unreachable(err.clone()));
        }
    } else {
        ctx.unreachable_streak.store(0, Ordering::Relaxed);
    }
}

/// One create, with retries for what is safe to retry.
async fn send(ctx: &Ctx<'_>, task: &Task, ticket: Uuid) -> Attempted<Created> {
    let (client, policy, hard) = (ctx.client, &ctx.cfg.retry, &ctx.cancel.hard);
    match &task.op.kind {
        OpKind::Comment(c) => {
            let body = NewComment {
                comment_text: c.text.clone(),
                is_internal: c.is_internal,
                is_resolution: c.is_resolution,
                suppress_contact_notifications: !ctx.cfg.notify,
                metadata: Some(serde_json::json!({
                    METADATA_OP_KEY: task.op.op_key,
                    "alga_batch_job": ctx.cfg.job_name,
                    "alga_batch_source": task.op.source,
                })),
            };
            let a = with_retries(client, policy, false, hard, || {
                client.create_comment(ticket, &body)
            })
            .await;
            map_attempted(a, |c| Created::Comment(c.comment_id))
        }
        OpKind::Upload { spec, mime, .. } => {
            let a = with_retries(client, policy, false, hard, || {
                client.upload_document(ticket, &spec.path, &spec.name, mime)
            })
            .await;
            map_attempted(a, |u| Created::Document {
                id: u.document.document_id,
                bytes: u.bytes,
                sha256: u.sha256,
            })
        }
    }
}

fn map_attempted<T, U>(a: Attempted<T>, f: impl FnOnce(T) -> U) -> Attempted<U> {
    Attempted {
        result: a.result.map(f),
        attempts: a.attempts,
        class: a.class,
    }
}

/// Reconcile one task: is its create already on the server?
async fn lookup(
    ctx: &Ctx<'_>,
    task: &Task,
    ticket: Uuid,
    since: Option<DateTime<Utc>>,
    fresh: bool,
) -> Result<Option<Uuid>, ApiError> {
    let (client, policy, hard) = (ctx.client, &ctx.cfg.retry, &ctx.cancel.hard);
    match &task.op.kind {
        OpKind::Comment(_) => {
            ctx.reconciler
                .find_comment(client, policy, hard, ticket, &task.op.op_key, fresh)
                .await
        }
        OpKind::Upload { spec, .. } => {
            let probe = DocumentProbe {
                name: &spec.name,
                size: spec.size,
                since,
            };
            ctx.reconciler
                .find_document(client, policy, hard, ticket, probe, fresh)
                .await
        }
    }
}
