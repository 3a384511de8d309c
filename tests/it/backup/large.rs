//! Documents spanning many write blocks (whole blocks may go to disk with direct I/O, the tail
//! through the page cache) arrive byte for byte, with or without `--no-direct-io`.

use super::{backup, manifest, quick};
use crate::env::{code, text, TestEnv};
use sha2::{Digest, Sha256};

/// Bytes that differ at every offset mod 251 and from one MiB to the next.
fn content(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8 ^ (i >> 20) as u8).collect()
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
    let direct = backup(&env, &["--ticket", "TIC001000"]).await;
    assert_eq!(code(&direct), 0, "{}", text(&direct));
    let buffered = env
        .run(&[
            "backup",
            "--out",
            "out2",
            "--rate-per-minute",
            "0",
            "--ticket",
            "TIC001000",
            "--no-direct-io",
        ])
        .await;
    assert_eq!(code(&buffered), 0, "{}", text(&buffered));
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
