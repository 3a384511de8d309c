//! The operations of a restore: one upload per backed-up document, one comment post per
//! backed-up comment (or a few, see `body.rs`), each keyed by the source document or comment
//! id and the target ticket, so that a rerun finds its own rows and a crash resumes exactly
//! once. Each operation comes with a [`Probe`]: what `present.rs` looks for on the target.

use super::backup::{SourceComment, SourceTicket};
use super::body;
use super::source::StoreObject;
use super::template::Template;
use crate::api::{Comment, StreamSource};
use crate::job::{CommentSpec, TicketRef, UploadSpec};
use crate::plan::{guess_mime, OpExtra, OpKind, Operation};
use crate::store::layout::name_of;
use crate::store::{BackupStore, Entry};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use uuid::Uuid;

/// Metadata key of a restored comment's source comment id.
pub(crate) const METADATA_SOURCE_COMMENT: &str = "alga_batch_source_comment_id";

/// Where a backed-up ticket goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The target as written (the results' `ticket` column).
    pub(crate) reference: TicketRef,
    /// The target ticket's id, or why it is not known.
    pub(crate) id: Result<Uuid, String>,
}

impl Target {
    /// The target's part of an op key: its id, else the reference.
    fn key_part(&self) -> String {
        match &self.id {
            Ok(id) => id.to_string(),
            Err(_) => format!("ref:{}", self.reference.to_string().to_uppercase()),
        }
    }
}

/// What to look for on the target before sending.
#[derive(Debug, Clone)]
pub(crate) enum Probe {
    /// A document: by its id, else by the name it is sent under and its sha256.
    Document {
        /// The manifest row.
        entry: Entry,
        /// The name it is uploaded under.
        name: String,
    },
    /// A comment: by its id, else by the op key in an earlier restore's metadata.
    Comment {
        /// The backed-up comment's id.
        source: Uuid,
    },
    /// Nothing to look for (the operation cannot be sent anyway).
    Nothing,
}

/// An operation and its probe.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    /// The operation.
    pub(crate) op: Operation,
    /// What to look for on the target.
    pub(crate) probe: Probe,
}

/// What every operation of one restore is built with.
pub(crate) struct Builder<'a> {
    /// The backup's store.
    pub(crate) store: Arc<dyn BackupStore>,
    /// The comment template.
    pub(crate) template: &'a Template,
}

impl Builder<'_> {
    /// The operations of one ticket: its documents, then its comments in order.
    pub(crate) fn ticket(&self, t: &SourceTicket, target: &Target) -> Vec<Planned> {
        let mut out: Vec<Planned> = t
            .documents
            .iter()
            .map(|e| self.document(e, target))
            .collect();
        for c in &t.comments {
            out.extend(self.comment(t, c, target));
        }
        out
    }

    /// The upload of one backed-up document.
    fn document(&self, e: &Entry, target: &Target) -> Planned {
        let (name, note) = upload_name(&e.document_name, name_of(&e.path));
        let sha256 = e.sha256.to_ascii_lowercase();
        let valid = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit());
        let blocked = (!valid).then(|| {
            "the manifest records no valid sha256 for this file, so it cannot be checked"
                .to_string()
        });
        let mime = match e.mime_type.trim() {
            "" => guess_mime(&name),
            m => m.to_string(),
        };
        let object = StoreObject {
            store: Arc::clone(&self.store),
            key: e.path.clone(),
            bytes: e.bytes,
            sha256: sha256.clone(),
        };
        let kind = OpKind::Upload {
            spec: UploadSpec {
                path: PathBuf::from(self.store.describe(&e.path)),
                name: name.clone(),
                size: e.bytes,
            },
            sha256,
            mime,
            stream: Some(StreamSource(Arc::new(object))),
        };
        let op_key = op_key('d', &[&e.document_id.to_string(), &target.key_part()]);
        let op = operation(op_key, e.path.clone(), target, blocked, kind);
        Planned {
            op: Operation {
                extra: OpExtra {
                    note,
                    ..OpExtra::default()
                },
                ..op
            },
            probe: Probe::Document {
                entry: e.clone(),
                name,
            },
        }
    }

    /// The posts of one backed-up comment (several when it must be split).
    fn comment(&self, t: &SourceTicket, c: &SourceComment, target: &Target) -> Vec<Planned> {
        let original = match &c.comment {
            Ok(original) => original,
            Err(why) => {
                let key = op_key('c', &[&c.source, &target.key_part()]);
                return vec![blocked_comment(key, c, target, why.clone())];
            }
        };
        let id = original.comment_id.to_string();
        let rendered = self.template.render(original, &t.label());
        let texts = match body::parts(&rendered, &text_of(original)) {
            Ok(texts) => texts,
            Err(why) => {
                let key = op_key('c', &[&id, &target.key_part(), "1"]);
                return vec![blocked_comment(key, c, target, why)];
            }
        };
        let n = texts.len();
        texts
            .into_iter()
            .enumerate()
            .map(|(i, text)| {
                let part = (i + 1).to_string();
                let source = match n {
                    1 => c.source.clone(),
                    _ => format!("{} (part {part}/{n})", c.source),
                };
                let kind = OpKind::Comment(CommentSpec {
                    text,
                    is_internal: original.is_internal,
                    // The resolution is the part that holds the text: the last.
                    is_resolution: original.is_resolution && i + 1 == n,
                });
                let op_key = op_key('c', &[&id, &target.key_part(), &part]);
                let op = operation(op_key, source, target, None, kind);
                let extra = OpExtra {
                    metadata: vec![(METADATA_SOURCE_COMMENT.to_string(), id.clone())],
                    ..OpExtra::default()
                };
                Planned {
                    op: Operation { extra, ..op },
                    probe: Probe::Comment {
                        source: original.comment_id,
                    },
                }
            })
            .collect()
    }
}

