//! The undo command: read a results CSV of this tool, delete every document it lists as
//! `created` or `existing`, list (or, on request, redact) its comments, and write an undo
//! results CSV through the journal, resumable like a job.
//!
//! Comments cannot be deleted through the Alga API (no DELETE route); the most undo can do is
//! replace their text, which the server allows only for comments of the key's own user.

mod select;
mod worker;

use crate::connect::Connection;
use crate::error::{Error, Result};
use crate::exec::retry::RetryPolicy;
use crate::exec::{Cancel, Progress, ProgressMode};
use crate::journal::{self, latest_by_key, ReadError, ResultRow, Status, Summary};
use crate::run;
use select::{Selection, Target};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Longest redaction text the server accepts (visible characters of a comment).
const MAX_COMMENT_CHARS: usize = 5000;

/// Options of `undo`.
#[derive(Debug, Clone, Default)]
pub struct UndoOptions {
    /// The results CSV of the job to undo.
    pub source: PathBuf,
    /// The undo results CSV (resumed when it exists); default
    /// `results/undo-<source stem>-<UTC timestamp>.csv`.
    pub results: Option<PathBuf>,
    /// Write the plan (status `planned`); send no DELETE or PUT.
    pub dry_run: bool,
    /// Replace the text of the job's comments by this text.
    pub redact_comments: Option<String>,
    /// Requests in flight at once (default 4).
    pub concurrency: Option<usize>,
    /// Client-side requests per minute (default 60).
    pub rate_per_minute: Option<u32>,
    /// Client-side burst (default 120).
    pub burst: Option<u32>,
    /// Retries per request (default 5).
    pub max_retries: Option<u32>,
    /// Only the final summary (and the comment count).
    pub quiet: bool,
}

