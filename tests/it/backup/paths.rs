//! Where files go when names meet: a new document never takes the name of a gone one's kept
//! file, `--prune` never deletes a live file, and manifest paths are never trusted to stay
//! inside DIR.

use super::{backup, manifest, quick};
use crate::env::{code, text, TestEnv};
use std::collections::HashSet;

fn client(env: &TestEnv) -> alga_batch::api::Client {
    alga_batch::api::Client::new(alga_batch::api::ClientConfig::new(
        env.sandbox.base_url(),
        alga_batch::api::ApiKey::new(crate::env::KEY.to_string()),
    ))
    .unwrap()
}

#[tokio::test]
async fn a_new_document_named_like_a_gone_one_gets_its_own_file_and_prune_keeps_it() {
    const T: &str = "TIC900010";
    let env = TestEnv::with(quick(1)).await;
    let t = env.sandbox.add_ticket(T, "names", false);
    let old = env
        .sandbox
        .add_document_raw(t, "a.txt", "text/plain", b"old bytes");
    assert_eq!(code(&backup(&env, &["--ticket", T]).await), 0);
    client(&env).delete_document(t, old).await.unwrap();
    let new = env
        .sandbox
        .add_document_raw(t, "a.txt", "text/plain", b"new bytes");
    let out = backup(&env, &["--ticket", T]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let folder = env.path("out/TIC900010");
    assert_eq!(
        std::fs::read(folder.join("a.txt")).unwrap(),
        b"old bytes",
        "the gone document's kept file was overwritten"
    );
    let rows = manifest(&env);
    let paths: HashSet<&String> = rows.iter().map(|r| &r["path"]).collect();
    assert_eq!(paths.len(), rows.len(), "two rows with one path: {rows:?}");
    let new_row = rows
        .iter()
        .find(|r| r["document_id"] == new.to_string())
        .unwrap();
    assert_ne!(new_row["path"], "TIC900010/a.txt");
    let pruned = backup(&env, &["--ticket", T, "--prune"]).await;
    assert_eq!(code(&pruned), 0, "{}", text(&pruned));
    assert!(!folder.join("a.txt").exists(), "the gone file is pruned");
    let live = env.path("out").join(&new_row["path"]);
    assert_eq!(
        std::fs::read(&live).unwrap(),
        b"new bytes",
        "live file deleted"
    );
    let rows = manifest(&env);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["document_id"], new.to_string());
}

#[tokio::test]
async fn a_new_document_never_takes_the_name_of_a_file_already_in_the_folder() {
    const T: &str = "TIC900011";
    let env = TestEnv::with(quick(1)).await;
    let t = env.sandbox.add_ticket(T, "stray", false);
    env.write("out/TIC900011/notes.txt", "mine, not the server's");
    env.sandbox
        .add_document_raw(t, "notes.txt", "text/plain", b"server");
    let out = backup(&env, &["--ticket", T]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(env.path("out/TIC900011/notes.txt")).unwrap(),
        "mine, not the server's"
    );
    let rows = manifest(&env);
    assert_eq!(rows.len(), 1);
    assert_ne!(rows[0]["path"], "TIC900011/notes.txt");
}

/// A manifest row (CSV) pointing at `path`.
fn row(ticket: uuid::Uuid, doc: uuid::Uuid, path: &str) -> String {
    format!(
        "{ticket},TIC900012,{doc},x.txt,{path},3,{},text/plain,2026-11-28T07:00:00Z\n",
        "ab".repeat(32)
    )
}

#[tokio::test]
async fn doctored_manifest_paths_never_reach_outside_dir() {
    const T: &str = "TIC900012";
    let env = TestEnv::with(quick(1)).await;
    let t = env.sandbox.add_ticket(T, "doctored", false);
    let live = env
        .sandbox
        .add_document_raw(t, "x.txt", "text/plain", b"abc");
    let victim = env.write("victim.txt", "precious");
    let mut csv = alga_batch::store::manifest::COLUMNS.join(",");
    csv.push('\n');
    csv.push_str(&row(t, live, "../pwned.txt"));
    csv.push_str(&row(t, uuid::Uuid::new_v4(), "../victim.txt"));
    csv.push_str(&row(t, uuid::Uuid::new_v4(), "/tmp/../victim.txt"));
    env.write("out/manifest.csv", &csv);
    let out = backup(&env, &["--ticket", T, "--prune"]).await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("unsafe path"), "{}", text(&out));
    assert!(!env.path("pwned.txt").exists(), "written outside DIR");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let outside: Vec<_> = super::walk(env.dir.path())
        .into_iter()
        .filter(|p| !p.starts_with(env.path("out")) && *p != victim)
        .collect();
    assert!(outside.is_empty(), "{outside:?}");
    let rows = manifest(&env);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["path"], "TIC900012/x.txt");
    assert_eq!(
        std::fs::read(env.path("out/TIC900012/x.txt")).unwrap(),
        b"abc"
    );
    #[cfg(unix)]
    for f in ["out/TIC900012/x.txt", "out/manifest.csv"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.path(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644 & !umask(), "{f}: {mode:o}");
    }
}

/// This process's umask (the binary inherits it).
#[cfg(unix)]
fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let v = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .unwrap();
    u32::from_str_radix(v.trim(), 8).unwrap()
}
