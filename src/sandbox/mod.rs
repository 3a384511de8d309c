//! A faithful local Alga PSA ticket API (the only user of axum), for tests, the demo and
//! rehearsals: `alga-batch sandbox`, or embedded with [`start`].
//!
//! It reproduces the real server as CONTRACT.md and the captures describe it: the endpoints
//! and their envelopes, error statuses and quirks, the per-key token bucket on exactly the routes
//! the real server limits, and seeded data. Faults (`fail_rate`, `latency_ms`,
//! `drop_after_commit`) are reproducible from the seed. The handle exposes what the server holds
//! and saw, for assertions.
//!
//! Layout: `routes/` (handlers, one file per topic), `store` (records + journal), `seed`,
//! `limiter`, `capacity` (N workers with contention, when configured), `faults`, `stats`
//! (counters, log, latency percentiles), `error` (envelopes), `server` (accept loop).

mod capacity;
mod config;
mod error;
mod faults;
mod limiter;
mod model;
mod routes;
mod seed;
mod server;
mod stats;
mod store;

use std::sync::{Arc, Mutex};

use chrono::Utc;
use serde_json::Value;
use uuid::Uuid;

pub use config::{
    parse_latency_ms, tenant_for_seed, Capacity, RateLimitMode, SandboxArgError, SandboxConfig,
};
pub use stats::{LatencyPercentiles, LoggedRequest, SandboxStats};

use model::{Document, Ticket};
use routes::AppState;
use store::Store;

/// A ticket as a test sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxTicket {
    /// The ticket's UUID.
    pub ticket_id: Uuid,
    /// Its human number, e.g. `TIC001000`.
    pub ticket_number: String,
    /// Whether its status is closed.
    pub is_closed: bool,
    /// Its title.
    pub title: String,
}

/// A running sandbox. Dropping it stops the server as well (without waiting); without a data
/// directory its document files are deleted then.
pub struct Sandbox {
    state: Arc<AppState>,
    addr: std::net::SocketAddr,
    server: server::Server,
    _files: Option<tempfile::TempDir>,
}

impl Sandbox {
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The tenant id (`x-tenant-id` must match it when sent).
    pub fn tenant(&self) -> Uuid {
        self.state.tenant
    }

    /// All tickets, in creation order.
    pub fn tickets(&self) -> Vec<SandboxTicket> {
        self.state
            .store()
            .tickets()
            .iter()
            .map(|t| SandboxTicket {
                ticket_id: t.ticket_id,
                ticket_number: t.ticket_number.clone(),
                is_closed: t.is_closed,
                title: t.title.clone(),
            })
            .collect()
    }

    /// A ticket's comments as the API lists them (full format), oldest first.
    pub fn comments(&self, ticket: Uuid) -> Vec<Value> {
        let store = self.state.store();
        store
            .comments(ticket)
            .iter()
            .map(|c| c.listed_json(self.state.tenant))
            .collect()
    }

    /// A ticket's documents as the API lists them, newest first.
    pub fn documents(&self, ticket: Uuid) -> Vec<Value> {
        let store = self.state.store();
        store
            .documents(ticket)
            .iter()
            .map(|d| d.listed_json(self.state.tenant))
            .collect()
    }

    /// The stored bytes of a (not deleted) document.
    pub fn document_bytes(&self, document: Uuid) -> Option<Vec<u8>> {
        let path = {
            let store = self.state.store();
            store.file_path(store.document(document)?.file_id)
        };
        std::fs::read(path).ok()
    }

    /// Counters since start.
    pub fn stats(&self) -> SandboxStats {
        self.state.recorder.stats()
    }

