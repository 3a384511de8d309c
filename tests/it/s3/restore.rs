//! A backup in S3 put back: `restore s3://...` reads the manifest, the comments and every
//! document through the S3 store and restores them into another instance, streamed (issues 12
//! and 13 together).

use super::{out, quick, S3Env};
use crate::env::{binary, code, text};
use crate::restore::{all_documents, comments};
use alga_batch::sandbox;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_in_s3_is_restored_into_another_instance_and_a_rerun_sends_nothing() {
    let s = S3Env::with(quick(6)).await;
    let big: Vec<u8> = super::content(9 << 20); // a multipart object (parts of 8 MiB)
    let t = s.env.ticket_id("TIC001002");
    s.env
        .sandbox
        .add_document_raw(t, "big.bin", "application/octet-stream", &big);
    let backed = s.backup(&["--comments", "--quiet"]).await;
    assert_eq!(code(&backed), 0, "{}", text(&backed));
    // Instance B: the same ticket numbers, other ids (another seed).
    let mut cfg = quick(6);
    cfg.seed = 99;
    let b = sandbox::start(cfg).await.unwrap();
    let location = out();
    let args = [
        "restore",
        &location,
        "--results",
        "restore.csv",
        "--rate-per-minute",
        "0",
        "--quiet",
    ];
    let restore = |args: &[&str]| {
        let mut cmd = binary(s.env.dir.path(), &b.base_url(), args);
        for (k, v) in super::aws_env(&s.s3) {
            cmd.env(k, v);
        }
        cmd
    };
    let first = restore(&args).output().await.unwrap();
    assert_eq!(code(&first), 0, "{}", text(&first));
    let on_a = all_documents(&s.env.sandbox);
    let on_b = all_documents(&b);
    for (number, docs) in &on_a {
        for d in docs {
            assert!(
                on_b[number].contains(d),
                "{number}: {} ({} bytes) not restored",
                d.0,
                d.1.len()
            );
        }
    }
    assert!(on_b["TIC001002"]
        .iter()
        .any(|(n, bytes)| n == "big.bin" && *bytes == big));
    for t in s.env.sandbox.tickets() {
        let a_texts: Vec<String> = comments(&s.env.sandbox, &t.ticket_number)
            .iter()
            .filter_map(|c| c["comment_text"].as_str().map(str::to_string))
            .collect();
        let b_texts: Vec<String> = comments(&b, &t.ticket_number)
            .iter()
            .filter_map(|c| c["comment_text"].as_str().map(str::to_string))
            .collect();
        for a in a_texts {
            assert!(
                b_texts.iter().any(|x| x.ends_with(&a)),
                "{}: comment {a:?} not restored",
                t.ticket_number
            );
        }
    }
    let posts = |sb: &sandbox::Sandbox| {
        sb.request_log()
            .iter()
            .filter(|r| r.method == "POST")
            .count()
    };
    let before = posts(&b);
    let again = restore(&args).output().await.unwrap();
    assert_eq!(code(&again), 0, "{}", text(&again));
    assert_eq!(posts(&b), before, "a rerun sends no create");
}
