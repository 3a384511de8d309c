//! The `backup` command: lock the folder, read the manifest, select tickets, back each one up
//! with bounded concurrency (every request governed and retried by the shared client and
//! `exec::retry`), stop cleanly on Ctrl-C or at the `--max-duration` budget, then write the
//! manifest and comments CSV and summarise.

use super::comments;
use super::download::remove_stale_temps;
use super::lock;
use super::manifest::{self, Store, MANIFEST_FILE};
use super::options::BackupOptions;
use super::report::{estimate, BackupSummary, Tally};
use super::resume::{self, Watermark};
use super::select::{resolve_refs, Lister, Target};
use super::ticket::{self, Ctx};
use crate::api::{ApiError, Client};
use crate::connect::Connection;
use crate::error::{Error, Result};
use crate::exec::retry::{with_retries, RetryPolicy};
use crate::exec::{Cancel, Progress, ProgressMode};
use crate::runner::fatal_from;
use futures::StreamExt;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the manifest is rewritten while a backup runs.
const MANIFEST_EVERY: Duration = Duration::from_secs(2);

/// Run a backup (or, with `dry_run`, only print what it would cost).
pub async fn run_backup(opts: &BackupOptions, conn: Connection) -> Result<BackupSummary> {
    let started = Instant::now();
    let mut cfg = conn.config(opts.rate_per_minute, opts.burst)?;
    cfg.direct_io = opts.direct_io;
    let client = crate::connect::build(cfg)?;
    let policy = RetryPolicy {
        max_retries: opts.max_retries,
        base: Duration::from_millis(500),
        max_delay: Duration::from_secs(30),
    };
    if opts.dry_run {
        return dry_run(opts, &client, &policy, started).await;
    }
    let (_lock, store) = open_folder(opts)?;
    let manifest_path = opts.out.join(MANIFEST_FILE);
    let stop = crate::runner::Stop::install(opts.quiet);
    let cancel = stop.cancel.clone();
    let budget = Arc::new(AtomicBool::new(false));
    let timer = opts
        .max_duration
        .map(|d| spawn_budget(d, cancel.clone(), budget.clone()));
    let tally = Tally::default();
    let ctx = Ctx {
        client: &client,
        policy,
        cancel: &cancel,
        store: &store,
        opts,
        tally: &tally,
        fatal: Mutex::new(None),
        numbers: Mutex::new(HashMap::new()),
    };
    let outcome = back_up_selection(&ctx).await;
    if let Some(t) = timer {
        t.abort();
    }
    store.flush()?;
    if let Ok(pass) = &outcome {
        match pass.next {
            Some(next) => resume::save(&opts.out, &opts.selection, next)?,
            None => resume::clear(&opts.out)?,
        }
    }
    if let Some(e) = ctx.fatal.lock().ok().and_then(|mut f| f.take()) {
        return Err(e);
    }
    let pass = outcome?;
    let mut summary = tally.summary();
    if opts.comments {
        let mut numbers: HashMap<uuid::Uuid, String> = store
            .snapshot()
            .into_values()
            .filter(|e| !e.ticket_number.is_empty())
            .map(|e| (e.ticket_id, e.ticket_number))
            .collect();
        numbers.extend(lock_set(&ctx.numbers).drain());
        summary.comments = comments::rebuild_csv(&opts.out, &numbers)?;
    }
    summary.manifest = Some(manifest_path);
    let entries = store.snapshot();
    summary.manifest_documents = entries.len() as u64;
    summary.manifest_bytes = entries.values().map(|e| e.bytes).sum();
    summary.budget_reached = budget
        .load(Ordering::Relaxed)
        .then_some(opts.max_duration)
        .flatten();
    summary.interrupted = stop.interrupted();
    summary.resumed_at = (pass.started_at > 0).then_some(pass.started_at);
    summary.continue_at = pass.next;
    fill_stats(&mut summary, &client, started);
    Ok(summary)
}

