//! Comment templates for source CSVs: `{Column}` placeholders name source columns;
//! `{{` and `}}` are literal braces.

use super::problems::did_you_mean;

/// A template compiled against a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Column(usize),
}

impl Template {
    /// Compile `template` against `header`: every error at once (unknown placeholder named,
    /// with a suggestion; unclosed `{`; stray `}`).
    pub(crate) fn compile(template: &str, header: &[String]) -> Result<Template, Vec<String>> {
        let mut parts = Vec::new();
        let mut errors = Vec::new();
        let mut text = String::new();
        let mut chars = template.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.next_if_eq(&'{').is_some() => text.push('{'),
                '}' if chars.next_if_eq(&'}').is_some() => text.push('}'),
                '}' => errors.push("stray `}` in template (write `}}` for a literal brace)".into()),
                '{' => {
                    let (name, closed) = placeholder(&mut chars);
                    if !closed {
                        errors.push(format!("unclosed `{{{name}` in template"));
                        break;
                    }
                    match find_column(&name, header) {
                        Some(i) => {
                            parts.push(Part::Text(std::mem::take(&mut text)));
                            parts.push(Part::Column(i));
                        }
                        None => errors.push(format!(
                            "unknown placeholder `{{{name}}}`: no such column in the source{}",
                            did_you_mean(&name, header.iter().map(String::as_str))
                        )),
                    }
                }
                c => text.push(c),
            }
        }
        parts.push(Part::Text(text));
        if errors.is_empty() {
            Ok(Template { parts })
        } else {
            Err(errors)
        }
    }

    /// A template that is just one column's value.
    pub(crate) fn column(index: usize) -> Template {
        Template {
            parts: vec![Part::Column(index)],
        }
    }

    /// Fill the placeholders from a record's fields (missing fields are empty).
    pub(crate) fn render(&self, fields: &[String]) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Column(i) => out.push_str(fields.get(*i).map_or("", String::as_str)),
            }
        }
        out
    }
}

/// Read a placeholder name up to its `}`; whether the `}` was found.
fn placeholder(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> (String, bool) {
    let mut name = String::new();
    for c in chars.by_ref() {
        if c == '}' {
            return (name, true);
        }
        name.push(c);
    }
    (name, false)
}

/// Exact column name, else the only case-insensitive match.
pub(crate) fn find_column(name: &str, header: &[String]) -> Option<usize> {
    let name = name.trim();
    if let Some(i) = header.iter().position(|h| h.trim() == name) {
        return Some(i);
    }
    let mut matches = header
        .iter()
        .enumerate()
        .filter(|(_, h)| h.trim().eq_ignore_ascii_case(name));
    match (matches.next(), matches.next()) {
        (Some((i, _)), None) => Some(i),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Vec<String> {
        ["Author", "Created", "Body"].map(String::from).to_vec()
    }

    #[test]
    fn renders_placeholders_and_escaped_braces() {
        let t =
            Template::compile("{Author} wrote on {created}:\n\n{Body} {{ok}}", &header()).unwrap();
        let fields = ["Ann", "2024-01-02", "Hi, \"there\""].map(String::from);
        assert_eq!(
            t.render(&fields),
            "Ann wrote on 2024-01-02:\n\nHi, \"there\" {ok}"
        );
    }

    #[test]
    fn unknown_placeholder_is_named_with_suggestion() {
        let errors = Template::compile("{Autor}: {Body} {Nope}", &header()).unwrap_err();
        assert_eq!(errors.len(), 2);
        assert_eq!(
            errors[0],
            "unknown placeholder `{Autor}`: no such column in the source (did you mean `Author`?)"
        );
        assert!(errors[1].contains("`{Nope}`"));
    }

    #[test]
    fn unclosed_and_stray_braces() {
        assert!(Template::compile("{Body", &header()).unwrap_err()[0].contains("unclosed"));
        assert!(Template::compile("x } y", &header()).unwrap_err()[0].contains("stray"));
    }
}
