//! The text of a restored comment: a template with `{placeholder}`s, `{{` and `}}` for literal
//! braces, and `{text}` exactly once (the original text, inserted unchanged). Rendering gives
//! the text before and after `{text}`, so that `body.rs` can put the original between them in
//! plain-text or BlockNote form.

use crate::api::Comment;

/// The default: a short header with the original author and time, then the original text.
pub(crate) const DEFAULT_TEMPLATE: &str = "Originally posted by {author} on {date}\n\n{text}";

/// Placeholders and what they stand for (for `--help` and error messages).
pub(crate) const PLACEHOLDERS: [(&str, &str); 7] = [
    (
        "text",
        "the original text, unchanged (required, exactly once)",
    ),
    ("author", "the original author's name (else their user id)"),
    ("author_id", "the original author's user id"),
    ("date", "when it was written, as 2026-01-05 09:01 UTC"),
    ("created_at", "when it was written, as backed up (ISO 8601)"),
    ("ticket", "the backed-up ticket number"),
    ("comment_id", "the backed-up comment id"),
];

/// A compiled template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Field(usize),
    Text,
}

/// What a rendered template holds around the original text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rendered {
    /// Everything before `{text}`.
    pub(crate) before: String,
    /// Everything after it.
    pub(crate) after: String,
}

impl Template {
    /// Compile `raw`; every problem at once, each a lowercase sentence.
    pub(crate) fn compile(raw: &str) -> Result<Template, Vec<String>> {
        let mut pieces = Vec::new();
        let mut errors = Vec::new();
        let mut literal = String::new();
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.next_if_eq(&'{').is_some() => literal.push('{'),
                '}' if chars.next_if_eq(&'}').is_some() => literal.push('}'),
                '}' => errors.push("stray `}` (write `}}` for a literal brace)".to_string()),
                '{' => {
                    let (mut name, mut closed) = (String::new(), false);
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    match placeholder(&name) {
                        Some(p) if closed => pieces.push(p),
                        _ if !closed => errors.push(format!("unclosed `{{{name}`")),
                        _ => errors.push(unknown(&name)),
                    }
                }
                c => literal.push(c),
            }
        }
        pieces.push(Piece::Literal(literal));
        let texts = pieces.iter().filter(|p| **p == Piece::Text).count();
        if texts != 1 {
            errors.push(format!(
                "the template must hold {{text}} exactly once (the original text), not {texts} times"
            ));
        }
        if errors.is_empty() {
            Ok(Template { pieces })
        } else {
            Err(errors)
        }
    }

    /// The template filled in for `c` of ticket `ticket`.
    pub(crate) fn render(&self, c: &Comment, ticket: &str) -> Rendered {
        let values = values(c, ticket);
        let mut out = Rendered {
            before: String::new(),
            after: String::new(),
        };
        let mut seen_text = false;
        for p in &self.pieces {
            let dest = if seen_text {
                &mut out.after
            } else {
                &mut out.before
            };
            match p {
                Piece::Literal(s) => dest.push_str(s),
                Piece::Field(i) => dest.push_str(&values[*i]),
                Piece::Text => seen_text = true,
            }
        }
        out
    }
}

/// The piece a placeholder name stands for.
fn placeholder(name: &str) -> Option<Piece> {
    let name = name.trim();
    if name == "text" {
        return Some(Piece::Text);
    }
    FIELDS.iter().position(|f| *f == name).map(Piece::Field)
}

/// Placeholders other than `text`, in the order [`values`] fills them.
const FIELDS: [&str; 6] = [
    "author",
    "author_id",
    "date",
    "created_at",
    "ticket",
    "comment_id",
];

fn unknown(name: &str) -> String {
    let known: Vec<String> = PLACEHOLDERS
        .iter()
        .map(|(n, _)| format!("{{{n}}}"))
        .collect();
    if name.is_empty() {
        return format!(
            "unclosed or empty `{{` (placeholders: {})",
            known.join(", ")
        );
    }
    format!(
        "unknown placeholder `{{{name}}}` (placeholders: {})",
        known.join(", ")
    )
}

