//! Ticket numbers to ticket ids, with the fewest list requests.
//!
//! The list filter `ticket_number` is a case-insensitive SUBSTRING match (`TIC001000` also finds
//! `TIC0010001`), so only rows whose number equals the wanted one (ignoring case) count; several
//! such rows make the number ambiguous. With one number, one filtered lookup is made. With more,
//! the first page of all tickets (100 a page, sorted by number) tells the total, and the rest is
//! fetched either by paging through everything or by one lookup per number, whichever needs
//! fewer requests. Each distinct number (ignoring case) is looked up once per call.

use std::collections::{BTreeMap, HashMap};

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::api::{ApiError, Client, RetryClass, Ticket, TicketQuery};
use crate::exec::retry::{with_retries, RetryPolicy};

/// Rows per list page (the server's maximum).
const PAGE_SIZE: u64 = 100;
/// Only the fields resolution needs.
const FIELDS: &str = "ticket_id,ticket_number";

/// The result per number as written: the ticket id, or the row's error message.
pub type Resolutions = HashMap<String, Result<Uuid, String>>;

/// How to fetch the remaining rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// Page through every ticket.
    FullScan,
    /// One filtered lookup per number.
    Lookups,
}

/// The cheaper way to resolve `numbers` when `pages_done` of `total_pages` are already fetched.
pub(crate) fn choose(numbers: usize, total_pages: u64, pages_done: u64) -> Strategy {
    let remaining_pages = total_pages.saturating_sub(pages_done);
    if remaining_pages <= numbers as u64 {
        Strategy::FullScan
    } else {
        Strategy::Lookups
    }
}

/// Ticket rows by lower-cased number, each ticket once.
type Index = HashMap<String, BTreeMap<Uuid, String>>;

/// Adds list rows to the index.
fn index_rows(index: &mut Index, rows: Vec<Ticket>) {
    for t in rows {
        if let Some(n) = t.ticket_number {
            index
                .entry(n.to_lowercase())
                .or_default()
                .insert(t.ticket_id, n);
        }
    }
}

/// The verdict for `number` from the exact (case-insensitive) matches found.
pub(crate) fn verdict(number: &str, index: &Index) -> Result<Uuid, String> {
    let matches = index.get(&number.trim().to_lowercase());
    let mut iter = matches.into_iter().flatten();
    match (iter.next(), iter.next()) {
        (None, _) => Err(format!("no ticket numbered {number}")),
        (Some((id, _)), None) => Ok(*id),
        (Some(_), Some(_)) => {
            let list: Vec<String> = matches
                .into_iter()
                .flatten()
                .map(|(id, n)| format!("{n} ({id})"))
                .collect();
            Err(format!(
                "ticket number {number} is ambiguous: matches {}",
                list.join(", ")
            ))
        }
    }
}

/// Resolves ticket numbers. `Err` only for a fatal error (401) or cancellation; any other
/// failure becomes the affected rows' error message.
pub async fn resolve_tickets(
    client: &Client,
    policy: &RetryPolicy,
    numbers: &[String],
    cancel: &CancellationToken,
) -> Result<Resolutions, ApiError> {
    let mut out = Resolutions::new();
    // Distinct numbers, lower-cased, with each spelling that asked for them.
    let mut wanted: BTreeMap<String, Vec<&String>> = BTreeMap::new();
    for n in numbers {
        if n.trim().is_empty() {
            out.insert(n.clone(), Err("empty ticket number".into()));
        } else {
            wanted.entry(n.trim().to_lowercase()).or_default().push(n);
        }
    }
    let fetch = Fetcher {
        client,
        policy,
        cancel,
    };
    let mut index = Index::new();
    let mut failed: HashMap<String, String> = HashMap::new();
    let strategy = if wanted.len() < 2 {
        Strategy::Lookups
    } else {
        match fetch.survey(wanted.len(), &mut index).await {
            Ok(strategy) => strategy,
            Err(e) => {
                record(e, &mut failed, wanted.keys())?;
                Strategy::FullScan
            }
        }
    };
    if strategy == Strategy::Lookups {
        for number in wanted.keys() {
            if let Err(e) = fetch.lookup(number, &mut index).await {
                record(e, &mut failed, std::iter::once(number))?;
            }
        }
    }
    for (key, spellings) in wanted {
        for s in spellings {
            let result = match failed.get(&key) {
                Some(msg) => Err(format!("cannot resolve ticket number {s}: {msg}")),
                None => verdict(s, &index),
            };
            out.insert(s.clone(), result);
        }
    }
    Ok(out)
}

/// Propagates fatal errors and cancellation; records any other error for `keys`.
fn record<'a>(
    e: ApiError,
    failed: &mut HashMap<String, String>,
    keys: impl Iterator<Item = &'a String>,
) -> Result<(), ApiError> {
    if matches!(e, ApiError::Cancelled) || e.class(true) == RetryClass::Fatal {
        return Err(e);
    }
    for k in keys {
        failed.insert(k.clone(), e.one_line());
    }
    Ok(())
}

