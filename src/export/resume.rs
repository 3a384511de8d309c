//! Where an interrupted pass continues: `DIR/.alga-batch-resume.json`.
//!
//! A backup walks the selected tickets in a stable order (`sort=ticket_number`). When a run
//! stops early (`--max-duration`, Ctrl-C, a fatal error) it records how many tickets from the
//! start of the order are fully done; the next run with the same selection starts there instead
//! of listing the same first tickets again, so a nightly 50-minute budget still covers 10,000
//! tickets over a few nights. A pass that reaches the end removes the file, and the next run
//! starts a fresh pass from the first ticket.

use super::options::Selection;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// File name inside the backup folder.
pub const RESUME_FILE: &str = ".alga-batch-resume.json";

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

/// Where this selection's pass continues (0 = from the start).
pub fn load(dir: &Path, sel: &Selection) -> u64 {
    let Ok(text) = std::fs::read_to_string(dir.join(RESUME_FILE)) else {
        return 0;
    };
    match serde_json::from_str::<State>(&text) {
        Ok(s) if s.selection == fingerprint(sel) => s.next,
        _ => 0,
    }
}

/// Record where the next run continues (atomically).
pub fn save(dir: &Path, sel: &Selection, next: u64) -> Result<()> {
    let path = dir.join(RESUME_FILE);
    let err = |e: std::io::Error| Error::io("cannot write resume file", path.clone(), e);
    let state = State {
        selection: fingerprint(sel),
        next,
        saved_at: crate::journal::now_rfc3339(),
    };
    let text = serde_json::to_string_pretty(&state).map_err(|e| err(e.into()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".resume-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(err)?;
    std::fs::write(tmp.path(), text).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(&path).map_err(|e| err(e.error))?;
    Ok(())
}

/// The pass is complete: the next run starts from the first ticket.
pub fn clear(dir: &Path) -> Result<()> {
    let path: PathBuf = dir.join(RESUME_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("cannot remove resume file", path, e)),
    }
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

    #[test]
    fn a_position_is_kept_per_selection_and_cleared_after_a_full_pass() {
        let dir = tempfile::tempdir().unwrap();
        let all = Selection::default();
        let open = Selection {
            open_only: true,
            ..Default::default()
        };
        assert_eq!(load(dir.path(), &all), 0);
        save(dir.path(), &all, 3000).unwrap();
        assert_eq!(load(dir.path(), &all), 3000);
        assert_eq!(load(dir.path(), &open), 0, "another selection starts over");
        clear(dir.path()).unwrap();
        assert_eq!(load(dir.path(), &all), 0);
        clear(dir.path()).unwrap();
        std::fs::write(dir.path().join(RESUME_FILE), "not json").unwrap();
        assert_eq!(load(dir.path(), &all), 0, "a damaged file starts over");
    }
}
