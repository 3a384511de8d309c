//! Undo operations: deleting a document and replacing a comment's text. Both are idempotent,
//! so every retryable error is simply retried and nothing is journaled before sending; a 404
//! means the target is already gone.

use super::executor::{finish, Ctx, ExecFatal, Finished, Task};
use super::retry::with_retries;
use crate::api::{ApiError, RetryClass};
use crate::journal::{FailClass, Outcome, ResultRow};
use crate::plan::OpKind;
use uuid::Uuid;

/// Run one delete or redaction to its final row.
pub(super) async fn run(ctx: &Ctx<'_>, task: &Task, ticket: Uuid, row: ResultRow) -> Finished {
    let (client, policy, hard) = (ctx.client, &ctx.cfg.retry, &ctx.cancel.hard);
    let (attempted, done) = match &task.op.kind {
        OpKind::DeleteDocument { document, .. } => {
            let a = with_retries(client, policy, true, hard, || {
                client.delete_document(ticket, *document)
            })
            .await;
            (a, Outcome::Deleted)
        }
        OpKind::RedactComment { comment, text, .. } => {
            let a = with_retries(client, policy, true, hard, || async {
                client
                    .update_comment(ticket, *comment, text)
                    .await
                    .map(|_| ())
            })
            .await;
            (a, Outcome::Redacted)
        }
        OpKind::Comment(_) | OpKind::Upload { .. } => {
            let why = "a create cannot run as an idempotent operation".to_string();
            return finish(row, Outcome::Failed(FailClass::Local), why);
        }
    };
    let attempts = attempted.attempts;
    let mut done = match attempted.result {
        Ok(()) => {
            ctx.answered();
            let mut row = row;
            row.http_status = "200".into();
            finish(row, done, String::new())
        }
        Err(e) => failed(ctx, row, &e),
    };
    done.row.attempts = attempts;
    done
}

/// The row of a request that did not succeed: 404 means already gone; a rejected key or a
/// server that stopped answering stops the run.
fn failed(ctx: &Ctx<'_>, mut row: ResultRow, e: &ApiError) -> Finished {
    row.http_status = e.status().map(|s| s.to_string()).unwrap_or_default();
    if e.status() == Some(404) {
        ctx.answered();
        return finish(row, Outcome::Missing, String::new());
    }
    if matches!(e, ApiError::Cancelled) {
        return finish(row, Outcome::Cancelled, "not done: run stopped".into());
    }
    if e.class(true) == RetryClass::Fatal {
        ctx.set_fatal(ExecFatal::Rejected(e.clone()));
    } else {
        ctx.note_failure(e);
    }
    let class = if e
        .status()
        .is_some_and(|s| (400..500).contains(&s) && s != 429)
    {
        FailClass::Refused
    } else {
        FailClass::Transient
    };
    finish(row, Outcome::Failed(class), e.one_line())
}
