//! The TOML job file as users write it (serde types). Unknown keys are collected by
//! `serde_ignored` and reported as warnings; `toml::Spanned` keeps line numbers.

use serde::Deserialize;
use std::path::Path;
use toml::Spanned;

use super::problems::line_of;

/// The job file being read: its text (for line numbers), name and folder.
pub(crate) struct Ctx<'a> {
    pub(crate) text: &'a str,
    pub(crate) file: &'a str,
    pub(crate) dir: &'a Path,
}

impl Ctx<'_> {
    /// `demo.toml:14: tickets[2].comments[0]`: a problem location inside the job file.
    pub(crate) fn at<T>(&self, spanned: &Spanned<T>, path: &str) -> String {
        format!(
            "{}:{}: {path}",
            self.file,
            line_of(self.text, spanned.span().start)
        )
    }
}

/// A whole TOML job file.
#[derive(Debug, Deserialize)]
pub(crate) struct JobSpec {
    /// Job name (default: the file stem).
    pub(crate) name: Option<Spanned<String>>,
    /// `import` (default) or `export` (run by `backup --job`); checked before the rest is read.
    #[serde(rename = "kind")]
    _kind: Option<toml::Value>,
    /// Settings, all optional.
    #[serde(default)]
    pub(crate) settings: Option<Spanned<SettingsSpec>>,
    /// Inline work.
    #[serde(default)]
    pub(crate) tickets: Vec<Spanned<TicketSpec>>,
    /// Work from CSV exports of another helpdesk.
    #[serde(default)]
    pub(crate) sources: Vec<Spanned<SourceSpec>>,
}

/// `[settings]`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SettingsSpec {
    pub(crate) base_url: Option<Spanned<String>>,
    pub(crate) concurrency: Option<Spanned<usize>>,
    pub(crate) rate_per_minute: Option<Spanned<u32>>,
    pub(crate) burst: Option<Spanned<u32>>,
    pub(crate) max_retries: Option<u32>,
    pub(crate) results: Option<String>,
    pub(crate) notify: Option<bool>,
}

/// `[[tickets]]`: one ticket with comments then attachments.
#[derive(Debug, Deserialize)]
pub(crate) struct TicketSpec {
    /// Ticket number or UUID.
    pub(crate) ticket: Option<Spanned<String>>,
    /// `[[tickets.comments]]`, posted in order.
    #[serde(default)]
    pub(crate) comments: Vec<Spanned<CommentEntry>>,
    /// Paths relative to the job file's folder.
    #[serde(default)]
    pub(crate) attachments: Vec<Spanned<String>>,
}

/// `[[tickets.comments]]`.
#[derive(Debug, Deserialize)]
pub(crate) struct CommentEntry {
    #[serde(default)]
    pub(crate) text: String,
    #[serde(default)]
    pub(crate) is_internal: bool,
    #[serde(default)]
    pub(crate) is_resolution: bool,
}

/// `[[sources]]`: a CSV export from another helpdesk.
#[derive(Debug, Deserialize)]
pub(crate) struct SourceSpec {
    /// The export, relative to the job file's folder.
    pub(crate) path: Spanned<String>,
    /// Which columns hold what.
    pub(crate) columns: Spanned<ColumnsSpec>,
    /// Comment template; placeholders are source column names.
    pub(crate) template: Option<Spanned<String>>,
    /// CSV mapping external ticket ids to Alga tickets (first two columns).
    pub(crate) ticket_map: Option<Spanned<String>>,
    /// Folder holding the attachments named in the export (default: the export's folder).
    pub(crate) attachments_dir: Option<Spanned<String>>,
    /// Separator between attachment names in one cell (default `;`).
    pub(crate) attachment_separator: Option<Spanned<String>>,
}

/// `[sources.columns]`: source column names (not positions).
#[derive(Debug, Deserialize)]
pub(crate) struct ColumnsSpec {
    pub(crate) ticket: Spanned<String>,
    pub(crate) body: Spanned<String>,
    pub(crate) author: Option<Spanned<String>>,
    pub(crate) created: Option<Spanned<String>>,
    pub(crate) internal: Option<Spanned<String>>,
    /// Cell value meaning internal (case-insensitive); unset: the cell is a boolean.
    pub(crate) internal_value: Option<String>,
    pub(crate) resolution: Option<Spanned<String>>,
    pub(crate) attachments: Option<Spanned<String>>,
}

/// Keys each table accepts, for suggestions on unknown keys (by the table's key name).
pub(crate) fn known_keys(table: &str) -> &'static [&'static str] {
    match table {
        "" => &["name", "kind", "settings", "tickets", "sources"],
        "settings" => &[
            "base_url",
            "concurrency",
            "rate_per_minute",
            "burst",
            "max_retries",
            "results",
            "notify",
        ],
        "tickets" => &["ticket", "comments", "attachments"],
        "comments" => &["text", "is_internal", "is_resolution"],
        "sources" => &[
            "path",
            "columns",
            "template",
            "ticket_map",
            "attachments_dir",
            "attachment_separator",
        ],
        "columns" => &[
            "ticket",
            "body",
            "author",
            "created",
            "internal",
            "internal_value",
            "resolution",
            "attachments",
        ],
        _ => &[],
    }
}
