//! Reading job files and exports as UTF-8 text: whole (TOML, which the parser needs in one
//! piece) or as a stream of lines (CSV, so that a large job is never held in memory).
//!
//! Both check the encoding first and name every line that is not UTF-8. A few bad lines (one
//! odd character) are decoded lossily and the rest is still checked; many mean the file is not
//! text at all, and checking its "rows" would only bury the cause under noise.

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::path::Path;

use super::problems::Problems;

/// Reports at most this many non-UTF-8 lines per file (then a count of the rest).
const MAX_UTF8_REPORTS: usize = 10;

/// Buffer of the streaming reads.
const READ_BUFFER: usize = 256 * 1024;

/// Read a text file whole and check it is UTF-8, naming every bad line. Returns the text
/// (lossily decoded when bad, so that other checks still run), or `None` when the file cannot
/// be read at all or is not text.
pub(crate) fn read_utf8(
    path: &Path,
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
        Err(e) => {
            let mut bad = BadLines::default();
            for (i, line) in e.as_bytes().split(|b| *b == b'\n').enumerate() {
                bad.check(i + 1, line, file, problems);
            }
            bad.finish(file, problems)
                .then(|| String::from_utf8_lossy(e.as_bytes()).into_owned())
        }
    }
}

/// Open a text file for reading one line at a time, after a first pass that checks it is
/// UTF-8 (naming every bad line). `None` when it cannot be read or is not text (reported).
/// Lines the first pass named are decoded lossily by [`Lines`].
pub(crate) fn open_utf8(
    path: &Path,
    file: &str,
    location: &str,
    problems: &mut Problems,
) -> Option<Box<dyn BufRead>> {
    let cannot = |e: std::io::Error, problems: &mut Problems| {
        problems.error(location, format!("cannot read {}: {e}", path.display()));
    };
    let opened = File::open(path).and_then(|f| Ok((f.metadata()?.is_file(), f)));
    let mut first: Box<dyn BufRead> = match opened {
        // A regular file is read twice (the second pass reopens it); anything else (a FIFO)
        // can be read only once, so it is read into memory.
        Ok((true, f)) => Box::new(BufReader::with_capacity(READ_BUFFER, f)),
        Ok((false, mut f)) => {
            let mut bytes = Vec::new();
            if let Err(e) = f.read_to_end(&mut bytes) {
                cannot(e, problems);
                return None;
            }
            return check_lines(&mut &bytes[..], file, problems, |e, p| cannot(e, p))
                .then(|| Box::new(Cursor::new(bytes)) as Box<dyn BufRead>);
        }
        Err(e) => {
            cannot(e, problems);
            return None;
        }
    };
    if !check_lines(&mut first, file, problems, |e, p| cannot(e, p)) {
        return None;
    }
    match File::open(path) {
        Ok(f) => Some(Box::new(BufReader::with_capacity(READ_BUFFER, f))),
        Err(e) => {
            cannot(e, problems);
            None
        }
    }
}

/// The first pass: every line checked, the bad ones named; whether the rest may be read.
fn check_lines(
    reader: &mut dyn BufRead,
    file: &str,
    problems: &mut Problems,
    cannot: impl FnOnce(std::io::Error, &mut Problems),
) -> bool {
    let mut bad = BadLines::default();
    let mut line = Vec::new();
    let mut number = 0usize;
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {
                number += 1;
                bad.check(number, &line, file, problems);
            }
            Err(e) => {
                cannot(e, problems);
                return false;
            }
        }
    }
    bad.finish(file, problems)
}

/// Counts the lines that are not UTF-8, naming the first few.
#[derive(Debug, Default)]
struct BadLines {
    reported: usize,
    more: usize,
}

impl BadLines {
    /// Name line `number` (with the column of its first bad byte) if it is not UTF-8.
    fn check(&mut self, number: usize, line: &[u8], file: &str, problems: &mut Problems) {
        let Err(e) = std::str::from_utf8(line) else {
            return;
        };
        if self.reported == MAX_UTF8_REPORTS {
            self.more += 1;
            return;
        }
        self.reported += 1;
        let col = e.valid_up_to();
        problems.error(
            format!("{file}:{number}:{}", col + 1),
            format!(
                "text is not valid UTF-8 (byte 0x{:02X}); save the file as UTF-8",
                line[col]
            ),
        );
    }

