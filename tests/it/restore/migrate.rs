//! Migration into another instance: every document and comment of A lands on B once, in
//! order, with its flags; a dry run and a second restore send nothing; undo removes what the
//! restore uploaded and nothing else.

use super::{all_documents, comment_counts, comments, creates, statuses, World, FAST, TICKETS};
use crate::env::{binary, code, text};
use serde_json::Value;
use std::collections::HashMap;

/// What stands in for the text when the header is posted on its own.
const POINTER: &str = "(the original text follows in the next comment)";

/// Mark line `line` of a ticket's backed-up comments as deleted before the backup.
fn mark_deleted(w: &World, folder: &str, line: usize) -> String {
    let path = w.a.path(&format!("backup/{folder}/comments.jsonl"));
    let body = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = body.lines().map(str::to_string).collect();
    let mut c: Value = serde_json::from_str(&lines[line - 1]).unwrap();
    c["deleted_at"] = "2026-02-01T00:00:00.000Z".into();
    lines[line - 1] = c.to_string();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    c["comment_id"].as_str().unwrap().to_string()
}

/// The name a document of A is restored under: its own, or (for a name an upload cannot
/// carry) its backup file's name.
fn restored_name(w: &World, name: &str) -> String {
    if !name.contains('"') {
        return name.to_string();
    }
    let manifest = crate::env::read_results(&w.a.path("backup/manifest.csv")).1;
    let row = manifest
        .iter()
        .find(|r| r["document_name"] == name)
        .unwrap();
    row["path"].rsplit('/').next().unwrap().to_string()
}

/// B holds, per ticket number, what it held before plus every document of A it lacked.
pub(super) fn assert_documents(w: &World, before: &HashMap<String, Vec<(String, Vec<u8>)>>) {
    let after = all_documents(&w.b);
    for (number, a_docs) in all_documents(&w.a.sandbox) {
        let mut expected = before[&number].clone();
        for (name, bytes) in a_docs {
            let doc = (restored_name(w, &name), bytes);
            if !before[&number].contains(&doc) {
                expected.push(doc);
            }
        }
        expected.sort();
        assert_eq!(after[&number], expected, "documents of {number}");
    }
}

/// The restored comments of a B ticket (after its own `own` ones), grouped by source comment.
fn restored_groups(b: &[Value], own: usize) -> Vec<(String, Vec<&Value>)> {
    let mut groups: Vec<(String, Vec<&Value>)> = Vec::new();
    for c in &b[own..] {
        let source = c["metadata"]["alga_batch_source_comment_id"]
            .as_str()
            .unwrap_or_else(|| panic!("not restored: {c}"))
            .to_string();
        assert!(c["metadata"]["alga_batch_op"].is_string(), "{c}");
        match groups.last_mut() {
            Some((s, parts)) if *s == source => parts.push(c),
            _ => groups.push((source, vec![c])),
        }
    }
    groups
}

/// One restored comment (one or two parts) against its original.
fn assert_restored(original: &Value, parts: &[&Value]) {
    let text = original["comment_text"].as_str().unwrap();
    let last = parts.last().unwrap();
    for p in parts {
        assert_eq!(p["is_internal"], original["is_internal"], "{p}");
    }
    assert_eq!(last["is_resolution"], original["is_resolution"], "{last}");
    let got = last["comment_text"].as_str().unwrap();
    let header = parts[0]["comment_text"].as_str().unwrap();
    let author = original["created_by_name"].as_str().unwrap();
    assert!(
        header.contains(&format!("Originally posted by {author} on ")),
        "{header}"
    );
    match parts.len() {
        2 => {
            assert!(header.ends_with(POINTER), "{header}");
            assert_eq!(parts[0]["is_resolution"], false);
            assert_eq!(got, text, "the text is its own comment, unchanged");
        }
        1 if text.starts_with('[') => {
            let blocks: Vec<Value> = serde_json::from_str(got).expect("still BlockNote");
            let orig: Vec<Value> = serde_json::from_str(text).unwrap();
            assert_eq!(
                blocks[1..],
                orig[..],
                "the original blocks follow the header"
            );
            assert!(
                got.contains(&text[1..text.len() - 1]),
                "copied byte for byte"
            );
        }
        1 => assert!(got.ends_with(text), "{got:?} does not end with {text:?}"),
        n => panic!("{n} parts for {original}"),
    }
}

