//! Hostile job files and attachments (issue 14, TESTING.md): each is refused (or read) with a
//! one-line problem naming its place, and nothing is sent.

use alga_batch::job::{load_and_validate, Action, Job, Problem, Severity, ValidateOptions};
use std::path::Path;

fn load(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> (Option<Job>, Vec<Problem>) {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    load_and_validate(&path, &ValidateOptions::default())
}

/// The errors, as printed.
fn errors(problems: &[Problem]) -> Vec<String> {
    problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .map(ToString::to_string)
        .collect()
}

fn comments(job: &Job) -> Vec<&str> {
    job.items
        .iter()
        .filter_map(|i| match &i.action {
            Action::Comment(c) => Some(c.text.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_twenty_thousand_row_csv_validates_whole() {
    // The 1,000,000-row figure is measured in BENCHMARKS.md (scripts/bench-validate.sh).
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("ticket,comment_text\n");
    for i in 0..20_000 {
        csv.push_str(&format!("TIC{:06},note {i}\n", 1000 + i % 100));
    }
    let (job, problems) = load(dir.path(), "big.csv", csv);
    assert!(errors(&problems).is_empty());
    assert_eq!(job.unwrap().items.len(), 20_000);
}

#[test]
fn a_ten_megabyte_cell_is_one_error_naming_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let big = "x".repeat(10 * 1024 * 1024);
    let csv = format!("ticket,comment_text\nTIC001000,ok\nTIC001000,{big}\n");
    let (job, problems) = load(dir.path(), "job.csv", csv);
    assert!(job.is_none());
    let errs = errors(&problems);
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0]
            .starts_with("job.csv:3: column comment_text: error: comment has 10485760 characters"),
        "{}",
        errs[0]
    );
    assert!(errs[0].len() < 300, "the message does not echo the cell");
}

#[test]
fn binary_garbage_is_refused_with_the_place_of_the_first_bad_byte() {
    let dir = tempfile::tempdir().unwrap();
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for name in ["job.csv", "job.toml"] {
        let (job, problems) = load(dir.path(), name, &garbage);
        assert!(job.is_none(), "{name}");
        let errs = errors(&problems);
        assert!(!errs.is_empty(), "{name}");
        assert!(
            errs.iter()
                .all(|e| e.starts_with(name) && e.contains("UTF-8")),
            "{errs:?}"
        );
        assert!(
            errs.len() <= 20,
            "one line per bad line at most, not a flood: {}",
            errs.len()
        );
    }
    let nul = b"ticket,comment_text\nTIC001000,a\0b\n";
    let (job, problems) = load(dir.path(), "nul.csv", nul);
    assert!(errors(&problems).is_empty(), "{problems:?}");
    assert_eq!(
        comments(&job.unwrap()),
        ["a\0b"],
        "a NUL is text, sent as written"
    );
}

#[test]
fn a_bom_crlf_and_mixed_line_endings_read_like_plain_lines() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "\u{feff}Ticket,Comment_Text\r\nTIC001000,one\nTIC001001,two\rTIC001002,three\r\nTIC001003,bad,extra\n";
    let (job, problems) = load(dir.path(), "job.csv", csv);
    assert!(job.is_none());
    assert_eq!(
        errors(&problems),
        ["job.csv:5: error: row has 3 fields but the header has 2 (an unquoted comma?)"]
    );
    let good = "\u{feff}ticket,comment_text\r\nTIC001000,one\nTIC001001,two\rTIC001002,three\r\n";
    let (job, _) = load(dir.path(), "good.csv", good);
    assert_eq!(comments(&job.unwrap()), ["one", "two", "three"]);
}

#[test]
fn quoted_newlines_stay_in_the_comment_and_later_lines_keep_their_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "ticket,comment_text,is_internal\nTIC001000,\"line one\r\nline two\n\nline four\",no\nTIC001001,after,maybe\n";
    let (job, problems) = load(dir.path(), "job.csv", csv);
    assert!(job.is_none());
    assert_eq!(
        errors(&problems),
        ["job.csv:6: column is_internal: error: bad boolean `maybe`: use true/false, yes/no or 1/0"]
    );
    let ok = csv.replace("maybe", "yes");
    let (job, _) = load(dir.path(), "ok.csv", ok);
    let job = job.unwrap();
    assert_eq!(
        comments(&job),
        ["line one\r\nline two\n\nline four", "after"]
    );
    assert_eq!(job.items[1].source, "ok.csv:6");
}

#[test]
fn a_toml_job_with_wrong_types_names_each_line() {
    // Also: src/job/tests.rs toml_type_errors_name_line_and_column.
    let dir = tempfile::tempdir().unwrap();
    let toml = "name = 7\n[settings]\nconcurrency = \"four\"\n[[tickets]]\nticket = \"TIC001000\"\ncomments = [{ text = 5 }]\n";
    let (job, problems) = load(dir.path(), "job.toml", toml);
    assert!(job.is_none());
    let errs = errors(&problems);
    assert!(!errs.is_empty());
    assert!(errs.iter().all(|e| e.starts_with("job.toml:")), "{errs:?}");
    assert!(errs.iter().any(|e| e.contains("invalid type")), "{errs:?}");
}

/// A CSV job with one attachment `path` (as written).
fn attachment_job(dir: &Path, path: &str) -> Vec<String> {
    let csv = format!("ticket,attachments\nTIC001000,{path}\n");
    errors(&load(dir, "job.csv", csv).1)
}

