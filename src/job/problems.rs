//! Collecting validation findings, formatting their locations, and describing them for people.

use super::{Problem, Severity};

/// Reports at most this many non-UTF-8 lines per file (then a count of the rest).
const MAX_UTF8_REPORTS: usize = 10;

/// Accumulates every problem found while loading a job.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    list: Vec<Problem>,
}

impl Problems {
    /// Record an error (blocks the run).
    pub(crate) fn error(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Error, location.into(), message.into());
    }

    /// Record a warning (reported, does not block).
    pub(crate) fn warn(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Warning, location.into(), message.into());
    }

    fn push(&mut self, severity: Severity, location: String, message: String) {
        self.list.push(Problem {
            severity,
            location,
            message,
        });
    }

    /// Number of errors so far.
    pub(crate) fn error_count(&self) -> usize {
        self.list
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .count()
    }

    /// The findings in the order they were found.
    pub(crate) fn into_vec(self) -> Vec<Problem> {
        self.list
    }
}

/// `file:line: column name`, the location of one CSV cell.
pub(crate) fn cell(file: &str, line: usize, column: &str) -> String {
    format!("{file}:{line}: column {column}")
}

/// Read a text file as bytes and check it is UTF-8, naming every bad line.
/// Returns the text (lossily decoded when bad, so that other checks still run),
/// or `None` when the file cannot be read at all.
pub(crate) fn read_utf8(
    path: &std::path::Path,
    file: &str,
    location: &str,
    problems: &mut Problems,
) -> Option<String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            problems.error(location, format!("cannot read {}: {e}", path.display()));
            return None;
        }
    };
    match String::from_utf8(bytes) {
        Ok(text) => Some(text),
        // A few bad lines (one odd character): the rest is still checked. Many: it is not a
        // text file, and checking its "rows" would only bury the cause under noise.
        Err(e) => match report_bad_lines(e.as_bytes(), file, problems) {
            true => Some(String::from_utf8_lossy(e.as_bytes()).into_owned()),
            false => None,
        },
    }
}

/// Name each line that is not valid UTF-8, with the column (byte) of the first bad byte;
/// whether they were few enough to go on checking the rest.
fn report_bad_lines(bytes: &[u8], file: &str, problems: &mut Problems) -> bool {
    let mut reported = 0usize;
    let mut more = 0usize;
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if let Err(e) = std::str::from_utf8(line) {
            if reported == MAX_UTF8_REPORTS {
                more += 1;
                continue;
            }
            reported += 1;
            let col = e.valid_up_to();
            problems.error(
                format!("{file}:{}:{}", i + 1, col + 1),
                format!(
                    "text is not valid UTF-8 (byte 0x{:02X}); save the file as UTF-8",
                    line[col]
                ),
            );
        }
    }
    if more > 0 {
        problems.error(
            file.to_string(),
            format!("{more} more lines are not valid UTF-8: this does not look like a text file; nothing else was checked"),
        );
    }
    more == 0
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
    fn names_each_non_utf8_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        std::fs::write(&path, b"ticket\nok\nab\xe9c\nfine\n\xff\n").unwrap();
        let mut p = Problems::default();
        let text = read_utf8(&path, "x.csv", "x.csv", &mut p).unwrap();
        assert!(text.contains("fine"));
        let locs: Vec<String> = p.into_vec().into_iter().map(|p| p.location).collect();
        assert_eq!(locs, ["x.csv:3:3", "x.csv:5:1"]);
    }

    #[test]
    fn line_of_counts_newlines() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }
}
