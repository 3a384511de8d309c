//! Backup options: the raw [`ExportSpec`] (from flags or from an export job file, TOML with
//! `kind = "export"`), merged and validated into [`BackupOptions`].

use crate::error::{Error, Result};
use crate::store::Location;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Options as written on the command line or in a job file; every field optional.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExportSpec {
    /// Must be `"export"` in a job file.
    pub kind: Option<String>,
    /// Job name (for messages).
    pub name: Option<String>,
    /// Server (job files only; `--base-url`/`ALGA_BASE_URL` win).
    pub base_url: Option<String>,
    /// Where the backup goes: a folder or `s3://BUCKET/PREFIX`.
    pub out: Option<Location>,
    /// Ticket numbers or UUIDs.
    #[serde(default)]
    pub tickets: Vec<String>,
    /// File with one ticket reference per line.
    pub tickets_file: Option<PathBuf>,
    /// Only open tickets.
    pub open_only: Option<bool>,
    /// Only tickets updated at or after this UTC time (`2026-11-01T00:00:00Z`).
    pub updated_from: Option<String>,
    /// Also export comments.
    pub comments: Option<bool>,
    /// Delete files of documents gone from the server.
    pub prune: Option<bool>,
    /// Stop starting new work after this long (`50m`, `1h 30m`); downloads in flight get a
    /// grace of 10% of it (at least 10 s), then are aborted and left for the next run.
    pub max_duration: Option<String>,
    /// Tickets in flight at once.
    pub concurrency: Option<usize>,
    /// Client-side request rate per minute (0 = unlimited).
    pub rate_per_minute: Option<u32>,
    /// Client-side burst.
    pub burst: Option<u32>,
    /// Retries per request.
    pub max_retries: Option<u32>,
    /// Longest one request may be held back by 429s (`--max-wait`; not in job files).
    #[serde(skip)]
    pub max_wait: Option<std::time::Duration>,
    /// Append the summary and problems to this file.
    pub log_file: Option<PathBuf>,
    /// Take the backup's lock (default true).
    pub lock: Option<bool>,
    /// Write large downloads with direct I/O where the filesystem allows (default true).
    pub direct_io: Option<bool>,
    /// Read and hash every backed-up file instead of trusting size and mtime (default false).
    pub verify: Option<bool>,
    /// Print the request estimate only.
    #[serde(skip)]
    pub dry_run: bool,
    /// One summary line.
    #[serde(skip)]
    pub quiet: bool,
}

impl ExportSpec {
    /// Fill every unset field of `self` (the flags) from `job`.
    pub fn or(mut self, job: ExportSpec) -> ExportSpec {
        macro_rules! fill {
            ($($f:ident),*) => { $( if self.$f.is_none() { self.$f = job.$f; } )* };
        }
        fill!(
            kind,
            name,
            base_url,
            out,
            tickets_file,
            open_only,
            updated_from,
            comments,
            prune,
            max_duration,
            concurrency,
            rate_per_minute,
            burst,
            max_retries,
            log_file,
            lock,
            direct_io,
            verify
        );
        if self.tickets.is_empty() {
            self.tickets = job.tickets;
        }
        self
    }
}

/// Read an export job file; relative paths in it are taken from the file's folder.
pub fn load_job(path: &Path) -> Result<ExportSpec> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("cannot read job file {}: {e}", path.display())))?;
    let mut spec: ExportSpec = toml::from_str(&text)
        .map_err(|e| Error::Usage(format!("{}: {}", path.display(), e.message())))?;
    match spec.kind.as_deref() {
        Some("export") => {}
        Some(k) => {
            return Err(Error::Usage(format!(
                "{}: kind = {k:?}, but `backup --job` runs export jobs (kind = \"export\"); \
                 run import jobs with `alga-batch run`",
                path.display()
            )))
        }
        None => {
            return Err(Error::Usage(format!(
                "{}: missing `kind = \"export\"`",
                path.display()
            )))
        }
    }
    let base = path.parent().unwrap_or(Path::new(""));
    spec.out = spec.out.map(|o| o.relative_to(base));
    for p in [&mut spec.tickets_file, &mut spec.log_file]
        .into_iter()
        .flatten()
    {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    }
    Ok(spec)
}

/// A backup's pacing: `concurrency` counts tickets in flight (default 4), each holding one
/// download's buffers, so it is a number, never `auto` (the requests themselves are still
/// limited per kind by the client).
fn pacing_of(spec: &ExportSpec) -> Result<crate::runner::Pacing> {
    use crate::api::Concurrency;
    if spec.concurrency == Some(0) {
        return Err(Error::Usage(
            "backup: --concurrency (or `concurrency`) is a number of tickets in flight, at least 1 (default 4)"
                .into(),
        ));
    }
    Ok(crate::runner::PacingSpec {
        concurrency: spec
            .concurrency
            .map(|n| Concurrency::Fixed(u32::try_from(n).unwrap_or(u32::MAX))),
        rate_per_minute: spec.rate_per_minute,
        burst: spec.burst,
        max_retries: spec.max_retries,
        max_wait: spec.max_wait,
        ..Default::default()
    }
    .resolve(Concurrency::Fixed(4)))
}

