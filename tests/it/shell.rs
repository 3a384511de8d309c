//! Shell integration (issue 14): completions, the man page rendered by groff, and the
//! warning for an API key file others can read.

use crate::env::{code, text, TestEnv};

/// Every subcommand, as `--help` lists them.
const SUBCOMMANDS: [&str; 9] = [
    "run",
    "validate",
    "demo",
    "backup",
    "sandbox",
    "undo",
    "restore",
    "completions",
    "man",
];

async fn binary(args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_alga-batch"))
        .args(args)
        .output()
        .await
        .unwrap()
}

/// `alga-batch ARGS` rendered by groff (plain text, no warnings allowed).
async fn render(args: &[&str]) -> String {
    let page = binary(args).await;
    assert_eq!(code(&page), 0, "{}", text(&page));
    let mut groff = std::process::Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-P", "-cbou"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("groff (Debian: groff-base) renders man pages");
    use std::io::Write;
    groff.stdin.take().unwrap().write_all(&page.stdout).unwrap();
    let rendered = groff.wait_with_output().unwrap();
    assert!(rendered.status.success());
    assert!(
        rendered.stderr.is_empty(),
        "groff warnings: {}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    // groff may print Unicode hyphens and minus signs, and justifies: compare words with
    // plain hyphens.
    let page = String::from_utf8_lossy(&rendered.stdout).replace(['\u{2010}', '\u{2212}'], "-");
    page.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test]
async fn the_man_page_renders_with_groff_and_names_every_subcommand() {
    let roff = String::from_utf8(binary(&["man"]).await.stdout).unwrap();
    assert!(roff.contains(".TH alga-batch 1"), "{roff}");
    let page = render(&["man"]).await;
    for section in ["NAME", "SYNOPSIS", "SUBCOMMANDS"] {
        assert!(page.contains(section), "{section}: {page}");
    }
    for sub in SUBCOMMANDS {
        assert!(
            page.contains(&format!("alga-batch-{sub}(1)")),
            "{sub}: {page}"
        );
    }
    let run = render(&["man", "run"]).await;
    assert!(
        run.contains("alga-batch-run - Run an import job")
            && run.contains("alga-batch run [--results]")
            && run.contains("--metrics-file"),
        "{run}"
    );
    let none = binary(&["man", "nope"]).await;
    assert_eq!(code(&none), 2);
}

#[tokio::test]
async fn completions_for_each_shell_know_the_subcommands_and_flags() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = binary(&["completions", shell]).await;
        assert_eq!(code(&out), 0, "{shell}: {}", text(&out));
        let script = String::from_utf8(out.stdout).unwrap();
        for word in ["backup", "undo", "metrics-file", "log-format"] {
            assert!(script.contains(word), "{shell} lacks {word}");
        }
    }
    let bad = binary(&["completions", "cmd.exe"]).await;
    assert_eq!(code(&bad), 2);
}

#[cfg(unix)]
#[tokio::test]
async fn a_key_file_others_can_read_gets_a_warning_like_ssh() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new().await;
    env.write("job.csv", "ticket,comment_text\nTIC001000,hello\n");
    let key = env.write("key", format!("{}\n", crate::env::KEY));
    let run = |env: &TestEnv| {
        let mut cmd = env.command(&[
            "run",
            "job.csv",
            "--results",
            "r.csv",
            "--api-key-file",
            "key",
        ]);
        cmd.env_remove("ALGA_API_KEY");
        cmd
    };
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(&env).output().await.unwrap();
    assert_eq!(code(&out), 0, "the key is still used: {}", text(&out));
    let msg = text(&out);
    assert!(
        msg.contains("API key file key is accessible by others (permissions 0644)")
            && msg.contains("chmod 600 key"),
        "{msg}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = run(&env).output().await.unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        !text(&out).contains("accessible by others"),
        "{}",
        text(&out)
    );
}
