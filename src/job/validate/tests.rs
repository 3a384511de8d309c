//! Tests of `validate.rs`: comment length and splitting, attachments on disk, duplicates,
//! rows with nothing to do, and the counting sink.

use super::*;
use crate::job::raw::RowLoc;
use crate::job::Severity;
use std::path::PathBuf;

fn row(loc: &str, text: &str, files: &[PathBuf]) -> RawRow {
    RawRow {
        loc: RowLoc::Text(loc.into()),
        ticket: TicketRef::parse("TIC001000"),
        comment: Some(RawComment {
            source: loc.into(),
            loc: format!("{loc}: column comment_text"),
            text: text.into(),
            is_internal: false,
            is_resolution: false,
        }),
        attachments: files
            .iter()
            .map(|p| RawAttachment {
                source: loc.into(),
                loc: format!("{loc}: column attachments"),
                written: p.display().to_string(),
                path: p.clone(),
            })
            .collect(),
    }
}

fn run(rows: Vec<RawRow>, opts: &ValidateOptions) -> (Vec<JobItem>, Vec<crate::job::Problem>) {
    let mut v = Validator::new(opts, Vec::new());
    rows.into_iter().for_each(|r| v.row(r));
    let (items, p) = v.finish();
    (items, p.into_vec())
}

/// `n` rows over 100 tickets, every 7th also uploading `file`.
fn generated_rows(n: usize, file: &std::path::Path) -> impl Iterator<Item = RawRow> + '_ {
    (0..n).map(move |i| {
        let files = match i % 7 {
            0 => vec![file.to_path_buf()],
            _ => Vec::new(),
        };
        let mut r = row(&format!("big.csv:{}", i + 2), &format!("note {i}"), &files);
        r.ticket = TicketRef::parse(&format!("TIC{:06}", 1000 + i % 100));
        r
    })
}

#[test]
fn counting_a_many_row_job_keeps_no_items_only_a_digest_per_row() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.txt");
    std::fs::write(&file, "a").unwrap();
    let opts = ValidateOptions::default();
    let n = 100_000;
    let mut counting = Validator::new(&opts, ItemCount::default());
    generated_rows(n, &file).for_each(|r| counting.row(r));
    assert_eq!(
        counting.duplicates.len(),
        n,
        "one digest per row is all it holds"
    );
    let (count, problems) = counting.finish();
    assert_eq!(count, ItemCount(n + n.div_ceil(7)));
    assert!(problems.into_vec().is_empty());
    // The same rows kept for a run: the same items, in the same number.
    let mut keeping = Validator::new(&opts, Vec::new());
    generated_rows(n, &file).for_each(|r| keeping.row(r));
    let (items, _) = keeping.finish();
    assert_eq!(items.len(), count.0);
    assert_eq!(items[1].source, "big.csv:2");
    assert!(matches!(items[1].action, Action::Upload(_)));
}

#[test]
fn a_counting_sink_never_builds_an_item() {
    let mut count = ItemCount::default();
    for _ in 0..3 {
        count.item(|| unreachable!("a counting sink does not build items"));
    }
    assert_eq!(count, ItemCount(3));
}

#[test]
fn long_comment_is_an_error_or_split() {
    let long = "a ".repeat(3000);
    let (items, problems) = run(
        vec![row("j.csv:2", &long, &[])],
        &ValidateOptions::default(),
    );
    assert!(items.is_empty());
    assert_eq!(problems[0].location, "j.csv:2: column comment_text");
    assert!(problems[0].message.contains("5999 characters"));
    let opts = ValidateOptions {
        split_long_comments: true,
        ..ValidateOptions::default()
    };
    let (items, problems) = run(vec![row("j.csv:2", &long, &[])], &opts);
    assert!(problems.is_empty());
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|i| i.source == "j.csv:2"));
}

#[test]
fn exactly_5000_after_trim_is_fine() {
    let text = format!("  {}  \n", "x".repeat(5000));
    let (items, problems) = run(
        vec![row("j.csv:2", &text, &[])],
        &ValidateOptions::default(),
    );
    assert!(problems.is_empty());
    match &items[0].action {
        Action::Comment(c) => assert_eq!(c.text.len(), 5000),
        Action::Upload(_) => panic!("expected a comment"),
    }
}

#[test]
fn attachment_errors_name_their_location() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![0u8; 2048]).unwrap();
    let missing = dir.path().join("missing.txt");
    let opts = ValidateOptions {
        max_upload_bytes: 1024,
        ..ValidateOptions::default()
    };
    let files = [missing, dir.path().to_path_buf(), big];
    let (_, problems) = run(vec![row("j.csv:7", "hi", &files)], &opts);
    let msgs: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(problems.len(), 3, "{msgs:?}");
    assert!(msgs[0].starts_with("attachment not found"));
    assert!(msgs[1].starts_with("attachment is a directory"));
    assert!(msgs[2].contains("over the upload limit"));
    assert!(problems
        .iter()
        .all(|p| p.location == "j.csv:7: column attachments"));
    assert!(problems.iter().all(|p| p.severity == Severity::Error));
}

