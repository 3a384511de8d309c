//! Planning: a validated [`Job`] becomes an ordered list of operations with stable op keys.
//!
//! An op key is derived from content only: the ticket as written, the kind, the comment text and
//! flags (or the file name, size and sha256), and the occurrence number among identical
//! operations. Reordering rows or editing unrelated rows therefore leaves every other key as it
//! was, which is what resuming an edited job relies on. Planning hashes attachment files (off
//! the async threads, several at once), except those whose hash an earlier run recorded
//! ([`KnownHashes`]); it never touches the network.

use crate::api::StreamSource;
use crate::error::{Error, Result};
use crate::job::{Action, CommentSpec, Job, TicketRef, UploadSpec};
use crate::journal::{ResultRow, Status};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// What an operation does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpKind {
    /// Post a comment.
    Comment(CommentSpec),
    /// Upload a file, with its content hash and guessed MIME type.
    Upload {
        /// The file.
        spec: UploadSpec,
        /// sha256 of the file at planning time (hex).
        sha256: String,
        /// MIME type guessed from the extension.
        mime: String,
        /// Where the bytes come from when they are not read from `spec.path` (a backup
        /// object, opened afresh for every attempt).
        stream: Option<StreamSource>,
    },
    /// Undo: delete a document (idempotent; 404 means already gone).
    DeleteDocument {
        /// The document.
        document: Uuid,
        /// The row of the job being undone: the undo row keeps its identity columns.
        row: Box<ResultRow>,
    },
    /// Undo: replace a comment's text (idempotent).
    RedactComment {
        /// The comment.
        comment: Uuid,
        /// The replacement text.
        text: Arc<str>,
        /// The row of the job being undone.
        row: Box<ResultRow>,
    },
}

impl OpKind {
    /// `comment` or `document`, as in the results CSV.
    pub fn label(&self) -> &'static str {
        match self {
            OpKind::Comment(_) | OpKind::RedactComment { .. } => "comment",
            OpKind::Upload { .. } | OpKind::DeleteDocument { .. } => "document",
        }
    }

    /// Whether the operation creates something (a POST without idempotency: journaled before
    /// it is sent, reconciled when its answer is lost).
    pub fn is_create(&self) -> bool {
        matches!(self, OpKind::Comment(_) | OpKind::Upload { .. })
    }
}

/// One planned operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Stable key (see the module docs).
    pub op_key: String,
    /// Where it came from (`job.csv:12`).
    pub source: String,
    /// Target ticket as written.
    pub ticket: TicketRef,
    /// The target ticket's id when the producer already knows it (undo); else it is resolved
    /// from `ticket`.
    pub ticket_id: Option<Uuid>,
    /// A reason known before running that this operation cannot be done: it is recorded as
    /// failed and nothing is sent.
    pub blocked: Option<String>,
    /// What to do.
    pub kind: OpKind,
    /// What the producer adds (restore); empty for imports and undo.
    pub extra: OpExtra,
}

/// What a producer knows of an operation beyond the operation itself (restore).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpExtra {
    /// Found on the target before the run (the comment's or the document's id): recorded as
    /// `present`, nothing is sent.
    pub present: Option<Uuid>,
    /// A remark for the row's `error` column when the operation ends done (a changed name,
    /// how presence was found).
    pub note: String,
    /// More keys for the `metadata` of a created comment.
    pub metadata: Vec<(String, String)>,
}

/// Hashes recorded by an earlier run, by file path: reused when the file has not changed.
#[derive(Debug, Default, Clone)]
pub struct KnownHashes {
    by_path: HashMap<String, Known>,
    placeholder: bool,
}

#[derive(Debug, Clone)]
struct Known {
    bytes: u64,
    sha256: String,
    recorded: DateTime<Utc>,
}

/// A file modified less than this before a row was written is hashed again (coarse mtimes).
const MTIME_MARGIN: chrono::TimeDelta = chrono::TimeDelta::seconds(2);

impl KnownHashes {
    /// The hashes of uploads an earlier run finished (`created` or `existing` rows: their
    /// sha256 is that of the bytes the server holds, recorded when they were done).
    pub fn from_rows<'a>(rows: impl IntoIterator<Item = &'a ResultRow>) -> Self {
        let mut by_path = HashMap::new();
        for r in rows {
            if r.kind != "document" || !matches!(r.status, Status::Created | Status::Existing) {
                continue;
            }
            let (Ok(bytes), Ok(at)) = (
                r.bytes.parse::<u64>(),
                DateTime::parse_from_rfc3339(&r.finished_at),
            ) else {
                continue;
            };
            if r.sha256.len() != 64 || r.file.is_empty() {
                continue;
            }
            let known = Known {
                bytes,
                sha256: r.sha256.to_ascii_lowercase(),
                recorded: at.with_timezone(&Utc),
            };
            by_path.insert(r.file.clone(), known);
        }
        KnownHashes {
            by_path,
            placeholder: false,
        }
    }

    /// Hashes for a plan that only needs its tickets (the run will stop at the pre-flight):
    /// no file is read, every hash is empty.
    pub fn placeholder() -> Self {
        KnownHashes {
            by_path: HashMap::new(),
            placeholder: true,
        }
    }

    /// The recorded hash of `path`, when the file still has the recorded size and was last
    /// modified before the hash was recorded (less a margin for coarse clocks).
    fn lookup(&self, path: &Path) -> Option<String> {
        if self.placeholder {
            return Some(String::new());
        }
        let known = self.by_path.get(&path.display().to_string())?;
        let meta = std::fs::metadata(path).ok()?;
        let modified: DateTime<Utc> = meta.modified().ok()?.into();
        (meta.is_file() && meta.len() == known.bytes && modified + MTIME_MARGIN <= known.recorded)
            .then(|| known.sha256.clone())
    }
}

