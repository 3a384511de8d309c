//! Finding rows that repeat an earlier row (same ticket, same comment and flags, same files),
//! in a few bytes per row: a 16-byte digest of the content and the first row's place as two
//! numbers (file, line), not a copy of the row or of its location text.

use std::collections::HashMap;
use std::rc::Rc;

use sha2::{Digest as _, Sha256};

use super::raw::{RawRow, RowLoc};
use super::TicketRef;

/// The first 16 bytes of a SHA-256 of a row's content.
pub(crate) type Digest = [u8; 16];

/// The place of the first row with some content, in 8 bytes.
#[derive(Debug, Clone, Copy)]
struct FirstAt {
    /// Index in `files`, or [`TEXT`]: then `line` indexes `texts`.
    file: u32,
    line: u32,
}

/// `FirstAt::file` of a place kept as text.
const TEXT: u32 = u32::MAX;

/// Shards of the digest table (by the digest's first byte): each grows on its own, so the
/// table never holds its old and its new copy whole at once while growing.
const SHARDS: usize = 256;

/// The content digests of the rows seen so far, each with the place it was first seen.
#[derive(Debug)]
pub(crate) struct Duplicates {
    seen: Vec<HashMap<Digest, FirstAt>>,
    /// The files of `RowLoc::Line` places (a job has a few).
    files: Vec<Rc<str>>,
    /// Places that are not a file and a line (TOML locators; a line past `u32::MAX`).
    texts: Vec<String>,
    /// Reused for the ticket's lower-case form.
    scratch: String,
}

impl Default for Duplicates {
    fn default() -> Self {
        Duplicates {
            seen: (0..SHARDS).map(|_| HashMap::new()).collect(),
            files: Vec::new(),
            texts: Vec::new(),
            scratch: String::new(),
        }
    }
}

impl Duplicates {
    /// The digest of a row's content: the ticket (any case), the comment as it will be sent
    /// (trimmed, with its flags) and the attachment paths.
    pub(crate) fn digest(&mut self, ticket: &TicketRef, row: &RawRow) -> Digest {
        use std::fmt::Write as _;
        let mut h = Sha256::new();
        self.scratch.clear();
        let _ = write!(self.scratch, "{ticket}");
        if self.scratch.is_ascii() {
            self.scratch.make_ascii_lowercase();
            h.update(&self.scratch);
        } else {
            h.update(self.scratch.to_lowercase());
        }
        h.update([0]);
        if let Some(c) = &row.comment {
            let flag = |b: bool| if b { "true|" } else { "false|" };
            h.update(flag(c.is_internal));
            h.update(flag(c.is_resolution));
            h.update(c.text.trim());
        }
        h.update([0]);
        for (i, a) in row.attachments.iter().enumerate() {
            if i > 0 {
                h.update([0]);
            }
            h.update(a.path.as_os_str().as_encoded_bytes());
        }
        let mut key = [0u8; 16];
        key.copy_from_slice(&h.finalize()[..16]);
        key
    }

    /// Where this content was first seen (`file:line` or a locator); `None` when it is new,
    /// and then `loc` is remembered as its first place.
    pub(crate) fn first_seen(&mut self, digest: Digest, loc: &RowLoc) -> Option<String> {
        let shard = usize::from(digest[0]) % SHARDS;
        if let Some(at) = self.seen[shard].get(&digest) {
            return Some(self.place(*at));
        }
        if let Some(at) = self.remember(loc) {
            self.seen[shard].insert(digest, at);
        }
        None
    }

    /// Digests held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.seen.iter().map(HashMap::len).sum()
    }

    fn remember(&mut self, loc: &RowLoc) -> Option<FirstAt> {
        if let RowLoc::Line { file, line } = loc {
            let known = self.files.iter().rposition(|f| **f == **file);
            let index = known.unwrap_or_else(|| {
                self.files.push(Rc::clone(file));
                self.files.len() - 1
            });
            if let (Ok(file), Ok(line)) = (u32::try_from(index), u32::try_from(*line)) {
                if file != TEXT {
                    return Some(FirstAt { file, line });
                }
            }
        }
        let line = u32::try_from(self.texts.len()).ok()?;
        self.texts.push(loc.to_string());
        Some(FirstAt { file: TEXT, line })
    }

    fn place(&self, at: FirstAt) -> String {
        match at.file {
            TEXT => self.texts[at.line as usize].clone(),
            f => format!("{}:{}", self.files[f as usize], at.line),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::raw::{RawAttachment, RawComment};

    fn row(loc: RowLoc, ticket: &str, text: &str, internal: bool) -> (Digest, RowLoc) {
        let mut d = Duplicates::default();
        let ticket = TicketRef::parse(ticket).unwrap();
        let raw = RawRow {
            loc: loc.clone(),
            ticket: Some(ticket.clone()),
            comment: Some(RawComment {
                source: String::new(),
                loc: String::new(),
                text: text.into(),
                is_internal: internal,
                is_resolution: false,
            }),
            attachments: vec![RawAttachment {
                source: String::new(),
                loc: String::new(),
                written: "a".into(),
                path: "/x/a".into(),
            }],
        };
        (d.digest(&ticket, &raw), loc)
    }

    fn line(file: &Rc<str>, line: usize) -> RowLoc {
        RowLoc::Line {
            file: Rc::clone(file),
            line,
        }
    }

    #[test]
    fn same_ticket_any_case_and_trimmed_text_is_a_duplicate_of_the_first_place() {
        let (a, b): (Rc<str>, Rc<str>) = ("a.csv".into(), "b.csv".into());
        let mut d = Duplicates::default();
        let (k, loc) = row(line(&a, 2), "TIC1", "hello", false);
        assert_eq!(d.first_seen(k, &loc), None);
        let (k, loc) = row(line(&b, 9), "tic1", " hello\n", false);
        assert_eq!(d.first_seen(k, &loc).as_deref(), Some("a.csv:2"));
        let (k, loc) = row(line(&b, 10), "TIC1", "hello", true);
        assert_eq!(d.first_seen(k, &loc), None, "another flag is other content");
        let text = RowLoc::Text("j.toml:3: tickets[0].comments[0]".into());
        let (k, loc) = row(text, "TIC2", "x", false);
        assert_eq!(d.first_seen(k, &loc), None);
        let (k, loc) = row(line(&a, 7), "TIC2", "x", false);
        assert_eq!(
            d.first_seen(k, &loc).as_deref(),
            Some("j.toml:3: tickets[0].comments[0]")
        );
        assert_eq!((d.len(), d.files.len(), d.texts.len()), (3, 2, 1));
    }

    #[test]
    fn a_line_past_u32_is_kept_as_text() {
        let file: Rc<str> = "a.csv".into();
        let mut d = Duplicates::default();
        let far = usize::try_from(u64::from(u32::MAX) + 5).unwrap_or(usize::MAX);
        let (k, loc) = row(line(&file, far), "TIC1", "x", false);
        assert_eq!(d.first_seen(k, &loc), None);
        let (k, loc) = row(line(&file, 3), "TIC1", "x", false);
        assert_eq!(d.first_seen(k, &loc), Some(format!("a.csv:{far}")));
    }
}
