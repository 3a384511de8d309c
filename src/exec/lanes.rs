//! Lanes: which operations must run one after the other.
//!
//! The comments of one ticket form one lane, posted in job order (a migrated thread must read in
//! the order it was written). Uploads run concurrently, except identical ones (same ticket, name
//! and size): those share a lane so that reconciling a lost response can never take the
//! document of a twin upload still in flight. Undo operations (deletes, redactions) are each a
//! lane of their own.

use crate::plan::{OpKind, Operation};
use std::collections::HashMap;

/// The lane of `op` on the ticket `ticket` (its id, or the reference as written when it has
/// none).
pub(crate) fn lane_key(op: &Operation, ticket: &str) -> String {
    match &op.kind {
        OpKind::Comment(_) => format!("comment\0{ticket}"),
        OpKind::Upload { spec, .. } => {
            format!("upload\0{ticket}\0{}\0{}", spec.name, spec.size)
        }
        OpKind::DeleteDocument { .. } | OpKind::RedactComment { .. } => {
            format!("undo\0{}", op.op_key)
        }
    }
}

/// Group items into lanes by `key`; lanes keep the order of their first item, and items keep
/// their order within a lane.
pub(crate) fn group<T>(items: Vec<T>, key: impl Fn(&T) -> String) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for item in items {
        let k = key(&item);
        match index.get(&k) {
            Some(&i) => out[i].push(item),
            None => {
                index.insert(k, out.len());
                out.push(vec![item]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{CommentSpec, TicketRef, UploadSpec};

    fn op(ticket: &str, comment: bool, n: usize, name: &str) -> Operation {
        let kind = if comment {
            OpKind::Comment(CommentSpec {
                text: format!("c{n}"),
                is_internal: false,
                is_resolution: false,
            })
        } else {
            OpKind::Upload {
                spec: UploadSpec {
                    path: name.into(),
                    name: name.into(),
                    size: 1,
                },
                sha256: String::new(),
                mime: "text/plain".into(),
                stream: None,
            }
        };
        Operation {
            op_key: format!("k{n}"),
            source: format!("job.csv:{n}"),
            ticket: TicketRef::Number(ticket.into()),
            ticket_id: None,
            blocked: None,
            kind,
            extra: Default::default(),
        }
    }

    #[test]
    fn comments_of_a_ticket_and_identical_uploads_share_ordered_lanes() {
        let ops = vec![
            op("A", true, 1, ""),
            op("B", true, 2, ""),
            op("A", false, 3, "x"),
            op("A", true, 4, ""),
            op("A", false, 5, "y"),
            op("A", false, 6, "x"),
        ];
        let l = group(ops, |o| lane_key(o, &o.ticket.to_string()));
        let keys: Vec<Vec<&str>> = l
            .iter()
            .map(|lane| lane.iter().map(|o| o.op_key.as_str()).collect())
            .collect();
        assert_eq!(
            keys,
            vec![vec!["k1", "k4"], vec!["k2"], vec!["k3", "k6"], vec!["k5"]]
        );
    }
}
