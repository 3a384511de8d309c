//! Backups and scheduled exports: every document (and optionally every comment) of the
//! selected tickets into a backup store (`store/`: a local folder or an S3 bucket),
//! incrementally, safely named, with a manifest that records each document as it completes.
//!
//! ```text
//! select (named tickets | paged list) -> per ticket: list documents -> skip intact ones
//!   -> download into a staged object (size and sha256 checked) -> journal the manifest row
//!   -> commit the object under <ticket>/<name>; comments -> <ticket>/comments.jsonl
//!   -> at the end: manifest.csv (journal folded in), comments.csv
//! ```
//! The store is locked for the whole run.

mod backup;
pub mod comments;
mod download;
mod options;
pub mod report;
pub mod resume;
pub mod select;
mod ticket;

pub use backup::{back_up_into, run_backup};
pub use options::{
    check_utc, load_job, parse_duration, read_tickets_file, BackupOptions, ExportSpec, Selection,
};
pub use report::{estimate, BackupSummary};
