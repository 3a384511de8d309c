//! Backups to S3: a first and a repeat run, `--prune`, `--verify`, comments, the time budget
//! with resume, `--dry-run`, and reading a backup back through the store (what restore uses).

use super::{content, is_document, quick, sha, S3Env, BUCKET, PREFIX};
use crate::env::{code, text};
use alga_batch::store::{BackupStore, Location, S3Store};
use futures::TryStreamExt;
use sha2::Digest;

#[tokio::test]
async fn a_first_and_a_repeat_backup_to_s3_download_and_read_nothing_twice() {
    let e = S3Env::with(quick(12)).await;
    let t = e.env.ticket_id("TIC001001");
    let big = content(9 * (1 << 20) + 5);
    e.env
        .sandbox
        .add_document_raw(t, "big.bin", "application/octet-stream", &big);
    e.env
        .sandbox
        .add_document_raw(t, "report.pdf", "application/pdf", b"%PDF-1.4 fake");
    let first = e.backup(&[]).await;
    assert_eq!(code(&first), 0, "{}", text(&first));
    let rows = e.manifest();
    assert!(
        rows.len() >= 4,
        "seeded documents plus ours: {}",
        rows.len()
    );
    assert_eq!(e.downloads(), rows.len());
    for r in &rows {
        let id = r["document_id"].parse().unwrap();
        let want = e.env.sandbox.document_bytes(id).unwrap();
        let got = e
            .object(&r["path"])
            .unwrap_or_else(|| panic!("no object {}", r["path"]));
        assert!(got == want, "{} differs", r["path"]);
        assert_eq!(r["sha256"], sha(&want));
    }
    let multipart =
        e.s3.log()
            .iter()
            .filter(|o| o.op == "CompleteMultipartUpload")
            .count();
    assert_eq!(multipart, 1, "big.bin went up in parts");
    assert!(e.s3.uploads().is_empty() && e.s3.uploads_on_disk() == 0);
    let own: Vec<String> = e
        .keys()
        .into_iter()
        .filter(|k| k.starts_with('.'))
        .collect();
    assert!(
        own.is_empty(),
        "no lock, journal or upload record left: {own:?}"
    );

    let before = e.s3.log().len();
    let second = e.backup(&["--quiet"]).await;
    assert_eq!(code(&second), 0, "{}", text(&second));
    let line = text(&second);
    assert!(
        line.contains(&format!("0 downloaded (0 B), {} unchanged", rows.len())),
        "{line}"
    );
    assert_eq!(e.downloads(), rows.len(), "the repeat downloaded nothing");
    let repeat = e.ops_since(before);
    let read_back: Vec<_> = repeat
        .iter()
        .filter(|o| matches!(o.op, "GetObject" | "HeadObject") && is_document(&o.key))
        .collect();
    assert!(
        read_back.is_empty(),
        "documents read or HEADed: {read_back:?}"
    );
    let written: Vec<_> = repeat
        .iter()
        .filter(|o| o.op.contains("Upload") || (o.op == "PutObject" && is_document(&o.key)))
        .collect();
    assert!(written.is_empty(), "documents written again: {written:?}");
    let lists = repeat.iter().filter(|o| o.op == "ListObjectsV2").count();
    assert!(lists <= 12 + 4, "about one listing per ticket: {lists}");
}

#[tokio::test]
async fn prune_deletes_the_object_of_a_document_gone_from_the_server() {
    let e = S3Env::with(quick(1)).await;
    let t = e.env.sandbox.add_ticket("TIC900001", "gone", false);
    let doc = e
        .env
        .sandbox
        .add_document_raw(t, "old.txt", "text/plain", b"old");
    assert_eq!(code(&e.backup(&[]).await), 0);
    assert_eq!(e.object("TIC900001/old.txt").as_deref(), Some(&b"old"[..]));
    let client = alga_batch::api::Client::new(alga_batch::api::ClientConfig::new(
        e.env.sandbox.base_url(),
        alga_batch::api::ApiKey::new(crate::env::KEY.to_string()),
    ))
    .unwrap();
    client.delete_document(t, doc).await.unwrap();
    let kept = e.backup(&[]).await;
    assert!(
        text(&kept).contains("gone from the server; kept"),
        "{}",
        text(&kept)
    );
    assert!(e.object("TIC900001/old.txt").is_some());
    let pruned = e.backup(&["--prune"]).await;
    assert_eq!(code(&pruned), 0, "{}", text(&pruned));
    assert!(text(&pruned).contains("pruned"), "{}", text(&pruned));
    assert!(e.object("TIC900001/old.txt").is_none(), "object deleted");
    assert!(e
        .manifest()
        .iter()
        .all(|r| r["document_id"] != doc.to_string()));
}

