//! One row of the results CSV, its statuses, and reading a results file back.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// The results CSV columns, in order.
pub const COLUMNS: [&str; 15] = [
    "op_key",
    "source",
    "ticket",
    "ticket_id",
    "kind",
    "status",
    "comment_id",
    "document_id",
    "file",
    "bytes",
    "sha256",
    "http_status",
    "attempts",
    "error",
    "finished_at",
];

/// Error text prefix that results files of earlier versions used for a create whose outcome
/// was unknown (status `failed` or `cancelled`). Read for compatibility: such rows are
/// reconciled like `unknown` ones. Never written.
const LEGACY_OUTCOME_UNKNOWN: &str = "outcome unknown";

/// Status of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created by this tool (this run or an earlier one).
    Created,
    /// Found on the server already (reconciled).
    Existing,
    /// Failed; see `error`.
    Failed,
    /// May or may not be on the server: reconciled before anything is sent again.
    Unknown,
    /// Dry run: would be sent.
    Planned,
    /// Not attempted (interrupted or stopped after a fatal error).
    Cancelled,
    /// Journal only: about to be sent. Never left in a finished results file.
    Sending,
    /// Undo: deleted.
    Deleted,
    /// Undo: already gone (404).
    Missing,
    /// Undo: the comment's text was replaced (`--redact-comments`).
    Redacted,
    /// Restore: on the target before the run (found by a check); nothing was sent, undo
    /// leaves it alone, and the next run checks again.
    Present,
}

impl Status {
    /// Nothing left to do: created or existing (a job), deleted, missing or redacted (an
    /// undo). Not `present`: what a restore found on its target is looked for again by the
    /// next run (it may have gone since, or have been seen only by a dry run).
    pub fn is_done(self) -> bool {
        matches!(
            self,
            Status::Created
                | Status::Existing
                | Status::Deleted
                | Status::Missing
                | Status::Redacted
        )
    }

    /// The CSV spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Existing => "existing",
            Status::Failed => "failed",
            Status::Unknown => "unknown",
            Status::Planned => "planned",
            Status::Cancelled => "cancelled",
            Status::Sending => "sending",
            Status::Deleted => "deleted",
            Status::Missing => "missing",
            Status::Redacted => "redacted",
            Status::Present => "present",
        }
    }
}

/// One results row. Field order is the column order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultRow {
    /// Stable operation key.
    pub op_key: String,
    /// `jobfile:line` or a TOML locator.
    pub source: String,
    /// The ticket as written in the job.
    pub ticket: String,
    /// The resolved ticket UUID (empty when unresolved).
    pub ticket_id: String,
    /// `comment` or `document`.
    pub kind: String,
    /// Latest status.
    pub status: Status,
    /// New (or found) comment id.
    pub comment_id: String,
    /// New (or found) document id.
    pub document_id: String,
    /// Attachment path (documents).
    pub file: String,
    /// Bytes uploaded (documents).
    pub bytes: String,
    /// sha256 of the uploaded bytes (documents).
    pub sha256: String,
    /// Last HTTP status seen (empty when no answer).
    pub http_status: String,
    /// HTTP attempts made.
    pub attempts: u32,
    /// One-line error.
    pub error: String,
    /// RFC 3339 UTC time the row was written.
    pub finished_at: String,
}

impl ResultRow {
    /// Whether a create for this row may have reached the server without its answer
    /// being recorded: status `unknown`, or a `sending` intent left by a crash (or, in files
    /// of earlier versions, a failed/cancelled row marked "outcome unknown"). Such rows are
    /// reconciled before anything is sent again.
    pub fn outcome_unknown(&self) -> bool {
        match self.status {
            Status::Unknown | Status::Sending => true,
            Status::Failed | Status::Cancelled => self.error.starts_with(LEGACY_OUTCOME_UNKNOWN),
            _ => false,
        }
    }
}

/// Problems reading a results file.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not readable.
    #[error("cannot read {path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Header differs from [`COLUMNS`].
    #[error(
        "{path} is not a results file of alga-batch: expected columns {expected}, found {found}"
    )]
    WrongColumns {
        /// File.
        path: String,
        /// Expected header.
        expected: String,
        /// Found header.
        found: String,
    },
    /// A row does not parse.
    #[error("{path}:{line}: bad results row: {message}")]
    BadRow {
        /// File.
        path: String,
        /// Line.
        line: u64,
        /// Cause.
        message: String,
    },
}

/// Read every row of a results file, in file order (a journal may hold several rows per op).
/// A torn last line (no trailing newline: the process died mid-write) is ignored.
pub fn read_rows(path: &Path) -> Result<Vec<ResultRow>, ReadError> {
    let p = path.display().to_string();
    let mut bytes = std::fs::read(path).map_err(|source| ReadError::Io {
        path: p.clone(),
        source,
    })?;
    if !bytes.ends_with(b"\n") {
        let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        bytes.truncate(keep);
    }
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut rdr = csv::ReaderBuilder::new().from_reader(bytes.as_slice());
    let bad = |line: u64, message: String| ReadError::BadRow {
        path: p.clone(),
        line,
        message,
    };
    let headers = rdr.headers().map_err(|e| bad(1, e.to_string()))?.clone();
    if headers.iter().collect::<Vec<_>>() != COLUMNS {
        return Err(ReadError::WrongColumns {
            path: p.clone(),
            expected: COLUMNS.join(","),
            found: headers.iter().collect::<Vec<_>>().join(","),
        });
    }
    let mut rows = Vec::new();
    for rec in rdr.deserialize::<ResultRow>() {
        let row = rec.map_err(|e| bad(e.position().map_or(0, |q| q.line()), e.to_string()))?;
        rows.push(row);
    }
    Ok(rows)
}

/// The latest row of each op key, and the order in which keys first appeared.
pub fn latest_by_key(rows: Vec<ResultRow>) -> (HashMap<String, ResultRow>, Vec<String>) {
    let mut order = Vec::new();
    let mut map: HashMap<String, ResultRow> = HashMap::new();
    for r in rows {
        if !map.contains_key(&r.op_key) {
            order.push(r.op_key.clone());
        }
        map.insert(r.op_key.clone(), r);
    }
    (map, order)
}

/// Now, RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
