//! The manifest's journal on object storage, which cannot append.
//!
//! One task writes it: every change waiting at the time becomes one new object
//! `.alga-batch-journal/<run>/<sequence>.csv` (the folder journal's format: header, then one
//! row per change), put whole, and each change is acknowledged once that PUT has succeeded
//! (group commit: the cost of a change does not depend on the size of the manifest). `<run>`
//! starts with the run's start time in milliseconds and `<sequence>` counts up from 1, both
//! zero-padded, so key order is the order of the changes.
//!
//! Loading replays every batch in key order over `manifest.csv`. Compacting puts
//! `manifest.csv` whole (one PUT, or a multipart upload completed in one step when it is
//! larger than a part), then retires each run's batches: it first puts `<run>/folded`, then
//! deletes the batches (many per request), then `folded`. A run folder holding `folded` is
//! never replayed, so a kill while its batches are deleted, which leaves any subset of them,
//! cannot replay an older change over a newer one. A kill before `folded` is put replays the
//! whole journal over a manifest that already holds it, which changes nothing (replay is
//! idempotent, see `store/journal.rs`).
//!
//! Why no orphan object: a document's object is committed only after the batch naming it
//! was put, so every object under a document key is named by `manifest.csv` or by a batch that
//! the next load replays. The converse, that `manifest.csv` names only objects that exist, is
//! kept by dropping, before it is written, the rows of this run whose commit failed and the
//! replayed rows of a killed run whose object never appeared (one listing per ticket folder
//! involved); those documents are downloaded again.

use super::upload::S3Upload;
use super::{io_error, lock, Shared};
use crate::store::index::Index;
use crate::store::journal::{self, Record};
use crate::store::layout::{self, JOURNAL_DIR, MANIFEST_FILE};
use crate::store::manifest::{self, Entries};
use crate::store::{Expected, Loaded, StoreError, Upload};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Name of the object that marks a run's batches as folded into the manifest.
const FOLDED: &str = "folded";

/// A failure as sent to every change of a batch.
type Failure = (std::io::ErrorKind, String);
type Ack = oneshot::Sender<Result<(), Failure>>;

/// The running writer of this run's journal.
pub(super) struct Writer {
    tx: mpsc::UnboundedSender<(Record, Ack)>,
    task: JoinHandle<()>,
    target: String,
}

impl Writer {
    /// Start the writer (on the current runtime).
    pub(super) fn start(shared: Arc<Shared>) -> Writer {
        let run = format!(
            "{:013}-{}",
            chrono::Utc::now().timestamp_millis().max(0),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let target = shared.describe(&format!("{JOURNAL_DIR}/{run}/"));
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(write_batches(shared, run, rx));
        Writer { tx, task, target }
    }

    /// Queue `change`; resolves once it is durable.
    pub(super) fn submit(
        &self,
        change: Record,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send + 'static {
        let (ack, done) = oneshot::channel();
        // A stopped writer drops the ack: the receiver reports it.
        let _ = self.tx.send((change, ack));
        let target = self.target.clone();
        async move {
            let (kind, msg) = match done.await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(f)) => f,
                Err(_) => (
                    std::io::ErrorKind::BrokenPipe,
                    "the journal writer stopped".into(),
                ),
            };
            Err(StoreError::io(
                "cannot write the manifest journal",
                target,
                std::io::Error::new(kind, msg),
            ))
        }
    }

    /// Stop once what is queued is written.
    pub(super) async fn stop(self) {
        drop(self.tx);
        let _ = self.task.await;
    }
}

/// The writer's loop: one object per batch of waiting changes.
async fn write_batches(
    shared: Arc<Shared>,
    run: String,
    mut rx: mpsc::UnboundedReceiver<(Record, Ack)>,
) {
    let mut seq = 0u64;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while let Ok(next) = rx.try_recv() {
            batch.push(next);
        }
        seq += 1;
        let records: Vec<&Record> = batch.iter().map(|(r, _)| r).collect();
        let mut body = journal::header();
        body.extend(journal::encode(&records));
        let key = format!("{JOURNAL_DIR}/{run}/{seq:010}.csv");
        let written = put(&shared, &key, body).await;
        for (_, ack) in batch {
            let _ = ack.send(written.clone());
        }
    }
}

