//! The one rule for errors that stop a whole run, and the check that a server is there.

use crate::api::{ApiError, Client, RetryClass};
use crate::error::{Error, Result};
use crate::exec::retry::{with_retries, RetryPolicy};
use crate::exec::{Cancel, ExecFatal, Health};

/// A run-level error from an API error that stopped everything: a rejected key (exit 3), a
/// server that could not be reached (exit 3), anything else fatal (exit 3).
pub fn fatal_from(client: &Client, e: ApiError) -> Error {
    match (&e, e.class(true)) {
        (_, RetryClass::Fatal) => Error::Unauthorized(e.one_line()),
        (
            ApiError::Connect(reason) | ApiError::Timeout(reason) | ApiError::NoResponse(reason),
            _,
        ) => Error::Unreachable {
            url: client.base_url().to_string(),
            reason: reason.clone(),
        },
        _ => Error::Fatal(e.one_line()),
    }
}

/// The run-level error for why the executor stopped.
pub fn exec_fatal(client: &Client, f: ExecFatal, results: &std::path::Path) -> Error {
    match f {
        ExecFatal::Rejected(e) | ExecFatal::Unreachable(e) => fatal_from(client, e),
        ExecFatal::Forbidden(e) => Error::Forbidden(e.one_line()),
        ExecFatal::Throttled(e) => Error::Fatal(format!(
            "the server kept answering 429 for longer than --max-wait allows ({}); nothing more \
             was sent: run again later with the same --results, or raise --max-wait",
            e.one_line()
        )),
        ExecFatal::Journal(e) => Error::Fatal(format!(
            "{e} ({}); nothing more was sent, and the next run reconciles what was in flight",
            results.display()
        )),
    }
}

/// Whether `e`, ending an item after its retries, means the run must stop at once: a
/// rejected key. (A server that stopped answering is judged over several items by
/// [`Health`].)
pub fn is_fatal_now(e: &ApiError) -> bool {
    e.class(true) == RetryClass::Fatal
}

/// Check that the server answers at all (exit 3 rather than failing every item in turn).
pub(super) async fn preflight(
    client: &Client,
    policy: &RetryPolicy,
    cancel: &Cancel,
) -> Result<()> {
    let attempted = with_retries(client, policy, true, &cancel.hard, || client.health()).await;
    match attempted.result {
        Ok(()) => Ok(()),
        Err(ApiError::Cancelled) => Err(Error::Interrupted),
        Err(e) if Health::is_unreachable(&e) => Err(fatal_from(client, e)),
        Err(ApiError::Status { status: 404, .. }) => Err(Error::Fatal(format!(
            "no Alga PSA API at {}: /api/health answered 404 (check --base-url: it is the server's root, without /api)",
            client.base_url()
        ))),
        // Some proxies do not route /api/health: only "nobody there" is fatal here.
        Err(_) => Ok(()),
    }
}
