//! The Alga PSA HTTP client: the only user of reqwest.
//!
//! Every attempt waits at one gate shared by all workers (`gate.rs`: the pause set by a 429,
//! a governor token, and the reserve kept in the server's bucket, `budget.rs`, which refills at
//! the rate learned from the server's answers, `rate.rs` and `throttle.rs`), then sends
//! exactly one request (`client.rs`; streamed uploads and downloads in `transfer.rs` and
//! `multipart.rs`; a download is a stream of chunks: nothing here writes files) and maps the
//! answer (`response.rs`). Retrying is the executor's business (`exec::retry`), driven by
//! [`ApiError::class`]. The API key lives in [`ApiKey`] and never prints.

mod budget;
mod client;
mod config;
mod error;
mod gate;
mod limiter;
mod multipart;
mod rate;
mod response;
mod throttle;
mod transfer;
mod types;

pub use budget::throttle_delay;
pub(crate) use client::track_sent;
pub use client::Client;
pub use config::{ApiKey, ClientConfig, ClientStats, Concurrency};
pub use error::{ApiError, RetryClass, NOTHING_STORED};
pub use limiter::{
    Limiter, LimiterConfig, Limiters, Outcome as LimitOutcome, Permit, RequestClass,
};
pub use multipart::UploadBytes;
pub use transfer::{Download, StreamSource, UploadSource, Uploaded};
pub use types::{
    Comment, DataEnvelope, Document, NewComment, Pagination, Ticket, TicketPage, TicketQuery,
};

/// Key under `metadata` where this tool stores a comment's op key.
pub const METADATA_OP_KEY: &str = "alga_batch_op";
