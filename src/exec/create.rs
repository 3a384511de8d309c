//! Creates (comment posts and uploads): exactly once, whatever the server or the network does.
//!
//! Before each send a `sending` intent is journaled and flushed. Only an answer that proves
//! nothing was stored ([`crate::api::NOTHING_STORED`]) fails the operation; a 429 or a refused
//! connection is retried by `retry`. Every other outcome (any 5xx, an unreadable 2xx, a
//! timeout, a reset, a dropped connection) may follow a commit: the operation is looked up on
//! the server (reconciled) and sent again only when it is not there. When reconciliation
//! cannot settle it, the row is `unknown` and the next run reconciles it first.

use super::executor::{finish, unknown, Ctx, ExecFatal, Finished, Prior, Task};
use super::reconcile::DocumentProbe;
use super::retry::{with_retries, Attempted};
use crate::api::{ApiError, NewComment, RetryClass, METADATA_OP_KEY};
use crate::journal::{now_rfc3339, FailClass, Outcome, ResultRow, Status};
use crate::plan::OpKind;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Run one create to its final row: reconcile first when an earlier run left its outcome
/// unknown, then send until its outcome is known.
pub(super) async fn run(ctx: &Ctx<'_>, task: &Task, ticket: Uuid, row: ResultRow) -> Finished {
    let mut first = None;
    if let Prior::Uncertain { since } = task.prior {
        match lookup(ctx, task, ticket, since, false).await {
            Ok(Some(id)) => return found(row, &task.op.kind, id),
            Ok(None) => first = since,
            Err(e) => {
                ctx.note_failure(&e);
                let why = format!(
                    "not reconciled: the earlier attempt's outcome is unknown and the lookup failed: {}",
                    e.one_line()
                );
                return unknown(row, since, why);
            }
        }
    }
    send_until_known(ctx, task, ticket, row, first).await
}

/// Send the create; when its outcome is unknown, reconcile and send again only if absent.
/// `first` is when an earlier run's attempt was about to be sent, if one may have landed.
async fn send_until_known(
    ctx: &Ctx<'_>,
    task: &Task,
    ticket: Uuid,
    mut row: ResultRow,
    mut first: Option<DateTime<Utc>>,
) -> Finished {
    let rounds = ctx.cfg.retry.max_retries + 1;
    let mut backoff = ctx.cfg.retry.backoff();
    let mut last = String::new();
    for _ in 0..rounds {
        let Some(since) = record_intent(ctx, &row).await else {
            let why = "not sent: the results file cannot be written".to_string();
            return match first {
                Some(_) => unknown(row, first, why),
                None => finish(row, Outcome::Cancelled, why),
            };
        };
        let first_sent = *first.get_or_insert(since);
        let attempted = tokio::select! {
            a = send(ctx, task, ticket) => a,
            () = ctx.cancel.hard.cancelled() => {
                return unknown(row, Some(first_sent), "aborted in flight".into());
            }
        };
        row.attempts += attempted.attempts;
        let err = match attempted.result {
            Ok(created) => {
                ctx.answered();
                return created_row(ctx, row, created);
            }
            Err(e) => e,
        };
        row.http_status = err.status().map(|s| s.to_string()).unwrap_or_default();
        if let Some(done) = settle(ctx, &row, &err, attempted.class, first_sent) {
            return done;
        }
        last = err.one_line();
        match lookup(ctx, task, ticket, Some(since), true).await {
            Ok(Some(id)) => return found(row, &task.op.kind, id),
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
                ctx.note_failure(&e);
                let why = format!("{last}; reconciliation failed: {}", e.one_line());
                return unknown(row, Some(first_sent), why);
            }
        }
    }
    let why = format!("{last}; not on the server (looked up after each attempt)");
    finish(row, Outcome::Failed(FailClass::Transient), why)
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
            ctx.set_fatal(ExecFatal::Journal(e));
            None
        }
    }
}