/// Every comment of A but `deleted` (an id, or empty) is on B once, after B's own, in A's order, with its flags.
pub(super) fn assert_comments(w: &World, own: &HashMap<String, usize>, deleted: &str) {
    for t in w.a.sandbox.tickets() {
        let n = &t.ticket_number;
        let originals: Vec<Value> = comments(&w.a.sandbox, n)
            .into_iter()
            .filter(|c| c["comment_id"] != deleted)
            .collect();
        let b = comments(&w.b, n);
        let groups = restored_groups(&b, own[n]);
        let ids: Vec<&str> = groups.iter().map(|(s, _)| s.as_str()).collect();
        let want: Vec<&str> = originals
            .iter()
            .map(|c| c["comment_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, want, "comments of {n}: each once, in order");
        for (original, (_, parts)) in originals.iter().zip(&groups) {
            assert_restored(original, parts);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_instance_gets_every_document_and_comment_once_and_a_second_restore_sends_nothing()
{
    let w = World::new(TICKETS).await;
    let before = all_documents(&w.b);
    let own = comment_counts(&w.b);
    let deleted = mark_deleted(&w, "TIC001003", 1);

    let plan = w.restore_into_b("plan.csv", &["--dry-run"]).await;
    assert_eq!(code(&plan), 0, "{}", text(&plan));
    let said = text(&plan);
    assert!(
        said.contains("would restore: 6 documents to upload")
            && said.contains("11 comments to post, 2 already on the target"),
        "{said}"
    );
    assert!(
        said.contains("1 more was deleted before the backup and is not restored"),
        "{said}"
    );
    assert!(said.contains("17 requests: within the burst"), "{said}");
    assert_eq!(creates(&w.b), 0, "a dry run creates nothing");

    let first = w.restore_into_b("r1.csv", &[]).await;
    assert_eq!(code(&first), 0, "{}", text(&first));
    assert_documents(&w, &before);
    assert_comments(&w, &own, &deleted);
    let rows = w.rows("r1.csv");
    let by_status = statuses(&rows);
    assert_eq!(
        (by_status["created"], by_status["present"]),
        (17, 2),
        "{rows:?}"
    );
    let renamed = rows
        .iter()
        .find(|r| r["source"].ends_with(".txt") && r["error"].starts_with("uploaded as"));
    assert!(
        renamed.is_some_and(|r| r["status"] == "created"),
        "{rows:?}"
    );
    let comment = rows.iter().find(|r| r["kind"] == "comment").unwrap();
    assert!(
        comment["source"].starts_with("TIC001000/comments.jsonl:"),
        "{comment:?}"
    );

    let sent = creates(&w.b);
    let second = w.restore_into_b("r2.csv", &[]).await;
    assert_eq!(code(&second), 0, "{}", text(&second));
    assert_eq!(creates(&w.b), sent, "a second restore sends no create");
    assert_eq!(
        statuses(&w.rows("r2.csv")),
        HashMap::from([("present".to_string(), 19)])
    );
    let rerun = w.restore_into_b("r1.csv", &["--quiet"]).await;
    assert_eq!(code(&rerun), 0, "{}", text(&rerun));
    assert!(
        text(&rerun).contains("17 skipped as already done, 2 already on the target"),
        "present rows are looked for again: {}",
        text(&rerun)
    );
    assert_eq!(creates(&w.b), sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_of_a_restore_removes_the_documents_it_uploaded_and_nothing_else() {
    let w = World::new(TICKETS).await;
    let before = all_documents(&w.b);
    let restored = w.restore_into_b("r.csv", &["--no-comments"]).await;
    assert_eq!(code(&restored), 0, "{}", text(&restored));
    assert_ne!(all_documents(&w.b), before);
    let mut args = vec!["undo", "r.csv", "--results", "undo.csv"];
    args.extend_from_slice(&FAST);
    let undo = binary(w.a.dir.path(), &w.b.base_url(), &args)
        .output()
        .await
        .unwrap();
    assert_eq!(code(&undo), 0, "{}", text(&undo));
    assert!(
        text(&undo).contains("2 row(s) left alone: the restore found them on the target already"),
        "{}",
        text(&undo)
    );
    assert_eq!(
        all_documents(&w.b),
        before,
        "B holds exactly what it held before"
    );
}
