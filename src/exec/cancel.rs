//! Two-stage stop: `soft` stops scheduling, `hard` aborts what is in flight. The runner
//! connects them to Ctrl-C/SIGTERM and to time budgets.

use tokio_util::sync::CancellationToken;

/// The two cancellation stages shared by every worker.
#[derive(Clone, Default, Debug)]
pub struct Cancel {
    /// Start nothing new (first Ctrl-C, a fatal error, or a time budget).
    pub soft: CancellationToken,
    /// Abort in-flight requests now (second Ctrl-C).
    pub hard: CancellationToken,
}

impl Cancel {
    /// New, untriggered.
    pub fn new() -> Self {
        Self::default()
    }
}
