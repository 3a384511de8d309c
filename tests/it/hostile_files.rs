//! The tool's own files edited or damaged, and a full disk (issue 14, TESTING.md).

use crate::env::{code, count_requests, read_results, text, TestEnv, KEY};
use crate::resume::{assert_exactly_once, job};

fn args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "run",
        "job.csv",
        "--results",
        "r.csv",
        "--quiet",
        "--rate-per-minute",
        "0",
    ];
    v.extend_from_slice(extra);
    v
}

fn creates(env: &TestEnv) -> usize {
    count_requests(&env.sandbox, "POST", "/comments")
        + count_requests(&env.sandbox, "POST", "/documents")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_results_file_with_a_reordered_header_is_refused_and_nothing_is_sent() {
    let env = TestEnv::new().await;
    job(&env, 4, 1);
    assert_eq!(code(&env.run(&args(&[])).await), 0);
    let original = std::fs::read_to_string(env.path("r.csv")).unwrap();
    let mut rdr = csv::Reader::from_reader(original.as_bytes());
    let mut wtr = csv::Writer::from_writer(Vec::new());
    let swap = |r: &csv::StringRecord| {
        let mut v: Vec<&str> = r.iter().collect();
        v.swap(0, 1);
        v.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    wtr.write_record(swap(rdr.headers().unwrap())).unwrap();
    for r in rdr.records() {
        wtr.write_record(swap(&r.unwrap())).unwrap();
    }
    std::fs::write(env.path("r.csv"), wtr.into_inner().unwrap()).unwrap();
    let before = creates(&env);
    let out = env.run(&args(&[])).await;
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        text(&out)
            .contains("r.csv is not a results file of alga-batch: expected columns op_key,source,"),
        "{}",
        text(&out)
    );
    assert_eq!(creates(&env), before, "nothing sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicated_row_counts_once_and_nothing_is_sent_again() {
    let env = TestEnv::new().await;
    job(&env, 4, 1);
    assert_eq!(code(&env.run(&args(&[])).await), 0);
    let mut results = std::fs::read_to_string(env.path("r.csv")).unwrap();
    let second = results.lines().nth(2).unwrap().to_string();
    results.push_str(&format!("{second}\n"));
    std::fs::write(env.path("r.csv"), results).unwrap();
    let before = creates(&env);
    let out = env
        .run(&["run", "job.csv", "--results", "r.csv", "--json"])
        .await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let json = crate::unattended::summary_json(&out);
    assert_eq!(
        (json["total"].as_u64(), json["counts"]["skipped"].as_u64()),
        (Some(5), Some(5))
    );
    assert_eq!(creates(&env), before, "nothing sent twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_last_line_is_dropped_and_its_operation_reconciled_not_resent() {
    let env = TestEnv::new().await;
    job(&env, 5, 0);
    assert_eq!(code(&env.run(&args(&[])).await), 0);
    // What a crash mid-write leaves: the last op's intent (`sending`), then half its outcome.
    let results = std::fs::read_to_string(env.path("r.csv")).unwrap();
    let last = results.lines().last().unwrap().to_string();
    let sending = last.replacen(",created,", ",sending,", 1);
    let torn = &last[..last.len() / 2];
    let head: Vec<&str> = results.lines().take(results.lines().count() - 1).collect();
    std::fs::write(
        env.path("r.csv"),
        format!("{}\n{sending}\n{torn}", head.join("\n")),
    )
    .unwrap();
    let before = creates(&env);
    let out = env.run(&args(&[])).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(
        creates(&env),
        before,
        "the op was looked up, not sent again"
    );
    let (_, rows) = read_results(&env.path("r.csv"));
    assert_eq!(rows.iter().filter(|r| r["status"] == "existing").count(), 1);
    assert_exactly_once(&env, "r.csv", 5);
}

/// The binary with writes to any file capped at `bytes` (RLIMIT_FSIZE, with SIGXFSZ ignored
/// so a write past it fails with EFBIG, as a full disk fails one with ENOSPC).
fn capped(env: &TestEnv, bytes: u64, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            r#"trap "" XFSZ; exec prlimit --fsize={bytes} -- "$@""#
        ))
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_alga-batch"))
        .args(args)
        .current_dir(env.dir.path())
        .env("ALGA_BASE_URL", env.sandbox.base_url())
        .env("ALGA_API_KEY", KEY)
        .env_remove("RUST_LOG")
        .kill_on_drop(true);
    cmd
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_while_writing_results_stops_with_exit_3_and_loses_nothing() {
    let env = TestEnv::new().await;
    job(&env, 30, 0);
    let out = capped(&env, 2500, &args(&["--concurrency", "1"]))
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), 3, "{}", text(&out));
    let msg = text(&out);
    assert!(
        msg.contains("cannot write") && msg.contains("results file") && msg.contains("r.csv"),
        "{msg}"
    );
    let posted = count_requests(&env.sandbox, "POST", "/comments");
    assert!(posted < 30, "the run stopped early: {posted}");
    let journal = std::fs::read_to_string(env.path("r.csv")).unwrap();
    let intents = journal.lines().filter(|l| l.contains(",sending,")).count();
    assert!(
        posted <= intents,
        "a create was sent without its journal row: {posted} > {intents}"
    );
    let rerun = env.run(&args(&[])).await;
    assert_eq!(code(&rerun), 0, "{}", text(&rerun));
    assert_exactly_once(&env, "r.csv", 30);
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_while_downloading_fails_the_document_and_the_next_run_fetches_it() {
    let env = TestEnv::new().await;
    env.write("files/big.bin", vec![7u8; 300_000]);
    env.write("job.csv", "ticket,attachments\nTIC001003,files/big.bin\n");
    assert_eq!(code(&env.run(&args(&[])).await), 0);
    let out = capped(&env, 200_000, &["backup", "--out", "b", "--quiet"])
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("1 failed"), "{}", text(&out));
    let stray: Vec<_> = walk(&env.path("b"))
        .into_iter()
        .filter(|p| {
            p.file_name().unwrap().to_string_lossy().contains("big.bin")
                || p.extension().is_some_and(|e| e == "part")
        })
        .collect();
    assert!(stray.is_empty(), "no partial file is left: {stray:?}");
    let again = env.run(&["backup", "--out", "b", "--quiet"]).await;
    assert_eq!(code(&again), 0, "{}", text(&again));
    let got: Vec<_> = walk(&env.path("b"))
        .into_iter()
        .filter(|p| p.ends_with("big.bin"))
        .collect();
    assert_eq!(got.len(), 1);
    assert_eq!(std::fs::read(&got[0]).unwrap(), vec![7u8; 300_000]);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
