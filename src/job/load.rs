//! The entry point: read a job file by its extension, validate it, return the job or the problems.

use std::path::Path;

use super::problems::{read_utf8, Problems};
use super::source::display_name;
use super::spec::Ctx;
use super::toml_job;
use super::validate::{rows_to_items, RawRow};
use super::{csv_job, Job, JobSettings, Problem, ValidateOptions};

/// Load a job file (`.csv` or `.toml`) and validate it: every problem at once, each naming
/// file, line and column. Returns the job only when there is no error (warnings may be present).
/// Needs no network: ticket numbers are resolved later.
pub fn load_and_validate(path: &Path, opts: &ValidateOptions) -> (Option<Job>, Vec<Problem>) {
    let (job, problems) = load_partial(path, opts);
    let errors = problems
        .iter()
        .any(|p| p.severity == super::Severity::Error);
    (job.filter(|_| !errors), problems)
}

/// Like [`load_and_validate`], but the job's valid items come back even when other items have
/// errors (`None` only when the file cannot be read at all), so that a run can report its
/// unresolved tickets together with the validation problems before stopping.
pub fn load_partial(path: &Path, opts: &ValidateOptions) -> (Option<Job>, Vec<Problem>) {
    let mut problems = Problems::default();
    let job = load(path, opts, &mut problems);
    (job, problems.into_vec())
}

fn load(path: &Path, opts: &ValidateOptions, problems: &mut Problems) -> Option<Job> {
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
    let text = read_utf8(path, &file, &file, problems)?;
    let stem = path
        .file_stem()
        .map_or_else(|| "job".to_string(), |s| s.to_string_lossy().into_owned());
    let (name, settings, rows): (String, JobSettings, Vec<RawRow>) = if ext == "csv" {
        let rows = csv_job::read_rows(&text, &file, dir, problems);
        (stem, JobSettings::default(), rows)
    } else {
        let ctx = Ctx {
            text: text.strip_prefix('\u{feff}').unwrap_or(&text),
            file: &file,
            dir,
        };
        let t = toml_job::read(&ctx, problems)?;
        (t.name.unwrap_or(stem), t.settings, t.rows)
    };
    let items = rows_to_items(rows, opts, problems);
    Some(Job {
        name,
        path: path.to_path_buf(),
        settings,
        items,
    })
}
