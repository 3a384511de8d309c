//! The run's lock on a bucket prefix: the object `.alga-batch.lock`, created with a
//! conditional put (`If-None-Match: *`) and holding who runs (host, pid, start time) and until
//! when (a lease of [`LEASE`]). While the run goes on, a task renews the lease every
//! [`RENEW`] with `If-Match` on the ETag of its last write, so it notices at once if another
//! run took the lock. A second run finds the object and exits 4 naming the holder, unless the
//! lease ran out more than [`SKEW`] ago (the holder was killed): then it takes over with
//! `If-Match` on the ETag it read, so of two runs taking over at once only one wins.
//!
//! A run that cannot renew its lease for a whole [`LEASE`] (counted on its own monotonic
//! clock from before its last successful write) stops writing, since another run may take
//! over from then on; so does one whose lease was taken over. Takers compare `expires_at`
//! with their own wall clock: clocks more than [`SKEW`] apart could let one take over early.
//!
//! Conditional puts: S3 answers `412` to a second `If-None-Match: *` put. Some
//! S3-compatible stores refuse the header (`501 Not Implemented`) and some silently ignore it,
//! which would make every run think it holds the lock; so after creating the lock, the run
//! puts it once more with `If-None-Match: *` and stops with a clear message if that succeeds.

use super::{io_error, lock, Shared};
use crate::store::layout::LOCK_FILE;
use crate::store::StoreError;
use object_store::path::Path;
use object_store::UpdateVersion;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, PutResult};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long a lock stays valid without renewal.
pub(super) const LEASE: Duration = Duration::from_secs(60);
/// How often it is renewed.
pub(super) const RENEW: Duration = Duration::from_secs(20);
/// How long past its lease a lock is still respected (clock differences between machines).
pub(super) const SKEW: Duration = Duration::from_secs(30);

/// What the lock object holds (JSON).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct Holder {
    pub(super) host: String,
    pub(super) pid: u32,
    pub(super) started_at: String,
    pub(super) renewed_at: String,
    pub(super) expires_at: String,
    pub(super) lease_seconds: u64,
}

impl Holder {
    /// This process, renewed now.
    fn me(started_at: &str) -> Holder {
        let now = chrono::Utc::now();
        Holder {
            host: host(),
            pid: std::process::id(),
            started_at: started_at.to_string(),
            renewed_at: stamp(now),
            expires_at: stamp(now + LEASE),
            lease_seconds: LEASE.as_secs(),
        }
    }

    /// Whether the lease ran out more than [`SKEW`] ago (an unreadable time counts as run out).
    pub(super) fn expired(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        crate::store::manifest::parse_time(&self.expires_at).is_none_or(|t| t + SKEW < now)
    }

    /// Whether `other` was written by the same run (host, pid and start time).
    fn same_run(&self, other: &Holder) -> bool {
        (&self.host, self.pid, &self.started_at) == (&other.host, other.pid, &other.started_at)
    }

    fn describe(&self) -> String {
        format!(
            "host {}, pid {}, started {}",
            self.host, self.pid, self.started_at
        )
    }

    fn body(&self) -> PutPayload {
        PutPayload::from(serde_json::to_vec_pretty(self).unwrap_or_default())
    }
}

fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// This machine's name.
fn host() -> String {
    #[cfg(target_os = "linux")]
    {
        rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned()
    }
    #[cfg(not(target_os = "linux"))]
    {
        std::env::var("HOSTNAME")
            .or_else(|_| std::env::var("COMPUTERNAME"))
            .unwrap_or_else(|_| "unknown".into())
    }
}

/// The state of a held lock.
struct State {
    holder: Holder,
    version: UpdateVersion,
    /// Past this instant the lease may have run out.
    until: Instant,
    /// Why the lock is no longer ours.
    lost: Option<String>,
}

/// A held lock.
pub(super) struct Lease {
    path: Path,
    state: Mutex<State>,
    renewing: Mutex<Option<JoinHandle<()>>>,
}

