//! Planning: a validated [`Job`] becomes an ordered list of operations with stable op keys.
//!
//! An op key is derived from content only: the ticket as written, the kind, the comment text and
//! flags (or the file name, size and sha256), and the occurrence number among identical
//! operations. Reordering rows or editing unrelated rows therefore leaves every other key as it
//! was, which is what resuming an edited job relies on. Planning reads attachment files (to hash
//! them) but never touches the network.

use crate::error::{Error, Result};
use crate::job::{Action, CommentSpec, Job, TicketRef, UploadSpec};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// What an operation does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpKind {
    /// Post a comment.
    Comment(CommentSpec),
    /// Upload a file, with its content hash and guessed MIME type.
    Upload {
        /// The file.
        spec: UploadSpec,
        /// sha256 of the file at planning time (hex).
        sha256: String,
        /// MIME type guessed from the extension.
        mime: String,
    },
}

impl OpKind {
    /// `comment` or `document`, as in the results CSV.
    pub fn label(&self) -> &'static str {
        match self {
            OpKind::Comment(_) => "comment",
            OpKind::Upload { .. } => "document",
        }
    }
}

/// One planned operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Stable key (see the module docs).
    pub op_key: String,
    /// Where it came from (`job.csv:12`).
    pub source: String,
    /// Target ticket as written.
    pub ticket: TicketRef,
    /// What to do.
    pub kind: OpKind,
}

/// Plan every item of `job`, in job order.
pub fn plan(job: &Job) -> Result<Vec<Operation>> {
    let mut seen: HashMap<String, u32> = HashMap::new();
    let mut hashes: HashMap<std::path::PathBuf, String> = HashMap::new();
    let mut ops = Vec::with_capacity(job.items.len());
    for item in &job.items {
        let kind = match &item.action {
            Action::Comment(c) => OpKind::Comment(c.clone()),
            Action::Upload(u) => {
                let sha256 = match hashes.get(&u.path) {
                    Some(h) => h.clone(),
                    None => {
                        let h = sha256_file(&u.path)?;
                        hashes.insert(u.path.clone(), h.clone());
                        h
                    }
                };
                OpKind::Upload {
                    mime: guess_mime(&u.name),
                    spec: u.clone(),
                    sha256,
                }
            }
        };
        let content = content_key(&item.ticket, &kind);
        let n = seen.entry(content.clone()).or_insert(0);
        *n += 1;
        ops.push(Operation {
            op_key: op_key(&content, *n, &kind),
            source: item.source.clone(),
            ticket: item.ticket.clone(),
            kind,
        });
    }
    Ok(ops)
}

/// The identity of an operation's content, before the occurrence number.
fn content_key(ticket: &TicketRef, kind: &OpKind) -> String {
    let t = match ticket {
        TicketRef::Id(id) => id.to_string(),
        TicketRef::Number(n) => n.to_uppercase(),
    };
    match kind {
        OpKind::Comment(c) => format!(
            "{t}\0comment\0{}\0{}\0{}",
            c.is_internal, c.is_resolution, c.text
        ),
        OpKind::Upload { spec, sha256, .. } => {
            format!("{t}\0document\0{}\0{}\0{sha256}", spec.name, spec.size)
        }
    }
}

/// `c-` or `d-` and 20 hex digits of sha256(content, occurrence).
fn op_key(content: &str, occurrence: u32, kind: &OpKind) -> String {
    let mut h = Sha256::new();
    h.update(content.as_bytes());
    h.update(format!("\0#{occurrence}").as_bytes());
    let prefix = match kind {
        OpKind::Comment(_) => "c",
        OpKind::Upload { .. } => "d",
    };
    format!("{prefix}-{}", &hex::encode(h.finalize())[..20])
}

/// MIME type from the file name's extension (`application/octet-stream` when unknown).
pub fn guess_mime(name: &str) -> String {
    mime_guess::from_path(name)
        .first_or_octet_stream()
        .essence_str()
        .to_string()
}

/// Streamed sha256 of a file (hex).
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f =
        std::fs::File::open(path).map_err(|e| Error::io("cannot read attachment", path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| Error::io("cannot read attachment", path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{JobItem, JobSettings};

    fn comment(ticket: &str, text: &str, line: usize) -> JobItem {
        JobItem {
            source: format!("job.csv:{line}"),
            ticket: TicketRef::parse(ticket).unwrap(),
            action: Action::Comment(CommentSpec {
                text: text.into(),
                is_internal: false,
                is_resolution: false,
            }),
        }
    }

    fn job(items: Vec<JobItem>) -> Job {
        Job {
            name: "t".into(),
            path: "job.csv".into(),
            settings: JobSettings::default(),
            items,
        }
    }

    fn keys(items: Vec<JobItem>) -> Vec<String> {
        plan(&job(items))
            .unwrap()
            .into_iter()
            .map(|o| o.op_key)
            .collect()
    }

    #[test]
    fn keys_survive_reordering_and_unrelated_edits() {
        let a = keys(vec![
            comment("TIC1", "a", 2),
            comment("TIC1", "b", 3),
            comment("TIC2", "c", 4),
        ]);
        let b = keys(vec![
            comment("TIC2", "c", 2),
            comment("TIC1", "a", 3),
            comment("TIC1", "b", 4),
        ]);
        assert_eq!(a[0], b[1]);
        assert_eq!(a[1], b[2]);
        assert_eq!(a[2], b[0]);
        let c = keys(vec![
            comment("TIC1", "a", 2),
            comment("TIC1", "B changed", 3),
            comment("TIC2", "c", 4),
        ]);
        assert_eq!(a[0], c[0]);
        assert_ne!(a[1], c[1]);
        assert_eq!(a[2], c[2]);
    }

    #[test]
    fn identical_operations_get_occurrence_numbers() {
        let k = keys(vec![comment("TIC1", "same", 2), comment("TIC1", "same", 3)]);
        assert_ne!(k[0], k[1]);
        assert!(k[0].starts_with("c-") && k[0].len() == 22);
        // Ticket numbers compare case-insensitively, like the server does.
        let l = keys(vec![comment("tic1", "same", 9)]);
        assert_eq!(k[0], l[0]);
    }

    #[test]
    fn uploads_are_keyed_by_name_size_and_hash() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        std::fs::write(&p, b"hello").unwrap();
        let up = |line| JobItem {
            source: format!("job.csv:{line}"),
            ticket: TicketRef::parse("TIC1").unwrap(),
            action: Action::Upload(UploadSpec {
                path: p.clone(),
                name: "a.txt".into(),
                size: 5,
            }),
        };
        let ops = plan(&job(vec![up(2)])).unwrap();
        match &ops[0].kind {
            OpKind::Upload { sha256, mime, .. } => {
                assert_eq!(
                    sha256,
                    "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
                );
                assert_eq!(mime, "text/plain");
            }
            other => panic!("{other:?}"),
        }
        assert!(ops[0].op_key.starts_with("d-"));
        std::fs::write(&p, b"HELLO").unwrap();
        let again = plan(&job(vec![up(2)])).unwrap();
        assert_ne!(
            ops[0].op_key, again[0].op_key,
            "content change must change the key"
        );
    }
}
