//! Which tickets a backup covers: named ones (`--ticket`, `--tickets FILE`; numbers resolved
//! by exact match through `exec::resolve`), or every ticket of the list endpoint, paged with
//! the stable `sort=ticket_number&order=asc`, 100 a page, optionally filtered by `is_open`
//! and `updated_from`.

use super::options::Selection;
use crate::api::{ApiError, Client, TicketQuery};
use crate::exec::resolve::resolve_tickets;
use crate::exec::retry::{with_retries, RetryPolicy};
use crate::job::TicketRef;
use std::collections::HashSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Page size of the ticket list (the server's maximum).
pub const PAGE_SIZE: u64 = 100;

/// Fields asked of the list endpoint (the rest of a row is not needed).
const FIELDS: &str = "ticket_id,ticket_number,updated_at,status_is_closed";

/// A ticket to back up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// UUID.
    pub ticket_id: Uuid,
    /// Number, when known (names the folder).
    pub ticket_number: Option<String>,
}

/// A named ticket that could not be found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    /// As given.
    pub reference: String,
    /// Why.
    pub why: String,
}

/// Resolve explicit references (each found ticket is fetched once for its number as the
/// server spells it); an error return is fatal (key rejected, server gone).
pub async fn resolve_refs(
    client: &Client,
    policy: &RetryPolicy,
    refs: &[String],
    cancel: &CancellationToken,
) -> Result<(Vec<Target>, Vec<Unresolved>), ApiError> {
    let parsed: Vec<TicketRef> = refs.iter().filter_map(|r| TicketRef::parse(r)).collect();
    let numbers: Vec<String> = parsed
        .iter()
        .filter_map(|r| match r {
            TicketRef::Number(n) => Some(n.clone()),
            TicketRef::Id(_) => None,
        })
        .collect();
    let resolved = if numbers.is_empty() {
        Default::default()
    } else {
        resolve_tickets(client, policy, &numbers, cancel).await?
    };
    let (mut targets, mut missing, mut seen) = (Vec::new(), Vec::new(), HashSet::new());
    for r in parsed {
        let found = match &r {
            // The number as the server spells it names the folder (`tic001005` was typed).
            TicketRef::Number(n) => match resolved.get(n) {
                Some(Ok(id)) => by_id(client, policy, cancel, *id)
                    .await?
                    .map(|(id, number)| (id, number.or_else(|| Some(n.clone())))),
                Some(Err(why)) => Err(why.clone()),
                None => Err(format!("ticket {n} was not resolved")),
            },
            TicketRef::Id(id) => by_id(client, policy, cancel, *id).await?,
        };
        match found {
            Ok((ticket_id, ticket_number)) if seen.insert(ticket_id) => targets.push(Target {
                ticket_id,
                ticket_number,
            }),
            Ok(_) => {}
            Err(why) => missing.push(Unresolved {
                reference: r.to_string(),
                why,
            }),
        }
    }
    Ok((targets, missing))
}

/// A ticket named by UUID: fetched for its number. `Ok(Err)` when it does not exist.
async fn by_id(
    client: &Client,
    policy: &RetryPolicy,
    cancel: &CancellationToken,
    id: Uuid,
) -> Result<Result<(Uuid, Option<String>), String>, ApiError> {
    let got = with_retries(client, policy, true, cancel, || client.get_ticket(id))
        .await
        .result;
    match got {
        Ok(t) => Ok(Ok((t.ticket_id, t.ticket_number))),
        Err(e) if matches!(e.status(), Some(400 | 403 | 404)) => {
            Ok(Err(format!("ticket {id}: {}", e.one_line())))
        }
        Err(e) => Err(e),
    }
}

/// Pages through the ticket list.
pub struct Lister {
    query: TicketQuery,
    pending: Option<Vec<Target>>,
    done: bool,
    /// Tickets the server counts for this selection.
    pub total: u64,
}

impl Lister {
    /// The query for a selection (page 1).
    pub fn query(sel: &Selection, limit: u64) -> TicketQuery {
        TicketQuery {
            page: 1,
            limit,
            sort: Some("ticket_number".into()),
            order: Some("asc".into()),
            fields: Some(FIELDS.into()),
            ticket_number: None,
            updated_from: sel.updated_from.clone(),
            is_open: sel.open_only,
        }
    }

    /// Fetch the page holding position `offset` of the order (it tells the total); the
    /// tickets before `offset` are skipped. When the list has shrunk below `offset`, start
    /// over at 0. Returns the lister and the offset it really starts at.
    pub async fn start(
        client: &Client,
        policy: &RetryPolicy,
        cancel: &CancellationToken,
        sel: &Selection,
        offset: u64,
    ) -> Result<(Lister, u64), ApiError> {
        let mut l = Lister {
            query: Self::query(sel, PAGE_SIZE),
            pending: None,
            done: false,
            total: 0,
        };
        l.query.page = offset / PAGE_SIZE + 1;
        let mut first = l.fetch(client, policy, cancel).await?;
        let skip = (offset % PAGE_SIZE) as usize;
        if offset > 0 && first.len() <= skip {
            return Box::pin(Self::start(client, policy, cancel, sel, 0)).await;
        }
        first.drain(..skip);
        l.pending = Some(first);
        Ok((l, offset))
    }

    /// Tickets the server counts for a selection (one request).
    pub async fn count(
        client: &Client,
        policy: &RetryPolicy,
        cancel: &CancellationToken,
        sel: &Selection,
    ) -> Result<u64, ApiError> {
        let q = Self::query(sel, 1);
        let page = with_retries(client, policy, true, cancel, || client.list_tickets(&q))
            .await
            .result?;
        Ok(page.pagination.total)
    }

    async fn fetch(
        &mut self,
        client: &Client,
        policy: &RetryPolicy,
        cancel: &CancellationToken,
    ) -> Result<Vec<Target>, ApiError> {
        let q = self.query.clone();
        let got = with_retries(client, policy, true, cancel, || client.list_tickets(&q))
            .await
            .result;
        let page = match got {
            Ok(p) => p,
            Err(e) => {
                self.done = true;
                return Err(e);
            }
        };
        self.total = page.pagination.total;
        self.done = !page.pagination.has_next || page.data.is_empty();
        self.query.page += 1;
        Ok(page
            .data
            .into_iter()
            .map(|t| Target {
                ticket_id: t.ticket_id,
                ticket_number: t.ticket_number,
            })
            .collect())
    }

    /// The next page; `Ok(None)` once the list is exhausted (or after an error).
    pub async fn next_page(
        &mut self,
        client: &Client,
        policy: &RetryPolicy,
        cancel: &CancellationToken,
    ) -> Result<Option<Vec<Target>>, ApiError> {
        if let Some(p) = self.pending.take() {
            return Ok(Some(p));
        }
        if self.done {
            return Ok(None);
        }
        self.fetch(client, policy, cancel).await.map(Some)
    }

    /// Whether the last page has been handed out.
    pub fn exhausted(&self) -> bool {
        self.done && self.pending.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_query_is_stable_and_carries_the_filters() {
        let sel = Selection {
            refs: vec![],
            open_only: true,
            updated_from: Some("2026-11-01T00:00:00Z".into()),
        };
        let q = Lister::query(&sel, PAGE_SIZE);
        assert_eq!(q.sort.as_deref(), Some("ticket_number"));
        assert_eq!(q.order.as_deref(), Some("asc"));
        assert_eq!((q.page, q.limit), (1, 100));
        assert!(q.is_open);
        assert_eq!(q.updated_from.as_deref(), Some("2026-11-01T00:00:00Z"));
        assert!(q.ticket_number.is_none());
    }
}