#[tokio::test]
async fn verify_catches_an_object_changed_behind_the_tools_back() {
    let e = S3Env::with(quick(2)).await;
    let t = e.env.ticket_id("TIC001001");
    e.env
        .sandbox
        .add_document_raw(t, "report.pdf", "application/pdf", b"%PDF-1.4 fake");
    assert_eq!(code(&e.backup(&[]).await), 0);
    let total = e.manifest().len();
    // Same size, other bytes: only reading the object can tell.
    std::fs::write(e.file("TIC001001/report.pdf"), b"%PDF-1.4 fakE").unwrap();
    let trusting = e.backup(&["--quiet"]).await;
    assert!(
        text(&trusting).contains(&format!("0 downloaded (0 B), {total} unchanged")),
        "{}",
        text(&trusting)
    );
    let before = e.s3.log().len();
    let verify = e.backup(&["--verify"]).await;
    assert_eq!(code(&verify), 0, "{}", text(&verify));
    assert!(
        text(&verify).contains("TIC001001/report.pdf: differs from what was downloaded"),
        "{}",
        text(&verify)
    );
    assert_eq!(e.object("TIC001001/report.pdf").unwrap(), b"%PDF-1.4 fake");
    let read: usize = e
        .ops_since(before)
        .iter()
        .filter(|o| o.op == "GetObject" && is_document(&o.key))
        .count();
    assert_eq!(read, total, "--verify read every object back");
    assert_eq!(e.downloads(), total + 1);
}

#[tokio::test]
async fn comments_budget_resume_and_dry_run_behave_as_with_a_folder() {
    let cfg = alga_batch::sandbox::SandboxConfig {
        latency_ms: Some((40, 40)),
        ..quick(25)
    };
    let e = S3Env::with(cfg).await;
    let dry = e.backup(&["--dry-run"]).await;
    assert_eq!(code(&dry), 0, "{}", text(&dry));
    assert!(e.keys().is_empty(), "a dry run writes nothing");
    let args = [
        "--max-duration",
        "300ms",
        "--concurrency",
        "1",
        "--comments",
    ];
    let first = e.backup(&args).await;
    assert_eq!(code(&first), 0, "{}", text(&first));
    assert!(
        text(&first).contains("stopped at the 300ms budget"),
        "{}",
        text(&first)
    );
    assert!(
        e.object(".alga-batch-resume.json").is_some(),
        "resume position kept"
    );
    let after_first = e.manifest().len();
    let second = e.backup(&["--comments"]).await;
    assert_eq!(code(&second), 0, "{}", text(&second));
    assert!(
        e.object(".alga-batch-resume.json").is_none(),
        "pass complete"
    );
    assert!(after_first < 5 && e.manifest().len() == 5);
    let (header, rows) = crate::env::read_results(&e.file("comments.csv"));
    assert_eq!(header[..3], ["ticket_id", "ticket_number", "comment_id"]);
    let expected: usize = e
        .env
        .sandbox
        .tickets()
        .iter()
        .map(|t| e.env.sandbox.comments(t.ticket_id).len())
        .sum();
    assert_eq!(rows.len(), expected);
    assert!(e.object("TIC001000/comments.jsonl").is_some());
}

#[tokio::test]
async fn a_backup_in_s3_reads_back_through_the_store() {
    let e = S3Env::with(quick(6)).await;
    assert_eq!(code(&e.backup(&[]).await), 0);
    let location = Location::parse(&super::out()).unwrap();
    let Location::S3 { bucket, prefix } = &location else {
        panic!("{location}")
    };
    assert_eq!((bucket.as_str(), prefix.as_str()), (BUCKET, PREFIX));
    let store = S3Store::from_vars(bucket, prefix, &super::aws_env(&e.s3)).unwrap();
    let loaded = store.load_manifest().await.unwrap();
    assert!(!loaded.journal_replayed);
    assert_eq!(loaded.entries.len(), e.manifest().len());
    for entry in loaded.entries.values() {
        let chunks: Vec<bytes::Bytes> = store
            .read(&entry.path)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let got = chunks.concat();
        assert_eq!(got.len() as u64, entry.bytes);
        assert_eq!(hex::encode(sha2::Sha256::digest(&got)), entry.sha256);
    }
    let folders = store.list("").await.unwrap();
    assert!(folders.iter().any(|l| l.folder && l.name == "TIC001000"));
    assert!(store.read_small("manifest.csv").await.unwrap().is_some());
    assert_eq!(store.read_small("nothing-here.txt").await.unwrap(), None);
}
