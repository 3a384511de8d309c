//! What a finished command did, in one shape: [`RunRecord`]. It is built from a
//! [`Completed`] (`run`, `undo`, and later `restore`), a [`BackupSummary`] (`backup`), or the
//! error that stopped a command before it had a summary, and read by `--json` (it serialises
//! to the documented object) and by `--metrics-file` (`metrics.rs`).

use crate::error::Error;
use crate::export::BackupSummary;
use crate::journal::Summary;
use crate::runner::Completed;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// The command a record is about (the `command` field and metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    /// `alga-batch run`.
    Run,
    /// `alga-batch undo`.
    Undo,
    /// `alga-batch backup`.
    Backup,
    /// `alga-batch restore`.
    Restore,
}

impl Command {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Run => "run",
            Command::Undo => "undo",
            Command::Backup => "backup",
            Command::Restore => "restore",
        }
    }

    /// The statuses counted for this command, in a fixed order (every one is always present).
    pub fn statuses(self) -> &'static [&'static str] {
        match self {
            Command::Backup => &BACKUP_STATUSES,
            _ => &OPERATION_STATUSES,
        }
    }
}

/// Statuses of `run`, `undo` and `restore` operations (the results CSV's, plus `skipped`).
pub const OPERATION_STATUSES: [&str; 11] = [
    "created",
    "existing",
    "present",
    "skipped",
    "failed",
    "unknown",
    "cancelled",
    "planned",
    "deleted",
    "missing",
    "redacted",
];

/// Statuses of backed-up documents.
pub const BACKUP_STATUSES: [&str; 6] = [
    "downloaded",
    "unchanged",
    "failed",
    "left",
    "gone",
    "pruned",
];

/// When and how long: taken when a command starts.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    started: SystemTime,
    instant: std::time::Instant,
}

impl Clock {
    /// Now.
    pub fn start() -> Clock {
        Clock {
            started: SystemTime::now(),
            instant: std::time::Instant::now(),
        }
    }
}

/// Backup figures beyond the counts by status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BackupFigures {
    /// Tickets whose documents were checked.
    pub tickets: u64,
    /// Tickets that could not be listed or found.
    pub tickets_failed: u64,
    /// Documents seen on the server.
    pub documents: u64,
    /// Comments exported.
    pub comments: u64,
    /// Documents listed in the manifest at the end.
    pub manifest_documents: u64,
    /// Their bytes, added up.
    pub manifest_bytes: u64,
    /// `--max-duration` ran out (a clean stop).
    pub budget_reached: bool,
    /// The pass is incomplete: the next run continues at this position of the ticket order.
    pub continue_at: Option<u64>,
}

/// Requests in flight allowed per kind at the end of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ConcurrencyFigures {
    /// Found from the server's latency (`--concurrency auto`), or fixed.
    pub auto: bool,
    /// Comment posts.
    pub comment_posts: u32,
    /// Uploads.
    pub uploads: u32,
    /// Reads, lookups, downloads and deletes.
    pub reads: u32,
}

