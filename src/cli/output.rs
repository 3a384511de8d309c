//! What `run`, `undo` and `backup` (and later `restore`) share at their ends: the `--json`,
//! `--metrics-file`, `--log-format` and `--log-file` flags, the logging set-up, and
//! [`finish`]: the summary as log events, the metrics file, the JSON object, the exit code.

use crate::error::{Error, Result};
use crate::logging::{self, LogFormat};
use crate::record::RunRecord;
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};

/// `--log-format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormatArg {
    /// Plain text lines.
    #[default]
    Text,
    /// One JSON object a line.
    Json,
}

/// Flags for running unattended.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct OutputFlags {
    /// Print the final summary as one JSON object on stdout (everything else goes to stderr).
    #[arg(long)]
    pub(crate) json: bool,
    /// When the run ends (also after a failure or an interrupt), write its metrics to PATH in
    /// the Prometheus text format, atomically (for node_exporter's textfile collector).
    #[arg(long, value_name = "PATH")]
    pub(crate) metrics_file: Option<PathBuf>,
    /// Log line format on stderr and in --log-file: text, or json (one object a line; the
    /// end-of-run summary and each problem become log events).
    #[arg(long, value_enum, default_value_t, value_name = "FORMAT")]
    pub(crate) log_format: LogFormatArg,
    /// Append log lines (the end-of-run summary, every problem, warnings) to this file.
    /// backup with --log-format text keeps its own format: the summary line and every problem.
    #[arg(long, value_name = "PATH")]
    pub(crate) log_file: Option<PathBuf>,
}

impl OutputFlags {
    /// The log format.
    pub(crate) fn format(&self) -> LogFormat {
        match self.log_format {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        }
    }

    /// Set up logging (`log_file` overrides `--log-file`; `None` keeps it off) and check that
    /// the metrics file's folder exists, so a typo is a usage error now and not a surprise at
    /// the end.
    pub(crate) fn start(&self, log_file: Option<&Path>) -> Result<()> {
        logging::init(self.format(), log_file)?;
        if let Some(path) = &self.metrics_file {
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            if dir.is_some_and(|d| !d.is_dir()) {
                return Err(Error::Usage(format!(
                    "--metrics-file {}: its folder does not exist",
                    path.display()
                )));
            }
        }
        Ok(())
    }

    /// Whether the human summary goes to stderr (in JSON log format the summary event
    /// replaces it).
    pub(crate) fn human(&self) -> bool {
        self.format() == LogFormat::Text
    }
}

/// End a command: log the problems and the summary as events, write the metrics file, print
/// the JSON object on stdout; the exit code. A metrics file that cannot be written is
/// reported and does not change the exit code.
pub(crate) fn finish(flags: &OutputFlags, record: &RunRecord, problems: &[String]) -> u8 {
    log_events(record, problems);
    if let Some(path) = &flags.metrics_file {
        if let Err(e) = crate::metrics::write(path, record) {
            tracing::error!("{e}");
        }
    }
    if flags.json {
        match serde_json::to_string(record) {
            Ok(line) => println!("{line}"),
            Err(e) => eprintln!("alga-batch: cannot encode the summary: {e}"),
        }
    }
    record.exit_code
}

/// Each problem as a warning, then the summary as one info event.
fn log_events(r: &RunRecord, problems: &[String]) {
    let (command, job_name) = (r.command.as_str(), r.name.as_str());
    for p in problems {
        tracing::warn!(target: logging::REPORT, command, job_name, "{p}");
    }
    let counts = serde_json::to_string(&r.counts).unwrap_or_default();
    let path = r.results.as_ref().or(r.manifest.as_ref());
    tracing::info!(
        target: logging::REPORT,
        command,
        job_name,
        exit_code = r.exit_code,
        error = r.error.as_deref(),
        interrupted = r.interrupted,
        elapsed_seconds = r.elapsed_seconds,
        total = r.total,
        counts = %counts,
        requests = r.requests,
        retries = r.retries,
        throttled = r.throttled,
        uploaded_bytes = r.uploaded_bytes,
        downloaded_bytes = r.downloaded_bytes,
        path = path.map(|p| p.display().to_string()),
        "finished"
    );
}
