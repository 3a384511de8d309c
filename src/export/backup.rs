//! The `backup` command: lock the store, read the manifest, select tickets, back each one up
//! with bounded concurrency (every request governed and retried by the shared client and
//! `exec::retry`), stop cleanly on Ctrl-C or at the `--max-duration` budget, then compact the
//! manifest, write the comments CSV and summarise. Every write goes through a
//! [`BackupStore`]; this file does not know which.

use super::comments;
use super::options::BackupOptions;
use super::report::{estimate, BackupSummary, Tally};
use super::resume::{self, Watermark};
use super::select::{resolve_refs, Lister, Target};
use super::ticket::{self, Ctx};
use crate::api::{ApiError, Client};
use crate::connect::Connection;
use crate::error::Result;
use crate::exec::retry::with_retries;
use crate::exec::{Progress, ProgressMode};
use crate::runner::{fatal_from, Runner, Stop};
use crate::store::layout::MANIFEST_FILE;
use crate::store::{BackupStore, Entry, Manifest, StoreLock};
use futures::StreamExt;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Run a backup into `opts.out`, a folder or a bucket (or, with `dry_run`, only print what it
/// would cost).
pub async fn run_backup(opts: &BackupOptions, conn: Connection) -> Result<BackupSummary> {
    // Opening sends nothing: what fails here is the target's configuration (exit 2).
    let store = crate::store::open(&opts.out, opts.direct_io)
        .await
        .map_err(|e| crate::error::Error::Usage(e.to_string()))?;
    back_up_into(opts, conn, store.as_ref()).await
}

/// What a run sets up around the backup itself: the runner (client, pacing, stop) and,
/// unless `dry_run`, the store's lock.
struct Setup {
    runner: Runner,
    /// Held for the whole run.
    lock: Option<StoreLock>,
}

/// The runner; unless `dry_run`: the store's lock (exit 4 when held) and the two-stage Ctrl-C.
async fn set_up(opts: &BackupOptions, conn: Connection, store: &dyn BackupStore) -> Result<Setup> {
    if opts.dry_run {
        let runner = Runner::connect(conn, &opts.pacing, Stop::manual(), |_| {})?;
        return Ok(Setup { runner, lock: None });
    }
    let runner = Runner::connect(conn, &opts.pacing, Stop::install(opts.quiet), |_| {})?;
    let lock = if opts.lock {
        let l = store.lock().await?;
        if let (Some(prev), false) = (&l.took_over, opts.quiet) {
            eprintln!("took over a stale lock ({prev}; that process is gone)");
        }
        Some(l)
    } else {
        None
    };
    Ok(Setup { runner, lock })
}

/// Run a backup into `store`; the lock is released at the end however the run ends.
pub async fn back_up_into(
    opts: &BackupOptions,
    conn: Connection,
    store: &dyn BackupStore,
) -> Result<BackupSummary> {
    let started = Instant::now();
    let mut setup = set_up(opts, conn, store).await?;
    let result = if opts.dry_run {
        dry_run(opts, store, &setup, started).await
    } else {
        back_up(opts, store, &setup, started).await
    };
    if let Some(lock) = setup.lock.take() {
        let released = store.unlock(lock).await;
        if result.is_ok() {
            released?;
        }
    }
    result
}

/// The backup itself, once set up.
async fn back_up(
    opts: &BackupOptions,
    store: &dyn BackupStore,
    setup: &Setup,
    started: Instant,
) -> Result<BackupSummary> {
    let manifest = open_manifest(store).await?;
    let runner = &setup.runner;
    let budget = CancellationToken::new();
    let timer = opts
        .max_duration
        .map(|d| runner.stop().budget(d, grace(d), budget.clone()));
    let tally = Tally::default();
    let ctx = Ctx {
        client: runner.client(),
        policy: runner.policy().clone(),
        cancel: &runner.stop().cancel,
        store,
        manifest: &manifest,
        opts,
        tally: &tally,
        fatal: Mutex::new(None),
        numbers: Mutex::new(HashMap::new()),
    };
    let outcome = back_up_selection(&ctx).await;
    if let Some(t) = timer {
        t.abort();
    }
    manifest.compact().await?;
    if let Ok(pass) = &outcome {
        match pass.next {
            Some(next) => resume::save(store, &opts.selection, next).await?,
            None => resume::clear(store).await?,
        }
    }
    if let Some(e) = ctx.fatal.lock().ok().and_then(|mut f| f.take()) {
        return Err(e);
    }
    let pass = outcome?;
    let mut summary = tally.summary();
    if opts.comments {
        summary.comments = comments::rebuild_csv(store, &ticket_numbers(&ctx)).await?;
    }
    summary.manifest = Some(store.describe(MANIFEST_FILE).into());
    let entries = manifest.snapshot();
    summary.manifest_documents = entries.len() as u64;
    summary.manifest_bytes = entries.values().map(|e| e.bytes).sum();
    summary.budget_reached = budget.is_cancelled().then_some(opts.max_duration).flatten();
    summary.interrupted = runner.stop().interrupted();
    summary.resumed_at = (pass.started_at > 0).then_some(pass.started_at);
    summary.continue_at = pass.next;
    fill_stats(&mut summary, runner.client(), started);
    Ok(summary)
}

/// The manifest with a killed run's journal folded in (before this run appends to a fresh
/// one).
async fn open_manifest(store: &dyn BackupStore) -> Result<Manifest<'_>> {
    let loaded = store.load_manifest().await?;
    let manifest = Manifest::new(store, loaded.entries);
    if loaded.journal_replayed {
        manifest.compact().await?;
    }
    Ok(manifest)
}

