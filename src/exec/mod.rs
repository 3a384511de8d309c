//! Running operations: bounded concurrency, per-ticket comment order, the retry policy,
//! reconciliation of lost responses, two-stage cancellation, and progress.

mod cancel;
mod executor;
mod lanes;
pub mod limiter;
mod progress;
mod reconcile;
pub mod resolve;
pub mod retry;

pub use cancel::Cancel;
pub use executor::{base_row, execute, ExecConfig, ExecFatal, ExecOutcome, Prior, Task};
pub use progress::{Progress, ProgressMode};
pub use reconcile::Reconciler;
