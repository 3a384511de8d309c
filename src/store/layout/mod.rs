//! The layout of a backup, the same in every store: `<ticket folder>/<document name>` keys,
//! the names of the backup's own files, the folder name of a ticket, the names new documents
//! get (sanitised by [`names`], clashes suffixed with the document id) and the check that a
//! manifest path is one a backup could have written.
//!
//! Keys are `/`-separated and relative to the backup's root: `TIC001000/report.pdf`,
//! `manifest.csv`. A store maps them onto its own namespace (a folder, a bucket prefix).

pub mod names;

use names::FolderNames;
use std::collections::HashMap;
use uuid::Uuid;

/// The manifest: one row per backed-up document.
pub const MANIFEST_FILE: &str = "manifest.csv";
/// The manifest's journal: one row per document completed (or removed) since the manifest was
/// last written; folded into the manifest at the end of every run.
pub const JOURNAL_FILE: &str = "manifest.journal.csv";
/// All comments, one CSV (`--comments`).
pub const COMMENTS_CSV: &str = "comments.csv";
/// Per-ticket comment file (`--comments`).
pub const COMMENTS_JSONL: &str = "comments.jsonl";
/// The run's lock.
pub const LOCK_FILE: &str = ".alga-batch.lock";
/// Where an interrupted pass continues.
pub const RESUME_FILE: &str = ".alga-batch-resume.json";
/// Prefix of temporary objects (never a sanitised name: those have no leading dot).
pub const TEMP_PREFIX: &str = ".alga-batch-";
/// Object storage, which cannot append: the manifest's journal as one small object per batch
/// of changes under this folder (`<run>/<sequence>.csv`), folded into the manifest at the end
/// of every run.
pub const JOURNAL_DIR: &str = ".alga-batch-journal";
/// Object storage: one small object per multipart upload in progress (its key and upload id),
/// so the next run can abort what a killed run left.
pub const UPLOADS_DIR: &str = ".alga-batch-uploads";

/// Names at the root that a ticket folder must never take.
pub const ROOT_RESERVED: [&str; 5] = [MANIFEST_FILE, JOURNAL_FILE, COMMENTS_CSV, LOCK_FILE, "logs"];

/// `folder/name`.
pub fn key(folder: &str, name: &str) -> String {
    format!("{folder}/{name}")
}

/// The folder part of `folder/name` (empty for a root key).
pub fn folder_of(key: &str) -> &str {
    key.rsplit_once('/').map_or("", |(f, _)| f)
}

/// The name part of `folder/name`.
pub fn name_of(key: &str) -> &str {
    key.rsplit_once('/').map_or(key, |(_, n)| n)
}

/// The folder of a ticket: its number as a safe name; the id when the number is missing,
/// unusable or one of the root's own names; the cleaned number with part of the id when
/// cleaning changed it (a changed number could meet another ticket's folder).
pub fn folder_name(ticket_number: Option<&str>, ticket_id: Uuid) -> String {
    let raw = ticket_number.unwrap_or("");
    let name = names::clean(raw);
    let clash = ROOT_RESERVED.iter().any(|r| r.eq_ignore_ascii_case(&name));
    if name.is_empty() || clash {
        ticket_id.to_string()
    } else if name != raw {
        names::with_id_suffix(&name, ticket_id, false)
    } else {
        name
    }
}

/// Where each listed document (`(id, name as the server gives it)`) goes: its manifest key
/// when known (`known`: document id -> the path of its manifest row), else a fresh unique name in `folder` (assigned in document-id order, so reruns
/// agree). A new name never takes the name of any manifest row of the ticket (a gone
/// document's kept file included) nor of anything already in the folder (`present`).
/// `comments.jsonl` is never given to a document, with or without `--comments` (a later run
/// may export comments).
pub fn plan_paths(
    folder: &str,
    docs: &[(Uuid, &str)],
    known: &HashMap<Uuid, &str>,
    present: &[String],
) -> Vec<String> {
    let mut names = FolderNames::with_reserved([COMMENTS_JSONL]);
    for path in known.values() {
        names.take(name_of(path));
    }
    for p in present {
        names.take(p);
    }
    let mut order: Vec<usize> = (0..docs.len()).collect();
    order.sort_by_key(|&i| docs[i].0);
    let mut out = vec![String::new(); docs.len()];
    for i in order {
        let (id, raw) = docs[i];
        out[i] = match known.get(&id) {
            Some(path) => (*path).to_string(),
            None => key(folder, &names.claim(&names::sanitize(raw, id), id)),
        };
    }
    out
}

