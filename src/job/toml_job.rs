//! TOML jobs: name, kind, `[settings]`, inline `[[tickets]]` and `[[sources]]`, read into
//! raw rows with readable locators (`demo.toml:tickets[2].comments[0]`). The file itself is
//! parsed whole; the rows of its `[[sources]]` exports stream into the sink like a CSV job's.

use std::path::PathBuf;

use toml::Spanned;

use super::problems::{did_you_mean, line_of, Problems};
use super::raw::{RawAttachment, RawComment, RawRow, RowLoc, RowSink};
use super::source;
use super::spec::{known_keys, Ctx, JobSpec, SettingsSpec, TicketSpec};
use super::{JobSettings, TicketRef};

/// What a TOML job file holds once read.
#[derive(Debug)]
pub(crate) struct TomlJob {
    pub(crate) name: Option<String>,
    pub(crate) settings: JobSettings,
}

/// Read a TOML job, handing its rows to `sink` in job order; `None` when it cannot be used at
/// all (reported).
pub(crate) fn read(
    ctx: &Ctx<'_>,
    problems: &mut Problems,
    sink: &mut impl RowSink,
) -> Option<TomlJob> {
    // The kind first, on its own: an export job's other keys are not ours to judge.
    if let Ok(k) = toml::from_str::<KindOnly>(ctx.text) {
        if !check_kind(ctx, k.kind.as_ref(), problems) {
            return None;
        }
    }
    let mut ignored = Vec::new();
    let de = toml::Deserializer::new(ctx.text);
    let spec: JobSpec = match serde_ignored::deserialize(de, |p| ignored.push(p.to_string())) {
        Ok(spec) => spec,
        Err(e) => {
            report_toml_error(ctx, &e, problems);
            return None;
        }
    };
    for path in ignored {
        warn_unknown_key(ctx, &path, problems);
    }
    let name = spec
        .name
        .as_ref()
        .and_then(|n| check_name(ctx, n, problems));
    let settings = spec
        .settings
        .as_ref()
        .map(|s| read_settings(ctx, s, problems))
        .unwrap_or_default();
    for (i, t) in spec.tickets.iter().enumerate() {
        for row in ticket_rows(ctx, i, t, problems) {
            sink.row(row);
        }
    }
    for (i, s) in spec.sources.iter().enumerate() {
        source::read_rows(ctx, i, s, problems, sink);
    }
    if spec.tickets.is_empty() && spec.sources.is_empty() {
        problems.warn(
            ctx.file,
            "nothing to do: the job has no [[tickets]] and no [[sources]]",
        );
    }
    Some(TomlJob { name, settings })
}

/// Just the `kind` key, read before anything else.
#[derive(serde::Deserialize)]
struct KindOnly {
    kind: Option<Spanned<String>>,
}

/// A syntax or type error, at its line and column.
fn report_toml_error(ctx: &Ctx<'_>, e: &toml::de::Error, problems: &mut Problems) {
    let start = e.span().map_or(0, |s| s.start).min(ctx.text.len());
    let line = line_of(ctx.text, start);
    let col = ctx.text[..start]
        .rsplit('\n')
        .next()
        .map_or(1, |l| l.chars().count() + 1);
    problems.error(
        format!("{}:{line}:{col}", ctx.file),
        e.message().to_string(),
    );
}

/// `kind` must be `import` (default); `export` belongs to `backup --job`.
fn check_kind(ctx: &Ctx<'_>, kind: Option<&Spanned<String>>, problems: &mut Problems) -> bool {
    let Some(kind) = kind else {
        return true;
    };
    match kind.get_ref().as_str() {
        "import" => true,
        "export" => {
            problems.error(
                ctx.at(kind, "kind"),
                "export jobs are run with `alga-batch backup --job`",
            );
            false
        }
        other => {
            problems.error(
                ctx.at(kind, "kind"),
                format!("unknown kind `{other}`: use \"import\""),
            );
            false
        }
    }
}

/// The name becomes part of the results file name: no separators, not empty.
fn check_name(ctx: &Ctx<'_>, name: &Spanned<String>, problems: &mut Problems) -> Option<String> {
    let n = name.get_ref().trim();
    if n.is_empty() || n.contains(['/', '\\']) || n == "." || n == ".." {
        problems.error(
            ctx.at(name, "name"),
            format!("bad job name `{n}`: it must be non-empty and contain no `/` or `\\`"),
        );
        return None;
    }
    Some(n.to_string())
}

