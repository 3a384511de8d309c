//! Comment export: every comment of a ticket (paged by offset) to
//! `<ticket>/comments.jsonl` in the store, and `comments.csv` rebuilt from all of those, so it
//! always covers every ticket backed up so far, not only this run's.

use crate::api::{ApiError, Client, Comment};
use crate::exec::retry::{with_retries, RetryPolicy};
use crate::store::layout::{self, COMMENTS_CSV, COMMENTS_JSONL};
use crate::store::{BackupStore, Expected, StoreError};
use bytes::Bytes;
use std::collections::HashMap;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

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

/// One JSON object per line (every field the server sent).
pub fn to_jsonl(comments: &[Comment]) -> Bytes {
    let mut out = Vec::new();
    for c in comments {
        // A `Comment` came from JSON and goes back to JSON: this cannot fail.
        let _ = serde_json::to_writer(&mut out, c);
        out.push(b'\n');
    }
    Bytes::from(out)
}

/// Rebuild `comments.csv` from every `<folder>/comments.jsonl` of the store; returns the row
/// count. The `ticket_number` column comes from `numbers` (ticket id -> number as the server
/// spells it); only a ticket missing there falls back to its folder's name. The CSV streams
/// into the store, one ticket at a time.
pub async fn rebuild_csv(
    store: &dyn BackupStore,
    numbers: &HashMap<Uuid, String>,
) -> Result<u64, StoreError> {
    let folders = crate::store::folders(store).await?;
    let mut upload = store.create(COMMENTS_CSV).await?;
    let mut rows = 0u64;
    let mut head = csv::Writer::from_writer(Vec::new());
    let _ = head.write_record(CSV_COLUMNS);
    upload
        .write(Bytes::from(head.into_inner().unwrap_or_default()))
        .await?;
    for folder in &folders {
        let Some(text) = store
            .read_small(&layout::key(folder, COMMENTS_JSONL))
            .await?
        else {
            continue;
        };
        let (chunk, n) = csv_rows(&text, folder, numbers).map_err(|e| {
            StoreError::Damaged(format!(
                "{}: {e}",
                store.describe(&layout::key(folder, COMMENTS_JSONL))
            ))
        })?;
        rows += n;
        upload.write(chunk).await?;
    }
    upload.finish(&Expected::default()).await?.commit().await?;
    Ok(rows)
}

/// The CSV rows of one ticket's `comments.jsonl`, and how many.
fn csv_rows(
    text: &[u8],
    folder: &str,
    numbers: &HashMap<Uuid, String>,
) -> Result<(Bytes, u64), String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut n = 0;
    for line in text
        .split(|&b| b == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
    {
        let c: Comment = serde_json::from_slice(line).map_err(|e| e.to_string())?;
        let number = numbers.get(&c.ticket_id).map_or(folder, String::as_str);
        w.write_record(csv_row(&c, number))
            .map_err(|e| e.to_string())?;
        n += 1;
    }
    w.flush().map_err(|e| e.to_string())?;
    Ok((Bytes::from(w.into_inner().map_err(|e| e.to_string())?), n))
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

    #[tokio::test]
    async fn jsonl_per_ticket_and_one_csv_for_all() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::FolderStore::new(dir.path(), false);
        let (t1, t2) = (Uuid::new_v4(), Uuid::new_v4());
        for (name, t, texts) in [
            ("TIC2", t2, vec!["later"]),
            ("TIC1", t1, vec!["first, with \"quotes\"", "multi\nline"]),
        ] {
            let cs: Vec<_> = texts.iter().map(|x| comment(t, x)).collect();
            store
                .put_small(&layout::key(name, COMMENTS_JSONL), to_jsonl(&cs))
                .await
                .unwrap();
        }
        let jsonl = std::fs::read_to_string(dir.path().join("TIC1").join(COMMENTS_JSONL)).unwrap();
        assert_eq!(jsonl.lines().count(), 2);
        let first: serde_json::Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
        assert_eq!(first["note"], "first, with \"quotes\"", "extra fields kept");
        let numbers = HashMap::from([(t2, "TIC:2".to_string())]);
        assert_eq!(rebuild_csv(&store, &numbers).await.unwrap(), 3);
        let mut r = csv::Reader::from_path(dir.path().join(COMMENTS_CSV)).unwrap();
        assert_eq!(r.headers().unwrap().iter().collect::<Vec<_>>(), CSV_COLUMNS);
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
