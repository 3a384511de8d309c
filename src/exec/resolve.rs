//! Placeholder of ticket-number resolution (being built on the `api` branch).
#![allow(missing_docs, dead_code, unused_variables)]
use super::retry::RetryPolicy;
use crate::api::{ApiError, Client};
use std::collections::HashMap;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
pub async fn resolve_tickets(
    client: &Client,
    policy: &RetryPolicy,
    numbers: &[String],
    cancel: &CancellationToken,
) -> Result<HashMap<String, Result<Uuid, String>>, ApiError> {
    Ok(HashMap::new())
}