/// Put one batch (refused once the lock is lost).
async fn put(shared: &Shared, key: &str, body: Vec<u8>) -> Result<(), Failure> {
    let fail = |e: StoreError| (std::io::ErrorKind::Other, e.to_string());
    shared.still_locked().map_err(fail)?;
    let path = shared.path(key).map_err(fail)?;
    match shared.backend.put(&path, PutPayload::from(body)).await {
        Ok(_) => Ok(()),
        Err(e) => {
            let e = io_error(e);
            Err((e.kind(), e.to_string()))
        }
    }
}

/// Every object under the journal folder, by run, each run's in key order.
async fn runs(shared: &Shared) -> Result<BTreeMap<String, Vec<ObjectMeta>>, StoreError> {
    let Some(dir) = shared.dir(JOURNAL_DIR)? else {
        return Ok(BTreeMap::new());
    };
    let found: Vec<ObjectMeta> = shared
        .backend
        .list(Some(&dir))
        .try_collect()
        .await
        .map_err(|e| shared.error("cannot list", JOURNAL_DIR, e))?;
    let mut runs: BTreeMap<String, Vec<ObjectMeta>> = BTreeMap::new();
    for o in found {
        let run = o.location.prefix_match(&dir).and_then(|mut p| p.next());
        if let Some(run) = run {
            runs.entry(run.as_ref().to_string()).or_default().push(o);
        }
    }
    for objects in runs.values_mut() {
        objects.sort_by(|a, b| a.location.cmp(&b.location));
    }
    Ok(runs)
}

fn is_folded(objects: &[ObjectMeta]) -> bool {
    objects
        .iter()
        .any(|o| o.location.filename() == Some(FOLDED))
}

/// `entries` (the manifest as read) with every journal batch not yet folded replayed over it.
pub(super) async fn load(shared: &Shared, entries: Entries) -> Result<Loaded, StoreError> {
    let runs = runs(shared).await?;
    if runs.is_empty() {
        return Ok(Loaded {
            entries,
            journal_replayed: false,
        });
    }
    let mut index = Index::new(entries);
    let mut replayed = HashSet::new();
    for objects in runs.values().filter(|o| !is_folded(o)) {
        for o in objects
            .iter()
            .filter(|o| o.location.as_ref().ends_with(".csv"))
        {
            let label = format!("{}/{}", shared.label, relative(shared, &o.location));
            let got = shared.backend.get(&o.location).await;
            let data = match got {
                Ok(g) => g.bytes().await,
                Err(e) => Err(e),
            };
            let data =
                data.map_err(|e| StoreError::io("cannot read", label.clone(), io_error(e)))?;
            let batch = journal::replay(&data, &label)?;
            for w in &batch.warnings {
                eprintln!("warning: {w}");
            }
            for r in &batch.records {
                if let Record::Put(e) = r {
                    replayed.insert(e.path.clone());
                }
                index.apply(r);
            }
        }
    }
    let mut entries = index.into_entries();
    drop_uncommitted(shared, &mut entries, &replayed).await?;
    Ok(Loaded {
        entries,
        journal_replayed: true,
    })
}

/// Drop the rows replayed from the journal whose object is not there with their size: a run
/// killed between journaling a document and committing its object. The manifest written next
/// then names only objects that exist (the document is downloaded again). One listing per
/// ticket folder involved.
async fn drop_uncommitted(
    shared: &Shared,
    entries: &mut Entries,
    replayed: &HashSet<String>,
) -> Result<(), StoreError> {
    let mut folders: BTreeMap<&str, HashMap<String, u64>> = BTreeMap::new();
    for path in replayed {
        folders.entry(layout::folder_of(path)).or_default();
    }
    for (folder, sizes) in folders.iter_mut() {
        let dir = shared.dir(folder)?;
        let listed = shared.backend.list_with_delimiter(dir.as_ref()).await;
        let listed = listed.map_err(|e| shared.error("cannot list", folder, e))?;
        for o in listed.objects {
            if let Some(name) = o.location.filename() {
                sizes.insert(name.to_string(), o.size);
            }
        }
    }
    entries.retain(|_, e| {
        if !replayed.contains(&e.path) {
            return true;
        }
        let sizes = folders.get(layout::folder_of(&e.path));
        sizes.and_then(|s| s.get(layout::name_of(&e.path))) == Some(&e.bytes)
    });
    Ok(())
}

