//! Backing up one ticket: list its documents, report (and with `--prune` delete) the ones gone
//! from the server, skip the ones already backed up intact, download the rest under safe,
//! unique names (the store's layout), and export its comments.

use super::comments;
use super::download::{self, Fetched};
use super::options::BackupOptions;
use super::report::Tally;
use super::select::Target;
use crate::api::{ApiError, Client, Document, RetryClass};
use crate::error::Error;
use crate::exec::retry::{with_retries, RetryPolicy};
use crate::exec::Cancel;
use crate::store::layout::{self, COMMENTS_JSONL};
use crate::store::manifest::now;
use crate::store::{BackupStore, Check, Entry, Manifest, Presence};
use std::collections::HashMap;
use std::sync::Mutex;
use uuid::Uuid;

/// What every ticket worker shares.
pub(super) struct Ctx<'a> {
    /// API client.
    pub(super) client: &'a Client,
    /// Retry policy for every request.
    pub(super) policy: RetryPolicy,
    /// Soft: start nothing new; hard: abort downloads.
    pub(super) cancel: &'a Cancel,
    /// Where the backup goes.
    pub(super) store: &'a dyn BackupStore,
    /// The manifest (in memory, journaled in the store).
    pub(super) manifest: &'a Manifest<'a>,
    /// Options.
    pub(super) opts: &'a BackupOptions,
    /// Counters and problems.
    pub(super) tally: &'a Tally,
    /// The error that stops the run.
    pub(super) fatal: Mutex<Option<Error>>,
    /// Ticket id -> number as the server spells it, of the tickets seen in this run.
    pub(super) numbers: Mutex<HashMap<Uuid, String>>,
}

impl Ctx<'_> {
    /// Record a run-stopping error (the first one wins) and stop scheduling.
    pub(super) fn set_fatal(&self, e: Error) {
        if let Ok(mut f) = self.fatal.lock() {
            f.get_or_insert(e);
        }
        self.cancel.soft.cancel();
    }

    /// A per-item API error (retries already used up): `None` when it is not the item's
    /// fault, else `Some(message)`. A rejected key, or a server that stopped answering
    /// (no connection; or, for a list request, no answer or a timeout) stops the run; a hard
    /// cancel leaves the item for the next run. A download cut off midway stays the
    /// document's failure (the server did answer); the next list request tells whether the
    /// server is gone.
    fn classify(&self, e: &ApiError, download: bool) -> Option<String> {
        if matches!(e, ApiError::Cancelled) {
            return None;
        }
        let unreachable = match e {
            ApiError::Connect(_) => true,
            ApiError::Timeout(_) | ApiError::NoResponse(_) => !download,
            _ => false,
        };
        if unreachable || e.class(true) == RetryClass::Fatal {
            self.set_fatal(crate::runner::fatal_from(self.client, e.clone()));
            return None;
        }
        Some(e.one_line())
    }
}

/// How one ticket went.
pub(super) struct TicketResult {
    /// Something about it failed (reported).
    pub(super) failed: bool,
    /// Everything was attempted (nothing left because the run stopped).
    pub(super) complete: bool,
}

/// Back up one ticket.
pub(super) async fn back_up(ctx: &Ctx<'_>, t: &Target) -> TicketResult {
    let label = t
        .ticket_number
        .clone()
        .unwrap_or_else(|| t.ticket_id.to_string());
    if let (Some(n), Ok(mut numbers)) = (&t.ticket_number, ctx.numbers.lock()) {
        numbers.insert(t.ticket_id, n.clone());
    }
    let listed = with_retries(ctx.client, &ctx.policy, true, &ctx.cancel.hard, || {
        ctx.client.list_documents(t.ticket_id)
    })
    .await
    .result;
    let docs = match listed {
        Ok(d) => d,
        Err(e) => {
            let msg = ctx.classify(&e, false);
            if let Some(msg) = &msg {
                Tally::add(&ctx.tally.tickets_failed, 1);
                ctx.tally
                    .problem(format!("{label}: cannot list documents: {msg}"));
            }
            return TicketResult {
                failed: true,
                complete: msg.is_some(),
            };
        }
    };
    Tally::add(&ctx.tally.tickets, 1);
    Tally::add(&ctx.tally.documents, docs.len() as u64);
    let known: HashMap<Uuid, Entry> = ctx
        .manifest
        .of_ticket(t.ticket_id)
        .into_iter()
        .map(|e| (e.document_id, e))
        .collect();
    handle_gone(ctx, &label, &docs, &known).await;
    let Some((folder, plan)) = plan(ctx, t, &label, &docs, &known).await else {
        return TicketResult {
            failed: true,
            complete: true,
        };
    };
    let (mut failed, mut complete) = back_up_documents(ctx, t, &docs, plan, &known).await;
    if ctx.opts.comments {
        if ctx.cancel.soft.is_cancelled() {
            complete = false;
        } else {
            failed |= !export_comments(ctx, t, &label, &folder).await;
        }
    }
    TicketResult {
        failed,
        complete: complete && !ctx.cancel.hard.is_cancelled(),
    }
}

