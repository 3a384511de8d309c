//! Where an interrupted pass continues: `.alga-batch-resume.json` in the store.
//!
//! A backup walks the selected tickets in a stable order (`sort=ticket_number`). When a run
//! stops early (`--max-duration`, Ctrl-C, a fatal error) it records how many tickets from the
//! start of the order are fully done; the next run with the same selection starts there instead
//! of listing the same first tickets again, so a nightly 50-minute budget still covers 10,000
//! tickets over a few nights. A pass that reaches the end removes the file, and the next run
//! starts a fresh pass from the first ticket.

use super::options::Selection;
use crate::store::layout::RESUME_FILE;
use crate::store::{BackupStore, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::sync::Mutex;

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct State {
    /// Which selection this position belongs to.
    selection: String,
    /// Tickets from the start of the order that are done.
    next: u64,
    /// When it was written.
    saved_at: String,
}

/// A stable fingerprint of a selection (a different one starts from the beginning).
pub fn fingerprint(sel: &Selection) -> String {
    let mut h = Sha256::new();
    for r in &sel.refs {
        h.update(r.to_lowercase().as_bytes());
        h.update([0]);
    }
    h.update(format!("open={};updated_from={:?}", sel.open_only, sel.updated_from).as_bytes());
    hex::encode(&h.finalize()[..8])
}

/// The saved position `next` of `sel`, as stored.
pub fn encode(sel: &Selection, next: u64) -> Vec<u8> {
    let state = State {
        selection: fingerprint(sel),
        next,
        saved_at: crate::store::manifest::now(),
    };
    serde_json::to_vec_pretty(&state).unwrap_or_default()
}

/// The position saved for `sel` in `data` (0 when it belongs to another selection or is
/// damaged).
pub fn decode(data: &[u8], sel: &Selection) -> u64 {
    match serde_json::from_slice::<State>(data) {
        Ok(s) if s.selection == fingerprint(sel) => s.next,
        _ => 0,
    }
}

/// Where this selection's pass continues (0 = from the start, also when unreadable).
pub async fn load(store: &dyn BackupStore, sel: &Selection) -> u64 {
    match store.read_small(RESUME_FILE).await {
        Ok(Some(data)) => decode(&data, sel),
        _ => 0,
    }
}

/// Record where the next run continues (atomically).
pub async fn save(store: &dyn BackupStore, sel: &Selection, next: u64) -> Result<(), StoreError> {
    store.put_small(RESUME_FILE, encode(sel, next).into()).await
}

/// The pass is complete: the next run starts from the first ticket.
pub async fn clear(store: &dyn BackupStore) -> Result<(), StoreError> {
    store.delete(RESUME_FILE).await
}

/// Tracks which positions in the order are done, out of order, and the contiguous prefix.
pub struct Watermark {
    state: Mutex<(u64, BTreeSet<u64>)>,
}

impl Watermark {
    /// Everything before `start` is done.
    pub fn new(start: u64) -> Self {
        Watermark {
            state: Mutex::new((start, BTreeSet::new())),
        }
    }

    /// Position `i` is done.
    pub fn done(&self, i: u64) {
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.1.insert(i);
        loop {
            let next = s.0;
            if !s.1.remove(&next) {
                break;
            }
            s.0 += 1;
        }
    }

    /// Positions before this one are all done.
    pub fn next(&self) -> u64 {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_only_moves_over_a_contiguous_prefix() {
        let w = Watermark::new(10);
        w.done(11);
        w.done(13);
        assert_eq!(w.next(), 10);
        w.done(10);
        assert_eq!(w.next(), 12);
        w.done(12);
        assert_eq!(w.next(), 14);
    }

    #[tokio::test]
    async fn a_position_is_kept_per_selection_and_cleared_after_a_full_pass() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::FolderStore::new(dir.path(), false);
        let all = Selection::default();
        let open = Selection {
            open_only: true,
            ..Default::default()
        };
        assert_eq!(load(&store, &all).await, 0);
        save(&store, &all, 3000).await.unwrap();
        assert_eq!(load(&store, &all).await, 3000);
        assert_eq!(
            load(&store, &open).await,
            0,
            "another selection starts over"
        );
        clear(&store).await.unwrap();
        assert_eq!(load(&store, &all).await, 0);
        clear(&store).await.unwrap();
        std::fs::write(dir.path().join(RESUME_FILE), "not json").unwrap();
        assert_eq!(load(&store, &all).await, 0, "a damaged file starts over");
        assert_eq!(decode(&encode(&all, 7), &all), 7);
    }
}
