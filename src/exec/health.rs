//! Is the server still there? The one rule every command uses to stop a run whose server has
//! gone: a few operations in a row that ended, after their retries, without reaching it.

use crate::api::ApiError;
use std::sync::atomic::{AtomicU32, Ordering};

/// Operations in a row that ended with "no connection" before the server counts as gone.
pub const UNREACHABLE_STREAK: u32 = 3;

/// Counts operations that end without reaching the server; any answer resets the count.
#[derive(Debug, Default)]
pub struct Health {
    streak: AtomicU32,
}

impl Health {
    /// A fresh tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether an error (after its retries) means the server could not be reached at all: no
    /// connection, or no answer in time.
    pub fn is_unreachable(e: &ApiError) -> bool {
        matches!(
            e,
            ApiError::Connect(_) | ApiError::Timeout(_) | ApiError::NoResponse(_)
        )
    }

    /// The server answered (anything, even an error status).
    pub fn answered(&self) {
        self.streak.store(0, Ordering::Relaxed);
    }

    /// Note how an operation ended; true when this makes the server count as gone (the run
    /// must stop).
    pub fn note(&self, e: &ApiError) -> bool {
        if matches!(e, ApiError::Cancelled) {
            return false;
        }
        if !Self::is_unreachable(e) {
            self.answered();
            return false;
        }
        self.streak.fetch_add(1, Ordering::Relaxed) + 1 >= UNREACHABLE_STREAK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streak_of_unreachable_operations_is_fatal_and_any_answer_resets_it() {
        let h = Health::new();
        let gone = ApiError::Connect("refused".into());
        let answered = ApiError::Status {
            status: 503,
            code: None,
            message: String::new(),
            retry_after: None,
        };
        assert!(!h.note(&gone));
        assert!(!h.note(&ApiError::Timeout("slow".into())));
        assert!(!h.note(&answered), "an answer resets the streak");
        assert!(!h.note(&gone));
        assert!(!h.note(&ApiError::Cancelled), "a stop says nothing");
        assert!(!h.note(&gone));
        assert!(h.note(&ApiError::NoResponse("reset".into())));
    }
}
