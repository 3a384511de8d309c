//! Job files: the raw spec as users write it (CSV or TOML), and the validated [`Job`].
//!
//! `load_and_validate` reports every problem at once, each naming file, line and column.
//! Nothing downstream takes anything but a validated `Job`.
//!
//! Data flow: the readers (`csv_job`, `toml_job`, `source`, over the streaming `csv_parse`)
//! hand each raw row to the `validate::Validator` as soon as it is parsed; the validator
//! checks it and keeps its items (a run: [`load_partial`]) or only counts them (`validate`:
//! [`check`]). Neither the file nor its rows are held whole; the problem list is bounded
//! ([`MAX_PER_KIND`] of each kind, then a count).

mod csv_job;
mod csv_parse;
mod duplicates;
mod load;
mod problems;
mod raw;
mod source;
mod spec;
mod split;
mod template;
mod text;
mod toml_job;
mod validate;

pub use load::{check, load_and_validate, load_partial};
pub use problems::{describe, MAX_PER_KIND};
pub use split::server_len;
pub(crate) use split::split_comment;

use std::path::PathBuf;
use uuid::Uuid;

/// A ticket reference as written in a job: a UUID, or a ticket number to resolve.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TicketRef {
    /// Used as is.
    Id(Uuid),
    /// Resolved with the list endpoint (exact, case-insensitive match).
    Number(String),
}

impl TicketRef {
    /// Parse a cell: a UUID (any case) or else a ticket number (trimmed).
    pub fn parse(s: &str) -> Option<TicketRef> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        match Uuid::parse_str(s) {
            Ok(id) if s.len() == 36 => Some(TicketRef::Id(id)),
            _ => Some(TicketRef::Number(s.to_string())),
        }
    }
}

impl std::fmt::Display for TicketRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TicketRef::Id(id) => write!(f, "{id}"),
            TicketRef::Number(n) => f.write_str(n),
        }
    }
}

/// A comment to post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentSpec {
    /// Text after templating (1..=5000 characters).
    pub text: String,
    /// Internal note.
    pub is_internal: bool,
    /// Resolution flag.
    pub is_resolution: bool,
}

/// A file to upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSpec {
    /// Absolute or job-relative-resolved path of the file on disk.
    pub path: PathBuf,
    /// Name to send (the file name, UTF-8).
    pub name: String,
    /// Size in bytes at validation time.
    pub size: u64,
}

/// What one job item does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Post a comment.
    Comment(CommentSpec),
    /// Upload a file.
    Upload(UploadSpec),
}

/// One operation as written in the job, in job order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobItem {
    /// `jobfile:line` for CSV jobs, a readable locator for TOML (`demo.toml:tickets[2].comments[0]`).
    pub source: String,
    /// Target ticket.
    pub ticket: TicketRef,
    /// What to do.
    pub action: Action,
}

/// Settings a job file may carry (command-line flags override them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobSettings {
    /// Base URL of the server.
    pub base_url: Option<String>,
    /// Operations in flight.
    pub concurrency: Option<usize>,
    /// Requests per minute.
    pub rate_per_minute: Option<u32>,
    /// Burst size.
    pub burst: Option<u32>,
    /// Retries per attempt chain.
    pub max_retries: Option<u32>,
    /// Results CSV path, as written joined onto the job file's folder.
    pub results: Option<PathBuf>,
    /// Send notifications to contacts (default false).
    pub notify: Option<bool>,
}

/// A validated import job.
#[derive(Debug, Clone)]
pub struct Job {
    /// Name (TOML `name`, else the file stem).
    pub name: String,
    /// The job file.
    pub path: PathBuf,
    /// Settings from the file.
    pub settings: JobSettings,
    /// Operations in job order.
    pub items: Vec<JobItem>,
}

/// What [`check`] learns about a valid job without keeping its items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobCheck {
    /// Name (TOML `name`, else the file stem).
    pub name: String,
    /// Operations the job would plan (comments, their parts, and uploads).
    pub operations: usize,
}

/// What validation found: the problems listed, in the order found (at most
/// [`MAX_PER_KIND`] of each kind, then one line per kind counting the rest), and the totals,
/// listed or not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    /// The problems listed.
    pub problems: Vec<Problem>,
    /// Errors found, listed or not.
    pub errors: usize,
    /// Warnings found, listed or not.
    pub warnings: usize,
}

/// Severity of a validation finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Blocks the run.
    Error,
    /// Reported, does not block.
    Warning,
}

/// One validation finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// `file:line:column` (column by name when known: `file:12: column attachments`).
    pub location: String,
    /// Lowercase message.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}: {sev}: {}", self.location, self.message)
    }
}

/// Options for validation.
#[derive(Debug, Clone)]
pub struct ValidateOptions {
    /// Split comments over 5,000 characters into numbered parts instead of failing.
    pub split_long_comments: bool,
    /// Largest file accepted for upload (default 100 MB, the real server's proxy cap).
    pub max_upload_bytes: u64,
}

impl Default for ValidateOptions {
    fn default() -> Self {
        ValidateOptions {
            split_long_comments: false,
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
        }
    }
}

/// 100 MB: the real server's proxy buffer.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 100 * 1024 * 1024;
/// The server's limit on visible comment characters.
pub const MAX_COMMENT_CHARS: usize = 5000;

#[cfg(test)]
mod tests;
