//! CSV jobs: a header row with `ticket`, `comment_text`, `is_internal`, `is_resolution` and
//! `attachments` (any case, any order), one row per ticket action; `#` lines are comments.

use std::io::BufRead;
use std::path::Path;
use std::rc::Rc;

use super::csv_parse::{self, Record};
use super::problems::{cell, did_you_mean, Problems};
use super::raw::{parse_bool, RawAttachment, RawComment, RawRow, RowLoc, RowSink};
use super::TicketRef;

/// The columns a CSV job understands.
pub(crate) const KNOWN_COLUMNS: [&str; 5] = [
    "ticket",
    "comment_text",
    "is_internal",
    "is_resolution",
    "attachments",
];

/// Column positions found in the header.
#[derive(Debug, Default)]
struct Columns {
    /// Index in the header of each known column (same order as `KNOWN_COLUMNS`).
    index: [Option<usize>; 5],
    /// Header length.
    width: usize,
}

impl Columns {
    fn get<'a>(&self, record: &'a Record, known: usize) -> &'a str {
        self.index[known]
            .and_then(|i| record.fields.get(i))
            .map_or("", String::as_str)
    }
}

/// Read a CSV job's rows into `sink`, one at a time as they are parsed. `file` is the job
/// file's name, used in sources and locations. Problems are reported in file order, then the
/// quoting errors of the whole file.
pub(crate) fn read_rows(
    src: impl BufRead,
    file: &str,
    dir: &Path,
    problems: &mut Problems,
    sink: &mut impl RowSink,
) {
    let mut records = csv_parse::Reader::new(src, file, true);
    match records.next() {
        None => problems.error(
            format!("{file}:1"),
            "the job file is empty: expected a header row",
        ),
        Some(header) => {
            if let Some(columns) = read_header(&header, file, problems) {
                let file: Rc<str> = file.into();
                let mut r = Record::default();
                while records.read_into(&mut r) {
                    if r.broken {
                        continue;
                    }
                    if let Some(row) = read_row(&r, &columns, &file, dir, problems) {
                        sink.row(row);
                    }
                }
            }
        }
    }
    // The quoting errors of the records read (all of them, unless the header was unusable).
    problems.append(records.finish());
}

/// Map header names to known columns; warn on unknown ones, error on duplicates or no `ticket`.
fn read_header(header: &Record, file: &str, problems: &mut Problems) -> Option<Columns> {
    let mut columns = Columns {
        width: header.fields.len(),
        ..Columns::default()
    };
    for (i, name) in header.fields.iter().enumerate() {
        let norm = name.trim().to_lowercase();
        match KNOWN_COLUMNS.iter().position(|k| *k == norm) {
            Some(k) if columns.index[k].is_some() => problems.error(
                format!("{file}:{}", header.line),
                format!("column `{norm}` appears more than once"),
            ),
            Some(k) => columns.index[k] = Some(i),
            None => problems.warn(
                format!("{file}:{}", header.line),
                format!(
                    "unknown column `{}`{}; it is ignored",
                    name.trim(),
                    did_you_mean(name.trim(), KNOWN_COLUMNS)
                ),
            ),
        }
    }
    if columns.index[0].is_none() {
        problems.error(
            format!("{file}:{}", header.line),
            "missing required column `ticket`",
        );
        return None;
    }
    Some(columns)
}

/// One data row to a raw row; `None` when the row is unusable (reported).
fn read_row(
    record: &Record,
    columns: &Columns,
    file: &Rc<str>,
    dir: &Path,
    problems: &mut Problems,
) -> Option<RawRow> {
    let line = record.line;
    let loc = format!("{file}:{line}");
    let extra = record.fields.iter().skip(columns.width);
    if extra.clone().any(|f| !f.trim().is_empty()) {
        problems.error(
            &loc,
            format!(
                "row has {} fields but the header has {} (an unquoted comma?)",
                record.fields.len(),
                columns.width
            ),
        );
        return None;
    }
    let ticket = TicketRef::parse(columns.get(record, 0));
    if ticket.is_none() {
        problems.error(cell(file, line, "ticket"), "missing ticket");
    }
    let flag = |k: usize, problems: &mut Problems| {
        let raw = columns.get(record, k);
        parse_bool(raw).unwrap_or_else(|| {
            problems.error(
                cell(file, line, KNOWN_COLUMNS[k]),
                format!("bad boolean `{raw}`: use true/false, yes/no or 1/0"),
            );
            false
        })
    };
    let is_internal = flag(2, problems);
    let is_resolution = flag(3, problems);
    let text = columns.get(record, 1);
    let comment = (!text.trim().is_empty()).then(|| RawComment {
        source: loc.clone(),
        loc: cell(file, line, "comment_text"),
        text: text.to_string(),
        is_internal,
        is_resolution,
    });
    let attachments = split_paths(columns.get(record, 4), ";")
        .map(|p| RawAttachment {
            source: loc.clone(),
            loc: cell(file, line, "attachments"),
            written: p.to_string(),
            path: dir.join(p),
        })
        .collect();
    Some(RawRow {
        loc: RowLoc::Line {
            file: Rc::clone(file),
            line,
        },
        ticket,
        comment,
        attachments,
    })
}

