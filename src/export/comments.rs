//! Comment export: every comment of a ticket (paged by offset) to
//! `DIR/<ticket>/comments.jsonl`, and `DIR/comments.csv` rebuilt from all of those files, so
//! it always covers every ticket backed up so far, not only this run's.

use crate::api::{ApiError, Client, Comment};
use crate::error::{Error, Result};
use crate::exec::retry::{with_retries, RetryPolicy};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Per-ticket comment file.
pub const COMMENTS_JSONL: &str = "comments.jsonl";
/// All comments, one CSV.
pub const COMMENTS_CSV: &str = "comments.csv";
/// Comments per request (the server's maximum).
const PAGE: u32 = 200;

/// Columns of `comments.csv`.
pub const CSV_COLUMNS: [&str; 9] = [
    "ticket_id",
    "ticket_number",
    "comment_id",
    "created_at",
    "user_id",
    "is_internal",
    "is_resolution",
    "deleted_at",
    "comment_text",
];

/// Every comment of a ticket, oldest first.
pub async fn list_all(
    client: &Client,
    policy: &RetryPolicy,
    cancel: &CancellationToken,
    ticket: Uuid,
) -> Result<Vec<Comment>, ApiError> {
    let mut all = Vec::new();
    let mut offset = 0u32;
    loop {
        let page = with_retries(client, policy, true, cancel, || {
            client.list_comments(ticket, PAGE, offset)
        })
        .await
        .result?;
        let n = page.len() as u32;
        all.extend(page);
        if n < PAGE {
            return Ok(all);
        }
        offset += n;
    }
}

/// Write one JSON object per line, atomically.
pub fn write_jsonl(folder: &Path, comments: &[Comment]) -> std::io::Result<()> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".comments-")
        .suffix(".tmp")
        .tempfile_in(folder)?;
    {
        let mut w = std::io::BufWriter::new(tmp.as_file_mut());
        for c in comments {
            serde_json::to_writer(&mut w, c)?;
            w.write_all(b"\n")?;
        }
        w.flush()?;
    }
    tmp.as_file().sync_all()?;
    super::download::make_readable(tmp.path())?;
    tmp.persist(folder.join(COMMENTS_JSONL))
        .map_err(|e| e.error)?;
    Ok(())
}

/// Rebuild `DIR/comments.csv` from every `DIR/*/comments.jsonl`; returns the row count.
/// The `ticket_number` column comes from `numbers` (ticket id -> number as the server spells
/// it); only a ticket missing there falls back to its folder's name.
pub fn rebuild_csv(dir: &Path, numbers: &HashMap<Uuid, String>) -> Result<u64> {
    let path = dir.join(COMMENTS_CSV);
    let err = |e: std::io::Error| Error::io("cannot write comments file", path.clone(), e);
    let mut folders: Vec<_> = std::fs::read_dir(dir)
        .map_err(err)?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .filter(|p| p.join(COMMENTS_JSONL).is_file())
        .collect();
    folders.sort();
    let mut tmp = tempfile::Builder::new()
        .prefix(".comments-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(err)?;
    let mut rows = 0u64;
    {
        let mut w = csv::Writer::from_writer(tmp.as_file_mut());
        w.write_record(CSV_COLUMNS).map_err(|e| err(e.into()))?;
        for folder in &folders {
            let folder_name = folder
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text = std::fs::read_to_string(folder.join(COMMENTS_JSONL)).map_err(err)?;
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let c: Comment = serde_json::from_str(line).map_err(|e| err(e.into()))?;
                let number = numbers.get(&c.ticket_id).unwrap_or(&folder_name);
                w.write_record(csv_row(&c, number))
                    .map_err(|e| err(e.into()))?;
                rows += 1;
            }
        }
        w.flush().map_err(err)?;
    }
    tmp.as_file().sync_all().map_err(err)?;
    super::download::make_readable(tmp.path()).map_err(err)?;
    tmp.persist(&path).map_err(|e| err(e.error))?;
    Ok(rows)
}

fn csv_row(c: &Comment, ticket_number: &str) -> [String; 9] {
    let deleted = c
        .extra
        .get("deleted_at")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    [
        c.ticket_id.to_string(),
        ticket_number.to_string(),
        c.comment_id.to_string(),
        c.created_at.clone().unwrap_or_default(),
        c.user_id.map(|u| u.to_string()).unwrap_or_default(),
        c.is_internal.to_string(),
        c.is_resolution.to_string(),
        deleted,
        c.comment_text.clone().unwrap_or_default(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comment(ticket: Uuid, text: &str) -> Comment {
        serde_json::from_value(serde_json::json!({
            "comment_id": Uuid::new_v4(),
            "ticket_id": ticket,
            "comment_text": text,
            "is_internal": true,
            "created_at": "2026-11-28T07:00:00Z",
            "note": text,
        }))
        .unwrap()
    }

    #[test]
    fn jsonl_per_ticket_and_one_csv_for_all() {
        let dir = tempfile::tempdir().unwrap();
        let (t1, t2) = (Uuid::new_v4(), Uuid::new_v4());
        for (name, t, texts) in [
            ("TIC2", t2, vec!["later"]),
            ("TIC1", t1, vec!["first, with \"quotes\"", "multi\nline"]),
        ] {
            let folder = dir.path().join(name);
            std::fs::create_dir(&folder).unwrap();
            let cs: Vec<_> = texts.iter().map(|x| comment(t, x)).collect();
            write_jsonl(&folder, &cs).unwrap();
        }
        let jsonl = std::fs::read_to_string(dir.path().join("TIC1").join(COMMENTS_JSONL)).unwrap();
        assert_eq!(jsonl.lines().count(), 2);
        let first: serde_json::Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
        assert_eq!(first["note"], "first, with \"quotes\"", "extra fields kept");
        let numbers = HashMap::from([(t2, "TIC:2".to_string())]);
        assert_eq!(rebuild_csv(dir.path(), &numbers).unwrap(), 3);
        let mut r = csv::Reader::from_path(dir.path().join(COMMENTS_CSV)).unwrap();
        let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
        assert_eq!(&rows[0][1], "TIC1");
        assert_eq!(&rows[1][8], "multi\nline");
        assert_eq!(
            &rows[2][1], "TIC:2",
            "the ticket's number, not its folder's name"
        );
        assert_eq!(&rows[0][5], "true");
    }
}
