//! Collecting validation findings, formatting their locations, and describing them for people.
//!
//! The list is bounded: a file with a million bad rows must not keep (or print) a million
//! messages. Findings are grouped by kind (the message without its quoted values and numbers,
//! up to its first colon); the first [`MAX_PER_KIND`] of each kind are listed in the order
//! found, the rest are counted, and one line per such kind says how many were left out.

use std::collections::HashMap;

use super::{Findings, Problem, Severity};

/// Lists at most this many findings of one kind; the rest are counted.
pub const MAX_PER_KIND: usize = 100;
/// Kinds told apart (per severity); findings of further kinds are grouped under one.
const MAX_KINDS: usize = 100;

/// Accumulates the problems found while loading a job, bounded per kind.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    list: Vec<Problem>,
    /// Index in `tally` of each kind: severity and the message's shape ([`kind_of`]).
    kinds: HashMap<(Severity, String), usize>,
    tally: Vec<Tally>,
    errors: usize,
    warnings: usize,
}

/// How many findings of one kind were listed and left out.
#[derive(Debug)]
struct Tally {
    severity: Severity,
    listed: usize,
    unlisted: usize,
    /// The file of the first finding, where the count line is placed.
    file: String,
    /// The first finding's message up to its first colon, to name the kind.
    label: String,
}

impl Problems {
    /// Record an error (blocks the run).
    pub(crate) fn error(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.push(Problem {
            severity: Severity::Error,
            location: location.into(),
            message: message.into(),
        });
    }

    /// Record a warning (reported, does not block).
    pub(crate) fn warn(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.push(Problem {
            severity: Severity::Warning,
            location: location.into(),
            message: message.into(),
        });
    }

    fn push(&mut self, p: Problem) {
        self.count(p.severity, 1);
        let t = self.tally_of(p.severity, &p.location, &p.message);
        if t.listed < MAX_PER_KIND {
            t.listed += 1;
            self.list.push(p);
        } else {
            t.unlisted += 1;
        }
    }

    fn count(&mut self, severity: Severity, n: usize) {
        match severity {
            Severity::Error => self.errors += n,
            Severity::Warning => self.warnings += n,
        }
    }

    /// The tally of a finding's kind, new if it is the first of its kind.
    fn tally_of(&mut self, severity: Severity, location: &str, message: &str) -> &mut Tally {
        let mut key = (severity, kind_of(message));
        if !self.kinds.contains_key(&key) && self.kinds.len() >= MAX_KINDS {
            key.1 = String::new();
        }
        let next = self.tally.len();
        let i = *self.kinds.entry(key).or_insert(next);
        if i == next {
            self.tally.push(Tally {
                severity,
                listed: 0,
                unlisted: 0,
                file: location.split(':').next().unwrap_or_default().to_string(),
                label: label_of(message),
            });
        }
        &mut self.tally[i]
    }

    /// Add the findings of `other` after these ones (as if they had been found here), with
    /// the counts of those `other` left out.
    pub(crate) fn append(&mut self, other: Problems) {
        for p in other.list {
            self.push(p);
        }
        for t in other.tally.into_iter().filter(|t| t.unlisted > 0) {
            self.count(t.severity, t.unlisted);
            let mine = self.tally_of(t.severity, &t.file, &t.label);
            mine.unlisted += t.unlisted;
        }
    }

    /// Number of errors so far, listed or not.
    pub(crate) fn error_count(&self) -> usize {
        self.errors
    }

    /// The findings listed, in the order found, then one line per kind with findings left out;
    /// and the totals.
    pub(crate) fn into_findings(self) -> Findings {
        let mut problems = self.list;
        for t in self.tally.into_iter().filter(|t| t.unlisted > 0) {
            let what = match t.severity {
                Severity::Error => "errors",
                Severity::Warning => "warnings",
            };
            problems.push(Problem {
                severity: t.severity,
                location: t.file,
                message: format!(
                    "{} more {what} like \"{}\" are not listed (only the first {MAX_PER_KIND} of each kind are)",
                    t.unlisted, t.label
                ),
            });
        }
        Findings {
            problems,
            errors: self.errors,
            warnings: self.warnings,
        }
    }

