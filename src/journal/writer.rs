//! The journal: the one task that writes the results file.
//!
//! During a run every row is appended and flushed as it happens (intents before a create is
//! sent, outcomes as operations finish), so a crash loses nothing. At the end the clean file,
//! one row per operation with its latest status, replaces the journal atomically (temp file,
//! fsync, rename).

use super::row::{latest_by_key, ResultRow, COLUMNS};
use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use tokio::sync::{mpsc, oneshot};

enum Msg {
    Row(Box<ResultRow>, Option<oneshot::Sender<Result<(), String>>>),
}

/// The journal could not record a row: nothing more may be sent.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot write the results file: {0}")]
pub struct JournalError(pub String);

/// Handle for sending rows to the journal task. Cheap to clone.
#[derive(Clone)]
pub struct JournalHandle {
    tx: mpsc::UnboundedSender<Msg>,
}

impl JournalHandle {
    /// Append a row (not waiting for the write; a failed write surfaces at the next
    /// [`JournalHandle::record_flushed`] and in [`Journal::finish`]).
    pub fn record(&self, row: ResultRow) {
        // The writer only stops after every handle is dropped, so this cannot fail while
        // a handle exists; a failed write is reported by `Journal::finish`.
        let _ = self.tx.send(Msg::Row(Box::new(row), None));
    }

    /// Append a row and wait until it is written and flushed (intents before a create).
    /// An error means the row is not on disk (nor any later one): the create must not be sent.
    pub async fn record_flushed(&self, row: ResultRow) -> Result<(), JournalError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Msg::Row(Box::new(row), Some(ack)))
            .map_err(|_| JournalError("the journal writer has stopped".into()))?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(JournalError(e)),
            Err(_) => Err(JournalError("the journal writer has stopped".into())),
        }
    }
}

/// The running journal.
pub struct Journal {
    path: PathBuf,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Open the results file for a run: earlier rows are kept (the file is appended to).
/// Returns the journal and a handle for recording rows.
pub fn open(path: &Path) -> Result<(Journal, JournalHandle)> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create folder", dir, e))?;
    }
    if path.is_file() {
        drop_torn_tail(path).map_err(|e| Error::io("cannot write results file", path, e))?;
    }
    let fresh = std::fs::metadata(path)
        .map(|m| m.len() == 0)
        .unwrap_or(true);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io("cannot write results file", path, e))?;
    if fresh {
        file.write_all(header_line().as_bytes())
            .and_then(|()| file.flush())
            .map_err(|e| Error::io("cannot write results file", path, e))?;
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::task::spawn_blocking(move || write_loop(file, rx));
    Ok((
        Journal {
            path: path.to_path_buf(),
            task,
        },
        JournalHandle { tx },
    ))
}

/// A process killed mid-write can leave a last line without its newline; appending to it would
/// corrupt the next row, so cut the file back to its last complete line.
fn drop_torn_tail(path: &Path) -> std::io::Result<()> {
    let bytes = std::fs::read(path)?;
    if bytes.ends_with(b"\n") {
        return Ok(());
    }
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    file.set_len(keep as u64)?;
    file.sync_all()
}

fn header_line() -> String {
    format!("{}\n", COLUMNS.join(","))
}

/// Serialize one row to a single buffer so that it reaches the file in one write.
fn encode(row: &ResultRow) -> std::io::Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::with_capacity(256));
    w.serialize(row).map_err(std::io::Error::other)?;
    w.into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))
}

fn write_loop(
    mut file: std::fs::File,
    mut rx: mpsc::UnboundedReceiver<Msg>,
) -> std::io::Result<()> {
    let mut failed: Option<std::io::Error> = None;
    while let Some(Msg::Row(row, ack)) = rx.blocking_recv() {
        if failed.is_none() {
            let res = encode(&row)
                .and_then(|b| file.write_all(&b))
                .and_then(|()| file.flush());
            if let Err(e) = res {
                failed = Some(e);
            }
        }
        if let Some(ack) = ack {
            let _ = ack.send(failed.as_ref().map_or(Ok(()), |e| Err(e.to_string())));
        }
    }
    match failed {
        Some(e) => Err(e),
        None => file.sync_all(),
    }
}

