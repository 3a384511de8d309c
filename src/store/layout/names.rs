//! Untrusted names from the server turned into safe file and folder names (used by the
//! layout, for every store).
//!
//! A name is percent-decoded, split on `/` and `\` (empty, `.` and `..` parts are dropped and
//! the rest joined with `_`), stripped of control characters and of characters Windows
//! refuses, trimmed of leading dots and spaces and trailing dots and spaces, kept clear of the
//! names Windows reserves (`CON`, `NUL`, `COM1`...) and capped at [`MAX_NAME_BYTES`] bytes with
//! its extension kept. What is left is always a single plain path component.

use percent_encoding::percent_decode_str;
use std::collections::HashSet;
use uuid::Uuid;

/// Longest file name written, in bytes (most file systems allow 255).
pub const MAX_NAME_BYTES: usize = 200;

/// Longest extension kept whole when a name is shortened.
const MAX_EXT_BYTES: usize = 24;

/// Names Windows reserves, with or without an extension.
const RESERVED: [&str; 4] = ["CON", "PRN", "AUX", "NUL"];

/// A safe single-component file name for a document (or a ticket folder).
///
/// `fallback_id` names it `document-<id>` when nothing usable is left.
pub fn sanitize(raw: &str, fallback_id: Uuid) -> String {
    let name = clean(raw);
    if name.is_empty() {
        format!("document-{fallback_id}")
    } else {
        name
    }
}

/// Percent-decode and clean; may return an empty string. The result is canonical:
/// [`is_canonical`] holds for every non-empty result.
pub(crate) fn clean(raw: &str) -> String {
    let decoded = percent_decode_str(raw).decode_utf8_lossy();
    let mut name = clean_once(&decoded);
    // One pass can leave something a second pass changes (whitespace uncovered by a removed
    // control character); a few passes reach the fixed point.
    for _ in 0..4 {
        let again = clean_once(&name);
        if again == name {
            break;
        }
        name = again;
    }
    name
}

/// Whether `name` is a plain single component exactly as [`clean`] writes it (no decoding:
/// a `%` in a kept name stays). Manifest paths must consist of such parts.
pub(crate) fn is_canonical(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && clean_once(name) == name
}

/// One cleaning pass over an already decoded name.
fn clean_once(decoded: &str) -> String {
    let joined = decoded
        .split(['/', '\\'])
        .map(str::trim)
        .filter(|part| !part.is_empty() && *part != "." && *part != "..")
        .collect::<Vec<_>>()
        .join("_");
    let kept: String = joined
        .chars()
        .filter(|c| !c.is_control() && !is_format_trick(*c))
        .map(|c| match c {
            '<' | '>' | ':' | '"' | '|' | '?' | '*' => '_',
            c => c,
        })
        .collect();
    let trimmed = trim_ends(kept.trim());
    let unreserved = if is_reserved(trimmed) {
        format!("_{trimmed}")
    } else {
        trimmed.to_string()
    };
    let capped = cap_bytes(&unreserved, MAX_NAME_BYTES);
    trim_ends(capped.trim()).to_string()
}

/// Bidirectional overrides and zero-width characters that disguise a name.
fn is_format_trick(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}'
    )
}

/// No leading dots or spaces (no hidden files, no clash with our temp files), no trailing
/// dots or spaces (Windows drops them).
fn trim_ends(s: &str) -> &str {
    s.trim_start_matches(['.', ' '])
        .trim_end_matches(['.', ' '])
}

/// `CON`, `con.txt`, `Com1.tar.gz`, `LPT9`: reserved on Windows whatever the extension.
fn is_reserved(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or("").trim_end();
    let upper = stem.to_ascii_uppercase();
    if RESERVED.contains(&upper.as_str()) {
        return true;
    }
    let b = upper.as_bytes();
    b.len() == 4
        && (upper.starts_with("COM") || upper.starts_with("LPT"))
        && (b'1'..=b'9').contains(&b[3])
}