/// Ticket id -> number: from the manifest, then as the server spelled them in this run.
fn ticket_numbers(ctx: &Ctx<'_>) -> HashMap<uuid::Uuid, String> {
    let mut numbers: HashMap<uuid::Uuid, String> = ctx
        .manifest
        .snapshot()
        .into_values()
        .filter(|e| !e.ticket_number.is_empty())
        .map(|e| (e.ticket_id, e.ticket_number))
        .collect();
    numbers.extend(lock_set(&ctx.numbers).drain());
    numbers
}

fn fill_stats(summary: &mut BackupSummary, client: &Client, started: Instant) {
    let stats = client.stats();
    summary.requests = stats.requests;
    summary.retries = stats.retries;
    summary.throttled = stats.throttled;
    summary.downloaded_bytes = stats.bytes_downloaded;
    summary.elapsed = started.elapsed();
}

/// Shortest grace for work in flight when the budget runs out.
const MIN_GRACE: Duration = Duration::from_secs(10);

/// How long downloads in flight at the end of a `budget` may still run: 10% of it, at least
/// 10 s (`50m` gives 5 min).
fn grace(budget: Duration) -> Duration {
    (budget / 10).max(MIN_GRACE)
}

/// Print the estimate; sends at most one list request.
async fn dry_run(
    opts: &BackupOptions,
    store: &dyn BackupStore,
    setup: &Setup,
    started: Instant,
) -> Result<BackupSummary> {
    let (client, policy) = (setup.runner.client(), setup.runner.policy());
    let sel = &opts.selection;
    let tickets = if sel.refs.is_empty() {
        Lister::count(client, policy, &Default::default(), sel)
            .await
            .map_err(|e| fatal_from(client, e))?
    } else {
        sel.refs.len() as u64
    };
    let known = store.load_manifest().await?.entries.len();
    let at = continue_at(resume::load(store, sel).await, tickets);
    let left = tickets - at;
    eprintln!(
        "{}",
        estimate(
            left,
            opts.comments,
            opts.pacing.rate_per_minute,
            opts.pacing.burst
        )
    );
    if at > 0 && left > 0 {
        eprintln!(
            "(the previous pass stopped early: the next run continues at ticket {} of {})",
            crate::runner::group_thousands(at + 1),
            crate::runner::group_thousands(tickets)
        );
    }
    eprintln!(
        "{known} document(s) already in {} are not downloaded again while unchanged",
        store.describe(MANIFEST_FILE)
    );
    let mut summary = BackupSummary::default();
    fill_stats(&mut summary, client, started);
    Ok(summary)
}