/// The final row for a create that did not succeed, or `None` when its outcome is unknown
/// (reconcile). `class` is the retry loop's verdict, which tells a stop before sending from
/// one in flight.
fn settle(
    ctx: &Ctx<'_>,
    row: &ResultRow,
    err: &ApiError,
    class: Option<RetryClass>,
    first_sent: DateTime<Utc>,
) -> Option<Finished> {
    let row = row.clone();
    if matches!(err, ApiError::Cancelled) {
        return Some(match class {
            Some(RetryClass::OutcomeUnknown) => {
                unknown(row, Some(first_sent), "aborted in flight".into())
            }
            _ => finish(row, Outcome::Cancelled, "not sent: run stopped".into()),
        });
    }
    match err.class(false) {
        RetryClass::OutcomeUnknown => {
            ctx.answered_if_status(err);
            None
        }
        RetryClass::Fatal => {
            ctx.set_fatal(ExecFatal::Rejected(err.clone()));
            Some(finish(
                row,
                Outcome::Failed(FailClass::Refused),
                err.one_line(),
            ))
        }
        // A key whose user may not update tickets: every create would be refused alike.
        _ if err.status() == Some(403) => {
            ctx.set_fatal(ExecFatal::Forbidden(err.clone()));
            Some(finish(
                row,
                Outcome::Failed(FailClass::Refused),
                err.one_line(),
            ))
        }
        RetryClass::Permanent if matches!(err, ApiError::Local(_)) => Some(finish(
            row,
            Outcome::Failed(FailClass::Local),
            err.one_line(),
        )),
        RetryClass::Permanent => {
            ctx.answered();
            Some(finish(
                row,
                Outcome::Failed(FailClass::Refused),
                err.one_line(),
            ))
        }
        // Retries used up on what proves nothing was stored (429s, refused connections).
        RetryClass::Retry => {
            ctx.note_failure(err);
            Some(finish(
                row,
                Outcome::Failed(FailClass::Transient),
                err.one_line(),
            ))
        }
    }
}

impl Ctx<'_> {
    /// An unknown outcome with a status still means the server answered.
    fn answered_if_status(&self, err: &ApiError) {
        if err.status().is_some() {
            self.answered();
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

fn created_row(ctx: &Ctx<'_>, mut row: ResultRow, created: Created) -> Finished {
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
    finish(row, Outcome::Created, String::new())
}

fn found(mut row: ResultRow, kind: &OpKind, id: Uuid) -> Finished {
    match kind {
        OpKind::Comment(_) => row.comment_id = id.to_string(),
        _ => row.document_id = id.to_string(),
    }
    finish(row, Outcome::Existing, String::new())
}

/// One create, with retries for what is safe to retry.
async fn send(ctx: &Ctx<'_>, task: &Task, ticket: Uuid) -> Attempted<Created> {
    let (client, policy, hard) = (ctx.client, &ctx.cfg.retry, &ctx.cancel.hard);
    match &task.op.kind {
        OpKind::Comment(c) => {
            let mut metadata = serde_json::json!({
                METADATA_OP_KEY: task.op.op_key,
                "alga_batch_job": ctx.cfg.job_name,
                "alga_batch_source": task.op.source,
            });
            for (k, v) in &task.op.extra.metadata {
                metadata[k] = v.as_str().into();
            }
            let body = NewComment {
                comment_text: c.text.clone(),
                is_internal: c.is_internal,
                is_resolution: c.is_resolution,
                suppress_contact_notifications: !ctx.cfg.notify,
                metadata: Some(metadata),
            };
            let a = with_retries(client, policy, false, hard, || {
                client.create_comment(ticket, &body)
            })
            .await;
            a.map(|c| Created::Comment(c.comment_id))
        }
        OpKind::Upload {
            spec, mime, stream, ..
        } => {
            let a = with_retries(client, policy, false, hard, || async {
                match stream {
                    Some(s) => {
                        let source = s.0.as_ref();
                        client
                            .upload_from(ticket, source, spec.size, &spec.name, mime)
                            .await
                    }
                    None => {
                        client
                            .upload_document(ticket, &spec.path, &spec.name, mime)
                            .await
                    }
                }
            })
            .await;
            a.map(|u| Created::Document {
                id: u.document.document_id,
                bytes: u.bytes,
                sha256: u.sha256,
            })
        }
        OpKind::DeleteDocument { .. } | OpKind::RedactComment { .. } => Attempted {
            result: Err(ApiError::Local("not a create".into())),
            attempts: 0,
            class: Some(RetryClass::Permanent),
        },
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
        OpKind::DeleteDocument { .. } | OpKind::RedactComment { .. } => Ok(None),
    }
}
