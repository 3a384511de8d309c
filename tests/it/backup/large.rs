//! Documents spanning many write blocks (whole blocks may go to disk with direct I/O, the tail
//! through the page cache) arrive byte for byte, with or without `--no-direct-io`.

use super::{manifest, quick};
use crate::env::{code, text, TestEnv};
use sha2::{Digest, Sha256};

/// Bytes that differ at every offset mod 251 and from one MiB to the next.
fn content(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8 ^ (i >> 20) as u8).collect()
}

/// Whether `dir` is on a filesystem where direct I/O is used, asked of `stat -f` (not of the
/// code under test); false where that cannot be told.
fn local_disk(dir: &std::path::Path) -> bool {
    let out = std::process::Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(dir)
        .output();
    let kind = out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    matches!(
        kind.as_deref(),
        Ok("ext2/ext3" | "ext4" | "xfs" | "btrfs" | "f2fs")
    )
}

#[tokio::test]
async fn large_documents_arrive_whole_with_and_without_direct_io() {
    let env = TestEnv::with(quick(1)).await;
    let t = env.ticket_id("TIC001000");
    let sizes = [
        4_097,
        3 * (1 << 20) + 5,
        9 * (1 << 20),
        9 * (1 << 20) + 4_095,
    ];
    let mut want = Vec::new();
    for (i, size) in sizes.into_iter().enumerate() {
        let bytes = content(size);
        let name = format!("big-{i}.bin");
        env.sandbox
            .add_document_raw(t, &name, "application/octet-stream", &bytes);
        want.push((name, hex::encode(Sha256::digest(&bytes)), bytes));
    }
    let run = |out: &'static str, extra: Option<&'static str>| {
        let mut args = vec!["backup", "--out", out, "--rate-per-minute", "0"];
        args.extend(["--ticket", "TIC001000"]);
        args.extend(extra);
        let mut cmd = env.command(&args);
        cmd.env("RUST_LOG", "alga_batch=debug");
        cmd.output()
    };
    let direct = run("out", None).await.unwrap();
    assert_eq!(code(&direct), 0, "{}", text(&direct));
    let buffered = run("out2", Some("--no-direct-io")).await.unwrap();
    assert_eq!(code(&buffered), 0, "{}", text(&buffered));
    let said_direct = |out: &std::process::Output| text(out).contains("with direct I/O");
    assert!(
        !said_direct(&buffered),
        "--no-direct-io: {}",
        text(&buffered)
    );
    if local_disk(&env.path(".")) {
        assert!(said_direct(&direct), "{}", text(&direct));
    }
    let rows = manifest(&env);
    for (name, sha, bytes) in &want {
        for folder in ["out", "out2"] {
            let got = std::fs::read(env.path(&format!("{folder}/TIC001000/{name}"))).unwrap();
            assert!(
                got == *bytes,
                "{folder}/{name} differs from what the server holds"
            );
        }
        let row = rows.iter().find(|r| r["document_name"] == *name).unwrap();
        assert_eq!(row["sha256"], *sha, "{name}");
        assert_eq!(row["bytes"], bytes.len().to_string(), "{name}");
    }
}
