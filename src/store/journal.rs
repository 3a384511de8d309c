//! The manifest's journal (`manifest.journal.csv`): what changed in the manifest since it was
//! last written, one CSV row per change, appended as each change happens.
//!
//! Columns: `op` (`put` or `remove`), then the manifest's nine columns. A `put` row carries the
//! whole entry; a `remove` row only `ticket_id` and `document_id`. Replaying the rows in order
//! over the manifest gives the current state; replaying them twice gives the same state (a
//! crash between writing the manifest and removing the journal is harmless).
//!
//! A kill or a power cut can leave the last row torn: a row counts only when it ends with its
//! newline and every field parses, and a torn last row is dropped (its document was never
//! committed: the store acknowledges a row before the document's object appears).

use super::layout::is_safe_path;
use super::manifest::{parse_time, Entry, COLUMNS};
use super::StoreError;
use csv::StringRecord;
use uuid::Uuid;

/// One change to the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A document was backed up (or backed up again) at `entry.path`.
    Put(Entry),
    /// A document's row goes (pruned).
    Remove {
        /// Owning ticket.
        ticket_id: Uuid,
        /// The document.
        document_id: Uuid,
    },
}

/// The header line, with its newline.
pub fn header() -> Vec<u8> {
    format!("op,{}\n", COLUMNS.join(",")).into_bytes()
}

/// Rows for `records`, each ending with a newline.
pub fn encode(records: &[&Record]) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    for r in records {
        let row: Vec<String> = match r {
            Record::Put(e) => {
                let mut row = vec!["put".to_string()];
                row.extend([
                    e.ticket_id.to_string(),
                    e.ticket_number.clone(),
                    e.document_id.to_string(),
                    e.document_name.clone(),
                    e.path.clone(),
                    e.bytes.to_string(),
                    e.sha256.clone(),
                    e.mime_type.clone(),
                    e.downloaded_at.clone(),
                ]);
                row
            }
            Record::Remove {
                ticket_id,
                document_id,
            } => {
                let (t, d) = (ticket_id.to_string(), document_id.to_string());
                vec!["remove".into(), t, String::new(), d]
                    .into_iter()
                    .chain(std::iter::repeat_n(String::new(), 6))
                    .collect()
            }
        };
        // Writing into memory cannot fail.
        let _ = w.write_record(&row);
    }
    w.into_inner().unwrap_or_default()
}

/// What a journal held.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Its changes, in order.
    pub records: Vec<Record>,
    /// Bytes up to the end of the last whole row that reads (a writer appends after it: what
    /// follows is a torn row, whose open quote could otherwise swallow the next one).
    pub valid_len: u64,
    /// One line per row skipped (damaged, or with an unsafe path).
    pub warnings: Vec<String>,
}

/// Read a journal's bytes. A torn last row is dropped silently; a damaged row before the end
/// is skipped with a warning. A journal whose header is not ours is an error.
pub fn replay(data: &[u8], label: &str) -> Result<Replayed, StoreError> {
    let mut out = Replayed::default();
    if data.is_empty() {
        return Ok(out);
    }
    let head = header();
    if !data.starts_with(&head) {
        if !data.contains(&b'\n') && head.starts_with(data) {
            return Ok(out); // torn while the header was written: no row yet
        }
        return Err(StoreError::Damaged(format!(
            "{label} is not a manifest journal; move it away"
        )));
    }
    out.valid_len = head.len() as u64;
    let body = &data[head.len()..];
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(body);
    let mut row = StringRecord::new();
    // A row that does not decode is reported once another row follows it; the last row of
    // the file is the torn one a kill or a power cut leaves, and goes silently.
    let mut pending: Option<String> = None;
    while rdr.read_record(&mut row).unwrap_or(false) {
        let end = rdr.position().byte() as usize;
        let whole = end > 0 && body.get(end - 1) == Some(&b'\n');
        if let Some(w) = pending.take() {
            out.warnings.push(w);
        }
        match decode(&row) {
            Ok(_) if !whole => {}
            Ok(r) => {
                out.valid_len = (head.len() + end) as u64;
                match r {
                    Record::Put(e) if !is_safe_path(&e.path) => out.warnings.push(format!(
                        "{label}: unsafe path {:?} skipped",
                        e.path.escape_default().to_string()
                    )),
                    r => out.records.push(r),
                }
            }
            Err(e) => pending = Some(format!("{label}: damaged row skipped ({e})")),
        }
    }
    Ok(out)
}

