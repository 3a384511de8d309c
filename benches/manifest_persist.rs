//! Manifest persistence (not a test): what it costs to make one completed document durable in
//! the manifest's record, and the worst stall that costs the other tasks of the runtime thread,
//! with a manifest of 200,000 and 1,000,000 documents.
//!
//! - before: the old scheme, reproduced here: the whole manifest rewritten (CSV to a temp file,
//!   fsync, rename) under a std `Mutex`, on the runtime thread, every 2 s.
//! - after: `store::Manifest::record` (one row appended to the journal by the writer thread,
//!   fsynced with whatever else is waiting; the task awaits the acknowledgement).
//!
//! Both run on a current-thread runtime with probe tasks that sleep 1 ms in a loop and record
//! how late they wake (the stall a download task sharing the thread would see).
//!
//! `cargo bench --bench manifest_persist` (release build). Environment: `BENCH_SIZES`
//! (default `200000,1000000`), `BENCH_RECORDS` (documents recorded after, default 2000),
//! `BENCH_DIR` (where the files go, default `target/bench-manifest`: the project's disk).

use alga_batch::store::manifest::{self, Entries, Entry};
use alga_batch::store::{FolderStore, Manifest};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

fn entry(i: u64) -> Entry {
    let ticket = Uuid::from_u128(u128::from(i / 20) + 1);
    Entry {
        ticket_id: ticket,
        ticket_number: format!("TIC{:07}", i / 20),
        document_id: Uuid::from_u128(u128::from(i) << 64 | 7),
        document_name: format!("scan {i} of the signed contract.pdf"),
        path: format!("TIC{:07}/scan {i} of the signed contract.pdf", i / 20),
        bytes: 100_000 + i,
        sha256: format!("{:064x}", u128::from(i) * 0x9e37_79b9_7f4a_7c15),
        mime_type: "application/pdf".into(),
        downloaded_at: "2026-12-01T02:15:00.000Z".into(),
    }
}

fn entries(n: u64) -> Entries {
    (0..n)
        .map(|i| {
            let e = entry(i);
            ((e.ticket_id, e.document_id), e)
        })
        .collect()
}