#[test]
fn unreadable_attachment_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("file.txt");
    std::fs::write(&f, "x").unwrap();
    // A path through a regular file cannot be read (ENOTDIR), even by root.
    let (_, problems) = run(
        vec![row("j.csv:3", "", &[f.join("inner.txt")])],
        &ValidateOptions::default(),
    );
    assert_eq!(problems.len(), 1);
    assert!(problems[0].message.starts_with("attachment unreadable"));
    assert_eq!(problems[0].location, "j.csv:3: column attachments");
}

#[cfg(unix)]
#[test]
fn fifo_is_not_a_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(status.unwrap().success());
    let (_, problems) = run(
        vec![row("j.csv:3", "", &[fifo])],
        &ValidateOptions::default(),
    );
    assert!(problems[0]
        .message
        .starts_with("attachment is not a regular file"));
}

#[cfg(target_os = "linux")]
#[test]
fn non_utf8_file_name_is_an_error() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join(std::ffi::OsStr::from_bytes(b"caf\xe9.txt"));
    std::fs::write(&f, "x").unwrap();
    let (items, problems) = run(vec![row("j.csv:4", "", &[f])], &ValidateOptions::default());
    assert!(items.is_empty());
    assert!(problems[0]
        .message
        .starts_with("attachment file name is not UTF-8"));
}

#[test]
fn duplicates_and_nothing_to_do_are_warnings() {
    let (items, problems) = run(
        vec![
            row("j.csv:2", "same", &[]),
            row("j.csv:3", "  ", &[]),
            row("j.csv:4", "same ", &[]),
        ],
        &ValidateOptions::default(),
    );
    assert_eq!(items.len(), 2);
    assert_eq!(problems.len(), 2);
    assert!(problems.iter().all(|p| p.severity == Severity::Warning));
    assert_eq!(problems[0].location, "j.csv:3");
    assert!(problems[0].message.starts_with("nothing to do"));
    assert_eq!(problems[1].location, "j.csv:4");
    assert!(problems[1].message.contains("j.csv:2"));
}

#[test]
fn comment_then_uploads_in_order_with_name_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.log");
    let b = dir.path().join("ünï.txt");
    std::fs::write(&a, "12345").unwrap();
    std::fs::write(&b, "1").unwrap();
    let (items, problems) = run(
        vec![row("j.csv:2", "x", &[a.clone(), b])],
        &ValidateOptions::default(),
    );
    assert!(problems.is_empty());
    assert!(matches!(items[0].action, Action::Comment(_)));
    match (&items[1].action, &items[2].action) {
        (Action::Upload(x), Action::Upload(y)) => {
            assert_eq!((x.name.as_str(), x.size, &x.path), ("a.log", 5, &a));
            assert_eq!((y.name.as_str(), y.size), ("ünï.txt", 1));
        }
        _ => panic!("expected uploads"),
    }
}

#[test]
fn length_is_counted_in_utf16_units_like_the_server() {
    let emoji = "\u{1F600}".repeat(2600); // 2,600 chars, 5,200 UTF-16 units
    let (items, problems) = run(
        vec![row("j.csv:2", &emoji, &[])],
        &ValidateOptions::default(),
    );
    assert!(items.is_empty());
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].severity, Severity::Error);
    assert!(problems[0].message.contains("5200 characters"));
    let opts = ValidateOptions {
        split_long_comments: true,
        ..ValidateOptions::default()
    };
    let long = "\u{1F600}".repeat(6000);
    let (items, problems) = run(vec![row("j.csv:2", &long, &[])], &opts);
    assert!(problems.is_empty());
    assert_eq!(items.len(), 3);
    for item in &items {
        match &item.action {
            Action::Comment(c) => assert!(c.text.trim().encode_utf16().count() <= 5000),
            Action::Upload(_) => panic!("expected a comment"),
        }
    }
}

#[test]
fn too_long_comment_is_not_also_nothing_to_do() {
    let long = "x".repeat(5001);
    let (items, problems) = run(
        vec![row("j.csv:2", &long, &[]), row("j.csv:3", " \n ", &[])],
        &ValidateOptions::default(),
    );
    assert!(items.is_empty());
    let msgs: Vec<(&str, &str)> = problems
        .iter()
        .map(|p| (p.location.as_str(), p.message.as_str()))
        .collect();
    assert_eq!(problems.len(), 2, "{msgs:?}");
    assert_eq!(problems[0].location, "j.csv:2: column comment_text");
    assert!(problems[0].message.contains("5001 characters"));
    assert_eq!(problems[1].location, "j.csv:3");
    assert!(problems[1].message.starts_with("nothing to do"));
}
