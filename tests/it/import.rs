//! Import jobs against the sandbox: order, uploads, dry run, resolution, exit codes, the key.

use crate::env::{code, count_requests, read_results, text, TestEnv, KEY};
use alga_batch::journal::COLUMNS;
use sha2::{Digest, Sha256};

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_keep_job_order_per_ticket_and_results_hold_every_id() {
    let env = TestEnv::new().await;
    let mut csv = String::from("Comment_Text,TICKET\n");
    for i in 0..8 {
        for t in ["TIC001001", "TIC001002", "TIC001003"] {
            csv.push_str(&format!("\"{t} says {i}, \"\"quoted\"\"\",{t}\n"));
        }
    }
    env.write("job.csv", &csv);
    let out = env
        .run(&crate::env::run_job(&["--concurrency", "8", "--quiet"]))
        .await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let (header, rows) = read_results(&env.path("r.csv"));
    assert_eq!(header, COLUMNS);
    assert_eq!(rows.len(), 24);
    for t in ["TIC001001", "TIC001002", "TIC001003"] {
        let id = env.ticket_id(t);
        let ours: Vec<serde_json::Value> = env
            .sandbox
            .comments(id)
            .into_iter()
            .filter(|c| c["metadata"]["alga_batch_op"].is_string())
            .collect();
        let texts: Vec<String> = ours
            .iter()
            .map(|c| c["comment_text"].as_str().unwrap().to_string())
            .collect();
        let want: Vec<String> = (0..8)
            .map(|i| format!("{t} says {i}, \"quoted\""))
            .collect();
        assert_eq!(texts, want, "comments of {t} out of job order");
        for c in &ours {
            assert_eq!(c["is_internal"], false);
            let cid = c["comment_id"].as_str().unwrap();
            let row = rows
                .iter()
                .find(|r| r["comment_id"] == cid)
                .expect("row for comment");
            assert_eq!(row["status"], "created");
            assert_eq!(row["kind"], "comment");
            assert_eq!(row["ticket"], t);
            assert_eq!(row["ticket_id"], id.to_string());
            assert_eq!(row["http_status"], "201");
            assert!(row["source"].starts_with("job.csv:"), "{row:?}");
            assert_eq!(
                row["op_key"].as_str(),
                c["metadata"]["alga_batch_op"].as_str().unwrap()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_arrive_streamed_with_name_bytes_and_sha256() {
    let env = TestEnv::new().await;
    let big: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    env.write("files/résumé – ünïcode.txt", "unicode name test\n");
    env.write("files/blob.bin", &big);
    env.write("files/empty.log", "");
    env.write(
        "job.csv",
        "ticket,attachments\nTIC001004,files/résumé – ünïcode.txt;files/blob.bin;files/empty.log\n",
    );
    let out = env
        .run(&["run", "job.csv", "--results", "r.csv", "--quiet"])
        .await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let (_, rows) = read_results(&env.path("r.csv"));
    let docs = env.sandbox.documents(env.ticket_id("TIC001004"));
    for (name, bytes, mime) in [
        (
            "résumé – ünïcode.txt",
            b"unicode name test\n".to_vec(),
            "text/plain",
        ),
        ("blob.bin", big.clone(), "application/octet-stream"),
        ("empty.log", Vec::new(), "text/x-log"),
    ] {
        let doc = docs
            .iter()
            .find(|d| d["document_name"] == name)
            .unwrap_or_else(|| panic!("{name} not on the server: {docs:?}"));
        assert_eq!(doc["file_size"], bytes.len().to_string());
        let id: uuid::Uuid = doc["document_id"].as_str().unwrap().parse().unwrap();
        assert_eq!(env.sandbox.document_bytes(id).unwrap(), bytes, "{name}");
        let row = rows
            .iter()
            .find(|r| r["document_id"] == id.to_string())
            .unwrap();
        assert_eq!(row["sha256"], sha(&bytes));
        assert_eq!(row["bytes"], bytes.len().to_string());
        assert_eq!(row["kind"], "document");
        if name != "empty.log" {
            assert_eq!(doc["mime_type"], mime, "{name}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_resolves_and_plans_but_creates_nothing() {
    let env = TestEnv::new().await;
    env.write("a.txt", "a");
    env.write(
        "job.csv",
        "ticket,comment_text,attachments\nTIC001000,hello,a.txt\nTIC001001,again,\n",
    );
    let out = env
        .run(&["run", "job.csv", "--results", "plan.csv", "--dry-run"])
        .await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("3 requests"), "{}", text(&out));
    let posts = env
        .sandbox
        .request_log()
        .iter()
        .filter(|r| r.method != "GET")
        .count();
    assert_eq!(posts, 0, "a dry run must not create anything");
    let (_, rows) = read_results(&env.path("plan.csv"));
    assert_eq!(rows.len(), 3);
    assert!(rows
        .iter()
        .all(|r| r["status"] == "planned" && !r["ticket_id"].is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_numbers_match_exactly_and_unknown_ones_fail_their_row() {
    let env = TestEnv::new().await;
    let near = env.sandbox.add_ticket("TIC0010001", "near miss", false);
    env.write(
        "job.csv",
        "ticket,comment_text\ntic001000,for the real one\nTIC999999,nobody\nTIC0010001,for the near miss\n",
    );
    // By default an unknown ticket stops the run before the first write.
    let out = env
        .run(&["run", "job.csv", "--results", "r.csv", "--quiet"])
        .await;
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        text(&out).contains("job.csv:3: error: no ticket numbered TIC999999"),
        "{}",
        text(&out)
    );
    assert_eq!(count_requests(&env.sandbox, "POST", ""), 0, "nothing sent");
    let out = env
        .run(&[
            "run",
            "job.csv",
            "--results",
            "r.csv",
            "--quiet",
            "--skip-unresolved",
        ])
        .await;
    assert_eq!(code(&out), 1, "{}", text(&out));
    let real = env.ticket_id("TIC001000");
    let on = |id| {
        env.sandbox
            .comments(id)
            .iter()
            .filter_map(|c| c["comment_text"].as_str().map(str::to_string))
            .collect::<Vec<_>>()
    };
    assert!(on(real).contains(&"for the real one".to_string()));
    assert!(!on(real).contains(&"for the near miss".to_string()));
    assert_eq!(on(near), vec!["for the near miss".to_string()]);
    let (_, rows) = read_results(&env.path("r.csv"));
    let failed = rows.iter().find(|r| r["ticket"] == "TIC999999").unwrap();
    assert_eq!(failed["status"], "failed");
    assert!(failed["error"].contains("TIC999999"), "{failed:?}");
    assert_eq!(failed["source"], "job.csv:3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_job_exits_2_and_sends_nothing() {
    let env = TestEnv::new().await;
    env.write(
        "job.csv",
        "ticket,comment_text,attachments,is_internal\nTIC001000,hi,missing.png,maybe\n",
    );
    let out = env.run(&["run", "job.csv"]).await;
    assert_eq!(code(&out), 2, "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("job.csv:2") && t.contains("missing.png"), "{t}");
    assert!(
        env.sandbox.request_log().iter().all(|r| r.method == "GET"),
        "nothing may be sent (reads resolve the tickets for the report)"
    );
    let v = env.run(&["validate", "job.csv"]).await;
    assert_eq!(code(&v), 2, "{}", text(&v));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_key_stops_the_run_with_exit_3() {
    let env = TestEnv::new().await;
    let id = env.ticket_id("TIC001000");
    let mut csv = String::from("ticket,comment_text\n");
    for i in 0..40 {
        csv.push_str(&format!("{id},comment {i}\n"));
    }
    env.write("job.csv", &csv);
    let out = env
        .command(&["run", "job.csv", "--results", "r.csv", "--quiet"])
        .env("ALGA_API_KEY", "wrong-key")
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(text(&out).contains("API key"), "{}", text(&out));
    let posts = count_requests(&env.sandbox, "POST", "/comments");
    assert!(posts <= 4, "stopped at once, not after {posts} requests");
    let (_, rows) = read_results(&env.path("r.csv"));
    assert_eq!(rows.len(), 40);
    assert!(rows
        .iter()
        .all(|r| r["status"] == "failed" || r["status"] == "cancelled"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_key_never_appears_in_any_output() {
    let env = TestEnv::new().await;
    env.write(
        "job.csv",
        "ticket,comment_text\nTIC001000,hello\nTIC404404,missing ticket\n",
    );
    let out = env
        .command(&["run", "job.csv", "--results", "r.csv", "--skip-unresolved"])
        .env("RUST_LOG", "trace")
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(!text(&out).contains(KEY), "key leaked to the output");
    let results = std::fs::read_to_string(env.path("r.csv")).unwrap();
    assert!(!results.contains(KEY), "key leaked to the results");
    let bad = env
        .command(&["run", "job.csv", "--base-url", "http://psa.example.com"])
        .output()
        .await
        .unwrap();
    assert_eq!(
        code(&bad),
        2,
        "plain http to a remote host is refused: {}",
        text(&bad)
    );
    assert!(!text(&bad).contains(KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_exits_3() {
    let env = TestEnv::new().await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    env.write("job.csv", "ticket,comment_text\nTIC001000,hello\n");
    let url = format!("http://127.0.0.1:{port}");
    let out = env
        .run(&["run", "job.csv", "--base-url", &url, "--max-retries", "1"])
        .await;
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(text(&out).contains("unreachable"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_503s_are_retried_and_each_operation_lands_once() {
    let mut cfg = crate::env::config();
    cfg.fail_rate = 0.3;
    cfg.seed = 3;
    let env = TestEnv::with(cfg).await;
    let mut csv = String::from("ticket,comment_text,attachments\n");
    for i in 0..20 {
        csv.push_str(&format!("TIC00100{},retry me {i},\n", i % 4));
    }
    for i in 0..4 {
        env.write(&format!("f{i}.txt"), format!("file {i}"));
        csv.push_str(&format!("TIC00100{i},,f{i}.txt\n"));
    }
    env.write("job.csv", &csv);
    let out = env
        .run(&crate::env::run_job(&[
            "--rate-per-minute",
            "0",
            "--max-retries",
            "8",
        ]))
        .await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        env.sandbox.stats().faults_failed > 0,
        "no fault was injected"
    );
    assert!(!text(&out).contains(" 0 retries"), "{}", text(&out));
    for i in 0..20 {
        let want = format!("retry me {i}");
        let n: usize = env
            .sandbox
            .tickets()
            .iter()
            .map(|t| {
                env.sandbox
                    .comments(t.ticket_id)
                    .iter()
                    .filter(|c| c["comment_text"] == want.as_str())
                    .count()
            })
            .sum();
        assert_eq!(n, 1, "{want} posted {n} times");
    }
    let (_, rows) = read_results(&env.path("r.csv"));
    assert!(
        rows.iter()
            .any(|r| r["attempts"].parse::<u32>().unwrap() > 1),
        "no row shows a retry"
    );
}

/// A 429 pauses every worker until its delay has passed (one shared gate), not only the one
/// that received it: no limited request may reach the server inside any 429's pause window but
/// those already on their way when the 429 was answered. The key's bucket is emptied first, so a
/// 429 comes whatever the timing. Each upload goes to its own ticket, so the request path names
/// the operation, and the rule is checked without any timing slack:
/// - the throttled operation itself is not sent again inside its pause;
/// - any other operation arrives at most once inside it (a request on its way is answered 429
///   and its worker then waits for the same gate);
/// - at most `concurrency - 1` requests arrive inside it (one on its way per other worker).
///   Only here arrivals stamped `answered + 1` or earlier are left out: the sandbox stamps whole
///   milliseconds, so those may have reached it before the 429 was answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_pauses_every_worker_until_retry_after() {
    const CONCURRENCY: usize = 4;
    let mut cfg = crate::env::config();
    cfg.burst = 2;
    cfg.refill_per_minute = 30;
    let env = TestEnv::with(cfg).await;
    let tickets: Vec<uuid::Uuid> = (0..6)
        .map(|i| env.ticket_id(&format!("TIC00100{}", i + 4)))
        .collect();
    let mut csv = String::from("ticket,attachments\n");
    for (i, ticket) in tickets.iter().enumerate() {
        env.write(&format!("p{i}.txt"), format!("paused {i}"));
        csv.push_str(&format!("{ticket},p{i}.txt\n"));
    }
    env.write("job.csv", &csv);
    // Empty the key's bucket first, so that the run meets a 429 whatever its timing.
    let http = reqwest::Client::new();
    for t in &tickets[..2] {
        let listing = http
            .get(format!(
                "{}/api/v1/tickets/{t}/documents",
                env.sandbox.base_url()
            ))
            .header("x-api-key", KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(listing.status(), 200);
    }
    let drained = env.sandbox.request_log().len();
    let concurrency = CONCURRENCY.to_string();
    let out = env
        .run(&crate::env::run_job(&[
            "--rate-per-minute",
            "0",
            "--concurrency",
            &concurrency,
            "--quiet",
        ]))
        .await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let log = env.sandbox.request_log();
    let uploads: Vec<_> = log[drained..]
        .iter()
        .filter(|r| r.path.ends_with("/documents"))
        .collect();
    assert!(
        uploads.iter().any(|r| r.status == 429),
        "the server never throttled: the test proves nothing"
    );
    assert!(!text(&out).contains(" 0 429s received"), "{}", text(&out));
    for (i, t) in uploads.iter().enumerate() {
        let Some(wait) = t.retry_after_ms else {
            continue;
        };
        let answered = t.at_ms + t.elapsed_ms;
        let pause = answered..answered + wait;
        let inside: Vec<_> = uploads
            .iter()
            .enumerate()
            .filter(|(j, r)| *j != i && pause.contains(&r.at_ms))
            .map(|(_, r)| *r)
            .collect();
        let again: Vec<_> = inside.iter().filter(|r| r.path == t.path).collect();
        assert!(
            again.is_empty(),
            "{t:?} was sent again inside its pause {pause:?}: {again:?}"
        );
        for r in &inside {
            let same = inside.iter().filter(|o| o.path == r.path).count();
            assert_eq!(
                same, 1,
                "sent twice inside the pause {pause:?} of {t:?}: {inside:?}"
            );
        }
        let after_answer = inside.iter().filter(|r| r.at_ms > answered + 1).count();
        assert!(
            after_answer < CONCURRENCY,
            "{after_answer} requests arrived inside the pause {pause:?} of {t:?}: {inside:?}"
        );
    }
    for ticket in &tickets {
        let ours = env
            .sandbox
            .documents(*ticket)
            .iter()
            .filter(|d| d["document_name"].as_str().unwrap().starts_with('p'))
            .count();
        assert_eq!(ours, 1, "ticket {ticket}");
    }
}
