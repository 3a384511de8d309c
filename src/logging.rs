//! Log lines (tracing): text or JSON, on stderr and, when asked, appended to a log file. The
//! only place a tracing subscriber is set up.
//!
//! stderr shows warnings and errors (`RUST_LOG` overrides); in JSON format it also shows
//! the report events (target [`REPORT`]: the end-of-run summary and each problem), which in
//! text format are left to the human summary. A log file gets info and above.

use std::io::IsTerminal;
use std::path::Path;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// `2026-11-28T07:10:48.123Z  WARN alga_batch: message key=value`.
    #[default]
    Text,
    /// One JSON object a line: `timestamp`, `level`, `target`, `message` and the event's
    /// fields.
    Json,
}

/// Target of the end-of-run events (summary and problems).
pub const REPORT: &str = "alga_batch::report";

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Install the subscriber (once per process; later calls change nothing). `file`, when
/// given, is opened for appending.
pub fn init(format: LogFormat, file: Option<&Path>) -> crate::error::Result<()> {
    let stderr_level = match format {
        LogFormat::Text => "warn,alga_batch::report=off",
        LogFormat::Json => "info",
    };
    let mut layers: Vec<BoxedLayer> = vec![layer(
        format,
        std::sync::Mutex::new(std::io::stderr()),
        std::io::stderr().is_terminal(),
    )
    .with_filter(filter(stderr_level))
    .boxed()];
    if let Some(path) = file {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| crate::error::Error::io("cannot open log file", path, e))?;
        layers.push(
            layer(format, std::sync::Mutex::new(f), false)
                .with_filter(filter("info"))
                .boxed(),
        );
    }
    let _ = tracing_subscriber::registry().with(layers).try_init();
    Ok(())
}

/// `RUST_LOG`, else `default`.
fn filter(default: &str) -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default))
}

/// A formatting layer writing to `w`.
fn layer<W>(format: LogFormat, w: W, ansi: bool) -> BoxedLayer
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let base = tracing_subscriber::fmt::layer().with_writer(w);
    match format {
        LogFormat::Text => base.with_ansi(ansi).boxed(),
        LogFormat::Json => base.json().flatten_event(true).boxed(),
    }
}