/// Plan every item of `job`, in job order. Attachments are hashed on blocking threads, a few
/// at once, unless `known` holds their hash; a `cancel` stops hashing (nothing is sent yet).
pub async fn plan(
    job: &Job,
    known: &KnownHashes,
    cancel: &CancellationToken,
) -> Result<Vec<Operation>> {
    let hashes = hash_attachments(job, known, cancel).await?;
    // Occurrences by a 16-byte digest of the content, not by the content itself: a large job
    // would otherwise hold a second copy of every comment here.
    let mut seen: HashMap<[u8; 16], u32> = HashMap::new();
    let mut ops = Vec::with_capacity(job.items.len());
    for item in &job.items {
        let kind = match &item.action {
            Action::Comment(c) => OpKind::Comment(c.clone()),
            Action::Upload(u) => OpKind::Upload {
                mime: guess_mime(&u.name),
                spec: u.clone(),
                sha256: hashes.get(&u.path).cloned().unwrap_or_default(),
                stream: None,
            },
        };
        let content = content_key(&item.ticket, &kind);
        let mut digest = [0u8; 16];
        digest.copy_from_slice(&Sha256::digest(content.as_bytes())[..16]);
        let n = seen.entry(digest).or_insert(0);
        *n += 1;
        ops.push(Operation {
            op_key: op_key(&content, *n, &kind),
            source: item.source.clone(),
            ticket: item.ticket.clone(),
            ticket_id: None,
            blocked: None,
            kind,
            extra: OpExtra::default(),
        });
    }
    Ok(ops)
}

/// The sha256 of every distinct attachment path of the job.
async fn hash_attachments(
    job: &Job,
    known: &KnownHashes,
    cancel: &CancellationToken,
) -> Result<HashMap<PathBuf, String>> {
    let mut hashes = HashMap::new();
    let mut todo = Vec::new();
    let mut seen: HashSet<&Path> = HashSet::new();
    for item in &job.items {
        if let Action::Upload(u) = &item.action {
            if !seen.insert(&u.path) {
                continue;
            }
            match known.lookup(&u.path) {
                Some(h) => {
                    hashes.insert(u.path.clone(), h);
                }
                None => todo.push(u.path.clone()),
            }
        }
    }
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8));
    let mut hashed = futures::stream::iter(todo)
        .map(|path| async move {
            let p = path.clone();
            let h = tokio::task::spawn_blocking(move || sha256_file(&p)).await;
            (path, h)
        })
        .buffer_unordered(parallel);
    loop {
        let next = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(Error::Interrupted),
            next = hashed.next() => next,
        };
        let Some((path, h)) = next else { break };
        let h = h.map_err(|e| Error::Fatal(format!("hashing task failed: {e}")))??;
        hashes.insert(path, h);
    }
    Ok(hashes)
}

/// The identity of an operation's content, before the occurrence number.
fn content_key(ticket: &TicketRef, kind: &OpKind) -> String {
    let t = match ticket {
        TicketRef::Id(id) => id.to_string(),
        TicketRef::Number(n) => n.to_uppercase(),
    };
    match kind {
        OpKind::Comment(c) => format!(
            "{t}\0comment\0{}\0{}\0{}",
            c.is_internal, c.is_resolution, c.text
        ),
        OpKind::Upload { spec, sha256, .. } => {
            format!("{t}\0document\0{}\0{}\0{sha256}", spec.name, spec.size)
        }
        OpKind::DeleteDocument { document, .. } => format!("{t}\0delete\0{document}"),
        OpKind::RedactComment { comment, .. } => format!("{t}\0redact\0{comment}"),
    }
}

/// `c-` or `d-` and 20 hex digits of sha256(content, occurrence).
fn op_key(content: &str, occurrence: u32, kind: &OpKind) -> String {
    let mut h = Sha256::new();
    h.update(content.as_bytes());
    h.update(format!("\0#{occurrence}").as_bytes());
    let prefix = match kind.label() {
        "comment" => "c",
        _ => "d",
    };
    format!("{prefix}-{}", &hex::encode(h.finalize())[..20])
}

/// MIME type from the file name's extension (`application/octet-stream` when unknown).
pub fn guess_mime(name: &str) -> String {
    mime_guess::from_path(name)
        .first_or_octet_stream()
        .essence_str()
        .to_string()
}

/// Streamed sha256 of a file (hex). Blocking: call it from a blocking thread.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f =
        std::fs::File::open(path).map_err(|e| Error::io("cannot read attachment", path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| Error::io("cannot read attachment", path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests;
