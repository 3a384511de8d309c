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
mod tests;
