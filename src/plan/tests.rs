//! Tests of `plan.rs`: op keys, ordering, hashing and the hashes known from earlier runs.

use super::*;
use crate::job::{JobItem, JobSettings};

fn comment(ticket: &str, text: &str, line: usize) -> JobItem {
    JobItem {
        source: format!("job.csv:{line}"),
        ticket: TicketRef::parse(ticket).unwrap(),
        action: Action::Comment(CommentSpec {
            text: text.into(),
            is_internal: false,
            is_resolution: false,
        }),
    }
}

fn job(items: Vec<JobItem>) -> Job {
    Job {
        name: "t".into(),
        path: "job.csv".into(),
        settings: JobSettings::default(),
        items,
    }
}

async fn plan_of(j: &Job) -> Vec<Operation> {
    plan(j, &KnownHashes::default(), &CancellationToken::new())
        .await
        .unwrap()
}

async fn keys(items: Vec<JobItem>) -> Vec<String> {
    plan_of(&job(items))
        .await
        .into_iter()
        .map(|o| o.op_key)
        .collect()
}

#[tokio::test]
async fn keys_survive_reordering_and_unrelated_edits() {
    let a = keys(vec![
        comment("TIC1", "a", 2),
        comment("TIC1", "b", 3),
        comment("TIC2", "c", 4),
    ])
    .await;
    let b = keys(vec![
        comment("TIC2", "c", 2),
        comment("TIC1", "a", 3),
        comment("TIC1", "b", 4),
    ])
    .await;
    assert_eq!(a[0], b[1]);
    assert_eq!(a[1], b[2]);
    assert_eq!(a[2], b[0]);
    let c = keys(vec![
        comment("TIC1", "a", 2),
        comment("TIC1", "B changed", 3),
        comment("TIC2", "c", 4),
    ])
    .await;
    assert_eq!(a[0], c[0]);
    assert_ne!(a[1], c[1]);
    assert_eq!(a[2], c[2]);
}

#[tokio::test]
async fn identical_operations_get_occurrence_numbers() {
    let k = keys(vec![comment("TIC1", "same", 2), comment("TIC1", "same", 3)]).await;
    assert_ne!(k[0], k[1]);
    assert!(k[0].starts_with("c-") && k[0].len() == 22);
    // Ticket numbers compare case-insensitively, like the server does.
    let l = keys(vec![comment("tic1", "same", 9)]).await;
    assert_eq!(k[0], l[0]);
}

#[tokio::test]
async fn uploads_are_keyed_by_name_size_and_hash() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.txt");
    std::fs::write(&p, b"hello").unwrap();
    let up = |line| JobItem {
        source: format!("job.csv:{line}"),
        ticket: TicketRef::parse("TIC1").unwrap(),
        action: Action::Upload(UploadSpec {
            path: p.clone(),
            name: "a.txt".into(),
            size: 5,
        }),
    };
    let ops = plan_of(&job(vec![up(2)])).await;
    match &ops[0].kind {
        OpKind::Upload { sha256, mime, .. } => {
            assert_eq!(
                sha256,
                "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
            );
            assert_eq!(mime, "text/plain");
        }
        other => panic!("{other:?}"),
    }
    assert!(ops[0].op_key.starts_with("d-"));
    std::fs::write(&p, b"HELLO").unwrap();
    let again = plan_of(&job(vec![up(2)])).await;
    assert_ne!(
        ops[0].op_key, again[0].op_key,
        "content change must change the key"
    );
}

fn done_row(file: &Path, bytes: u64, sha256: &str, at: DateTime<Utc>) -> ResultRow {
    ResultRow {
        op_key: "d-1".into(),
        source: "job.csv:2".into(),
        ticket: "TIC1".into(),
        ticket_id: String::new(),
        kind: "document".into(),
        status: Status::Created,
        comment_id: String::new(),
        document_id: String::new(),
        file: file.display().to_string(),
        bytes: bytes.to_string(),
        sha256: sha256.into(),
        http_status: "201".into(),
        attempts: 1,
        error: String::new(),
        finished_at: at.to_rfc3339(),
    }
}

#[tokio::test]
async fn a_recorded_hash_is_reused_only_while_the_file_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.txt");
    std::fs::write(&p, b"hello").unwrap();
    let item = JobItem {
        source: "job.csv:2".into(),
        ticket: TicketRef::parse("TIC1").unwrap(),
        action: Action::Upload(UploadSpec {
            path: p.clone(),
            name: "a.txt".into(),
            size: 5,
        }),
    };
    let j = job(vec![item]);
    let sha = |ops: &[Operation]| match &ops[0].kind {
        OpKind::Upload { sha256, .. } => sha256.clone(),
        other => panic!("{other:?}"),
    };
    // A marker hash proves the file was not read: the real one starts with 2cf24d.
    let marker = "ab".repeat(32);
    let later = Utc::now() + chrono::TimeDelta::minutes(1);
    let known = KnownHashes::from_rows([&done_row(&p, 5, &marker, later)]);
    let cancel = CancellationToken::new();
    let ops = plan(&j, &known, &cancel).await.unwrap();
    assert_eq!(sha(&ops), marker, "recorded after the last change: reused");
    let earlier = Utc::now() - chrono::TimeDelta::minutes(1);
    let stale = KnownHashes::from_rows([&done_row(&p, 5, &marker, earlier)]);
    let ops = plan(&j, &stale, &cancel).await.unwrap();
    assert!(
        sha(&ops).starts_with("2cf24d"),
        "changed since: hashed again"
    );
    let other_size = KnownHashes::from_rows([&done_row(&p, 6, &marker, later)]);
    let ops = plan(&j, &other_size, &cancel).await.unwrap();
    assert!(sha(&ops).starts_with("2cf24d"), "other size: hashed again");
    let mut failed = done_row(&p, 5, &marker, later);
    failed.status = Status::Failed;
    let ops = plan(&j, &KnownHashes::from_rows([&failed]), &cancel)
        .await
        .unwrap();
    assert!(
        sha(&ops).starts_with("2cf24d"),
        "only done rows are trusted"
    );
}

#[tokio::test]
async fn a_stop_interrupts_hashing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.txt");
    std::fs::write(&p, b"hello").unwrap();
    let j = job(vec![JobItem {
        source: "job.csv:2".into(),
        ticket: TicketRef::parse("TIC1").unwrap(),
        action: Action::Upload(UploadSpec {
            path: p,
            name: "a.txt".into(),
            size: 5,
        }),
    }]);
    let cancel = CancellationToken::new();
    cancel.cancel();
    let err = plan(&j, &KnownHashes::default(), &cancel)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Interrupted), "{err:?}");
}
