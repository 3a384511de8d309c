//! The S3 store against `object_store`'s in-memory store (which honours conditional puts and
//! multipart uploads): objects appear only on commit, failures leave nothing, the journal
//! replays and retires, the lock is exclusive, renewed, and taken over once stale. The
//! end-to-end tests (`tests/it/s3/`) run the binary against an S3 server.

use super::lease::{self, Holder};
use super::upload::{PART_BYTES, SHA256_META};
use super::{journal, S3Store};
use crate::store::journal::Record;
use crate::store::layout::{LOCK_FILE, MANIFEST_FILE, UPLOADS_DIR};
use crate::store::manifest::tests::entry;
use crate::store::{put_stream, BackupStore, Check, Expected, Presence, PutError, StoreError};
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{Attribute, ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use uuid::Uuid;

fn store() -> (Arc<InMemory>, S3Store) {
    let mem = Arc::new(InMemory::new());
    let s = S3Store::with_backend(mem.clone(), "bkt", "nightly/alga");
    (mem, s)
}

fn path(key: &str) -> Path {
    Path::parse(format!("nightly/alga/{key}")).unwrap()
}

/// `n` bytes that differ from one position to the next.
fn content(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8 ^ (i >> 20) as u8).collect()
}

/// `data` as a stream of 64 KiB chunks, failing after `fail_after` bytes if given.
fn chunks(
    data: &[u8],
    fail_after: Option<usize>,
) -> impl futures::Stream<Item = Result<Bytes, &'static str>> {
    let end = fail_after.unwrap_or(data.len());
    let mut items: Vec<Result<Bytes, &'static str>> = data[..end]
        .chunks(64 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    if fail_after.is_some() {
        items.push(Err("connection reset"));
    }
    futures::stream::iter(items)
}

async fn uploads_recorded(mem: &InMemory) -> usize {
    let dir = path(UPLOADS_DIR);
    let found: Vec<_> = mem.list(Some(&dir)).try_collect().await.unwrap();
    found.len()
}

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[tokio::test]
async fn a_small_object_appears_on_commit_with_its_sha256_as_metadata() {
    let (mem, s) = store();
    let data = b"hello".to_vec();
    let expected = Expected {
        bytes: Some(5),
        sha256: None,
    };
    let staged = put_stream(&s, "T1/a.txt", chunks(&data, None), &expected)
        .await
        .unwrap_or_else(|_| panic!("staged"));
    assert_eq!(staged.sha256(), sha(&data));
    assert!(
        mem.head(&path("T1/a.txt")).await.is_err(),
        "not before commit"
    );
    staged.commit().await.unwrap();
    let got = mem.get(&path("T1/a.txt")).await.unwrap();
    let meta = got.attributes.get(&Attribute::Metadata(SHA256_META.into()));
    assert_eq!(meta.map(|v| v.as_ref().to_string()), Some(sha(&data)));
    assert_eq!(got.bytes().await.unwrap(), data);
}

#[tokio::test]
async fn a_large_object_is_a_multipart_upload_completed_only_on_commit() {
    let (mem, s) = store();
    let data = content(2 * PART_BYTES + 12345);
    let expected = Expected {
        bytes: Some(data.len() as u64),
        sha256: Some(sha(&data)),
    };
    let staged = put_stream(&s, "T1/big.bin", chunks(&data, None), &expected)
        .await
        .unwrap_or_else(|_| panic!("staged"));
    assert!(
        mem.head(&path("T1/big.bin")).await.is_err(),
        "not before commit"
    );
    assert_eq!(uploads_recorded(&mem).await, 1, "the upload is recorded");
    staged.commit().await.unwrap();
    let got = mem.get(&path("T1/big.bin")).await.unwrap().bytes().await;
    assert!(
        got.unwrap() == data,
        "the object is the download, byte for byte"
    );
    assert_eq!(uploads_recorded(&mem).await, 0, "and its record is gone");
}