/// List requests with retries.
struct Fetcher<'a> {
    client: &'a Client,
    policy: &'a RetryPolicy,
    cancel: &'a CancellationToken,
}

impl Fetcher<'_> {
    /// One page of the ticket list (optionally filtered). Returns the rows and `totalPages`.
    async fn page(&self, page: u64, number: Option<&str>) -> Result<(Vec<Ticket>, u64), ApiError> {
        let q = TicketQuery {
            page,
            limit: PAGE_SIZE,
            sort: Some("ticket_number".into()),
            order: Some("asc".into()),
            fields: Some(FIELDS.into()),
            ticket_number: number.map(str::to_string),
            ..Default::default()
        };
        let done = with_retries(self.client, self.policy, true, self.cancel, || {
            self.client.list_tickets(&q)
        })
        .await;
        let page = done.result?;
        Ok((page.data, page.pagination.total_pages))
    }

    /// Fetches the first page of all tickets, then the rest when a full scan is cheaper than
    /// `numbers` lookups. Returns the strategy chosen (`FullScan`: the index is complete).
    async fn survey(&self, numbers: usize, index: &mut Index) -> Result<Strategy, ApiError> {
        let (rows, total_pages) = self.page(1, None).await?;
        index_rows(index, rows);
        let strategy = choose(numbers, total_pages, 1);
        if strategy == Strategy::FullScan {
            for page in 2..=total_pages {
                let (rows, _) = self.page(page, None).await?;
                let short = (rows.len() as u64) < PAGE_SIZE;
                index_rows(index, rows);
                if short {
                    break;
                }
            }
        }
        Ok(strategy)
    }

    /// Every row whose number contains `number` (all pages of the filtered list).
    async fn lookup(&self, number: &str, index: &mut Index) -> Result<(), ApiError> {
        let mut page = 1;
        loop {
            let (rows, total_pages) = self.page(page, Some(number)).await?;
            index_rows(index, rows);
            if page >= total_pages {
                return Ok(());
            }
            page += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: u128, number: &str) -> Ticket {
        serde_json::from_value(serde_json::json!({
            "ticket_id": Uuid::from_u128(id),
            "ticket_number": number,
        }))
        .unwrap()
    }

    #[test]
    fn choose_the_cheaper_way() {
        let cases = [
            // (numbers, total pages, pages done, expected)
            (2, 1, 1, Strategy::FullScan), // everything is on the first page
            (2, 3, 1, Strategy::FullScan), // 2 more pages vs 2 lookups: tie goes to the scan
            (2, 4, 1, Strategy::Lookups),  // 3 more pages vs 2 lookups
            (500, 40, 1, Strategy::FullScan),
            (10, 1000, 1, Strategy::Lookups),
            (1, 0, 0, Strategy::FullScan), // empty tenant: nothing to fetch
        ];
        for (n, total, done, want) in cases {
            assert_eq!(choose(n, total, done), want, "{n} numbers, {total} pages");
        }
    }

    #[test]
    fn only_exact_case_insensitive_matches_count() {
        let mut index = Index::new();
        index_rows(
            &mut index,
            vec![
                row(1, "TIC0010001"),
                row(2, "TIC001000"),
                row(3, "XTIC001000"),
            ],
        );
        assert_eq!(verdict("TIC001000", &index), Ok(Uuid::from_u128(2)));
        assert_eq!(verdict("tic001000", &index), Ok(Uuid::from_u128(2)));
        assert_eq!(verdict(" TIC001000 ", &index), Ok(Uuid::from_u128(2)));
        assert_eq!(verdict("TIC0010001", &index), Ok(Uuid::from_u128(1)));
        assert_eq!(
            verdict("TIC00100", &index),
            Err("no ticket numbered TIC00100".into())
        );
    }

    #[test]
    fn case_variants_are_ambiguous_and_the_same_ticket_twice_is_not() {
        let mut index = Index::new();
        index_rows(
            &mut index,
            vec![row(1, "TIC1"), row(2, "tic1"), row(3, "T2")],
        );
        index_rows(&mut index, vec![row(3, "T2")]); // seen again on a shifted page
        let err = verdict("Tic1", &index).unwrap_err();
        assert!(
            err.starts_with("ticket number Tic1 is ambiguous: matches "),
            "{err}"
        );
        assert!(err.contains("TIC1 (") && err.contains("tic1 ("), "{err}");
        assert_eq!(verdict("t2", &index), Ok(Uuid::from_u128(3)));
    }

    #[test]
    fn rows_without_a_number_are_ignored() {
        let mut index = Index::new();
        let mut t = row(9, "x");
        t.ticket_number = None;
        index_rows(&mut index, vec![t]);
        assert!(index.is_empty());
    }
}