#[cfg(unix)]
#[test]
fn symlinks_are_followed_to_regular_files_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("real.pdf"), "pdf").unwrap();
    std::os::unix::fs::symlink(d.join("real.pdf"), d.join("link.pdf")).unwrap();
    std::os::unix::fs::symlink(d.join("gone.pdf"), d.join("dangling.pdf")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", d.join("zero.pdf")).unwrap();
    let (job, _) = load(d, "job.csv", "ticket,attachments\nTIC001000,link.pdf\n");
    match &job.unwrap().items[0].action {
        Action::Upload(u) => assert_eq!((u.name.as_str(), u.size), ("link.pdf", 3)),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        attachment_job(d, "dangling.pdf"),
        [format!(
            "job.csv:2: column attachments: error: attachment not found: `dangling.pdf` ({})",
            d.join("dangling.pdf").display()
        )]
    );
    let zero = attachment_job(d, "zero.pdf");
    assert!(
        zero[0].contains("attachment is not a regular file: `zero.pdf`"),
        "{zero:?}"
    );
}

#[cfg(unix)]
#[test]
fn fifos_devices_directories_and_unreadable_files_are_refused_by_name() {
    // Also: src/job/validate.rs fifo_is_not_a_regular_file, unreadable_attachment_is_an_error.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fifo = std::process::Command::new("mkfifo")
        .arg(d.join("pipe"))
        .status()
        .unwrap();
    assert!(fifo.success());
    std::fs::create_dir(d.join("folder")).unwrap();
    for (path, why) in [
        ("pipe", "is not a regular file"),
        ("/dev/null", "is not a regular file"),
        ("folder", "is a directory"),
    ] {
        let errs = attachment_job(d, path);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with("job.csv:2: column attachments: error: attachment"),
            "{errs:?}"
        );
        assert!(errs[0].contains(why) && errs[0].contains(path), "{errs:?}");
    }
    use std::os::unix::fs::PermissionsExt;
    let secret = d.join("secret.txt");
    std::fs::write(&secret, "s").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::File::open(&secret).is_err() {
        // (root reads anything: the check only means something for other users)
        let errs = attachment_job(d, "secret.txt");
        assert!(
            errs[0].contains("attachment unreadable: `secret.txt`"),
            "{errs:?}"
        );
    }
}

#[test]
fn dot_dot_in_a_job_written_by_hand_is_a_path_but_an_export_may_not_climb_out() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("jobs/files/sub")).unwrap();
    std::fs::create_dir_all(d.join("data")).unwrap();
    std::fs::write(d.join("shared.txt"), "shared").unwrap();
    std::fs::write(d.join("jobs/files/a.txt"), "a").unwrap();
    // The job's author may point anywhere (like a shell path).
    let (job, problems) = load(
        &d.join("jobs"),
        "job.csv",
        "ticket,attachments\nTIC001000,../shared.txt\n",
    );
    assert!(errors(&problems).is_empty(), "{problems:?}");
    assert_eq!(job.unwrap().items.len(), 1);
    // Names read from a foreign export stay inside the attachment folder.
    std::fs::write(d.join("data/export.csv"), "Ticket,Text,Files\nTIC001000,hi,../../shared.txt\nTIC001000,ok,sub/../a.txt\nTIC001000,abs,/etc/passwd\n").unwrap();
    let toml = "[[sources]]\npath = \"../data/export.csv\"\nattachments_dir = \"files\"\n[sources.columns]\nticket = \"Ticket\"\nbody = \"Text\"\nattachments = \"Files\"\n";
    let (job, problems) = load(&d.join("jobs"), "export.toml", toml);
    assert!(job.is_none());
    assert_eq!(
        errors(&problems),
        [
            "export.csv:2: column Files: error: attachment `../../shared.txt` is outside the attachment folder: names read from an export must stay inside it",
            "export.csv:4: column Files: error: attachment `/etc/passwd` is outside the attachment folder: names read from an export must stay inside it",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_bad_rows_list_a_hundred_of_each_kind_and_count_every_error() {
    use crate::env::{code, count_requests, text, TestEnv};
    let env = TestEnv::new().await;
    let mut csv = String::from("ticket,comment_text,is_internal,attachments\n");
    for i in 0..5_000 {
        let (flag, file) = if i % 2 == 0 {
            ("maybe", "")
        } else {
            ("no", "gone.txt")
        };
        csv.push_str(&format!("TIC001000,note {i},{flag},{file}\n"));
    }
    env.write("job.csv", &csv);
    let lines = |t: &str, needle: &str| t.lines().filter(|l| l.contains(needle)).count();
    for args in [
        &["validate", "job.csv"][..],
        &["run", "job.csv", "--results", "r.csv"],
    ] {
        let out = env.run(args).await;
        assert_eq!(code(&out), 2, "{}", text(&out));
        let t = text(&out);
        assert_eq!(lines(&t, "error: bad boolean `maybe`"), 100, "{args:?}");
        assert_eq!(lines(&t, "error: attachment not found: `gone.txt`"), 100);
        assert!(t.contains("job.csv: error: 2400 more errors like \"bad boolean `maybe`\" are not listed (only the first 100 of each kind are)"), "{t}");
        assert!(
            t.contains(
                "job.csv: error: 2400 more errors like \"attachment not found\" are not listed"
            ),
            "{t}"
        );
        assert!(t.contains("job has 5000 error(s); nothing was sent"), "{t}");
        assert!(
            t.lines().count() < 220,
            "a bounded report: {} lines",
            t.lines().count()
        );
    }
    assert_eq!(count_requests(&env.sandbox, "POST", ""), 0, "nothing sent");
}
