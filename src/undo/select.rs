//! Which rows of a results file undo touches, and which of them an earlier undo already did.
//!
//! Pure: results rows in, targets out. Only rows whose latest status is `created` or `existing`
//! are touched; `failed`, `planned`, `cancelled` and `sending` rows, rows of an undo, and what a
//! restore found on its target already (`present`) are never acted on.

use crate::journal::{latest_by_key, ResultRow, Status};
use uuid::Uuid;

/// Kind label of a document row.
pub(crate) const KIND_DOCUMENT: &str = "document";
/// Kind label of a comment row.
pub(crate) const KIND_COMMENT: &str = "comment";

/// What undo does to one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// `DELETE /api/v1/tickets/{ticket}/documents/{document}`.
    Delete {
        /// Ticket UUID.
        ticket: Uuid,
        /// Document UUID.
        document: Uuid,
    },
    /// `PUT /api/v1/tickets/{ticket}/comments/{comment}` with the redaction text.
    Redact {
        /// Ticket UUID.
        ticket: Uuid,
        /// Comment UUID.
        comment: Uuid,
    },
}

/// One row to undo: the source row, and the action (or why the row cannot be acted on).
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The row of the source results file (latest for its op key).
    pub(crate) source: ResultRow,
    /// The action, or a one-line reason it is impossible (ids missing in the source).
    pub(crate) action: Result<Action, String>,
}

/// The touched rows of a source results file, in file order.
#[derive(Debug, Default)]
pub(crate) struct Selection {
    /// Documents created or found by the job: deleted.
    pub(crate) documents: Vec<ResultRow>,
    /// Comments created or found by the job: listed, or redacted on request.
    pub(crate) comments: Vec<ResultRow>,
    /// Rows left alone (failed, planned, cancelled, sending, or an undo status).
    pub(crate) untouched: usize,
    /// Of those, creates whose outcome is unknown (an interrupted import): the server may hold
    /// them, but their ids are not known until the import is resumed and reconciles them.
    pub(crate) in_doubt: usize,
    /// Of those, what a restore found on its target before it ran (`present`): never its own.
    pub(crate) present: usize,
}

/// Whether undo acts on a row with this (latest) status.
pub(crate) fn touched(status: Status) -> bool {
    matches!(status, Status::Created | Status::Existing)
}

/// Split the rows of a source results file (several rows per op key are allowed: a journal
/// left by a crash; the latest counts) into the documents and comments to undo.
pub(crate) fn select(rows: Vec<ResultRow>) -> Selection {
    let (mut latest, order) = latest_by_key(rows);
    let mut sel = Selection::default();
    for key in order {
        let Some(row) = latest.remove(&key) else {
            continue;
        };
        match (touched(row.status), row.kind.as_str()) {
            (true, KIND_DOCUMENT) => sel.documents.push(row),
            (true, KIND_COMMENT) => sel.comments.push(row),
            _ => {
                sel.untouched += 1;
                if row.outcome_unknown() {
                    sel.in_doubt += 1;
                }
                if row.status == Status::Present {
                    sel.present += 1;
                }
            }
        }
    }
    sel
}

/// The targets, in source order: every document, and the comments when `redact` is set.
/// (What an earlier undo already finished is skipped by the runner.)
pub(crate) fn targets(sel: &Selection, redact: bool) -> Vec<Target> {
    let comments: &[ResultRow] = if redact { &sel.comments } else { &[] };
    sel.documents
        .iter()
        .chain(comments)
        .map(|row| Target {
            source: row.clone(),
            action: action(row),
        })
        .collect()
}

/// The action for a touched row, from its ids.
fn action(row: &ResultRow) -> Result<Action, String> {
    let ticket = parse_id(&row.ticket_id, "ticket_id")?;
    if row.kind == KIND_COMMENT {
        let comment = parse_id(&row.comment_id, "comment_id")?;
        Ok(Action::Redact { ticket, comment })
    } else {
        let document = parse_id(&row.document_id, "document_id")?;
        Ok(Action::Delete { ticket, document })
    }
}

fn parse_id(value: &str, column: &str) -> Result<Uuid, String> {
    value
        .trim()
        .parse::<Uuid>()
        .map_err(|_| format!("the source row has no valid {column} ({value:?}): nothing to undo"))
}

