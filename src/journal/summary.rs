//! The run summary: what happened, in numbers, and the exit code it implies.

use super::outcome::Outcome;
use crate::error::{EXIT_INTERRUPTED, EXIT_OK, EXIT_SOME_FAILED};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Counts for the end-of-run summary.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Operations in the job.
    pub total: u64,
    /// Created in this run.
    pub created: u64,
    /// Found on the server by reconciliation in this run.
    pub reconciled: u64,
    /// Already done by an earlier run (skipped).
    pub skipped: u64,
    /// Failed.
    pub failed: u64,
    /// Cancelled.
    pub cancelled: u64,
    /// Outcome unknown (reconciled by the next run).
    pub unknown: u64,
    /// Planned (dry run).
    pub planned: u64,
    /// Undo: deleted.
    pub deleted: u64,
    /// Undo: already gone.
    pub missing: u64,
    /// Undo: comments whose text was replaced.
    pub redacted: u64,
    /// Restore: on the target before the run (nothing sent).
    pub present: u64,
    /// HTTP attempts sent.
    pub requests: u64,
    /// 429s received.
    pub throttled: u64,
    /// Retries.
    pub retries: u64,
    /// File bytes uploaded (every attempt).
    pub uploaded_bytes: u64,
    /// Document bytes downloaded (every attempt).
    pub downloaded_bytes: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// The server's refill rate the client learned, per second ("server allows ~10/s").
    pub learned_rate_per_s: Option<f64>,
    /// The concurrency limits of the run, when a client was connected.
    pub concurrency: Option<Limits>,
    /// Results file.
    pub results: Option<PathBuf>,
    /// Interrupted by Ctrl-C.
    pub interrupted: bool,
}

/// The concurrency limits of a run, per class: comment posts, uploads, reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// At the end of the run.
    pub last: [u32; 3],
    /// The highest found during the run.
    pub highest: [u32; 3],
    /// Found adaptively (`--concurrency auto`) rather than fixed.
    pub auto: bool,
}

impl Summary {
    /// Count one operation's outcome.
    pub fn count(&mut self, outcome: Outcome) {
        let n = match outcome {
            Outcome::Created => &mut self.created,
            Outcome::Existing => &mut self.reconciled,
            Outcome::Failed(_) => &mut self.failed,
            Outcome::Unknown => &mut self.unknown,
            Outcome::Skipped => &mut self.skipped,
            Outcome::Cancelled => &mut self.cancelled,
            Outcome::Planned => &mut self.planned,
            Outcome::Deleted => &mut self.deleted,
            Outcome::Missing => &mut self.missing,
            Outcome::Redacted => &mut self.redacted,
            Outcome::Present => &mut self.present,
        };
        *n += 1;
    }

    /// Requests per second over the run.
    pub fn rate(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.requests as f64 / s
        } else {
            0.0
        }
    }

    /// 0 when everything is done, 130 when interrupted, 1 when anything failed, was
    /// cancelled or has an unknown outcome.
    pub fn exit_code(&self) -> u8 {
        if self.interrupted {
            EXIT_INTERRUPTED
        } else if self.failed > 0 || self.cancelled > 0 || self.unknown > 0 {
            EXIT_SOME_FAILED
        } else {
            EXIT_OK
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = vec![format!("{} operations", self.total)];
        let mut push = |n: u64, what: &str| {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        };
        push(self.created, "created");
        push(self.reconciled, "reconciled as existing");
        push(self.skipped, "skipped as already done");
        push(self.deleted, "deleted");
        push(self.missing, "already gone");
        push(self.redacted, "redacted");
        push(self.present, "already on the target");
        push(self.planned, "planned");
        push(self.failed, "failed");
        push(
            self.unknown,
            "with an unknown outcome (the next run reconciles them)",
        );
        push(self.cancelled, "cancelled");
        writeln!(f, "{}", parts.join(", "))?;
        write!(
            f,
            "{} requests sent, {} retries, {} 429s received, {:.1}s elapsed, {:.1} requests/s",
            self.requests,
            self.retries,
            self.throttled,
            self.elapsed.as_secs_f64(),
            self.rate()
        )?;
        if let Some(rate) = self.learned_rate_per_s {
            write!(f, "\nserver allows ~{}", per_second(rate))?;
        }
        if let Some(l) = self.concurrency.filter(|l| l.auto) {
            let class = |i: usize| match l.highest[i] > l.last[i] {
                true => format!("{} (highest {})", l.last[i], l.highest[i]),
                false => l.last[i].to_string(),
            };
            write!(
                f,
                "\nconcurrency found (auto): comment posts {}, uploads {}, reads {}",
                class(0),
                class(1),
                class(2)
            )?;
        }
        if let Some(p) = &self.results {
            write!(f, "\nresults: {}", p.display())?;
        }
        Ok(())
    }
}

/// `10/s`, `2.5/s`, `0.25/s`.
pub fn per_second(rate: f64) -> String {
    if rate >= 10.0 {
        format!("{rate:.0}/s")
    } else if rate >= 1.0 {
        format!("{rate:.1}/s")
    } else {
        format!("{rate:.2}/s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_reflects_failures_and_interruption() {
        let mut s = Summary::default();
        s.count(Outcome::Created);
        s.count(Outcome::Existing);
        s.count(Outcome::Skipped);
        assert_eq!(s.exit_code(), 0);
        let mut u = s.clone();
        u.count(Outcome::Unknown);
        assert_eq!(u.exit_code(), 1, "an unknown outcome is not done");
        s.count(Outcome::Cancelled);
        assert_eq!(s.exit_code(), 1);
        s.interrupted = true;
        assert_eq!(s.exit_code(), 130);
    }

    #[test]
    fn display_names_every_nonzero_count() {
        let s = Summary {
            total: 3,
            created: 2,
            failed: 1,
            requests: 4,
            ..Summary::default()
        };
        let text = s.to_string();
        assert!(text.contains("3 operations, 2 created, 1 failed"), "{text}");
        assert!(text.contains("4 requests sent"), "{text}");
        assert!(!text.contains("server allows") && !text.contains("concurrency"));
        let learned = Summary {
            learned_rate_per_s: Some(9.96),
            concurrency: Some(Limits {
                last: [12, 4, 8],
                highest: [16, 4, 8],
                auto: true,
            }),
            ..s
        };
        let text = learned.to_string();
        assert!(text.contains("server allows ~10.0/s"), "{text}");
        assert!(
            text.contains(
                "concurrency found (auto): comment posts 12 (highest 16), uploads 4, reads 8"
            ),
            "{text}"
        );
    }
}
