//! A strict RFC 4180 CSV reader that knows the physical line of every record and names
//! the line of every quoting error (the `csv` crate accepts stray quotes silently).
//!
//! It reads one physical line at a time from a [`BufRead`], so a large file is never held in
//! memory: what it holds is the line being parsed and the record being built.

use std::io::BufRead;

use super::problems::Problems;
use super::text::Lines;

/// One record: the physical line where it starts, its fields, and whether it is damaged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Record {
    /// 1-based physical line where the record starts.
    pub(crate) line: usize,
    /// Field values (quotes removed, `""` unescaped).
    pub(crate) fields: Vec<String>,
    /// A quoting error was found in this record; its fields are not to be trusted.
    pub(crate) broken: bool,
}

/// The records of a CSV file one at a time (blank lines skipped); the quoting errors met so
/// far, at `file:line`, are in [`Reader::errors`].
pub(crate) struct Reader<R> {
    lines: Lines<R>,
    /// The physical line being parsed (with its line break), and the position in it.
    buf: String,
    pos: usize,
    line: usize,
    comments: bool,
    file: String,
    /// The record being read has a quoting error.
    broken: bool,
    /// Emptied fields of earlier records, reused for the next ones.
    spare: Vec<String>,
    /// Quoting errors met so far (and a read error, if the file failed midway).
    pub(crate) errors: Problems,
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        let mut record = Record::default();
        self.read_into(&mut record).then_some(record)
    }
}

impl<R: BufRead> Reader<R> {
    /// A reader of `src` (a leading BOM is skipped), naming `file` in its errors;
    /// `comments`: skip `#` lines.
    pub(crate) fn new(src: R, file: &str, comments: bool) -> Reader<R> {
        let mut reader = Reader {
            lines: Lines::new(src),
            buf: String::new(),
            pos: 0,
            line: 1,
            comments,
            file: file.to_string(),
            broken: false,
            spare: Vec::new(),
            errors: Problems::default(),
        };
        if reader.fill() && reader.buf.starts_with('\u{feff}') {
            reader.pos = '\u{feff}'.len_utf8();
        }
        reader
    }

    /// Read the next record into `record`, reusing its fields' memory; `false` at the end.
    pub(crate) fn read_into(&mut self, record: &mut Record) -> bool {
        self.spare.extend(record.fields.drain(..).map(|mut f| {
            f.clear();
            f
        }));
        while let Some(c) = self.peek() {
            if self.comments && c == b'#' {
                self.skip_line();
                continue;
            }
            self.broken = false;
            record.line = self.line;
            self.record(&mut record.fields);
            let blank = record.fields.len() == 1 && record.fields[0].is_empty();
            if !blank {
                record.broken = self.broken;
                return true;
            }
            self.spare.append(&mut record.fields);
        }
        if let Some(e) = self.lines.error.take() {
            self.errors
                .error(self.file.clone(), format!("cannot read {}: {e}", self.file));
        }
        false
    }

    /// Read on to the end (for the quoting errors), then hand those errors over.
    pub(crate) fn finish(mut self) -> Problems {
        self.by_ref().for_each(drop);
        self.errors
    }

    /// Make sure a byte is left in `buf`, reading the next line if needed; `false` at the end.
    fn fill(&mut self) -> bool {
        while self.pos == self.buf.len() {
            self.pos = 0;
            if !self.lines.next_into(&mut self.buf) {
                self.buf.clear();
                return false;
            }
        }
        true
    }

    fn peek(&mut self) -> Option<u8> {
        self.fill().then(|| self.buf.as_bytes()[self.pos])
    }

    /// Take the next byte if it is `b`.
    fn eat(&mut self, b: u8) -> bool {
        let found = self.peek() == Some(b);
        self.pos += usize::from(found);
        found
    }

    /// Skip to just after the next line break.
    fn skip_line(&mut self) {
        while let Some(c) = self.peek() {
            self.pos += 1;
            if c == b'\n' || (c == b'\r' && self.peek() != Some(b'\n')) {
                self.line += 1;
                return;
            }
        }
    }

