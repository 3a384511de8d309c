//! The folder store against a temp folder: atomic puts, nothing left by failures, the trust
//! rule, the journal across a "kill" (a store dropped without compacting) and the lock.

use super::*;
use crate::store::manifest::tests::entry;
use crate::store::{put_stream, Expected, Index, PutError};
use sha2::{Digest, Sha256};
use std::time::{Duration, SystemTime};
use uuid::Uuid;

fn chunks(data: &[u8]) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + '_ {
    futures::stream::iter(data.chunks(7).map(|c| Ok(Bytes::copy_from_slice(c))))
}

/// Every file below `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(
                    e.path()
                        .strip_prefix(dir)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/"),
                );
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn a_put_appears_only_on_commit_whole_and_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let store = FolderStore::new(dir.path(), true);
    let data = b"some document bytes".repeat(1000);
    let expected = Expected {
        bytes: Some(data.len() as u64),
        sha256: None,
    };
    let staged = put_stream(&store, "TIC1/a.bin", chunks(&data), &expected)
        .await
        .unwrap();
    assert_eq!(staged.bytes(), data.len() as u64);
    assert_eq!(staged.sha256(), hex::encode(Sha256::digest(&data)));
    let before = files(dir.path());
    assert_eq!(before.len(), 1, "{before:?}");
    assert!(before[0].starts_with("TIC1/.alga-batch-") && before[0].ends_with(".part"));
    staged.commit().await.unwrap();
    assert_eq!(files(dir.path()), vec!["TIC1/a.bin"]);
    assert_eq!(std::fs::read(dir.path().join("TIC1/a.bin")).unwrap(), data);
    let back: Vec<Bytes> = store
        .read("TIC1/a.bin")
        .await
        .unwrap()
        .map(|c| c.unwrap())
        .collect()
        .await;
    assert_eq!(back.concat(), data);
    let names: Vec<String> = store
        .list("TIC1")
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect();
    assert_eq!(names, vec!["a.bin"]);
}

#[tokio::test]
async fn failed_aborted_or_dropped_uploads_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = FolderStore::new(dir.path(), true);
    let data = vec![7u8; 10_000];
    let short = Expected {
        bytes: Some(10_001),
        sha256: None,
    };
    let err = put_stream(&store, "T/a", chunks(&data), &short)
        .await
        .err()
        .unwrap();
    assert!(matches!(
        err,
        PutError::Store(StoreError::SizeMismatch {
            got: 10_000,
            expected: 10_001
        })
    ));
    let wrong = Expected {
        bytes: None,
        sha256: Some("00".repeat(32)),
    };
    let err = put_stream(&store, "T/a", chunks(&data), &wrong)
        .await
        .err()
        .unwrap();
    assert!(matches!(
        err,
        PutError::Store(StoreError::HashMismatch { .. })
    ));
    let failing = futures::stream::iter(vec![Ok(Bytes::from_static(b"half")), Err("network gone")]);
    let err = put_stream(&store, "T/a", failing, &Expected::default())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, PutError::Source("network gone")));
    let mut up = store.create("T/a").await.unwrap();
    up.write(Bytes::from_static(b"abc")).await.unwrap();
    up.abort().await;
    let mut up = store.create("T/a").await.unwrap();
    up.write(Bytes::from_static(b"abc")).await.unwrap();
    drop(up);
    let staged = put_stream(&store, "T/a", chunks(&data), &Expected::default())
        .await
        .unwrap();
    staged.abort().await;
    let staged = put_stream(&store, "T/a", chunks(&data), &Expected::default())
        .await
        .unwrap();
    drop(staged);
    assert!(files(dir.path()).is_empty(), "{:?}", files(dir.path()));
}

#[tokio::test]
async fn keys_that_are_not_plain_relative_paths_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = FolderStore::new(dir.path().join("out"), true);
    for bad in ["../x", "/etc/passwd", "a//b", "a/./b", "a\\..\\b", ""] {
        assert!(store.create(bad).await.is_err(), "{bad}");
        assert!(store.delete(bad).await.is_err(), "{bad}");
    }
    assert!(!dir.path().join("x").exists());
}

/// Backs up `data` under `key` as a backup would, returning its row.
async fn backed_up(store: &FolderStore, key: &str, data: &[u8]) -> Entry {
    let staged = put_stream(store, key, chunks(data), &Expected::default())
        .await
        .unwrap();
    let mut e = entry(Uuid::new_v4(), "x");
    e.path = key.into();
    e.bytes = staged.bytes();
    e.sha256 = staged.sha256().into();
    e.downloaded_at = manifest::now();
    staged.commit().await.unwrap();
    e
}

fn set_mtime(path: &Path, t: SystemTime) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_modified(t).unwrap();
}

