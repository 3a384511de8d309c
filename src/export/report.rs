//! What a backup did: the counters shared by the workers, the summary (full, or one line for
//! `--quiet`), the exit code, the `--dry-run` estimate and the `--log-file` entry.

use crate::error::{Error, Result, EXIT_INTERRUPTED, EXIT_OK, EXIT_SOME_FAILED};
use crate::runner::group_thousands;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Live counters, updated by the workers.
#[derive(Default)]
pub struct Tally {
    pub(crate) tickets: AtomicU64,
    pub(crate) tickets_failed: AtomicU64,
    pub(crate) documents: AtomicU64,
    pub(crate) downloaded: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) unchanged: AtomicU64,
    pub(crate) rehashed: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) left: AtomicU64,
    pub(crate) gone: AtomicU64,
    pub(crate) pruned: AtomicU64,
    pub(crate) comments: AtomicU64,
    problems: Mutex<Vec<String>>,
}

impl Tally {
    /// Add to a counter.
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// Note a problem (one line; control characters from server names escaped, so a name
    /// cannot move the cursor or recolour the terminal).
    pub(crate) fn problem(&self, line: String) {
        self.problems
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(printable(&line));
    }

    /// Freeze into a summary.
    pub(crate) fn summary(&self) -> BackupSummary {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BackupSummary {
            tickets: g(&self.tickets),
            tickets_failed: g(&self.tickets_failed),
            documents: g(&self.documents),
            downloaded: g(&self.downloaded),
            bytes: g(&self.bytes),
            unchanged: g(&self.unchanged),
            rehashed: g(&self.rehashed),
            failed: g(&self.failed),
            left: g(&self.left),
            gone: g(&self.gone),
            pruned: g(&self.pruned),
            comments: g(&self.comments),
            problems: self
                .problems
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
            ..BackupSummary::default()
        }
    }
}