/// The ticket's folder (the one of its earlier rows, as a reference may differ in case) and
/// the key of each listed document; `None` (reported) when the folder cannot be listed.
async fn plan(
    ctx: &Ctx<'_>,
    t: &Target,
    label: &str,
    docs: &[Document],
    known: &HashMap<Uuid, Entry>,
) -> Option<(String, Vec<String>)> {
    let folder = known
        .values()
        .map(|e| layout::folder_of(&e.path).to_string())
        .find(|f| !f.is_empty())
        .unwrap_or_else(|| layout::folder_name(t.ticket_number.as_deref(), t.ticket_id));
    let present: Vec<String> = match ctx.store.list(&folder).await {
        Ok(names) => names.into_iter().map(|l| l.name).collect(),
        Err(e) => {
            Tally::add(&ctx.tally.tickets_failed, 1);
            ctx.tally
                .problem(format!("{label}: cannot list {folder}: {e}"));
            return None;
        }
    };
    let listed: Vec<(Uuid, &str)> = docs
        .iter()
        .map(|d| (d.document_id, d.document_name.as_str()))
        .collect();
    let known_paths: HashMap<Uuid, &str> =
        known.iter().map(|(id, e)| (*id, e.path.as_str())).collect();
    let keys = layout::plan_paths(&folder, &listed, &known_paths, &present);
    Some((folder, keys))
}

/// Every document of the ticket in listing order; returns (some failed, all attempted).
async fn back_up_documents(
    ctx: &Ctx<'_>,
    t: &Target,
    docs: &[Document],
    plan: Vec<String>,
    known: &HashMap<Uuid, Entry>,
) -> (bool, bool) {
    let (mut failed, mut complete) = (false, true);
    for (doc, path) in docs.iter().zip(plan) {
        if ctx.cancel.soft.is_cancelled() {
            Tally::add(&ctx.tally.left, 1);
            complete = false;
            continue;
        }
        match back_up_document(ctx, t, doc, known.get(&doc.document_id), &path).await {
            Doc::Done => {}
            Doc::Failed => failed = true,
            Doc::Left => complete = false,
        }
    }
    (failed, complete)
}

/// Report manifest rows of this ticket whose document is no longer listed; prune them.
async fn handle_gone(ctx: &Ctx<'_>, label: &str, docs: &[Document], known: &HashMap<Uuid, Entry>) {
    let listed: std::collections::HashSet<Uuid> = docs.iter().map(|d| d.document_id).collect();
    let mut gone: Vec<&Entry> = known
        .values()
        .filter(|e| !listed.contains(&e.document_id))
        .collect();
    gone.sort_by(|a, b| a.path.cmp(&b.path));
    for e in gone {
        report_gone(ctx, label, e).await;
    }
}

/// One document gone from the server: reported; with `--prune` its object is deleted, then
/// its row removed (in that order: a kill in between leaves a row whose object is missing,
/// never an object no row names).
pub(super) async fn report_gone(ctx: &Ctx<'_>, label: &str, e: &Entry) {
    Tally::add(&ctx.tally.gone, 1);
    if !ctx.opts.prune {
        ctx.tally.problem(format!(
            "{label}: document {} ({}) is gone from the server; kept at {}",
            e.document_id, e.document_name, e.path
        ));
        return;
    }
    if ctx.manifest.path_used_by_other(e) {
        // The object belongs to a live row now: only this row goes.
        forget(ctx, e).await;
        ctx.tally.problem(format!(
            "{label}: document {} is gone from the server; {} is kept (another document uses it)",
            e.document_id, e.path
        ));
        return;
    }
    if let Err(err) = ctx.store.delete(&e.path).await {
        ctx.tally
            .problem(format!("{label}: cannot prune {}: {err}", e.path));
        return;
    }
    forget(ctx, e).await;
    Tally::add(&ctx.tally.pruned, 1);
    ctx.tally.problem(format!(
        "{label}: document {} is gone from the server; pruned {}",
        e.document_id, e.path
    ));
}

/// Remove a row; a journal that cannot be written stops the run.
async fn forget(ctx: &Ctx<'_>, e: &Entry) {
    if let Err(err) = ctx.manifest.remove(e.ticket_id, e.document_id).await {
        ctx.set_fatal(err.into());
    }
}

/// What became of one document.
enum Doc {
    /// Downloaded, or already intact.
    Done,
    /// Failed (reported).
    Failed,
    /// Not attempted or aborted because the run stopped.
    Left,
}

