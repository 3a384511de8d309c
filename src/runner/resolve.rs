//! Every ticket reference of a run resolved before the first write: numbers to ids (exactly,
//! with the fewest list requests: `exec::resolve`), and the references that do not resolve,
//! grouped with the places that use them.

use super::pacing::Runner;
use crate::error::Result;
use crate::exec::resolve::resolve_tickets;
use crate::job::TicketRef;
use crate::plan::Operation;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

pub(super) use crate::exec::resolve::Resolutions;

/// Places shown per unresolved reference before "and N more".
const SHOWN_PLACES: usize = 5;

/// A reference that did not resolve, and where it is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Unresolved {
    /// Why (`no ticket numbered TIC9`, `ticket number TIC1 is ambiguous: ...`).
    pub(super) why: String,
    /// The sources of the operations that use it, in order.
    pub(super) sources: Vec<String>,
}

impl Unresolved {
    /// `job.csv:3, job.csv:7 (and 12 more)`.
    pub(super) fn locations(&self) -> String {
        let shown: Vec<&str> = self
            .sources
            .iter()
            .take(SHOWN_PLACES)
            .map(String::as_str)
            .collect();
        let more = self.sources.len().saturating_sub(SHOWN_PLACES);
        if more > 0 {
            format!("{} (and {more} more)", shown.join(", "))
        } else {
            shown.join(", ")
        }
    }
}

/// The ticket number an operation needs resolved, if any.
fn number_of(op: &Operation) -> Option<&str> {
    match (&op.ticket, op.ticket_id, &op.blocked) {
        (TicketRef::Number(n), None, None) => Some(n),
        _ => None,
    }
}

/// Whether any operation needs a ticket number resolved.
pub(super) fn needed(ops: &[&Operation]) -> bool {
    ops.iter().any(|o| number_of(o).is_some())
}

/// Resolve the numbers the operations need (a run-level error when the server cannot be
/// asked).
pub(super) async fn resolve(runner: &Runner, ops: &[&Operation]) -> Result<Resolutions> {
    let mut numbers: Vec<String> = ops
        .iter()
        .filter_map(|o| number_of(o).map(str::to_string))
        .collect();
    numbers.sort();
    numbers.dedup();
    if numbers.is_empty() {
        return Ok(HashMap::new());
    }
    let hard = &runner.stop().cancel.hard;
    resolve_tickets(runner.client(), runner.policy(), &numbers, hard)
        .await
        .map_err(|e| match e {
            crate::api::ApiError::Cancelled => crate::error::Error::Interrupted,
            e => runner.fatal(e),
        })
}

/// The ticket of an operation: known, resolved, or why not.
pub(super) fn ticket_of(op: &Operation, resolved: &Resolutions) -> Result<Uuid, String> {
    match (op.ticket_id, &op.ticket) {
        (Some(id), _) => Ok(id),
        (None, TicketRef::Id(id)) => Ok(*id),
        (None, TicketRef::Number(n)) => resolved
            .get(n)
            .cloned()
            .unwrap_or_else(|| Err(format!("ticket {n} was not resolved"))),
    }
}

/// The references that did not resolve, each with the operations using it, by reference.
pub(super) fn unresolved(ops: &[&Operation], resolved: &Resolutions) -> Vec<Unresolved> {
    let mut by_ref: BTreeMap<String, Unresolved> = BTreeMap::new();
    for op in ops {
        let Some(n) = number_of(op) else { continue };
        if let Some(Err(why)) = resolved.get(n) {
            by_ref
                .entry(n.to_uppercase())
                .or_insert_with(|| Unresolved {
                    why: why.clone(),
                    sources: Vec::new(),
                })
                .sources
                .push(op.source.clone());
        }
    }
    by_ref.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::CommentSpec;
    use crate::plan::OpKind;

    fn op(n: usize, ticket: &str) -> Operation {
        Operation {
            op_key: format!("k{n}"),
            source: format!("job.csv:{n}"),
            ticket: TicketRef::parse(ticket).unwrap(),
            ticket_id: None,
            blocked: None,
            kind: OpKind::Comment(CommentSpec {
                text: format!("c{n}"),
                is_internal: false,
                is_resolution: false,
            }),
            extra: Default::default(),
        }
    }

    #[test]
    fn unresolved_references_are_grouped_with_their_places() {
        let ops: Vec<Operation> = (2..10)
            .map(|i| op(i, if i % 2 == 0 { "TIC9" } else { "TIC1" }))
            .collect();
        let refs: Vec<&Operation> = ops.iter().collect();
        assert!(needed(&refs));
        let mut resolved = Resolutions::new();
        resolved.insert("TIC9".into(), Err("no ticket numbered TIC9".into()));
        resolved.insert("TIC1".into(), Ok(Uuid::from_u128(1)));
        let u = unresolved(&refs, &resolved);
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].why, "no ticket numbered TIC9");
        assert_eq!(
            u[0].locations(),
            "job.csv:2, job.csv:4, job.csv:6, job.csv:8"
        );
        assert_eq!(ticket_of(&ops[1], &resolved), Ok(Uuid::from_u128(1)));
        let many: Vec<Operation> = (0..8).map(|i| op(i, "TIC9")).collect();
        let u = unresolved(&many.iter().collect::<Vec<_>>(), &resolved);
        assert!(
            u[0].locations().ends_with("(and 3 more)"),
            "{}",
            u[0].locations()
        );
    }

    #[test]
    fn known_ids_need_no_resolution() {
        let mut o = op(1, "TIC9");
        o.ticket_id = Some(Uuid::from_u128(5));
        assert!(!needed(&[&o]));
        assert_eq!(ticket_of(&o, &Resolutions::new()), Ok(Uuid::from_u128(5)));
        let by_id = op(2, "4cfc6e7b-34f7-4935-865a-170dfaaaf6e8");
        assert!(!needed(&[&by_id]));
    }
}
