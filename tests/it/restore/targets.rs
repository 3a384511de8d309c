//! Where a restore sends tickets: unresolved targets stop it before anything is sent (exit 2)
//! unless `--skip-unresolved`; `--ticket-map` sends tickets to other numbers or UUIDs;
//! `--ticket`/`--tickets` restore only some.

use super::{comments, creates, documents, ticket_id, World, TICKETS};
use crate::env::{code, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unresolved_ticket_stops_the_restore_with_exit_2_unless_skipped() {
    let w = World::new(5).await;
    for (args, said) in [
        (
            &["--ticket", "TIC009999"][..],
            "nothing to restore for TIC009999",
        ),
        (
            &["--comment-template", "by {author}"][..],
            "{text} exactly once",
        ),
        (
            &["--no-comments", "--no-documents"][..],
            "leave nothing to restore",
        ),
    ] {
        let out = w.restore_into_b("r.csv", args).await;
        assert_eq!(code(&out), 2, "{}", text(&out));
        assert!(text(&out).contains(said), "{}", text(&out));
    }
    assert!(w.b.request_log().is_empty(), "usage errors need no server");
    let out = w.restore_into_b("r.csv", &[]).await;
    assert_eq!(code(&out), 2, "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(
            "TIC001005/diagnostics-5.log, TIC001005/notes.txt: error: no ticket numbered TIC001005"
        ),
        "{said}"
    );
    assert!(said.contains("no ticket numbered TIC001006"), "{said}");
    assert_eq!(creates(&w.b), 0, "nothing is sent");
    assert!(!w.a.path("r.csv").exists());

    let skip = w.restore_into_b("r.csv", &["--skip-unresolved"]).await;
    assert_eq!(code(&skip), 1, "{}", text(&skip));
    assert!(
        text(&skip).contains("warning: no ticket numbered TIC001005"),
        "{}",
        text(&skip)
    );
    let rows = w.rows("r.csv");
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| r["status"] == "failed")
        .map(|r| r["source"].as_str())
        .collect();
    assert_eq!(
        failed,
        [
            "TIC001005/diagnostics-5.log",
            "TIC001005/notes.txt",
            "TIC001006/comments.jsonl:1",
            "TIC001006/comments.jsonl:2"
        ]
    );
    assert!(rows
        .iter()
        .all(|r| r["status"] != "failed" || r["attempts"] == "0"));
    assert!(documents(&w.b, "TIC001001")
        .iter()
        .any(|(n, _)| n == "report.bin"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_map_and_a_ticket_subset_send_tickets_elsewhere() {
    let w = World::new(TICKETS).await;
    let a2 = w.a.ticket_id("TIC001002");
    let b7 = ticket_id(&w.b, "TIC001007");
    w.a.write(
        "map.csv",
        format!("source,target\nTIC001001,TIC001006\n{a2},{b7}\n"),
    );
    w.a.write(
        "only.txt",
        format!("# the second ticket, by its id\n{a2}\n"),
    );
    let (b1, b2) = (documents(&w.b, "TIC001001"), documents(&w.b, "TIC001002"));
    let args = [
        "--ticket-map",
        "map.csv",
        "--ticket",
        "tic001001",
        "--tickets",
        "only.txt",
    ];
    let out = w.restore_into_b("r.csv", &args).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(documents(&w.b, "TIC001006")
        .iter()
        .any(|(n, _)| n == "report.bin"));
    let seventh: Vec<String> = documents(&w.b, "TIC001007")
        .into_iter()
        .map(|d| d.0)
        .collect();
    assert_eq!(seventh, ["dup.txt", "dup.txt", "résumé (v2).txt"]);
    assert_eq!(
        (documents(&w.b, "TIC001001"), documents(&w.b, "TIC001002")),
        (b1, b2)
    );
    let moved: Vec<String> = comments(&w.b, "TIC001006")
        .iter()
        .filter_map(|c| c["comment_text"].as_str())
        .filter_map(|t| t.strip_prefix("Originally posted by Sandbox User on "))
        .map(|t| t.split_once("\n\n").unwrap().1.to_string())
        .collect();
    let texts = [
        "First, with \"quotes\"\nand a second line",
        "Internal note",
        "Resolved: replaced the toner.",
    ];
    assert_eq!(moved, texts, "TIC001001's comments, in order, on TIC001006");
    let rows = w.rows("r.csv");
    assert!(
        rows.iter()
            .all(|r| r["ticket"] == "TIC001006" || r["ticket"] == b7.to_string()),
        "{rows:?}"
    );
    assert!(rows
        .iter()
        .all(|r| r["source"].starts_with("TIC001001/") || r["source"].starts_with("TIC001002/")));

    let nowhere = uuid::Uuid::from_u128(77);
    w.a.write("bad.csv", format!("source,target\nTIC001001,{nowhere}\n"));
    let sent = creates(&w.b);
    let bad = w
        .restore_into_b(
            "r2.csv",
            &["--ticket-map", "bad.csv", "--ticket", "TIC001001"],
        )
        .await;
    assert_eq!(code(&bad), 2, "{}", text(&bad));
    assert!(
        text(&bad).contains(&format!("error: no ticket with id {nowhere} on the target")),
        "{}",
        text(&bad)
    );
    assert_eq!(creates(&w.b), sent);
}