/// Where a pass continues: at the saved position, or from the start when the selection has
/// shrunk to (or below) it (as `Lister::start` and named selections do).
fn continue_at(saved: u64, tickets: u64) -> u64 {
    if saved < tickets {
        saved
    } else {
        0
    }
}

/// The next run's position: `None` (pass complete) once every ticket before `end` is done,
/// however the run stopped.
fn next_position(done: u64, end: u64) -> Option<u64> {
    (done < end).then_some(done)
}

/// Where this run's pass started and where the next run continues (`None`: pass complete).
struct Pass {
    started_at: u64,
    next: Option<u64>,
}

/// Select and back up every ticket, continuing an interrupted pass.
async fn back_up_selection(ctx: &Ctx<'_>) -> Result<Pass> {
    let mode = if ctx.opts.quiet {
        ProgressMode::Quiet
    } else {
        ProgressMode::Auto
    };
    let offset = resume::load(ctx.store, &ctx.opts.selection).await;
    if ctx.opts.selection.refs.is_empty() {
        back_up_listed(ctx, mode, offset).await
    } else {
        back_up_named(ctx, mode, offset).await
    }
}

/// `--ticket`/`--tickets`: resolve, report the unknown ones, back up the rest.
async fn back_up_named(ctx: &Ctx<'_>, mode: ProgressMode, offset: u64) -> Result<Pass> {
    let refs = &ctx.opts.selection.refs;
    let not_started = Pass {
        started_at: offset,
        next: Some(offset),
    };
    let (targets, missing) =
        match resolve_refs(ctx.client, &ctx.policy, refs, &ctx.cancel.hard).await {
            Ok(r) => r,
            Err(ApiError::Cancelled) => return Ok(not_started),
            Err(e) => return Err(fatal_from(ctx.client, e)),
        };
    for m in missing {
        Tally::add(&ctx.tally.tickets_failed, 1);
        ctx.tally.problem(format!("{}: {}", m.reference, m.why));
    }
    let end = targets.len() as u64;
    let offset = continue_at(offset, end);
    let total = end - offset;
    let progress = Progress::start(total, "backing up", mode, ctx.client);
    let items = targets.into_iter().skip(offset as usize).map(Ok);
    let mark = Watermark::new(offset);
    run_targets(ctx, futures::stream::iter(items), &mark, &progress).await;
    progress.finish();
    Ok(Pass {
        started_at: offset,
        next: next_position(mark.next(), end),
    })
}

/// Every ticket of the (filtered) list, page by page; after a complete unfiltered pass from
/// the first ticket, documents of tickets no longer listed are reported as gone.
async fn back_up_listed(ctx: &Ctx<'_>, mode: ProgressMode, offset: u64) -> Result<Pass> {
    let sel = &ctx.opts.selection;
    let started = Lister::start(ctx.client, &ctx.policy, &ctx.cancel.hard, sel, offset).await;
    let (lister, offset) = match started {
        Ok(l) => l,
        Err(ApiError::Cancelled) => {
            return Ok(Pass {
                started_at: offset,
                next: Some(offset),
            })
        }
        Err(e) => return Err(fatal_from(ctx.client, e)),
    };
    let total = lister.total.saturating_sub(offset);
    let progress = Progress::start(total, "backing up", mode, ctx.client);
    let complete = AtomicBool::new(false);
    let listed = std::sync::atomic::AtomicU64::new(0);
    let seen = Mutex::new(HashSet::new());
    let pages = futures::stream::unfold(lister, |mut l| async {
        match l.next_page(ctx.client, &ctx.policy, &ctx.cancel.hard).await {
            Ok(Some(page)) => {
                listed.fetch_add(page.len() as u64, Ordering::Relaxed);
                if l.exhausted() {
                    complete.store(true, Ordering::Relaxed);
                }
                Some((page.into_iter().map(Ok).collect::<Vec<_>>(), l))
            }
            Ok(None) => None,
            Err(e) => Some((vec![Err(e)], l)),
        }
    });
    let items = pages.flat_map(futures::stream::iter).inspect(|item| {
        if let Ok(t) = item {
            lock_set(&seen).insert(t.ticket_id);
        }
    });
    let mark = Watermark::new(offset);
    run_targets(ctx, items, &mark, &progress).await;
    progress.finish();
    // Complete when the list was read to its end and every ticket of it is done (a budget
    // that runs out after the last ticket does not leave a pass to continue).
    let end = offset + listed.load(Ordering::Relaxed);
    let next = next_position(mark.next(), end);
    let whole = complete.load(Ordering::Relaxed) && next.is_none();
    let unfiltered = !sel.open_only && sel.updated_from.is_none();
    if whole && unfiltered && offset == 0 && !has_fatal(ctx) {
        let seen = std::mem::take(&mut *lock_set(&seen));
        report_unlisted_tickets(ctx, &seen).await;
    }
    Ok(Pass {
        started_at: offset,
        next: (!whole).then(|| mark.next()),
    })
}