/// Non-empty, trimmed paths separated by `sep`.
pub(crate) fn split_paths<'a>(cell: &'a str, sep: &'a str) -> impl Iterator<Item = &'a str> {
    cell.split(sep).map(str::trim).filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str, dir: &Path) -> (Vec<RawRow>, Vec<crate::job::Problem>) {
        let mut p = Problems::default();
        let mut rows = Vec::new();
        read_rows(text.as_bytes(), "j.csv", dir, &mut p, &mut rows);
        (rows, p.into_vec())
    }

    #[test]
    fn columns_in_any_order_and_case() {
        let dir = Path::new("/jobs");
        let text = "Attachments,IS_INTERNAL,Comment_Text,Ticket\n a.txt ; sub/b.log ;,Yes,hello,TIC001000\n";
        let (rows, problems) = rows(text, dir);
        assert!(problems.is_empty(), "{problems:?}");
        let r = &rows[0];
        assert_eq!(r.ticket, TicketRef::parse("TIC001000"));
        let c = r.comment.as_ref().unwrap();
        assert_eq!(
            (c.text.as_str(), c.is_internal, c.is_resolution),
            ("hello", true, false)
        );
        let paths: Vec<_> = r.attachments.iter().map(|a| a.path.clone()).collect();
        assert_eq!(paths, [dir.join("a.txt"), dir.join("sub/b.log")]);
        assert_eq!(c.source, "j.csv:2");
    }

    #[test]
    fn unknown_column_warns_with_suggestion() {
        let (_, problems) = rows("ticket,coment_text,colour\nTIC1,x,y\n", Path::new("."));
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].location, "j.csv:1");
        assert_eq!(
            problems[0].message,
            "unknown column `coment_text` (did you mean `comment_text`?); it is ignored"
        );
        assert!(!problems[1].message.contains("did you mean"));
    }

    #[test]
    fn missing_ticket_column_and_cell() {
        let (_, problems) = rows("comment_text\nx\n", Path::new("."));
        assert_eq!(problems[0].message, "missing required column `ticket`");
        let (_, problems) = rows("ticket,comment_text\n  ,x\n", Path::new("."));
        assert_eq!(problems[0].location, "j.csv:2: column ticket");
        assert_eq!(problems[0].message, "missing ticket");
    }

    #[test]
    fn bad_booleans_name_line_and_column() {
        let (_, problems) = rows(
            "ticket,is_internal,is_resolution\nT1,maybe,\nT2,no,2\n",
            Path::new("."),
        );
        let locs: Vec<&str> = problems.iter().map(|p| p.location.as_str()).collect();
        assert_eq!(
            locs,
            [
                "j.csv:2: column is_internal",
                "j.csv:3: column is_resolution"
            ]
        );
        assert!(problems[0].message.contains("`maybe`"));
    }

    #[test]
    fn source_is_the_physical_start_line_of_the_record() {
        let text = "ticket,comment_text\nT1,\"line one\nline two\"\nT2,next\n";
        let (rows, problems) = rows(text, Path::new("."));
        assert!(problems.is_empty());
        assert_eq!(rows[1].comment.as_ref().unwrap().source, "j.csv:4");
    }

    #[test]
    fn quoting_errors_and_extra_fields_name_the_line() {
        let text = "ticket,comment_text\nT1,ab\"c\nT2,a,b\nT3,\"open\n";
        let (rows, problems) = rows(text, Path::new("."));
        let locs: Vec<&str> = problems.iter().map(|p| p.location.as_str()).collect();
        // Row problems as the rows stream by, then the quoting errors of the whole file.
        assert_eq!(locs, ["j.csv:3", "j.csv:2", "j.csv:4"]);
        assert!(problems[0].message.contains("unquoted comma"));
        assert!(rows.is_empty());
    }

    #[test]
    fn duplicate_column_is_an_error() {
        let (_, problems) = rows("ticket,Ticket\nT1,T2\n", Path::new("."));
        assert_eq!(
            problems[0].message,
            "column `ticket` appears more than once"
        );
    }

    #[test]
    fn empty_file_is_an_error() {
        let (_, problems) = rows("", Path::new("."));
        assert!(problems[0].message.contains("empty"));
    }
}