/// `path` relative to the store's prefix.
fn relative<'a>(shared: &Shared, path: &'a Path) -> &'a str {
    let full = path.as_ref();
    if shared.root.is_empty() {
        return full;
    }
    full.strip_prefix(shared.root.as_str())
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or(full)
}

/// Write `manifest.csv` whole, then retire the journal (no change may be in flight).
pub(super) async fn compact(shared: &Arc<Shared>, mut entries: Entries) -> Result<(), StoreError> {
    let failed = std::mem::take(&mut *lock(&shared.failed_commits));
    entries.retain(|_, e| !failed.contains(&e.path));
    write_manifest(shared, entries).await?;
    for (run, objects) in runs(shared).await? {
        retire(shared, &run, objects).await?;
    }
    Ok(())
}

/// Stream the manifest's CSV (built off the async threads) into one new object.
async fn write_manifest(shared: &Arc<Shared>, entries: Entries) -> Result<(), StoreError> {
    let target = shared.describe(MANIFEST_FILE);
    let (tx, mut rx) = mpsc::channel::<Bytes>(2);
    let producer = tokio::task::spawn_blocking(move || {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, Chunks(tx));
        manifest::to_csv(&entries, &mut w)?;
        std::io::Write::flush(&mut w)
    });
    let path = shared.path(MANIFEST_FILE)?;
    let mut upload = Box::new(S3Upload::new(shared.clone(), MANIFEST_FILE.into(), path));
    let mut failed = None;
    while let Some(chunk) = rx.recv().await {
        if let Err(e) = upload.write(chunk).await {
            failed = Some(e);
            break;
        }
    }
    drop(rx); // a producer still writing now fails instead of waiting
    let produced = producer
        .await
        .map_err(|e| StoreError::Other(format!("manifest writer failed: {e}")))?;
    if let Some(e) = failed {
        upload.abort().await;
        return Err(e);
    }
    if let Err(e) = produced {
        upload.abort().await;
        return Err(StoreError::io("cannot write manifest", target, e));
    }
    upload.finish(&Expected::default()).await?.commit().await
}

/// A writer that hands each buffer it is given to the upload.
struct Chunks(mpsc::Sender<Bytes>);

impl std::io::Write for Chunks {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Bytes::copy_from_slice(buf))
            .map_err(|_| std::io::Error::other("the manifest upload stopped"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Mark a run's batches folded, delete them, then the mark.
async fn retire(shared: &Shared, run: &str, objects: Vec<ObjectMeta>) -> Result<(), StoreError> {
    let folded = shared.path(&format!("{JOURNAL_DIR}/{run}/{FOLDED}"))?;
    let fail = |e| shared.error("cannot retire the manifest journal", JOURNAL_DIR, e);
    if !is_folded(&objects) {
        shared
            .backend
            .put(&folded, PutPayload::from_static(b""))
            .await
            .map_err(fail)?;
    }
    let batches: Vec<Path> = objects
        .into_iter()
        .map(|o| o.location)
        .filter(|p| *p != folded)
        .collect();
    let deleted = shared
        .backend
        .delete_stream(futures::stream::iter(batches.into_iter().map(Ok)).boxed())
        .try_collect::<Vec<_>>()
        .await;
    match deleted {
        Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(fail(e)),
    }
    match shared.backend.delete(&folded).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(fail(e)),
    }
}

/// Whether a journal batch is waiting (for tests: the journal is empty after compaction).
#[cfg(test)]
pub(super) async fn pending_batches(shared: &Shared) -> usize {
    runs(shared)
        .await
        .map_or(0, |r| r.values().map(Vec::len).sum())
}
