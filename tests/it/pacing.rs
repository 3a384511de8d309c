//! Adaptive pacing (issue 11): a budget learned from the server instead of trusted flags, 429s
//! that do not use up retries, the wait cap, concurrency found from latency, and every ticket
//! checked before the first write.

use crate::env::{code, config, count_requests, read_results, text, TestEnv};

/// `n` comments spread over `tickets` seeded tickets (`TIC001000`..).
fn comments_job(env: &TestEnv, n: usize, tickets: usize) {
    let mut csv = String::from("ticket,comment_text\n");
    for i in 0..n {
        csv.push_str(&format!("TIC{:06},comment {i}\n", 1000 + i % tickets));
    }
    env.write("job.csv", csv);
}

fn statuses(env: &TestEnv) -> Vec<String> {
    let (_, rows) = read_results(&env.path("r.csv"));
    rows.iter().map(|r| r["status"].clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wait_cap_ends_a_run_whose_server_never_lets_it_through() {
    let mut cfg = config();
    cfg.burst = 3;
    cfg.refill_per_minute = 0; // never refills: every 429 asks for 60 s
    cfg.limit_comments = true;
    let env = TestEnv::with(cfg).await;
    comments_job(&env, 10, 2);
    let args = [
        "run",
        "job.csv",
        "--results",
        "r.csv",
        "--max-wait",
        "5s",
        "--concurrency",
        "1",
    ];
    let out = env.run(&args).await;
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(text(&out).contains("--max-wait"), "{}", text(&out));
    let s = statuses(&env);
    // The bucket of 3 pays for the ticket lookup too: two comments get through.
    let created = s.iter().filter(|s| *s == "created").count();
    assert!(created >= 1, "{s:?}");
    assert_eq!(s.iter().filter(|s| *s == "failed").count(), 1, "{s:?}");
    assert!(
        s.iter()
            .all(|s| s == "created" || s == "failed" || s == "cancelled"),
        "{s:?}"
    );
    assert_eq!(
        count_requests(&env.sandbox, "POST", "/comments"),
        created + 1,
        "what got through, one 429, then the run stopped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_ambiguous_tickets_are_reported_with_the_validation_errors_and_nothing_is_sent()
{
    let env = TestEnv::new().await;
    env.sandbox.add_ticket("DUP-7", "one", false);
    env.sandbox.add_ticket("dup-7", "two", false);
    env.write(
        "job.csv",
        "ticket,comment_text,attachments\nTIC001000,fine,\nTIC999999,nobody,\nDUP-7,twice,\nTIC001001,,missing.png\n",
    );
    let out = env.run(&["run", "job.csv", "--results", "r.csv"]).await;
    assert_eq!(code(&out), 2, "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("job.csv:5") && t.contains("missing.png"), "{t}");
    assert!(
        t.contains("job.csv:3: error: no ticket numbered TIC999999"),
        "{t}"
    );
    assert!(
        t.contains("job.csv:4: error: ticket number DUP-7 is ambiguous"),
        "{t}"
    );
    assert!(
        env.sandbox.request_log().iter().all(|r| r.method == "GET"),
        "nothing but reads"
    );
    assert!(!env.path("r.csv").exists(), "nothing recorded");
}
