//! `[[sources]]`: CSV exports from another helpdesk, read through a column mapping,
//! a comment template, an optional ticket map and an attachment folder.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use toml::Spanned;

use super::csv_job::split_paths;
use super::csv_parse::{self, Record};
use super::problems::{cell, did_you_mean, Problems};
use super::raw::{parse_bool, RawAttachment, RawComment, RawRow, RowLoc, RowSink};
use super::spec::{ColumnsSpec, Ctx, SourceSpec};
use super::template::{find_column, Template};
use super::text::open_utf8;
use super::TicketRef;

/// Source column positions, from the mapping.
struct Mapped {
    header: Vec<String>,
    ticket: usize,
    body: usize,
    internal: Option<usize>,
    internal_value: Option<String>,
    resolution: Option<usize>,
    attachments: Option<usize>,
}

/// Everything needed to turn one export record into a row.
struct Reader<'a> {
    file: Rc<str>,
    cols: Mapped,
    template: Template,
    /// `None`: no map (use the cell as is); `Some(None)`: the map failed to load (reported).
    map: Option<Option<HashMap<String, TicketRef>>>,
    map_name: String,
    attachments_dir: PathBuf,
    separator: &'a str,
}

/// Read one `[[sources]]` entry's rows into `sink`, one at a time as they are parsed (none
/// when its setup is broken; reported).
pub(crate) fn read_rows(
    ctx: &Ctx<'_>,
    i: usize,
    spanned: &Spanned<SourceSpec>,
    problems: &mut Problems,
    sink: &mut impl RowSink,
) {
    let s = spanned.get_ref();
    let here = format!("sources[{i}]");
    let path = ctx.dir.join(s.path.get_ref());
    let file = display_name(&path);
    let at = ctx.at(&s.path, &format!("{here}.path"));
    let Some(src) = open_utf8(&path, &file, &at, problems) else {
        return;
    };
    let mut records = csv_parse::Reader::new(src, &file, false);
    // Listed after the export's quoting errors, which name damage anywhere in the file.
    let mut later = Problems::default();
    match records.next() {
        None => later.error(
            format!("{file}:1"),
            "the export is empty: expected a header row",
        ),
        Some(header) => {
            if let Some(reader) = setup(ctx, &here, s, &path, &header.fields, &mut later) {
                let mut r = Record::default();
                while records.read_into(&mut r) {
                    if r.broken {
                        continue;
                    }
                    if let Some(row) = reader.row(&r, &mut later) {
                        sink.row(row);
                    }
                }
            }
        }
    }
    problems.append(records.finish());
    problems.append(later);
}

/// The mapping, template, ticket map and attachment folder of a source, checked against the
/// export's header; `None` when rows cannot be read through them (reported).
fn setup<'a>(
    ctx: &Ctx<'_>,
    here: &str,
    s: &'a SourceSpec,
    path: &Path,
    header: &[String],
    problems: &mut Problems,
) -> Option<Reader<'a>> {
    let file = display_name(path);
    let cols = map_columns(ctx, here, &s.columns, header, &file, problems);
    // A broken template is reported; the rows are still checked, with the body as the text.
    let template = cols.as_ref().map(|c| {
        compile_template(ctx, here, s, c, problems).unwrap_or_else(|| Template::column(c.body))
    });
    let map = s
        .ticket_map
        .as_ref()
        .map(|m| load_map(ctx, m, &ctx.at(m, &format!("{here}.ticket_map")), problems));
    let attachments_dir = attachments_dir(ctx, here, s, path, problems);
    let (Some(cols), Some(template)) = (cols, template) else {
        return None;
    };
    Some(Reader {
        file: file.into(),
        cols,
        template,
        map,
        map_name: s
            .ticket_map
            .as_ref()
            .map_or_else(String::new, |m| display_name(Path::new(m.get_ref()))),
        attachments_dir,
        separator: s
            .attachment_separator
            .as_ref()
            .map_or(";", |s| s.get_ref().as_str()),
    })
}

