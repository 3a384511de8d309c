//! Undo against the sandbox: import then undo restores the documents, a second undo changes
//! nothing, --dry-run sends nothing, rows that were not created are never touched, comments
//! are redacted only when they are the key's own, a rejected key stops at once. Interrupted
//! and resumed undos are in `interrupt.rs`.

use crate::env::{code, config, count_requests, read_results, text, TestEnv, KEY};
use alga_batch::journal::{self, ResultRow, Status, COLUMNS};
use std::collections::BTreeSet;
use uuid::Uuid;

mod interrupt;

/// A second key of the sandbox: a different user.
const OTHER_KEY: &str = "other-key-9876543210";

const TICKETS: [&str; 2] = ["TIC001001", "TIC001002"];

/// Document ids of the tickets used here.
fn documents(env: &TestEnv) -> BTreeSet<String> {
    TICKETS
        .iter()
        .flat_map(|t| env.sandbox.documents(env.ticket_id(t)))
        .map(|d| d["document_id"].as_str().unwrap().to_string())
        .collect()
}

/// A job of two comments and three attachments over two tickets.
fn write_job(env: &TestEnv) {
    env.write("files/a.txt", "alpha\n");
    env.write("files/b.pdf", "%PDF-1.4 beta\n");
    env.write("files/c.csv", "x,y\n1,2\n");
    env.write(
        "job.csv",
        "ticket,comment_text,attachments\n\
         TIC001001,first migrated comment,files/a.txt;files/b.pdf\n\
         TIC001002,second migrated comment,files/c.csv\n",
    );
}

/// Import the job with `key`, writing `results`.
async fn import(env: &TestEnv, key: &str, results: &str) {
    let out = env
        .command(&["run", "job.csv", "--results", results, "--quiet"])
        .env("ALGA_API_KEY", key)
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
}

