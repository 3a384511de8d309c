//! Object sizes learned from folder listings, so that a repeat run checks the documents of a
//! ticket with the one LIST the backup sends anyway (to plan new names), not one HEAD each.
//!
//! A listing answers "which objects are in this folder, with what size" at the time it was
//! taken, shortly before the ticket's documents are checked one by one. Every write or delete
//! through the store forgets the key. At most [`DIRS`] folders are kept (oldest dropped); a
//! key whose folder is not kept is asked of the store with a HEAD.

use super::lock;
use crate::store::layout;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Folders whose listing is kept (a few times the tickets in flight).
const DIRS: usize = 256;

/// Sizes by folder, then by name.
#[derive(Default)]
pub(super) struct Listing {
    dirs: Mutex<VecDeque<(String, HashMap<String, u64>)>>,
}

impl Listing {
    /// Keep the listing of `dir` (replacing an older one).
    pub(super) fn fill(&self, dir: &str, sizes: Vec<(String, u64)>) {
        let mut dirs = lock(&self.dirs);
        dirs.retain(|(d, _)| d != dir);
        if dirs.len() >= DIRS {
            dirs.pop_front();
        }
        dirs.push_back((dir.to_string(), sizes.into_iter().collect()));
    }

    /// The size of `key` as listed: `Some(None)` when its folder was listed without it, `None`
    /// when its folder's listing is not kept.
    pub(super) fn size(&self, key: &str) -> Option<Option<u64>> {
        let (dir, name) = (layout::folder_of(key), layout::name_of(key));
        let dirs = lock(&self.dirs);
        let (_, sizes) = dirs.iter().find(|(d, _)| d == dir)?;
        Some(sizes.get(name).copied())
    }

    /// `key` changed: ask the store next time.
    pub(super) fn forget(&self, key: &str) {
        let dir = layout::folder_of(key);
        lock(&self.dirs).retain(|(d, _)| d != dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_folder_answers_and_a_change_sends_the_next_check_to_the_store() {
        let l = Listing::default();
        assert_eq!(l.size("T1/a.pdf"), None, "not listed: ask the store");
        l.fill("T1", vec![("a.pdf".into(), 5)]);
        assert_eq!(l.size("T1/a.pdf"), Some(Some(5)));
        assert_eq!(l.size("T1/b.pdf"), Some(None), "listed, absent");
        assert_eq!(l.size("T2/a.pdf"), None);
        l.forget("T1/b.pdf");
        assert_eq!(l.size("T1/a.pdf"), None, "the folder changed");
        for i in 0..=DIRS {
            l.fill(&format!("T{i}"), Vec::new());
        }
        assert_eq!(l.size("T0/x"), None, "the oldest listing was dropped");
        assert_eq!(l.size(&format!("T{DIRS}/x")), Some(None));
    }
}
