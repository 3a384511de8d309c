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
    pub fn class(&self, idempotent: bool) -> RetryClass {
        match self {
            ApiError::Status { status, .. } => match status {
                401 => RetryClass::Fatal,
                429 | 503 => RetryClass::Retry,
                502 | 504 if idempotent => RetryClass::Retry,
                // A gateway error on a create may come after the server committed it (a proxy
                // gave up waiting): reconcile before sending again.
                502 | 504 => RetryClass::OutcomeUnknown,
                // A 500 from a create may follow a commit; GETs/DELETEs can be retried safely.
                500 if idempotent => RetryClass::Retry,
                _ => RetryClass::Permanent,
            },
            ApiError::Connect(_) => RetryClass::Retry,
            ApiError::NoResponse(_) | ApiError::Timeout(_) => {
                if idempotent {
                    RetryClass::Retry
                } else {
                    RetryClass::OutcomeUnknown
                }
            }
            ApiError::Decode(_) | ApiError::Local(_) | ApiError::Cancelled => RetryClass::Permanent,
        }
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
        for s in [429, 502, 503, 504] {
            assert_eq!(st(s).class(true), RetryClass::Retry, "{s}");
        }
        for s in [429, 503] {
            assert_eq!(st(s).class(false), RetryClass::Retry, "{s}");
        }
        for s in [502, 504] {
            assert_eq!(
                st(s).class(false),
                RetryClass::OutcomeUnknown,
                "{s}: reconcile first"
            );
        }
        for s in [400, 403, 404, 409, 405] {
            assert_eq!(st(s).class(true), RetryClass::Permanent, "{s}");
        }
        assert_eq!(st(401).class(true), RetryClass::Fatal);
        assert_eq!(st(500).class(false), RetryClass::Permanent);
        assert_eq!(st(500).class(true), RetryClass::Retry);
        let lost = ApiError::NoResponse("reset".into());
        assert_eq!(lost.class(false), RetryClass::OutcomeUnknown);
        assert_eq!(lost.class(true), RetryClass::Retry);
        assert_eq!(
            ApiError::Connect("refused".into()).class(false),
            RetryClass::Retry
        );
    }
}