/// Skip when intact, else download.
async fn back_up_document(
    ctx: &Ctx<'_>,
    t: &Target,
    doc: &Document,
    known: Option<&Entry>,
    key: &str,
) -> Doc {
    if let Some(e) = known {
        match still_intact(ctx, doc, e).await {
            Ok(true) => {
                Tally::add(&ctx.tally.unchanged, 1);
                return Doc::Done;
            }
            Ok(false) => {}
            Err(msg) => {
                Tally::add(&ctx.tally.failed, 1);
                ctx.tally.problem(format!("{key}: {msg}"));
                return Doc::Failed;
            }
        }
    }
    let hard = &ctx.cancel.hard;
    let fetched = download::fetch(
        ctx.client,
        &ctx.policy,
        hard,
        ctx.store,
        t.ticket_id,
        doc,
        key,
    )
    .await;
    match fetched {
        Ok(f) => keep(ctx, t, doc, known.is_some(), key, f).await,
        Err(e) if matches!(e.error, ApiError::Cancelled) => {
            Tally::add(&ctx.tally.left, 1);
            Doc::Left
        }
        Err(e) => match ctx.classify(&e.error, true) {
            Some(msg) => {
                Tally::add(&ctx.tally.failed, 1);
                ctx.tally.problem(format!(
                    "{key}: download of document {} failed after {} attempt(s): {msg}",
                    doc.document_id, e.attempts
                ));
                Doc::Failed
            }
            None => Doc::Left,
        },
    }
}

/// Whether the backed-up object of a listed document is still the one recorded: same size as
/// listed, and the store's check (`--verify`: read and hashed) finds it intact.
async fn still_intact(ctx: &Ctx<'_>, doc: &Document, e: &Entry) -> Result<bool, String> {
    if doc.file_size.is_some_and(|s| s != e.bytes) {
        return Ok(false);
    }
    let how = if ctx.opts.verify {
        Check::Verify
    } else {
        Check::Trust
    };
    let checked = ctx
        .store
        .check(e, how)
        .await
        .map_err(|err| format!("cannot check the backed-up file: {err}"))?;
    if checked.rehashed {
        Tally::add(&ctx.tally.rehashed, 1);
    }
    if checked.presence == Presence::Differs {
        ctx.tally.problem(format!(
            "{}: differs from what was downloaded; downloading it again",
            e.path
        ));
    }
    Ok(checked.presence == Presence::Intact)
}

/// Record a staged download, then put it under its key. An object already there (damaged, or
/// of an older version) is deleted first, so it can never pass for the new row.
async fn keep(
    ctx: &Ctx<'_>,
    t: &Target,
    doc: &Document,
    replacing: bool,
    key: &str,
    f: Fetched,
) -> Doc {
    if replacing {
        if let Err(e) = ctx.store.delete(key).await {
            f.staged.abort().await;
            Tally::add(&ctx.tally.failed, 1);
            ctx.tally
                .problem(format!("{key}: cannot replace the old file: {e}"));
            return Doc::Failed;
        }
    }
    let bytes = f.staged.bytes();
    let entry = Entry {
        ticket_id: t.ticket_id,
        ticket_number: t.ticket_number.clone().unwrap_or_default(),
        document_id: doc.document_id,
        document_name: doc.document_name.clone(),
        path: key.to_string(),
        bytes,
        sha256: f.staged.sha256().to_string(),
        mime_type: doc.mime_type.clone().or(f.content_type).unwrap_or_default(),
        downloaded_at: now(),
    };
    if let Err(e) = ctx.manifest.record(entry).await {
        f.staged.abort().await;
        ctx.set_fatal(e.into());
        Tally::add(&ctx.tally.left, 1);
        return Doc::Left;
    }
    if let Err(e) = f.staged.commit().await {
        Tally::add(&ctx.tally.failed, 1);
        ctx.tally.problem(format!("{key}: {e}"));
        return Doc::Failed;
    }
    Tally::add(&ctx.tally.downloaded, 1);
    Tally::add(&ctx.tally.bytes, bytes);
    Doc::Done
}

async fn export_comments(ctx: &Ctx<'_>, t: &Target, label: &str, folder: &str) -> bool {
    let hard = &ctx.cancel.hard;
    let all = match comments::list_all(ctx.client, &ctx.policy, hard, t.ticket_id).await {
        Ok(c) => c,
        Err(e) => {
            if let Some(msg) = ctx.classify(&e, false) {
                Tally::add(&ctx.tally.tickets_failed, 1);
                ctx.tally
                    .problem(format!("{label}: cannot list comments: {msg}"));
            }
            return false;
        }
    };
    let key = layout::key(folder, COMMENTS_JSONL);
    match ctx.store.put_small(&key, comments::to_jsonl(&all)).await {
        Ok(()) => {
            Tally::add(&ctx.tally.comments, all.len() as u64);
            true
        }
        Err(e) => {
            Tally::add(&ctx.tally.tickets_failed, 1);
            ctx.tally
                .problem(format!("{label}: cannot write comments: {e}"));
            false
        }
    }
}