/// The file name for locations (`export.csv`).
pub(crate) fn display_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Find every mapped column in the export's header; a missing one is an error with a suggestion.
fn map_columns(
    ctx: &Ctx<'_>,
    here: &str,
    spanned: &Spanned<ColumnsSpec>,
    header: &[String],
    file: &str,
    problems: &mut Problems,
) -> Option<Mapped> {
    let c = spanned.get_ref();
    let mut ok = true;
    let mut find = |key: &str, name: Option<&Spanned<String>>| {
        let name = name?;
        let found = find_column(name.get_ref(), header);
        if found.is_none() {
            ok = false;
            problems.error(
                ctx.at(name, &format!("{here}.columns.{key}")),
                format!(
                    "column `{}` is not in {file}{}",
                    name.get_ref(),
                    did_you_mean(name.get_ref(), header.iter().map(String::as_str))
                ),
            );
        }
        found
    };
    let ticket = find("ticket", Some(&c.ticket));
    let body = find("body", Some(&c.body));
    let mapped = Mapped {
        header: header.to_vec(),
        ticket: ticket.unwrap_or_default(),
        body: body.unwrap_or_default(),
        internal: find("internal", c.internal.as_ref()),
        internal_value: c.internal_value.clone(),
        resolution: find("resolution", c.resolution.as_ref()),
        attachments: find("attachments", c.attachments.as_ref()),
    };
    find("author", c.author.as_ref());
    find("created", c.created.as_ref());
    ok.then_some(mapped)
}

/// The template as written, or a default built from the mapped author, created and body columns.
fn compile_template(
    ctx: &Ctx<'_>,
    here: &str,
    s: &SourceSpec,
    cols: &Mapped,
    problems: &mut Problems,
) -> Option<Template> {
    let (text, loc) = match &s.template {
        Some(t) => (t.get_ref().clone(), ctx.at(t, &format!("{here}.template"))),
        None => (
            default_template(&s.columns),
            ctx.at(&s.columns, &format!("{here}.columns")),
        ),
    };
    match Template::compile(&text, &cols.header) {
        Ok(t) => Some(t),
        Err(errors) => {
            for e in errors {
                problems.error(&loc, e);
            }
            None
        }
    }
}

/// `{Author} wrote on {Created}:\n\n{Body}`, or as much of it as is mapped.
fn default_template(columns: &Spanned<ColumnsSpec>) -> String {
    let c = columns.get_ref();
    let body = format!("{{{}}}", c.body.get_ref());
    match (&c.author, &c.created) {
        (Some(a), Some(d)) => format!(
            "{{{}}} wrote on {{{}}}:\n\n{body}",
            a.get_ref(),
            d.get_ref()
        ),
        (Some(a), None) => format!("{{{}}} wrote:\n\n{body}", a.get_ref()),
        _ => body,
    }
}

/// The attachment folder, checked to be a directory.
fn attachments_dir(
    ctx: &Ctx<'_>,
    here: &str,
    s: &SourceSpec,
    export: &Path,
    problems: &mut Problems,
) -> PathBuf {
    let Some(dir) = &s.attachments_dir else {
        return export.parent().map_or_else(PathBuf::new, Path::to_path_buf);
    };
    let path = ctx.dir.join(dir.get_ref());
    if !path.is_dir() {
        problems.error(
            ctx.at(dir, &format!("{here}.attachments_dir")),
            format!(
                "attachments_dir `{}` is not a folder ({})",
                dir.get_ref(),
                path.display()
            ),
        );
    }
    path
}

/// Load a ticket map CSV: header, then external id and Alga ticket in the first two columns.
fn load_map(
    ctx: &Ctx<'_>,
    spanned: &Spanned<String>,
    loc: &str,
    problems: &mut Problems,
) -> Option<HashMap<String, TicketRef>> {
    let path = ctx.dir.join(spanned.get_ref());
    let file = display_name(&path);
    let src = open_utf8(&path, &file, loc, problems)?;
    let errors_before = problems.error_count();
    let mut records = csv_parse::Reader::new(src, &file, false);
    // Listed after the map's quoting errors.
    let mut later = Problems::default();
    let map = read_map(&mut records, &file, &mut later);
    problems.append(records.finish());
    problems.append(later);
    map.filter(|_| problems.error_count() == errors_before)
}

/// The entries of a ticket map; `None` when it has no usable header (reported).
fn read_map(
    records: &mut csv_parse::Reader<impl BufRead>,
    file: &str,
    problems: &mut Problems,
) -> Option<HashMap<String, TicketRef>> {
    if records.next().is_none_or(|h| h.fields.len() < 2) {
        problems.error(
            format!("{file}:1"),
            "the ticket map needs a header and two columns: external id, alga ticket",
        );
        return None;
    }
    let mut map = HashMap::new();
    let mut lines: HashMap<String, usize> = HashMap::new();
    for r in records.by_ref().filter(|r| !r.broken) {
        let ext = r.fields.first().map_or("", |f| f.trim());
        if ext.is_empty() {
            problems.error(format!("{file}:{}", r.line), "missing external ticket id");
            continue;
        }
        let target = r.fields.get(1).and_then(|t| TicketRef::parse(t));
        let Some(target) = target else {
            problems.error(
                format!("{file}:{}", r.line),
                format!("no alga ticket for `{ext}`"),
            );
            continue;
        };
        if let Some(first) = lines.get(ext) {
            if map.get(ext) != Some(&target) {
                problems.error(
                    format!("{file}:{}", r.line),
                    format!(
                        "external ticket `{ext}` is mapped twice (lines {first} and {})",
                        r.line
                    ),
                );
            }
            continue;
        }
        lines.insert(ext.to_string(), r.line);
        map.insert(ext.to_string(), target);
    }
    Some(map)
}

