//! Raw rows: the units of work as the readers find them in CSV jobs, TOML jobs and exports,
//! before validation, and the cell values the readers share (booleans). The readers hand each
//! row to a [`RowSink`] as soon as it is read, so a large job is never held as rows.

use std::path::PathBuf;
use std::rc::Rc;

use super::TicketRef;

/// A comment as read, before trimming and length checks.
#[derive(Debug, Clone)]
pub(crate) struct RawComment {
    /// Item source (`jobfile:line` or a TOML locator).
    pub(crate) source: String,
    /// Problem location.
    pub(crate) loc: String,
    /// Text after templating, untrimmed.
    pub(crate) text: String,
    /// Internal note.
    pub(crate) is_internal: bool,
    /// Resolution flag.
    pub(crate) is_resolution: bool,
}

/// An attachment as written, with its path resolved.
#[derive(Debug, Clone)]
pub(crate) struct RawAttachment {
    /// Item source.
    pub(crate) source: String,
    /// Problem location.
    pub(crate) loc: String,
    /// The path as written in the job.
    pub(crate) written: String,
    /// The path resolved against its base folder.
    pub(crate) path: PathBuf,
}

/// Where a row is, for row-level findings. A CSV row is a file and a line, so that the
/// duplicate detector can remember it in a few bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RowLoc {
    /// `file:line`: a row of a CSV job or of an export.
    Line {
        /// The file's name (shared by its rows).
        file: Rc<str>,
        /// 1-based physical line where the row starts.
        line: usize,
    },
    /// A TOML locator (`demo.toml:14: tickets[2].comments[0]`).
    Text(String),
}

impl std::fmt::Display for RowLoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RowLoc::Line { file, line } => write!(f, "{file}:{line}"),
            RowLoc::Text(t) => f.write_str(t),
        }
    }
}

/// One unit of work as written: a CSV row, a source row, an inline comment.
#[derive(Debug, Clone)]
pub(crate) struct RawRow {
    /// Where the row is, for row-level findings.
    pub(crate) loc: RowLoc,
    /// Target ticket; `None` when missing or unresolvable (already reported).
    pub(crate) ticket: Option<TicketRef>,
    /// The comment, if the row has text.
    pub(crate) comment: Option<RawComment>,
    /// Attachments in order.
    pub(crate) attachments: Vec<RawAttachment>,
}

/// Where the readers put each row as they read it: the validator, or (in tests) a list.
pub(crate) trait RowSink {
    /// Take one row, in job order.
    fn row(&mut self, row: RawRow);
}

impl RowSink for Vec<RawRow> {
    fn row(&mut self, row: RawRow) {
        self.push(row);
    }
}

/// Parse a boolean cell: true/false/yes/no/1/0 (any case); empty is false.
pub(crate) fn parse_bool(cell: &str) -> Option<bool> {
    let cell = cell.trim();
    let is = |words: [&str; 3]| words.iter().any(|w| cell.eq_ignore_ascii_case(w));
    if cell.is_empty() || is(["false", "no", "0"]) {
        Some(false)
    } else if is(["true", "yes", "1"]) {
        Some(true)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans() {
        for (s, v) in [
            ("TRUE", true),
            ("yes", true),
            ("1", true),
            (" No ", false),
            ("", false),
            ("0", false),
        ] {
            assert_eq!(parse_bool(s), Some(v), "{s}");
        }
        assert_eq!(parse_bool("maybe"), None);
        assert_eq!(parse_bool("2"), None);
    }
}
