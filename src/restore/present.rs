//! What the target holds already, checked before anything is sent, one target ticket at a
//! time (a few at once): the ticket's documents are listed once and its comments paged once.
//!
//! - A document is present when its backed-up id is still on the ticket (an in-place restore),
//!   or when a document of the same name and size whose bytes hash to the manifest's sha256 is
//!   (such a candidate is downloaded and hashed, and only such a one).
//! - A comment is present when its backed-up id is still on the ticket and not deleted, or
//!   when a comment carries its op key in `metadata` (an earlier restore posted it).
//!
//! Present operations are recorded `present` and nothing is sent for them (the next run looks
//! again). Operations an earlier run of the same results file finished are skipped by the
//! runner, and those whose outcome it left unknown are reconciled by the executor: neither is
//! checked here, and documents they recorded are never matched. A ticket UUID the target does
//! not know (404) is reported as unresolved.

use super::ops::{Planned, Probe};
use crate::api::{ApiError, Client};
use crate::exec::retry::{with_retries, RetryPolicy};
use crate::journal::ResultRow;
use crate::runner::Runner;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const SAME_ID: &str = "on the target already: same document id";
const SAME_CONTENT: &str = "on the target already: same name and sha256";
const SAME_COMMENT: &str = "on the target already: same comment id";
const RESTORED: &str =
    "on the target already: posted by an earlier restore (op key in its metadata)";

/// What the check found for one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Finding {
    /// There already, with this id.
    Present(Uuid, &'static str),
    /// Cannot be checked: recorded failed, nothing sent.
    Blocked(String),
}

/// What one ticket's check found: per operation index, or that the ticket does not exist.
type TicketFindings = Result<Vec<(usize, Finding)>, ApiError>;