impl Lease {
    /// Fail once the lock is lost or may have run out.
    pub(super) fn check(&self, label: &str) -> Result<(), StoreError> {
        let s = lock(&self.state);
        if let Some(why) = &s.lost {
            return Err(StoreError::Other(format!(
                "{label}: {why}; this run stops writing there"
            )));
        }
        if Instant::now() > s.until {
            return Err(StoreError::Other(format!(
                "{label}: the lock could not be renewed for {} s (another run may take it \
                 over); this run stops writing there",
                LEASE.as_secs()
            )));
        }
        Ok(())
    }

    fn stop_renewing(&self) -> Option<JoinHandle<()>> {
        let task = lock(&self.renewing).take();
        if let Some(t) = &task {
            t.abort();
        }
        task
    }

    /// Stop renewing and delete the lock object (unless another run holds it now).
    pub(super) async fn release(&self, shared: &Shared) -> Result<(), StoreError> {
        if let Some(t) = self.stop_renewing() {
            let _ = t.await;
        }
        if lock(&self.state).lost.is_some() {
            return Ok(());
        }
        match shared.backend.delete(&self.path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => eprintln!(
                "warning: cannot remove the lock {}: {} (it expires by itself)",
                shared.describe(LOCK_FILE),
                io_error(e)
            ),
        }
        Ok(())
    }
}

/// Keeps the lease renewed while held by the run's `StoreLock`; dropping it stops renewing.
pub(super) struct Guard(Arc<Lease>);

impl Guard {
    pub(super) fn new(lease: Arc<Lease>) -> Guard {
        Guard(lease)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.stop_renewing();
    }
}

/// Take the lock: (the lease, who held it before when a stale one was taken over).
pub(super) async fn acquire(
    shared: &Arc<Shared>,
) -> Result<(Arc<Lease>, Option<String>), StoreError> {
    let path = shared.path(LOCK_FILE)?;
    let me = Holder::me(&stamp(chrono::Utc::now()));
    for _ in 0..4 {
        let sent = Instant::now();
        match put(shared, &path, &me, PutMode::Create).await {
            Ok(done) => {
                probe(shared, &path, &me).await?;
                return Ok((start(shared, path, me, done, sent), None));
            }
            Err(object_store::Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(refused(shared, e)),
        }
        let Some((held, version)) = read(shared, &path).await? else {
            continue; // released meanwhile
        };
        if !held.expired(chrono::Utc::now()) {
            return Err(StoreError::Locked(locked_message(shared, &held)));
        }
        let sent = Instant::now();
        match put(shared, &path, &me, PutMode::Update(version)).await {
            Ok(done) => {
                let before = format!(
                    "{}; its lease ran out at {}",
                    held.describe(),
                    held.expires_at
                );
                return Ok((start(shared, path, me, done, sent), Some(before)));
            }
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. }
                | object_store::Error::NotFound { .. },
            ) => {} // another run took it (or released it) first: look again
            Err(e) => return Err(refused(shared, e)),
        }
    }
    Err(StoreError::Locked(format!(
        "{}: the lock changed hands several times while this run tried to take it; try again",
        shared.label
    )))
}

fn locked_message(shared: &Shared, held: &Holder) -> String {
    format!(
        "{} is in use by another alga-batch run ({}; lock {}, lease until {}); this run does \
         nothing. Wait for it to finish, or stop that process: its lease is renewed while it \
         runs, and a lock left by a process that is gone is taken over {} s after its lease \
         ran out",
        shared.label,
        held.describe(),
        shared.describe(LOCK_FILE),
        held.expires_at,
        SKEW.as_secs()
    )
}

async fn put(
    shared: &Shared,
    path: &Path,
    holder: &Holder,
    mode: PutMode,
) -> object_store::Result<PutResult> {
    let opts = PutOptions::from(mode);
    shared.backend.put_opts(path, holder.body(), opts).await
}