/// Why an existing `--results` file is not an undo results file, if it is not: an undo
/// never writes `created`, `existing`, `sending` or `unknown` rows (an import results file
/// does).
pub(crate) fn not_an_undo_file(rows: &[ResultRow]) -> Option<String> {
    rows.iter()
        .find(|r| {
            matches!(
                r.status,
                Status::Created | Status::Existing | Status::Sending | Status::Unknown
            )
        })
        .map(|r| {
            format!(
                "op {} has status {}, which an undo never writes",
                r.op_key,
                r.status.as_str()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "7aea3e18-2606-4297-831c-3766e602e9b6";
    const D: &str = "5aa73d90-db8b-4cba-a367-db1ff89c43fd";
    const C: &str = "0b7c7d9e-30a2-4c59-8a55-3a1c3c2b1f10";

    fn row(key: &str, kind: &str, status: Status) -> ResultRow {
        ResultRow {
            op_key: key.into(),
            source: "job.csv:2".into(),
            ticket: "TIC001000".into(),
            ticket_id: T.into(),
            kind: kind.into(),
            status,
            comment_id: if kind == KIND_COMMENT {
                C.into()
            } else {
                String::new()
            },
            document_id: if kind == KIND_DOCUMENT {
                D.into()
            } else {
                String::new()
            },
            file: String::new(),
            bytes: String::new(),
            sha256: String::new(),
            http_status: String::new(),
            attempts: 1,
            error: String::new(),
            finished_at: String::new(),
        }
    }

    fn keys(rows: &[ResultRow]) -> Vec<&str> {
        rows.iter().map(|r| r.op_key.as_str()).collect()
    }

    #[test]
    fn only_created_and_existing_rows_are_touched() {
        let statuses = [
            Status::Created,
            Status::Existing,
            Status::Failed,
            Status::Planned,
            Status::Cancelled,
            Status::Sending,
            Status::Deleted,
            Status::Missing,
            Status::Redacted,
            Status::Present,
        ];
        let rows: Vec<ResultRow> = statuses
            .iter()
            .enumerate()
            .flat_map(|(i, s)| {
                [
                    row(&format!("d{i}"), KIND_DOCUMENT, *s),
                    row(&format!("c{i}"), KIND_COMMENT, *s),
                ]
            })
            .collect();
        let sel = select(rows);
        assert_eq!(keys(&sel.documents), ["d0", "d1"]);
        assert_eq!(keys(&sel.comments), ["c0", "c1"]);
        assert_eq!(sel.untouched, 16);
        assert_eq!(
            sel.in_doubt, 2,
            "the sending document and comment are in doubt"
        );
        assert_eq!(sel.present, 2, "a restore's present rows are not its own");
    }

    #[test]
    fn the_latest_row_of_a_journal_decides() {
        let rows = vec![
            row("a", KIND_DOCUMENT, Status::Sending),
            row("b", KIND_DOCUMENT, Status::Created),
            row("a", KIND_DOCUMENT, Status::Created),
            row("b", KIND_DOCUMENT, Status::Sending),
            row("c", KIND_DOCUMENT, Status::Sending),
        ];
        let sel = select(rows);
        assert_eq!(keys(&sel.documents), ["a"]);
        assert_eq!(sel.untouched, 2);
    }

    #[test]
    fn comments_are_targets_only_when_redacting() {
        let sel = select(vec![
            row("d", KIND_DOCUMENT, Status::Created),
            row("c", KIND_COMMENT, Status::Created),
        ]);
        let t = targets(&sel, false);
        assert_eq!(t.len(), 1);
        assert_eq!(
            t[0].action,
            Ok(Action::Delete {
                ticket: T.parse().unwrap(),
                document: D.parse().unwrap()
            })
        );
        let t = targets(&sel, true);
        assert_eq!(t.len(), 2);
        assert_eq!(
            t[1].action,
            Ok(Action::Redact {
                ticket: T.parse().unwrap(),
                comment: C.parse().unwrap()
            })
        );
    }

    #[test]
    fn a_row_without_ids_becomes_an_impossible_target() {
        let mut r = row("a", KIND_DOCUMENT, Status::Created);
        r.document_id = String::new();
        let sel = select(vec![r]);
        let t = targets(&sel, false);
        let err = t[0].action.clone().unwrap_err();
        assert!(err.contains("document_id"), "{err}");
    }

    #[test]
    fn an_import_results_file_is_not_an_undo_file() {
        let undo = [
            row("a", KIND_DOCUMENT, Status::Deleted),
            row("b", KIND_DOCUMENT, Status::Failed),
            row("c", KIND_COMMENT, Status::Redacted),
        ];
        assert_eq!(not_an_undo_file(&undo), None);
        let import = [row("a", KIND_DOCUMENT, Status::Created)];
        assert!(not_an_undo_file(&import).is_some());
    }
}
