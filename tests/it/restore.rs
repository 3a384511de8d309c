//! `alga-batch restore` (issue 12): sandbox A is backed up with `--comments` by the real
//! binary, then restored into sandbox B (same ticket numbers, other ids: another seed) or back
//! into A. Every check reads what the servers hold and what they received.

use crate::env::{binary, code, config, count_requests, read_results, text, TestEnv};
use alga_batch::sandbox::{self, RateLimitMode, Sandbox, SandboxConfig};
use serde_json::Value;
use std::collections::HashMap;
use std::process::Output;

mod damaged;
mod in_place;
mod killed;
mod migrate;
mod targets;

/// Tickets of sandbox A.
pub(crate) const TICKETS: usize = 8;

/// A small unthrottled sandbox with `tickets` tickets, its ids drawn from `seed`.
pub(crate) fn cfg(seed: u64, tickets: usize) -> SandboxConfig {
    SandboxConfig {
        seed,
        tickets,
        rate_limit: RateLimitMode::Off,
        ..config()
    }
}

/// Sandbox A (with the test's folder and backup) and sandbox B.
pub(crate) struct World {
    pub(crate) a: TestEnv,
    pub(crate) b: Sandbox,
}

/// The comments added to A through an import, besides the seeded ones.
const JOB: &str = "ticket,comment_text,is_internal,is_resolution
TIC001001,\"First, with \"\"quotes\"\"
and a second line\",false,false
TIC001001,Internal note,true,false
TIC001001,Resolved: replaced the toner.,false,true
TIC001004,\"[{\"\"type\"\":\"\"paragraph\"\",\"\"content\"\":[{\"\"type\"\":\"\"text\"\",\"\"text\"\":\"\"Block text\"\"}]}]\",false,false
";

impl World {
    /// A with documents and comments added (a long comment, BlockNote, a quote in a name,
    /// twins), backed up into `backup/`; B with `b_tickets` tickets and (when it has
    /// TIC001005) a document of the same name and size as one of A's, but other content.
    pub(crate) async fn new(b_tickets: usize) -> World {
        let a = TestEnv::with(cfg(1, TICKETS)).await;
        let b = sandbox::start(cfg(2, b_tickets)).await.unwrap();
        let report: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        let docs: [(&str, &str, &[u8]); 6] = [
            ("TIC001001", "report.bin", &report),
            ("TIC001002", "résumé (v2).txt", b"accents\n"),
            ("TIC001002", "dup.txt", b"one\n"),
            ("TIC001002", "dup.txt", b"two\n"),
            ("TIC001004", "say \"hi\".txt", b"quoted name\n"),
            ("TIC001005", "notes.txt", b"from A\n"),
        ];
        for (number, name, bytes) in docs {
            a.sandbox
                .add_document_raw(a.ticket_id(number), name, "text/plain", bytes);
        }
        if b_tickets > 5 {
            let b5 = ticket_id(&b, "TIC001005");
            b.add_document_raw(b5, "notes.txt", "text/plain", b"from B\n");
        }
        let long = format!("TIC001002,{},false,false\n", "x".repeat(4990));
        a.write("job.csv", format!("{JOB}{long}"));
        let imported = a.run(&["run", "job.csv", "--results", "import.csv"]).await;
        assert_eq!(code(&imported), 0, "{}", text(&imported));
        let args = ["backup", "--out", "backup", "--comments"];
        let backed = a.run(&[&args[..], &FAST[..]].concat()).await;
        assert_eq!(code(&backed), 0, "{}", text(&backed));
        assert_ne!(
            ticket_id(&b, "TIC001001"),
            a.ticket_id("TIC001001"),
            "another seed gives other ids"
        );
        World { a, b }
    }

    /// `restore backup --results <results>` plus `extra`, against B.
    pub(crate) async fn restore_into_b(&self, results: &str, extra: &[&str]) -> Output {
        let mut args = vec!["restore", "backup", "--results", results];
        args.extend_from_slice(&FAST);
        args.extend_from_slice(extra);
        binary(self.a.dir.path(), &self.b.base_url(), &args)
            .output()
            .await
            .unwrap()
    }

    /// The same, against A itself (in place).
    pub(crate) async fn restore_into_a(&self, results: &str, extra: &[&str]) -> Output {
        let mut args = vec!["restore", "backup", "--results", results];
        args.extend_from_slice(&FAST);
        args.extend_from_slice(extra);
        self.a.run(&args).await
    }

    /// Rows of a results file in the test folder.
    pub(crate) fn rows(&self, results: &str) -> Vec<HashMap<String, String>> {
        read_results(&self.a.path(results)).1
    }
}

/// No client-side rate limit (the sandboxes are unthrottled).
pub(crate) const FAST: [&str; 2] = ["--rate-per-minute", "0"];

/// A ticket's id on `sb` by number.
pub(crate) fn ticket_id(sb: &Sandbox, number: &str) -> uuid::Uuid {
    sb.tickets()
        .into_iter()
        .find(|t| t.ticket_number == number)
        .unwrap_or_else(|| panic!("no ticket {number}"))
        .ticket_id
}

/// A ticket's documents as (name, bytes), sorted.
pub(crate) fn documents(sb: &Sandbox, number: &str) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = sb
        .documents(ticket_id(sb, number))
        .iter()
        .map(|d| {
            let id = d["document_id"].as_str().unwrap().parse().unwrap();
            let name = d["document_name"].as_str().unwrap().to_string();
            (name, sb.document_bytes(id).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// Every ticket's documents, by number.
pub(crate) fn all_documents(sb: &Sandbox) -> HashMap<String, Vec<(String, Vec<u8>)>> {
    sb.tickets()
        .into_iter()
        .map(|t| (t.ticket_number.clone(), documents(sb, &t.ticket_number)))
        .collect()
}

/// A ticket's comments as the API lists them, oldest first.
/// How many comments each ticket of `sb` holds, by ticket number.
pub(crate) fn comment_counts(sb: &Sandbox) -> std::collections::HashMap<String, usize> {
    sb.tickets()
        .iter()
        .map(|t| {
            (
                t.ticket_number.clone(),
                comments(sb, &t.ticket_number).len(),
            )
        })
        .collect()
}

pub(crate) fn comments(sb: &Sandbox, number: &str) -> Vec<Value> {
    sb.comments(ticket_id(sb, number))
}

/// Creates (comment posts and uploads) the sandbox answered.
pub(crate) fn creates(sb: &Sandbox) -> usize {
    count_requests(sb, "POST", "/comments") + count_requests(sb, "POST", "/documents")
}

/// The statuses of a results file, counted.
pub(crate) fn statuses(rows: &[HashMap<String, String>]) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for r in rows {
        *out.entry(r["status"].clone()).or_default() += 1;
    }
    out
}
