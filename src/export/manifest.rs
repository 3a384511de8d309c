//! `DIR/manifest.csv`: one row per downloaded document, rewritten atomically (temp file in
//! DIR, fsync, rename), so a crash leaves either the old or the new manifest, never half.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// File name of the manifest inside the backup folder.
pub const MANIFEST_FILE: &str = "manifest.csv";

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

impl Entry {
    /// The file on disk.
    pub fn file(&self, dir: &Path) -> PathBuf {
        self.path
            .split('/')
            .fold(dir.to_path_buf(), |p, c| p.join(c))
    }
}

/// Rows keyed by (ticket, document).
pub type Entries = BTreeMap<(Uuid, Uuid), Entry>;

/// Read a manifest; a missing file is an empty manifest.
pub fn read(path: &Path) -> Result<Entries> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Entries::new()),
        Err(e) => return Err(Error::io("cannot read manifest", path, e)),
    };
    let mut out = Entries::new();
    for (i, row) in csv::Reader::from_reader(file)
        .deserialize::<Entry>()
        .enumerate()
    {
        let e = row.map_err(|e| {
            Error::Fatal(format!(
                "manifest {} is damaged at row {}: {e}; move it away to start a full backup",
                path.display(),
                i + 2
            ))
        })?;
        out.insert((e.ticket_id, e.document_id), e);
    }
    Ok(out)
}

/// Write the manifest atomically (rows sorted by path): temp file in the same folder, fsync,
/// rename.
pub fn write_atomic(path: &Path, entries: &Entries) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let err = |e: std::io::Error| Error::io("cannot write manifest", path, e);
    let mut tmp = tempfile::Builder::new()
        .prefix(".manifest-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(err)?;
    {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(tmp.as_file_mut());
        w.write_record(COLUMNS).map_err(|e| err(e.into()))?;
        let mut rows: Vec<&Entry> = entries.values().collect();
        rows.sort_by(|a, b| a.path.cmp(&b.path));
        for e in rows {
            w.serialize(e).map_err(|e| err(e.into()))?;
        }
        w.flush().map_err(err)?;
    }
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    sync_dir(dir);
    Ok(())
}

/// Make a rename durable (best effort; not all platforms can open a folder).
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The manifest of a running backup: shared by the workers, rewritten every few seconds and
/// at the end.
pub struct Store {
    path: PathBuf,
    state: Mutex<State>,
    every: Duration,
}

struct State {
    entries: Entries,
    dirty: bool,
    written: Instant,
}

impl Store {
    /// A store over `entries` read from `path`, rewritten at most every `every`.
    pub fn new(path: PathBuf, entries: Entries, every: Duration) -> Self {
        Store {
            path,
            state: Mutex::new(State {
                entries,
                dirty: false,
                written: Instant::now(),
            }),
            every,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The rows of one ticket.
    pub fn of_ticket(&self, ticket: Uuid) -> Vec<Entry> {
        self.lock()
            .entries
            .range((ticket, Uuid::nil())..=(ticket, Uuid::max()))
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// A copy of every row.
    pub fn snapshot(&self) -> Entries {
        self.lock().entries.clone()
    }

    /// Add or replace a row.
    pub fn record(&self, e: Entry) {
        let mut s = self.lock();
        s.entries.insert((e.ticket_id, e.document_id), e);
        s.dirty = true;
    }

    /// Drop a row (pruned document).
    pub fn remove(&self, ticket: Uuid, document: Uuid) {
        let mut s = self.lock();
        if s.entries.remove(&(ticket, document)).is_some() {
            s.dirty = true;
        }
    }

    /// Rewrite when something changed and the last write is old enough.
    pub fn maybe_flush(&self) -> Result<()> {
        let due = {
            let s = self.lock();
            s.dirty && s.written.elapsed() >= self.every
        };
        if due {
            self.flush()
        } else {
            Ok(())
        }
    }

    /// Rewrite now when something changed.
    pub fn flush(&self) -> Result<()> {
        let mut s = self.lock();
        if !s.dirty {
            return Ok(());
        }
        write_atomic(&self.path, &s.entries)?;
        s.dirty = false;
        s.written = Instant::now();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ticket: Uuid, name: &str) -> Entry {
        Entry {
            ticket_id: ticket,
            ticket_number: "TIC001000".into(),
            document_id: Uuid::new_v4(),
            document_name: name.into(),
            path: format!("TIC001000/{name}"),
            bytes: 42,
            sha256: "ab".repeat(32),
            mime_type: "text/plain".into(),
            downloaded_at: "2026-11-28T07:00:00Z".into(),
        }
    }

    #[test]
    fn manifest_round_trips_with_awkward_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MANIFEST_FILE);
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
        write_atomic(&path, &m).unwrap();
        assert_eq!(read(&path).unwrap(), m);
        let header = std::fs::read_to_string(&path).unwrap();
        assert!(header.starts_with(&COLUMNS.join(",")), "{header}");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from(MANIFEST_FILE)]);
    }

    #[test]
    fn missing_manifest_is_empty_and_damaged_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MANIFEST_FILE);
        assert!(read(&path).unwrap().is_empty());
        std::fs::write(&path, "ticket_id,x\nnot-a-uuid,1\n").unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("damaged at row 2"), "{err}");
    }

    #[test]
    fn store_lists_one_ticket_and_flushes_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MANIFEST_FILE);
        let store = Store::new(path.clone(), Entries::new(), Duration::from_secs(3600));
        let (t1, t2) = (Uuid::new_v4(), Uuid::new_v4());
        let a = entry(t1, "a.txt");
        store.record(a.clone());
        store.record(entry(t2, "b.txt"));
        assert_eq!(store.of_ticket(t1), vec![a.clone()]);
        store.maybe_flush().unwrap();
        assert!(!path.exists(), "not due yet");
        store.flush().unwrap();
        assert_eq!(read(&path).unwrap().len(), 2);
        store.remove(t1, a.document_id);
        store.flush().unwrap();
        assert_eq!(read(&path).unwrap().len(), 1);
    }
}
