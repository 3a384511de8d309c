//! What a restore tells its user before it sends anything: what the backup holds, and what the
//! run will do (per ticket on a dry run).

use super::backup::SourceTicket;
use super::ops::Planned;
use crate::export::report::human_bytes;
use crate::journal::ResultRow;
use crate::plan::OpKind;
use crate::runner::group_thousands;
use crate::store::Location;
use std::collections::HashMap;

/// Tickets listed one by one on a dry run before "and N more".
const SHOWN_TICKETS: usize = 50;

/// What the backup holds for this restore.
pub(super) fn backup(location: &Location, tickets: &[SourceTicket], deleted: usize, quiet: bool) {
    if quiet {
        return;
    }
    let docs: usize = tickets.iter().map(|t| t.documents.len()).sum();
    let bytes: u64 = tickets
        .iter()
        .flat_map(|t| &t.documents)
        .map(|e| e.bytes)
        .sum();
    let comments: usize = tickets.iter().map(|t| t.comments.len()).sum();
    let mut line = format!(
        "backup {location}: {} tickets, {} documents ({}), {} comments",
        group_thousands(tickets.len() as u64),
        group_thousands(docs as u64),
        human_bytes(bytes),
        group_thousands(comments as u64),
    );
    match deleted {
        0 => {}
        1 => line.push_str("; 1 more was deleted before the backup and is not restored"),
        n => line.push_str(&format!(
            "; {n} more were deleted before the backup and are not restored"
        )),
    }
    eprintln!("{line}");
}

/// What one group of operations will do.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Counts {
    uploads: u64,
    bytes: u64,
    posts: u64,
    present: u64,
    blocked: u64,
    done: u64,
}

impl Counts {
    fn add(&mut self, p: &Planned, previous: &HashMap<String, ResultRow>) {
        if previous
            .get(&p.op.op_key)
            .is_some_and(|r| r.status.is_done())
        {
            self.done += 1;
        } else if p.op.blocked.is_some() {
            self.blocked += 1;
        } else if p.op.extra.present.is_some() {
            self.present += 1;
        } else if let OpKind::Upload { spec, .. } = &p.op.kind {
            self.uploads += 1;
            self.bytes += spec.size;
        } else {
            self.posts += 1;
        }
    }

    /// "3 documents to upload (1.2 MiB), 5 comments to post, 2 already on the target"; the
    /// first two even when zero unless `brief`.
    fn describe(&self, brief: bool) -> String {
        let mut parts = Vec::new();
        if self.uploads > 0 || !brief {
            parts.push(format!(
                "{} to upload ({})",
                counted(self.uploads, "document"),
                human_bytes(self.bytes)
            ));
        }
        if self.posts > 0 || !brief {
            parts.push(format!("{} to post", counted(self.posts, "comment")));
        }
        let mut push = |n: u64, what: &str| {
            if n > 0 {
                parts.push(format!("{} {what}", group_thousands(n)));
            }
        };
        push(self.present, "already on the target");
        push(self.blocked, "that cannot be restored (failed)");
        push(self.done, "done by an earlier run");
        parts.join(", ")
    }
}

/// "1 document", "2 comments".
fn counted(n: u64, what: &str) -> String {
    let s = if n == 1 { "" } else { "s" };
    format!("{} {what}{s}", group_thousands(n))
}

/// The plan in numbers; on a dry run, ticket by ticket too.
pub(super) fn plan(
    planned: &[Planned],
    previous: &HashMap<String, ResultRow>,
    dry_run: bool,
    quiet: bool,
) {
    if quiet && !dry_run {
        return;
    }
    let mut total = Counts::default();
    let mut by_ticket: Vec<(String, Counts)> = Vec::new();
    for p in planned {
        total.add(p, previous);
        let label = match p.op.ticket_id {
            Some(id) => format!("{} ({id})", p.op.ticket),
            None => p.op.ticket.to_string(),
        };
        match by_ticket.last_mut() {
            Some((l, c)) if *l == label => c.add(p, previous),
            _ => {
                let mut c = Counts::default();
                c.add(p, previous);
                by_ticket.push((label, c));
            }
        }
    }
    if dry_run && !quiet {
        for (label, c) in by_ticket.iter().take(SHOWN_TICKETS) {
            eprintln!("  {label}: {}", c.describe(true));
        }
        if by_ticket.len() > SHOWN_TICKETS {
            let more = by_ticket.len() - SHOWN_TICKETS;
            eprintln!("  ... and {more} more tickets (every operation is in the plan file)");
        }
    }
    let verb = if dry_run {
        "would restore"
    } else {
        "restoring"
    };
    eprintln!("{verb}: {}", total.describe(false));
}