/// Create and lock the folder, clear temp files of a killed run (when locked), read the
/// manifest.
fn open_folder(opts: &BackupOptions) -> Result<(Option<lock::DirLock>, Store)> {
    std::fs::create_dir_all(&opts.out)
        .map_err(|e| Error::io("cannot create backup folder", &opts.out, e))?;
    let held = if opts.lock {
        let l = lock::acquire(&opts.out)?;
        if let (Some(prev), false) = (&l.took_over, opts.quiet) {
            eprintln!("took over a stale lock ({prev}; that process is gone)");
        }
        // Only with the lock held is no other run writing temp files here.
        remove_stale_temps(&opts.out);
        Some(l)
    } else {
        None
    };
    let path = opts.out.join(MANIFEST_FILE);
    let entries = manifest::read(&path)?;
    Ok((held, Store::new(path, entries, MANIFEST_EVERY)))
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

/// Once the budget is spent, start nothing new (soft cancel); what is in flight may finish
/// and is recorded. After the grace, abort what is still running (hard cancel): its temp
/// files are removed and its documents left for the next run.
fn spawn_budget(d: Duration, cancel: Cancel, hit: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(d).await;
        hit.store(true, Ordering::Relaxed);
        cancel.soft.cancel();
        tokio::time::sleep(grace(d)).await;
        cancel.hard.cancel();
    })
}

/// Print the estimate; sends at most one list request.
async fn dry_run(
    opts: &BackupOptions,
    client: &Client,
    policy: &RetryPolicy,
    started: Instant,
) -> Result<BackupSummary> {
    let sel = &opts.selection;
    let tickets = if sel.refs.is_empty() {
        Lister::count(client, policy, &Default::default(), sel)
            .await
            .map_err(|e| fatal_from(client, e))?
    } else {
        sel.refs.len() as u64
    };
    let known = manifest::read(&opts.out.join(MANIFEST_FILE))?.len();
    let at = continue_at(resume::load(&opts.out, sel), tickets);
    let left = tickets - at;
    eprintln!(
        "{}",
        estimate(left, opts.comments, opts.rate_per_minute, opts.burst)
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
        opts.out.join(MANIFEST_FILE).display()
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
    let offset = resume::load(&ctx.opts.out, &ctx.opts.selection);
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
        .buffer_unordered(ctx.opts.concurrency)
        .collect::<()>()
        .await;
}

/// After a complete, unfiltered listing: manifest rows of tickets the server no longer lists.
/// Each such ticket is confirmed with `GET /tickets/{id}` first: only a 404 makes its
/// documents gone (reported, and pruned with `--prune`); any other answer keeps them.
async fn report_unlisted_tickets(ctx: &Ctx<'_>, seen: &HashSet<uuid::Uuid>) {
    let mut unlisted: BTreeMap<uuid::Uuid, Vec<manifest::Entry>> = BTreeMap::new();
    for e in ctx.store.snapshot().into_values() {
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
                    ticket::report_gone(ctx, &label, e);
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

    #[tokio::test(start_paused = true)]
    async fn the_budget_stops_new_work_then_aborts_what_overran_the_grace() {
        assert_eq!(grace(Duration::from_secs(3000)), Duration::from_secs(300));
        assert_eq!(grace(Duration::from_secs(30)), MIN_GRACE);
        let cancel = Cancel::new();
        let hit = Arc::new(AtomicBool::new(false));
        let task = spawn_budget(Duration::from_secs(60), cancel.clone(), hit.clone());
        tokio::time::sleep(Duration::from_millis(59_900)).await;
        assert!(!cancel.soft.is_cancelled() && !hit.load(Ordering::Relaxed));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(cancel.soft.is_cancelled() && hit.load(Ordering::Relaxed));
        assert!(!cancel.hard.is_cancelled(), "in-flight work gets a grace");
        tokio::time::sleep(MIN_GRACE).await;
        assert!(cancel.hard.is_cancelled(), "then it is aborted");
        task.await.unwrap();
    }

    #[test]
    fn a_saved_position_past_the_end_starts_over() {
        assert_eq!(continue_at(12, 12), 0);
        assert_eq!(continue_at(20, 12), 0);
        assert_eq!(continue_at(5, 12), 5);
        assert_eq!(continue_at(0, 12), 0);
    }
}
