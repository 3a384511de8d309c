//! The comments that restore one backed-up comment, within the server's limit of 5,000 visible
//! characters (UTF-16 units of the trimmed text; for BlockNote JSON, of its text runs).
//!
//! - The rendered template with the original text in it fits: one comment.
//! - It does not, but the original text alone fits: two comments, in order. The first is the
//!   template with [`POINTER`] in place of the text, the second the original text, unchanged
//!   (the header gets its own part, so the text is never cut).
//! - The original text alone is over the limit (a server that allowed it): the header part,
//!   then the text split into numbered parts as imports split long comments (cut at paragraph
//!   breaks, lines or spaces). BlockNote JSON cannot be cut: such a comment is refused.
//!
//! A BlockNote original (a JSON array of blocks, as the web editor stores comments) stays
//! BlockNote: the header and trailer become paragraph blocks around its blocks, which are
//! copied byte for byte, so the comment still renders as it did.

use super::template::Rendered;
use crate::job::{server_len, split_comment};
use serde_json::Value;

/// Visible characters the server accepts in one comment.
pub(crate) const MAX_CHARS: usize = 5000;

/// What stands in for the text in a header that gets its own comment.
pub(crate) const POINTER: &str = "(the original text follows in the next comment)";

/// The comment texts for `text` rendered with `r`, in posting order; why not, when it cannot
/// be posted at all.
pub(crate) fn parts(r: &Rendered, text: &str) -> Result<Vec<String>, String> {
    match blocks(text) {
        Some(inner) => blocknote_parts(r, text, inner),
        None => plain_parts(r, text),
    }
}

/// Plain text: one comment, or the header then the text (split only if it alone is too long).
fn plain_parts(r: &Rendered, text: &str) -> Result<Vec<String>, String> {
    let full = format!("{}{text}{}", r.before, r.after);
    if server_len(&full) == 0 {
        return Err("the backed-up comment has no text, and the template adds none".into());
    }
    if server_len(&full) <= MAX_CHARS {
        return Ok(vec![full]);
    }
    let mut out = header_parts(r);
    if server_len(text) <= MAX_CHARS {
        out.push(text.to_string());
    } else {
        out.extend(split_comment(text.trim(), MAX_CHARS));
    }
    Ok(out)
}

/// BlockNote: the header and trailer as paragraphs around the original blocks, or the header
/// on its own then the original unchanged.
fn blocknote_parts(r: &Rendered, text: &str, inner: &str) -> Result<Vec<String>, String> {
    let own = visible_len(text);
    let total = own + server_len(&r.before) + server_len(&r.after);
    if total <= MAX_CHARS {
        let mut blocks = paragraphs(&r.before);
        if !inner.trim().is_empty() {
            blocks.push(inner.to_string());
        }
        blocks.extend(paragraphs(&r.after));
        return Ok(vec![format!("[{}]", blocks.join(","))]);
    }
    if own > MAX_CHARS {
        return Err(format!(
            "the backed-up comment has {own} visible characters in BlockNote form, over the \
             server's limit of {MAX_CHARS}, and BlockNote cannot be split"
        ));
    }
    let mut out = header_parts(r);
    out.push(text.to_string());
    Ok(out)
}

/// The template with [`POINTER`] for the text, split if a very long template needs it.
fn header_parts(r: &Rendered) -> Vec<String> {
    let header = format!("{}{POINTER}{}", r.before, r.after);
    split_comment(header.trim(), MAX_CHARS)
}

/// One paragraph block per non-blank line of `s`.
fn paragraphs(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::json!({
                "type": "paragraph",
                "content": [{"type": "text", "text": l, "styles": {}}]
            })
            .to_string()
        })
        .collect()
}

/// The text between the outer brackets when `text` is BlockNote JSON (a non-empty array of
/// objects that each have a `type`).
fn blocks(text: &str) -> Option<&str> {
    let t = text.trim();
    if !t.starts_with('[') {
        return None;
    }
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(t) else {
        return None;
    };
    let all_blocks = !items.is_empty() && items.iter().all(|b| b.get("type").is_some());
    all_blocks.then(|| &t[1..t.len() - 1])
}