/// Whether an attachment name read from an export stays inside the attachment folder: the
/// export's data is not the job author's, so an absolute path or a `..` that climbs out
/// (`../../home/me/.ssh/id_rsa`) is an error rather than an upload.
fn stays_inside(name: &str, at: &str, problems: &mut Problems) -> bool {
    use std::path::Component;
    let mut depth = 0usize;
    let inside = Path::new(name).components().all(|c| match c {
        Component::Normal(_) => {
            depth += 1;
            true
        }
        Component::CurDir => true,
        Component::ParentDir => depth.checked_sub(1).map(|d| depth = d).is_some(),
        Component::RootDir | Component::Prefix(_) => false,
    });
    if !inside {
        problems.error(
            at,
            format!("attachment `{name}` is outside the attachment folder: names read from an export must stay inside it"),
        );
    }
    inside
}

impl Reader<'_> {
    /// One export record to a raw row.
    fn row(&self, r: &Record, problems: &mut Problems) -> Option<RawRow> {
        let (file, line) = (&*self.file, r.line);
        let loc = format!("{file}:{line}");
        if r.fields
            .iter()
            .skip(self.cols.header.len())
            .any(|f| !f.trim().is_empty())
        {
            problems.error(
                &loc,
                format!(
                    "row has {} fields but the header has {} (an unquoted comma?)",
                    r.fields.len(),
                    self.cols.header.len()
                ),
            );
            return None;
        }
        let field = |i: usize| r.fields.get(i).map_or("", String::as_str);
        let col_name = |i: usize| self.cols.header[i].trim().to_string();
        let ticket = self.ticket(
            field(self.cols.ticket),
            &cell(file, line, &col_name(self.cols.ticket)),
            problems,
        );
        let is_internal = self.cols.internal.is_some_and(|i| {
            let raw = field(i);
            match &self.cols.internal_value {
                Some(v) => raw.trim().eq_ignore_ascii_case(v.trim()),
                None => flag(raw, &cell(file, line, &col_name(i)), problems),
            }
        });
        let is_resolution = self
            .cols
            .resolution
            .is_some_and(|i| flag(field(i), &cell(file, line, &col_name(i)), problems));
        let comment = (!field(self.cols.body).trim().is_empty()).then(|| RawComment {
            source: loc.clone(),
            loc: cell(file, line, &col_name(self.cols.body)),
            text: self.template.render(&r.fields),
            is_internal,
            is_resolution,
        });
        let attachments = self.cols.attachments.map_or_else(Vec::new, |i| {
            let at = cell(file, line, &col_name(i));
            split_paths(field(i), self.separator)
                .filter(|name| stays_inside(name, &at, problems))
                .map(|name| RawAttachment {
                    source: loc.clone(),
                    loc: at.clone(),
                    written: name.to_string(),
                    path: self.attachments_dir.join(name),
                })
                .collect()
        });
        Some(RawRow {
            loc: RowLoc::Line {
                file: Rc::clone(&self.file),
                line,
            },
            ticket,
            comment,
            attachments,
        })
    }

    /// The external id, through the ticket map when there is one.
    fn ticket(&self, ext: &str, loc: &str, problems: &mut Problems) -> Option<TicketRef> {
        let ext = ext.trim();
        if ext.is_empty() {
            problems.error(loc, "missing ticket");
            return None;
        }
        match &self.map {
            None => TicketRef::parse(ext),
            Some(None) => None,
            Some(Some(map)) => {
                let found = map.get(ext).cloned();
                if found.is_none() {
                    problems.error(
                        loc,
                        format!(
                            "external ticket `{ext}` is not in the ticket map {}",
                            self.map_name
                        ),
                    );
                }
                found
            }
        }
    }
}

/// A boolean cell, reporting a bad value.
fn flag(raw: &str, loc: &str, problems: &mut Problems) -> bool {
    parse_bool(raw).unwrap_or_else(|| {
        problems.error(
            loc,
            format!("bad boolean `{raw}`: use true/false, yes/no or 1/0"),
        );
        false
    })
}
