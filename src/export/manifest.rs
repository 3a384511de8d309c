//! `DIR/manifest.csv`: one row per downloaded document, rewritten atomically (temp file in
//! DIR, fsync, rename), so a crash leaves either the old or the new manifest, never half.

use super::names;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
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

/// Whether a manifest path is one a backup could have written: `<folder>/<file>`, both parts
/// plain names in the sanitizer's canonical form, the folder not one of DIR's own files and
/// the file not the comments export. Anything else could point outside DIR (`../x`, `/etc/x`).
pub(crate) fn is_safe_path(path: &str) -> bool {
    let mut parts = path.split('/');
    let (Some(folder), Some(file), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    names::is_canonical(folder)
        && names::is_canonical(file)
        && !super::ticket::ROOT_RESERVED
            .iter()
            .any(|r| r.eq_ignore_ascii_case(folder))
        && !file.eq_ignore_ascii_case(super::comments::COMMENTS_JSONL)
}

/// The key that makes two paths the same file (case-insensitive file systems included).
pub(crate) fn path_key(path: &str) -> String {
    path.to_lowercase()
}

/// Read a manifest; a missing file is an empty manifest. A row with an unsafe path (see
/// [`is_safe_path`]) or with the path of another row (the later download wins: its file is
/// the one on disk) is dropped with a warning: its document counts as not backed up.
pub fn read(path: &Path) -> Result<Entries> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Entries::new()),
        Err(e) => return Err(Error::io("cannot read manifest", path, e)),
    };
    let mut out = Entries::new();
    let mut by_path: HashMap<String, (Uuid, Uuid)> = HashMap::new();
    let warn = |row: usize, what: &str, e: &Entry| {
        eprintln!(
            "warning: {} row {row}: {what} {:?}; document {} is treated as not backed up",
            path.display(),
            e.path.escape_default().to_string(),
            e.document_id
        );
    };
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
        if !is_safe_path(&e.path) {
            warn(i + 2, "unsafe path", &e);
            continue;
        }
        let key = (e.ticket_id, e.document_id);
        if let Some(old) = by_path.get(&path_key(&e.path)).copied() {
            if old != key {
                let Some(prev) = out.get(&old) else { continue };
                if prev.downloaded_at > e.downloaded_at {
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
    super::download::make_readable(tmp.path()).map_err(err)?;
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
    /// Path key -> the one row using it.
    by_path: HashMap<String, (Uuid, Uuid)>,
    dirty: bool,
    written: Instant,
}

impl Store {
    /// A store over `entries` read from `path`, rewritten at most every `every`.
    pub fn new(path: PathBuf, entries: Entries, every: Duration) -> Self {
        let by_path = entries
            .iter()
            .map(|(k, e)| (path_key(&e.path), *k))
            .collect();
        Store {
            path,
            state: Mutex::new(State {
                entries,
                by_path,
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

    /// Add or replace a row. Another row with the same path is dropped: the file is this
    /// row's now (the manifest never holds two rows with one path).
    pub fn record(&self, e: Entry) {
        let mut s = self.lock();
        let key = (e.ticket_id, e.document_id);
        let new_path = path_key(&e.path);
        if let Some(prev) = s.entries.get(&key) {
            let old_path = path_key(&prev.path);
            if old_path != new_path {
                s.by_path.remove(&old_path);
            }
        }
        if let Some(other) = s.by_path.insert(new_path, key) {
            if other != key {
                s.entries.remove(&other);
            }
        }
        s.entries.insert(key, e);
        s.dirty = true;
    }

    /// Drop a row (pruned document).
    pub fn remove(&self, ticket: Uuid, document: Uuid) {
        let mut s = self.lock();
        if let Some(e) = s.entries.remove(&(ticket, document)) {
            let k = path_key(&e.path);
            if s.by_path.get(&k) == Some(&(ticket, document)) {
                s.by_path.remove(&k);
            }
            s.dirty = true;
        }
    }

    /// Whether a row other than `e`'s own uses `e`'s path.
    pub fn path_used_by_other(&self, e: &Entry) -> bool {
        self.lock()
            .by_path
            .get(&path_key(&e.path))
            .is_some_and(|k| *k != (e.ticket_id, e.document_id))
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
            path: format!("TIC001000/{}", names::clean(name)),
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
    fn unsafe_and_duplicate_paths_are_dropped_on_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MANIFEST_FILE);
        let t = Uuid::new_v4();
        let good = entry(t, "a.txt");
        let mut rows = vec![good.clone()];
        for bad in [
            "../pwned.txt",
            "/etc/passwd",
            "TIC1/../../x",
            "TIC1//x",
            "TIC1/./x",
            "x.txt",
            "TIC1/a/b.txt",
            "TIC1\\..\\x",
            "manifest.csv/x",
            "TIC1/comments.jsonl",
            "TIC1/ x",
        ] {
            let mut e = entry(t, "x");
            e.path = bad.into();
            rows.push(e);
        }
        let mut older = entry(t, "A.TXT");
        older.downloaded_at = "2026-11-27T07:00:00Z".into();
        rows.push(older);
        let mut w = csv::Writer::from_path(&path).unwrap();
        for r in &rows {
            w.serialize(r).unwrap();
        }
        w.flush().unwrap();
        drop(w);
        let read_back = read(&path).unwrap();
        assert_eq!(read_back.into_values().collect::<Vec<_>>(), vec![good]);
        assert!(is_safe_path("TIC001000/report-1a2b3c4d.pdf"));
        assert!(is_safe_path("x-00000000/100%41.txt"));
    }

    #[test]
    fn recording_a_path_drops_the_row_that_held_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(
            dir.path().join(MANIFEST_FILE),
            Entries::new(),
            Duration::ZERO,
        );
        let t = Uuid::new_v4();
        let old = entry(t, "a.txt");
        store.record(old.clone());
        let mut new = entry(t, "b.txt");
        assert!(!store.path_used_by_other(&new));
        new.path = old.path.to_uppercase();
        assert!(store.path_used_by_other(&new), "case-insensitively");
        store.record(new.clone());
        assert_eq!(store.of_ticket(t), vec![new.clone()]);
        assert!(!store.path_used_by_other(&new));
        let mut moved = new.clone();
        moved.path = "TIC001000/c.txt".into();
        store.record(moved.clone());
        store.record(old.clone());
        assert_eq!(
            store.snapshot().len(),
            2,
            "the old path was freed by the move"
        );
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
