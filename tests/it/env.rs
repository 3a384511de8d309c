//! `TestEnv`: a sandbox on 127.0.0.1:0, a temporary folder, and the real binary pointed at both.

use alga_batch::sandbox::{self, RateLimitMode, Sandbox, SandboxConfig};
use std::path::{Path, PathBuf};
use std::process::Output;

/// The key the test sandbox accepts.
pub(crate) const KEY: &str = "test-key-0123456789";

pub(crate) struct TestEnv {
    pub(crate) sandbox: Sandbox,
    pub(crate) dir: tempfile::TempDir,
}

/// A sandbox config for tests: quiet, our key, limiter on at the real defaults.
pub(crate) fn config() -> SandboxConfig {
    SandboxConfig {
        quiet: true,
        api_keys: vec![KEY.to_string()],
        rate_limit: RateLimitMode::Enforce,
        ..SandboxConfig::default()
    }
}

impl TestEnv {
    pub(crate) async fn new() -> TestEnv {
        Self::with(config()).await
    }

    pub(crate) async fn with(cfg: SandboxConfig) -> TestEnv {
        let sandbox = sandbox::start(cfg).await.expect("sandbox starts");
        TestEnv {
            sandbox,
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Write a file under the temp folder (creating folders) and return its path.
    pub(crate) fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(&p, contents).unwrap();
        p
    }

    /// A ticket number of the seeded sandbox -> its id.
    pub(crate) fn ticket_id(&self, number: &str) -> uuid::Uuid {
        self.sandbox
            .tickets()
            .into_iter()
            .find(|t| t.ticket_number == number)
            .unwrap_or_else(|| panic!("no ticket {number}"))
            .ticket_id
    }

    /// The binary with the connection environment set.
    pub(crate) fn command(&self, args: &[&str]) -> tokio::process::Command {
        binary(self.dir.path(), &self.sandbox.base_url(), args)
    }

    /// Run the binary to completion.
    pub(crate) async fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().await.expect("binary runs")
    }
}

/// `run job.csv --results r.csv` followed by `extra`: the import most tests run.
pub(crate) fn run_job<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run", "job.csv", "--results", "r.csv"];
    args.extend_from_slice(extra);
    args
}

/// The binary run in `dir` against the server at `base` with the test key, output piped,
/// killed if the test drops it.
pub(crate) fn binary(dir: &Path, base: &str, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_alga-batch"));
    cmd.args(args)
        .current_dir(dir)
        .env("ALGA_BASE_URL", base)
        .env("ALGA_API_KEY", KEY)
        .env_remove("ALGA_TENANT_ID")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Exit code (panics on a signal death).
pub(crate) fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// stdout + stderr as text.
pub(crate) fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Results rows as (header, rows of maps).
pub(crate) fn read_results(
    path: &Path,
) -> (Vec<String>, Vec<std::collections::HashMap<String, String>>) {
    let mut rdr =
        csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header: Vec<String> = rdr.headers().unwrap().iter().map(str::to_string).collect();
    let rows = rdr
        .records()
        .map(|r| {
            let r = r.unwrap();
            header
                .iter()
                .cloned()
                .zip(r.iter().map(str::to_string))
                .collect()
        })
        .collect();
    (header, rows)
}

/// Count requests in the sandbox log with this method whose path ends with `suffix`.
pub(crate) fn count_requests(sb: &Sandbox, method: &str, suffix: &str) -> usize {
    sb.request_log()
        .iter()
        .filter(|r| r.method == method && r.path.ends_with(suffix))
        .count()
}

/// Wait until the sandbox has answered at least `n` comment POSTs (the run under test is
/// really under way), so that signals and shutdowns land mid-run even on a slow machine.
pub(crate) async fn wait_for_comment_posts(sb: &Sandbox, n: usize) {
    for _ in 0..1500 {
        if count_requests(sb, "POST", "/comments") >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the run never posted {n} comments");
}

/// Polls `cond` until it holds (every 10 ms); panics with `what` if it never does. A guard
/// against a hang, not a timing assertion: the deadline is minutes away.
pub(crate) async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A running binary whose stderr is collected as it comes (stdout is drained).
pub(crate) struct Watched {
    pub(crate) child: tokio::process::Child,
    stderr: tokio::sync::watch::Receiver<String>,
}

impl Watched {
    /// Spawns `cmd` (which must pipe stdout and stderr, as [`binary`] does).
    pub(crate) fn spawn(mut cmd: tokio::process::Command) -> Watched {
        use tokio::io::AsyncReadExt;
        let mut child = cmd.spawn().expect("binary starts");
        let mut err = child.stderr.take().expect("stderr piped");
        let mut out = child.stdout.take().expect("stdout piped");
        let (tx, stderr) = tokio::sync::watch::channel(String::new());
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = err.read(&mut buf).await {
                let chunk = String::from_utf8_lossy(&buf[..n]).into_owned();
                tx.send_modify(|s| s.push_str(&chunk));
            }
        });
        tokio::spawn(async move {
            let mut sink = Vec::new();
            let _ = out.read_to_end(&mut sink).await;
        });
        Watched { child, stderr }
    }

    /// Waits until stderr holds `needle` (panics if the process ends first without it).
    pub(crate) async fn wait_for_stderr(&mut self, needle: &str) {
        let mut rx = self.stderr.clone();
        let exited = tokio::select! {
            r = rx.wait_for(|s| s.contains(needle)) => {
                r.expect("stderr reader alive");
                None
            }
            status = self.child.wait() => Some(status),
        };
        if let Some(status) = exited {
            while rx.changed().await.is_ok() {} // the reader reaches the end of stderr
            let all = self.stderr();
            assert!(
                all.contains(needle),
                "exited ({status:?}) without {needle:?}: {all}"
            );
        }
    }

    /// Everything read from stderr so far.
    pub(crate) fn stderr(&self) -> String {
        self.stderr.borrow().clone()
    }

    /// Sends SIGINT, as Ctrl-C does.
    pub(crate) async fn interrupt(&self) {
        let pid = self.child.id().expect("still running");
        let ok = tokio::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .await
            .expect("kill runs");
        assert!(ok.success(), "kill -INT {pid} failed");
    }
}

/// Reads a raw HTTP request's head from `sock` (for the tests' hand-written servers): its first
/// line, or `None` when the peer went away first.
pub(crate) async fn request_line(sock: &mut tokio::net::TcpStream) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut req = Vec::new();
    let mut buf = [0u8; 4096];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&req);
    Some(head.lines().next().unwrap_or("").to_string())
}