/// `line` with control and bidirectional-override characters escaped (`\u{1b}`, `\n`).
pub(crate) fn printable(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        let hidden = matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || hidden {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The outcome of one backup run.
#[derive(Debug, Clone, Default)]
pub struct BackupSummary {
    /// Tickets whose documents were checked.
    pub tickets: u64,
    /// Tickets that could not be listed or found.
    pub tickets_failed: u64,
    /// Documents seen on the server.
    pub documents: u64,
    /// Downloaded in this run.
    pub downloaded: u64,
    /// Bytes downloaded.
    pub bytes: u64,
    /// Already in the backup, unchanged (not downloaded again).
    pub unchanged: u64,
    /// Backed-up files read and hashed to check them (all of them with `--verify`; else only
    /// those modified after they were recorded).
    pub rehashed: u64,
    /// Documents that failed.
    pub failed: u64,
    /// Documents left for the next run (budget reached or interrupted).
    pub left: u64,
    /// Documents in the manifest that are gone from the server.
    pub gone: u64,
    /// Of those, deleted with `--prune`.
    pub pruned: u64,
    /// Comments written.
    pub comments: u64,
    /// HTTP attempts.
    pub requests: u64,
    /// Retries.
    pub retries: u64,
    /// 429s.
    pub throttled: u64,
    /// Document bytes read from download bodies, failed attempts included.
    pub downloaded_bytes: u64,
    /// Documents listed in the manifest at the end of the run.
    pub manifest_documents: u64,
    /// Their bytes, added up.
    pub manifest_bytes: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Stopped because `--max-duration` ran out.
    pub budget_reached: Option<Duration>,
    /// Ctrl-C.
    pub interrupted: bool,
    /// This run continued an earlier pass at this position of the ticket order.
    pub resumed_at: Option<u64>,
    /// The pass is not complete: the next run continues at this position.
    pub continue_at: Option<u64>,
    /// The manifest.
    pub manifest: Option<PathBuf>,
    /// One line per problem.
    pub problems: Vec<String>,
}

impl BackupSummary {
    /// 130 interrupted, 1 when anything failed, else 0 (a budget stop is a clean stop).
    pub fn exit_code(&self) -> u8 {
        if self.interrupted {
            EXIT_INTERRUPTED
        } else if self.failed > 0 || self.tickets_failed > 0 {
            EXIT_SOME_FAILED
        } else {
            EXIT_OK
        }
    }

    /// The `--quiet` line.
    pub fn one_line(&self) -> String {
        let mut s = format!(
            "backup: {} tickets, {} documents: {} downloaded ({}), {} unchanged, {} failed",
            self.tickets,
            self.documents,
            self.downloaded,
            human_bytes(self.bytes),
            self.unchanged,
            self.failed
        );
        if self.rehashed > 0 {
            s.push_str(&format!(", {} re-hashed", self.rehashed));
        }
        if self.tickets_failed > 0 {
            s.push_str(&format!(
                ", {} ticket{} failed",
                self.tickets_failed,
                if self.tickets_failed == 1 { "" } else { "s" }
            ));
        }
        if self.gone > 0 {
            s.push_str(&format!(", {} gone from server", self.gone));
        }
        if let Some(d) = self.budget_reached {
            s.push_str(&format!(
                ", stopped at the {} budget",
                humantime::format_duration(d)
            ));
        }
        if self.interrupted {
            s.push_str(", interrupted");
        }
        s.push_str(&format!(", {:.0}s", self.elapsed.as_secs_f64()));
        s
    }

    /// Append the summary and every problem to `path`.
    pub fn append_log(&self, path: &Path) -> Result<()> {
        let now = log_time();
        let mut text = format!("{now} {}\n", self.one_line());
        for p in &self.problems {
            text.push_str(&format!("{now}   {p}\n"));
        }
        append(path, &text)
    }
}

/// Append a run that stopped with an error (locked folder, rejected key...) to `path`.
pub fn append_failure(path: &Path, e: &Error) -> Result<()> {
    let line = e.to_string().replace(['\r', '\n'], " ");
    append(
        path,
        &format!(
            "{} backup failed (exit {}): {line}\n",
            log_time(),
            e.exit_code()
        ),
    )
}

fn log_time() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn append(path: &Path, text: &str) -> Result<()> {
    let err = |e| Error::io("cannot write log file", path, e);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)
}

impl fmt::Display for BackupSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.one_line())?;
        if let Some(at) = self.resumed_at {
            writeln!(
                f,
                "continued the previous pass at ticket {} of the order",
                group_thousands(at + 1)
            )?;
        }
        if let Some(at) = self.continue_at {
            writeln!(
                f,
                "the next run continues at ticket {} of the order{}",
                group_thousands(at + 1),
                if self.left > 0 {
                    format!(" ({} documents of started tickets left)", self.left)
                } else {
                    String::new()
                }
            )?;
        } else if self.resumed_at.is_some() {
            writeln!(
                f,
                "pass complete: the next run starts from the first ticket"
            )?;
        }
        if self.pruned > 0 {
            writeln!(
                f,
                "{} files of documents gone from the server deleted (--prune)",
                self.pruned
            )?;
        } else if self.gone > 0 {
            writeln!(
                f,
                "files of documents gone from the server are kept; --prune deletes them"
            )?;
        }
        if self.comments > 0 {
            writeln!(f, "{} comments exported", self.comments)?;
        }
        write!(
            f,
            "{} requests sent, {} retries, {} 429s received",
            self.requests, self.retries, self.throttled
        )?;
        if let Some(p) = &self.manifest {
            write!(f, "\nmanifest: {}", p.display())?;
        }
        Ok(())
    }
}

