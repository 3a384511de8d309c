//! Lanes: which operations must run one after the other.
//!
//! The comments of one ticket form one lane, posted in job order (a migrated thread must read in
//! the order it was written). Uploads run concurrently, except identical ones (same ticket, name
//! and size): those share a lane so that reconciling a lost response can never take the
//! document of a twin upload still in flight.

use super::executor::Task;
use crate::journal::{ResultRow, Status};
use crate::plan::OpKind;
use std::collections::HashMap;

/// Group tasks into lanes; lanes keep the order of their first task.
pub(crate) fn lanes(tasks: Vec<Task>) -> Vec<Vec<Task>> {
    let mut out: Vec<Vec<Task>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for t in tasks {
        let ticket = match &t.ticket_id {
            Ok(id) => id.to_string(),
            Err(_) => t.op.ticket.to_string(),
        };
        let key = match &t.op.kind {
            OpKind::Comment(_) => format!("comment\0{ticket}"),
            OpKind::Upload { spec, .. } => {
                format!("upload\0{ticket}\0{}\0{}", spec.name, spec.size)
            }
        };
        match index.get(&key) {
            Some(&i) => out[i].push(t),
            None => {
                index.insert(key, out.len());
                out.push(vec![t]);
            }
        }
    }
    out
}

/// Whether a comment's row must hold back the later comments of its ticket: it did not finish
/// for a reason that a later run may overcome (connection trouble, 429/5xx after every retry, an
/// unknown outcome, a stop). A definite refusal (another 4xx) will fail again whatever the
/// order, so it does not block; neither does an unresolved ticket (every comment fails alike).
pub(crate) fn blocks_thread(row: &ResultRow) -> bool {
    if !matches!(row.status, Status::Failed | Status::Cancelled) || row.ticket_id.is_empty() {
        return false;
    }
    match row.http_status.parse::<u16>() {
        Ok(s) => !(400..500).contains(&s) || s == 429,
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::Prior;
    use crate::job::{CommentSpec, TicketRef, UploadSpec};
    use crate::plan::Operation;

    fn task(ticket: &str, comment: bool, n: usize, name: &str) -> Task {
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
            }
        };
        Task {
            op: Operation {
                op_key: format!("k{n}"),
                source: format!("job.csv:{n}"),
                ticket: TicketRef::Number(ticket.into()),
                kind,
            },
            ticket_id: Err("unresolved".into()),
            prior: Prior::Fresh,
        }
    }

    #[test]
    fn comments_of_a_ticket_and_identical_uploads_share_ordered_lanes() {
        let l = lanes(vec![
            task("A", true, 1, ""),
            task("B", true, 2, ""),
            task("A", false, 3, "x"),
            task("A", true, 4, ""),
            task("A", false, 5, "y"),
            task("A", false, 6, "x"),
        ]);
        let keys: Vec<Vec<&str>> = l
            .iter()
            .map(|lane| lane.iter().map(|t| t.op.op_key.as_str()).collect())
            .collect();
        assert_eq!(
            keys,
            vec![vec!["k1", "k4"], vec!["k2"], vec!["k3", "k6"], vec!["k5"]]
        );
    }

    fn row(status: Status, http: &str, ticket_id: &str) -> ResultRow {
        let mut r = crate::exec::base_row(&task("A", true, 1, "").op);
        r.status = status;
        r.http_status = http.into();
        r.ticket_id = ticket_id.into();
        r
    }

    #[test]
    fn only_transient_failures_hold_back_the_thread() {
        let id = "4cfc6e7b-34f7-4935-865a-170dfaaaf6e8";
        assert!(blocks_thread(&row(Status::Failed, "503", id)));
        assert!(blocks_thread(&row(Status::Failed, "429", id)));
        assert!(
            blocks_thread(&row(Status::Failed, "", id)),
            "no answer at all"
        );
        assert!(blocks_thread(&row(Status::Cancelled, "", id)));
        assert!(
            !blocks_thread(&row(Status::Failed, "400", id)),
            "a refusal repeats anyway"
        );
        assert!(
            !blocks_thread(&row(Status::Failed, "", "")),
            "unresolved ticket"
        );
        assert!(!blocks_thread(&row(Status::Created, "201", id)));
    }
}
