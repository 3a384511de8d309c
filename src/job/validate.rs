//! Turning raw rows (as read from CSV or TOML) into validated job items: comment length,
//! attachments on disk, duplicates and rows with nothing to do.

use std::collections::HashMap;
use std::path::PathBuf;

use super::problems::Problems;
use super::split::{server_len, split_comment};
use super::{
    Action, CommentSpec, JobItem, TicketRef, UploadSpec, ValidateOptions, MAX_COMMENT_CHARS,
};

/// A comment as read, before trimming and length checks.
#[derive(Debug, Clone)]
pub(crate) struct RawComment {
    /// Item source (`jobfile:line` or a TOML locator).
    pub(crate) source: String,
    /// Problem location.
    pub(crate) loc: String,
    /// Text after templating, untrimmed.
    pub(crate) text: String,
    /// Internal note.
    pub(crate) is_internal: bool,
    /// Resolution flag.
    pub(crate) is_resolution: bool,
}

/// An attachment as written, with its path resolved.
#[derive(Debug, Clone)]
pub(crate) struct RawAttachment {
    /// Item source.
    pub(crate) source: String,
    /// Problem location.
    pub(crate) loc: String,
    /// The path as written in the job.
    pub(crate) written: String,
    /// The path resolved against its base folder.
    pub(crate) path: PathBuf,
}

/// One unit of work as written: a CSV row, a source row, an inline comment.
#[derive(Debug, Clone)]
pub(crate) struct RawRow {
    /// Where the row is (`file:line`), for row-level findings.
    pub(crate) loc: String,
    /// Target ticket; `None` when missing or unresolvable (already reported).
    pub(crate) ticket: Option<TicketRef>,
    /// The comment, if the row has text.
    pub(crate) comment: Option<RawComment>,
    /// Attachments in order.
    pub(crate) attachments: Vec<RawAttachment>,
}

/// Validate rows into items, in order, reporting every problem.
pub(crate) fn rows_to_items(
    rows: Vec<RawRow>,
    opts: &ValidateOptions,
    problems: &mut Problems,
) -> Vec<JobItem> {
    let mut items = Vec::new();
    let mut seen: HashMap<[u8; 16], String> = HashMap::new();
    for row in rows {
        let comments = row
            .comment
            .as_ref()
            .map(|c| check_comment(c, opts, problems))
            .unwrap_or_default();
        let uploads: Vec<(String, Option<UploadSpec>)> = row
            .attachments
            .iter()
            .map(|a| (a.source.clone(), check_attachment(a, opts, problems)))
            .collect();
        if !has_text(&row) && row.attachments.is_empty() {
            problems.warn(
                &row.loc,
                "nothing to do: no comment text and no attachments",
            );
            continue;
        }
        if let Some(ticket) = &row.ticket {
            note_duplicate(&row, ticket, &mut seen, problems);
            push_items(&mut items, ticket, &row, comments, uploads);
        }
    }
    items
}

/// Whether the row has comment text (even text that failed its checks).
fn has_text(row: &RawRow) -> bool {
    row.comment
        .as_ref()
        .is_some_and(|c| !c.text.trim().is_empty())
}

fn push_items(
    items: &mut Vec<JobItem>,
    ticket: &TicketRef,
    row: &RawRow,
    comments: Vec<CommentSpec>,
    uploads: Vec<(String, Option<UploadSpec>)>,
) {
    let source = row
        .comment
        .as_ref()
        .map(|c| c.source.clone())
        .unwrap_or_default();
    for c in comments {
        items.push(JobItem {
            source: source.clone(),
            ticket: ticket.clone(),
            action: Action::Comment(c),
        });
    }
    for (source, upload) in uploads {
        if let Some(u) = upload {
            items.push(JobItem {
                source,
                ticket: ticket.clone(),
                action: Action::Upload(u),
            });
        }
    }
}

/// Warn when the same ticket and content appeared before, naming both places.
fn note_duplicate(
    row: &RawRow,
    ticket: &TicketRef,
    seen: &mut HashMap<[u8; 16], String>,
    problems: &mut Problems,
) {
    use sha2::{Digest, Sha256};
    let comment = row
        .comment
        .as_ref()
        .map(|c| format!("{}|{}|{}", c.is_internal, c.is_resolution, c.text.trim()));
    let files: Vec<String> = row
        .attachments
        .iter()
        .map(|a| a.path.display().to_string())
        .collect();
    // A digest, not the text: a large job keeps 16 bytes per row here, not a copy of it.
    let digest = Sha256::new()
        .chain_update(ticket.to_string().to_lowercase())
        .chain_update([0])
        .chain_update(comment.unwrap_or_default())
        .chain_update([0])
        .chain_update(files.join("\u{0}"))
        .finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    if let Some(first) = seen.get(&key) {
        problems.warn(
            &row.loc,
            format!("duplicate row: same ticket and content as {first}"),
        );
    } else {
        seen.insert(key, row.loc.clone());
    }
}

/// Trim, check the length (UTF-16 units, as the server counts), and split when allowed. Empty text yields no comment.
fn check_comment(
    c: &RawComment,
    opts: &ValidateOptions,
    problems: &mut Problems,
) -> Vec<CommentSpec> {
    let text = c.text.trim();
    if text.is_empty() {
        return Vec::new();
    }
    let count = server_len(text);
    let texts = if count <= MAX_COMMENT_CHARS {
        vec![text.to_string()]
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

/// Parse a boolean cell: true/false/yes/no/1/0 (any case); empty is false.
pub(crate) fn parse_bool(cell: &str) -> Option<bool> {
    match cell.trim().to_ascii_lowercase().as_str() {
        "" | "false" | "no" | "0" => Some(false),
        "true" | "yes" | "1" => Some(true),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Severity;

    fn row(loc: &str, text: &str, files: &[PathBuf]) -> RawRow {
        RawRow {
            loc: loc.into(),
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
        let mut p = Problems::default();
        let items = rows_to_items(rows, opts, &mut p);
        (items, p.into_vec())
    }

    #[test]
    fn booleans() {
        for (s, v) in [
            ("TRUE", true),
            ("yes", true),
            ("1", true),
            (" No ", false),
            ("", false),
            ("0", false),
        ] {
            assert_eq!(parse_bool(s), Some(v), "{s}");
        }
        assert_eq!(parse_bool("maybe"), None);
        assert_eq!(parse_bool("2"), None);
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
