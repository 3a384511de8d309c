//! The undo command: read a results CSV of this tool, delete every document it lists as
//! `created` or `existing`, list (or, on request, redact) its comments, and write an undo
//! results CSV through the journal, resumable like a job.
//!
//! Comments cannot be deleted through the Alga API (no DELETE route); the most undo can do is
//! replace their text, which the server allows only for comments of the key's own user.

mod select;

use crate::connect::Connection;
use crate::error::{Error, Result};
use crate::import::default_results_path;
use crate::job::TicketRef;
use crate::journal::{self, ReadError, ResultRow, Status};
use crate::plan::{OpKind, Operation};
use crate::runner::{Completed, OpsOptions, Pacing, Session};
use select::{Action, Selection, Target};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use uuid::Uuid;

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
    /// How requests are paced and retried.
    pub pacing: Pacing,
    /// Only the final summary (and the comment count).
    pub quiet: bool,
}

/// Undo the job behind `opts.source`. `conn` is only called when requests will be sent (not
/// for `--dry-run`). Bad files and usage give [`Error::Usage`] (exit 2) before anything is
/// sent; a rejected key stops at once (exit 3) after the undo results file is written.
pub async fn run_undo(
    opts: &UndoOptions,
    conn: impl FnOnce() -> Result<Connection>,
) -> Result<Completed> {
    let redact = redaction_text(opts.redact_comments.as_deref())?;
    let sel = select::select(read_results(&opts.source)?);
    report_untouched(&sel, opts.quiet);
    let results = results_path(opts)?;
    let session = Session::open(&results, opts.quiet)?;
    check_undo_file(&results, session.previous())?;
    report_comments(&sel, session.previous(), redact.is_some(), opts.quiet);
    let text: Arc<str> = Arc::from(redact.clone().unwrap_or_default());
    let ops: Vec<Operation> = select::targets(&sel, redact.is_some())
        .into_iter()
        .map(|t| operation(t, &text))
        .collect();
    let ops_opts = OpsOptions {
        job_name: format!("undo of {}", opts.source.display()),
        dry_run: opts.dry_run,
        verb: "undoing",
        quiet: opts.quiet,
        ..OpsOptions::default()
    };
    let done = session.run_ops(ops, conn, &opts.pacing, &ops_opts).await?;
    report_refused_redactions(&done, opts.quiet);
    Ok(done)
}

/// The operation that undoes one target; a target without valid ids is blocked (recorded as
/// failed, nothing sent).
fn operation(t: Target, text: &Arc<str>) -> Operation {
    let ticket = TicketRef::parse(&t.source.ticket)
        .unwrap_or_else(|| TicketRef::Number(t.source.ticket.clone()));
    let (ticket_id, blocked, kind) = match t.action {
        Ok(Action::Delete { ticket, document }) => (
            Some(ticket),
            None,
            OpKind::DeleteDocument {
                document,
                row: Box::new(t.source.clone()),
            },
        ),
        Ok(Action::Redact { ticket, comment }) => (
            Some(ticket),
            None,
            OpKind::RedactComment {
                comment,
                text: text.clone(),
                row: Box::new(t.source.clone()),
            },
        ),
        Err(why) => (
            Some(Uuid::nil()),
            Some(why),
            OpKind::DeleteDocument {
                document: Uuid::nil(),
                row: Box::new(t.source.clone()),
            },
        ),
    };
    Operation {
        op_key: t.source.op_key.clone(),
        source: t.source.source.clone(),
        ticket,
        ticket_id,
        blocked,
        kind,
        extra: Default::default(),
    }
}

/// Say which rows undo leaves alone, and warn about creates whose outcome is unknown.
fn report_untouched(sel: &Selection, quiet: bool) {
    let others = sel.untouched - sel.present;
    if others > 0 && !quiet {
        eprintln!(
            "{others} row(s) left alone (failed, planned, cancelled or unknown outcome: nothing of theirs is known to exist)"
        );
    }
    if sel.present > 0 && !quiet {
        eprintln!(
            "{} row(s) left alone: the restore found them on the target already (status present), so they are not its own",
            sel.present
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

/// Each redaction the server refused (it lets a key edit only its own user's comments).
fn report_refused_redactions(done: &Completed, quiet: bool) {
    if quiet {
        return;
    }
    for r in done
        .problems
        .iter()
        .filter(|r| r.kind == select::KIND_COMMENT)
    {
        eprintln!(
            "cannot redact comment {} on ticket {}: {}",
            r.comment_id, r.ticket, r.error
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
            default_results_path(&format!("undo-{stem}"))
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

/// An existing `--results` must be an undo's own results file.
fn check_undo_file(path: &Path, previous: &HashMap<String, ResultRow>) -> Result<()> {
    let rows: Vec<ResultRow> = previous.values().cloned().collect();
    if let Some(why) = select::not_an_undo_file(&rows) {
        return Err(Error::Usage(format!(
            "--results {} is not an undo results file ({why}); to undo it, pass it as RESULTS.csv",
            path.display()
        )));
    }
    Ok(())
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
                .is_some_and(|p| p.status == Status::Redacted)
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
        let summary = run_undo(&o, no_conn).await.unwrap().summary;
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
