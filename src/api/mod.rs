//! The Alga PSA HTTP client: the only user of reqwest.
//!
//! Every attempt waits for a governor token and for the shared pause gate (set by a 429), then
//! sends exactly one request. Retrying is the executor's business (`exec::retry`), driven by
//! [`ApiError::class`].

mod budget;
mod client;
mod config;
mod error;
mod gate;
mod multipart;
mod response;
mod transfer;
mod types;

pub use budget::throttle_delay;
pub(crate) use client::track_sent;
pub use client::Client;
pub use config::{ApiKey, ClientConfig, ClientStats};
pub use error::{ApiError, RetryClass};
pub use transfer::{Downloaded, Uploaded};
pub use types::{
    Comment, DataEnvelope, Document, NewComment, Pagination, Ticket, TicketPage, TicketQuery,
};

/// Key under `metadata` where this tool stores a comment's op key.
pub const METADATA_OP_KEY: &str = "alga_batch_op";
