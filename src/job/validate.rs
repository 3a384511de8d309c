//! Turning raw rows (as read from CSV or TOML) into validated job items: comment length,
//! attachments on disk, duplicates and rows with nothing to do.
//!
//! The [`Validator`] is the readers' [`RowSink`]: it checks each row as it is read and hands
//! the row's items to an [`ItemSink`], which keeps them (a run) or only counts them
//! (`validate`), so a large job is never held as rows, and not even as items when only
//! checked. What it keeps per row is the duplicate detector's digest.

use super::duplicates::Duplicates;
use super::problems::Problems;
use super::raw::{RawAttachment, RawComment, RawRow, RowSink};
use super::split::{server_len, split_comment};
use super::{
    Action, CommentSpec, JobItem, TicketRef, UploadSpec, ValidateOptions, MAX_COMMENT_CHARS,
};

/// Where validated items go, in job order.
pub(crate) trait ItemSink {
    /// Take one item; `make` builds it (a sink that only counts does not call it).
    fn item(&mut self, make: impl FnOnce() -> JobItem);
}

impl ItemSink for Vec<JobItem> {
    fn item(&mut self, make: impl FnOnce() -> JobItem) {
        self.push(make());
    }
}

/// Counts the items without building or keeping them (`validate`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ItemCount(pub(crate) usize);

impl ItemSink for ItemCount {
    fn item(&mut self, _make: impl FnOnce() -> JobItem) {
        self.0 += 1;
    }
}

/// Checks rows as the readers produce them, in order, reporting every problem.
pub(crate) struct Validator<'a, S> {
    opts: &'a ValidateOptions,
    items: S,
    duplicates: Duplicates,
    /// The rows' problems: listed after everything the readers report.
    problems: Problems,
}

impl<'a, S: ItemSink> Validator<'a, S> {
    /// A validator handing items to `items`.
    pub(crate) fn new(opts: &'a ValidateOptions, items: S) -> Validator<'a, S> {
        Validator {
            opts,
            items,
            duplicates: Duplicates::default(),
            problems: Problems::default(),
        }
    }

    /// The item sink and the problems of the rows.
    pub(crate) fn finish(self) -> (S, Problems) {
        (self.items, self.problems)
    }
}

impl<S: ItemSink> RowSink for Validator<'_, S> {
    fn row(&mut self, row: RawRow) {
        let has_text = row
            .comment
            .as_ref()
            .is_some_and(|c| !c.text.trim().is_empty());
        let nothing_to_do = !has_text && row.attachments.is_empty();
        let digest = row
            .ticket
            .as_ref()
            .filter(|_| !nothing_to_do)
            .map(|t| self.duplicates.digest(t, &row));
        let (source, comments) = match row.comment {
            Some(mut c) => (
                std::mem::take(&mut c.source),
                check_comment(c, self.opts, &mut self.problems),
            ),
            None => (String::new(), Vec::new()),
        };
        let uploads: Vec<(String, Option<UploadSpec>)> = row
            .attachments
            .into_iter()
            .map(|a| {
                let upload = check_attachment(&a, self.opts, &mut self.problems);
                (a.source, upload)
            })
            .collect();
        if nothing_to_do {
            self.problems.warn(
                row.loc.to_string(),
                "nothing to do: no comment text and no attachments",
            );
            return;
        }
        let (Some(ticket), Some(digest)) = (row.ticket, digest) else {
            return;
        };
        if let Some(first) = self.duplicates.first_seen(digest, &row.loc) {
            self.problems.warn(
                row.loc.to_string(),
                format!("duplicate row: same ticket and content as {first}"),
            );
        }
        self.push_items(&ticket, &source, comments, uploads);
    }
}

impl<S: ItemSink> Validator<'_, S> {
    /// A valid row's items in order: its comment (or the comment's parts), then its uploads.
    fn push_items(
        &mut self,
        ticket: &TicketRef,
        source: &str,
        comments: Vec<CommentSpec>,
        uploads: Vec<(String, Option<UploadSpec>)>,
    ) {
        for c in comments {
            self.items.item(|| JobItem {
                source: source.to_string(),
                ticket: ticket.clone(),
                action: Action::Comment(c),
            });
        }
        for (source, upload) in uploads {
            if let Some(u) = upload {
                self.items.item(|| JobItem {
                    source,
                    ticket: ticket.clone(),
                    action: Action::Upload(u),
                });
            }
        }
    }
}

/// Trim, check the length (UTF-16 units, as the server counts), and split when allowed. Empty text yields no comment.
fn check_comment(
    c: RawComment,
    opts: &ValidateOptions,
    problems: &mut Problems,
) -> Vec<CommentSpec> {
    let text = c.text.trim();
    if text.is_empty() {
        return Vec::new();
    }
    let count = server_len(text);
    let texts = if count <= MAX_COMMENT_CHARS {
        vec![match text.len() == c.text.len() {
            true => c.text,
            false => text.to_string(),
        }]
    } else if opts.split_long_comments {
        split_comment(text, MAX_COMMENT_CHARS)
    } else {
        problems.error(
            &c.loc,
            format!(
                "comment has {count} characters (UTF-16 units, as the server counts), over the \
                 limit of {MAX_COMMENT_CHARS} (split it, or use --split-long-comments)"
            ),
        );
        return Vec::new();
    };
    texts
        .into_iter()
        .map(|text| CommentSpec {
            text,
            is_internal: c.is_internal,
            is_resolution: c.is_resolution,
        })
        .collect()
}

/// Check an attachment exists, is a readable file within the upload limit, and has a UTF-8 name.
fn check_attachment(
    a: &RawAttachment,
    opts: &ValidateOptions,
    problems: &mut Problems,
) -> Option<UploadSpec> {
    let checked = file_size(a).and_then(|size| {
        if size > opts.max_upload_bytes {
            return Err(format!(
                "attachment `{}` is {size} bytes, over the upload limit of {} bytes",
                a.written, opts.max_upload_bytes
            ));
        }
        let name = a
            .path
            .file_name()
            .ok_or_else(|| format!("attachment path has no file name: `{}`", a.written))?;
        let name = name
            .to_str()
            .ok_or_else(|| format!("attachment file name is not UTF-8: {}", a.path.display()))?;
        Ok(UploadSpec {
            path: a.path.clone(),
            name: name.to_string(),
            size,
        })
    });
    checked.map_err(|msg| problems.error(&a.loc, msg)).ok()
}

/// The size of a readable regular file, or why it cannot be uploaded.
fn file_size(a: &RawAttachment) -> Result<u64, String> {
    let shown = a.path.display();
    let meta = std::fs::metadata(&a.path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            format!("attachment not found: `{}` ({shown})", a.written)
        }
        _ => format!("attachment unreadable: `{}` ({shown}): {e}", a.written),
    })?;
    if meta.is_dir() {
        return Err(format!(
            "attachment is a directory: `{}` ({shown})",
            a.written
        ));
    }
    if !meta.is_file() {
        return Err(format!(
            "attachment is not a regular file: `{}` ({shown})",
            a.written
        ));
    }
    std::fs::File::open(&a.path)
        .map_err(|e| format!("attachment unreadable: `{}` ({shown}): {e}", a.written))?;
    Ok(meta.len())
}

#[cfg(test)]
mod tests {
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
}