    /// Report the lines not named; whether they were few enough to go on checking the rest.
    fn finish(self, file: &str, problems: &mut Problems) -> bool {
        if self.more > 0 {
            problems.error(
                file.to_string(),
                format!("{} more lines are not valid UTF-8: this does not look like a text file; nothing else was checked", self.more),
            );
        }
        self.more == 0
    }
}

/// The physical lines of a text checked by [`open_utf8`] (or of any UTF-8 bytes), one at a
/// time, each with its line break; a line that is not UTF-8 is decoded lossily.
pub(crate) struct Lines<R> {
    src: R,
    /// Bytes of the line being decoded; reused.
    bytes: Vec<u8>,
    /// The first read error, which ends the lines.
    pub(crate) error: Option<std::io::Error>,
}

impl<R: BufRead> Lines<R> {
    /// Lines of `src`.
    pub(crate) fn new(src: R) -> Lines<R> {
        Lines {
            src,
            bytes: Vec::new(),
            error: None,
        }
    }

    /// Replace `line` with the next line (with its `\n`, if any); `false` at the end.
    pub(crate) fn next_into(&mut self, line: &mut String) -> bool {
        let mut bytes = std::mem::take(&mut self.bytes);
        bytes.clear();
        match self.src.read_until(b'\n', &mut bytes) {
            Ok(0) => false,
            Ok(_) => {
                match String::from_utf8(bytes) {
                    Ok(text) => {
                        // Hand the decoded line over and keep its old buffer for the next read.
                        self.bytes = std::mem::replace(line, text).into_bytes();
                    }
                    Err(e) => {
                        line.clear();
                        line.push_str(&String::from_utf8_lossy(e.as_bytes()));
                        self.bytes = e.into_bytes();
                    }
                }
                true
            }
            Err(e) => {
                self.error = Some(e);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn streaming_names_the_same_lines_and_decodes_them_lossily() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        std::fs::write(&path, b"ticket\nok\nab\xe9c\nfine\n\xff").unwrap();
        let mut p = Problems::default();
        let reader = open_utf8(&path, "x.csv", "x.csv", &mut p).unwrap();
        let locs: Vec<String> = p.into_vec().into_iter().map(|p| p.location).collect();
        assert_eq!(locs, ["x.csv:3:3", "x.csv:5:1"]);
        let mut lines = Lines::new(reader);
        let mut line = String::new();
        let mut all = Vec::new();
        while lines.next_into(&mut line) {
            all.push(line.clone());
        }
        assert_eq!(
            all,
            ["ticket\n", "ok\n", "ab\u{fffd}c\n", "fine\n", "\u{fffd}"]
        );
    }

    #[test]
    fn many_bad_lines_stop_the_stream_with_a_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        std::fs::write(&path, b"\xff\n".repeat(25)).unwrap();
        let mut p = Problems::default();
        assert!(open_utf8(&path, "x.csv", "x.csv", &mut p).is_none());
        let problems = p.into_vec();
        assert_eq!(problems.len(), MAX_UTF8_REPORTS + 1);
        assert_eq!(problems[10].location, "x.csv");
        assert!(problems[10].message.starts_with("15 more lines"));
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_read_once_into_memory() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("job.csv");
        let status = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(status.unwrap().success());
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::write(fifo, "ticket\nT1\n").unwrap())
        };
        let mut p = Problems::default();
        let reader = open_utf8(&fifo, "job.csv", "job.csv", &mut p).unwrap();
        writer.join().unwrap();
        let mut lines = Lines::new(reader);
        let mut line = String::new();
        assert!(lines.next_into(&mut line) && line == "ticket\n");
        assert!(lines.next_into(&mut line) && line == "T1\n");
        assert!(!lines.next_into(&mut line));
    }

    #[test]
    fn a_missing_file_cannot_be_read() {
        let mut p = Problems::default();
        assert!(open_utf8(Path::new("/nonexistent/j.csv"), "j.csv", "here", &mut p).is_none());
        let problems = p.into_vec();
        assert_eq!(problems[0].location, "here");
        assert!(problems[0]
            .message
            .starts_with("cannot read /nonexistent/j.csv"));
    }
}
