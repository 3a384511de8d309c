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
/// them: memory does not grow with the job's rows, apart from the duplicate detector (a
/// 24-byte entry per distinct row, about 50 bytes with its table). `None` when the file cannot
/// be read at all.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::tests::fixture;
    use crate::job::{describe, MAX_PER_KIND};

    /// A CSV job of `n` rows: comments over 50 tickets, some quoted over two lines, every 10th
    /// with an attachment, and a `#` comment line.
    fn generated_csv(n: usize) -> String {
        let mut csv = String::from("# generated\nticket,comment_text,attachments\n");
        for i in 0..n {
            let text = match i % 3 {
                0 => format!("\"note {i},\nsecond line\""),
                _ => format!("note {i}"),
            };
            let file = if i % 10 == 0 { "a.txt" } else { "" };
            csv.push_str(&format!("TIC{:06},{text},{file}\n", 1000 + i % 50));
        }
        csv
    }

    #[test]
    fn check_counts_what_a_run_would_keep_for_csv_and_source_jobs() {
        let export = generated_csv(5_000)
            .replace("# generated\n", "")
            .replace("attachments", "files");
        let toml = "[[tickets]]\nticket = \"TIC001000\"\nattachments = [\"a.txt\"]\n\
                [[tickets.comments]]\ntext = \"inline\"\n\
                [[sources]]\npath = \"export.csv\"\n\
                [sources.columns]\nticket = \"ticket\"\nbody = \"comment_text\"\nattachments = \"files\"\n";
        let dir = fixture(&[
            ("j.csv", &generated_csv(5_000)),
            ("j.toml", toml),
            ("export.csv", &export),
            ("a.txt", "a"),
        ]);
        for name in ["j.csv", "j.toml"] {
            let path = dir.path().join(name);
            let (job, problems) = load_and_validate(&path, &ValidateOptions::default());
            assert!(problems.is_empty(), "{}", describe(&problems));
            let kept = job.unwrap().items.len();
            let (counted, findings) = check(&path, &ValidateOptions::default());
            assert_eq!(findings, Findings::default());
            let counted = counted.unwrap();
            assert_eq!(counted.operations, kept, "{name}");
            assert_eq!(counted.name, "j");
        }
        let (job, _) = check(&dir.path().join("j.csv"), &ValidateOptions::default());
        assert_eq!(job.unwrap().operations, 5_000 + 500);
        let (job, _) = check(&dir.path().join("j.toml"), &ValidateOptions::default());
        assert_eq!(job.unwrap().operations, 2 + 5_000 + 500);
    }

    #[test]
    fn a_source_with_thousands_of_bad_rows_lists_a_bounded_number_after_its_quoting_errors() {
        let mut export = String::from("ticket,body,internal\n");
        for i in 0..3_000 {
            export.push_str(&format!("TIC001000,note {i},maybe\n"));
        }
        export.push_str("TIC001000,\"never closed\n");
        let toml = "[[sources]]\npath = \"export.csv\"\n\
                [sources.columns]\nticket = \"ticket\"\nbody = \"body\"\ninternal = \"internal\"\n";
        let dir = fixture(&[("j.toml", toml), ("export.csv", &export)]);
        let (job, findings) = check(&dir.path().join("j.toml"), &ValidateOptions::default());
        assert!(job.is_some());
        assert_eq!((findings.errors, findings.warnings), (3_001, 0));
        let p = &findings.problems;
        assert_eq!(p.len(), 1 + MAX_PER_KIND + 1, "{}", describe(p));
        // As when the export was parsed whole before its rows were read: the quoting error first.
        assert_eq!(p[0].location, "export.csv:3002");
        assert!(p[0].message.contains("never closed"));
        assert_eq!(p[1].location, "export.csv:2: column internal");
        assert_eq!(p[MAX_PER_KIND].location, "export.csv:101: column internal");
        assert_eq!(p[MAX_PER_KIND + 1].location, "export.csv");
        assert_eq!(
        p[MAX_PER_KIND + 1].message,
        "2900 more errors like \"bad boolean `maybe`\" are not listed (only the first 100 of each kind are)"
    );
    }
}
