//! `--metrics-file`: a finished command's [`RunRecord`] as Prometheus text exposition, for
//! node_exporter's textfile collector and the many tools that read the same format. The only
//! user of `prometheus-client`.
//!
//! Every metric is a gauge holding the value of the command's latest run, labelled
//! `command` and `job_name` (not `job`: Prometheus sets `job` itself when it scrapes, and a
//! scraped `job` label would be renamed `exported_job`). The file is rewritten atomically (a
//! hidden temp file in the same folder, fsync, rename, mode 0644) so the collector never
//! reads half a file. `alga_batch_last_success_timestamp_seconds` is carried over from the
//! previous file when this run did not succeed, so "no success for 26 h" can be alerted on.

use crate::record::RunRecord;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::AtomicU64;

/// Metric name prefix.
const PREFIX: &str = "alga_batch";
/// The metric carried over from run to run.
const LAST_SUCCESS: &str = "alga_batch_last_success_timestamp_seconds";

/// Could not write the metrics file.
#[derive(Debug, thiserror::Error)]
#[error("cannot write metrics file {path}: {source}")]
pub struct MetricsError {
    path: String,
    #[source]
    source: std::io::Error,
}

/// The labels of every series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    command: String,
    job_name: String,
}

/// The labels of the per-status series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    command: String,
    job_name: String,
    status: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Write `record` to `path` (atomically), keeping the previous file's last success when
/// this run is not one.
pub fn write(path: &Path, record: &RunRecord) -> Result<(), MetricsError> {
    let err = |source| MetricsError {
        path: path.display().to_string(),
        source,
    };
    let previous = std::fs::read_to_string(path).unwrap_or_default();
    let labels = labels(record);
    let last_success = match record.succeeded() {
        true => Some(record.finished_unix),
        false => previous_value(&previous, LAST_SUCCESS, &labels),
    };
    let text = render(record, last_success).map_err(|e| err(std::io::Error::other(e)))?;
    write_atomic(path, text.as_bytes()).map_err(err)
}

/// The exposition text of `record`.
fn render(record: &RunRecord, last_success: Option<f64>) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::with_prefix(PREFIX);
    let l = labels(record);
    let floats = [
        ("last_run_timestamp_seconds", "Unix time the latest run finished", record.finished_unix),
        ("last_success_timestamp_seconds", "Unix time the latest run that exited 0 finished (kept across failed runs; 0: none yet)", last_success.unwrap_or(0.0)),
        ("duration_seconds", "Wall time of the latest run", record.elapsed_seconds),
    ];
    for (name, help, value) in floats {
        let family = Family::<Labels, FloatGauge>::default();
        family.get_or_create(&l).set(value);
        registry.register(name, help, family);
    }
    for (name, help, value) in int_metrics(record) {
        let family = Family::<Labels, Gauge>::default();
        family.get_or_create(&l).set(gauge_value(value));
        registry.register(name, help, family);
    }
    let by_status = Family::<StatusLabels, Gauge>::default();
    for (status, n) in &record.counts {
        let sl = StatusLabels {
            command: l.command.clone(),
            job_name: l.job_name.clone(),
            status: (*status).to_string(),
        };
        by_status.get_or_create(&sl).set(gauge_value(*n));
    }
    registry.register(
        "operations",
        "Operations (run, undo) or documents (backup) of the latest run, by status",
        by_status,
    );
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)?;
    Ok(text)
}

/// The whole-number gauges: name, help, value.
fn int_metrics(r: &RunRecord) -> Vec<(&'static str, &'static str, u64)> {
    let mut v = vec![
        ("exit_code", "Exit code of the latest run (0 ok, 1 some items failed, 2 usage, 3 fatal, 4 locked, 130 interrupted)", u64::from(r.exit_code)),
        ("interrupted", "1 when the latest run was stopped by Ctrl-C or SIGTERM", u64::from(r.interrupted)),
        ("uploaded_bytes", "File bytes uploaded by the latest run", r.uploaded_bytes),
        ("downloaded_bytes", "Document bytes downloaded by the latest run", r.downloaded_bytes),
        ("http_requests", "HTTP requests sent by the latest run, retries included", r.requests),
        ("http_retries", "Retries of the latest run", r.retries),
        ("http_throttled", "429 answers received by the latest run", r.throttled),
    ];
    if let Some(b) = &r.backup {
        v.extend([
            (
                "backup_manifest_documents",
                "Documents listed in the backup manifest",
                b.manifest_documents,
            ),
            (
                "backup_manifest_bytes",
                "Bytes of the documents listed in the backup manifest",
                b.manifest_bytes,
            ),
            (
                "backup_tickets_failed",
                "Tickets the latest backup could not list",
                b.tickets_failed,
            ),
        ]);
    }
    v
}

fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn labels(record: &RunRecord) -> Labels {
    Labels {
        command: record.command.as_str().to_string(),
        job_name: record.name.clone(),
    }
}

/// Write `bytes` to `path` through a hidden temp file in the same folder (the textfile
/// collector reads only `*.prom`), readable by everyone like an ordinary file.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".alga-batch-metrics-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The value of `metric` with exactly `labels` in an earlier file of ours.
fn previous_value(text: &str, metric: &str, labels: &Labels) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(metric)?.strip_prefix('{')?;
        let (pairs, value) = parse_labels(rest)?;
        let wanted = [
            ("command", labels.command.as_str()),
            ("job_name", labels.job_name.as_str()),
        ];
        let same = pairs.len() == wanted.len()
            && wanted
                .iter()
                .all(|(k, v)| pairs.iter().any(|(pk, pv)| pk == k && pv == v));
        let value: f64 = value.split_whitespace().next()?.parse().ok()?;
        (same && value.is_finite()).then_some(value)
    })
}

/// `k="v",k2="v2"} rest` -> the pairs (unescaped) and `rest`.
fn parse_labels(s: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut pairs = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches(',');
        if let Some(after) = rest.strip_prefix('}') {
            return Some((pairs, after));
        }
        let (key, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        pairs.push((key.trim().to_string(), value));
        rest = &after[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(job: &str) -> Labels {
        Labels {
            command: "backup".into(),
            job_name: job.into(),
        }
    }

    #[test]
    fn the_previous_success_is_found_for_the_same_labels_only() {
        let text = "# HELP x\n\
            alga_batch_last_success_timestamp_seconds{command=\"backup\",job_name=\"/b,\\\"q\\\"\"} 1700000000.5\n\
            alga_batch_last_success_timestamp_seconds{command=\"backup\",job_name=\"other\"} 9\n";
        assert_eq!(
            previous_value(text, LAST_SUCCESS, &labels("/b,\"q\"")),
            Some(1_700_000_000.5)
        );
        assert_eq!(
            previous_value(text, LAST_SUCCESS, &labels("other")),
            Some(9.0)
        );
        assert_eq!(previous_value(text, LAST_SUCCESS, &labels("nope")), None);
        assert_eq!(previous_value("garbage{", LAST_SUCCESS, &labels("x")), None);
        let torn = "alga_batch_last_success_timestamp_seconds{command=\"backup\",job_name=\"x";
        assert_eq!(previous_value(torn, LAST_SUCCESS, &labels("x")), None);
    }
}