/// The values of [`FIELDS`] for a comment.
fn values(c: &Comment, ticket: &str) -> [String; 6] {
    let extra_str = |k: &str| {
        c.extra
            .get(k)
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let author_id = c
        .user_id
        .map(|u| u.to_string())
        .or_else(|| extra_str("created_by"))
        .unwrap_or_default();
    let author = extra_str("created_by_name")
        .or_else(|| extra_str("author_contact_name"))
        .or_else(|| (!author_id.is_empty()).then(|| author_id.clone()))
        .unwrap_or_else(|| "an unknown author".to_string());
    let created_at = c.created_at.clone().unwrap_or_default();
    let date = match chrono::DateTime::parse_from_rfc3339(&created_at) {
        Ok(t) => t
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%d %H:%M UTC")
            .to_string(),
        Err(_) if created_at.is_empty() => "an unknown date".to_string(),
        Err(_) => created_at.clone(),
    };
    [
        author,
        author_id,
        date,
        created_at,
        ticket.to_string(),
        c.comment_id.to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comment(extra: serde_json::Value) -> Comment {
        let mut v = serde_json::json!({
            "comment_id": "0b7c7d9e-30a2-4c59-8a55-3a1c3c2b1f10",
            "ticket_id": "7aea3e18-2606-4297-831c-3766e602e9b6",
            "comment_text": "Hello {not a placeholder}",
            "created_at": "2026-01-05T09:01:30.123Z",
            "user_id": "5aa73d90-db8b-4cba-a367-db1ff89c43fd",
        });
        if let (Some(m), serde_json::Value::Object(e)) = (v.as_object_mut(), extra) {
            m.extend(e);
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_default_puts_author_and_date_before_the_text() {
        let t = Template::compile(DEFAULT_TEMPLATE).unwrap();
        let c = comment(serde_json::json!({"created_by_name": "Glinda Good"}));
        let r = t.render(&c, "TIC001000");
        assert_eq!(
            r.before,
            "Originally posted by Glinda Good on 2026-01-05 09:01 UTC\n\n"
        );
        assert_eq!(r.after, "");
    }

    #[test]
    fn every_placeholder_renders_and_braces_escape() {
        let raw =
            "{{{author}}} {author_id} {date} {created_at} {ticket} {comment_id}: {text} [end]";
        let t = Template::compile(raw).unwrap();
        let r = t.render(&comment(serde_json::json!({})), "TIC1");
        assert_eq!(
            r.before,
            "{5aa73d90-db8b-4cba-a367-db1ff89c43fd} 5aa73d90-db8b-4cba-a367-db1ff89c43fd \
             2026-01-05 09:01 UTC 2026-01-05T09:01:30.123Z TIC1 \
             0b7c7d9e-30a2-4c59-8a55-3a1c3c2b1f10: "
        );
        assert_eq!(r.after, " [end]");
    }

    #[test]
    fn missing_author_and_date_read_as_unknown() {
        let c: Comment = serde_json::from_value(serde_json::json!({
            "comment_id": "0b7c7d9e-30a2-4c59-8a55-3a1c3c2b1f10",
            "ticket_id": "7aea3e18-2606-4297-831c-3766e602e9b6",
        }))
        .unwrap();
        let t = Template::compile("{author} {date}|{text}").unwrap();
        assert_eq!(
            t.render(&c, "T").before,
            "an unknown author an unknown date|"
        );
    }

    #[test]
    fn bad_templates_report_every_problem() {
        let errs = Template::compile("{autor} } {text} {text}").unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(
            errs[0].contains("unknown placeholder `{autor}`"),
            "{errs:?}"
        );
        assert!(errs[1].contains("stray `}`"), "{errs:?}");
        assert!(errs[2].contains("exactly once"), "{errs:?}");
        let errs = Template::compile("by {author}").unwrap_err();
        assert!(errs[0].contains("not 0 times"), "{errs:?}");
        assert!(Template::compile("{text").is_err());
        assert!(
            Template::compile("{ text }").is_ok(),
            "spaces inside are allowed"
        );
    }
}