/// One row as a record.
fn decode(row: &StringRecord) -> Result<Record, String> {
    let field = |i: usize| row.get(i).unwrap_or("");
    let uuid = |i: usize| Uuid::parse_str(field(i)).map_err(|e| format!("{}: {e}", COLUMNS[i - 1]));
    match field(0) {
        "remove" => Ok(Record::Remove {
            ticket_id: uuid(1)?,
            document_id: uuid(3)?,
        }),
        "put" if row.len() == COLUMNS.len() + 1 => {
            let sha256 = field(7);
            if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err("sha256 is not 64 hex digits".into());
            }
            if parse_time(field(9)).is_none() {
                return Err("downloaded_at is not an RFC 3339 time".into());
            }
            Ok(Record::Put(Entry {
                ticket_id: uuid(1)?,
                ticket_number: field(2).into(),
                document_id: uuid(3)?,
                document_name: field(4).into(),
                path: field(5).into(),
                bytes: field(6).parse().map_err(|e| format!("bytes: {e}"))?,
                sha256: sha256.to_ascii_lowercase(),
                mime_type: field(8).into(),
                downloaded_at: field(9).into(),
            }))
        }
        op => Err(format!("unknown op {op:?} or wrong number of fields")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::index::Index;
    use crate::store::manifest::tests::entry;

    fn journal(records: &[Record]) -> Vec<u8> {
        let mut data = header();
        data.extend(encode(&records.iter().collect::<Vec<_>>()));
        data
    }

    fn sample() -> Vec<Record> {
        let t = Uuid::new_v4();
        let a = entry(t, "a, \"quoted\"\nname.txt");
        let b = entry(t, "b.txt");
        vec![
            Record::Put(a.clone()),
            Record::Put(b.clone()),
            Record::Remove {
                ticket_id: t,
                document_id: a.document_id,
            },
            Record::Put(entry(t, "c.txt")),
        ]
    }

    #[test]
    fn rows_replay_in_order_with_removals() {
        let records = sample();
        let data = journal(&records);
        let r = replay(&data, "j").unwrap();
        assert_eq!(r.records, records);
        assert_eq!(r.valid_len, data.len() as u64);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        let mut ix = Index::default();
        for rec in &r.records {
            ix.apply(rec);
        }
        assert_eq!(ix.entries().len(), 2, "a was removed");
    }

    #[test]
    fn a_journal_cut_anywhere_replays_exactly_its_whole_rows() {
        let records = sample();
        let data = journal(&records);
        let ends: Vec<usize> = (1..=records.len())
            .map(|n| journal(&records[..n]).len())
            .collect();
        for cut in 0..=data.len() {
            let r = replay(&data[..cut], "j").unwrap();
            let whole = ends.iter().filter(|&&e| e <= cut).count();
            assert_eq!(r.records, records[..whole], "cut at {cut}");
            assert!(r.warnings.is_empty(), "cut at {cut}: {:?}", r.warnings);
            let expect_len = if cut < header().len() {
                0
            } else {
                ends.iter()
                    .rev()
                    .find(|&&e| e <= cut)
                    .copied()
                    .unwrap_or(header().len())
            };
            assert_eq!(r.valid_len, expect_len as u64, "cut at {cut}");
        }
    }

    #[test]
    fn a_damaged_row_before_the_end_is_skipped_with_a_warning() {
        let records = sample();
        let mut data = header();
        data.extend(encode(&[&records[0]]));
        data.extend(b"put,not-a-uuid,x\n");
        data.extend(b"\0\0\0\0\n");
        data.extend(encode(&[&records[1]]));
        let r = replay(&data, "j").unwrap();
        assert_eq!(r.records, records[..2]);
        assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
        let mut unsafe_path = match &records[1] {
            Record::Put(e) => e.clone(),
            Record::Remove { .. } => unreachable!(),
        };
        unsafe_path.path = "../escape.txt".into();
        let r = replay(&journal(&[Record::Put(unsafe_path)]), "j").unwrap();
        assert!(r.records.is_empty() && r.warnings.len() == 1);
        assert!(
            replay(b"ticket_id,whatever\nx\n", "j").is_err(),
            "not a journal"
        );
    }

    #[test]
    fn replaying_a_journal_already_folded_into_the_manifest_changes_nothing() {
        let records = sample();
        let t = Uuid::new_v4();
        let mut same_path = entry(t, "b.txt");
        same_path.path = match &records[1] {
            Record::Put(e) => e.path.clone(),
            Record::Remove { .. } => unreachable!(),
        };
        let mut all = records.clone();
        all.push(Record::Put(same_path));
        let mut ix = Index::new(Default::default());
        for r in &all {
            ix.apply(r);
        }
        let once = ix.entries().clone();
        for r in &all {
            ix.apply(r);
        }
        assert_eq!(*ix.entries(), once);
    }
}