fn deletes(env: &TestEnv) -> usize {
    env.sandbox
        .request_log()
        .iter()
        .filter(|r| r.method == "DELETE")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_then_undo_leaves_documents_as_before_and_a_second_undo_changes_nothing() {
    let env = TestEnv::new().await;
    let keep = env.sandbox.add_document_raw(
        env.ticket_id("TIC001001"),
        "already-there.txt",
        "text/plain",
        b"not ours",
    );
    let before = documents(&env);
    write_job(&env);
    import(&env, KEY, "r.csv").await;
    assert_eq!(documents(&env).len(), before.len() + 3);

    let out = env.run(&["undo", "r.csv", "--results", "u.csv"]).await;
    let err = text(&out);
    assert_eq!(code(&out), 0, "{err}");
    assert_eq!(
        documents(&env),
        before,
        "documents differ from before the import"
    );
    assert!(before.contains(&keep.to_string()));
    assert!(
        err.contains("2 comments of this job cannot be deleted"),
        "{err}"
    );
    assert!(err.contains("3 deleted"), "{err}");
    let (header, rows) = read_results(&env.path("u.csv"));
    assert_eq!(header, COLUMNS);
    assert_eq!(rows.len(), 3);
    for r in &rows {
        assert_eq!(
            (r["kind"].as_str(), r["status"].as_str()),
            ("document", "deleted")
        );
        assert_eq!(r["http_status"], "200");
        assert!(!r["file"].is_empty() && !r["sha256"].is_empty(), "{r:?}");
    }
    assert_eq!(deletes(&env), 3);

    // Resumed on its own results: everything is skipped, no DELETE is sent.
    let out = env.run(&["undo", "r.csv", "--results", "u.csv"]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains("3 skipped as already done"),
        "{}",
        text(&out)
    );
    assert_eq!(deletes(&env), 3, "a resumed undo sent a DELETE");
    assert_eq!(read_results(&env.path("u.csv")).1, rows);

    // A fresh undo finds every document already gone.
    let out = env
        .run(&["undo", "r.csv", "--results", "u2.csv", "--quiet"])
        .await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let (_, again) = read_results(&env.path("u2.csv"));
    assert!(again
        .iter()
        .all(|r| r["status"] == "missing" && r["http_status"] == "404"));
    assert_eq!(documents(&env), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_sends_no_delete_and_plans_every_document() {
    let env = TestEnv::new().await;
    write_job(&env);
    import(&env, KEY, "r.csv").await;
    let after_import = documents(&env);
    let out = env
        .run(&["undo", "r.csv", "--dry-run", "--results", "p.csv"])
        .await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(deletes(&env), 0);
    assert_eq!(count_requests(&env.sandbox, "PUT", ""), 0);
    assert_eq!(documents(&env), after_import);
    let (_, rows) = read_results(&env.path("p.csv"));
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r["status"] == "planned"), "{rows:?}");
}

fn row(key: &str, ticket: Uuid, kind: &str, id: Uuid, status: Status) -> ResultRow {
    let (comment_id, document_id) = if kind == "comment" {
        (id.to_string(), String::new())
    } else {
        (String::new(), id.to_string())
    };
    ResultRow {
        op_key: key.into(),
        source: format!("hand.csv:{key}"),
        ticket: "TIC001003".into(),
        ticket_id: ticket.to_string(),
        kind: kind.into(),
        status,
        comment_id,
        document_id,
        file: String::new(),
        bytes: String::new(),
        sha256: String::new(),
        http_status: String::new(),
        attempts: 1,
        error: String::new(),
        finished_at: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_not_created_or_existing_are_never_touched() {
    let env = TestEnv::new().await;
    let t = env.ticket_id("TIC001003");
    let statuses = [
        Status::Created,
        Status::Existing,
        Status::Failed,
        Status::Planned,
        Status::Cancelled,
        Status::Sending,
    ];
    let mut rows = Vec::new();
    let mut ids = Vec::new();
    for (i, s) in statuses.iter().enumerate() {
        let id = env
            .sandbox
            .add_document_raw(t, &format!("d{i}.txt"), "text/plain", b"x");
        ids.push(id);
        rows.push(row(&format!("k{i}"), t, "document", id, *s));
    }
    journal::write_atomic(&env.path("hand.csv"), &rows).unwrap();
    let out = env.run(&["undo", "hand.csv", "--results", "u.csv"]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let left: BTreeSet<String> = env
        .sandbox
        .documents(t)
        .iter()
        .map(|d| d["document_id"].as_str().unwrap().to_string())
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let kept = left.contains(&id.to_string());
        assert_eq!(
            kept,
            i >= 2,
            "{:?} row: document kept = {kept}",
            statuses[i]
        );
    }
    assert_eq!(deletes(&env), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_not_a_results_csv_is_refused_with_exit_2() {
    let env = TestEnv::new().await;
    write_job(&env);
    let out = env.run(&["undo", "job.csv"]).await;
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("not a results file"), "{}", text(&out));
    assert!(env.sandbox.request_log().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_comments_are_redacted_and_other_users_comments_are_refused_one_by_one() {
    let mut cfg = config();
    cfg.api_keys.push(OTHER_KEY.to_string());
    let env = TestEnv::with(cfg).await;
    env.write(
        "job.csv",
        "ticket,comment_text\nTIC001001,mine one\nTIC001002,mine two\n",
    );
    import(&env, KEY, "mine.csv").await;
    env.write(
        "job.csv",
        "ticket,comment_text\nTIC001001,theirs one\nTIC001002,theirs two\n",
    );
    import(&env, OTHER_KEY, "theirs.csv").await;
    let mine = journal::read_rows(&env.path("mine.csv")).unwrap();
    let theirs = journal::read_rows(&env.path("theirs.csv")).unwrap();
    let theirs_ids: BTreeSet<String> = theirs.iter().map(|r| r.comment_id.clone()).collect();
    let both: Vec<ResultRow> = mine.into_iter().chain(theirs).collect();
    journal::write_atomic(&env.path("both.csv"), &both).unwrap();

    let redact = [
        "undo",
        "both.csv",
        "--results",
        "u.csv",
        "--redact-comments",
        "[removed]",
    ];
    let out = env.run(&redact).await;
    let err = text(&out);
    assert_eq!(code(&out), 1, "{err}");
    assert_eq!(
        err.matches("You can only edit your own comments").count(),
        2,
        "{err}"
    );
    let (_, rows) = read_results(&env.path("u.csv"));
    assert_eq!(rows.len(), 4);
    for r in &rows {
        assert_eq!(r["kind"], "comment");
        if theirs_ids.contains(&r["comment_id"]) {
            assert_eq!(
                (r["status"].as_str(), r["http_status"].as_str()),
                ("failed", "400")
            );
            assert!(
                r["error"].contains("You can only edit your own comments"),
                "{r:?}"
            );
        } else {
            assert_eq!(r["status"], "redacted", "{r:?}");
        }
    }
    let texts: Vec<String> = TICKETS
        .iter()
        .flat_map(|t| env.sandbox.comments(env.ticket_id(t)))
        .filter(|c| c["metadata"]["alga_batch_op"].is_string())
        .map(|c| c["comment_text"].as_str().unwrap().to_string())
        .collect();
    let mut sorted = texts.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["[removed]", "[removed]", "theirs one", "theirs two"]
    );

    // Resumed: the redacted ones are skipped, the refused ones are tried (and refused) again.
    let out = env.run(&redact).await;
    let err = text(&out);
    assert_eq!(code(&out), 1, "{err}");
    assert_eq!(count_requests(&env.sandbox, "PUT", ""), 6);
    assert!(
        err.contains("2 comments of this job cannot be deleted"),
        "{err}"
    );
    assert!(err.contains("2 skipped as already done"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_key_stops_at_once_with_exit_3() {
    let env = TestEnv::new().await;
    write_job(&env);
    import(&env, KEY, "r.csv").await;
    let out = env
        .command(&["undo", "r.csv", "--results", "u.csv", "--concurrency", "1"])
        .env("ALGA_API_KEY", "wrong-key")
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert_eq!(deletes(&env), 1, "kept sending after a 401");
    assert!(text(&out).contains("results: u.csv"), "{}", text(&out));
    assert!(!text(&out).contains("wrong-key"));
    let (_, rows) = read_results(&env.path("u.csv"));
    let statuses: Vec<&str> = rows.iter().map(|r| r["status"].as_str()).collect();
    assert_eq!(statuses, ["failed", "cancelled", "cancelled"]);
}