/// The old `manifest::write_atomic`: the whole manifest to a temp file, fsync, rename, fsync
/// the folder.
fn write_all(path: &Path, entries: &Entries) -> std::io::Result<()> {
    let dir = path.parent().unwrap();
    let mut tmp = tempfile::Builder::new()
        .prefix(".manifest-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    {
        let mut w = std::io::BufWriter::new(tmp.as_file_mut());
        manifest::to_csv(entries, &mut w)?;
        w.flush()?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Probe tasks: each sleeps 1 ms in a loop; the worst lateness seen, in microseconds.
fn spawn_probes(stop: Arc<AtomicBool>, worst: Arc<AtomicU64>) -> Vec<tokio::task::JoinHandle<()>> {
    (0..4)
        .map(|_| {
            let (stop, worst) = (stop.clone(), worst.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    let late = t.elapsed().saturating_sub(Duration::from_millis(1));
                    worst.fetch_max(late.as_micros() as u64, Ordering::Relaxed);
                }
            })
        })
        .collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Rewrites measured by `before`.
const FLUSHES: usize = 3;

/// Before: every completed document goes into the map under a std Mutex; every 2 s one of
/// them rewrites the whole manifest while holding it, on the runtime thread. Measures
/// [`FLUSHES`] rewrites (each makes every document completed since the last one durable).
async fn before(dir: &Path, all: Entries) -> (Vec<Duration>, Duration) {
    let path = dir.join("manifest.csv");
    let state = Arc::new(Mutex::new(all));
    let (stop, worst) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let probes = spawn_probes(stop.clone(), worst.clone());
    tokio::time::sleep(Duration::from_millis(20)).await;
    worst.store(0, Ordering::Relaxed);
    let mut flushes = Vec::new();
    let mut last = Instant::now();
    let mut i = 0;
    while flushes.len() < FLUSHES {
        let e = entry(10_000_000 + i);
        i += 1;
        state
            .lock()
            .unwrap()
            .insert((e.ticket_id, e.document_id), e);
        // A download of a small document takes about a millisecond on loopback.
        tokio::time::sleep(Duration::from_millis(1)).await;
        if last.elapsed() >= Duration::from_secs(2) {
            let t = Instant::now();
            let guard = state.lock().unwrap();
            write_all(&path, &guard).unwrap();
            drop(guard);
            flushes.push(t.elapsed());
            last = Instant::now();
        }
    }
    stop.store(true, Ordering::Relaxed);
    for p in probes {
        p.await.unwrap();
    }
    (
        flushes,
        Duration::from_micros(worst.load(Ordering::Relaxed)),
    )
}

/// After: 8 tasks record documents through the store (each awaits its row's fsync).
async fn after(
    dir: &Path,
    all: Entries,
    records: u64,
) -> (Vec<Duration>, Duration, Duration, Duration) {
    let store = FolderStore::new(dir, true);
    let m = Manifest::new(&store, all);
    let (stop, worst) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let probes = spawn_probes(stop.clone(), worst.clone());
    tokio::time::sleep(Duration::from_millis(20)).await;
    worst.store(0, Ordering::Relaxed);
    let started = Instant::now();
    let per_task = records / 8;
    let latencies: Vec<Duration> = futures::future::join_all((0..8).map(|w| {
        let m = &m;
        async move {
            let mut out = Vec::new();
            for i in 0..per_task {
                tokio::time::sleep(Duration::from_millis(1)).await;
                let t = Instant::now();
                m.record(entry(20_000_000 + w * per_task + i))
                    .await
                    .unwrap();
                out.push(t.elapsed());
            }
            out
        }
    }))
    .await
    .into_iter()
    .flatten()
    .collect();
    let wall = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for p in probes {
        p.await.unwrap();
    }
    let stall = Duration::from_micros(worst.load(Ordering::Relaxed));
    let t = Instant::now();
    m.compact().await.unwrap();
    (latencies, stall, wall, t.elapsed())
}

/// The probes' worst lateness with nothing else running (timer granularity, a busy machine).
async fn baseline() -> Duration {
    let (stop, worst) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let probes = spawn_probes(stop.clone(), worst.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for p in probes {
        p.await.unwrap();
    }
    Duration::from_micros(worst.load(Ordering::Relaxed))
}

fn main() {
    let sizes: Vec<u64> = std::env::var("BENCH_SIZES")
        .unwrap_or_else(|_| "200000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let records: u64 = std::env::var("BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let base = std::env::var("BENCH_DIR").unwrap_or_else(|_| "target/bench-manifest".into());
    std::fs::create_dir_all(&base).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "baseline: worst lateness of a 1 ms sleep with nothing else running {:.2} ms",
        ms(rt.block_on(baseline()))
    );
    for n in sizes {
        let all = entries(n);
        let dir = tempfile::tempdir_in(&base).unwrap();
        let (flushes, stall) = rt.block_on(before(dir.path(), all.clone()));
        let size = std::fs::metadata(dir.path().join("manifest.csv"))
            .map(|m| m.len())
            .unwrap_or(0);
        let mean = flushes.iter().sum::<Duration>() / flushes.len() as u32;
        let max = flushes.iter().max().copied().unwrap_or_default();
        println!(
            "{n} documents ({:.0} MB manifest), before: {} full rewrites, {:.1} ms each (max {:.1} ms); worst stall of a task on the thread {:.1} ms",
            size as f64 / 1e6, flushes.len(), ms(mean), ms(max), ms(stall)
        );
        let dir = tempfile::tempdir_in(&base).unwrap();
        let (mut lat, stall, wall, compact) = rt.block_on(after(dir.path(), all, records));
        lat.sort();
        let pct = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize];
        println!(
            "{n} documents, after: {} documents recorded by 8 tasks in {:.0} ms ({:.0}/s); durable {:.2} ms after the call (median; p99 {:.2} ms, max {:.2} ms); worst stall of a task on the thread {:.2} ms; compaction at the end of the run {:.0} ms (off the runtime thread)",
            lat.len(), ms(wall), lat.len() as f64 / wall.as_secs_f64(), ms(pct(0.5)), ms(pct(0.99)), ms(*lat.last().unwrap()), ms(stall), ms(compact)
        );
    }
}
