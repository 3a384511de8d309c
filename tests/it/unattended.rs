//! Running unattended (issue 14): `--metrics-file` read back with a real Prometheus text
//! parser after a success, a failure and an interrupt; `--json` as the only thing on stdout;
//! `--log-format json` lines on stderr and in `--log-file`.

use crate::env::{code, config, text, TestEnv};
use std::collections::HashMap;
use std::process::Output;

/// A parsed metrics file: (metric name, labels) -> value, every line accounted for.
struct Metrics {
    samples: Vec<prometheus_parse::Sample>,
}

impl Metrics {
    fn read(path: &std::path::Path) -> Metrics {
        let text = std::fs::read_to_string(path).unwrap();
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).expect("valid exposition text");
        let sample_lines = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .count();
        assert_eq!(
            scrape.samples.len(),
            sample_lines,
            "every sample line parses:\n{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
        for s in &scrape.samples {
            assert!(
                matches!(s.value, prometheus_parse::Value::Gauge(_)),
                "{s:?}"
            );
        }
        Metrics {
            samples: scrape.samples,
        }
    }

    /// The value of `name` (without the prefix) whose labels include `labels`.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let full = format!("alga_batch_{name}");
        let found: Vec<f64> = self
            .samples
            .iter()
            .filter(|s| s.metric == full)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Gauge(v) => v,
                _ => f64::NAN,
            })
            .collect();
        assert_eq!(found.len(), 1, "{full} {labels:?}: {:?}", self.samples);
        found[0]
    }
}

/// The one JSON object on stdout (nothing else is there).
pub(crate) fn summary_json(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(stdout.lines().count(), 1, "stdout: {stdout:?}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(v.is_object());
    assert_eq!(v["exit_code"], code(out), "{}", text(out));
    v
}

fn run_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "run",
        "job.csv",
        "--results",
        "r.csv",
        "--rate-per-minute",
        "0",
        "--metrics-file",
        "metrics/alga.prom",
        "--json",
    ];
    v.extend_from_slice(extra);
    v
}

const RUN: [(&str, &str); 2] = [("command", "run"), ("job_name", "job")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_after_a_success_a_failure_and_an_interrupt_keep_the_last_success() {
    let mut cfg = config();
    cfg.latency_ms = Some((40, 60));
    let env = TestEnv::with(cfg).await;
    std::fs::create_dir(env.path("metrics")).unwrap();
    crate::resume::job(&env, 6, 1);
    let ok = env.run(&run_args(&[])).await;
    assert_eq!(code(&ok), 0, "{}", text(&ok));
    let m = Metrics::read(&env.path("metrics/alga.prom"));
    let success = m.get("last_success_timestamp_seconds", &RUN);
    assert_eq!(success, m.get("last_run_timestamp_seconds", &RUN));
    assert!(success > 1.7e9, "a Unix time: {success}");
    assert_eq!(m.get("exit_code", &RUN), 0.0);
    let created = [("status", "created"), RUN[0], RUN[1]];
    assert_eq!(m.get("operations", &created), 7.0);
    assert!(m.get("http_requests", &RUN) >= 7.0);
    assert_eq!(m.get("uploaded_bytes", &RUN), "document 0\n".len() as f64);
    let json = summary_json(&ok);
    assert_eq!(json["counts"]["created"], 7);
    assert_eq!(json["results"], "r.csv");
    assert_file_is_world_readable(&env.path("metrics/alga.prom"));
    assert_eq!(std::fs::read_dir(env.path("metrics")).unwrap().count(), 1);

    // A failure (exit 1): a row whose ticket does not exist.
    let mut csv = std::fs::read_to_string(env.path("job.csv")).unwrap();
    csv.push_str("TIC999999,no such ticket,\n");
    env.write("job.csv", &csv);
    let failed = env.run(&run_args(&["--skip-unresolved"])).await;
    assert_eq!(code(&failed), 1, "{}", text(&failed));
    let m = Metrics::read(&env.path("metrics/alga.prom"));
    assert_eq!(m.get("exit_code", &RUN), 1.0);
    assert_eq!(m.get("last_success_timestamp_seconds", &RUN), success);
    assert!(m.get("last_run_timestamp_seconds", &RUN) > success);
    let failed_ops = [("status", "failed"), RUN[0], RUN[1]];
    assert_eq!(m.get("operations", &failed_ops), 1.0);
    assert_eq!(summary_json(&failed)["counts"]["failed"], 1);

    // An interrupt (exit 130) in the middle of a longer job.
    for i in 0..40 {
        csv.push_str(&format!("TIC00100{},more {i},\n", i % 5));
    }
    env.write("job.csv", &csv);
    let child = env
        .command(&run_args(&["--skip-unresolved", "--concurrency", "1"]))
        .spawn()
        .unwrap();
    crate::env::wait_for_comment_posts(&env.sandbox, 10).await;
    let pid = child.id().unwrap().to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(code(&out), 130, "{}", text(&out));
    let m = Metrics::read(&env.path("metrics/alga.prom"));
    assert_eq!(m.get("exit_code", &RUN), 130.0);
    assert_eq!(m.get("interrupted", &RUN), 1.0);
    assert_eq!(m.get("last_success_timestamp_seconds", &RUN), success);
    let json = summary_json(&out);
    assert_eq!(json["interrupted"], true);
    assert!(json["counts"]["cancelled"].as_u64().unwrap() > 0, "{json}");
}

#[cfg(unix)]
fn assert_file_is_world_readable(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "node_exporter must be able to read it");
}

