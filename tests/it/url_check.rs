//! The plain-http rule, end to end: every bypass URL is refused by `run`, `backup` and `undo`
//! (and by `validate` in a job file) with exit 2, before a single connection is made.

use crate::env::{code, text, TestEnv, KEY};
use std::net::SocketAddr;

/// A loopback listener that records the peer of every connection it accepts (and answers none).
struct Counter {
    port: u16,
    peers: tokio::sync::watch::Receiver<Vec<SocketAddr>>,
    task: tokio::task::JoinHandle<()>,
}

impl Counter {
    async fn start() -> Counter {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, peers) = tokio::sync::watch::channel(Vec::new());
        let task = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((sock, peer)) = listener.accept().await {
                tx.send_modify(|v| v.push(peer));
                open.push(sock); // kept open: a client that got through waits, it does not retry
            }
        });
        Counter { port, peers, task }
    }

    /// How many connections others made: connects once itself and waits until the listener has
    /// accepted that probe. Accepts come in arrival order, so every earlier one is counted then.
    async fn others(&self) -> usize {
        let probe = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .unwrap();
        let me = probe.local_addr().unwrap();
        let mut rx = self.peers.clone();
        let peers = rx.wait_for(|v| v.contains(&me)).await.unwrap();
        peers.iter().filter(|p| **p != me).count()
    }

    /// Waits for the first connection.
    async fn first(&self) {
        let mut rx = self.peers.clone();
        rx.wait_for(|v| !v.is_empty()).await.unwrap();
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Each trick, with `PORT` standing for the counting listener: if the check let one through,
/// the binary would connect to that listener (or, for the remote ones, try a remote host).
const BYPASSES: &[&str] = &[
    "http://127.0.0.1:PORT@backup.example.com/",
    "http://127.0.0.1:PORT@127.0.0.1:PORT/",
    "http://x@127.0.0.1:PORT",
    "http://user:pass@127.0.0.1:PORT/",
    "http://localhost:PORT@127.0.0.1:PORT",
    "http://[::1]@127.0.0.1:PORT",
    "https://user@127.0.0.1:PORT",
    "HTTP://X@127.0.0.1:PORT",
    " http://x@127.0.0.1:PORT ",
    "http://127.0.0.1:PORT\t@backup.example.com",
    "http://127.0.0.1%40backup.example.com:PORT",
    "http://127.0.0.1:PORT\\@backup.example.com",
    "http://127.0.0.1:PORT/?@backup.example.com",
    "http://127.0.0.1:PORT/#@backup.example.com",
    "http://127.0.0.1.backup.example.com:PORT",
    "http://localhost.:PORT",
    "http://[::127.0.0.1]:PORT",
    "http://0.0.0.0:PORT",
];

fn bypasses(port: u16) -> Vec<String> {
    BYPASSES
        .iter()
        .map(|u| u.replace("PORT", &port.to_string()))
        .collect()
}

/// Runs the binary with `args`, expects exit 2 with a reason and no key in the output.
async fn refused(env: &TestEnv, url: &str, args: &[&str]) {
    let out = env
        .command(args)
        .env("ALGA_BASE_URL", url)
        .output()
        .await
        .unwrap();
    let t = text(&out);
    assert_eq!(code(&out), 2, "{url:?} with {args:?} was not refused: {t}");
    assert!(
        t.contains("base url") || t.contains("plain http"),
        "{url:?}: {t}"
    );
    assert!(!t.contains(KEY), "{url:?}: the key leaked: {t}");
    if url.contains("user:pass") {
        assert!(t.contains("ALGA_API_KEY") && !t.contains("pass@"), "{t}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bypass_url_is_refused_before_any_connection() {
    let env = TestEnv::new().await;
    env.write("job.csv", "ticket,comment_text\nTIC001000,hello\n");
    let ok = env
        .run(&["run", "job.csv", "--results", "done.csv", "--quiet"])
        .await;
    assert_eq!(code(&ok), 0, "{}", text(&ok));
    let before = env.sandbox.request_log().len();
    let counter = Counter::start().await;
    for url in bypasses(counter.port) {
        refused(&env, &url, &["run", "job.csv", "--results", "r.csv"]).await;
        refused(&env, &url, &["run", "job.csv", "--base-url", &url]).await;
        refused(
            &env,
            &url,
            &["backup", "--out", "backup", "--base-url", &url],
        )
        .await;
        refused(&env, &url, &["undo", "done.csv", "--base-url", &url]).await;
    }
    assert_eq!(
        counter.others().await,
        0,
        "a bypass URL reached the listener"
    );
    assert_eq!(
        env.sandbox.request_log().len(),
        before,
        "a refused run reached the sandbox"
    );
    assert!(!env.path("r.csv").exists(), "a refused run wrote results");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_file_with_credentials_in_its_base_url_fails_validation() {
    let env = TestEnv::new().await;
    let counter = Counter::start().await;
    let url = format!("http://x@127.0.0.1:{}", counter.port);
    env.write(
        "job.toml",
        format!(
            "[settings]\nbase_url = \"{url}\"\n\n[[comment]]\nticket = \"TIC001000\"\ntext = \"hi\"\n"
        ),
    );
    let v = env.run(&["validate", "job.toml"]).await;
    assert_eq!(code(&v), 2, "{}", text(&v));
    assert!(text(&v).contains("ALGA_API_KEY"), "{}", text(&v));
    let run = env
        .command(&["run", "job.toml", "--results", "r.csv"])
        .env_remove("ALGA_BASE_URL")
        .output()
        .await
        .unwrap();
    assert_eq!(code(&run), 2, "{}", text(&run));
    assert_eq!(
        counter.others().await,
        0,
        "the job's URL reached the listener"
    );
    assert!(env.sandbox.request_log().is_empty());
}

/// The same listener does count a connection when the URL is fine: the counter is not blind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counter_sees_a_plain_loopback_url() {
    let env = TestEnv::new().await;
    let counter = Counter::start().await;
    env.write("job.csv", "ticket,comment_text\nTIC001000,hello\n");
    let url = format!("http://127.0.0.1:{}", counter.port);
    let mut child = env
        .command(&["run", "job.csv", "--results", "r.csv", "--max-retries", "0"])
        .env("ALGA_BASE_URL", &url)
        .spawn()
        .unwrap();
    tokio::select! {
        () = counter.first() => {}
        status = child.wait() => panic!("the run ended ({status:?}) without connecting"),
    }
    child.start_kill().unwrap();
    let _ = child.wait().await;
    assert!(counter.others().await >= 1);
}
