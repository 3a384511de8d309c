//! Backing up one ticket: list its documents, report (and with `--prune` delete) the ones gone
//! from the server, skip the ones already backed up intact, download the rest under safe,
//! unique names, and export its comments.

use super::comments;
use super::download::{self, Fetched};
use super::manifest::{Entry, Store};
use super::names::{self, FolderNames};
use super::options::BackupOptions;
use super::report::Tally;
use super::select::Target;
use crate::api::{ApiError, Client, Document, RetryClass};
use crate::error::Error;
use crate::exec::retry::{with_retries, RetryPolicy};
use crate::exec::Cancel;
use crate::journal::now_rfc3339;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use uuid::Uuid;

/// Names in DIR itself that a ticket folder must never take.
pub(super) const ROOT_RESERVED: [&str; 4] = [
    super::manifest::MANIFEST_FILE,
    comments::COMMENTS_CSV,
    super::lock::LOCK_FILE,
    "logs",
];

/// What every ticket worker shares.
pub(super) struct Ctx<'a> {
    /// API client.
    pub(super) client: &'a Client,
    /// Retry policy for every request.
    pub(super) policy: RetryPolicy,
    /// Soft: start nothing new; hard: abort downloads.
    pub(super) cancel: &'a Cancel,
    /// The manifest.
    pub(super) store: &'a Store,
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