/// Shorten to at most `max` bytes at a char boundary, keeping a short extension.
fn cap_bytes(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let (stem, ext) = split_ext(name);
    if !ext.is_empty() && ext.len() < MAX_EXT_BYTES && ext.len() + 1 < max {
        let stem = truncate_at_char(stem, max - ext.len() - 1);
        format!("{stem}.{ext}")
    } else {
        truncate_at_char(name, max).to_string()
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends at a char boundary.
fn truncate_at_char(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `("report", "pdf")` for `report.pdf`; no extension for `.bashrc`-like or dotless names.
fn split_ext(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 && i + 1 < name.len() => (&name[..i], &name[i + 1..]),
        _ => (name, ""),
    }
}

/// `report-1a2b3c4d.pdf`: the name with (part of) the document id before the extension.
pub fn with_id_suffix(name: &str, id: Uuid, full: bool) -> String {
    let simple = id.simple().to_string();
    let tag = if full { &simple[..] } else { &simple[..8] };
    let (stem, ext) = split_ext(name);
    let room = MAX_NAME_BYTES.saturating_sub(tag.len() + 1 + ext.len() + 1);
    let stem = truncate_at_char(stem, room);
    if ext.is_empty() {
        format!("{stem}-{tag}")
    } else {
        format!("{stem}-{tag}.{ext}")
    }
}

/// Names already used in one folder, compared case-insensitively (as on Windows and macOS).
#[derive(Debug, Default)]
pub struct FolderNames {
    taken: HashSet<String>,
}

impl FolderNames {
    /// A folder where `reserved` names (such as `comments.jsonl`) are never given out.
    pub fn with_reserved<'a>(reserved: impl IntoIterator<Item = &'a str>) -> Self {
        let mut f = FolderNames::default();
        for r in reserved {
            f.taken.insert(r.to_lowercase());
        }
        f
    }

    /// Mark a name as used (one kept from an earlier run).
    pub fn take(&mut self, name: &str) -> bool {
        self.taken.insert(name.to_lowercase())
    }

    /// Whether a name is already used.
    pub fn is_taken(&self, name: &str) -> bool {
        self.taken.contains(&name.to_lowercase())
    }

    /// Claim `name`, or `name-<id8>.ext`, or `name-<id>.ext` when that clashes too.
    pub fn claim(&mut self, name: &str, id: Uuid) -> String {
        if self.take(name) {
            return name.to_string();
        }
        let short = with_id_suffix(name, id, false);
        if self.take(&short) {
            return short;
        }
        let full = with_id_suffix(name, id, true);
        self.take(&full);
        full
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> Uuid {
        Uuid::parse_str("07c08eec-6506-4414-84c0-86714e902383").unwrap()
    }

    fn assert_single_component(name: &str) {
        assert!(!name.is_empty());
        assert!(!name.contains('/') && !name.contains('\\'), "{name:?}");
        assert!(name != "." && name != "..", "{name:?}");
        assert!(!name.starts_with('.'), "{name:?}");
        assert!(!name.chars().any(char::is_control), "{name:?}");
        assert!(name.len() <= MAX_NAME_BYTES, "{name:?}");
        let p = std::path::Path::new(name);
        assert_eq!(p.components().count(), 1, "{name:?}");
    }

    #[test]
    fn traversal_and_separators_are_removed() {
        assert_eq!(sanitize("../../evil.txt", id()), "evil.txt");
        assert_eq!(sanitize("a/b.txt", id()), "a_b.txt");
        assert_eq!(sanitize("a\\b.txt", id()), "a_b.txt");
        assert_eq!(sanitize("/etc/passwd", id()), "etc_passwd");
        assert_eq!(sanitize("..\\..\\win.ini", id()), "win.ini");
        assert_eq!(sanitize("%2e%2e%2fevil.txt", id()), "evil.txt");
        assert_eq!(sanitize("..", id()), format!("document-{}", id()));
        for raw in ["../../evil.txt", "a/b.txt", "./.", "/", "....//....//x"] {
            assert_single_component(&sanitize(raw, id()));
        }
    }

    #[test]
    fn percent_encoded_names_are_decoded() {
        assert_eq!(
            sanitize("my%20report%20(v2)%20%C3%A9.pdf", id()),
            "my report (v2) é.pdf"
        );
        assert_eq!(sanitize("Übersicht März.xlsx", id()), "Übersicht März.xlsx");
        assert_eq!(sanitize("報告書.pdf", id()), "報告書.pdf");
    }

    #[test]
    fn windows_reserved_names_get_a_prefix() {
        assert_eq!(sanitize("CON", id()), "_CON");
        assert_eq!(sanitize("con.txt", id()), "_con.txt");
        assert_eq!(sanitize("Com1.tar.gz", id()), "_Com1.tar.gz");
        assert_eq!(sanitize("lpt9", id()), "_lpt9");
        assert_eq!(sanitize("nul .txt", id()), "_nul .txt");
        assert_eq!(sanitize("console.txt", id()), "console.txt");
        assert_eq!(sanitize("COM10", id()), "COM10");
        assert_eq!(sanitize("a<b>:c?.txt", id()), "a_b__c_.txt");
    }

    #[test]
    fn control_characters_and_trailing_dots_go() {
        assert_eq!(sanitize("bad\nname\r\t\u{0}.txt", id()), "badname.txt");
        assert_eq!(sanitize("x\u{7f}\u{1b}[31m.txt", id()), "x[31m.txt");
        assert_eq!(sanitize("gpj.\u{202E}exe", id()), "gpj.exe");
        assert_eq!(sanitize("name. . .", id()), "name");
        assert_eq!(sanitize("  .hidden", id()), "hidden");
        assert_eq!(sanitize("\u{1}\u{2}", id()), format!("document-{}", id()));
        assert_eq!(sanitize("", id()), format!("document-{}", id()));
    }

    #[test]
    fn long_names_are_capped_keeping_the_extension() {
        let long = format!("{}.pdf", "a".repeat(300));
        let s = sanitize(&long, id());
        assert_eq!(s.len(), MAX_NAME_BYTES);
        assert!(s.ends_with(".pdf"));
        let wide = format!("{}.txt", "é".repeat(150));
        let s = sanitize(&wide, id());
        assert!(s.len() <= MAX_NAME_BYTES && s.ends_with(".txt"), "{s}");
        assert!(s.starts_with('é'));
        let no_ext = "ü".repeat(300);
        let s = sanitize(&no_ext, id());
        assert!(s.len() <= MAX_NAME_BYTES && s.len() >= MAX_NAME_BYTES - 1);
        assert_single_component(&s);
    }

    #[test]
    fn clashing_names_get_the_document_id() {
        let mut f = FolderNames::with_reserved(["comments.jsonl"]);
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(f.claim("report.pdf", a), "report.pdf");
        let second = f.claim("Report.PDF", b);
        assert_eq!(
            second,
            format!("Report-{}.PDF", &b.simple().to_string()[..8])
        );
        let third = f.claim("comments.jsonl", c);
        assert_eq!(
            third,
            format!("comments-{}.jsonl", &c.simple().to_string()[..8])
        );
        let long = format!("{}.pdf", "x".repeat(199));
        let capped = sanitize(&long, a);
        assert_eq!(f.claim(&capped, a), capped);
        let suffixed = f.claim(&capped, b);
        assert!(suffixed.len() <= MAX_NAME_BYTES && suffixed.ends_with(".pdf"));
        assert_ne!(suffixed, capped);
    }

    #[test]
    fn cleaned_names_are_canonical_and_other_forms_are_not() {
        for raw in [
            "report.pdf",
            "\u{1}\u{3000}b.txt",
            "100%2541.txt",
            "../../evil.txt",
            "CON",
            "a\u{3000}\u{1}",
        ] {
            let c = clean(raw);
            assert!(is_canonical(&c), "{raw:?} -> {c:?}");
        }
        assert_eq!(clean("100%2541.txt"), "100%41.txt");
        for bad in [
            "..", ".", "", "a\\b", "CON", " x", "x.", ".hidden", "a:b", "\u{1}x",
        ] {
            assert!(!is_canonical(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_short_suffix_that_clashes_falls_back_to_the_full_id() {
        let a = Uuid::new_v4();
        let mut f = FolderNames::default();
        f.take("x.txt");
        f.take(&with_id_suffix("x.txt", a, false));
        assert_eq!(f.claim("x.txt", a), format!("x-{}.txt", a.simple()));
    }
}