/// Mark what the target holds already. Returns the target tickets that do not exist (404),
/// each with why; a failure to list stops the run (the caller maps it).
pub(crate) async fn check(
    runner: &Runner,
    planned: &mut [Planned],
    previous: &HashMap<String, ResultRow>,
) -> Result<Vec<(Uuid, String)>, ApiError> {
    let claimed: HashSet<Uuid> = previous
        .values()
        .filter(|r| r.status.is_done())
        .filter_map(|r| r.document_id.parse().ok())
        .collect();
    let by_ticket = pending(planned, previous);
    let (client, policy) = (runner.client(), runner.policy());
    // Nothing is sent yet: the first Ctrl-C stops the check (exit 130).
    let cancel = &runner.stop().cancel.soft;
    let checked: Vec<(Uuid, TicketFindings)> = futures::stream::iter(by_ticket)
        .map(|(ticket, probes)| {
            let claimed = &claimed;
            async move {
                let t = Ticket {
                    client,
                    policy,
                    cancel,
                    id: ticket,
                };
                (ticket, t.check(&probes, claimed).await)
            }
        })
        .buffer_unordered(runner.pacing().lanes())
        .collect()
        .await;
    let mut missing = Vec::new();
    for (ticket, found) in checked {
        match found {
            Ok(found) => apply(planned, found),
            Err(ApiError::Status { status: 404, .. }) => {
                missing.push((ticket, format!("no ticket with id {ticket} on the target")));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(missing)
}

/// The probes to check, by target ticket: operations that can be sent, that no earlier run
/// of this results file finished or left in doubt.
fn pending(
    planned: &[Planned],
    previous: &HashMap<String, ResultRow>,
) -> BTreeMap<Uuid, Vec<(usize, Probe, String)>> {
    let mut out: BTreeMap<Uuid, Vec<(usize, Probe, String)>> = BTreeMap::new();
    for (i, p) in planned.iter().enumerate() {
        let earlier = previous.get(&p.op.op_key);
        let settled = earlier.is_some_and(|r| r.status.is_done() || r.outcome_unknown());
        let (Some(ticket), None, false) = (p.op.ticket_id, &p.op.blocked, settled) else {
            continue;
        };
        if !matches!(p.probe, Probe::Nothing) {
            out.entry(ticket)
                .or_default()
                .push((i, p.probe.clone(), p.op.op_key.clone()));
        }
    }
    out
}

/// Put what was found into the operations.
fn apply(planned: &mut [Planned], found: Vec<(usize, Finding)>) {
    for (i, f) in found {
        let op = &mut planned[i].op;
        match f {
            Finding::Present(id, note) => {
                op.extra.present = Some(id);
                op.extra.note = note.to_string();
            }
            Finding::Blocked(why) => op.blocked = Some(why),
        }
    }
}

/// One target ticket being checked.
struct Ticket<'a> {
    client: &'a Client,
    policy: &'a RetryPolicy,
    cancel: &'a CancellationToken,
    id: Uuid,
}

impl Ticket<'_> {
    async fn check(
        &self,
        probes: &[(usize, Probe, String)],
        claimed: &HashSet<Uuid>,
    ) -> TicketFindings {
        let docs: Vec<(usize, &crate::store::Entry, &str)> = probes
            .iter()
            .filter_map(|(i, p, _)| match p {
                Probe::Document { entry, name } => Some((*i, entry, name.as_str())),
                _ => None,
            })
            .collect();
        let comments: Vec<(usize, Uuid, &str)> = probes
            .iter()
            .filter_map(|(i, p, key)| match p {
                Probe::Comment { source } => Some((*i, *source, key.as_str())),
                _ => None,
            })
            .collect();
        let mut found = Vec::new();
        if !docs.is_empty() {
            found.extend(self.documents(&docs, claimed).await?);
        }
        if !comments.is_empty() {
            found.extend(self.comments(&comments).await?);
        }
        Ok(found)
    }

    /// Documents: by id, then by name, size and (downloaded) sha256 among the unclaimed.
    async fn documents(
        &self,
        docs: &[(usize, &crate::store::Entry, &str)],
        claimed: &HashSet<Uuid>,
    ) -> TicketFindings {
        let listed = with_retries(self.client, self.policy, true, self.cancel, || {
            self.client.list_documents(self.id)
        })
        .await
        .result?;
        let mut taken = claimed.clone();
        let mut found = Vec::new();
        let mut rest = Vec::new();
        for &(i, e, name) in docs {
            if listed.iter().any(|d| d.document_id == e.document_id) {
                taken.insert(e.document_id);
                found.push((i, Finding::Present(e.document_id, SAME_ID)));
            } else {
                rest.push((i, e, name));
            }
        }
        let mut hashes: HashMap<Uuid, String> = HashMap::new();
        for (i, e, name) in rest {
            let candidates = listed.iter().filter(|d| {
                d.document_name == name
                    && d.file_size == Some(e.bytes)
                    && !taken.contains(&d.document_id)
            });
            for d in candidates {
                let hash = match hashes.get(&d.document_id) {
                    Some(h) => h.clone(),
                    None => match self.hash(d.document_id).await {
                        Ok(h) => hashes.entry(d.document_id).or_insert(h).clone(),
                        Err(ApiError::Cancelled) => return Err(ApiError::Cancelled),
                        Err(err) => {
                            let why = format!(
                                "cannot check {name:?} on the target, a document of the same name and size: {}",
                                err.one_line()
                            );
                            found.push((i, Finding::Blocked(why)));
                            break;
                        }
                    },
                };
                if hash.eq_ignore_ascii_case(&e.sha256) {
                    taken.insert(d.document_id);
                    found.push((i, Finding::Present(d.document_id, SAME_CONTENT)));
                    break;
                }
            }
        }
        Ok(found)
    }

    /// The sha256 of a document on the target (downloaded, not kept).
    async fn hash(&self, document: Uuid) -> Result<String, ApiError> {
        with_retries(self.client, self.policy, true, self.cancel, || async {
            let mut d = self.client.download_document(self.id, document).await?;
            let mut h = Sha256::new();
            while let Some(chunk) = d.body.next().await {
                h.update(&chunk?);
            }
            Ok(hex::encode(h.finalize()))
        })
        .await
        .result
    }

    /// Comments: by id (not deleted), then by op key in metadata.
    async fn comments(&self, probes: &[(usize, Uuid, &str)]) -> TicketFindings {
        let all = crate::export::comments::list_all(self.client, self.policy, self.cancel, self.id)
            .await?;
        let live: Vec<&crate::api::Comment> = all
            .iter()
            .filter(|c| c.extra.get("deleted_at").is_none_or(|v| v.is_null()))
            .collect();
        let ids: HashSet<Uuid> = live.iter().map(|c| c.comment_id).collect();
        let keys: HashMap<&str, Uuid> = live
            .iter()
            .filter_map(|c| Some((c.op_key()?, c.comment_id)))
            .collect();
        Ok(probes
            .iter()
            .filter_map(|&(i, source, key)| {
                let finding = if ids.contains(&source) {
                    Finding::Present(source, SAME_COMMENT)
                } else {
                    Finding::Present(*keys.get(key)?, RESTORED)
                };
                Some((i, finding))
            })
            .collect())
    }
}