/// Undo the job behind `opts.source`. `conn` is only called when requests will be sent (not
/// for `--dry-run`). Bad files and usage give [`Error::Usage`] (exit 2) before anything is
/// sent; a rejected key stops at once with [`Error::Unauthorized`] (exit 3) after the undo
/// results file is written.
pub async fn run_undo(
    opts: &UndoOptions,
    conn: impl FnOnce() -> Result<Connection>,
) -> Result<Summary> {
    let started = Instant::now();
    let redact = redaction_text(opts.redact_comments.as_deref())?;
    let sel = select::select(read_results(&opts.source)?);
    report_untouched(&sel, opts.quiet);
    let results = results_path(opts)?;
    let previous = load_previous(&results)?;
    let (targets, skipped) = select::pending(&sel, redact.is_some(), &previous);
    report_comments(&sel, &previous, redact.is_some(), opts.quiet);
    let mut summary = Summary {
        total: (targets.len() + skipped) as u64,
        skipped: skipped as u64,
        results: Some(results.clone()),
        ..Summary::default()
    };
    let order = op_order(&sel);
    if opts.dry_run {
        write_plan(opts, &results, &order, &targets, &previous, &mut summary)?;
    } else {
        let client = conn()?.client(rate(opts), burst(opts))?;
        let cancel = Cancel::new();
        let interrupted = cancel.install_ctrl_c(opts.quiet);
        let text = redact.unwrap_or_default();
        let outcome = execute(opts, &client, &cancel, &results, &order, targets, &text).await?;
        outcome.statuses.iter().for_each(|s| summary.count(*s));
        summary.interrupted = interrupted.is_cancelled();
        run::fill_client_stats(&mut summary, &client, started);
        if let Some(e) = outcome.fatal {
            // The run stops here: show what was done and where the undo results are.
            summary.elapsed = started.elapsed();
            eprintln!("{summary}");
            return Err(run::fatal_from(&client, e));
        }
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}

fn rate(opts: &UndoOptions) -> u32 {
    opts.rate_per_minute.unwrap_or(60)
}

fn burst(opts: &UndoOptions) -> u32 {
    opts.burst.unwrap_or(120).max(1)
}

/// Say which rows undo leaves alone, and warn about creates whose outcome is unknown.
fn report_untouched(sel: &Selection, quiet: bool) {
    if sel.untouched > 0 && !quiet {
        eprintln!(
            "{} row(s) left alone (failed, planned, cancelled or unknown outcome: nothing of theirs is known to exist)",
            sel.untouched
        );
    }
    if sel.in_doubt > 0 {
        eprintln!(
            "warning: {} operation(s) of the job have an unknown outcome (the import was interrupted); \
             run the import again with the same --results so that it reconciles them, then undo again",
            sel.in_doubt
        );
    }
}

/// The redaction text, checked like a comment body (1..=5000 characters, not blank).
fn redaction_text(text: Option<&str>) -> Result<Option<String>> {
    let Some(text) = text else {
        return Ok(None);
    };
    if text.trim().is_empty() {
        return Err(Error::Usage(
            "--redact-comments needs a non-empty text".into(),
        ));
    }
    let n = crate::job::server_len(text);
    if n > MAX_COMMENT_CHARS {
        return Err(Error::Usage(format!(
            "--redact-comments text has {n} characters (UTF-16 units, as the server counts); the server accepts at most {MAX_COMMENT_CHARS}"
        )));
    }
    Ok(Some(text.to_string()))
}

/// Read a results file; anything that is not a results CSV of this tool is a usage error.
fn read_results(path: &Path) -> Result<Vec<ResultRow>> {
    journal::read_rows(path).map_err(|e: ReadError| Error::Usage(e.to_string()))
}

/// `--results`, or `results/undo-<source stem>-<UTC timestamp>.csv`; never the source itself.
fn results_path(opts: &UndoOptions) -> Result<PathBuf> {
    let path = match &opts.results {
        Some(p) => p.clone(),
        None => {
            let stem = opts
                .source
                .file_stem()
                .map_or_else(|| "results".into(), |s| s.to_string_lossy());
            run::default_results_path(&format!("undo-{stem}"))
        }
    };
    let same = match (path.canonicalize(), opts.source.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        return Err(Error::Usage(format!(
            "--results {} is the file being undone; give a new file or an earlier undo's results",
            path.display()
        )));
    }
    Ok(path)
}

/// The latest row per op key of an earlier undo written to `path`, when it exists.
fn load_previous(path: &Path) -> Result<HashMap<String, ResultRow>> {
    if !path.exists() {
        return Ok(HashMap::new());
    }
    let rows = read_results(path)?;
    if let Some(why) = select::not_an_undo_file(&rows) {
        return Err(Error::Usage(format!(
            "--results {} is not an undo results file ({why}); to undo it, pass it as RESULTS.csv",
            path.display()
        )));
    }
    Ok(latest_by_key(rows).0)
}

/// The op keys undo may write, in source order.
fn op_order(sel: &Selection) -> Vec<String> {
    sel.documents
        .iter()
        .chain(&sel.comments)
        .map(|r| r.op_key.clone())
        .collect()
}

/// Comments cannot be deleted: say so, and list the ones an earlier undo has not already
/// redacted (unless they are being redacted now).
fn report_comments(
    sel: &Selection,
    previous: &HashMap<String, ResultRow>,
    redacting: bool,
    quiet: bool,
) {
    let open: Vec<&ResultRow> = sel
        .comments
        .iter()
        .filter(|c| {
            !previous
                .get(&c.op_key)
                .is_some_and(|p| select::undone(p.status))
        })
        .collect();
    let n = open.len();
    if n == 0 {
        return;
    }
    let plural = if n == 1 { "" } else { "s" };
    eprintln!(
        "{n} comment{plural} of this job cannot be deleted: the Alga API has no way to delete comments"
    );
    if redacting {
        eprintln!("replacing their text instead (--redact-comments)");
        return;
    }
    if !quiet {
        for c in open {
            eprintln!(
                "  ticket {} ({}): comment {}",
                c.ticket, c.ticket_id, c.comment_id
            );
        }
    }
    eprintln!(
        "pass --redact-comments TEXT to replace their text (the server allows it only for comments written by this API key's user)"
    );
}

/// Dry run: every target as `planned` (or `failed` when its ids are missing), what an
/// earlier undo finished as it was; print the request count and the time it implies.
fn write_plan(
    opts: &UndoOptions,
    results: &Path,
    order: &[String],
    targets: &[Target],
    previous: &HashMap<String, ResultRow>,
    summary: &mut Summary,
) -> Result<()> {
    let planned: HashMap<&str, ResultRow> = targets
        .iter()
        .map(|t| {
            let row = match &t.action {
                Ok(_) => worker::undo_row(&t.source, Status::Planned, ""),
                Err(why) => worker::undo_row(&t.source, Status::Failed, why),
            };
            (t.source.op_key.as_str(), row)
        })
        .collect();
    let mut rows = Vec::with_capacity(order.len());
    for key in order {
        let row = match (planned.get(key.as_str()), previous.get(key)) {
            (Some(row), _) => row.clone(),
            (None, Some(prev)) => prev.clone(),
            (None, None) => continue,
        };
        if planned.contains_key(key.as_str()) {
            summary.count(row.status);
        }
        rows.push(row);
    }
    let path = if results.exists() {
        results.with_extension("plan.csv")
    } else {
        results.to_path_buf()
    };
    journal::write_atomic(&path, &rows)?;
    summary.results = Some(path);
    eprintln!(
        "{}",
        run::estimate(targets.len() as u64, rate(opts), burst(opts))
    );
    Ok(())
}

/// Send the deletes and redactions through the journal.
async fn execute(
    opts: &UndoOptions,
    client: &crate::api::Client,
    cancel: &Cancel,
    results: &Path,
    order: &[String],
    targets: Vec<Target>,
    redact_text: &str,
) -> Result<worker::Outcome> {
    let (journal, handle) = journal::open(results)?;
    let mode = if opts.quiet {
        ProgressMode::Quiet
    } else {
        ProgressMode::Auto
    };
    let progress = Progress::start(targets.len() as u64, "undoing", mode, client);
    let retry = RetryPolicy {
        max_retries: opts.max_retries.unwrap_or(5),
        base: Duration::from_millis(500),
        max_delay: Duration::from_secs(30),
    };
    let workers = worker::Workers {
        client,
        retry: &retry,
        cancel,
        journal: &handle,
        progress: &progress,
        redact_text,
        quiet: opts.quiet,
        concurrency: opts.concurrency.unwrap_or(4),
    };
    let outcome = worker::run_all(&workers, targets).await;
    drop(handle);
    progress.finish();
    journal.finish(order).await?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn opts(source: &Path) -> UndoOptions {
        UndoOptions {
            source: source.to_path_buf(),
            ..UndoOptions::default()
        }
    }

    fn no_conn() -> Result<Connection> {
        Err(Error::Fatal("no connection expected".into()))
    }

    #[tokio::test]
    async fn a_file_with_other_columns_is_refused_with_exit_2() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("job.csv");
        let mut f = std::fs::File::create(&src).unwrap();
        writeln!(f, "ticket,comment_text,attachments").unwrap();
        writeln!(f, "TIC001000,hello,").unwrap();
        let err = run_undo(&opts(&src), no_conn).await.unwrap_err();
        assert!(matches!(err, Error::Usage(_)), "{err:?}");
        assert_eq!(err.exit_code(), crate::error::EXIT_USAGE);
        assert!(err.to_string().contains("not a results file"), "{err}");
    }

    #[tokio::test]
    async fn a_missing_source_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = run_undo(&opts(&dir.path().join("nope.csv")), no_conn)
            .await
            .unwrap_err();
        assert_eq!(err.exit_code(), crate::error::EXIT_USAGE, "{err}");
    }

    #[tokio::test]
    async fn the_source_cannot_be_its_own_undo_results() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("r.csv");
        journal::write_atomic(&src, &[]).unwrap();
        let o = UndoOptions {
            results: Some(src.clone()),
            ..opts(&src)
        };
        let err = run_undo(&o, no_conn).await.unwrap_err();
        assert_eq!(err.exit_code(), crate::error::EXIT_USAGE, "{err}");
    }

    fn source_row(key: &str, kind: &str, status: Status) -> ResultRow {
        ResultRow {
            op_key: key.into(),
            source: format!("job.csv:{key}"),
            ticket: "TIC001000".into(),
            ticket_id: "7aea3e18-2606-4297-831c-3766e602e9b6".into(),
            kind: kind.into(),
            status,
            comment_id: "0b7c7d9e-30a2-4c59-8a55-3a1c3c2b1f10".into(),
            document_id: "5aa73d90-db8b-4cba-a367-db1ff89c43fd".into(),
            file: "a.pdf".into(),
            bytes: "3".into(),
            sha256: "abc".into(),
            http_status: "201".into(),
            attempts: 1,
            error: String::new(),
            finished_at: String::new(),
        }
    }

    #[tokio::test]
    async fn dry_run_plans_without_connecting() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("job-results.csv");
        let rows = [
            source_row("d1", "document", Status::Created),
            source_row("d2", "document", Status::Failed),
            source_row("c1", "comment", Status::Created),
            source_row("d3", "document", Status::Existing),
        ];
        journal::write_atomic(&src, &rows).unwrap();
        let out = dir.path().join("undo.csv");
        let o = UndoOptions {
            results: Some(out.clone()),
            dry_run: true,
            redact_comments: Some("[removed]".into()),
            ..opts(&src)
        };
        let summary = run_undo(&o, no_conn).await.unwrap();
        assert_eq!((summary.total, summary.planned), (3, 3));
        assert_eq!(summary.exit_code(), 0);
        let plan = journal::read_rows(&out).unwrap();
        let got: Vec<(&str, &str, Status)> = plan
            .iter()
            .map(|r| (r.op_key.as_str(), r.kind.as_str(), r.status))
            .collect();
        assert_eq!(
            got,
            [
                ("d1", "document", Status::Planned),
                ("d3", "document", Status::Planned),
                ("c1", "comment", Status::Planned),
            ]
        );
        assert_eq!(plan[0].file, "a.pdf");
    }

    #[test]
    fn redaction_text_is_checked_like_a_comment() {
        assert!(redaction_text(None).unwrap().is_none());
        assert_eq!(
            redaction_text(Some("[removed]")).unwrap().as_deref(),
            Some("[removed]")
        );
        assert!(redaction_text(Some("  ")).is_err());
        assert!(redaction_text(Some(&"x".repeat(5001))).is_err());
    }
}
