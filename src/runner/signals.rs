//! Stopping a run: the two-stage Ctrl-C (and SIGTERM, as sent by `timeout`, cron or systemd)
//! and time budgets, both driving the executor's [`Cancel`] stages.

use crate::exec::Cancel;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How a run is stopped: the cancel stages, and whether a signal asked for it.
#[derive(Clone, Debug)]
pub struct Stop {
    /// The stages every worker watches.
    pub cancel: Cancel,
    interrupted: CancellationToken,
}

impl Stop {
    /// Listen for Ctrl-C and SIGTERM: once stops scheduling (in-flight work finishes and is
    /// recorded), twice aborts in-flight requests.
    pub fn install(quiet: bool) -> Stop {
        let stop = Stop::manual();
        let (cancel, flag) = (stop.cancel.clone(), stop.interrupted.clone());
        tokio::spawn(async move {
            if !stop_signal().await {
                return;
            }
            flag.cancel();
            cancel.soft.cancel();
            if !quiet {
                eprintln!(
                    "\ninterrupted: finishing in-flight operations (Ctrl-C again to abort them)"
                );
            }
            if stop_signal().await {
                if !quiet {
                    eprintln!("aborting in-flight operations; the next run reconciles them");
                }
                cancel.hard.cancel();
            }
        });
        stop
    }

    /// A stop driven only by code (tests, an embedded run).
    pub fn manual() -> Stop {
        Stop {
            cancel: Cancel::new(),
            interrupted: CancellationToken::new(),
        }
    }

    /// Whether a signal stopped the run.
    pub fn interrupted(&self) -> bool {
        self.interrupted.is_cancelled()
    }

    /// A time budget: after `budget` start nothing new (soft stop); what is in flight may
    /// still run for `grace`, then it is aborted (hard stop). `hit` is cancelled when the
    /// budget ran out.
    pub fn budget(
        &self,
        budget: Duration,
        grace: Duration,
        hit: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let cancel = self.cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(budget).await;
            hit.cancel();
            cancel.soft.cancel();
            tokio::time::sleep(grace).await;
            cancel.hard.cancel();
        })
    }
}

/// The next Ctrl-C or SIGTERM; false when signals cannot be listened to.
async fn stop_signal() -> bool {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return tokio::signal::ctrl_c().await.is_ok();
        };
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.is_ok(),
            _ = term.recv() => true,
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_budget_stops_new_work_then_aborts_what_overran_the_grace() {
        let stop = Stop::manual();
        let hit = CancellationToken::new();
        let grace = Duration::from_secs(10);
        let task = stop.budget(Duration::from_secs(60), grace, hit.clone());
        tokio::time::sleep(Duration::from_millis(59_900)).await;
        assert!(!stop.cancel.soft.is_cancelled() && !hit.is_cancelled());
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(stop.cancel.soft.is_cancelled() && hit.is_cancelled());
        assert!(
            !stop.cancel.hard.is_cancelled(),
            "in-flight work gets a grace"
        );
        tokio::time::sleep(grace).await;
        assert!(stop.cancel.hard.is_cancelled(), "then it is aborted");
        task.await.unwrap();
        assert!(!stop.interrupted(), "a budget is not an interruption");
    }
}
