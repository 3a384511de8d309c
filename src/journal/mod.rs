//! The results CSV: the row type, the journal writer (the only writer of results files) and
//! the run summary.

mod outcome;
mod row;
mod summary;
mod writer;

pub use outcome::{FailClass, Outcome};
pub use row::{latest_by_key, now_rfc3339, read_rows, ReadError, ResultRow, Status, COLUMNS};
pub use summary::{per_second, Limits, Summary};
pub use writer::{open, write_atomic, Journal, JournalError, JournalHandle};
