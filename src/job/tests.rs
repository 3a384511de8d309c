//! End-to-end tests of `load_and_validate`: the shipped example jobs, TOML jobs (inline and
//! sources), and locations of problems across files.

use std::path::{Path, PathBuf};

use super::*;

fn repo_job(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("jobs")
        .join(name)
}

fn load(path: &Path) -> (Option<Job>, Vec<Problem>) {
    load_and_validate(path, &ValidateOptions::default())
}

fn counts(job: &Job) -> (usize, usize) {
    let comments = job
        .items
        .iter()
        .filter(|i| matches!(i.action, Action::Comment(_)))
        .count();
    (comments, job.items.len() - comments)
}

fn comment(item: &JobItem) -> &CommentSpec {
    match &item.action {
        Action::Comment(c) => c,
        Action::Upload(u) => panic!("expected a comment, got an upload of {}", u.name),
    }
}

#[test]
fn shipped_demo_job_is_valid() {
    let (job, problems) = load(&repo_job("demo.toml"));
    assert!(problems.is_empty(), "{}", describe(&problems));
    let job = job.unwrap();
    assert_eq!(job.name, "demo-migration");
    assert_eq!(counts(&job), (54, 7));
    assert_eq!(job.settings.concurrency, Some(4));
    assert_eq!(job.settings.notify, Some(false));
    let first = &job.items[0];
    assert_eq!(first.source, "comments.csv:2");
    assert_eq!(first.ticket, TicketRef::Number("TIC001000".into()));
    let c = comment(first);
    assert!(c
        .text
        .starts_with("Priya Raman wrote on 2024-03-04 08:05:\n\nHi,\n"));
    assert!(c.text.contains("\"Peer not responding\""));
    let internal = job
        .items
        .iter()
        .filter(|i| matches!(&i.action, Action::Comment(c) if c.is_internal));
    assert_eq!(internal.count(), 15);
    let names: Vec<&str> = job
        .items
        .iter()
        .filter_map(|i| match &i.action {
            Action::Upload(u) => Some(u.name.as_str()),
            Action::Comment(_) => None,
        })
        .collect();
    assert!(names.contains(&"résumé – ünïcode.txt"));
    let tickets: std::collections::BTreeSet<String> =
        job.items.iter().map(|i| i.ticket.to_string()).collect();
    assert_eq!(tickets.len(), 10);
    assert!(tickets
        .iter()
        .all(|t| ("TIC001000"..="TIC001009").contains(&t.as_str())));
}

#[test]
fn shipped_simple_csv_is_valid() {
    let (job, problems) = load(&repo_job("simple.csv"));
    assert!(problems.is_empty(), "{}", describe(&problems));
    let job = job.unwrap();
    assert_eq!(job.name, "simple");
    assert_eq!(counts(&job), (3, 3));
    let sources: Vec<&str> = job.items.iter().map(|i| i.source.as_str()).collect();
    assert_eq!(sources[0], "simple.csv:14");
    assert_eq!(sources[5], "simple.csv:17");
    assert!(comment(&job.items[5]).is_resolution);
}

#[test]
fn shipped_inline_toml_is_valid() {
    let (job, problems) = load(&repo_job("inline.toml"));
    assert!(problems.is_empty(), "{}", describe(&problems));
    let job = job.unwrap();
    assert_eq!(counts(&job), (4, 3));
    let sources: Vec<&str> = job.items.iter().map(|i| i.source.as_str()).collect();
    assert_eq!(
        sources,
        [
            "inline.toml:tickets[0].comments[0]",
            "inline.toml:tickets[0].comments[1]",
            "inline.toml:tickets[0].comments[2]",
            "inline.toml:tickets[0].attachments[0]",
            "inline.toml:tickets[0].attachments[1]",
            "inline.toml:tickets[1].comments[0]",
            "inline.toml:tickets[1].attachments[0]",
        ]
    );
    assert!(comment(&job.items[1]).is_internal);
    assert!(comment(&job.items[1]).text.starts_with("Internal:"));
}