/// Settings with range checks; `results` is resolved against the job file's folder.
fn read_settings(
    ctx: &Ctx<'_>,
    spanned: &Spanned<SettingsSpec>,
    problems: &mut Problems,
) -> JobSettings {
    let s = spanned.get_ref();
    at_least_one(ctx, "concurrency", s.concurrency.as_ref(), problems);
    at_least_one(ctx, "rate_per_minute", s.rate_per_minute.as_ref(), problems);
    at_least_one(ctx, "burst", s.burst.as_ref(), problems);
    if let Some(url) = &s.base_url {
        if let Err(e) = crate::connect::parse_base_url(url.get_ref()) {
            problems.error(ctx.at(url, "settings.base_url"), e.to_string());
        }
    }
    JobSettings {
        base_url: s.base_url.as_ref().map(|u| u.get_ref().clone()),
        concurrency: s.concurrency.as_ref().map(|v| *v.get_ref()),
        rate_per_minute: s.rate_per_minute.as_ref().map(|v| *v.get_ref()),
        burst: s.burst.as_ref().map(|v| *v.get_ref()),
        max_retries: s.max_retries,
        results: s.results.as_ref().map(|r| ctx.dir.join(r)),
        notify: s.notify,
    }
}

/// A count that must not be zero.
fn at_least_one<T: PartialEq + Default>(
    ctx: &Ctx<'_>,
    key: &str,
    value: Option<&Spanned<T>>,
    problems: &mut Problems,
) {
    if let Some(v) = value.filter(|v| *v.get_ref() == T::default()) {
        problems.error(
            ctx.at(v, &format!("settings.{key}")),
            format!("`{key}` must be at least 1"),
        );
    }
}

/// An inline ticket: one row per comment, then one row for its attachments.
fn ticket_rows(
    ctx: &Ctx<'_>,
    i: usize,
    spanned: &Spanned<TicketSpec>,
    problems: &mut Problems,
) -> Vec<RawRow> {
    let t = spanned.get_ref();
    let here = format!("tickets[{i}]");
    let ticket = t
        .ticket
        .as_ref()
        .and_then(|s| TicketRef::parse(s.get_ref()));
    if ticket.is_none() {
        let loc = t.ticket.as_ref().map_or_else(
            || ctx.at(spanned, &here),
            |s| ctx.at(s, &format!("{here}.ticket")),
        );
        problems.error(loc, "missing ticket");
    }
    if t.comments.is_empty() && t.attachments.is_empty() {
        problems.warn(
            ctx.at(spanned, &here),
            "nothing to do: no comments and no attachments",
        );
    }
    let mut rows: Vec<RawRow> = t
        .comments
        .iter()
        .enumerate()
        .map(|(j, c)| {
            let path = format!("{here}.comments[{j}]");
            let entry = c.get_ref();
            RawRow {
                loc: RowLoc::Text(ctx.at(c, &path)),
                ticket: ticket.clone(),
                comment: Some(RawComment {
                    source: format!("{}:{path}", ctx.file),
                    loc: ctx.at(c, &format!("{path}.text")),
                    text: entry.text.clone(),
                    is_internal: entry.is_internal,
                    is_resolution: entry.is_resolution,
                }),
                attachments: Vec::new(),
            }
        })
        .collect();
    if let Some(first) = t.attachments.first() {
        rows.push(RawRow {
            loc: RowLoc::Text(ctx.at(first, &format!("{here}.attachments"))),
            ticket,
            comment: None,
            attachments: inline_attachments(ctx, &here, &t.attachments),
        });
    }
    rows
}

fn inline_attachments(ctx: &Ctx<'_>, here: &str, list: &[Spanned<String>]) -> Vec<RawAttachment> {
    list.iter()
        .enumerate()
        .map(|(k, a)| {
            let path = format!("{here}.attachments[{k}]");
            RawAttachment {
                source: format!("{}:{path}", ctx.file),
                loc: ctx.at(a, &path),
                written: a.get_ref().clone(),
                path: ctx.dir.join(PathBuf::from(a.get_ref())),
            }
        })
        .collect()
}

/// Warn about a key serde did not use, with its line when it can be found and a suggestion.
fn warn_unknown_key(ctx: &Ctx<'_>, raw: &str, problems: &mut Problems) {
    let mut readable = String::new();
    let mut table = "";
    let segments: Vec<&str> = raw
        .split('.')
        .filter(|s| *s != "?" && !s.starts_with("$__serde_spanned"))
        .collect();
    for (n, seg) in segments.iter().enumerate() {
        if seg.chars().all(|c| c.is_ascii_digit()) {
            readable.push_str(&format!("[{seg}]"));
            continue;
        }
        if n + 1 < segments.len() {
            table = seg;
        }
        if !readable.is_empty() {
            readable.push('.');
        }
        readable.push_str(seg);
    }
    let key = segments.last().copied().unwrap_or_default();
    let line = ctx.text.lines().position(|l| {
        l.trim_start()
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    });
    let loc = match line {
        Some(l) => format!("{}:{}: {readable}", ctx.file, l + 1),
        None => format!("{}: {readable}", ctx.file),
    };
    problems.warn(
        loc,
        format!(
            "unknown key `{key}`{}; it is ignored",
            did_you_mean(key, known_keys(table).iter().copied())
        ),
    );
}