#[tokio::test]
async fn a_download_failing_midway_or_mismatching_leaves_nothing() {
    let (mem, s) = store();
    let data = content(PART_BYTES + 100_000);
    let failed = put_stream(
        &s,
        "T1/cut.bin",
        chunks(&data, Some(PART_BYTES + 4096)),
        &Expected::default(),
    )
    .await;
    assert!(matches!(failed, Err(PutError::Source("connection reset"))));
    let wrong = Expected {
        bytes: Some(data.len() as u64 + 1),
        sha256: None,
    };
    let mismatch = put_stream(&s, "T1/short.bin", chunks(&data, None), &wrong).await;
    assert!(matches!(
        mismatch,
        Err(PutError::Store(StoreError::SizeMismatch { .. }))
    ));
    let bad_hash = Expected {
        bytes: None,
        sha256: Some("00".repeat(32)),
    };
    let mismatch = put_stream(&s, "T1/small.bin", chunks(b"abc", None), &bad_hash).await;
    assert!(matches!(
        mismatch,
        Err(PutError::Store(StoreError::HashMismatch { .. }))
    ));
    let all: Vec<_> = mem.list(None).try_collect().await.unwrap();
    assert!(all.is_empty(), "no object, no upload record: {all:?}");
}

#[tokio::test]
async fn a_dropped_upload_is_aborted_in_the_background_before_compaction() {
    let (mem, s) = store();
    let mut up = s.create("T1/dropped.bin").await.unwrap();
    up.write(Bytes::from(content(PART_BYTES + 1)))
        .await
        .unwrap();
    assert_eq!(uploads_recorded(&mem).await, 1);
    drop(up);
    s.compact(Default::default()).await.unwrap();
    assert_eq!(uploads_recorded(&mem).await, 0, "aborted and forgotten");
    assert!(mem.head(&path("T1/dropped.bin")).await.is_err());
}

#[tokio::test]
async fn journal_batches_replay_in_order_and_compaction_retires_them() {
    let (mem, s) = store();
    let t = Uuid::new_v4();
    let (a, b, c) = (entry(t, "a.txt"), entry(t, "b.txt"), entry(t, "c.txt"));
    let body = PutPayload::from(vec![b'x'; b.bytes as usize]);
    mem.put(&path(&b.path), body).await.unwrap();
    s.record(Record::Put(c.clone())).await.unwrap();
    s.record(Record::Put(a.clone())).await.unwrap();
    s.record(Record::Put(b.clone())).await.unwrap();
    s.record(Record::Remove {
        ticket_id: t,
        document_id: a.document_id,
    })
    .await
    .unwrap();
    let other = S3Store::with_backend(mem.clone(), "bkt", "nightly/alga");
    let loaded = other.load_manifest().await.unwrap();
    assert!(loaded.journal_replayed);
    assert_eq!(
        loaded.entries.into_values().collect::<Vec<_>>(),
        vec![b.clone()],
        "a removed; c journaled but its object never committed (a killed run): only b"
    );
    s.compact([((t, b.document_id), b.clone())].into())
        .await
        .unwrap();
    assert_eq!(journal::pending_batches(&s.shared).await, 0);
    let again = other.load_manifest().await.unwrap();
    assert!(!again.journal_replayed);
    assert_eq!(again.entries.len(), 1);
    assert!(mem.head(&path(MANIFEST_FILE)).await.is_ok());
}