#[cfg(not(unix))]
fn assert_file_is_world_readable(_path: &std::path::Path) {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_never_started_still_writes_metrics_and_json() {
    let env = TestEnv::new().await;
    std::fs::create_dir(env.path("metrics")).unwrap();
    env.write("job.csv", "ticket,comment_text\nTIC001000,\"unclosed\n");
    let out = env.run(&run_args(&[])).await;
    assert_eq!(code(&out), 2, "{}", text(&out));
    let json = summary_json(&out);
    assert!(
        json["error"].as_str().unwrap().contains("nothing was sent"),
        "{json}"
    );
    let m = Metrics::read(&env.path("metrics/alga.prom"));
    assert_eq!(m.get("exit_code", &RUN), 2.0);
    assert_eq!(
        m.get("last_success_timestamp_seconds", &RUN),
        0.0,
        "never succeeded: 0, so an alert on its age fires"
    );
    let bad = env
        .run(&["run", "job.csv", "--metrics-file", "nowhere/m.prom"])
        .await;
    assert_eq!(code(&bad), 2);
    assert!(text(&bad).contains("--metrics-file nowhere/m.prom: its folder does not exist"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_summaries_of_undo_and_backup_and_backup_metrics_count_the_manifest() {
    let env = TestEnv::new().await;
    std::fs::create_dir(env.path("metrics")).unwrap();
    crate::resume::job(&env, 2, 3);
    let run = env.run(&run_args(&[])).await;
    assert_eq!(code(&run), 0, "{}", text(&run));
    let undo = env
        .run(&["undo", "r.csv", "--results", "u.csv", "--json", "--quiet"])
        .await;
    assert_eq!(code(&undo), 0, "{}", text(&undo));
    let json = summary_json(&undo);
    assert_eq!(
        (json["command"].as_str(), json["name"].as_str()),
        (Some("undo"), Some("r"))
    );
    assert_eq!(json["counts"]["deleted"], 3);
    assert_eq!(json["results"], "u.csv");
    assert_eq!(json["concurrency"]["auto"], true, "{json}");
    assert!(
        json["concurrency"]["reads"].as_u64().unwrap() >= 1,
        "{json}"
    );
    // Four quick requests teach no rate yet (it takes 8 answers over 2 s): null, present.
    assert!(json["learned_rate_per_s"].is_null(), "{json}");
    let backup = env
        .run(&[
            "backup",
            "--out",
            "b",
            "--json",
            "--quiet",
            "--metrics-file",
            "b.prom",
        ])
        .await;
    assert_eq!(code(&backup), 0, "{}", text(&backup));
    let json = summary_json(&backup);
    let manifest = std::fs::read_to_string(env.path("b/manifest.csv")).unwrap();
    let rows = manifest.lines().count() as u64 - 1;
    assert!(rows > 0, "the seeded sandbox has documents");
    assert_eq!(json["backup"]["manifest_documents"], rows);
    assert_eq!(json["counts"]["downloaded"], rows);
    assert_eq!(json["manifest"], "b/manifest.csv");
    let bytes = json["backup"]["manifest_bytes"].as_u64().unwrap();
    assert_eq!(json["downloaded_bytes"], bytes);
    let m = Metrics::read(&env.path("b.prom"));
    let labels = [("command", "backup"), ("job_name", "b")];
    assert_eq!(m.get("backup_manifest_documents", &labels), rows as f64);
    assert_eq!(m.get("backup_manifest_bytes", &labels), bytes as f64);
    assert_eq!(m.get("downloaded_bytes", &labels), bytes as f64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_lines_go_to_stderr_and_the_log_file() {
    let env = TestEnv::new().await;
    crate::resume::job(&env, 2, 0);
    let out = env
        .run(&[
            "run",
            "job.csv",
            "--results",
            "r.csv",
            "--log-format",
            "json",
            "--log-file",
            "run.log",
            "--quiet",
        ])
        .await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(out.stdout.is_empty(), "no --json: nothing on stdout");
    let finished = |line: &str| -> Option<serde_json::Value> {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        (v["message"] == "finished").then_some(v)
    };
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    let event = stderr.lines().find_map(finished).expect(&stderr);
    assert_eq!(
        (event["exit_code"].as_u64(), event["level"].as_str()),
        (Some(0), Some("INFO"))
    );
    let log = std::fs::read_to_string(env.path("run.log")).unwrap();
    for line in log.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect(line);
    }
    let logged = log.lines().find_map(finished).expect(&log);
    assert_eq!(logged["command"], "run");
    assert_eq!(logged["path"], "r.csv");

    // backup: text keeps its own lines, json gives JSON lines.
    let text_run = env
        .run(&["backup", "--out", "b", "--quiet", "--log-file", "b.log"])
        .await;
    assert_eq!(code(&text_run), 0, "{}", text(&text_run));
    let json_run = env
        .run(&[
            "backup",
            "--out",
            "b",
            "--quiet",
            "--log-file",
            "b.log",
            "--log-format",
            "json",
        ])
        .await;
    assert_eq!(code(&json_run), 0, "{}", text(&json_run));
    let log = std::fs::read_to_string(env.path("b.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert!(
        lines[0].contains(" backup: ") && lines[0].contains("downloaded"),
        "{log}"
    );
    let last: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(
        (last["command"].as_str(), last["exit_code"].as_u64()),
        (Some("backup"), Some(0))
    );
    let _: HashMap<String, serde_json::Value> = serde_json::from_value(last).unwrap();
}
