//! Reading a backup for a restore, through the store (a folder or, with the S3 store, a
//! bucket): the manifest with the journal of a killed backup replayed, each ticket folder's
//! `comments.jsonl`, and the backed-up ticket numbers (from the manifest, else `comments.csv`,
//! else the folder's name when it is the number). Comments come out in their original order:
//! by `created_at`, then by position in the file. Comments deleted before the backup
//! (`deleted_at` set) are left out: they were not visible when it was made.

use crate::api::Comment;
use crate::export::comments::CSV_COLUMNS;
use crate::store::layout::{self, COMMENTS_CSV, COMMENTS_JSONL};
use crate::store::{BackupStore, Entry, StoreError};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// One backed-up ticket.
#[derive(Debug, Clone, Default)]
pub(crate) struct SourceTicket {
    /// Its id on the server it was backed up from.
    pub(crate) id: Uuid,
    /// Its number there, when the backup records it.
    pub(crate) number: Option<String>,
    /// Its documents, by manifest path.
    pub(crate) documents: Vec<Entry>,
    /// Its comments, in their original order.
    pub(crate) comments: Vec<SourceComment>,
}

impl SourceTicket {
    /// The number, else the id (for messages and the `{ticket}` placeholder).
    pub(crate) fn label(&self) -> String {
        self.number.clone().unwrap_or_else(|| self.id.to_string())
    }
}

/// One line of a `comments.jsonl`.
#[derive(Debug, Clone)]
pub(crate) struct SourceComment {
    /// `<folder>/comments.jsonl:<line>`.
    pub(crate) source: String,
    /// The comment, or why the line cannot be read.
    pub(crate) comment: Result<Comment, String>,
}

/// What a backup holds for a restore.
#[derive(Debug, Default)]
pub(crate) struct Backup {
    /// Every backed-up ticket with documents or comments, by number then id.
    pub(crate) tickets: Vec<SourceTicket>,
    /// Comments left out because they were deleted before the backup.
    pub(crate) deleted: usize,
    /// Comment files that could not be used at all (warnings).
    pub(crate) warnings: Vec<String>,
}

/// Read what a restore needs: the manifest when `documents`, the comment files when
/// `comments`.
pub(crate) async fn read(
    store: &dyn BackupStore,
    documents: bool,
    comments: bool,
) -> Result<Backup, StoreError> {
    let loaded = store.load_manifest().await?;
    let mut tickets: BTreeMap<Uuid, SourceTicket> = BTreeMap::new();
    for e in loaded.entries.into_values() {
        let t = ticket(&mut tickets, e.ticket_id);
        t.number = Some(e.ticket_number.clone()).filter(|n| !n.is_empty());
        if documents {
            t.documents.push(e);
        }
    }
    let mut backup = Backup::default();
    if comments {
        read_comments(store, &mut tickets, &mut backup).await?;
        name_tickets(store, &mut tickets).await?;
    }
    let mut list: Vec<SourceTicket> = tickets
        .into_values()
        .filter(|t| !t.documents.is_empty() || !t.comments.is_empty())
        .collect();
    for t in &mut list {
        t.documents.sort_by(|a, b| a.path.cmp(&b.path));
    }
    list.sort_by(|a, b| (&a.number, a.id).cmp(&(&b.number, b.id)));
    backup.tickets = list;
    Ok(backup)
}

fn ticket(tickets: &mut BTreeMap<Uuid, SourceTicket>, id: Uuid) -> &mut SourceTicket {
    tickets.entry(id).or_insert_with(|| SourceTicket {
        id,
        ..SourceTicket::default()
    })
}

/// Every `<folder>/comments.jsonl`, into the ticket its lines name.
async fn read_comments(
    store: &dyn BackupStore,
    tickets: &mut BTreeMap<Uuid, SourceTicket>,
    backup: &mut Backup,
) -> Result<(), StoreError> {
    let folders = crate::store::folders(store).await?;
    for folder in folders {
        let key = layout::key(&folder, COMMENTS_JSONL);
        let Some(bytes) = store.read_small(&key).await? else {
            continue;
        };
        let lines = parse_lines(&bytes, &key);
        let Some(owner) = owner(&lines) else {
            if !lines.is_empty() {
                backup.warnings.push(format!(
                    "{}: no line can be read; its comments are not restored",
                    store.describe(&key)
                ));
            }
            continue;
        };
        let t = ticket(tickets, owner);
        if t.number.is_none() {
            t.number = number_from_folder(&folder, owner);
        }
        for c in lines {
            match &c.comment {
                Ok(x) if is_deleted(x) => backup.deleted += 1,
                _ => t.comments.push(c),
            }
        }
        order(&mut t.comments);
    }
    Ok(())
}

/// The lines of a `comments.jsonl`, each parsed (blank lines skipped).
pub(crate) fn parse_lines(bytes: &[u8], key: &str) -> Vec<SourceComment> {
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.trim_ascii().is_empty())
        .map(|(i, l)| SourceComment {
            source: format!("{key}:{}", i + 1),
            comment: serde_json::from_slice::<Comment>(l)
                .map_err(|e| format!("backup line damaged: {e}")),
        })
        .collect()
}

