//! Flags of `alga-batch restore`, and their conversion into [`RestoreOptions`].

use super::output::OutputFlags;
use super::{ConnArgs, ExecFlags};
use crate::error::Result;
use crate::record::{Clock, Command};
use crate::restore::{self, RestoreOptions};
use clap::Args;
use std::path::PathBuf;

const RESTORE_HELP: &str = "\
Target tickets are found by their backed-up number, matched exactly on the target server
(or as --ticket-map says); restore never creates tickets. Before anything is sent, every
target ticket is checked: a document whose id is still on it, or one with the same name and
sha256 (a same-name, same-size candidate is downloaded and hashed), and a comment whose id is
still on it or that an earlier restore posted (its op key is in the comment's metadata), are
recorded as `present` and not sent again. So a restore in place puts back exactly what is
missing, and a second restore sends nothing. `undo` of a restore's results deletes the
documents it uploaded and never touches `present` ones.

Documents are uploaded under their original names, streamed from the backup and checked
against the manifest's sha256 on the way: a damaged file is recorded failed (\"backup file
damaged\") and never uploaded. Comments are posted per ticket in their original order, with
their internal and resolution flags, notifications suppressed. Their author and date cannot
be set through the API, so the text comes from --comment-template; the original text is put
in unchanged. Placeholders:
  {text}        the original text, unchanged (required, exactly once)
  {author}      the original author's name (else their user id)
  {author_id}   the original author's user id
  {date}        when it was written, as 2026-01-05 09:01 UTC
  {created_at}  when it was written, as backed up (ISO 8601)
  {ticket}      the backed-up ticket number
  {comment_id}  the backed-up comment id
{{ and }} are literal braces. When the result is over the server's 5,000 characters, the header
is posted as a comment of its own just before the original text.

Exit codes: 0 everything restored or already present, 1 some operations failed (the results
CSV is valid; rerun with --results to retry them), 2 invalid usage, template or ticket map, or a
target ticket that does not resolve (nothing was sent), 3 fatal, 4 the results file is in use
by another run, 130 interrupted.";

/// `alga-batch restore LOCATION [--results FILE] [--ticket REF]... ...`
#[derive(Args, Debug)]
#[command(after_help = RESTORE_HELP)]
pub(crate) struct RestoreArgs {
    /// The backup: a folder written by `backup` (manifest.csv, the documents, and
    /// <ticket>/comments.jsonl where --comments was used), or s3://BUCKET/PREFIX.
    location: String,
    /// Results CSV; an existing one is resumed (done operations are not sent again).
    /// Default: results/restore-<UTC timestamp>.csv.
    #[arg(long, value_name = "FILE")]
    results: Option<PathBuf>,
    /// Only this backed-up ticket (number or UUID); repeatable.
    #[arg(long = "ticket", value_name = "REF")]
    tickets: Vec<String>,
    /// Only the backed-up tickets listed in FILE (one number or UUID a line; # comments).
    #[arg(long = "tickets", value_name = "FILE")]
    tickets_file: Option<PathBuf>,
    /// CSV with columns source,target: backed-up ticket numbers or UUIDs, and the target
    /// ticket numbers or UUIDs they go to (other tickets go to their own number).
    #[arg(long, value_name = "CSV")]
    ticket_map: Option<PathBuf>,
    /// Do not restore comments.
    #[arg(long)]
    no_comments: bool,
    /// Do not restore documents.
    #[arg(long)]
    no_documents: bool,
    /// Text of each restored comment (placeholders below; \n is a line break); default:
    /// "Originally posted by {author} on {date}\n\n{text}".
    #[arg(long, value_name = "TEXT")]
    comment_template: Option<String>,
    /// Resolve tickets, check what the target holds (reads only), print what would be uploaded
    /// and posted and how long the rate budget makes it take, and write the plan; send nothing.
    #[arg(long)]
    dry_run: bool,
    /// Restore the tickets that resolve and record the others as failed (default: any target
    /// ticket that does not resolve stops the run before anything is sent, exit 2).
    #[arg(long)]
    skip_unresolved: bool,
    #[command(flatten)]
    exec: ExecFlags,
    #[command(flatten)]
    conn: ConnArgs,
    #[command(flatten)]
    out: OutputFlags,
}

/// Run `restore`, print the summary (or `--json`, `--metrics-file`), and return the exit
/// code.
pub(crate) async fn restore_cmd(a: RestoreArgs) -> u8 {
    let clock = Clock::start();
    let name = a.location.clone();
    let (out, dry_run) = (a.out.clone(), a.dry_run);
    let result = match out.start(out.log_file.as_deref()) {
        Ok(()) => match options(&a) {
            Ok(opts) => restore::run_restore(&opts, || a.conn.connection(None)).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    super::finish_ops(&out, Command::Restore, &name, clock, result, dry_run)
}

/// The restore options these flags ask for.
fn options(a: &RestoreArgs) -> Result<RestoreOptions> {
    let mut tickets = a.tickets.clone();
    if let Some(f) = &a.tickets_file {
        tickets.extend(crate::export::read_tickets_file(f)?);
    }
    Ok(RestoreOptions {
        location: a.location.clone(),
        results: a.results.clone(),
        tickets,
        ticket_map: a.ticket_map.clone(),
        documents: !a.no_documents,
        comments: !a.no_comments,
        template: a.comment_template.as_deref().map(unescape_newlines),
        dry_run: a.dry_run,
        skip_unresolved: a.skip_unresolved,
        pacing: a.exec.pacing_spec().resolve(crate::runner::AUTO),
        quiet: a.exec.quiet,
    })
}

/// `\n` written in a shell argument as two characters is a line break (`\\n` keeps both).
fn unescape_newlines(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some('n')) => {
                chars.next();
                out.push('\n');
            }
            ('\\', Some('\\')) => {
                chars.next();
                out.push('\\');
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backslash_n_in_a_template_is_a_line_break() {
        assert_eq!(
            unescape_newlines(r"by {author}\n\n{text}"),
            "by {author}\n\n{text}"
        );
        assert_eq!(unescape_newlines(r"a\\n"), r"a\n");
        assert_eq!(unescape_newlines(r"C:\temp"), r"C:\temp");
    }

    #[test]
    fn the_default_template_in_the_help_is_the_real_one() {
        let shown = "Originally posted by {author} on {date}\\n\\n{text}";
        assert_eq!(unescape_newlines(shown), restore::DEFAULT_TEMPLATE);
        for (name, _) in restore::PLACEHOLDERS {
            assert!(RESTORE_HELP.contains(&format!("{{{name}}}")), "{name}");
        }
    }
}
