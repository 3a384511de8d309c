//! The backup files of a restore, looked at before anything is sent: a missing one, or one
//! whose size differs or that changed since it was backed up, blocks its upload.

use super::ops::{Planned, Probe};
use crate::journal::ResultRow;
use crate::store::{BackupStore, Check, Entry, Presence};
use futures::StreamExt;
use std::collections::HashMap;

/// Backup files checked at once.
const FILE_CHECKS: usize = 8;

/// Look at the backup file of every upload that will be sent (neither present nor finished
/// by an earlier run) before anything is sent: a missing one, or one whose size differs or
/// whose content changed since it was recorded (the store re-hashes only a file that shows
/// a sign of change; the upload stream checks every byte anyway), is blocked.
pub(crate) async fn check_files(
    store: &dyn BackupStore,
    planned: &mut [Planned],
    previous: &HashMap<String, ResultRow>,
) {
    let todo: Vec<(usize, Entry)> = planned
        .iter()
        .enumerate()
        .filter(|(_, p)| p.op.blocked.is_none() && p.op.extra.present.is_none())
        .filter(|(_, p)| {
            !previous
                .get(&p.op.op_key)
                .is_some_and(|r| r.status.is_done())
        })
        .filter_map(|(i, p)| match &p.probe {
            Probe::Document { entry, .. } => Some((i, entry.clone())),
            _ => None,
        })
        .collect();
    let checked: Vec<(usize, Option<String>)> = futures::stream::iter(todo)
        .map(|(i, e)| async move {
            let why = match store.check(&e, Check::Trust).await {
                Ok(c) if c.presence == Presence::Intact => None,
                Ok(c) if c.presence == Presence::Missing => {
                    Some(format!("backup file missing: {}", store.describe(&e.path)))
                }
                Ok(_) => Some(format!(
                    "backup file damaged: {}: its size or sha256 differs from the manifest",
                    store.describe(&e.path)
                )),
                Err(err) => Some(format!("cannot check the backup file: {err}")),
            };
            (i, why)
        })
        .buffer_unordered(FILE_CHECKS)
        .collect()
        .await;
    for (i, why) in checked {
        if why.is_some() {
            planned[i].op.blocked = why;
        }
    }
}