/// Whether a manifest path is one a backup could have written: `<folder>/<file>`, both parts
/// plain names in the sanitizer's canonical form, the folder not one of the root's own files
/// and the file not the comments export. Anything else could point outside the backup
/// (`../x`, `/etc/x`).
pub fn is_safe_path(path: &str) -> bool {
    let mut parts = path.split('/');
    let (Some(folder), Some(file), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    names::is_canonical(folder)
        && names::is_canonical(file)
        && !ROOT_RESERVED.iter().any(|r| r.eq_ignore_ascii_case(folder))
        && !file.eq_ignore_ascii_case(COMMENTS_JSONL)
}

/// The key that makes two paths the same object (case-insensitive file systems included).
pub fn path_key(path: &str) -> String {
    path.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_ticket_numbers_and_reserved_root_names_fall_back_to_the_id() {
        let id = Uuid::from_u128(7);
        let f = |n: &str| folder_name(Some(n), id);
        assert_eq!(f("TIC001000"), "TIC001000");
        assert_eq!(f("../x"), "x-00000000");
        assert_eq!(f("TIC 7"), "TIC 7");
        assert_eq!(f("manifest.csv"), id.to_string());
        assert_eq!(f("MANIFEST.journal.csv"), id.to_string());
        assert_eq!(f(".."), id.to_string());
        assert_eq!(folder_name(None, id), id.to_string());
    }

    #[test]
    fn paths_are_unique_stable_and_inside_the_folder() {
        let docs = [
            (Uuid::from_u128(3), "a.txt"),
            (Uuid::from_u128(1), "A.TXT"),
            (Uuid::from_u128(2), "../../a.txt"),
            (Uuid::from_u128(4), "comments.jsonl"),
        ];
        let p = plan_paths("TIC1", &docs, &HashMap::new(), &[]);
        assert_eq!(p[1], "TIC1/A.TXT", "lowest id gets the plain name");
        assert_eq!(p, plan_paths("TIC1", &docs, &HashMap::new(), &[]));
        let unique: std::collections::HashSet<String> = p.iter().map(|x| path_key(x)).collect();
        assert_eq!(unique.len(), 4);
        assert!(p.iter().all(|x| folder_of(x) == "TIC1" && is_safe_path(x)));
        assert_ne!(p[3], "TIC1/comments.jsonl");
        let taken = plan_paths("TIC1", &docs[..1], &HashMap::new(), &["A.txt".into()]);
        assert_ne!(
            taken[0], "TIC1/a.txt",
            "a file already there keeps its name"
        );
    }

    #[test]
    fn only_plain_two_part_paths_are_safe() {
        for bad in [
            "../pwned.txt",
            "/etc/passwd",
            "TIC1/../../x",
            "TIC1//x",
            "TIC1/./x",
            "x.txt",
            "TIC1/a/b.txt",
            "TIC1\\..\\x",
            "manifest.csv/x",
            "manifest.journal.csv/x",
            "TIC1/comments.jsonl",
            "TIC1/ x",
        ] {
            assert!(!is_safe_path(bad), "{bad}");
        }
        assert!(is_safe_path("TIC001000/report-1a2b3c4d.pdf"));
        assert!(is_safe_path("x-00000000/100%41.txt"));
        assert_eq!(name_of("a/b.txt"), "b.txt");
        assert_eq!(folder_of("manifest.csv"), "");
    }
}
