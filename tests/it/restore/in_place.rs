//! Disaster recovery in place: after three documents are deleted from A, a restore into A
//! uploads exactly those three and posts no comment (even after a dry run recorded everything
//! as present in its results file).

use super::{all_documents, creates, statuses, ticket_id, World, TICKETS};
use crate::env::{code, count_requests, text, KEY};
use alga_batch::api::{ApiKey, Client, ClientConfig};
use std::collections::HashMap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_in_place_uploads_exactly_the_deleted_documents_and_no_comment() {
    let w = World::new(TICKETS).await;
    let a = &w.a.sandbox;
    let before = all_documents(a);
    // A dry run first, into the results file the real run uses: it finds everything present,
    // and that must not keep the real run from looking again.
    let plan = w.restore_into_a("r.csv", &["--dry-run"]).await;
    assert_eq!(code(&plan), 0, "{}", text(&plan));
    assert!(
        text(&plan).contains("would restore: 0 documents to upload (0 B), 0 comments to post, 20 already on the target"),
        "{}",
        text(&plan)
    );
    let client = Client::new(ClientConfig::new(a.base_url(), ApiKey::new(KEY.into()))).unwrap();
    let mut gone = Vec::new();
    for (number, name) in [
        ("TIC001001", "report.bin"),
        ("TIC001002", "dup.txt"),
        ("TIC001005", "diagnostics-5.log"),
    ] {
        let t = ticket_id(a, number);
        let doc = a
            .documents(t)
            .into_iter()
            .find(|d| d["document_name"] == name)
            .unwrap();
        let id = doc["document_id"].as_str().unwrap().parse().unwrap();
        client.delete_document(t, id).await.unwrap();
        gone.push(id);
    }
    assert_ne!(all_documents(a), before);
    let (uploads, posts) = (
        count_requests(a, "POST", "/documents"),
        count_requests(a, "POST", "/comments"),
    );
    let out = w.restore_into_a("r.csv", &[]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(count_requests(a, "POST", "/documents"), uploads + 3);
    assert_eq!(
        count_requests(a, "POST", "/comments"),
        posts,
        "no comment is posted"
    );
    assert_eq!(
        all_documents(a),
        before,
        "the same names and bytes are back"
    );
    let rows = w.rows("r.csv");
    let by_status = statuses(&rows);
    assert_eq!(by_status["created"], 3, "{rows:?}");
    assert_eq!(by_status.len(), 2, "{by_status:?}");
    for r in rows.iter().filter(|r| r["status"] == "present") {
        let same_id = r["error"] == "on the target already: same document id"
            || r["error"] == "on the target already: same comment id";
        assert!(same_id, "found by id in place: {r:?}");
    }
    let created: HashMap<&str, &str> = rows
        .iter()
        .filter(|r| r["status"] == "created")
        .map(|r| (r["source"].as_str(), r["document_id"].as_str()))
        .collect();
    assert!(
        created.keys().any(|s| s.ends_with("report.bin")),
        "{created:?}"
    );
    assert!(gone
        .iter()
        .all(|g| !created.values().any(|c| *c == g.to_string())));
    let again = w.restore_into_a("r2.csv", &["--quiet"]).await;
    assert_eq!(code(&again), 0, "{}", text(&again));
    assert_eq!(creates(a), uploads + 3 + posts, "nothing more is sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_reports_as_json_like_the_other_commands() {
    let w = World::new(TICKETS).await;
    let out = w
        .restore_into_a("json.csv", &["--dry-run", "--json", "--quiet"])
        .await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let json = crate::unattended::summary_json(&out);
    assert_eq!(json["command"], "restore", "{json}");
    assert_eq!(json["name"], "backup", "{json}");
    assert!(json["counts"]["present"].as_u64().unwrap() > 0, "{json}");
}
