//! Running undo targets: bounded concurrency, every request governed and retried (deletes and
//! redactions are idempotent), one journal row per target as it finishes.

use super::select::{Action, Target};
use crate::api::{ApiError, Client, RetryClass};
use crate::exec::retry::{with_retries, RetryPolicy};
use crate::exec::{Cancel, Progress};
use crate::journal::{now_rfc3339, JournalHandle, ResultRow, Status};
use futures::StreamExt;
use std::sync::Mutex;

/// What the workers share.
pub(crate) struct Workers<'a> {
    /// The governed client.
    pub(crate) client: &'a Client,
    /// Retry policy of every request.
    pub(crate) retry: &'a RetryPolicy,
    /// Two-stage stop.
    pub(crate) cancel: &'a Cancel,
    /// Where rows go.
    pub(crate) journal: &'a JournalHandle,
    /// Live progress.
    pub(crate) progress: &'a Progress,
    /// Replacement text for comments.
    pub(crate) redact_text: &'a str,
    /// Print one line per refused redaction.
    pub(crate) quiet: bool,
    /// Targets in flight at once.
    pub(crate) concurrency: usize,
}

/// What the workers did.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Final status of every target.
    pub(crate) statuses: Vec<Status>,
    /// The error that stopped the run (a rejected key).
    pub(crate) fatal: Option<ApiError>,
}

/// Run every target; rows go to the journal as they finish.
pub(crate) async fn run_all(w: &Workers<'_>, targets: Vec<Target>) -> Outcome {
    let fatal = Mutex::new(None);
    let statuses: Vec<Status> = futures::stream::iter(targets)
        .map(|t| {
            let fatal = &fatal;
            async move {
                let row = run_one(w, &t, fatal).await;
                let status = row.status;
                w.progress
                    .finished(matches!(status, Status::Failed | Status::Cancelled));
                w.journal.record(row);
                status
            }
        })
        .buffer_unordered(w.concurrency.max(1))
        .collect()
        .await;
    Outcome {
        statuses,
        fatal: fatal.into_inner().ok().flatten(),
    }
}

/// The undo row of a source row: same identity and file columns, fresh outcome columns.
pub(crate) fn undo_row(source: &ResultRow, status: Status, error: &str) -> ResultRow {
    ResultRow {
        status,
        http_status: String::new(),
        attempts: 0,
        error: error.replace(['\r', '\n'], " "),
        finished_at: now_rfc3339(),
        ..source.clone()
    }
}

/// Undo one target, to its final row.
async fn run_one(w: &Workers<'_>, t: &Target, fatal: &Mutex<Option<ApiError>>) -> ResultRow {
    let action = match &t.action {
        Ok(a) => *a,
        Err(why) => return undo_row(&t.source, Status::Failed, why),
    };
    if w.cancel.soft.is_cancelled() {
        return undo_row(&t.source, Status::Cancelled, "not started: run stopped");
    }
    let (client, hard) = (w.client, &w.cancel.hard);
    let attempted = match action {
        Action::Delete { ticket, document } => {
            with_retries(client, w.retry, true, hard, || {
                client.delete_document(ticket, document)
            })
            .await
        }
        Action::Redact { ticket, comment } => {
            let text = w.redact_text;
            with_retries(client, w.retry, true, hard, || async move {
                client
                    .update_comment(ticket, comment, text)
                    .await
                    .map(|_| ())
            })
            .await
        }
    };
    let done = match action {
        Action::Delete { .. } => Status::Deleted,
        Action::Redact { .. } => Status::Redacted,
    };
    let mut row = match attempted.result {
        Ok(()) => {
            let mut row = undo_row(&t.source, done, "");
            row.http_status = "200".into();
            row
        }
        Err(e) => failed_row(w, t, &e, fatal),
    };
    row.attempts = attempted.attempts;
    row
}

/// The row of a request that did not succeed: 404 means already gone; a rejected key or a
/// server still unreachable after the retries stops the run (the rest is cancelled).
fn failed_row(
    w: &Workers<'_>,
    t: &Target,
    e: &ApiError,
    fatal: &Mutex<Option<ApiError>>,
) -> ResultRow {
    let mut row = if e.status() == Some(404) {
        undo_row(&t.source, Status::Missing, "")
    } else if matches!(e, ApiError::Cancelled) {
        undo_row(&t.source, Status::Cancelled, "aborted in flight")
    } else {
        if e.class(true) == RetryClass::Fatal || matches!(e, ApiError::Connect(_)) {
            if let Ok(mut f) = fatal.lock() {
                f.get_or_insert_with(|| e.clone());
            }
            w.cancel.soft.cancel();
        } else if !w.quiet && matches!(t.action, Ok(Action::Redact { .. })) {
            eprintln!(
                "cannot redact comment {} on ticket {}: {}",
                t.source.comment_id,
                t.source.ticket,
                e.one_line()
            );
        }
        undo_row(&t.source, Status::Failed, &e.one_line())
    };
    row.http_status = e.status().map(|s| s.to_string()).unwrap_or_default();
    row
}
