//! The one model of what became of an operation: [`Outcome`]. The executor produces it, the
//! journal writes it (as a [`Status`] in the results CSV), the summary counts it and the exit
//! code follows from those counts.
//!
//! The status values of the results CSV, in one table (README "Results CSV" repeats it):
//!
//! | status      | meaning                                                          | next run      |
//! |-------------|------------------------------------------------------------------|---------------|
//! | `created`   | created by alga-batch (this run or an earlier one)               | skipped       |
//! | `existing`  | already on the server (found by reconciliation or a check)      | skipped       |
//! | `failed`    | proven not done (a 4xx refusal, a local problem, or a server    | sent again    |
//! |             | answer that reconciliation showed left nothing behind)           |               |
//! | `unknown`   | may or may not be on the server; reconciliation could not tell  | reconciled, then sent only if absent |
//! | `cancelled` | not sent (the run stopped first)                                 | sent          |
//! | `planned`   | dry run: would be sent                                           | sent          |
//! | `sending`   | journal only: the create was about to be sent (a crash left it)  | reconciled    |
//! | `deleted`, `missing`, `redacted` | undo: deleted, already gone (404), text replaced | skipped |
//! | `present`   | restore: on the target before the run (same id, or same name and content, | checked again |
//! |             | or an earlier restore's); nothing sent, and undo leaves it alone |               |

use super::row::Status;

/// Why an operation failed, in classes that decide what a later attempt can expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailClass {
    /// The server refused it with an answer that proves nothing was stored
    /// (`api::NOTHING_STORED`: 400, 401, 403, 404, 413, 415, 422): the same request fails
    /// again.
    Refused,
    /// It could not be done now (no connection, the server kept answering 429 or 5xx and
    /// reconciliation showed nothing stored): a later run may succeed.
    Transient,
    /// A local problem: an attachment that cannot be read, a backup file that is damaged.
    Local,
    /// Its ticket could not be resolved (unknown or ambiguous number).
    Unresolved,
}

/// What became of one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Created by this run.
    Created,
    /// Already on the server (found by reconciliation or a pre-check).
    Existing,
    /// Proven not done.
    Failed(FailClass),
    /// May or may not be on the server: reconciliation could not settle it (the server is
    /// gone, the run was aborted in flight). The next run reconciles it before sending.
    Unknown,
    /// Done by an earlier run: nothing was sent.
    Skipped,
    /// Not attempted: the run stopped first.
    Cancelled,
    /// Dry run: would be sent.
    Planned,
    /// Undo: deleted.
    Deleted,
    /// Undo: already gone (404).
    Missing,
    /// Undo: the comment's text was replaced.
    Redacted,
    /// Restore: on the target before the run (found by the producer's check); nothing sent.
    Present,
}

impl Outcome {
    /// The status written to the results CSV. `Skipped` keeps the earlier row's status, so it
    /// has none of its own.
    pub fn status(self) -> Option<Status> {
        Some(match self {
            Outcome::Created => Status::Created,
            Outcome::Existing => Status::Existing,
            Outcome::Failed(_) => Status::Failed,
            Outcome::Unknown => Status::Unknown,
            Outcome::Skipped => return None,
            Outcome::Cancelled => Status::Cancelled,
            Outcome::Planned => Status::Planned,
            Outcome::Deleted => Status::Deleted,
            Outcome::Missing => Status::Missing,
            Outcome::Redacted => Status::Redacted,
            Outcome::Present => Status::Present,
        })
    }

    /// Nothing is left to do for this operation.
    pub fn is_done(self) -> bool {
        matches!(
            self,
            Outcome::Created
                | Outcome::Existing
                | Outcome::Skipped
                | Outcome::Deleted
                | Outcome::Missing
                | Outcome::Redacted
                | Outcome::Present
        )
    }

    /// Counts against the run (exit code 1): failed, unknown or cancelled.
    pub fn is_problem(self) -> bool {
        matches!(
            self,
            Outcome::Failed(_) | Outcome::Unknown | Outcome::Cancelled
        )
    }

    /// Whether a comment with this outcome must hold back the later comments of its ticket:
    /// it did not finish for a reason a later run may overcome. A refusal fails again whatever
    /// the order and an unresolved ticket fails every comment alike, so neither blocks.
    pub fn blocks_thread(self) -> bool {
        matches!(
            self,
            Outcome::Failed(FailClass::Transient) | Outcome::Unknown | Outcome::Cancelled
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_but_skipped_has_a_status_and_done_ones_are_not_problems() {
        let all = [
            Outcome::Created,
            Outcome::Existing,
            Outcome::Failed(FailClass::Refused),
            Outcome::Failed(FailClass::Transient),
            Outcome::Failed(FailClass::Local),
            Outcome::Failed(FailClass::Unresolved),
            Outcome::Unknown,
            Outcome::Skipped,
            Outcome::Cancelled,
            Outcome::Planned,
            Outcome::Deleted,
            Outcome::Missing,
            Outcome::Redacted,
            Outcome::Present,
        ];
        for o in all {
            assert_eq!(o.status().is_none(), o == Outcome::Skipped, "{o:?}");
            assert!(!(o.is_done() && o.is_problem()), "{o:?}");
        }
        assert_eq!(Outcome::Unknown.status(), Some(Status::Unknown));
        assert!(Outcome::Unknown.is_problem());
    }

    #[test]
    fn only_what_a_later_run_may_overcome_blocks_a_thread() {
        assert!(Outcome::Unknown.blocks_thread());
        assert!(Outcome::Cancelled.blocks_thread());
        assert!(Outcome::Failed(FailClass::Transient).blocks_thread());
        assert!(!Outcome::Failed(FailClass::Refused).blocks_thread());
        assert!(!Outcome::Failed(FailClass::Unresolved).blocks_thread());
        assert!(!Outcome::Failed(FailClass::Local).blocks_thread());
        assert!(!Outcome::Created.blocks_thread());
    }
}