impl Journal {
    /// Wait for every row to be written (all handles must be dropped first), then rewrite the
    /// file cleanly: one row per op key, latest status, in `order` (keys not in `order`, such
    /// as operations removed from an edited job, follow in their file order).
    pub async fn finish(self, order: &[String]) -> Result<PathBuf> {
        let written = self
            .task
            .await
            .map_err(|e| Error::Fatal(format!("journal writer stopped: {e}")))?;
        written.map_err(|e| Error::io("cannot write results file", &self.path, e))?;
        let rows = super::row::read_rows(&self.path)
            .map_err(|e| Error::Fatal(format!("cannot re-read results file: {e}")))?;
        let (mut latest, file_order) = latest_by_key(rows);
        let mut clean = Vec::with_capacity(latest.len());
        for key in order.iter().chain(file_order.iter()) {
            if let Some(r) = latest.remove(key) {
                clean.push(r);
            }
        }
        write_atomic(&self.path, &clean)?;
        Ok(self.path)
    }
}

/// Write `rows` to `path` atomically: temp file in the same folder (created if needed), fsync,
/// rename.
pub fn write_atomic(path: &Path, rows: &[ResultRow]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let err = |e: std::io::Error| Error::io("cannot write results file", path, e);
    std::fs::create_dir_all(dir).map_err(err)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    {
        // The header is written by hand: serialize() must not write a second one.
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(tmp.as_file_mut());
        w.write_record(COLUMNS).map_err(|e| err(e.into()))?;
        for r in rows {
            w.serialize(r).map_err(|e| err(e.into()))?;
        }
        w.flush().map_err(err)?;
    }
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{read_rows, Status};

    fn row(key: &str, status: Status) -> ResultRow {
        ResultRow {
            op_key: key.into(),
            status,
            ..sample()
        }
    }

    #[tokio::test]
    async fn a_torn_last_line_is_cut_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let (journal, handle) = open(&path).unwrap();
        handle
            .record_flushed(row("a", Status::Sending))
            .await
            .unwrap();
        drop(handle);
        journal.finish(&[]).await.unwrap();
        let mut torn = std::fs::read(&path).unwrap();
        torn.extend_from_slice(b"b,job.csv:3,TIC001000,,comm");
        std::fs::write(&path, torn).unwrap();
        let (journal, handle) = open(&path).unwrap();
        handle.record(row("a", Status::Created));
        handle.record(row("c", Status::Created));
        drop(handle);
        journal.finish(&["a".into(), "c".into()]).await.unwrap();
        let rows = read_rows(&path).unwrap();
        let keys: Vec<(&str, Status)> =
            rows.iter().map(|r| (r.op_key.as_str(), r.status)).collect();
        assert_eq!(keys, vec![("a", Status::Created), ("c", Status::Created)]);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_failed_write_refuses_every_later_intent() {
        // /dev/full answers every write with ENOSPC, as a full disk would.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::task::spawn_blocking(move || write_loop(file, rx));
        let handle = JournalHandle { tx };
        assert!(handle
            .record_flushed(row("a", Status::Sending))
            .await
            .is_err());
        handle.record(row("b", Status::Created));
        assert!(handle
            .record_flushed(row("c", Status::Sending))
            .await
            .is_err());
        drop(handle);
        assert!(
            task.await.unwrap().is_err(),
            "finish reports the failure too"
        );
    }

    fn sample() -> ResultRow {
        ResultRow {
            op_key: "k".into(),
            source: "job.csv:2".into(),
            ticket: "TIC001000".into(),
            ticket_id: String::new(),
            kind: "comment".into(),
            status: Status::Created,
            comment_id: String::new(),
            document_id: String::new(),
            file: String::new(),
            bytes: String::new(),
            sha256: String::new(),
            http_status: "201".into(),
            attempts: 1,
            error: String::new(),
            finished_at: String::new(),
        }
    }

    #[test]
    fn an_atomic_rewrite_reads_back_with_one_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new-folder").join("r.csv");
        let row = sample();
        write_atomic(&path, &[row.clone(), row.clone()]).unwrap();
        assert_eq!(read_rows(&path).unwrap(), vec![row.clone(), row]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches("op_key").count(), 1, "{text}");
    }
}
