//! Progress reporting: an indicatif bar on a terminal, a plain line every few seconds
//! otherwise, nothing with `--quiet`.

use crate::api::Client;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// Bar on a terminal, plain lines otherwise.
    Auto,
    /// Nothing but the final summary.
    Quiet,
}

#[derive(Default)]
struct Counts {
    done: AtomicU64,
    failed: AtomicU64,
}

/// Live progress of one run.
pub struct Progress {
    counts: Arc<Counts>,
    bar: Option<ProgressBar>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// Start showing progress of `total` operations (`verb` such as "importing").
    pub fn start(total: u64, verb: &str, mode: ProgressMode, client: &Client) -> Progress {
        let counts = Arc::new(Counts::default());
        if mode == ProgressMode::Quiet || total == 0 {
            return Progress {
                counts,
                bar: None,
                ticker: None,
            };
        }
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} {rate} eta {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key(
                "rate",
                |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.1}/s", state.per_sec());
                },
            )
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(verb.to_string());
            bar.enable_steady_tick(Duration::from_millis(200));
            let ticker = spawn_ticker(
                client.clone(),
                counts.clone(),
                Some(bar.clone()),
                total,
                verb,
            );
            return Progress {
                counts,
                bar: Some(bar),
                ticker: Some(ticker),
            };
        }
        let ticker = spawn_ticker(client.clone(), counts.clone(), None, total, verb);
        Progress {
            counts,
            bar: None,
            ticker: Some(ticker),
        }
    }

    /// One operation finished.
    pub fn finished(&self, failed: bool) {
        self.counts.done.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.counts.failed.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// Stop showing progress.
    pub fn finish(self) {
        if let Some(t) = self.ticker {
            t.abort();
        }
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `, server allows ~10/s, limits 12/4/8`: what the client learned of the server.
fn pacing_note(client: &Client) -> String {
    let mut note = String::new();
    if let Some(rate) = client.stats().learned_rate_per_s {
        note.push_str(&format!(
            ", server allows ~{}",
            crate::journal::per_second(rate)
        ));
    }
    let [c, u, r] = client.concurrency_limits();
    note.push_str(&format!(
        ", in flight ≤ {c}/{u}/{r} (comments/uploads/reads)"
    ));
    note
}

/// Updates the bar's message (or prints a plain line every 5 s) with failures and waits.
fn spawn_ticker(
    client: Client,
    counts: Arc<Counts>,
    bar: Option<ProgressBar>,
    total: u64,
    verb: &str,
) -> tokio::task::JoinHandle<()> {
    let verb = verb.to_string();
    tokio::spawn(async move {
        let started = Instant::now();
        let period = if bar.is_some() { 500 } else { 5000 };
        let mut tick = tokio::time::interval(Duration::from_millis(period));
        tick.tick().await;
        loop {
            tick.tick().await;
            let done = counts.done.load(Ordering::Relaxed);
            let failed = counts.failed.load(Ordering::Relaxed);
            let wait = client
                .wait_reason()
                .map(|(why, left)| format!(", {why}, {} s", left.as_secs().max(1)))
                .unwrap_or_default();
            let learned = pacing_note(&client);
            match &bar {
                Some(b) => b.set_message(format!("{failed} failed{learned}{wait}")),
                None => {
                    let rate = client.stats().requests as f64 / started.elapsed().as_secs_f64();
                    eprintln!(
                        "{verb}: {done}/{total} done, {failed} failed, {rate:.1} requests/s{learned}{wait}"
                    );
                }
            }
        }
    })
}
