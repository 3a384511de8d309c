//! A strict RFC 4180 CSV reader that knows the physical line of every record and names
//! the line of every quoting error (the `csv` crate accepts stray quotes silently).

use std::iter::Peekable;
use std::str::Chars;

/// One record: the physical line where it starts, its fields, and whether it is damaged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    /// 1-based physical line where the record starts.
    pub(crate) line: usize,
    /// Field values (quotes removed, `""` unescaped).
    pub(crate) fields: Vec<String>,
    /// A quoting error was found in this record; its fields are not to be trusted.
    pub(crate) broken: bool,
}

/// A quoting error, with the physical line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QuoteError {
    /// 1-based physical line.
    pub(crate) line: usize,
    /// Lowercase message.
    pub(crate) message: String,
}

/// Parse CSV text: every record (blank lines skipped) and every quoting error.
/// With `comments`, a line starting with `#` (outside a quoted field) is skipped.
pub(crate) fn parse(text: &str, comments: bool) -> (Vec<Record>, Vec<QuoteError>) {
    let mut reader = Reader::new(text, comments);
    let records = reader.by_ref().collect();
    (records, reader.errors)
}

/// The records of CSV text one at a time (a large job is never held twice in memory); the
/// quoting errors met so far are in [`Reader::errors`].
pub(crate) struct Reader<'a> {
    chars: Peekable<Chars<'a>>,
    line: usize,
    comments: bool,
    /// Quoting errors met so far.
    pub(crate) errors: Vec<QuoteError>,
}

impl Iterator for Reader<'_> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        while let Some(&c) = self.chars.peek() {
            if self.comments && c == '#' {
                self.skip_line();
                continue;
            }
            let errors_before = self.errors.len();
            let line = self.line;
            let fields = self.record();
            let blank = fields.len() == 1 && fields[0].is_empty();
            if !blank {
                return Some(Record {
                    line,
                    fields,
                    broken: self.errors.len() > errors_before,
                });
            }
        }
        None
    }
}

impl<'a> Reader<'a> {
    /// A reader of `text` (a leading BOM is skipped); `comments`: skip `#` lines.
    pub(crate) fn new(text: &'a str, comments: bool) -> Reader<'a> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        Reader {
            chars: text.chars().peekable(),
            line: 1,
            comments,
            errors: Vec::new(),
        }
    }
}

