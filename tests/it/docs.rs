//! The documentation's job examples stay valid: every job example fenced in README.md, and every
//! file in `jobs/`, is validated as a user would validate it.
//!
//! The rule for README.md: a fenced block whose info string is `csv` or `toml` IS a job example,
//! and must validate. A `csv` block is an import job; a `toml` block is an export job when it
//! sets `kind = "export"`, else an import job. Every other fence (`sh`, `cron`, `ini`, `text`…)
//! is not a job; a CSV or TOML snippet that is not a whole job must be fenced as `text`.
//! Attachments an example names are created (empty) in a temporary folder beside it.

use std::path::{Component, Path, PathBuf};
use std::process::Command;

/// A fenced block of README.md: its info string, first line number and text.
#[derive(Debug)]
struct Fence {
    info: String,
    line: usize,
    body: String,
}

/// Every fenced block of a Markdown text (``` fences at the start of a line).
fn fences(markdown: &str) -> Vec<Fence> {
    let mut out = Vec::new();
    let mut open: Option<Fence> = None;
    for (i, line) in markdown.lines().enumerate() {
        let Some(rest) = line.trim_start().strip_prefix("```") else {
            if let Some(f) = open.as_mut() {
                f.body.push_str(line);
                f.body.push('\n');
            }
            continue;
        };
        match open.take() {
            Some(f) => out.push(f),
            None => {
                open = Some(Fence {
                    info: rest.split_whitespace().next().unwrap_or("").to_string(),
                    line: i + 2,
                    body: String::new(),
                })
            }
        }
    }
    assert!(open.is_none(), "README.md has an unclosed fence");
    out
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The attachment paths an import job names: the `attachments` column of a CSV job (split on
/// `;`), or every `attachments` array of a TOML job.
fn attachments(kind: &str, body: &str) -> Vec<String> {
    if kind == "csv" {
        let mut rdr = csv::ReaderBuilder::new()
            .comment(Some(b'#'))
            .from_reader(body.as_bytes());
        let headers = rdr.headers().expect("a csv example has a header").clone();
        let Some(col) = headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case("attachments"))
        else {
            return Vec::new();
        };
        rdr.records()
            .filter_map(|r| r.ok()?.get(col).map(str::to_string))
            .flat_map(|cell| {
                cell.split(';')
                    .map(|p| p.trim().to_string())
                    .collect::<Vec<_>>()
            })
            .filter(|p| !p.is_empty())
            .collect()
    } else {
        let value: toml::Value = toml::from_str(body).expect("a toml example parses");
        let mut found = Vec::new();
        collect_attachments(&value, &mut found);
        found
    }
}

fn collect_attachments(v: &toml::Value, found: &mut Vec<String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                match (k.as_str(), v) {
                    ("attachments", toml::Value::Array(a)) => {
                        found.extend(a.iter().filter_map(|p| p.as_str().map(str::to_string)));
                    }
                    _ => collect_attachments(v, found),
                }
            }
        }
        toml::Value::Array(a) => a.iter().for_each(|v| collect_attachments(v, found)),
        _ => {}
    }
}

/// `alga-batch validate FILE` with no connection settings: exit code and output.
fn validate(file: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_alga-batch"))
        .arg("validate")
        .arg(file)
        .env_remove("ALGA_BASE_URL")
        .env_remove("ALGA_API_KEY")
        .output()
        .expect("the binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// An export job is checked as `backup --job` checks it before sending anything.
fn check_export_job(file: &Path) -> Result<(), String> {
    let spec = alga_batch::export::load_job(file).map_err(|e| e.to_string())?;
    if let Some(url) = &spec.base_url {
        alga_batch::connect::parse_base_url(url).map_err(|e| e.to_string())?;
    }
    alga_batch::export::BackupOptions::from_spec(spec).map_err(|e| e.to_string())?;
    Ok(())
}

fn is_export(body: &str) -> bool {
    toml::from_str::<toml::Value>(body)
        .ok()
        .and_then(|v| v.get("kind")?.as_str().map(|k| k == "export"))
        .unwrap_or(false)
}

/// Writes one README example into `dir/example/` with its attachments and checks it.
fn check_example(dir: &Path, n: usize, fence: &Fence) -> Result<(), String> {
    let folder = dir.join(format!("example-{n}"));
    std::fs::create_dir_all(&folder).unwrap();
    let file = folder.join(format!("README-example.{}", fence.info));
    std::fs::write(&file, &fence.body).unwrap();
    if fence.info == "toml" && is_export(&fence.body) {
        return check_export_job(&file);
    }
    for rel in attachments(&fence.info, &fence.body) {
        let inside = Path::new(&rel)
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        assert!(
            inside,
            "README.md:{}: attachment {rel:?} leaves the example's folder",
            fence.line
        );
        let path = folder.join(&rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"example attachment\n").unwrap();
    }
    match validate(&file) {
        (0, _) => Ok(()),
        (code, text) => Err(format!("exit {code}: {text}")),
    }
}

#[test]
fn every_job_example_in_the_readme_validates() {
    let readme = std::fs::read_to_string(manifest_dir().join("README.md")).unwrap();
    let all = fences(&readme);
    let jobs: Vec<&Fence> = all
        .iter()
        .filter(|f| f.info == "csv" || f.info == "toml")
        .collect();
    assert!(
        jobs.iter().any(|f| f.info == "csv") && jobs.iter().any(|f| f.info == "toml"),
        "the README lost its CSV or TOML job example: {all:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let failures: Vec<String> = jobs
        .iter()
        .enumerate()
        .filter_map(|(n, f)| {
            check_example(dir.path(), n, f)
                .err()
                .map(|e| format!("README.md:{} ({} block): {e}", f.line, f.info))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_file_in_jobs_validates() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(manifest_dir().join("jobs")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let result = if path.extension().is_some_and(|e| e == "toml") && is_export(&text) {
            check_export_job(&path)
        } else {
            match validate(&path) {
                (0, _) => Ok(()),
                (code, out) => Err(format!("exit {code}: {out}")),
            }
        };
        if let Err(e) = result {
            failures.push(format!("{}: {e}", path.display()));
        }
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} job files found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The checker itself fails on the CSV example as it was (a backslash-escaped quote), and on a
/// TOML job with a bad value.
#[test]
fn a_broken_csv_example_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let broken = Fence {
        info: "csv".into(),
        line: 1,
        body: "ticket,comment_text\nTIC001000,\"Customer called, \\\"urgent\\\".\"\n".into(),
    };
    assert!(check_example(dir.path(), 0, &broken).is_err());
    let toml = Fence {
        info: "toml".into(),
        line: 1,
        body: "[[tickets]]\nticket = \"TIC001000\"\nattachments = [\"a.txt\"]\n\n[[tickets.comments]]\ntext = \"hi\"\nis_internal = \"maybe\"\n".into(),
    };
    assert!(check_example(dir.path(), 1, &toml).is_err());
}
