//! The one writer of the folder's journal: a dedicated thread fed by a channel. It appends
//! every change waiting at the time in one write, fsyncs once for all of them (group commit)
//! and then acknowledges each, so the async threads never wait on the disk and the cost of a
//! change does not depend on the size of the manifest.

use super::files::sync_dir;
use crate::store::journal::{self, Record};
use crate::store::StoreError;
use std::fs::{File, OpenOptions};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use tokio::sync::{mpsc, oneshot};

/// The acknowledgement of one change: `Err` carries the failure's kind and message.
type Ack = oneshot::Sender<Result<(), (std::io::ErrorKind, String)>>;

/// A running writer; dropping the sender ends its thread once the queue is written.
pub(super) struct JournalWriter {
    tx: mpsc::UnboundedSender<(Record, Ack)>,
    thread: std::thread::JoinHandle<()>,
}

impl JournalWriter {
    /// Start the writer of the journal at `path` (created on the first change).
    pub(super) fn start(path: PathBuf) -> std::io::Result<JournalWriter> {
        let (tx, rx) = mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("manifest-journal".into())
            .spawn(move || run(&path, rx))?;
        Ok(JournalWriter { tx, thread })
    }

    /// Queue `change`; the receiver tells when it is durable.
    pub(super) fn submit(
        &self,
        change: Record,
    ) -> oneshot::Receiver<Result<(), (std::io::ErrorKind, String)>> {
        let (ack, done) = oneshot::channel();
        // A writer that has stopped drops the ack: the receiver then reports it.
        let _ = self.tx.send((change, ack));
        done
    }

    /// Stop after writing what is queued (blocking: call it off the async threads).
    pub(super) fn stop(self) {
        drop(self.tx);
        let _ = self.thread.join();
    }
}

fn run(path: &Path, mut rx: mpsc::UnboundedReceiver<(Record, Ack)>) {
    let mut file: Option<File> = None;
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while let Ok(next) = rx.try_recv() {
            batch.push(next);
        }
        let records: Vec<&Record> = batch.iter().map(|(r, _)| r).collect();
        let written = append(path, &mut file, &journal::encode(&records));
        if written.is_err() {
            file = None; // reopen (and repair a torn tail) for the next batch
        }
        for (_, ack) in batch {
            let _ = ack.send(
                written
                    .as_ref()
                    .map(|_| ())
                    .map_err(|e| (e.kind(), e.to_string())),
            );
        }
    }
}

/// Append `rows` and fsync them; opens the journal first if needed.
fn append(path: &Path, file: &mut Option<File>, rows: &[u8]) -> std::io::Result<()> {
    if file.is_none() {
        *file = Some(open(path)?);
    }
    let f = file
        .as_mut()
        .ok_or_else(|| std::io::Error::other("journal not open"))?;
    f.write_all(rows)?;
    f.sync_data()
}

/// Open the journal for appending: a new one gets its header (and a durable directory entry);
/// an existing one loses a torn last row first, so the next row starts on a line of its own.
fn open(path: &Path) -> std::io::Result<File> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    let data = std::fs::read(path)?;
    let valid = journal::replay(&data, &path.display().to_string())
        .map(|r| r.valid_len)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    if valid == 0 {
        f.set_len(0)?;
        f.write_all(&journal::header())?;
        f.sync_all()?;
        if let Some(dir) = path.parent() {
            sync_dir(dir);
        }
    } else if valid < data.len() as u64 {
        f.set_len(valid)?;
    }
    f.seek(std::io::SeekFrom::End(0))?;
    Ok(f)
}

/// An acknowledgement as the caller's result.
pub(super) fn settle(
    got: Result<Result<(), (std::io::ErrorKind, String)>, oneshot::error::RecvError>,
    target: &str,
) -> Result<(), StoreError> {
    let err = |kind, msg: String| {
        StoreError::io(
            "cannot append to the manifest journal",
            target,
            std::io::Error::new(kind, msg),
        )
    };
    match got {
        Ok(Ok(())) => Ok(()),
        Ok(Err((kind, msg))) => Err(err(kind, msg)),
        Err(_) => Err(err(
            std::io::ErrorKind::BrokenPipe,
            "the journal writer stopped".into(),
        )),
    }
}