    /// The findings listed, as [`Problems::into_findings`] lists them.
    #[cfg(test)]
    pub(crate) fn into_vec(self) -> Vec<Problem> {
        self.into_findings().problems
    }
}

/// The kind of a message: its text up to the first colon, without the values it quotes in
/// backticks and without numbers (`bad boolean `maybe`: use ...` -> `bad boolean ``).
fn kind_of(message: &str) -> String {
    let mut kind = String::new();
    let mut quoted = false;
    for c in message.chars() {
        match c {
            '`' => {
                quoted = !quoted;
                kind.push(c);
            }
            _ if quoted || c.is_ascii_digit() => {}
            ':' => break,
            _ => kind.push(c),
        }
    }
    kind
}

/// A message up to its first colon outside backticks, to name its kind in the count line.
fn label_of(message: &str) -> String {
    let mut quoted = false;
    let end = message
        .char_indices()
        .find(|&(_, c)| {
            quoted ^= c == '`';
            c == ':' && !quoted
        })
        .map_or(message.len(), |(i, _)| i);
    message[..end].to_string()
}

/// `file:line: column name`, the location of one CSV cell.
pub(crate) fn cell(file: &str, line: usize, column: &str) -> String {
    format!("{file}:{line}: column {column}")
}

/// 1-based line of a byte offset in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The closest candidate by edit distance, when it is close enough to be a likely typo.
pub(crate) fn suggest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = word.to_lowercase();
    let best = candidates
        .into_iter()
        .map(|c| (edit_distance(&lower, &c.to_lowercase()), c))
        .min_by_key(|(d, _)| *d)?;
    let limit = (word.chars().count() / 3).max(2);
    (best.0 <= limit).then_some(best.1)
}

/// ` (did you mean `x`?)` or nothing.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    suggest(word, candidates)
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Sort key: errors first, then file, then line number (numerically), then the rest.
fn sort_key(p: &Problem) -> (Severity, String, usize, String) {
    let (file, rest) = p.location.split_once(':').unwrap_or((&p.location, ""));
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let line = digits.parse().unwrap_or(0);
    (p.severity, file.to_string(), line, rest.to_string())
}

/// Problems for people: errors first, sorted by location, one per line, then a count line
/// such as `2 errors, 1 warning` (or `no problems`).
pub fn describe(problems: &[Problem]) -> String {
    let mut sorted: Vec<&Problem> = problems.iter().collect();
    sorted.sort_by_cached_key(|p| sort_key(p));
    let mut out = String::new();
    for p in &sorted {
        out.push_str(&p.to_string());
        out.push('\n');
    }
    let errors = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    let warnings = problems.len() - errors;
    out.push_str(&count_line(errors, warnings));
    out
}