    /// Every request in arrival order (the most recent 200,000).
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.state.recorder.log()
    }

    /// Requests received since start, counted on arrival (before any latency), whether or not
    /// they were answered. [`Sandbox::request_log`] lists a request only once it is answered.
    pub fn received(&self) -> u64 {
        self.state.recorder.received()
    }

    /// Requests inside the server now: arrived, and neither answered nor abandoned (a request
    /// whose connection closed is abandoned when hyper notices).
    pub fn in_flight(&self) -> u64 {
        self.state.recorder.in_flight()
    }

    /// Time in server (arrival to response head) of every API request so far, `/api/health`
    /// excepted: p50, p90, p99 and max.
    pub fn latency_percentiles(&self) -> LatencyPercentiles {
        self.state.recorder.latency(None)
    }

    /// Like [`Sandbox::latency_percentiles`] for one `"METHOD route-pattern"`, as in
    /// [`SandboxStats::by_route`] (e.g. `"POST /api/v1/tickets/{id}/comments"`).
    pub fn route_latency_percentiles(&self, route: &str) -> LatencyPercentiles {
        self.state.recorder.latency(Some(route))
    }

    /// Forgets the latencies recorded so far (e.g. after a warm-up); counters and the log stay.
    pub fn reset_latency(&self) {
        self.state.recorder.reset_latency();
    }

    /// Adds a ticket with a chosen number (e.g. a near-miss like `TIC0010001`).
    pub fn add_ticket(&self, number: &str, title: &str, closed: bool) -> Uuid {
        let mut store = self.state.store();
        let id = store.new_id();
        let now = Utc::now();
        let template = seed::derived_id(0, "sandbox-added");
        store.save_ticket(Ticket {
            ticket_id: id,
            ticket_number: number.to_string(),
            title: title.to_string(),
            is_closed: closed,
            entered_at: now,
            updated_at: now,
            updated_by: None,
            closed_at: closed.then_some(now),
            status_id: seed::derived_id(
                0,
                if closed {
                    "status:closed"
                } else {
                    "status:open"
                },
            ),
            status_name: if closed { "Closed" } else { "New" }.to_string(),
            client_id: template,
            client_name: "Sandbox Client".to_string(),
            board_id: template,
            priority_id: template,
            entered_by: template,
            assigned_to: None,
        });
        id
    }

    /// Attaches a document with any name (even hostile ones like `../../evil.txt`).
    pub fn add_document_raw(&self, ticket: Uuid, name: &str, mime: &str, bytes: &[u8]) -> Uuid {
        let mut store = self.state.store();
        let (document_id, file_id, association_id) =
            (store.new_id(), store.new_id(), store.new_id());
        if let Err(e) = std::fs::write(store.file_path(file_id), bytes) {
            eprintln!("sandbox: cannot store document bytes: {e}");
        }
        let user = &self.state.users[0];
        store.save_document(Document {
            document_id,
            ticket_id: ticket,
            document_name: name.to_string(),
            mime_type: mime.to_string(),
            file_size: bytes.len() as u64,
            user_id: user.user_id,
            author_name: user.name.clone(),
            file_id,
            association_id,
            updated_at: Utc::now(),
        });
        document_id
    }

    /// Delays the answer (uniform in `[a, b]` ms) of requests arriving from now on, after their
    /// handler ran: a create is committed at once and answered late (`None`: no delay). A client
    /// that gives up meanwhile never gets the answer, as with a slow real server.
    pub fn set_reply_delay(&self, delay_ms: Option<(u64, u64)>) {
        self.state.faults.set_reply_delay(delay_ms);
    }

    /// Changes the fault probabilities at runtime.
    pub fn set_faults(&self, fail_rate: f64, drop_after_commit: f64) {
        self.state.faults.set(fail_rate, drop_after_commit);
    }

    /// Changes the probabilities that a committed create is answered 500, or 201 with an
    /// unreadable body.
    pub fn set_after_commit_faults(&self, error: f64, garble: f64) {
        self.state.faults.set_after_commit(error, garble);
    }

    /// Stops accepting, closes open connections and waits for the server task.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// Builds the state: opens or seeds the store, sets up users, limiter and faults.
fn build_state(cfg: &SandboxConfig) -> std::io::Result<(AppState, Option<tempfile::TempDir>)> {
    let (files_dir, tmp) = match &cfg.data_dir {
        Some(d) => (d.join("files"), None),
        None => {
            let t = tempfile::Builder::new().prefix("alga-sandbox-").tempdir()?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let (mut store, had_data) = Store::open(cfg.data_dir.as_deref(), files_dir, cfg.seed)?;
    if !had_data {
        seed::seed(&mut store, cfg.seed, cfg.tickets)?;
    }
    let mut keys = cfg.api_keys.clone();
    if keys.is_empty() && cfg.readonly_keys.is_empty() {
        keys.push("sandbox-key".to_string());
    }
    let faults = faults::Faults::new(
        cfg.seed,
        cfg.fail_rate,
        cfg.drop_after_commit,
        cfg.latency_ms,
    );
    faults.set_after_commit(cfg.error_after_commit, cfg.garble_after_commit);
    let state = AppState {
        store: Mutex::new(store),
        tenant: cfg.tenant,
        users: seed::users(cfg.seed, &keys, &cfg.readonly_keys),
        limiter: limiter::Limiter::new(cfg.rate_limit, cfg.burst, cfg.refill_per_minute),
        limit_comments: cfg.limit_comments,
        max_upload_bytes: cfg.max_upload_bytes,
        faults,
        recorder: stats::Recorder::default(),
        workers: cfg.capacity.as_ref().map(capacity::Workers::new),
        quiet: cfg.quiet,
    };
    Ok((state, tmp))
}

/// Binds `cfg.bind`, starts serving in the background and returns the handle.
pub async fn start(cfg: SandboxConfig) -> std::io::Result<Sandbox> {
    let (state, files) = build_state(&cfg)?;
    let state = Arc::new(state);
    let listener = tokio::net::TcpListener::bind(cfg.bind).await?;
    let addr = listener.local_addr()?;
    let server = server::Server::spawn(listener, routes::app(state.clone()));
    Ok(Sandbox {
        state,
        addr,
        server,
        _files: files,
    })
}

/// For the CLI: starts, prints `sandbox listening on http://...` to stderr, serves until Ctrl-C
/// or SIGTERM; then writes the counters and latency percentiles as JSON to `stats_file`, if
/// given.
pub async fn serve_until_ctrl_c(
    cfg: SandboxConfig,
    stats_file: Option<&std::path::Path>,
) -> std::io::Result<()> {
    let sandbox = start(cfg).await?;
    eprintln!("sandbox listening on {}", sandbox.base_url());
    eprintln!(
        "sandbox tenant {}; {} tickets",
        sandbox.tenant(),
        sandbox.tickets().len()
    );
    stop_signal().await?;
    eprintln!("sandbox: shutting down");
    let report = sandbox.state.recorder.report();
    sandbox.shutdown().await;
    if let Some(path) = stats_file {
        let text = serde_json::to_string_pretty(&report).map_err(std::io::Error::other)?;
        std::fs::write(path, text + "\n")?;
    }
    Ok(())
}

/// The next Ctrl-C or SIGTERM (a script's `kill`: background jobs of a script ignore SIGINT).
async fn stop_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
