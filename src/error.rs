//! Top-level error type and the documented exit codes.
//!
//! A failed operation is data (a results row), never an `Error`; only run-level failures end
//! up here, and each maps to one of the exit codes below.

use std::path::PathBuf;

/// Every operation was created or already existed.
pub const EXIT_OK: u8 = 0;
/// Some operations failed or were cancelled; the results CSV is complete and valid.
pub const EXIT_SOME_FAILED: u8 = 1;
/// Invalid usage or job file; nothing was sent.
pub const EXIT_USAGE: u8 = 2;
/// Fatal: key rejected, server unreachable, results file unwritable.
pub const EXIT_FATAL: u8 = 3;
/// Another run holds the lock on the output folder or the results file.
pub const EXIT_LOCKED: u8 = 4;
/// Interrupted by Ctrl-C.
pub const EXIT_INTERRUPTED: u8 = 130;

/// A run-level failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad command-line usage or a bad job file.
    #[error("{0}")]
    Usage(String),
    /// The job file has errors (already reported one by one).
    #[error("job has {0} error(s); nothing was sent")]
    InvalidJob(usize),
    /// The server rejected the API key.
    #[error("the server rejected the API key (401 {0}): check ALGA_API_KEY or --api-key-file, and --tenant")]
    Unauthorized(String),
    /// The key may not write to tickets (a 403 answer to a create).
    #[error("the server refused to create with this API key (403 {0}): its user may not update tickets; use a key whose user may")]
    Forbidden(String),
    /// The server could not be reached at all.
    #[error("server unreachable at {url}: {reason}")]
    Unreachable {
        /// Base URL tried.
        url: String,
        /// Why.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("cannot write results file").
        action: &'static str,
        /// Which file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The output folder or the results file is locked by another run.
    #[error("{0}")]
    Locked(String),
    /// Another fatal problem.
    #[error("{0}")]
    Fatal(String),
    /// Stopped by Ctrl-C (or SIGTERM) before anything was sent.
    #[error("interrupted before anything was sent")]
    Interrupted,
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::InvalidJob(_) => EXIT_USAGE,
            Error::Locked(_) => EXIT_LOCKED,
            Error::Interrupted => EXIT_INTERRUPTED,
            Error::Unauthorized(_)
            | Error::Forbidden(_)
            | Error::Unreachable { .. }
            | Error::Io { .. }
            | Error::Fatal(_) => EXIT_FATAL,
        }
    }

    /// Shorthand for an I/O error with context.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// Result alias for run-level operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