fn count_line(errors: usize, warnings: usize) -> String {
    let plural = |n: usize, word: &str| {
        if n == 1 {
            format!("1 {word}")
        } else {
            format!("{n} {word}s")
        }
    };
    if errors == 0 && warnings == 0 {
        return "no problems".to_string();
    }
    format!(
        "{}, {}",
        plural(errors, "error"),
        plural(warnings, "warning")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let known = ["ticket", "comment_text", "is_internal"];
        assert_eq!(suggest("coment_text", known), Some("comment_text"));
        assert_eq!(suggest("Ticket", known), Some("ticket"));
        assert_eq!(suggest("zzzzzzzz", known), None);
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("résumé", "resume"), 2);
    }

    #[test]
    fn describe_sorts_errors_first_and_lines_numerically() {
        let mut p = Problems::default();
        p.warn("a.csv:3", "w");
        p.error("a.csv:10", "late");
        p.error("a.csv:9", "early");
        let text = describe(&p.into_vec());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "a.csv:9: error: early",
                "a.csv:10: error: late",
                "a.csv:3: warning: w",
                "2 errors, 1 warning"
            ]
        );
        assert_eq!(describe(&[]), "no problems");
    }

    #[test]
    fn a_million_findings_of_one_kind_list_the_first_hundred_and_count_the_rest() {
        let mut p = Problems::default();
        for line in 2..1_000_002 {
            p.error(
                format!("big.csv:{line}: column is_internal"),
                format!("bad boolean `x{line}`: use true/false, yes/no or 1/0"),
            );
            if line % 250_000 == 0 {
                p.warn(
                    format!("big.csv:{line}"),
                    "duplicate row: same as big.csv:1",
                );
            }
        }
        p.error("big.csv:9", "missing ticket");
        let f = p.into_findings();
        assert_eq!((f.errors, f.warnings), (1_000_001, 4));
        assert_eq!(f.problems.len(), MAX_PER_KIND + 4 + 1 + 1);
        let bad: Vec<&Problem> = f
            .problems
            .iter()
            .filter(|p| p.message.starts_with("bad boolean"))
            .collect();
        assert_eq!(bad.len(), MAX_PER_KIND);
        assert_eq!(bad[0].location, "big.csv:2: column is_internal");
        assert_eq!(bad[99].location, "big.csv:101: column is_internal");
        let last = f.problems.last().unwrap();
        assert_eq!(last.severity, Severity::Error);
        assert_eq!(last.location, "big.csv");
        assert_eq!(
            last.message,
            "999900 more errors like \"bad boolean `x2`\" are not listed (only the first 100 of each kind are)"
        );
        assert!(f.problems[..f.problems.len() - 1]
            .iter()
            .any(|p| p.message == "missing ticket"));
    }

    #[test]
    fn appended_findings_keep_their_order_the_bound_and_the_totals() {
        let (mut a, mut b) = (Problems::default(), Problems::default());
        a.warn("j.csv:1", "unknown column `x`; it is ignored");
        for line in 0..150 {
            a.error(format!("j.csv:{line}"), "missing ticket");
            b.error(format!("j.csv:{line}"), "missing ticket");
            b.error(
                format!("j.csv:{line}: column attachments"),
                "attachment not found: `a` (/a)",
            );
        }
        a.append(b);
        assert_eq!(a.error_count(), 450);
        let f = a.into_findings();
        assert_eq!((f.errors, f.warnings), (450, 1));
        let messages: Vec<&str> = f.problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(messages[0], "unknown column `x`; it is ignored");
        assert_eq!(messages[1..101], ["missing ticket"; 100]);
        assert!(messages[101].starts_with("attachment not found"));
        assert_eq!(messages.len(), 1 + 100 + 100 + 2);
        assert_eq!(
            messages[201..],
            [
                "200 more errors like \"missing ticket\" are not listed (only the first 100 of each kind are)",
                "50 more errors like \"attachment not found\" are not listed (only the first 100 of each kind are)",
            ]
        );
    }

    #[test]
    fn kinds_ignore_quoted_values_numbers_and_details() {
        assert_eq!(
            kind_of("bad boolean `a:b`: use true/false"),
            "bad boolean ``"
        );
        assert_eq!(
            kind_of("row has 7 fields but the header has 5 (an unquoted comma?)"),
            kind_of("row has 8 fields but the header has 5 (an unquoted comma?)")
        );
        assert_eq!(
            kind_of("duplicate row: same ticket and content as j.csv:2"),
            "duplicate row"
        );
        assert_ne!(
            kind_of("attachment `a` is 9 bytes, over the upload limit of 1 bytes"),
            kind_of("attachment `a` is outside the attachment folder: names read from an export must stay inside it")
        );
        assert_eq!(
            label_of("bad boolean `a:b`: use true/false"),
            "bad boolean `a:b`"
        );
    }

    #[test]
    fn findings_of_too_many_kinds_share_one_bound() {
        let mut p = Problems::default();
        for i in 0..10_000 {
            p.error("j.csv", format!("{} went wrong", "x".repeat(i % 500 + 1)));
        }
        let f = p.into_findings();
        assert_eq!(f.errors, 10_000);
        assert!(
            f.problems.len() <= (MAX_KINDS + 1) * (MAX_PER_KIND + 1),
            "{}",
            f.problems.len()
        );
    }

    #[test]
    fn line_of_counts_newlines() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }
}