    /// Read one record's fields up to and including its line break.
    fn record(&mut self, fields: &mut Vec<String>) {
        loop {
            let mut field = self.spare.pop().unwrap_or_default();
            if self.peek() == Some(b'"') {
                self.quoted(&mut field);
            } else {
                self.unquoted(true, &mut field);
            }
            fields.push(field);
            let next = self.peek();
            self.pos += usize::from(next.is_some());
            match next {
                Some(b',') => continue,
                Some(b'\r') => {
                    self.eat(b'\n');
                    self.line += 1;
                }
                Some(b'\n') => self.line += 1,
                _ => {}
            }
            return;
        }
    }

    /// An unquoted field (or the rest of a damaged one), up to a separator or line break;
    /// with `strict`, a quote inside it is an error.
    fn unquoted(&mut self, strict: bool, field: &mut String) {
        let mut reported = !strict;
        while self.fill() {
            let rest = &self.buf.as_bytes()[self.pos..];
            let end = rest
                .iter()
                .position(|b| matches!(b, b',' | b'\n' | b'\r'))
                .unwrap_or(rest.len());
            if !reported && rest[..end].contains(&b'"') {
                reported = true;
                self.error(
                    self.line,
                    "quote inside an unquoted field: quote the whole field and double inner quotes (\"\")",
                );
            }
            field.push_str(&self.buf[self.pos..self.pos + end]);
            self.pos += end;
            if self.pos < self.buf.len() {
                break;
            }
        }
    }

    /// A quoted field, from its opening quote to the separator or line break after it.
    fn quoted(&mut self, field: &mut String) {
        self.pos += 1;
        let start = self.line;
        loop {
            if !self.fill() {
                self.error(
                    start,
                    format!("quoted field starting on line {start} is never closed"),
                );
                return;
            }
            let rest = &self.buf.as_bytes()[self.pos..];
            let Some(at) = rest.iter().position(|b| matches!(b, b'"' | b'\n' | b'\r')) else {
                field.push_str(&self.buf[self.pos..]);
                self.pos = self.buf.len();
                continue;
            };
            let c = rest[at];
            field.push_str(&self.buf[self.pos..self.pos + at]);
            self.pos += at + 1;
            match c {
                b'"' if self.eat(b'"') => field.push('"'),
                b'"' => break,
                b'\r' => {
                    if self.peek() != Some(b'\n') {
                        self.line += 1;
                    }
                    field.push('\r');
                }
                _ => {
                    self.line += 1;
                    field.push('\n');
                }
            }
        }
        self.after_closing_quote(start, field);
    }

    /// Text between a closing quote and the next separator is an error; it joins the field.
    fn after_closing_quote(&mut self, start: usize, field: &mut String) {
        if !self.fill() {
            return;
        }
        let Some(c) = self.buf[self.pos..].chars().next() else {
            return;
        };
        if matches!(c, ',' | '\n' | '\r') {
            return;
        }
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
        self.unquoted(false, field);
    }

    fn error(&mut self, line: usize, message: impl Into<String>) {
        self.broken = true;
        self.errors.error(format!("{}:{line}", self.file), message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Problem;

    /// Every record of `text`, and the quoting errors (at `t:LINE`).
    fn parse(text: &str, comments: bool) -> (Vec<Record>, Vec<Problem>) {
        let mut reader = Reader::new(text.as_bytes(), "t", comments);
        let records = reader.by_ref().collect();
        (records, reader.finish().into_vec())
    }

    fn lines(errors: &[Problem]) -> Vec<&str> {
        errors.iter().map(|e| e.location.as_str()).collect()
    }

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
        assert_eq!(lines(&errors), ["t:3"]);
        assert!(errors[0].message.contains("never closed"));
        assert!(records[2].broken);
        assert!(!records[1].broken);
    }

    #[test]
    fn stray_quotes_are_errors_on_their_line() {
        let (records, errors) = parse("a,b\n1,ab\"c\n2,\"x\"y\n3,ok\n", false);
        assert_eq!(lines(&errors), ["t:2", "t:3"]);
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
        assert_eq!(lines(&errors), ["t:2"]);
        assert!(errors[0].message.contains("closes on line 3 before `o`"));
    }
}
