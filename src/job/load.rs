//! The entry points: read a job file by its extension and validate its rows as they are read;
//! return the job (or only its size) and the problems.

use std::path::Path;

use super::problems::Problems;
use super::raw::RowSink;
use super::source::display_name;
use super::spec::Ctx;
use super::text::{open_utf8, read_utf8};
use super::toml_job;
use super::validate::{ItemCount, ItemSink, Validator};
use super::{csv_job, Findings, Job, JobCheck, JobSettings, Problem, ValidateOptions};

/// Load a job file (`.csv` or `.toml`) and validate it: every problem at once, each naming
/// file, line and column (at most [`MAX_PER_KIND`](super::MAX_PER_KIND) of a kind, then a
/// count of the rest). Returns the job only when there is no error (warnings may be present).
/// Needs no network: ticket numbers are resolved later.
pub fn load_and_validate(path: &Path, opts: &ValidateOptions) -> (Option<Job>, Vec<Problem>) {
    let (job, findings) = load_partial(path, opts);
    (job.filter(|_| findings.errors == 0), findings.problems)
}

/// Like [`load_and_validate`], but the job's valid items come back even when other items have
/// errors (`None` only when the file cannot be read at all), so that a run can report its
/// unresolved tickets together with the validation problems before stopping.
pub fn load_partial(path: &Path, opts: &ValidateOptions) -> (Option<Job>, Findings) {
    let (job, findings) = load(path, opts, Vec::new());
    let job = job.map(|(head, items)| Job {
        name: head.name,
        path: path.to_path_buf(),
        settings: head.settings,
        items,
    });
    (job, findings)
}

/// Validate a job file as [`load_and_validate`] does, but keep none of its items, only count
/// them: memory does not grow with the job's rows, apart from the duplicate detector's 24
/// bytes per row. `None` when the file cannot be read at all.
pub fn check(path: &Path, opts: &ValidateOptions) -> (Option<JobCheck>, Findings) {
    let (job, findings) = load(path, opts, ItemCount::default());
    let job = job.map(|(head, count)| JobCheck {
        name: head.name,
        operations: count.0,
    });
    (job, findings)
}

/// What a job file says besides its rows.
struct Head {
    name: String,
    settings: JobSettings,
}

/// Read the job, validating each row as it is read; the rows' problems are listed after the
/// readers' ones.
fn load<S: ItemSink>(
    path: &Path,
    opts: &ValidateOptions,
    items: S,
) -> (Option<(Head, S)>, Findings) {
    let mut problems = Problems::default();
    let mut validator = Validator::new(opts, items);
    let head = read(path, &mut problems, &mut validator);
    let (items, rows_problems) = validator.finish();
    problems.append(rows_problems);
    (head.map(|h| (h, items)), problems.into_findings())
}

fn read(path: &Path, problems: &mut Problems, sink: &mut impl RowSink) -> Option<Head> {
    let file = display_name(path);
    let dir = path.parent().unwrap_or(Path::new(""));
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if ext != "csv" && ext != "toml" {
        problems.error(
            &file,
            format!("unknown job file type `.{ext}`: use a .csv or .toml job file"),
        );
        return None;
    }
    let stem = path
        .file_stem()
        .map_or_else(|| "job".to_string(), |s| s.to_string_lossy().into_owned());
    if ext == "csv" {
        let src = open_utf8(path, &file, &file, problems)?;
        csv_job::read_rows(src, &file, dir, problems, sink);
        return Some(Head {
            name: stem,
            settings: JobSettings::default(),
        });
    }
    let text = read_utf8(path, &file, &file, problems)?;
    let ctx = Ctx {
        text: text.strip_prefix('\u{feff}').unwrap_or(&text),
        file: &file,
        dir,
    };
    let t = toml_job::read(&ctx, problems, sink)?;
    Some(Head {
        name: t.name.unwrap_or(stem),
        settings: t.settings,
    })
}
