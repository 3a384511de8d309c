//! Backups and scheduled exports: every document (and optionally every comment) of the
//! selected tickets into a folder, incrementally, safely named, with an atomic manifest.
//!
//! ```text
//! select (named tickets | paged list) -> per ticket: list documents -> skip intact ones
//!   -> download to DIR/<ticket>/.alga-batch-*.part -> check size -> rename
//!   -> manifest row; comments -> DIR/<ticket>/comments.jsonl -> DIR/comments.csv
//! ```
//! The folder is locked (`DIR/.alga-batch.lock`) for the whole run.

mod backup;
pub mod comments;
pub mod download;
pub mod lock;
pub mod manifest;
pub mod names;
mod options;
pub mod report;
pub mod resume;
pub mod select;
mod ticket;

pub use backup::run_backup;
pub use options::{check_utc, load_job, parse_duration, BackupOptions, ExportSpec, Selection};
pub use report::{estimate, BackupSummary};