/// The text of a backed-up comment (`comment_text`, else `note`).
fn text_of(c: &Comment) -> String {
    c.comment_text
        .clone()
        .or_else(|| {
            c.extra
                .get("note")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
        .unwrap_or_default()
}

/// An operation to `target` (blocked when the target is unknown).
fn operation(
    op_key: String,
    source: String,
    target: &Target,
    blocked: Option<String>,
    kind: OpKind,
) -> Operation {
    Operation {
        op_key,
        source,
        ticket: target.reference.clone(),
        ticket_id: target.id.as_ref().ok().copied(),
        blocked: target.id.as_ref().err().cloned().or(blocked),
        kind,
        extra: OpExtra::default(),
    }
}

/// A comment that cannot be posted (its line is damaged, or it cannot fit the server).
fn blocked_comment(key: String, c: &SourceComment, target: &Target, why: String) -> Planned {
    let kind = OpKind::Comment(CommentSpec {
        text: String::new(),
        is_internal: false,
        is_resolution: false,
    });
    Planned {
        op: operation(key, c.source.clone(), target, Some(why), kind),
        probe: Probe::Nothing,
    }
}

/// `d-`/`c-` and 20 hex digits of sha256 over `parts` (source id, target ticket, part), each
/// preceded by its length so that no two lists of parts hash alike.
pub(crate) fn op_key(prefix: char, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(b"restore");
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    format!("{prefix}-{}", &hex::encode(h.finalize())[..20])
}

/// The name to upload under, and a note when it is not the original: a name an upload cannot
/// carry unchanged (empty, or holding `"`, `\` or a control character, which the multipart
/// form would alter) is replaced by the backup file's name.
pub(crate) fn upload_name(original: &str, saved: &str) -> (String, String) {
    let why = if original.trim().is_empty() {
        "is empty"
    } else if original.contains(['"', '\\']) || original.chars().any(char::is_control) {
        "holds a quote, a backslash or a control character, which an upload cannot carry"
    } else {
        return (original.to_string(), String::new());
    };
    let note = format!(
        "uploaded as {saved:?}, the backup file's name: the original name {original:?} {why}"
    );
    (saved.to_string(), note)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(id: u128) -> Target {
        Target {
            reference: TicketRef::Number("TIC1".into()),
            id: Ok(Uuid::from_u128(id)),
        }
    }

    #[test]
    fn op_keys_follow_the_source_id_and_the_target_ticket() {
        let a = op_key('d', &["doc-1", &target(1).key_part()]);
        assert_eq!(a, op_key('d', &["doc-1", &target(1).key_part()]), "stable");
        assert_ne!(a, op_key('d', &["doc-1", &target(2).key_part()]));
        assert_ne!(a, op_key('d', &["doc-2", &target(1).key_part()]));
        assert!(a.starts_with("d-") && a.len() == 22, "{a}");
        assert_ne!(
            op_key('c', &["a", "b"]),
            op_key('c', &["a\0b"]),
            "parts are separated"
        );
        let unknown = Target {
            reference: TicketRef::Number("tic9".into()),
            id: Err("no ticket numbered tic9".into()),
        };
        assert_eq!(unknown.key_part(), "ref:TIC9");
    }

    #[test]
    fn names_an_upload_cannot_carry_fall_back_to_the_saved_name() {
        assert_eq!(
            upload_name("résumé (v2).pdf", "x"),
            ("résumé (v2).pdf".into(), String::new())
        );
        assert_eq!(upload_name("100%.txt", "x").0, "100%.txt");
        for bad in ["a\"b.txt", "a\\b.txt", "a\nb.txt", "tab\there"] {
            let (name, note) = upload_name(bad, "a_b.txt");
            assert_eq!(name, "a_b.txt", "{bad:?}");
            assert!(
                note.starts_with("uploaded as \"a_b.txt\", the backup file's name"),
                "{note}"
            );
            assert!(note.contains("cannot carry"), "{note}");
        }
        let (name, note) = upload_name("  ", "document-1");
        assert_eq!(name, "document-1");
        assert!(note.ends_with("is empty"), "{note}");
    }

    fn source_comment(text: &str, resolution: bool) -> SourceComment {
        let c = serde_json::json!({
            "comment_id": Uuid::from_u128(5),
            "ticket_id": Uuid::from_u128(6),
            "comment_text": text,
            "is_internal": true,
            "is_resolution": resolution,
            "created_by_name": "Ann",
        });
        SourceComment {
            source: "TIC1/comments.jsonl:3".into(),
            comment: Ok(serde_json::from_value(c).unwrap()),
        }
    }

    #[test]
    fn a_comment_becomes_posts_keyed_by_its_id_part_and_target() {
        let dir = tempfile::tempdir().unwrap();
        let template = Template::compile(crate::restore::DEFAULT_TEMPLATE).unwrap();
        let b = Builder {
            store: Arc::new(crate::store::FolderStore::new(dir.path(), false)),
            template: &template,
        };
        let ticket = SourceTicket {
            number: Some("TIC1".into()),
            ..SourceTicket::default()
        };
        let short = b.comment(&ticket, &source_comment("hi", true), &target(1));
        assert_eq!(short.len(), 1);
        assert_eq!(short[0].op.source, "TIC1/comments.jsonl:3");
        assert_eq!(short[0].op.ticket_id, Some(Uuid::from_u128(1)));
        let long = "y".repeat(body::MAX_CHARS);
        let parts = b.comment(&ticket, &source_comment(&long, true), &target(1));
        let specs: Vec<(&str, bool, bool)> = parts
            .iter()
            .map(|p| match &p.op.kind {
                OpKind::Comment(c) => (p.op.source.as_str(), c.is_internal, c.is_resolution),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            specs,
            [
                ("TIC1/comments.jsonl:3 (part 1/2)", true, false),
                ("TIC1/comments.jsonl:3 (part 2/2)", true, true),
            ],
            "internal on both, the resolution on the text"
        );
        assert_eq!(
            parts[0].op.op_key, short[0].op.op_key,
            "part 1 keeps the key"
        );
        assert_ne!(parts[1].op.op_key, parts[0].op.op_key);
        let id = Uuid::from_u128(5).to_string();
        assert_eq!(
            parts[1].op.extra.metadata,
            [(METADATA_SOURCE_COMMENT.to_string(), id)]
        );
        let damaged = SourceComment {
            source: "TIC1/comments.jsonl:4".into(),
            comment: Err("backup line damaged: eof".into()),
        };
        let blocked = b.comment(&ticket, &damaged, &target(1));
        assert_eq!(
            blocked[0].op.blocked.as_deref(),
            Some("backup line damaged: eof")
        );
    }
}
