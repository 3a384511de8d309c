//! A restore killed with SIGKILL in the middle, then run again on the same results file:
//! every document and comment ends up on the target exactly once.

use super::migrate::{assert_comments, assert_documents};
use super::{all_documents, comment_counts, creates, statuses, World, FAST, TICKETS};
use crate::env::{binary, code, text, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_restore_resumes_to_exactly_once() {
    let w = World::new(TICKETS).await;
    let before = all_documents(&w.b);
    let own = comment_counts(&w.b);
    // Answers come late, so that the kill lands with creates in flight.
    w.b.set_reply_delay(Some((40, 80)));
    let mut args = vec!["restore", "backup", "--results", "r.csv", "--quiet"];
    args.extend_from_slice(&FAST);
    let mut child = binary(w.a.dir.path(), &w.b.base_url(), &args)
        .spawn()
        .unwrap();
    let killed = tokio::select! {
        () = wait_until("4 creates answered", || creates(&w.b) >= 4) => {
            child.start_kill().unwrap();
            true
        }
        _ = child.wait() => false,
    };
    let _ = child.wait().await;
    assert!(
        killed,
        "the restore finished before 4 of its 18 creates were answered"
    );
    assert!(creates(&w.b) < 18, "killed in the middle");
    w.b.set_reply_delay(None);
    let mut finished = false;
    for _ in 0..5 {
        let out = w.restore_into_b("r.csv", &["--quiet"]).await;
        if code(&out) == 0 {
            finished = true;
            break;
        }
        eprintln!("rerun: {}", text(&out));
    }
    assert!(finished, "the reruns never finished");
    assert_documents(&w, &before);
    assert_comments(&w, &own, "");
    let by_status = statuses(&w.rows("r.csv"));
    let done: usize = ["created", "existing", "present"]
        .iter()
        .map(|s| by_status.get(*s).copied().unwrap_or(0))
        .sum();
    assert_eq!(done, 20, "one done row per operation: {by_status:?}");
    assert_eq!(by_status.get("present"), Some(&2), "{by_status:?}");
}
