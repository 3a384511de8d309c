//! Reconciliation: finding out whether a create whose outcome is unknown reached the server.
//!
//! Comments are found by the op key stored in their `metadata`; documents by name and size
//! among the ticket's documents that no other operation has claimed. Listings made for a
//! resumed run are cached per ticket (one comment listing and one document listing per
//! affected ticket); a lost response inside a run is checked with a fresh listing.

use super::retry::{with_retries, RetryPolicy};
use crate::api::{ApiError, Client, Comment, Document};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Page size for comment listings (the server's maximum).
const COMMENT_PAGE: u32 = 200;

type Cell<T> = Arc<OnceCell<Result<T, ApiError>>>;

/// Shared reconciliation state of one run.
#[derive(Default)]
pub struct Reconciler {
    comments: Mutex<HashMap<Uuid, Cell<HashMap<String, Uuid>>>>,
    documents: Mutex<HashMap<Uuid, Cell<Vec<Document>>>>,
    claimed: Mutex<HashSet<Uuid>>,
}

/// What to match a document by.
pub struct DocumentProbe<'a> {
    /// Name as uploaded.
    pub name: &'a str,
    /// Size in bytes.
    pub size: u64,
    /// When the create was about to be sent: a document older than this (less a margin for
    /// clock skew) was on the ticket before and is not ours.
    pub since: Option<DateTime<Utc>>,
}

/// Allowed difference between our clock and the server's.
const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

impl DocumentProbe<'_> {
    /// Same name and size, and not older than the attempt.
    fn matches(&self, d: &Document) -> bool {
        if d.document_name != self.name || d.file_size != Some(self.size) {
            return false;
        }
        let created = d
            .updated_at
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok());
        match (self.since, created) {
            (Some(since), Some(created)) => created.with_timezone(&Utc) >= since - CLOCK_SKEW,
            _ => true,
        }
    }
}

impl Reconciler {
    /// Start with the documents already recorded by earlier runs (never matched again).
    pub fn new(claimed: impl IntoIterator<Item = Uuid>) -> Self {
        Reconciler {
            claimed: Mutex::new(claimed.into_iter().collect()),
            ..Default::default()
        }
    }

    /// Remember a document as belonging to an operation.
    pub fn claim(&self, id: Uuid) {
        lock(&self.claimed).insert(id);
    }

    /// Look for a comment carrying `op_key`. `fresh` bypasses the per-ticket cache.
    pub async fn find_comment(
        &self,
        client: &Client,
        policy: &RetryPolicy,
        cancel: &CancellationToken,
        ticket: Uuid,
        op_key: &str,
        fresh: bool,
    ) -> Result<Option<Uuid>, ApiError> {
        if fresh {
            let map = list_comment_keys(client, policy, cancel, ticket).await?;
            return Ok(map.get(op_key).copied());
        }
        let cell = lock(&self.comments).entry(ticket).or_default().clone();
        let map = cell
            .get_or_init(|| list_comment_keys(client, policy, cancel, ticket))
            .await
            .as_ref()
            .map_err(Clone::clone)?;
        Ok(map.get(op_key).copied())
    }

    /// Look for an unclaimed document of the same name and size; claims it when found.
    pub async fn find_document(
        &self,
        client: &Client,
        policy: &RetryPolicy,
        cancel: &CancellationToken,
        ticket: Uuid,
        probe: DocumentProbe<'_>,
        fresh: bool,
    ) -> Result<Option<Uuid>, ApiError> {
        let docs = if fresh {
            list_documents(client, policy, cancel, ticket).await?
        } else {
            let cell = lock(&self.documents).entry(ticket).or_default().clone();
            cell.get_or_init(|| list_documents(client, policy, cancel, ticket))
                .await
                .as_ref()
                .map_err(Clone::clone)?
                .clone()
        };
        let mut claimed = lock(&self.claimed);
        let found = docs
            .iter()
            .find(|d| probe.matches(d) && !claimed.contains(&d.document_id));
        Ok(found.map(|d| {
            claimed.insert(d.document_id);
            d.document_id
        }))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// All comments of a ticket (paged by offset), as op key -> comment id.
async fn list_comment_keys(
    client: &Client,
    policy: &RetryPolicy,
    cancel: &CancellationToken,
    ticket: Uuid,
) -> Result<HashMap<String, Uuid>, ApiError> {
    let mut keys = HashMap::new();
    let mut offset = 0;
    loop {
        let page: Vec<Comment> = with_retries(client, policy, true, cancel, || {
            client.list_comments(ticket, COMMENT_PAGE, offset)
        })
        .await
        .result?;
        let n = page.len() as u32;
        for c in &page {
            if let Some(k) = c.op_key() {
                keys.insert(k.to_string(), c.comment_id);
            }
        }
        if n < COMMENT_PAGE {
            return Ok(keys);
        }
        offset += n;
    }
}

async fn list_documents(
    client: &Client,
    policy: &RetryPolicy,
    cancel: &CancellationToken,
    ticket: Uuid,
) -> Result<Vec<Document>, ApiError> {
    with_retries(client, policy, true, cancel, || {
        client.list_documents(ticket)
    })
    .await
    .result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(name: &str, size: u64, at: &str) -> Document {
        serde_json::from_value(serde_json::json!({
            "document_id": Uuid::new_v4(),
            "document_name": name,
            "file_size": size.to_string(),
            "updated_at": at,
        }))
        .unwrap()
    }

    #[test]
    fn documents_match_by_name_size_and_age() {
        let since = DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let probe = DocumentProbe {
            name: "a.txt",
            size: 5,
            since: Some(since),
        };
        assert!(probe.matches(&doc("a.txt", 5, "2026-11-28T10:00:01.000Z")));
        assert!(
            probe.matches(&doc("a.txt", 5, "2026-11-28T09:58:00.000Z")),
            "within clock skew"
        );
        assert!(
            !probe.matches(&doc("a.txt", 5, "2026-11-27T10:00:00.000Z")),
            "older than the attempt"
        );
        assert!(!probe.matches(&doc("a.txt", 6, "2026-11-28T10:00:01.000Z")));
        assert!(!probe.matches(&doc("b.txt", 5, "2026-11-28T10:00:01.000Z")));
        let unknown = DocumentProbe {
            name: "a.txt",
            size: 5,
            since: None,
        };
        assert!(unknown.matches(&doc("a.txt", 5, "2020-01-01T00:00:00.000Z")));
    }
}
