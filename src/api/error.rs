//! Errors of one API attempt, and how each one is classified for retrying.

use std::time::Duration;

/// What went wrong with one HTTP attempt.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// The server answered with a non-success status.
    #[error("http {status}{}: {message}", code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())]
    Status {
        /// HTTP status.
        status: u16,
        /// `error.code` of the envelope, when there was one.
        code: Option<String>,
        /// `error.message`, or the raw body (one line, shortened).
        message: String,
        /// `Retry-After` (429/503), when given.
        retry_after: Option<Duration>,
    },
    /// No connection could be made; the request was certainly not sent.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The request may have reached the server, but no (complete) answer came back.
    /// For a create this means the outcome is unknown.
    #[error("no response (outcome unknown): {0}")]
    NoResponse(String),
    /// The attempt timed out (the server may still commit it).
    #[error("timed out (outcome unknown): {0}")]
    Timeout(String),
    /// The answer could not be understood.
    #[error("unexpected response: {0}")]
    Decode(String),
    /// A local file problem (upload source, download target).
    #[error("{0}")]
    Local(String),
    /// The attempt was cancelled (hard stop).
    #[error("cancelled")]
    Cancelled,
}

/// The statuses whose answer to a create proves that nothing was stored: the request was
/// refused before anything was written. Any other answer to a create may follow a commit.
pub const NOTHING_STORED: [u16; 7] = [400, 401, 403, 404, 413, 415, 422];

/// How the executor should treat an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// Try again after backoff (or after the server's `Retry-After`).
    Retry,
    /// The create may have happened: do not re-send blindly.
    OutcomeUnknown,
    /// Stop the whole run (401: the key is wrong).
    Fatal,
    /// Give up on this operation only.
    Permanent,
}

impl ApiError {
    /// HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Classify for retrying. `idempotent` is false for creates (POST).
    ///
    /// For a create, only an answer that proves nothing was stored ([`NOTHING_STORED`]) is a
    /// plain failure, and a 429 (the limiter answers before the handler runs) or a refused
    /// connection may simply be retried. Every other outcome (any 5xx, another status, an
    /// unreadable 2xx, a timeout, a reset) leaves it unknown whether the server stored it:
    /// reconcile before sending again.
    pub fn class(&self, idempotent: bool) -> RetryClass {
        match self {
            ApiError::Status { status, .. } => match *status {
                401 => RetryClass::Fatal,
                429 => RetryClass::Retry,
                s if NOTHING_STORED.contains(&s) => RetryClass::Permanent,
                500 | 502 | 503 | 504 if idempotent => RetryClass::Retry,
                _ if idempotent => RetryClass::Permanent,
                _ => RetryClass::OutcomeUnknown,
            },
            ApiError::Connect(_) => RetryClass::Retry,
            ApiError::NoResponse(_) | ApiError::Timeout(_) | ApiError::Decode(_) if !idempotent => {
                RetryClass::OutcomeUnknown
            }
            ApiError::NoResponse(_) | ApiError::Timeout(_) => RetryClass::Retry,
            ApiError::Decode(_) | ApiError::Local(_) | ApiError::Cancelled => RetryClass::Permanent,
        }
    }

    /// Whether the answer proves the server stored nothing (see [`NOTHING_STORED`]).
    pub fn proves_nothing_stored(&self) -> bool {
        self.status().is_some_and(|s| NOTHING_STORED.contains(&s))
    }

    /// The server's requested delay, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A one-line message for results rows.
    pub fn one_line(&self) -> String {
        self.to_string().replace(['\r', '\n'], " ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(status: u16) -> ApiError {
        ApiError::Status {
            status,
            code: None,
            message: String::new(),
            retry_after: None,
        }
    }

    #[test]
    fn classification_follows_the_retry_rules() {
        for s in [429, 500, 502, 503, 504] {
            assert_eq!(st(s).class(true), RetryClass::Retry, "{s}");
        }
        assert_eq!(
            st(429).class(false),
            RetryClass::Retry,
            "the limiter answers first"
        );
        for s in [500, 502, 503, 504, 409, 405, 408, 301, 418] {
            assert_eq!(
                st(s).class(false),
                RetryClass::OutcomeUnknown,
                "{s}: a create may have been stored; reconcile first"
            );
        }
        for s in [400, 403, 404, 413, 415, 422] {
            assert_eq!(st(s).class(false), RetryClass::Permanent, "{s}");
            assert!(st(s).proves_nothing_stored());
        }
        for s in [400, 403, 404, 409, 405] {
            assert_eq!(st(s).class(true), RetryClass::Permanent, "{s}");
        }
        assert_eq!(st(401).class(true), RetryClass::Fatal);
        assert_eq!(st(401).class(false), RetryClass::Fatal);
        for e in [
            ApiError::NoResponse("reset".into()),
            ApiError::Timeout("slow".into()),
            ApiError::Decode("cannot read created comment".into()),
        ] {
            assert_eq!(e.class(false), RetryClass::OutcomeUnknown, "{e}");
        }
        assert_eq!(
            ApiError::NoResponse("reset".into()).class(true),
            RetryClass::Retry
        );
        assert_eq!(
            ApiError::Connect("refused".into()).class(false),
            RetryClass::Retry
        );
        assert_eq!(
            ApiError::Local("unreadable".into()).class(false),
            RetryClass::Permanent
        );
    }
}