/// The ticket most lines of a file belong to (all of them, in a backup's own files).
fn owner(lines: &[SourceComment]) -> Option<Uuid> {
    let mut counts: HashMap<Uuid, usize> = HashMap::new();
    for c in lines.iter().filter_map(|c| c.comment.as_ref().ok()) {
        *counts.entry(c.ticket_id).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|(id, n)| (*n, *id))
        .map(|(id, _)| id)
}

/// Deleted before the backup (`deleted_at` set).
fn is_deleted(c: &Comment) -> bool {
    c.extra.get("deleted_at").is_some_and(|v| !v.is_null())
}

/// Original order: by `created_at` (comments without a readable time last), then by line.
pub(crate) fn order(comments: &mut [SourceComment]) {
    let line = |c: &SourceComment| -> usize {
        c.source
            .rsplit(':')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(usize::MAX)
    };
    let time = |c: &SourceComment| -> Option<DateTime<Utc>> {
        let at = c.comment.as_ref().ok()?.created_at.as_deref()?;
        DateTime::parse_from_rfc3339(at)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    };
    comments.sort_by_cached_key(|c| (time(c).is_none(), time(c), line(c)));
}

/// The ticket number a folder name stands for: the folder a backup gives that number.
fn number_from_folder(folder: &str, id: Uuid) -> Option<String> {
    (layout::folder_name(Some(folder), id) == folder && folder != id.to_string())
        .then(|| folder.to_string())
}

/// Numbers from `comments.csv` for tickets whose number the manifest does not give (a ticket
/// with comments and no documents); it is read only when one needs it.
async fn name_tickets(
    store: &dyn BackupStore,
    tickets: &mut BTreeMap<Uuid, SourceTicket>,
) -> Result<(), StoreError> {
    let unnamed = tickets
        .values()
        .any(|t| !t.comments.is_empty() && t.documents.is_empty());
    if !unnamed {
        return Ok(());
    }
    let Some(csv) = store.read_small(COMMENTS_CSV).await? else {
        return Ok(());
    };
    for (id, number) in numbers_in_csv(&csv) {
        if let Some(t) = tickets.get_mut(&id) {
            if t.documents.is_empty() {
                t.number = Some(number);
            }
        }
    }
    Ok(())
}

/// `ticket_id -> ticket_number` from `comments.csv` (rows that do not parse are skipped).
fn numbers_in_csv(data: &[u8]) -> HashMap<Uuid, String> {
    let mut rdr = csv::Reader::from_reader(data);
    let (id_col, number_col) = match rdr.headers() {
        Ok(h) => {
            let col = |name| h.iter().position(|c| c == name);
            (col(CSV_COLUMNS[0]), col(CSV_COLUMNS[1]))
        }
        Err(_) => (None, None),
    };
    let (Some(i), Some(n)) = (id_col, number_col) else {
        return HashMap::new();
    };
    rdr.records()
        .flatten()
        .filter_map(|r| {
            let id = r.get(i)?.parse::<Uuid>().ok()?;
            let number = r.get(n)?.trim();
            (!number.is_empty()).then(|| (id, number.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: u128, at: Option<&str>) -> String {
        let mut v = serde_json::json!({
            "comment_id": Uuid::from_u128(id),
            "ticket_id": Uuid::from_u128(7),
            "comment_text": format!("c{id}"),
        });
        if let Some(at) = at {
            v["created_at"] = at.into();
        }
        v.to_string()
    }

    fn texts(cs: &[SourceComment]) -> Vec<String> {
        cs.iter()
            .map(|c| match &c.comment {
                Ok(c) => c.comment_text.clone().unwrap_or_default(),
                Err(_) => "damaged".into(),
            })
            .collect()
    }

    #[test]
    fn comments_are_ordered_by_time_then_position() {
        let file = [
            line(1, Some("2026-01-05T10:00:00Z")),
            line(2, Some("2026-01-05T09:00:00.500+00:00")),
            String::new(),
            line(3, None),
            "{not json".to_string(),
            line(4, Some("2026-01-05T10:00:00.000Z")),
            line(5, Some("2026-01-05T09:00:00.5Z")),
        ]
        .join("\n");
        let mut cs = parse_lines(file.as_bytes(), "TIC1/comments.jsonl");
        assert_eq!(cs.len(), 6, "the blank line is skipped");
        assert_eq!(
            cs[3].source, "TIC1/comments.jsonl:5",
            "lines keep their number"
        );
        order(&mut cs);
        assert_eq!(texts(&cs), ["c2", "c5", "c1", "c4", "c3", "damaged"]);
        assert_eq!(owner(&cs), Some(Uuid::from_u128(7)));
    }

    #[test]
    fn numbers_come_from_comments_csv_or_a_plain_folder_name() {
        let csv = format!(
            "{}\n{},TIC:9,x,,,false,false,,hi\nnot-a-uuid,TIC2,x,,,false,false,,hi\n",
            CSV_COLUMNS.join(","),
            Uuid::from_u128(9)
        );
        let got = numbers_in_csv(csv.as_bytes());
        assert_eq!(got.len(), 1);
        assert_eq!(got[&Uuid::from_u128(9)], "TIC:9");
        let id = Uuid::from_u128(3);
        assert_eq!(
            number_from_folder("TIC001000", id).as_deref(),
            Some("TIC001000")
        );
        assert_eq!(number_from_folder(&id.to_string(), id), None);
        assert_eq!(number_from_folder("manifest.csv", id), None);
    }
}
