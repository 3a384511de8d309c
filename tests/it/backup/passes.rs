//! Passes over the selection: a saved position at (or past) the end means a fresh pass, for
//! `--dry-run` as for a real run.

use super::quick;
use crate::env::{code, text, TestEnv};

#[tokio::test]
async fn dry_run_after_a_pass_that_reached_the_end_counts_every_ticket() {
    let env = TestEnv::with(quick(12)).await;
    std::fs::create_dir_all(env.path("out")).unwrap();
    let all = alga_batch::export::Selection::default();
    alga_batch::export::resume::save(&env.path("out"), &all, 12).unwrap();
    let out = env.run(&["backup", "--out", "out", "--dry-run"]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains("12 tickets: list requests fit in the burst"),
        "{}",
        text(&out)
    );
    assert!(
        !text(&out).contains("continues at ticket"),
        "{}",
        text(&out)
    );
    alga_batch::export::resume::save(&env.path("out"), &all, 5).unwrap();
    let out = env.run(&["backup", "--out", "out", "--dry-run"]).await;
    assert!(text(&out).contains("7 tickets"), "{}", text(&out));
    assert!(
        text(&out).contains("continues at ticket 6 of 12"),
        "{}",
        text(&out)
    );
}
