//! Placeholder of the retry policy (being built on the `api` branch).
#![allow(missing_docs, dead_code, unused_variables)]
use crate::api::{ApiError, Client, RetryClass};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub base: Duration,
    pub max_delay: Duration,
}
pub struct Attempted<T> {
    pub result: Result<T, ApiError>,
    pub attempts: u32,
    pub class: Option<RetryClass>,
}
pub async fn with_retries<T, F, Fut>(
    client: &Client,
    policy: &RetryPolicy,
    idempotent: bool,
    cancel: &CancellationToken,
    mut attempt: F,
) -> Attempted<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    let result = attempt().await;
    let class = result.as_ref().err().map(|e| e.class(idempotent));
    Attempted {
        result,
        attempts: 1,
        class,
    }
}