#[tokio::test]
async fn trust_skips_the_hash_unless_the_file_changed_after_its_row_and_verify_always_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let store = FolderStore::new(dir.path(), true);
    let e = backed_up(&store, "T/a.txt", b"original").await;
    let path = dir.path().join("T/a.txt");
    let check = |how| store.check(&e, how);
    let intact = Checked {
        presence: Presence::Intact,
        rehashed: false,
    };
    assert_eq!(check(Check::Trust).await.unwrap(), intact);
    assert_eq!(
        check(Check::Verify).await.unwrap(),
        Checked {
            rehashed: true,
            ..intact
        }
    );
    // Same size, other bytes, an old mtime: trusted without --verify, caught with it.
    std::fs::write(&path, b"ORIGINAL").unwrap();
    set_mtime(&path, SystemTime::now() - Duration::from_secs(3600));
    assert_eq!(check(Check::Trust).await.unwrap(), intact);
    let differs = Checked {
        presence: Presence::Differs,
        rehashed: true,
    };
    assert_eq!(check(Check::Verify).await.unwrap(), differs);
    // Modified after the row: re-hashed by default.
    set_mtime(&path, SystemTime::now() + Duration::from_secs(5));
    assert_eq!(check(Check::Trust).await.unwrap(), differs);
    std::fs::write(&path, b"original").unwrap();
    // (Set the mtime explicitly: a write within the row's own millisecond would count as
    // not after it.)
    set_mtime(&path, SystemTime::now() + Duration::from_secs(5));
    assert_eq!(
        check(Check::Trust).await.unwrap(),
        Checked {
            rehashed: true,
            ..intact
        }
    );
    std::fs::write(&path, b"longer than it was").unwrap();
    assert_eq!(
        check(Check::Trust).await.unwrap().presence,
        Presence::Differs
    );
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        check(Check::Trust).await.unwrap().presence,
        Presence::Missing
    );
}

#[tokio::test]
async fn journaled_changes_survive_a_kill_and_compaction_folds_them_in() {
    let dir = tempfile::tempdir().unwrap();
    let t = Uuid::new_v4();
    let (a, b) = (entry(t, "a.txt"), entry(t, "b.txt"));
    {
        let store = FolderStore::new(dir.path(), true);
        let m = crate::store::Manifest::new(&store, Entries::new());
        m.record(a.clone()).await.unwrap();
        m.record(b.clone()).await.unwrap();
        m.remove(t, a.document_id).await.unwrap();
        // Dropped without compacting, as by a kill: only the journal holds the changes.
    }
    assert!(!dir.path().join(MANIFEST_FILE).exists());
    let store = FolderStore::new(dir.path(), true);
    let loaded = store.load_manifest().await.unwrap();
    assert!(loaded.journal_replayed);
    assert_eq!(
        loaded.entries.into_values().collect::<Vec<_>>(),
        vec![b.clone()]
    );
    let m = crate::store::Manifest::new(&store, store.load_manifest().await.unwrap().entries);
    m.compact().await.unwrap();
    assert!(!dir.path().join(JOURNAL_FILE).exists());
    let again = store.load_manifest().await.unwrap();
    assert!(!again.journal_replayed);
    assert_eq!(
        again.entries.into_values().collect::<Vec<_>>(),
        vec![b.clone()]
    );
    let c = entry(t, "c.txt");
    m.record(c.clone()).await.unwrap();
    let mut want = Index::new(Entries::new());
    want.put(b);
    want.put(c);
    assert_eq!(
        store.load_manifest().await.unwrap().entries,
        *want.entries(),
        "a fresh journal after compaction"
    );
}

#[tokio::test]
async fn a_torn_journal_tail_is_cut_before_the_next_row_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let t = Uuid::new_v4();
    let (a, b, c) = (
        entry(t, "a.txt"),
        entry(t, "b\n\"quoted\".txt"),
        entry(t, "c.txt"),
    );
    let mut data = journal::header();
    data.extend(journal::encode(&[&Record::Put(a.clone())]));
    let torn = journal::encode(&[&Record::Put(b)]);
    data.extend(&torn[..torn.len() / 2]); // cut inside the quoted name
    std::fs::write(dir.path().join(JOURNAL_FILE), &data).unwrap();
    let store = FolderStore::new(dir.path(), true);
    let m = crate::store::Manifest::new(&store, Entries::new());
    m.record(c.clone()).await.unwrap();
    let text = std::fs::read(dir.path().join(JOURNAL_FILE)).unwrap();
    let replayed = journal::replay(&text, "j").unwrap();
    assert_eq!(replayed.records, vec![Record::Put(a), Record::Put(c)]);
    assert!(replayed.warnings.is_empty(), "{:?}", replayed.warnings);
}

#[tokio::test]
async fn a_held_lock_is_refused_naming_the_holder_and_temps_go_under_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = FolderStore::new(dir.path().join("out"), true);
    let held = store.lock().await.unwrap();
    let err = store.lock().await.unwrap_err();
    assert!(matches!(err, StoreError::Locked(_)));
    assert!(
        err.to_string()
            .contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    std::fs::create_dir_all(dir.path().join("out/T")).unwrap();
    std::fs::write(dir.path().join("out/T/.alga-batch-killed.part"), b"half").unwrap();
    drop(held);
    let _again = store.lock().await.unwrap();
    assert_eq!(files(&dir.path().join("out")), vec![".alga-batch.lock"]);
}