impl Reader<'_> {
    /// Skip to just after the next line break.
    fn skip_line(&mut self) {
        while let Some(c) = self.chars.next() {
            if c == '\n' || (c == '\r' && self.chars.peek() != Some(&'\n')) {
                self.line += 1;
                return;
            }
        }
    }

    /// Read one record up to and including its line break.
    fn record(&mut self) -> Vec<String> {
        let mut fields = Vec::new();
        loop {
            let field = if self.chars.peek() == Some(&'"') {
                self.quoted()
            } else {
                self.unquoted()
            };
            fields.push(field);
            match self.chars.next() {
                Some(',') => continue,
                Some('\r') => {
                    self.chars.next_if_eq(&'\n');
                    self.line += 1;
                }
                Some('\n') => self.line += 1,
                _ => {}
            }
            return fields;
        }
    }

    /// An unquoted field; a quote inside it is an error.
    fn unquoted(&mut self) -> String {
        let mut field = String::new();
        let mut reported = false;
        while let Some(c) = self.chars.next_if(|c| !matches!(c, ',' | '\n' | '\r')) {
            if c == '"' && !reported {
                reported = true;
                self.error(
                    self.line,
                    "quote inside an unquoted field: quote the whole field and double inner quotes (\"\")",
                );
            }
            field.push(c);
        }
        field
    }

    /// A quoted field, from its opening quote to the separator or line break after it.
    fn quoted(&mut self) -> String {
        self.chars.next();
        let start = self.line;
        let mut field = String::new();
        loop {
            match self.chars.next() {
                None => {
                    self.error(
                        start,
                        format!("quoted field starting on line {start} is never closed"),
                    );
                    return field;
                }
                Some('"') if self.chars.next_if_eq(&'"').is_some() => field.push('"'),
                Some('"') => break,
                Some('\r') => {
                    if self.chars.peek() != Some(&'\n') {
                        self.line += 1;
                    }
                    field.push('\r');
                }
                Some('\n') => {
                    self.line += 1;
                    field.push('\n');
                }
                Some(c) => field.push(c),
            }
        }
        if let Some(&c) = self.chars.peek() {
            if !matches!(c, ',' | '\n' | '\r') {
                let message = if start == self.line {
                    format!("unexpected `{c}` after a closing quote: double quotes inside a quoted field (\"\")")
                } else {
                    format!(
                        "the quoted field starting on line {start} closes on line {} before `{c}`: \
                         double quotes inside a quoted field (\"\")",
                        self.line
                    )
                };
                self.error(start, message);
                field.push_str(&self.unquoted_rest());
            }
        }
        field
    }

    /// The rest of a damaged field, up to the next separator or line break.
    fn unquoted_rest(&mut self) -> String {
        let mut rest = String::new();
        while let Some(c) = self.chars.next_if(|c| !matches!(c, ',' | '\n' | '\r')) {
            rest.push(c);
        }
        rest
    }

    fn error(&mut self, line: usize, message: impl Into<String>) {
        self.errors.push(QuoteError {
            line,
            message: message.into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(records: &[Record]) -> Vec<Vec<&str>> {
        records
            .iter()
            .map(|r| r.fields.iter().map(String::as_str).collect())
            .collect()
    }

    #[test]
    fn parses_quotes_multiline_and_line_numbers() {
        let text = "\u{feff}a,b\r\n1,\"x, \"\"y\"\"\nz\"\n\n2,\n";
        let (records, errors) = parse(text, false);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            fields(&records),
            [vec!["a", "b"], vec!["1", "x, \"y\"\nz"], vec!["2", ""]]
        );
        let lines: Vec<usize> = records.iter().map(|r| r.line).collect();
        assert_eq!(lines, [1, 2, 5]);
    }

    #[test]
    fn last_record_without_newline() {
        let (records, errors) = parse("a\n\"q\"", false);
        assert!(errors.is_empty());
        assert_eq!(fields(&records), [vec!["a"], vec!["q"]]);
    }

    #[test]
    fn unclosed_quote_names_its_starting_line() {
        let (records, errors) = parse("a,b\n1,2\n3,\"never\nclosed\n", false);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 3);
        assert!(errors[0].message.contains("never closed"));
        assert!(records[2].broken);
        assert!(!records[1].broken);
    }

    #[test]
    fn stray_quotes_are_errors_on_their_line() {
        let (records, errors) = parse("a,b\n1,ab\"c\n2,\"x\"y\n3,ok\n", false);
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 3]);
        assert!(errors[1].message.contains("after a closing quote"));
        assert_eq!(fields(&records)[2], ["2", "xy"]);
        assert!(!records[3].broken);
    }

    #[test]
    fn comment_lines_are_skipped_only_when_asked() {
        let text = "# a comment, with \"quotes\"\nticket\n#T0\nT1,\"x\n# not a comment\"\n";
        let (records, errors) = parse(text, true);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            fields(&records),
            [vec!["ticket"], vec!["T1", "x\n# not a comment"]]
        );
        assert_eq!(records[1].line, 4);
        let (records, _) = parse("#T0\n", false);
        assert_eq!(fields(&records), [vec!["#T0"]]);
    }

    #[test]
    fn runaway_quote_is_reported_where_it_starts() {
        let (_, errors) = parse("a,b\nT1,\"a\"\"b,\nT2,\"ok\",\n", false);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 2);
        assert!(errors[0].message.contains("closes on line 3 before `o`"));
    }
}