#[tokio::test]
async fn a_run_folder_marked_folded_is_never_replayed() {
    let (mem, s) = store();
    let t = Uuid::new_v4();
    let a = entry(t, "a.txt");
    s.record(Record::Put(a.clone())).await.unwrap();
    let batches: Vec<_> = mem
        .list(Some(&path(".alga-batch-journal")))
        .try_collect()
        .await
        .unwrap();
    let run = batches[0]
        .location
        .prefix_match(&path(".alga-batch-journal"))
        .unwrap()
        .next()
        .unwrap();
    let folded = path(&format!(".alga-batch-journal/{}/folded", run.as_ref()));
    mem.put(&folded, PutPayload::from_static(b""))
        .await
        .unwrap();
    let fresh = S3Store::with_backend(mem.clone(), "bkt", "nightly/alga");
    let loaded = fresh.load_manifest().await.unwrap();
    assert!(loaded.journal_replayed, "left for compaction to clean");
    assert!(loaded.entries.is_empty(), "a folded batch is not replayed");
    fresh.compact(loaded.entries).await.unwrap();
    let left: Vec<_> = mem
        .list(Some(&path(".alga-batch-journal")))
        .try_collect()
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn a_manifest_larger_than_a_part_is_written_whole() {
    let (mem, s) = store();
    let t = Uuid::new_v4();
    let mut entries = crate::store::Entries::new();
    while entries.len() * 250 < PART_BYTES + PART_BYTES / 4 {
        let e = entry(t, &format!("document-{}.pdf", entries.len()));
        entries.insert((e.ticket_id, e.document_id), e);
    }
    s.compact(entries.clone()).await.unwrap();
    let size = mem.head(&path(MANIFEST_FILE)).await.unwrap().size;
    assert!(size > PART_BYTES as u64, "{size}");
    assert_eq!(s.load_manifest().await.unwrap().entries, entries);
    assert_eq!(uploads_recorded(&mem).await, 0);
}

#[tokio::test]
async fn checks_use_sizes_and_verify_rehashes() {
    let (mem, s) = store();
    let t = Uuid::new_v4();
    let data = b"%PDF-1.4 fake".to_vec();
    let mut e = entry(t, "report.pdf");
    e.bytes = data.len() as u64;
    e.sha256 = sha(&data);
    let key = path(&e.path);
    let check = |how| s.check(&e, how);
    assert_eq!(
        check(Check::Trust).await.unwrap().presence,
        Presence::Missing
    );
    mem.put(&key, PutPayload::from(data.clone())).await.unwrap();
    let trusted = check(Check::Trust).await.unwrap();
    assert_eq!(
        (trusted.presence, trusted.rehashed),
        (Presence::Intact, false)
    );
    mem.put(&key, PutPayload::from(b"%PDF-1.4 fakE".to_vec()))
        .await
        .unwrap();
    assert_eq!(
        check(Check::Trust).await.unwrap().presence,
        Presence::Intact,
        "same size"
    );
    let verified = check(Check::Verify).await.unwrap();
    assert_eq!(
        (verified.presence, verified.rehashed),
        (Presence::Differs, true)
    );
    mem.put(&key, PutPayload::from(b"short".to_vec()))
        .await
        .unwrap();
    assert_eq!(
        check(Check::Trust).await.unwrap().presence,
        Presence::Differs
    );
    let names = s.list("TIC001000").await.unwrap();
    assert_eq!(names.len(), 1);
    mem.delete(&key).await.unwrap();
    assert_eq!(
        check(Check::Trust).await.unwrap().presence,
        Presence::Differs,
        "the listing answers (5 bytes), not the store"
    );
}

#[tokio::test]
async fn internal_folders_are_not_listed_and_keys_stay_below_the_prefix() {
    let (mem, s) = store();
    s.put_small("T1/comments.jsonl", Bytes::from_static(b"{}\n"))
        .await
        .unwrap();
    s.record(Record::Put(entry(Uuid::new_v4(), "a.txt")))
        .await
        .unwrap();
    let mut up = s.create("T2/big.bin").await.unwrap();
    up.write(Bytes::from(content(PART_BYTES))).await.unwrap();
    let root: Vec<String> = s
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect();
    assert_eq!(root, vec!["T1"], "journal and upload records are internal");
    up.abort().await;
    assert!(s.create("../x").await.is_err());
    assert!(s.read_small("a//b").await.is_err());
    assert_eq!(s.describe("T1/a.txt"), "s3://bkt/nightly/alga/T1/a.txt");
    let read: Vec<Bytes> = s
        .read("T1/comments.jsonl")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(read.concat(), b"{}\n");
    assert!(mem.head(&path("T1/comments.jsonl")).await.is_ok());
    s.delete("T1/comments.jsonl").await.unwrap();
    s.delete("T1/comments.jsonl").await.unwrap();
    assert_eq!(s.read_small("T1/comments.jsonl").await.unwrap(), None);
}

async fn holder(mem: &InMemory) -> Holder {
    let got = mem
        .get(&path(LOCK_FILE))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    serde_json::from_slice(&got).unwrap()
}

#[tokio::test(start_paused = true)]
async fn the_lock_is_exclusive_renewed_and_released() {
    let (mem, s) = store();
    let held = s.lock().await.unwrap();
    assert!(held.took_over.is_none());
    let first = holder(&mem).await;
    assert_eq!(first.pid, std::process::id());
    let tag = |m: object_store::ObjectMeta| m.e_tag;
    let written = tag(mem.head(&path(LOCK_FILE)).await.unwrap());
    let second = S3Store::with_backend(mem.clone(), "bkt", "nightly/alga");
    let e = second.lock().await.unwrap_err();
    assert!(matches!(e, StoreError::Locked(_)), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("pid {}", std::process::id())),
        "{e}"
    );
    tokio::time::sleep(lease::RENEW * 4).await;
    let renewed = tag(mem.head(&path(LOCK_FILE)).await.unwrap());
    assert_ne!(renewed, written, "rewritten (renewed) while held");
    assert_eq!(holder(&mem).await.started_at, first.started_at);
    s.record(Record::Put(entry(Uuid::new_v4(), "a.txt")))
        .await
        .unwrap();
    s.unlock(held).await.unwrap();
    assert!(mem.head(&path(LOCK_FILE)).await.is_err(), "released");
    second.lock().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_stale_lock_is_taken_over_and_the_old_holder_stops_writing() {
    let (mem, s) = store();
    let stale = Holder {
        host: "old-host".into(),
        pid: 4242,
        started_at: "2026-01-01T00:00:00Z".into(),
        renewed_at: "2026-01-01T00:00:00Z".into(),
        expires_at: "2026-01-01T00:01:00Z".into(),
        lease_seconds: 60,
    };
    let body = serde_json::to_vec(&stale).unwrap();
    mem.put(&path(LOCK_FILE), PutPayload::from(body))
        .await
        .unwrap();
    let held = s.lock().await.unwrap();
    let before = held.took_over.clone().unwrap();
    assert!(
        before.contains("old-host") && before.contains("4242"),
        "{before}"
    );
    // Another run overwrites the lock behind this one's back: the next renewal notices.
    let mut thief = holder(&mem).await;
    thief.host = "thief".into();
    mem.put(
        &path(LOCK_FILE),
        PutPayload::from(serde_json::to_vec(&thief).unwrap()),
    )
    .await
    .unwrap();
    tokio::time::sleep(lease::RENEW + lease::RENEW / 2).await;
    let e = s
        .record(Record::Put(entry(Uuid::new_v4(), "a.txt")))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("taken over"), "{e}");
    assert!(
        s.compact(Default::default()).await.is_err(),
        "no manifest from a lost lock"
    );
    s.unlock(held).await.unwrap();
    assert_eq!(
        holder(&mem).await.host,
        "thief",
        "the new holder's lock stays"
    );
}

#[tokio::test]
async fn a_lock_whose_lease_is_not_over_is_respected_even_if_unreadable() {
    let (mem, s) = store();
    mem.put(&path(LOCK_FILE), PutPayload::from_static(b"garbage"))
        .await
        .unwrap();
    let e = s.lock().await.unwrap_err();
    assert!(matches!(e, StoreError::Locked(_)), "{e}");
    assert!(e.to_string().contains("unreadable"), "{e}");
}
