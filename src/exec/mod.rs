//! Running operations: bounded concurrency, per-ticket comment order, the retry policy,
//! reconciliation of lost responses, two-stage cancellation, the server's health, and progress.

mod cancel;
mod create;
mod executor;
mod health;
mod idempotent;
mod lanes;
mod progress;
mod reconcile;
pub mod resolve;
pub mod retry;

pub use cancel::Cancel;
pub use executor::{
    base_row, execute, set_found_id, ExecConfig, ExecFatal, ExecOutcome, Prior, Task,
};
pub use health::{Health, UNREACHABLE_STREAK};
pub use progress::{Progress, ProgressMode};
pub use reconcile::Reconciler;