/// What to back up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Explicit references (numbers or UUIDs), deduplicated, in order.
    pub refs: Vec<String>,
    /// Only open tickets (listing only).
    pub open_only: bool,
    /// `updated_from` filter (listing only).
    pub updated_from: Option<String>,
}

/// Validated backup options.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// Job or folder name, for messages.
    pub name: String,
    /// Where the backup goes: a folder or `s3://BUCKET/PREFIX`.
    pub out: Location,
    /// Ticket selection.
    pub selection: Selection,
    /// Export comments too.
    pub comments: bool,
    /// Delete files of documents gone from the server.
    pub prune: bool,
    /// Time budget.
    pub max_duration: Option<Duration>,
    /// How requests are paced and retried (concurrency counts tickets in flight).
    pub pacing: crate::runner::Pacing,
    /// Log file.
    pub log_file: Option<PathBuf>,
    /// Take the backup's lock.
    pub lock: bool,
    /// Write whole blocks of downloads with direct I/O where possible (see
    /// `store/folder/disk.rs`).
    pub direct_io: bool,
    /// Read and hash every backed-up file (`--verify`) instead of trusting one whose size
    /// matches and that was not modified since it was recorded.
    pub verify: bool,
    /// Estimate only.
    pub dry_run: bool,
    /// One summary line.
    pub quiet: bool,
}

impl BackupOptions {
    /// Validate a merged spec (usage errors exit 2, nothing sent).
    pub fn from_spec(spec: ExportSpec) -> Result<BackupOptions> {
        let pacing = pacing_of(&spec)?;
        let out = spec.out.ok_or_else(|| {
            Error::Usage(
                "no backup location: pass --out DIR or --out s3://BUCKET/PREFIX (or `out` in \
                 the job file)"
                    .into(),
            )
        })?;
        let mut refs = Vec::new();
        for r in &spec.tickets {
            push_ref(&mut refs, r);
        }
        if let Some(f) = &spec.tickets_file {
            for r in read_tickets_file(f)? {
                push_ref(&mut refs, &r);
            }
        }
        let open_only = spec.open_only.unwrap_or(false);
        let updated_from = spec.updated_from.map(|t| check_utc(&t)).transpose()?;
        if !refs.is_empty() && (open_only || updated_from.is_some()) {
            return Err(Error::Usage(
                "--open-only and --updated-from filter the full ticket list; they cannot be \
                 combined with --ticket/--tickets (which name the tickets exactly)"
                    .into(),
            ));
        }
        let max_duration = spec
            .max_duration
            .as_deref()
            .map(parse_duration)
            .transpose()?;
        Ok(BackupOptions {
            name: spec.name.unwrap_or_else(|| out.describe()),
            out,
            selection: Selection {
                refs,
                open_only,
                updated_from,
            },
            comments: spec.comments.unwrap_or(false),
            prune: spec.prune.unwrap_or(false),
            max_duration,
            pacing,
            log_file: spec.log_file,
            lock: spec.lock.unwrap_or(true),
            direct_io: spec.direct_io.unwrap_or(true),
            verify: spec.verify.unwrap_or(false),
            dry_run: spec.dry_run,
            quiet: spec.quiet,
        })
    }
}

fn push_ref(refs: &mut Vec<String>, r: &str) {
    let r = r.trim();
    if !r.is_empty() && !refs.iter().any(|x| x.eq_ignore_ascii_case(r)) {
        refs.push(r.to_string());
    }
}

/// A `--tickets` file: one reference per line; blank lines and `#` comments are skipped.
pub fn read_tickets_file(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::Usage(format!(
            "cannot read --tickets file {}: {e}",
            path.display()
        ))
    })?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

/// The server filters with UTC `...Z` timestamps only; anything else is refused here.
pub fn check_utc(t: &str) -> Result<String> {
    let t = t.trim();
    let ok = t.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(t).is_ok();
    if ok {
        return Ok(t.to_string());
    }
    let date_only = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").is_ok();
    let hint = if date_only {
        format!(" (for the start of that day write {t}T00:00:00Z)")
    } else {
        String::new()
    };
    Err(Error::Usage(format!(
        "--updated-from {t:?}: expected a UTC time such as 2026-11-01T00:00:00Z (the server \
         accepts only the Z form){hint}"
    )))
}