fn has_fatal(ctx: &Ctx<'_>) -> bool {
    lock_set(&ctx.fatal).is_some()
}

fn lock_set<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Back up a stream of tickets, `concurrency` at a time; stops taking new ones once cancelled.
/// Positions in the order start at the watermark's start.
async fn run_targets(
    ctx: &Ctx<'_>,
    items: impl futures::Stream<Item = Result<Target, ApiError>>,
    mark: &Watermark,
    progress: &Progress,
) {
    let soft = ctx.cancel.soft.clone();
    let first = mark.next();
    items
        .take_until(soft.cancelled_owned())
        .enumerate()
        .map(|(i, item)| async move {
            match item {
                Ok(t) => {
                    let r = ticket::back_up(ctx, &t).await;
                    progress.finished(r.failed);
                    if r.complete {
                        mark.done(first + i as u64);
                    }
                }
                Err(ApiError::Cancelled) => {}
                Err(e) => ctx.set_fatal(fatal_from(ctx.client, e)),
            }
        })
        .buffer_unordered(ctx.opts.pacing.lanes())
        .collect::<()>()
        .await;
}

/// After a complete, unfiltered listing: manifest rows of tickets the server no longer lists.
/// Each such ticket is confirmed with `GET /tickets/{id}` first: only a 404 makes its
/// documents gone (reported, and pruned with `--prune`); any other answer keeps them.
async fn report_unlisted_tickets(ctx: &Ctx<'_>, seen: &HashSet<uuid::Uuid>) {
    let mut unlisted: BTreeMap<uuid::Uuid, Vec<Entry>> = BTreeMap::new();
    for e in ctx.manifest.snapshot().into_values() {
        if !seen.contains(&e.ticket_id) {
            unlisted.entry(e.ticket_id).or_default().push(e);
        }
    }
    for (id, rows) in unlisted {
        if ctx.cancel.soft.is_cancelled() {
            return;
        }
        let number = rows[0].ticket_number.clone();
        let got = with_retries(ctx.client, &ctx.policy, true, &ctx.cancel.hard, || {
            ctx.client.get_ticket(id)
        })
        .await
        .result;
        match got {
            Err(e) if e.status() == Some(404) => {
                let label = format!("{number} (ticket no longer listed)");
                for e in &rows {
                    ticket::report_gone(ctx, &label, e).await;
                }
            }
            Ok(_) | Err(ApiError::Cancelled) => {}
            Err(e) => ctx.tally.problem(format!(
                "{number}: not in the ticket list, but whether it is gone is unknown ({}); \
                 its {} file(s) are kept",
                e.one_line(),
                rows.len()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_is_complete_once_every_ticket_is_done_however_the_run_stopped() {
        assert_eq!(
            next_position(12, 12),
            None,
            "all 12 done: start over next time"
        );
        assert_eq!(next_position(7, 12), Some(7));
        assert_eq!(next_position(0, 0), None);
    }

    #[test]
    fn the_grace_is_a_tenth_of_the_budget_and_at_least_ten_seconds() {
        assert_eq!(grace(Duration::from_secs(3000)), Duration::from_secs(300));
        assert_eq!(grace(Duration::from_secs(30)), MIN_GRACE);
    }

    #[test]
    fn a_saved_position_past_the_end_starts_over() {
        assert_eq!(continue_at(12, 12), 0);
        assert_eq!(continue_at(20, 12), 0);
        assert_eq!(continue_at(5, 12), 5);
        assert_eq!(continue_at(0, 12), 0);
    }
}