/// The visible length as the server counts it: BlockNote text runs, else the trimmed text;
/// UTF-16 units.
pub(crate) fn visible_len(note: &str) -> usize {
    fn collect(v: &Value, out: &mut String) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
            Value::Object(m) => {
                if let Some(Value::String(t)) = m.get("text") {
                    out.push_str(t);
                }
                m.iter()
                    .filter(|(k, _)| *k != "text")
                    .for_each(|(_, v)| collect(v, out));
            }
            _ => {}
        }
    }
    match serde_json::from_str::<Value>(note) {
        Ok(v @ Value::Array(_)) => {
            let mut s = String::new();
            collect(&v, &mut s);
            server_len(&s)
        }
        _ => server_len(note),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Rendered {
        Rendered {
            before: "Originally posted by Ann on 2026-01-05 09:01 UTC\n\n".into(),
            after: String::new(),
        }
    }

    #[test]
    fn a_short_comment_is_one_part_with_the_text_unchanged() {
        let text = "  line one\n\n  indented {braces} \u{1F600}\n";
        let p = parts(&header(), text).unwrap();
        assert_eq!(p.len(), 1);
        assert!(p[0].ends_with(text), "{:?}", p[0]);
        assert!(p[0].starts_with("Originally posted by Ann"));
    }

    #[test]
    fn a_text_near_the_limit_gets_the_header_in_its_own_part() {
        let text = "x".repeat(MAX_CHARS - 10);
        let p = parts(&header(), &text).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            p[0],
            format!("Originally posted by Ann on 2026-01-05 09:01 UTC\n\n{POINTER}")
        );
        assert_eq!(p[1], text, "the text is its own comment, unchanged");
        let exact = "y".repeat(MAX_CHARS);
        assert_eq!(parts(&header(), &exact).unwrap()[1], exact);
    }

    #[test]
    fn a_text_over_the_limit_is_split_after_the_header() {
        let para = "word ".repeat(700);
        let text = format!("{}\n\n{}", para.trim(), para.trim());
        let p = parts(&header(), &text).unwrap();
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].ends_with(POINTER));
        assert!(p[1].starts_with("(part 1/2)\n") && p[2].starts_with("(part 2/2)\n"));
        assert!(p.iter().all(|x| server_len(x) <= MAX_CHARS));
    }

    #[test]
    fn nothing_to_post_is_refused() {
        let empty = Rendered {
            before: String::new(),
            after: " ".into(),
        };
        assert!(parts(&empty, "  ").is_err());
        assert_eq!(parts(&header(), "").unwrap().len(), 1);
    }

    #[test]
    fn blocknote_stays_blocknote_with_its_blocks_byte_for_byte() {
        let note = r#"[{"id":"a1","type":"paragraph","props":{},"content":[{"type":"text","text":"Fixed  it","styles":{"bold":true}}],"children":[]}]"#;
        let p = parts(&header(), note).unwrap();
        assert_eq!(p.len(), 1);
        let v: Value = serde_json::from_str(&p[0]).expect("still JSON");
        let blocks = v.as_array().unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(
            blocks[0]["content"][0]["text"],
            "Originally posted by Ann on 2026-01-05 09:01 UTC"
        );
        assert!(p[0].contains(&note[1..note.len() - 1]), "copied unchanged");
        assert_eq!(
            visible_len(&p[0]),
            visible_len(note) + server_len("Originally posted by Ann on 2026-01-05 09:01 UTC")
        );
    }

    #[test]
    fn long_blocknote_gets_its_own_part_or_is_refused() {
        let block = |n: usize| {
            format!(
                r#"[{{"type":"paragraph","content":[{{"type":"text","text":"{}"}}]}}]"#,
                "z".repeat(n)
            )
        };
        let near = block(MAX_CHARS - 5);
        let p = parts(&header(), &near).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1], near);
        let err = parts(&header(), &block(MAX_CHARS + 1)).unwrap_err();
        assert!(err.contains("cannot be split"), "{err}");
    }

    #[test]
    fn text_that_only_looks_like_json_stays_plain() {
        for t in ["[1, 2]", "[not json", "[]", "[{\"no\":\"type\"}]"] {
            assert_eq!(blocks(t), None, "{t}");
            let p = parts(&header(), t).unwrap();
            assert!(p[0].ends_with(t));
        }
    }
}