/// `1.5 GiB`, `12 KiB`, `7 B`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// What a backup of `tickets` tickets costs in list requests, e.g.
/// "10,000 tickets: about 2 h 45 min of list requests at 60/min".
pub fn estimate(tickets: u64, comments: bool, rate: u32, burst: u32) -> String {
    let pages = tickets.div_ceil(super::select::PAGE_SIZE).max(1);
    let per_ticket = if comments { 2 } else { 1 };
    let requests = pages + tickets * per_ticket;
    let n = group_thousands(tickets);
    let what = if comments {
        "document and comment lists"
    } else {
        "document lists"
    };
    let detail = format!(
        "{} requests: {} ticket list page{} + {what}; downloads of new or changed documents come on top",
        group_thousands(requests),
        group_thousands(pages),
        if pages == 1 { "" } else { "s" }
    );
    if rate == 0 || requests <= u64::from(burst) {
        return format!("{n} tickets: list requests fit in the burst of {burst} ({detail})");
    }
    let secs = (requests - u64::from(burst)) * 60 / u64::from(rate);
    format!(
        "{n} tickets: about {} of list requests at {rate}/min ({detail})",
        rough_duration(secs)
    )
}

/// "2 h 45 min" (to 5 min above an hour), "29 min", "40 s".
fn rough_duration(secs: u64) -> String {
    if secs >= 3600 {
        let mins = (secs + 150) / 300 * 5;
        format!("{} h {} min", mins / 60, mins % 60)
    } else if secs >= 60 {
        format!("{} min", (secs + 30) / 60)
    } else {
        format!("{secs} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_reads_like_the_readme() {
        let e = estimate(10_000, false, 60, 120);
        assert!(
            e.starts_with("10,000 tickets: about 2 h 45 min of list requests at 60/min"),
            "{e}"
        );
        assert!(e.contains("10,100 requests: 100 ticket list pages"), "{e}");
        let c = estimate(10_000, true, 60, 120);
        assert!(c.contains("about 5 h 35 min"), "{c}");
        assert!(estimate(50, false, 60, 120).contains("fit in the burst"));
    }

    #[test]
    fn exit_codes_and_the_quiet_line() {
        let mut s = BackupSummary {
            tickets: 3,
            documents: 5,
            downloaded: 2,
            bytes: 3 * 1024 * 1024,
            unchanged: 3,
            ..Default::default()
        };
        assert_eq!(s.exit_code(), 0);
        assert!(s
            .one_line()
            .contains("2 downloaded (3.0 MiB), 3 unchanged, 0 failed"));
        s.budget_reached = Some(Duration::from_secs(3000));
        assert_eq!(s.exit_code(), 0, "a budget stop is clean");
        assert!(
            s.one_line().contains("stopped at the 50m budget"),
            "{}",
            s.one_line()
        );
        s.tickets_failed = 1;
        assert_eq!(s.exit_code(), 1);
        assert!(
            s.one_line().contains("0 failed, 1 ticket failed"),
            "{}",
            s.one_line()
        );
        s.tickets_failed = 0;
        s.failed = 1;
        assert_eq!(s.exit_code(), 1);
        s.interrupted = true;
        assert_eq!(s.exit_code(), 130);
    }

    #[test]
    fn problem_lines_carry_no_control_characters() {
        let t = Tally::default();
        t.problem("TIC1/x\u{1b}[2J\u{7}y\r\nz\u{202E}gpj.exe: http 500".into());
        let lines = t.summary().problems;
        assert_eq!(
            lines,
            vec!["TIC1/x\\u{1b}[2J\\u{7}y\\r\\nz\\u{202e}gpj.exe: http 500".to_string()]
        );
        assert!(!lines[0].chars().any(char::is_control));
    }

    #[test]
    fn log_file_gets_the_summary_and_problems_appended() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("backup.log");
        let s = BackupSummary {
            problems: vec!["TIC1/a.txt: http 500".into()],
            ..Default::default()
        };
        s.append_log(&log).unwrap();
        s.append_log(&log).unwrap();
        append_failure(&log, &Error::Locked("locked by pid 7".into())).unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(text.lines().count(), 5);
        assert!(text.contains("TIC1/a.txt: http 500"));
        assert!(
            text.contains("backup failed (exit 4): locked by pid 7"),
            "{text}"
        );
    }
}
