//! A damaged backup file is refused: recorded failed ("backup file damaged") and never
//! uploaded, whether the damage shows in its modification time (found before anything is
//! sent) or not (found by the upload stream, which then never completes the upload).

use super::{documents, World, TICKETS};
use crate::env::{code, text};
use std::time::SystemTime;

/// Overwrite a backup file with as many other bytes; keep its modification time when asked.
fn damage(w: &World, key: &str, keep_mtime: bool) {
    let path = w.a.path(&format!("backup/{key}"));
    let mut bytes = std::fs::read(&path).unwrap();
    let mtime: SystemTime = std::fs::metadata(&path).unwrap().modified().unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    if keep_mtime {
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(mtime).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_backup_file_is_refused_and_never_uploaded() {
    let w = World::new(TICKETS).await;
    damage(&w, "TIC001001/report.bin", false);
    damage(&w, "TIC001005/notes.txt", true);
    let out = w.restore_into_b("r.csv", &["--no-comments"]).await;
    assert_eq!(code(&out), 1, "{}", text(&out));
    let rows = w.rows("r.csv");
    let row = |source: &str| rows.iter().find(|r| r["source"] == source).unwrap().clone();
    let seen = row("TIC001001/report.bin");
    assert_eq!(seen["status"], "failed");
    assert!(
        seen["error"].starts_with("backup file damaged: ")
            && seen["error"].ends_with("differs from the manifest"),
        "{seen:?}"
    );
    assert_eq!(seen["attempts"], "0", "nothing was sent for it");
    let hidden = row("TIC001005/notes.txt");
    assert_eq!(hidden["status"], "failed");
    assert!(
        hidden["error"].starts_with("backup file damaged: ") && hidden["error"].contains("sha256"),
        "{hidden:?}"
    );
    assert!(
        documents(&w.b, "TIC001001")
            .iter()
            .all(|(n, _)| n != "report.bin"),
        "not uploaded"
    );
    let notes: Vec<Vec<u8>> = documents(&w.b, "TIC001005")
        .into_iter()
        .filter(|(n, _)| n == "notes.txt")
        .map(|(_, b)| b)
        .collect();
    assert_eq!(notes, [b"from B\n".to_vec()], "only B's own notes.txt");
    let others = rows.iter().filter(|r| r["status"] == "failed").count();
    assert_eq!(others, 2, "every other document is restored: {rows:?}");
}