/// The lock as stored and its version; `None` when there is none. An unreadable one counts as
/// held by an unknown run until a lease after its last change has run out.
async fn read(shared: &Shared, path: &Path) -> Result<Option<(Holder, UpdateVersion)>, StoreError> {
    let got = match shared.backend.get(path).await {
        Ok(g) => g,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(shared.error("cannot read the lock", LOCK_FILE, e)),
    };
    let version = UpdateVersion {
        e_tag: got.meta.e_tag.clone(),
        version: got.meta.version.clone(),
    };
    let modified = got.meta.last_modified;
    let data = got
        .bytes()
        .await
        .map_err(|e| shared.error("cannot read the lock", LOCK_FILE, e))?;
    let holder = serde_json::from_slice::<Holder>(&data).unwrap_or_else(|_| Holder {
        host: "unknown (unreadable lock)".into(),
        pid: 0,
        started_at: stamp(modified),
        renewed_at: stamp(modified),
        expires_at: stamp(modified + LEASE),
        lease_seconds: LEASE.as_secs(),
    });
    Ok(Some((holder, version)))
}

/// Whether the store honours `If-None-Match: *`: a second create of the lock must fail.
async fn probe(shared: &Shared, path: &Path, me: &Holder) -> Result<(), StoreError> {
    match put(shared, path, me, PutMode::Create).await {
        Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
        Ok(_) => {
            let _ = shared.backend.delete(path).await;
            Err(unsupported(
                shared,
                "accepted a conditional put that had to fail",
            ))
        }
        Err(e) => {
            let _ = shared.backend.delete(path).await;
            Err(refused(shared, e))
        }
    }
}

/// A failed conditional put as the run's error.
fn refused(shared: &Shared, e: object_store::Error) -> StoreError {
    let text = e.to_string();
    let not_implemented = matches!(e, object_store::Error::NotImplemented { .. })
        || text.contains("501")
        || text.contains("NotImplemented");
    if not_implemented {
        return unsupported(shared, "refused a conditional put");
    }
    shared.error("cannot take the lock", LOCK_FILE, e)
}

fn unsupported(shared: &Shared, what: &str) -> StoreError {
    StoreError::Other(format!(
        "{}: the store {what} (If-None-Match), which the backup lock needs to keep two runs \
         apart. Use a store that supports conditional puts (see the README), or pass \
         --no-lock (lock = false in a job file) and make sure runs never overlap",
        shared.label
    ))
}

/// Hold the lease written by `done` (sent at `sent`) and start renewing it.
fn start(
    shared: &Arc<Shared>,
    path: Path,
    holder: Holder,
    done: PutResult,
    sent: Instant,
) -> Arc<Lease> {
    let lease = Arc::new(Lease {
        path,
        state: Mutex::new(State {
            holder,
            version: UpdateVersion::from(done),
            until: sent + LEASE,
            lost: None,
        }),
        renewing: Mutex::new(None),
    });
    let task = tokio::spawn(renew(shared.clone(), lease.clone()));
    *lock(&lease.renewing) = Some(task);
    lease
}

/// Renew every [`RENEW`] until stopped or lost.
async fn renew(shared: Arc<Shared>, lease: Arc<Lease>) {
    let mut tick = tokio::time::interval_at(Instant::now() + RENEW, RENEW);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (holder, version) = {
            let s = lock(&lease.state);
            (Holder::me(&s.holder.started_at), s.version.clone())
        };
        let sent = Instant::now();
        // A renewal stuck in retries is given up at the next tick (if it lands later, it
        // only renews this run's own lock).
        let attempt = put(&shared, &lease.path, &holder, PutMode::Update(version));
        let Ok(renewed) = tokio::time::timeout(RENEW, attempt).await else {
            continue;
        };
        match renewed {
            Ok(done) => {
                let mut s = lock(&lease.state);
                s.version = UpdateVersion::from(done);
                s.holder = holder;
                s.until = sent + LEASE;
            }
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. }
                | object_store::Error::NotFound { .. },
            ) => {
                let Ok(now) = read(&shared, &lease.path).await else {
                    continue; // cannot tell yet: ask again at the next tick
                };
                let mut s = lock(&lease.state);
                match now {
                    // A renewal given up on above landed after all: the lock is still ours.
                    Some((h, version)) if h.same_run(&s.holder) => s.version = version,
                    Some((h, _)) => {
                        s.lost = Some(format!("the lock was taken over ({})", h.describe()));
                        return;
                    }
                    None => {
                        s.lost = Some("the lock object was deleted by someone else".into());
                        return;
                    }
                }
            }
            Err(_) => {} // try again at the next tick; `check` fails once the lease runs out
        }
    }
}