/// `50m`, `1h 30m`, `90s`.
pub fn parse_duration(s: &str) -> Result<Duration> {
    match humantime::parse_duration(s.trim()) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(Error::Usage("--max-duration must be more than zero".into())),
        Err(e) => Err(Error::Usage(format!(
            "--max-duration {s:?}: {e} (examples: 50m, 1h 30m, 90s)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updated_from_accepts_only_the_utc_z_form() {
        assert_eq!(
            check_utc("2026-11-01T00:00:00Z").unwrap(),
            "2026-11-01T00:00:00Z"
        );
        assert!(check_utc("2026-11-01T00:00:00.123Z").is_ok());
        let e = check_utc("2026-11-01").unwrap_err().to_string();
        assert!(e.contains("2026-11-01T00:00:00Z"), "{e}");
        assert!(check_utc("2026-11-01T00:00:00+01:00").is_err());
        assert!(check_utc("yesterday").is_err());
    }

    #[test]
    fn durations_parse_like_humans_write_them() {
        assert_eq!(parse_duration("50m").unwrap(), Duration::from_secs(3000));
        assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("fifty").is_err());
    }

    #[test]
    fn job_file_is_an_export_job_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let job = dir.path().join("nightly.toml");
        std::fs::write(dir.path().join("t.txt"), "TIC1\n# note\n\nTIC2\ntic1\n").unwrap();
        std::fs::write(
            &job,
            "kind = \"export\"\nname = \"nightly\"\nout = \"backup\"\ntickets_file = \"t.txt\"\n\
             comments = true\nmax_duration = \"50m\"\nconcurrency = 2\ndirect_io = false\n\
             verify = true\n",
        )
        .unwrap();
        let spec = load_job(&job).unwrap();
        let flags = ExportSpec {
            concurrency: Some(8),
            ..Default::default()
        };
        let o = BackupOptions::from_spec(flags.or(spec)).unwrap();
        assert_eq!(o.out, Location::Folder(dir.path().join("backup")));
        assert_eq!(o.selection.refs, vec!["TIC1", "TIC2"]);
        assert!(o.comments && o.lock && !o.prune && !o.direct_io && o.verify);
        assert_eq!(o.pacing.lanes(), 8);
        assert_eq!(o.max_duration, Some(Duration::from_secs(3000)));
    }

    #[test]
    fn a_job_file_may_name_a_bucket_and_folders_stay_relative_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let job = dir.path().join("s3.toml");
        std::fs::write(
            &job,
            "kind = \"export\"\nout = \"s3://bkt/nightly/alga/\"\n",
        )
        .unwrap();
        let o = BackupOptions::from_spec(load_job(&job).unwrap()).unwrap();
        assert_eq!(
            o.out,
            Location::S3 {
                bucket: "bkt".into(),
                prefix: "nightly/alga".into()
            }
        );
        assert_eq!(o.name, "s3://bkt/nightly/alga");
        std::fs::write(&job, "kind = \"export\"\nout = \"s3://\"\n").unwrap();
        let e = load_job(&job).unwrap_err().to_string();
        assert!(e.contains("names no bucket"), "{e}");
    }

    #[test]
    fn the_shipped_export_job_loads() {
        let job = Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs/nightly-backup.toml");
        let spec = load_job(&job).unwrap();
        assert_eq!(spec.base_url.as_deref(), Some("https://psa.example.com"));
        let o = BackupOptions::from_spec(spec).unwrap();
        let Location::Folder(out) = &o.out else {
            panic!("{}", o.out)
        };
        assert!(out.ends_with("backups/alga"), "{}", out.display());
        assert!(
            out.starts_with(job.parent().unwrap()),
            "relative to the job file's folder"
        );
        assert_eq!(o.name, "nightly-attachments");
        assert!(o.comments && o.selection.refs.is_empty() && o.direct_io && !o.verify);
        assert_eq!(o.max_duration, Some(Duration::from_secs(3000)));
    }

    #[test]
    fn wrong_kind_unknown_keys_and_bad_combinations_are_usage_errors() {
        let dir = tempfile::tempdir().unwrap();
        let job = dir.path().join("j.toml");
        std::fs::write(&job, "kind = \"import\"\n").unwrap();
        assert!(load_job(&job).unwrap_err().to_string().contains("run"));
        std::fs::write(&job, "kind = \"export\"\noutt = \"x\"\n").unwrap();
        assert!(load_job(&job).unwrap_err().to_string().contains("outt"));
        let spec = ExportSpec {
            out: Some(Location::Folder("x".into())),
            tickets: vec!["TIC1".into()],
            open_only: Some(true),
            ..Default::default()
        };
        let e = BackupOptions::from_spec(spec).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::EXIT_USAGE);
        assert!(BackupOptions::from_spec(ExportSpec::default()).is_err());
    }
}
