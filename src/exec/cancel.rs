//! Two-stage stop: the first Ctrl-C stops scheduling, the second aborts what is in flight.

use tokio_util::sync::CancellationToken;

/// The two cancellation stages shared by every worker.
#[derive(Clone, Default)]
pub struct Cancel {
    /// Start nothing new (first Ctrl-C, a fatal error, or a time budget).
    pub soft: CancellationToken,
    /// Abort in-flight requests now (second Ctrl-C).
    pub hard: CancellationToken,
}

impl Cancel {
    /// New, untriggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Listen for Ctrl-C (and SIGTERM, as sent by `timeout`, cron or systemd): once stops
    /// scheduling, twice aborts in-flight requests. Returns a token that is cancelled when a
    /// first signal arrived.
    pub fn install_ctrl_c(&self, quiet: bool) -> CancellationToken {
        let this = self.clone();
        let interrupted = CancellationToken::new();
        let flag = interrupted.clone();
        tokio::spawn(async move {
            if !stop_signal().await {
                return;
            }
            flag.cancel();
            this.soft.cancel();
            if !quiet {
                eprintln!(
                    "\ninterrupted: finishing in-flight operations (Ctrl-C again to abort them)"
                );
            }
            if stop_signal().await {
                if !quiet {
                    eprintln!("aborting in-flight operations; the next run reconciles them");
                }
                this.hard.cancel();
            }
        });
        interrupted
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
