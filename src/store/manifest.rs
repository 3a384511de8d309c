//! The manifest (`manifest.csv`): one row per backed-up document, its columns, and its CSV
//! form. Every store writes it whole, atomically, at the end of a run (a reader never sees half
//! of one); documents completed in between are in the journal (`journal.rs`).

use super::layout::{is_safe_path, path_key};
use super::StoreError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// Columns, in order.
pub const COLUMNS: [&str; 9] = [
    "ticket_id",
    "ticket_number",
    "document_id",
    "document_name",
    "path",
    "bytes",
    "sha256",
    "mime_type",
    "downloaded_at",
];

/// One downloaded document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Owning ticket.
    pub ticket_id: Uuid,
    /// Its number (the folder name comes from it).
    pub ticket_number: String,
    /// Document UUID.
    pub document_id: Uuid,
    /// Name as the server gave it (untrusted; for reference only).
    pub document_name: String,
    /// Path relative to DIR, `/`-separated.
    pub path: String,
    /// Size on disk.
    pub bytes: u64,
    /// sha256 of the file, hex.
    pub sha256: String,
    /// MIME type.
    pub mime_type: String,
    /// When it was downloaded (RFC 3339, UTC).
    pub downloaded_at: String,
}

/// Rows keyed by (ticket, document).
pub type Entries = BTreeMap<(Uuid, Uuid), Entry>;

/// Read a manifest from `data` (`label` names it in messages); no data is an empty manifest.
/// A row with an unsafe path (see [`is_safe_path`]) or with the path of another row (the
/// later download wins: its file is the one on disk) is dropped with a warning: its document
/// counts as not backed up.
pub fn parse(data: &[u8], label: &str) -> Result<Entries, StoreError> {
    let mut out = Entries::new();
    let mut by_path: HashMap<String, (Uuid, Uuid)> = HashMap::new();
    let warn = |row: usize, what: &str, e: &Entry| {
        eprintln!(
            "warning: {label} row {row}: {what} {:?}; document {} is treated as not backed up",
            e.path.escape_default().to_string(),
            e.document_id
        );
    };
    for (i, row) in csv::Reader::from_reader(data)
        .deserialize::<Entry>()
        .enumerate()
    {
        let e = row.map_err(|e| {
            StoreError::Damaged(format!(
                "manifest {label} is damaged at row {}: {e}; move it away to start a full backup",
                i + 2
            ))
        })?;
        if !is_safe_path(&e.path) {
            warn(i + 2, "unsafe path", &e);
            continue;
        }
        let key = (e.ticket_id, e.document_id);
        if let Some(old) = by_path.get(&path_key(&e.path)).copied() {
            if old != key {
                let Some(prev) = out.get(&old) else { continue };
                if is_later(&prev.downloaded_at, &e.downloaded_at) {
                    warn(i + 2, "path used by another row", &e);
                    continue;
                }
                warn(i + 2, "path used by another row", prev);
                out.remove(&old);
            }
        }
        if let Some(prev) = out.get(&key) {
            by_path.remove(&path_key(&prev.path));
        }
        by_path.insert(path_key(&e.path), key);
        out.insert(key, e);
    }
    Ok(out)
}

/// Whether timestamp `a` is later than `b` (RFC 3339; text order when one does not parse).
fn is_later(a: &str, b: &str) -> bool {
    match (parse_time(a), parse_time(b)) {
        (Some(a), Some(b)) => a > b,
        _ => a > b,
    }
}

/// The manifest as CSV (header, then rows sorted by path).
pub fn to_csv(entries: &Entries, out: &mut impl std::io::Write) -> std::io::Result<()> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(out);
    w.write_record(COLUMNS)?;
    let mut rows: Vec<&Entry> = entries.values().collect();
    rows.sort_by(|a, b| a.path.cmp(&b.path));
    for e in rows {
        w.serialize(e)?;
    }
    w.flush()
}

/// Now, as written to `downloaded_at` (RFC 3339, UTC, milliseconds).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A `downloaded_at` value as a time.
pub fn parse_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::layout::names;

    pub(crate) fn entry(ticket: Uuid, name: &str) -> Entry {
        Entry {
            ticket_id: ticket,
            ticket_number: "TIC001000".into(),
            document_id: Uuid::new_v4(),
            document_name: name.into(),
            path: format!("TIC001000/{}", names::clean(name)),
            bytes: 42,
            sha256: "ab".repeat(32),
            mime_type: "text/plain".into(),
            downloaded_at: "2026-11-28T07:00:00.000Z".into(),
        }
    }

    fn csv_of(entries: &Entries) -> Vec<u8> {
        let mut out = Vec::new();
        to_csv(entries, &mut out).unwrap();
        out
    }

    #[test]
    fn manifest_round_trips_with_awkward_names() {
        let t = Uuid::new_v4();
        let mut m = Entries::new();
        for name in [
            "plain.txt",
            "comma, \"quote\".txt",
            "line\nbreak.txt",
            "é.pdf",
        ] {
            let e = entry(t, name);
            m.insert((e.ticket_id, e.document_id), e);
        }
        let data = csv_of(&m);
        assert_eq!(parse(&data, "m").unwrap(), m);
        assert!(data.starts_with(COLUMNS.join(",").as_bytes()));
    }

    #[test]
    fn missing_manifest_is_empty_and_damaged_one_is_an_error() {
        assert!(parse(b"", "m").unwrap().is_empty());
        let err = parse(b"ticket_id,x\nnot-a-uuid,1\n", "m")
            .unwrap_err()
            .to_string();
        assert!(err.contains("damaged at row 2"), "{err}");
    }

    #[test]
    fn unsafe_and_duplicate_paths_are_dropped_on_reading() {
        let t = Uuid::new_v4();
        let good = entry(t, "a.txt");
        let mut rows = vec![good.clone()];
        for bad in [
            "../pwned.txt",
            "/etc/passwd",
            "TIC1/a/b.txt",
            "TIC1/comments.jsonl",
        ] {
            let mut e = entry(t, "x");
            e.path = bad.into();
            rows.push(e);
        }
        let mut older = entry(t, "A.TXT");
        older.downloaded_at = "2026-11-27T07:00:00Z".into();
        rows.push(older);
        let mut w = csv::Writer::from_writer(Vec::new());
        for r in &rows {
            w.serialize(r).unwrap();
        }
        let data = w.into_inner().unwrap();
        let read_back = parse(&data, "m").unwrap();
        assert_eq!(read_back.into_values().collect::<Vec<_>>(), vec![good]);
    }

    #[test]
    fn times_compare_as_times_whatever_their_precision() {
        assert!(is_later("2026-11-28T07:00:00.5Z", "2026-11-28T07:00:00Z"));
        assert!(!is_later("2026-11-28T07:00:00Z", "2026-11-28T07:00:00.5Z"));
        assert!(parse_time(&now()).is_some());
    }
}