/// A finished command, as `--json` prints it and `--metrics-file` exports it.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// `run`, `undo`, `backup` or `restore`.
    pub command: Command,
    /// The job file's name without extension (`run`), the source results file's (`undo`),
    /// or the backup folder as given (`backup`).
    pub name: String,
    /// The process exit code.
    pub exit_code: u8,
    /// The error that stopped the command, when one did (one line).
    pub error: Option<String>,
    /// Stopped by Ctrl-C or SIGTERM.
    pub interrupted: bool,
    /// `--dry-run`: nothing was created, deleted or downloaded.
    pub dry_run: bool,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// RFC 3339 UTC.
    pub finished_at: String,
    /// Wall time of the whole command.
    pub elapsed_seconds: f64,
    /// Operations (run, undo) or documents seen (backup).
    pub total: u64,
    /// Counts by status; every status of the command is present.
    pub counts: BTreeMap<&'static str, u64>,
    /// HTTP attempts sent.
    pub requests: u64,
    /// Retries.
    pub retries: u64,
    /// 429 answers received.
    pub throttled: u64,
    /// File bytes streamed by uploads.
    pub uploaded_bytes: u64,
    /// Document bytes read by downloads.
    pub downloaded_bytes: u64,
    /// The server's refill rate the client learned, in requests per second (`null` until
    /// learned, e.g. a limiter that sent no headers).
    pub learned_rate_per_s: Option<f64>,
    /// The concurrency limits at the end (run, undo, restore).
    pub concurrency: Option<ConcurrencyFigures>,
    /// The results CSV (run, undo), when one was written.
    pub results: Option<PathBuf>,
    /// The manifest (backup).
    pub manifest: Option<PathBuf>,
    /// Backup figures (backup only).
    pub backup: Option<BackupFigures>,
    /// Unix time the command finished.
    #[serde(skip)]
    pub finished_unix: f64,
}

impl RunRecord {
    /// A record with nothing counted yet.
    fn base(command: Command, name: &str, clock: Clock, exit_code: u8) -> RunRecord {
        let now = SystemTime::now();
        RunRecord {
            command,
            name: name.to_string(),
            exit_code,
            error: None,
            interrupted: false,
            dry_run: false,
            started_at: rfc3339(clock.started),
            finished_at: rfc3339(now),
            elapsed_seconds: clock.instant.elapsed().as_secs_f64(),
            total: 0,
            counts: command.statuses().iter().map(|s| (*s, 0)).collect(),
            requests: 0,
            retries: 0,
            throttled: 0,
            uploaded_bytes: 0,
            downloaded_bytes: 0,
            learned_rate_per_s: None,
            concurrency: None,
            results: None,
            manifest: None,
            backup: None,
            finished_unix: unix(now),
        }
    }

    /// A run, undo or restore that went to its end (or stopped after writing its results).
    pub fn completed(
        command: Command,
        name: &str,
        clock: Clock,
        done: &Completed,
        dry_run: bool,
    ) -> RunRecord {
        let s = &done.summary;
        let mut r = RunRecord::base(command, name, clock, done.exit_code());
        r.error = done.fatal.as_ref().map(one_line);
        r.interrupted = s.interrupted;
        r.dry_run = dry_run;
        r.total = s.total;
        r.counts = operation_counts(s);
        r.requests = s.requests;
        r.retries = s.retries;
        r.throttled = s.throttled;
        r.uploaded_bytes = s.uploaded_bytes;
        r.downloaded_bytes = s.downloaded_bytes;
        r.learned_rate_per_s = s.learned_rate_per_s;
        r.concurrency = s.concurrency.map(|l| {
            let [comment_posts, uploads, reads] = l.last;
            ConcurrencyFigures {
                auto: l.auto,
                comment_posts,
                uploads,
                reads,
            }
        });
        r.results = s.results.clone();
        r
    }

    /// A backup that went to its end.
    pub fn backup(name: &str, clock: Clock, s: &BackupSummary, dry_run: bool) -> RunRecord {
        let mut r = RunRecord::base(Command::Backup, name, clock, s.exit_code());
        r.interrupted = s.interrupted;
        r.dry_run = dry_run;
        r.total = s.documents;
        let counts = [
            s.downloaded,
            s.unchanged,
            s.failed,
            s.left,
            s.gone,
            s.pruned,
        ];
        r.counts = BACKUP_STATUSES.iter().copied().zip(counts).collect();
        r.requests = s.requests;
        r.retries = s.retries;
        r.throttled = s.throttled;
        r.downloaded_bytes = s.downloaded_bytes;
        r.manifest = s.manifest.clone();
        r.backup = Some(BackupFigures {
            tickets: s.tickets,
            tickets_failed: s.tickets_failed,
            documents: s.documents,
            comments: s.comments,
            manifest_documents: s.manifest_documents,
            manifest_bytes: s.manifest_bytes,
            budget_reached: s.budget_reached.is_some(),
            continue_at: s.continue_at,
        });
        r
    }