/// The folder name of a ticket inside DIR.
pub(super) fn folder_name(t: &Target) -> String {
    let raw = t.ticket_number.as_deref().unwrap_or("");
    let name = names::clean(raw);
    let clash = ROOT_RESERVED.iter().any(|r| r.eq_ignore_ascii_case(&name));
    if name.is_empty() || clash {
        t.ticket_id.to_string()
    } else if name != raw {
        // A changed number could meet another ticket's folder: keep it apart.
        names::with_id_suffix(&name, t.ticket_id, false)
    } else {
        name
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
    let dir = ctx.opts.out.as_path();
    let known: HashMap<Uuid, Entry> = ctx
        .store
        .of_ticket(t.ticket_id)
        .into_iter()
        .map(|e| (e.document_id, e))
        .collect();
    // A ticket keeps the folder of its earlier rows (a reference may differ in case).
    let folder = known
        .values()
        .find_map(|e| e.file(dir).parent().map(Path::to_path_buf))
        .unwrap_or_else(|| dir.join(folder_name(t)));
    handle_gone(ctx, &label, &docs, &known);
    let present = names_in(&folder);
    let plan = plan_paths(&folder, dir, &docs, &known, &present);
    let (mut failed, mut complete) = back_up_documents(ctx, t, &docs, plan, &known).await;
    if ctx.opts.comments {
        if ctx.cancel.soft.is_cancelled() {
            complete = false;
        } else {
            failed |= !export_comments(ctx, t, &label, &folder).await;
        }
    }
    if let Err(e) = ctx.store.maybe_flush() {
        ctx.set_fatal(e);
    }
    TicketResult {
        failed,
        complete: complete && !ctx.cancel.hard.is_cancelled(),
    }
}

/// Every document of the ticket in listing order; returns (some failed, all attempted).
async fn back_up_documents(
    ctx: &Ctx<'_>,
    t: &Target,
    docs: &[Document],
    plan: Vec<PathBuf>,
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

/// The names of what is in `folder` already (none when it does not exist yet).
fn names_in(folder: &Path) -> Vec<String> {
    std::fs::read_dir(folder)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Where each listed document goes: kept paths for known ones, fresh unique names for new
/// ones (assigned in document-id order, so reruns agree). A new name never takes the name of
/// any manifest row of the ticket (a gone document's kept file included) nor of a file
/// already in the folder. `comments.jsonl` is never given to a document, with or without
/// `--comments` (a later run may export comments).
fn plan_paths(
    folder: &Path,
    dir: &Path,
    docs: &[Document],
    known: &HashMap<Uuid, Entry>,
    present: &[String],
) -> Vec<PathBuf> {
    let mut names = FolderNames::with_reserved([comments::COMMENTS_JSONL]);
    for e in known.values() {
        names.take(e.path.rsplit('/').next().unwrap_or(""));
    }
    for p in present {
        names.take(p);
    }
    let mut order: Vec<usize> = (0..docs.len()).collect();
    order.sort_by_key(|&i| docs[i].document_id);
    let mut out = vec![PathBuf::new(); docs.len()];
    for i in order {
        let d = &docs[i];
        out[i] = match known.get(&d.document_id) {
            Some(e) => e.file(dir),
            None => {
                let safe = names::sanitize(&d.document_name, d.document_id);
                folder.join(names.claim(&safe, d.document_id))
            }
        };
    }
    out
}

/// Report manifest rows of this ticket whose document is no longer listed; prune them.
fn handle_gone(ctx: &Ctx<'_>, label: &str, docs: &[Document], known: &HashMap<Uuid, Entry>) {
    let listed: std::collections::HashSet<Uuid> = docs.iter().map(|d| d.document_id).collect();
    let mut gone: Vec<&Entry> = known
        .values()
        .filter(|e| !listed.contains(&e.document_id))
        .collect();
    gone.sort_by(|a, b| a.path.cmp(&b.path));
    for e in gone {
        report_gone(ctx, label, e);
    }
}

/// One document gone from the server: reported; its file deleted with `--prune`.
pub(super) fn report_gone(ctx: &Ctx<'_>, label: &str, e: &Entry) {
    Tally::add(&ctx.tally.gone, 1);
    if !ctx.opts.prune {
        ctx.tally.problem(format!(
            "{label}: document {} ({}) is gone from the server; kept at {}",
            e.document_id, e.document_name, e.path
        ));
        return;
    }
    if ctx.store.path_used_by_other(e) {
        // The file belongs to a live row now: only this row goes.
        ctx.store.remove(e.ticket_id, e.document_id);
        ctx.tally.problem(format!(
            "{label}: document {} is gone from the server; {} is kept (another document uses it)",
            e.document_id, e.path
        ));
        return;
    }
    let file = e.file(&ctx.opts.out);
    match std::fs::remove_file(&file) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => {
            ctx.tally
                .problem(format!("{label}: cannot prune {}: {err}", e.path));
            return;
        }
    }
    ctx.store.remove(e.ticket_id, e.document_id);
    Tally::add(&ctx.tally.pruned, 1);
    ctx.tally.problem(format!(
        "{label}: document {} is gone from the server; pruned {}",
        e.document_id, e.path
    ));
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
    path: &Path,
) -> Doc {
    if let Some(e) = known {
        let same_size = doc.file_size.is_none_or(|s| s == e.bytes);
        if same_size && download::still_intact(path, e.bytes, &e.sha256).await {
            Tally::add(&ctx.tally.unchanged, 1);
            return Doc::Done;
        }
    }
    let rel = relative(&ctx.opts.out, path);
    let folder = path.parent().unwrap_or(&ctx.opts.out);
    if let Err(e) = std::fs::create_dir_all(folder) {
        Tally::add(&ctx.tally.failed, 1);
        ctx.tally
            .problem(format!("{rel}: cannot create folder: {e}"));
        return Doc::Failed;
    }
    let hard = &ctx.cancel.hard;
    match download::fetch(
        ctx.client,
        &ctx.policy,
        hard,
        t.ticket_id,
        doc,
        folder,
        path,
    )
    .await
    {
        Ok(f) => {
            record(ctx, t, doc, rel, f);
            Doc::Done
        }
        Err(e) if matches!(e.error, ApiError::Cancelled) => {
            Tally::add(&ctx.tally.left, 1);
            Doc::Left
        }
        Err(e) => match ctx.classify(&e.error, true) {
            Some(msg) => {
                Tally::add(&ctx.tally.failed, 1);
                ctx.tally.problem(format!(
                    "{rel}: download of document {} failed after {} attempt(s): {msg}",
                    doc.document_id, e.attempts
                ));
                Doc::Failed
            }
            None => Doc::Left,
        },
    }
}

fn record(ctx: &Ctx<'_>, t: &Target, doc: &Document, rel: String, f: Fetched) {
    Tally::add(&ctx.tally.downloaded, 1);
    Tally::add(&ctx.tally.bytes, f.bytes);
    ctx.store.record(Entry {
        ticket_id: t.ticket_id,
        ticket_number: t.ticket_number.clone().unwrap_or_default(),
        document_id: doc.document_id,
        document_name: doc.document_name.clone(),
        path: rel,
        bytes: f.bytes,
        sha256: f.sha256,
        mime_type: doc.mime_type.clone().or(f.content_type).unwrap_or_default(),
        downloaded_at: now_rfc3339(),
    });
}

/// `TIC001000/report.pdf`.
fn relative(dir: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(dir).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

async fn export_comments(ctx: &Ctx<'_>, t: &Target, label: &str, folder: &Path) -> bool {
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
    let written =
        std::fs::create_dir_all(folder).and_then(|()| comments::write_jsonl(folder, &all));
    match written {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: u128, name: &str) -> Document {
        serde_json::from_value(serde_json::json!({
            "document_id": Uuid::from_u128(id),
            "document_name": name,
            "file_size": "3",
        }))
        .unwrap()
    }

    #[test]
    fn hostile_ticket_numbers_and_reserved_root_names_fall_back_to_the_id() {
        let id = Uuid::from_u128(7);
        let t = |n: &str| Target {
            ticket_id: id,
            ticket_number: Some(n.into()),
        };
        assert_eq!(folder_name(&t("TIC001000")), "TIC001000");
        assert_eq!(folder_name(&t("../x")), "x-00000000");
        assert_eq!(folder_name(&t("TIC 7")), "TIC 7");
        assert_eq!(folder_name(&t("manifest.csv")), id.to_string());
        assert_eq!(folder_name(&t("..")), id.to_string());
    }

    #[test]
    fn paths_are_unique_stable_and_inside_the_folder() {
        let dir = Path::new("/backup");
        let folder = dir.join("TIC1");
        let docs = vec![
            doc(3, "a.txt"),
            doc(1, "A.TXT"),
            doc(2, "../../a.txt"),
            doc(4, "comments.jsonl"),
        ];
        let p = plan_paths(&folder, dir, &docs, &HashMap::new(), &[]);
        assert_eq!(p[1], folder.join("A.TXT"), "lowest id gets the plain name");
        let again = plan_paths(&folder, dir, &docs, &HashMap::new(), &[]);
        assert_eq!(p, again);
        let names: std::collections::HashSet<String> = p
            .iter()
            .map(|x| x.to_string_lossy().to_lowercase())
            .collect();
        assert_eq!(names.len(), 4);
        assert!(p.iter().all(|x| x.parent() == Some(folder.as_path())));
        assert_ne!(p[3], folder.join("comments.jsonl"));
    }
}
