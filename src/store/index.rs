//! The manifest of a running backup, in memory ([`Index`]: rows by document and by path), and
//! the handle the workers share ([`Manifest`]): every change goes to the index and, in the
//! same order, to the store's journal; the caller awaits its durability.

use super::journal::Record;
use super::layout::path_key;
use super::manifest::{Entries, Entry};
use super::{BackupStore, StoreError};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use uuid::Uuid;

/// Rows keyed by document, with the one row using each path.
#[derive(Debug, Default, Clone)]
pub struct Index {
    entries: Entries,
    /// Path key -> the one row using it.
    by_path: HashMap<String, (Uuid, Uuid)>,
}

impl Index {
    /// An index over rows read from a manifest.
    pub fn new(entries: Entries) -> Index {
        let by_path = entries
            .iter()
            .map(|(k, e)| (path_key(&e.path), *k))
            .collect();
        Index { entries, by_path }
    }

    /// Apply one change (as the journal replays it).
    pub fn apply(&mut self, r: &Record) {
        match r {
            Record::Put(e) => self.put(e.clone()),
            Record::Remove {
                ticket_id,
                document_id,
            } => self.remove(*ticket_id, *document_id),
        }
    }

    /// Add or replace a row. Another row with the same path is dropped: the object is this
    /// row's now (the manifest never holds two rows with one path).
    pub fn put(&mut self, e: Entry) {
        let key = (e.ticket_id, e.document_id);
        let new_path = path_key(&e.path);
        if let Some(prev) = self.entries.get(&key) {
            let old_path = path_key(&prev.path);
            if old_path != new_path {
                self.by_path.remove(&old_path);
            }
        }
        if let Some(other) = self.by_path.insert(new_path, key) {
            if other != key {
                self.entries.remove(&other);
            }
        }
        self.entries.insert(key, e);
    }

    /// Drop a row.
    pub fn remove(&mut self, ticket: Uuid, document: Uuid) {
        if let Some(e) = self.entries.remove(&(ticket, document)) {
            let k = path_key(&e.path);
            if self.by_path.get(&k) == Some(&(ticket, document)) {
                self.by_path.remove(&k);
            }
        }
    }

    /// Every row.
    pub fn entries(&self) -> &Entries {
        &self.entries
    }

    /// Every row, owned.
    pub fn into_entries(self) -> Entries {
        self.entries
    }

    /// The rows of one ticket.
    pub fn of_ticket(&self, ticket: Uuid) -> Vec<Entry> {
        self.entries
            .range((ticket, Uuid::nil())..=(ticket, Uuid::max()))
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// Whether a row other than `e`'s own uses `e`'s path.
    pub fn path_used_by_other(&self, e: &Entry) -> bool {
        self.by_path
            .get(&path_key(&e.path))
            .is_some_and(|k| *k != (e.ticket_id, e.document_id))
    }
}

/// The manifest shared by the workers of a backup. The lock is only held to change the index
/// and hand the change to the store's journal (a channel send), never across I/O.
pub struct Manifest<'s> {
    store: &'s dyn BackupStore,
    index: Mutex<Index>,
}

impl<'s> Manifest<'s> {
    /// The manifest of `store`, holding `entries` (as loaded).
    pub fn new(store: &'s dyn BackupStore, entries: Entries) -> Self {
        Manifest {
            store,
            index: Mutex::new(Index::new(entries)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The rows of one ticket.
    pub fn of_ticket(&self, ticket: Uuid) -> Vec<Entry> {
        self.lock().of_ticket(ticket)
    }

    /// A copy of every row.
    pub fn snapshot(&self) -> Entries {
        self.lock().entries().clone()
    }

    /// Whether a row other than `e`'s own uses `e`'s path.
    pub fn path_used_by_other(&self, e: &Entry) -> bool {
        self.lock().path_used_by_other(e)
    }

    /// Record a completed document; returns once the store holds the change durably.
    pub async fn record(&self, e: Entry) -> Result<(), StoreError> {
        self.change(Record::Put(e)).await
    }

    /// Drop a document's row; returns once the store holds the change durably.
    pub async fn remove(&self, ticket_id: Uuid, document_id: Uuid) -> Result<(), StoreError> {
        self.change(Record::Remove {
            ticket_id,
            document_id,
        })
        .await
    }

    /// Index and journal in one order (two changes to one path replay as they happened).
    async fn change(&self, r: Record) -> Result<(), StoreError> {
        let durable = {
            let mut index = self.lock();
            index.apply(&r);
            self.store.record(r)
        };
        durable.await
    }

    /// Write the whole manifest and empty the journal (no change may be in flight).
    pub async fn compact(&self) -> Result<(), StoreError> {
        let entries = self.snapshot();
        self.store.compact(entries).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::manifest::tests::entry;

    #[test]
    fn recording_a_path_drops_the_row_that_held_it() {
        let mut ix = Index::default();
        let t = Uuid::new_v4();
        let old = entry(t, "a.txt");
        ix.put(old.clone());
        let mut new = entry(t, "b.txt");
        assert!(!ix.path_used_by_other(&new));
        new.path = old.path.to_uppercase();
        assert!(ix.path_used_by_other(&new), "case-insensitively");
        ix.put(new.clone());
        assert_eq!(ix.of_ticket(t), vec![new.clone()]);
        let mut moved = new.clone();
        moved.path = "TIC001000/c.txt".into();
        ix.put(moved);
        ix.put(old.clone());
        assert_eq!(ix.entries().len(), 2, "the old path was freed by the move");
        ix.remove(t, old.document_id);
        assert_eq!(ix.entries().len(), 1);
        assert!(!ix.path_used_by_other(&old));
    }
}