    /// A command stopped by `e` before it had a summary (nothing counted).
    pub fn failed(command: Command, name: &str, clock: Clock, e: &Error) -> RunRecord {
        let mut r = RunRecord::base(command, name, clock, e.exit_code());
        r.error = Some(one_line(e));
        r.interrupted = matches!(e, Error::Interrupted);
        r
    }

    /// Whether this run counts as a success for `last_success` (exit 0, not a dry run).
    pub fn succeeded(&self) -> bool {
        self.exit_code == crate::error::EXIT_OK && !self.dry_run
    }

    /// Wall time.
    pub fn elapsed(&self) -> Duration {
        Duration::from_secs_f64(self.elapsed_seconds)
    }
}

/// The run summary's counts, by results-CSV status.
fn operation_counts(s: &Summary) -> BTreeMap<&'static str, u64> {
    let counts = [
        s.created,
        s.reconciled,
        s.present,
        s.skipped,
        s.failed,
        s.unknown,
        s.cancelled,
        s.planned,
        s.deleted,
        s.missing,
        s.redacted,
    ];
    OPERATION_STATUSES.iter().copied().zip(counts).collect()
}

/// An error's message on one line.
fn one_line(e: &Error) -> String {
    e.to_string().replace(['\r', '\n'], " ")
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Outcome;

    #[test]
    fn a_completed_run_carries_every_status_and_its_figures() {
        let mut summary = Summary {
            total: 3,
            requests: 7,
            retries: 2,
            throttled: 1,
            uploaded_bytes: 10,
            results: Some("r.csv".into()),
            ..Summary::default()
        };
        summary.count(Outcome::Created);
        summary.count(Outcome::Existing);
        summary.count(Outcome::Unknown);
        let done = Completed::new(summary);
        let r = RunRecord::completed(Command::Run, "job", Clock::start(), &done, false);
        assert_eq!(r.exit_code, 1);
        assert_eq!(r.counts.len(), OPERATION_STATUSES.len());
        assert_eq!((r.counts["created"], r.counts["existing"]), (1, 1));
        assert_eq!((r.counts["unknown"], r.counts["failed"]), (1, 0));
        assert_eq!((r.requests, r.retries, r.throttled), (7, 2, 1));
        assert!(!r.succeeded());
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["command"], "run");
        assert_eq!(json["results"], "r.csv");
        assert!(json["error"].is_null() && json["backup"].is_null());
    }

    #[test]
    fn an_error_is_its_exit_code_and_one_line() {
        let e = Error::Locked("in use\nby pid 7".into());
        let r = RunRecord::failed(Command::Backup, "b", Clock::start(), &e);
        assert_eq!(r.exit_code, 4);
        assert_eq!(r.error.as_deref(), Some("in use by pid 7"));
        assert_eq!(r.counts.len(), BACKUP_STATUSES.len());
        let i = RunRecord::failed(Command::Run, "j", Clock::start(), &Error::Interrupted);
        assert!(i.interrupted && i.exit_code == 130);
    }

    #[test]
    fn a_backup_counts_documents_by_status() {
        let s = BackupSummary {
            documents: 5,
            downloaded: 2,
            unchanged: 3,
            manifest_documents: 5,
            manifest_bytes: 99,
            ..BackupSummary::default()
        };
        let r = RunRecord::backup("/var/b", Clock::start(), &s, false);
        assert!(r.succeeded());
        assert_eq!((r.counts["downloaded"], r.counts["unchanged"]), (2, 3));
        let b = r.backup.unwrap();
        assert_eq!((b.manifest_documents, b.manifest_bytes), (5, 99));
        let dry = RunRecord::backup("/var/b", Clock::start(), &s, true);
        assert!(
            !dry.succeeded(),
            "a dry run is not a success for monitoring"
        );
    }
}
